package interop

// Overload control (issue 14; RFC 3261 21.5.4): past what it can serve the
// server refuses new calls and registrations at once with 503 and
// Retry-After, and the calls it has complete. The real binary is made
// overloaded on demand with its test knob (CALLBACKD_TEST_OVERLOAD names a
// file: while it exists, all new work is refused), so the test waits on
// the server's own log lines, never on load or time.

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestOverload_503KeepsCallsInProgress: 1001 calls 1002 (a SIPp phone that
// answers); then the server is overloaded. A new INVITE and a new REGISTER
// get 503 with a Retry-After of a few seconds, a refresh of a registration
// goes through, /healthz stays ok, and the call in progress ends with BYE
// and 200 on both sides. Once the server has caught up, a new INVITE is
// served again (challenged).
func TestOverload_503KeepsCallsInProgress(t *testing.T) {
	flag := filepath.Join(t.TempDir(), "overloaded")
	// Not parallel: t.Setenv. The file is this test's, so a server of
	// another test that saw the variable would never be overloaded.
	t.Setenv("CALLBACKD_TEST_OVERLOAD", flag)
	// 50ms is the default; the harness turns overload control off for
	// the other tests.
	s := startServerWith(t, `overload_delay = "50ms"`, noOffer+demoLines)
	p := callPorts(t, 2) // 1002's device, 1001's
	s.register(t, "1002", p[0])
	s.register(t, "1001", p[1])
	callee := s.sippDevice(t, "1002", "uas.xml", p[0])

	// 1004 registers from its own socket: its refresh comes during the
	// overload.
	phone := dialSIP(t, s, "127.0.0.1", 0)
	reg := phone.newReq("REGISTER", "sip:"+phone.serverHost(), "1004", "1004")
	reg.extra = []string{"Expires: 300"}
	if res, _ := phone.authed(reg, "1004", "demo1004"); res.code() != 200 {
		t.Fatalf("register 1004: %s", res.status())
	}

	// The call in progress: 1001 -> 1002, answered and acknowledged.
	caller := dialSIP(t, s, "127.0.0.1", p[1])
	call := caller.newReq("INVITE", "sip:1002@"+caller.serverHost(), "1001", "1002")
	caller.send(withSDP(caller.text(call), caller.local))
	ch := caller.final(call.callID, call.cseq)
	if ch.code() != 407 {
		t.Fatalf("1001 -> 1002: %s, want 407", ch.status())
	}
	caller.ack(call, ch)
	call.cseq, call.branch = 2, ""
	call.extra = []string{"Proxy-Authorization: " + answer(t, ch, "Proxy-Authenticate", "", "INVITE", call.ruri, "1001", "demo1001", 1)}
	caller.send(withSDP(caller.text(call), caller.local))
	ok := caller.final(call.callID, call.cseq)
	if ok.code() != 200 {
		t.Fatalf("1001 -> 1002: %s, want 200", ok.status())
	}
	dialog := inDialog{c: caller, r: call, to: ok.Header("To"), target: contactURI(t, ok)}
	dialog.send("ACK", 2)

	// Overload.
	if err := os.WriteFile(flag, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s.waitLog("SIP overloaded: part of the new calls", 10*time.Second)

	other := dialSIP(t, s, "127.0.0.1", 0)
	inv := other.newReq("INVITE", "sip:1003@"+other.serverHost(), "1002", "1003")
	other.send(withSDP(other.text(inv), other.local))
	refused := other.final(inv.callID, inv.cseq)
	other.ack(inv, refused)
	mustRetryLater(t, "a new INVITE", refused)

	newReg := other.newReq("REGISTER", "sip:"+other.serverHost(), "1003", "1003")
	other.send(other.text(newReg))
	mustRetryLater(t, "a new REGISTER", other.final(newReg.callID, newReg.cseq))

	// 1004's refresh (same Call-ID, RFC 3261 10.2.4) is served.
	reg.cseq += 2
	reg.branch, reg.extra = "", []string{"Expires: 300"}
	if res, _ := phone.authed(reg, "1004", "demo1004"); res.code() != 200 {
		t.Fatalf("1004's refresh while overloaded: %s, want 200", res.status())
	}
	if code, body := s.tpHealthz(t); code != 200 {
		t.Fatalf("/healthz while overloaded: %d %s", code, body)
	}

	// The call in progress ends normally: BYE, 200, and the callee's
	// scenario (INVITE, ACK, BYE) completes.
	dialog.send("BYE", 3)
	if bye := caller.final(call.callID, 3); bye.code() != 200 {
		t.Fatalf("BYE of the call in progress while overloaded: %s, want 200", bye.status())
	}
	mustPass(t, "callee 1002", callee.wait(t))

	for _, m := range []string{"INVITE", "REGISTER"} {
		if n := s.tpMetric(t, `callbackd_sip_overload_rejected_total{method="`+m+`"}`); n < 1 {
			t.Errorf("callbackd_sip_overload_rejected_total{method=%q} = %v, want at least 1", m, n)
		}
	}
	if n := s.tpMetric(t, "callbackd_sip_overload_refused_ratio"); n != 1 {
		t.Errorf("callbackd_sip_overload_refused_ratio = %v while overloaded, want 1 (all new work)", n)
	}

	// Caught up: new work is served again.
	os.Remove(flag)
	s.waitLog("SIP overload ended", 10*time.Second)
	again := other.newReq("INVITE", "sip:1003@"+other.serverHost(), "1002", "1003")
	other.send(withSDP(other.text(again), other.local))
	res := other.final(again.callID, again.cseq)
	other.ack(again, res)
	if res.code() != 407 {
		t.Fatalf("a new INVITE after the overload: %s, want 407", res.status())
	}
	if n := strings.Count(s.Log(), "SIP overloaded: part of the new calls"); n != 1 {
		t.Errorf("%d warnings for one overload episode, want 1", n)
	}
}

// mustRetryLater fails unless res is 503 with a Retry-After of 1-60 s.
func mustRetryLater(t *testing.T, what string, res sipMsg) {
	t.Helper()
	if res.code() != 503 {
		t.Fatalf("%s while overloaded: %s, want 503", what, res.status())
	}
	ra, err := strconv.Atoi(strings.TrimSpace(res.Header("Retry-After")))
	if err != nil || ra < 1 || ra > 60 {
		t.Fatalf("%s while overloaded: Retry-After %q, want a few seconds", what, res.Header("Retry-After"))
	}
}

// withSDP gives request text an audio offer from the client's address.
func withSDP(text, local string) string {
	host, port, _ := strings.Cut(local, ":")
	rtp, _ := strconv.Atoi(port)
	sdp := fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\nm=audio %d RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n", host, host, rtp+1)
	return strings.TrimSuffix(text, "Content-Length: 0\r\n\r\n") +
		fmt.Sprintf("Content-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s", len(sdp), sdp)
}

// contactURI is the URI in a response's Contact.
func contactURI(t *testing.T, res sipMsg) string {
	t.Helper()
	c := res.Header("Contact")
	i, j := strings.Index(c, "<"), strings.Index(c, ">")
	if i < 0 || j < i {
		t.Fatalf("Contact %q", c)
	}
	return c[i+1 : j]
}

// inDialog sends requests in the dialog the 2xx to r set up (RFC 3261
// 12.2.1.1: to the remote target, with the remote tag).
type inDialog struct {
	c          *sipConn
	r          req
	to, target string
}

func (d inDialog) send(method string, cseq int) {
	d.c.n++
	d.c.send(fmt.Sprintf("%s %s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-ov-%d-%d;rport\r\nFrom: %s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %d %s\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
		method, d.target, d.c.local, time.Now().UnixNano(), d.c.n, d.r.from, d.to, d.r.callID, cseq, method))
}
