package auth

import (
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// TestAnswer: our answer to a challenge of our own Authenticator verifies,
// for 401 and 407, SHA-256 first when offered first (RFC 8760); a wrong
// password does not; a response that challenges nothing gets no answer.
func TestAnswer(t *testing.T) {
	const uri = "sip:2001@192.0.2.7:5060"
	pw := func(user string) (string, bool) { return "secret", user == "callbackd" }
	for _, c := range []struct {
		code        int
		name, algs  string
		password    string
		wantUser    string
		wantAnswers bool
	}{
		{401, "WWW-Authenticate", "SHA-256", "secret", "callbackd", true},
		{407, "Proxy-Authenticate", "MD5", "secret", "callbackd", true},
		{401, "WWW-Authenticate", "MD5", "wrong", "", true},
	} {
		a := New("pbx.example", c.algs, "MD5")
		res := sip.NewResponse(c.code, "Challenge")
		for _, h := range a.Headers(c.name, false) {
			res.AppendHeader(h)
		}
		h, ok := Answer(res, sip.SUBSCRIBE, uri, "callbackd", c.password)
		if ok != c.wantAnswers {
			t.Fatalf("%d %s: answered %v", c.code, c.algs, ok)
		}
		want := map[int]string{401: "Authorization", 407: "Proxy-Authorization"}[c.code]
		if h.Name() != want {
			t.Errorf("%d: header %s, want %s", c.code, h.Name(), want)
		}
		user, err := a.Verify(h.Value(), "SUBSCRIBE", uri, pw)
		if (err == nil) != (c.wantUser != "") || (err == nil && user != c.wantUser) {
			t.Errorf("%d %s password %q: verified as %q, %v", c.code, c.algs, c.password, user, err)
		}
		if c.algs == "SHA-256" && !strings.Contains(h.Value(), "algorithm=SHA-256") {
			t.Errorf("answered %s, want the first offered, SHA-256", h.Value())
		}
	}
	if _, ok := Answer(sip.NewResponse(403, "Forbidden"), sip.SUBSCRIBE, uri, "u", "p"); ok {
		t.Error("a 403 answered")
	}
	res := sip.NewResponse(401, "Unauthorized")
	res.AppendHeader(sip.NewHeader("WWW-Authenticate", `Digest realm="x", nonce="n", algorithm=MD6`))
	if _, ok := Answer(res, sip.SUBSCRIBE, uri, "u", "p"); ok {
		t.Error("an unknown algorithm answered")
	}
}

// FuzzAnswer: any challenge from the network gets an answer or none,
// never a panic; an answer is a header of the right name.
func FuzzAnswer(f *testing.F) {
	for _, s := range []string{
		`Digest realm="pbx", nonce="abc", qop="auth", algorithm=SHA-256`,
		`Digest realm="pbx", nonce="abc", qop="auth-int"`,
		`Digest realm="pbx", nonce="abc", algorithm=md5, opaque="o", userhash=true`,
		`Digest realm=, nonce`,
		`Basic realm="x"`,
		``,
	} {
		f.Add(401, s)
		f.Add(407, s)
	}
	f.Fuzz(func(t *testing.T, code int, challenge string) {
		res := sip.NewResponse(code, "Challenge")
		res.AppendHeader(sip.NewHeader("WWW-Authenticate", challenge))
		res.AppendHeader(sip.NewHeader("Proxy-Authenticate", challenge))
		h, ok := Answer(res, sip.SUBSCRIBE, "sip:2001@192.0.2.7", "callbackd", "secret")
		if ok && h.Name() != "Authorization" && h.Name() != "Proxy-Authorization" {
			t.Fatalf("answered with %s", h.Name())
		}
	})
}
