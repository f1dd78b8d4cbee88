package callcompletion

import (
	"strings"
	"testing"
)

func TestB1_BodyRoundTrip(t *testing.T) {
	b := Body{State: Ready, URI: "sip:2001@127.0.0.3:5070", Retention: true}
	got, err := ParseBody(b.Bytes())
	if err != nil || got != b {
		t.Fatalf("round trip: %+v, %v; want %+v", got, err, b)
	}
}

func TestB1_BodyForms(t *testing.T) {
	cases := []struct {
		in   string
		want Body
	}{
		// The RFC's examples use both "cc-URI:" and "URI:".
		{"cc-state: queued\r\ncc-URI: sip:b@example.com\r\n", Body{State: Queued, URI: "sip:b@example.com"}},
		{"cc-state: ready\nURI: <sips:b@example.com;m=BS>\n", Body{State: Ready, URI: "sips:b@example.com;m=BS"}},
		{"CC-State : READY\r\nx-unknown: whatever\r\n\r\n", Body{State: Ready}},
		{"cc-state: queued\r\ncc-service-retention: true\r\n", Body{State: Queued, Retention: true}},
	}
	for _, c := range cases {
		got, err := ParseBody([]byte(c.in))
		if err != nil || got != c.want {
			t.Errorf("ParseBody(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
}

func TestB1_BodyRefused(t *testing.T) {
	for _, in := range []string{
		"",
		"cc-URI: sip:b@example.com\r\n", // no cc-state
		"cc-state: maybe\r\n",           // unknown state
		"cc-state queued\r\n",           // no colon
		"cc-state: queued\r\ncc-URI: http://x\r\n", // not SIP
		"cc-state: queued\r\ncc-URI: <sip:b@x\r\n", // no '>'
		"cc-state: queued\r\ncc-URI: sip:\r\n",
		"cc-state: queued\r\ncc-URI: sip:a b@x\r\n",
		"cc-state: queued\r\n" + strings.Repeat("x: y\r\n", 1000),
	} {
		if got, err := ParseBody([]byte(in)); err == nil {
			t.Errorf("ParseBody(%q) = %+v, want an error", in, got)
		}
	}
}

func TestB1_CallInfo(t *testing.T) {
	cases := []struct {
		in   string
		want CallInfo
		ok   bool
	}{
		{"<sip:2001@h>;purpose=call-completion;m=BS", CallInfo{"sip:2001@h", BS}, true},
		{`<http://x/a,b>;purpose=info, <sip:2001@h;x=1>;m="nr";Purpose=Call-Completion`, CallInfo{"sip:2001@h;x=1", NR}, true},
		{"<sip:2001@h>;purpose=call-completion", CallInfo{"sip:2001@h", ""}, true},
		{"<sip:2001@h>;purpose=call-completion;m=XX", CallInfo{"sip:2001@h", ""}, true},
		{"<sip:2001@h>;purpose=icon", CallInfo{}, false},
		{"garbage", CallInfo{}, false},
	}
	for _, c := range cases {
		got, ok, err := ParseCallInfo(c.in)
		if err != nil || ok != c.ok || got != c.want {
			t.Errorf("ParseCallInfo(%q) = %+v, %v, %v; want %+v, %v", c.in, got, ok, err, c.want, c.ok)
		}
	}
	if _, _, err := ParseCallInfo("<tel:+1>;purpose=call-completion"); err == nil {
		t.Error("a non-SIP cc-URI is accepted")
	}
	ci := CallInfo{URI: "sip:2001@h", M: NL}
	if got, ok, err := ParseCallInfo(ci.String()); !ok || err != nil || got != ci {
		t.Errorf("round trip %q: %+v %v %v", ci.String(), got, ok, err)
	}
}

func TestF17_PIDF(t *testing.T) {
	for _, open := range []bool{true, false} {
		p, err := ParsePIDF(BuildPIDF(`sip:1001@a&"b"`, open))
		if err != nil || p.Open != open || p.Entity != `sip:1001@a&"b"` {
			t.Fatalf("round trip open=%v: %+v, %v", open, p, err)
		}
	}
	// Closed in any tuple wins: the caller is busy somewhere.
	two := `<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@x"><tuple id="1"><status><basic>open</basic></status></tuple><tuple id="2"><status><basic>closed</basic></status><note>busy</note></tuple></presence>`
	if p, err := ParsePIDF([]byte(two)); err != nil || p.Open {
		t.Errorf("open+closed tuples: %+v, %v; want closed", p, err)
	}
	for _, bad := range []string{
		"", "<presence/>", "<presence><tuple><status><basic>maybe</basic></status></tuple></presence>",
		"<notpresence><tuple><status><basic>open</basic></status></tuple></notpresence>",
		`<!DOCTYPE x [<!ENTITY e "closed">]><presence><tuple><status><basic>&e;</basic></status></tuple></presence>`,
		"<presence><tuple><status><basic>open",
	} {
		if p, err := ParsePIDF([]byte(bad)); err == nil {
			t.Errorf("ParsePIDF(%q) = %+v, want an error", bad, p)
		}
	}
}

// Fuzz targets: every parser of network input (GUIDE). The seeds run with
// go test; run one for a minute with -fuzz=FuzzParseBody etc.

func FuzzParseBody(f *testing.F) {
	f.Add([]byte("cc-state: queued\r\ncc-URI: sip:b@example.com\r\n"))
	f.Add([]byte("cc-state: ready\nURI: <sip:b@x;m=BS>\ncc-service-retention: true\n"))
	f.Add([]byte("cc-state: \r\n:\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		body, err := ParseBody(b)
		if err != nil {
			return
		}
		again, err := ParseBody(body.Bytes())
		if err != nil || again != body {
			t.Fatalf("%q parsed to %+v, which reads back as %+v, %v", b, body, again, err)
		}
	})
}

func FuzzParseCallInfo(f *testing.F) {
	f.Add("<sip:2001@h>;purpose=call-completion;m=BS")
	f.Add(`<http://x/a,b>;purpose=info, <sip:2001@h>;m="NR";purpose=call-completion`)
	f.Add(`<sip:a@b>;purpose="call-completion\";m=NL`)
	f.Fuzz(func(t *testing.T, v string) {
		ci, ok, err := ParseCallInfo(v)
		if err != nil || !ok {
			return
		}
		again, ok, err := ParseCallInfo(ci.String())
		if err != nil || !ok || again != ci {
			t.Fatalf("%q parsed to %+v, which reads back as %+v, %v, %v", v, ci, again, ok, err)
		}
	})
}

func FuzzParsePIDF(f *testing.F) {
	f.Add(BuildPIDF("sip:1001@a", true))
	f.Add(BuildPIDF("sip:1001@a", false))
	f.Add([]byte(`<presence><tuple><status><basic>open</basic></status></tuple><tuple/></presence>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePIDF(b)
		if err != nil {
			return
		}
		again, err := ParsePIDF(BuildPIDF(p.Entity, p.Open))
		if err != nil || again.Open != p.Open {
			t.Fatalf("%q parsed to %+v, which reads back as %+v, %v", b, p, again, err)
		}
	})
}
