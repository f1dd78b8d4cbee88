// Package auth implements the server side of SIP digest authentication
// (RFC 3261 section 22, RFC 2617 / RFC 7616 with qop=auth).
//
// Nonces are stateless: an issue time and an HMAC over it with a key made at
// start-up. A restart therefore only makes old nonces "stale" (the phone
// retries with the new challenge without asking its user, RFC 2617 3.2.1),
// and no per-nonce table grows under load.
package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strings"
	"time"

	"github.com/icholy/digest"
)

// NonceLifetime is how long a nonce is accepted; older ones are answered
// with a new challenge carrying stale=true.
const NonceLifetime = 5 * time.Minute

// Errors returned by Verify. ErrStale means the password was right but the
// nonce expired: answer with a fresh challenge marked stale.
var (
	ErrNoCredentials = errors.New("no credentials")
	ErrMalformed     = errors.New("malformed credentials")
	ErrRealm         = errors.New("wrong realm")
	ErrNonce         = errors.New("nonce not issued by this server")
	ErrStale         = errors.New("stale nonce")
	ErrUnknownUser   = errors.New("unknown user")
	ErrBadPassword   = errors.New("wrong password")
)

// Authenticator issues challenges and checks credentials for one realm.
type Authenticator struct {
	realm string
	key   []byte
	now   func() time.Time
}

// New returns an Authenticator with a random nonce key.
func New(realm string) *Authenticator {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		panic("auth: no randomness: " + err.Error())
	}
	return &Authenticator{realm: realm, key: key, now: time.Now}
}

// Realm is the realm named in challenges.
func (a *Authenticator) Realm() string { return a.realm }

// Challenge returns the value of a WWW-Authenticate / Proxy-Authenticate
// header (RFC 3261 22.1, 22.3).
func (a *Authenticator) Challenge(stale bool) string {
	c := digest.Challenge{
		Realm:     a.realm,
		Nonce:     a.nonce(a.now()),
		Algorithm: "MD5",
		QOP:       []string{"auth"},
		Stale:     stale,
	}
	return c.String()
}

func (a *Authenticator) nonce(t time.Time) string {
	var b [8 + 16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(t.UnixNano()))
	m := hmac.New(sha256.New, a.key)
	m.Write(b[:8])
	copy(b[8:], m.Sum(nil))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// checkNonce reports whether the nonce is ours, and whether it is too old.
func (a *Authenticator) checkNonce(n string) (ok, stale bool) {
	b, err := base64.RawURLEncoding.DecodeString(n)
	if err != nil || len(b) != 24 {
		return false, false
	}
	m := hmac.New(sha256.New, a.key)
	m.Write(b[:8])
	if !hmac.Equal(m.Sum(nil)[:16], b[8:]) {
		return false, false
	}
	issued := time.Unix(0, int64(binary.BigEndian.Uint64(b[:8])))
	return true, a.now().Sub(issued) > NonceLifetime
}

// Credentials is what Verify learned from a header.
type Credentials struct {
	Username string
}

// Username returns the user named by an Authorization header without
// checking it, so the caller can look the password up.
func Username(header string) (string, error) {
	if header == "" {
		return "", ErrNoCredentials
	}
	c, err := digest.ParseCredentials(header)
	if err != nil || c.Username == "" {
		return "", ErrMalformed
	}
	return c.Username, nil
}

// Verify checks an Authorization (or Proxy-Authorization) header value for
// a request with the given method. password returns the user's password, or
// false when the user is unknown.
func (a *Authenticator) Verify(header, method string, password func(user string) (string, bool)) (string, error) {
	if header == "" {
		return "", ErrNoCredentials
	}
	c, err := digest.ParseCredentials(header)
	if err != nil || c.Username == "" || c.URI == "" || c.Response == "" {
		return "", ErrMalformed
	}
	if c.Realm != a.realm {
		return c.Username, ErrRealm
	}
	switch strings.ToUpper(c.Algorithm) {
	case "", "MD5":
	default:
		return c.Username, ErrMalformed
	}
	ok, stale := a.checkNonce(c.Nonce)
	if !ok {
		return c.Username, ErrNonce
	}
	pw, known := password(c.Username)
	if !known {
		return c.Username, ErrUnknownUser
	}
	chal := &digest.Challenge{Realm: a.realm, Nonce: c.Nonce, Algorithm: c.Algorithm}
	if c.QOP != "" {
		if c.QOP != "auth" {
			return c.Username, ErrMalformed
		}
		chal.QOP = []string{"auth"}
	}
	want, err := digest.Digest(chal, digest.Options{
		Method: method, URI: c.URI, Username: c.Username, Password: pw,
		Count: c.Nc, Cnonce: c.Cnonce,
	})
	if err != nil {
		return c.Username, ErrMalformed
	}
	if !hmac.Equal([]byte(strings.ToLower(want.Response)), []byte(strings.ToLower(c.Response))) {
		return c.Username, ErrBadPassword
	}
	if stale {
		return c.Username, ErrStale
	}
	return c.Username, nil
}
