package auth

import (
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/icholy/digest"

	"github.com/callbackd/callbackd/internal/throttle"
)

const regURI = "sip:127.0.0.1"

// answerFor computes the Authorization value a phone sends for one of the
// challenges (by algorithm) with nonce-count nc.
func answerFor(t *testing.T, a *Authenticator, alg, method, uri, user, password string, nc int) string {
	t.Helper()
	for _, ch := range a.Challenges(false) {
		c, err := digest.ParseChallenge(ch)
		if err != nil {
			t.Fatal(err)
		}
		if c.Algorithm != alg {
			continue
		}
		cred, err := digest.Digest(c, digest.Options{Method: method, URI: uri, Username: user, Password: password, Count: nc, Cnonce: "abc"})
		if err != nil {
			t.Fatal(err)
		}
		return cred.String()
	}
	t.Fatalf("no %s challenge", alg)
	return ""
}

// recount changes the nonce-count of credentials, recomputing the answer
// with the password (what a phone reusing a nonce does).
func recount(t *testing.T, header, method, password string, nc int) string {
	t.Helper()
	c, err := digest.ParseCredentials(header)
	if err != nil {
		t.Fatal(err)
	}
	chal := &digest.Challenge{Realm: c.Realm, Nonce: c.Nonce, Algorithm: c.Algorithm, QOP: []string{"auth"}}
	cred, err := digest.Digest(chal, digest.Options{Method: method, URI: c.URI, Username: c.Username, Password: password, Count: nc, Cnonce: c.Cnonce})
	if err != nil {
		t.Fatal(err)
	}
	return cred.String()
}

var passwords = func(u string) (string, bool) {
	return map[string]string{"1001": "demo1001"}[u], u == "1001"
}

func newAt(now *time.Time) *Authenticator {
	a := New("callbackd")
	a.now = func() time.Time { return *now }
	return a
}

func TestB7_DigestVerify(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	a := newAt(&now)
	ok := answerFor(t, a, "MD5", "REGISTER", regURI, "1001", "demo1001", 1)
	if user, err := a.Verify(ok, "REGISTER", regURI, passwords); err != nil || user != "1001" {
		t.Fatalf("right password: %q %v", user, err)
	}
	if _, err := a.Verify(answerFor(t, a, "MD5", "REGISTER", regURI, "1001", "nope", 1), "REGISTER", regURI, passwords); !errors.Is(err, ErrBadPassword) {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := a.Verify(answerFor(t, a, "MD5", "REGISTER", regURI, "9999", "x", 1), "REGISTER", regURI, passwords); !errors.Is(err, ErrUnknownUser) {
		t.Fatalf("unknown user: %v", err)
	}
	inv := answerFor(t, a, "MD5", "REGISTER", regURI, "1001", "demo1001", 1)
	if _, err := a.Verify(inv, "INVITE", regURI, passwords); !errors.Is(err, ErrBadPassword) {
		t.Fatalf("credentials for another method: %v", err)
	}
	other := New("callbackd")
	if _, err := a.Verify(answerFor(t, other, "MD5", "REGISTER", regURI, "1001", "demo1001", 1), "REGISTER", regURI, passwords); !errors.Is(err, ErrNonce) {
		t.Fatalf("foreign nonce: %v", err)
	}
	if _, err := a.Verify(answerFor(t, New("elsewhere"), "MD5", "REGISTER", regURI, "1001", "demo1001", 1), "REGISTER", regURI, passwords); !errors.Is(err, ErrRealm) {
		t.Fatalf("other realm: %v", err)
	}
	for _, bad := range []string{"", "Basic abc", "Digest", `Digest username="1001"`} {
		if _, err := a.Verify(bad, "REGISTER", regURI, passwords); err == nil {
			t.Fatalf("%q accepted", bad)
		}
	}
}

// A right answer is accepted once: the same nonce-count again is a replay;
// a higher count with the same nonce is a phone reusing its challenge.
func TestB7_DigestNonceCountReplay(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	a := newAt(&now)
	h := answerFor(t, a, "MD5", "REGISTER", regURI, "1001", "demo1001", 1)
	if _, err := a.Verify(h, "REGISTER", regURI, passwords); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Verify(h, "REGISTER", regURI, passwords); !errors.Is(err, ErrReplay) {
		t.Fatalf("replayed header: %v, want ErrReplay", err)
	}
	if _, err := a.Verify(recount(t, h, "REGISTER", "demo1001", 2), "REGISTER", regURI, passwords); err != nil {
		t.Fatalf("nc=2 on the same nonce: %v", err)
	}
	if _, err := a.Verify(recount(t, h, "REGISTER", "demo1001", 2), "REGISTER", regURI, passwords); !errors.Is(err, ErrReplay) {
		t.Fatalf("nc=2 again: %v, want ErrReplay", err)
	}
	// Without qop (RFC 2069) there is no count: refused.
	noQOP := strings.Replace(recount(t, h, "REGISTER", "demo1001", 3), "qop=auth", "", 1)
	if _, err := a.Verify(noQOP, "REGISTER", regURI, passwords); !errors.Is(err, ErrMalformed) {
		t.Fatalf("no qop: %v, want ErrMalformed", err)
	}
}

// Credentials computed for one Request-URI do not act on another.
func TestB7_DigestURIBinding(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	a := newAt(&now)
	h := answerFor(t, a, "MD5", "INVITE", "sip:1002@127.0.0.1:5060", "1001", "demo1001", 1)
	if _, err := a.Verify(h, "INVITE", "sip:00442071234567@127.0.0.1:5060", passwords); !errors.Is(err, ErrURI) {
		t.Fatalf("other Request-URI: %v, want ErrURI", err)
	}
	if _, err := a.Verify(h, "INVITE", "sip:1002@127.0.0.1;transport=udp", passwords); err != nil {
		t.Fatalf("same resource (default port, params): %v", err)
	}
	for _, c := range []struct {
		a, b string
		same bool
	}{
		{"sip:1002@127.0.0.1:5060", "sip:1002@127.0.0.1", true},
		{"sip:1002@EXAMPLE.com", "sip:1002@example.com:5060;transport=tcp", true},
		{"sip:1002@127.0.0.1", "sip:*21004412345@127.0.0.1", false},
		{"sip:127.0.0.1:5070", "sip:127.0.0.1:5071", false},
		{"sip:1002@127.0.0.1", "sips:1002@127.0.0.1", false},
		{"garbage", "sip:1002@127.0.0.1", false},
	} {
		if got := SameURI(c.a, c.b); got != c.same {
			t.Errorf("SameURI(%q, %q) = %v", c.a, c.b, got)
		}
	}
}

// SHA-256 (RFC 8760) is offered beside MD5 when configured (MD5 alone by
// default, for the phones that fail on it) and accepted.
func TestB7_DigestSHA256(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	a := newAt(&now)
	if cs := a.Challenges(false); len(cs) != 1 || !strings.Contains(cs[0], "algorithm=MD5") {
		t.Fatalf("default challenges %q, want MD5 alone", cs)
	}
	a = New("callbackd", "SHA-256", "MD5")
	a.now = func() time.Time { return now }
	cs := a.Challenges(false)
	if len(cs) != 2 || !strings.Contains(cs[0], "algorithm=SHA-256") || !strings.Contains(cs[1], "algorithm=MD5") {
		t.Fatalf("challenges %q, want SHA-256 then MD5", cs)
	}
	for _, c := range cs {
		if !strings.Contains(c, `qop="auth"`) {
			t.Fatalf("challenge without qop=auth: %s", c)
		}
	}
	h := answerFor(t, a, "SHA-256", "REGISTER", regURI, "1001", "demo1001", 1)
	if !strings.Contains(h, "SHA-256") {
		t.Fatalf("answer %s", h)
	}
	if _, err := a.Verify(h, "REGISTER", regURI, passwords); err != nil {
		t.Fatalf("SHA-256: %v", err)
	}
	if _, err := a.Verify(answerFor(t, a, "SHA-256", "REGISTER", regURI, "1001", "bad", 1), "REGISTER", regURI, passwords); !errors.Is(err, ErrBadPassword) {
		t.Fatalf("SHA-256 wrong password: %v", err)
	}
}

// An old nonce with the right password is stale (a fresh challenge marked
// stale=true); with a wrong one it is a wrong password.
func TestB7_DigestStale(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	a := newAt(&now)
	h := answerFor(t, a, "MD5", "REGISTER", regURI, "1001", "demo1001", 1)
	bad := answerFor(t, a, "MD5", "REGISTER", regURI, "1001", "nope", 1)
	now = now.Add(NonceLifetime + time.Second)
	if _, err := a.Verify(h, "REGISTER", regURI, passwords); !errors.Is(err, ErrStale) {
		t.Fatalf("old nonce: %v, want ErrStale", err)
	}
	if _, err := a.Verify(bad, "REGISTER", regURI, passwords); !errors.Is(err, ErrBadPassword) {
		t.Fatalf("old nonce, wrong password: %v", err)
	}
	if d := a.Check(Attempt{Header: h, Method: "REGISTER", URI: regURI, Password: passwords}); !d.Challenge || !d.Stale {
		t.Fatalf("Check on a stale nonce: %+v", d)
	}
	for _, c := range a.Challenges(true) {
		if !strings.Contains(c, "stale=true") {
			t.Fatalf("stale challenge %s", c)
		}
	}
}

// The nonce-count table stays bounded; a nonce whose entry was dropped is
// never accepted again.
func TestB7_DigestNonceTableBounded(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	a := newAt(&now)
	first := answerFor(t, a, "MD5", "REGISTER", regURI, "1001", "demo1001", 1)
	if _, err := a.Verify(first, "REGISTER", regURI, passwords); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < MaxNonces+10; i++ {
		now = now.Add(time.Microsecond)
		n := a.nonce(now)
		if err := a.count(n, now, 1); err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
	}
	if len(a.used) > MaxNonces || len(a.order) > MaxNonces {
		t.Fatalf("table has %d entries", len(a.used))
	}
	if _, err := a.Verify(recount(t, first, "REGISTER", "demo1001", 2), "REGISTER", regURI, passwords); !errors.Is(err, ErrStale) {
		t.Fatalf("dropped nonce: %v, want ErrStale", err)
	}
}

// Check: unknown and known users get the same answers; guessing is
// throttled; a registered phone's own source does not lock its account.
func TestB7_CheckThrottle(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	a := newAt(&now)
	a.Guard = throttle.NewGuard(throttle.Config{Free: 3}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	a.Guard.Now = func() time.Time { return now }
	try := func(user, pw, source string) Decision {
		return a.Check(Attempt{Header: answerFor(t, a, "MD5", "REGISTER", regURI, user, pw, 1), Method: "REGISTER", URI: regURI,
			Source: source, Password: passwords, Home: func(u string) bool { return source == "10.0.0.1:5060" && u == "1001" }})
	}
	if d := a.Check(Attempt{Method: "REGISTER", URI: regURI, Password: passwords}); !d.Challenge {
		t.Fatalf("no header: %+v", d)
	}
	u, k := try("9999", "x", "10.0.0.9:1"), try("1001", "x", "10.0.0.8:1")
	if !u.Forbidden || !k.Forbidden || u.Reason != k.Reason {
		t.Fatalf("unknown %+v vs known %+v", u, k)
	}
	for i := 0; i < 6; i++ {
		try("1001", "guess", "10.0.0.7:1")
	}
	if d := try("1001", "demo1001", "10.0.0.7:2"); !d.Forbidden || d.Reason != "throttled" {
		t.Fatalf("right password from a blocked source: %+v", d)
	}
	if d := try("1001", "demo1001", "10.0.0.6:1"); !d.Forbidden {
		t.Fatalf("right password for a blocked account from elsewhere: %+v", d)
	}
	if d := try("1001", "demo1001", "10.0.0.1:5060"); !d.OK {
		t.Fatalf("the phone's own source: %+v", d)
	}
}

func FuzzVerify(f *testing.F) {
	a := New("callbackd", "SHA-256", "MD5")
	f.Add(`Digest username="1001", realm="callbackd", nonce="AAAA", uri="sip:x", response="00", qop=auth, nc=00000001, cnonce="x"`)
	f.Add(answerFor(&testing.T{}, a, "SHA-256", "INVITE", "sip:1002@127.0.0.1", "1001", "pw", 1))
	f.Add(`Digest username="1001", realm="callbackd", nonce="` + a.nonce(time.Now()) + `", uri="sip:1002@[::1]:5060", response="0", algorithm=SHA-256, qop=auth, nc=ffffffff, cnonce=""`)
	f.Fuzz(func(t *testing.T, h string) {
		user, err := a.Verify(h, "INVITE", "sip:1002@127.0.0.1", func(string) (string, bool) { return "pw", true })
		if err == nil && user == "" {
			t.Fatalf("accepted without a user: %q", h)
		}
		SameURI(h, "sip:1002@127.0.0.1")
	})
}

// Of several credentials (one per realm, RFC 3261 22.3) ours is checked.
func TestB7_PickOurRealm(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	a := newAt(&now)
	ours := answerFor(t, a, "MD5", "INVITE", "sip:1002@127.0.0.1", "1001", "demo1001", 1)
	theirs := answerFor(t, New("upstream"), "MD5", "INVITE", "sip:1002@127.0.0.1", "x", "y", 1)
	if got := a.Pick([]string{theirs, ours}); got != ours {
		t.Fatalf("Pick = %q, want ours", got)
	}
	if got := a.Pick([]string{theirs}); got != theirs {
		t.Fatalf("Pick with none of ours = %q, want the first", got)
	}
	if got := a.Pick(nil); got != "" {
		t.Fatalf("Pick(nil) = %q", got)
	}
}
