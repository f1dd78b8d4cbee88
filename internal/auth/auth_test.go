package auth

import (
	"errors"
	"testing"
	"time"

	"github.com/icholy/digest"
)

// answer computes the Authorization value a phone sends for a challenge.
func answer(t *testing.T, challenge, user, password string) string {
	t.Helper()
	c, err := digest.ParseChallenge(challenge)
	if err != nil {
		t.Fatal(err)
	}
	cred, err := digest.Digest(c, digest.Options{Method: "REGISTER", URI: "sip:127.0.0.1", Username: user, Password: password, Count: 1})
	if err != nil {
		t.Fatal(err)
	}
	return cred.String()
}

func TestVerify(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	a := New("callbackd")
	a.now = func() time.Time { return now }
	passwords := func(u string) (string, bool) { return map[string]string{"1001": "demo1001"}[u], u == "1001" }

	ok := answer(t, a.Challenge(false), "1001", "demo1001")
	if user, err := a.Verify(ok, "REGISTER", passwords); err != nil || user != "1001" {
		t.Fatalf("right password: %q %v", user, err)
	}
	if _, err := a.Verify(answer(t, a.Challenge(false), "1001", "nope"), "REGISTER", passwords); !errors.Is(err, ErrBadPassword) {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := a.Verify(answer(t, a.Challenge(false), "9999", "x"), "REGISTER", passwords); !errors.Is(err, ErrUnknownUser) {
		t.Fatalf("unknown user: %v", err)
	}
	if _, err := a.Verify(ok, "INVITE", passwords); !errors.Is(err, ErrBadPassword) {
		t.Fatalf("credentials for another method: %v", err)
	}
	// A nonce of another server (or before a restart: new key) is refused
	// without judging the password; an old one of ours is stale.
	other := New("callbackd")
	if _, err := a.Verify(answer(t, other.Challenge(false), "1001", "demo1001"), "REGISTER", passwords); !errors.Is(err, ErrNonce) {
		t.Fatalf("foreign nonce: %v", err)
	}
	now = now.Add(NonceLifetime + time.Second)
	if _, err := a.Verify(ok, "REGISTER", passwords); !errors.Is(err, ErrStale) {
		t.Fatalf("old nonce: %v", err)
	}
	if _, err := a.Verify(answer(t, New("elsewhere").Challenge(false), "1001", "demo1001"), "REGISTER", passwords); !errors.Is(err, ErrRealm) {
		t.Fatalf("other realm: %v", err)
	}
	for _, bad := range []string{"", "Basic abc", "Digest", `Digest username="1001"`} {
		if _, err := a.Verify(bad, "REGISTER", passwords); err == nil {
			t.Fatalf("%q accepted", bad)
		}
	}
}

func FuzzVerify(f *testing.F) {
	a := New("callbackd")
	f.Add(`Digest username="1001", realm="callbackd", nonce="AAAA", uri="sip:x", response="00", qop=auth, nc=00000001, cnonce="x"`)
	f.Fuzz(func(t *testing.T, h string) {
		a.Verify(h, "REGISTER", func(string) (string, bool) { return "pw", true })
	})
}
