// Package auth implements SIP digest authentication: the server side
// (RFC 3261 section 22, RFC 7616 with qop=auth, RFC 8760 for SHA-256),
// where every request that acts for a line proves it (docs/security.md),
// and the client's answer to another server's challenge (Answer).
//
// What a right answer proves, and what it does not:
//   - it is bound to the request: the digest covers the method, and the
//     uri= it covers must be the request's Request-URI (RFC 3261 22.4,
//     RFC 7616 3.4.6), so credentials computed for one request cannot be
//     replayed on another number;
//   - it is used once: qop=auth is required, and the highest nonce-count
//     seen for each nonce is kept; a count not above it is a replay and gets
//     a fresh challenge, never success (RFC 7616 3.4, "nc");
//   - it is recent: a nonce is accepted for NonceLifetime; a right answer
//     with an older nonce gets a fresh challenge marked stale=true, which a
//     phone answers without asking its user (RFC 7616 3.3).
//
// Nonces are an issue time and an HMAC over it with a key made at start-up:
// issuing one stores nothing, so unauthenticated requests cannot grow any
// table. Only nonces that carried a right answer enter the bounded
// nonce-count table; a restart makes every old nonce foreign (a fresh
// challenge).
package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"

	"github.com/callbackd/callbackd/internal/sipmsg"
	"github.com/callbackd/callbackd/internal/throttle"
)

// NonceLifetime is how long a nonce is accepted; older ones are answered
// with a new challenge carrying stale=true.
const NonceLifetime = 5 * time.Minute

// MaxNonces bounds the nonce-count table (nonces that carried a right
// answer within NonceLifetime). When it is full the oldest entry goes and
// every nonce issued before it counts as stale: never accepted again.
const MaxNonces = 20_000

// Algorithms are those offered by default. RFC 8760 2.3 has the server
// send one challenge per algorithm, in order of preference, and the client
// take the first it supports; but common clients fail on any challenge
// with an algorithm they do not know (baresip 1.0 / libre 1.1 as in Debian
// 12 gives up with ENOSYS, SIPp 3.6 errors), so MD5 alone is the default
// and [sip] digest_algorithms = ["SHA-256", "MD5"] turns SHA-256 on for
// phones that choose correctly. Both are always accepted in answers to a
// challenge that offered them.
var Algorithms = []string{"MD5"}

// Errors returned by Verify. ErrStale means the password was right but the
// nonce expired: answer with a fresh challenge marked stale.
var (
	ErrNoCredentials = errors.New("no credentials")
	ErrMalformed     = errors.New("malformed credentials")
	ErrRealm         = errors.New("wrong realm")
	ErrNonce         = errors.New("nonce not issued by this server")
	ErrStale         = errors.New("stale nonce")
	ErrReplay        = errors.New("nonce count not above the last one (replay)")
	ErrURI           = errors.New("credentials for another Request-URI")
	ErrUnknownUser   = errors.New("unknown user")
	ErrBadPassword   = errors.New("wrong password")
)

// Authenticator issues challenges and checks credentials for one realm.
type Authenticator struct {
	realm string
	algs  []string // offered, in order
	key   []byte
	now   func() time.Time

	// Guard, when set, throttles failed authentications (kind "sip").
	Guard *throttle.Guard

	mu    sync.Mutex
	used  map[string]*use // nonce -> highest nc accepted
	order []string        // nonces of used, oldest first (a queue)
	floor time.Time       // nonces issued before it are stale (table overflowed)
}

type use struct {
	issued time.Time
	nc     int
}

// New returns an Authenticator with a random nonce key, offering algs
// (Algorithms when none; each one of Algorithms).
func New(realm string, algs ...string) *Authenticator {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		panic("auth: no randomness: " + err.Error())
	}
	if len(algs) == 0 {
		algs = Algorithms
	}
	return &Authenticator{realm: realm, algs: algs, key: key, now: time.Now, used: map[string]*use{}}
}

// Realm is the realm named in challenges.
func (a *Authenticator) Realm() string { return a.realm }

// Challenges returns the values of the WWW-Authenticate / Proxy-Authenticate
// headers of a challenge (RFC 3261 22.1, 22.3), one per algorithm of
// the offered algorithms, in order, all with the same nonce.
func (a *Authenticator) Challenges(stale bool) []string {
	n := a.nonce(a.now())
	out := make([]string, 0, len(a.algs))
	for _, alg := range a.algs {
		c := digest.Challenge{Realm: a.realm, Nonce: n, Algorithm: alg, QOP: []string{"auth"}, Stale: stale}
		out = append(out, c.String())
	}
	return out
}

// Headers returns the challenge as headers named name (WWW-Authenticate
// for 401, Proxy-Authenticate for 407).
func (a *Authenticator) Headers(name string, stale bool) []sip.Header {
	var hs []sip.Header
	for _, c := range a.Challenges(stale) {
		hs = append(hs, sip.NewHeader(name, c))
	}
	return hs
}

func (a *Authenticator) nonce(t time.Time) string {
	var b [8 + 16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(t.UnixNano()))
	m := hmac.New(sha256.New, a.key)
	m.Write(b[:8])
	copy(b[8:], m.Sum(nil))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// checkNonce reports whether the nonce is ours, when it was issued, and
// whether it is too old.
func (a *Authenticator) checkNonce(n string) (ok bool, issued time.Time, stale bool) {
	b, err := base64.RawURLEncoding.DecodeString(n)
	if err != nil || len(b) != 24 {
		return false, time.Time{}, false
	}
	m := hmac.New(sha256.New, a.key)
	m.Write(b[:8])
	if !hmac.Equal(m.Sum(nil)[:16], b[8:]) {
		return false, time.Time{}, false
	}
	issued = time.Unix(0, int64(binary.BigEndian.Uint64(b[:8])))
	age := a.now().Sub(issued)
	return true, issued, age > NonceLifetime || age < -time.Minute
}

// username returns the user named by an Authorization header without
// checking it, so that Check can look up whether the account is throttled
// before the digest is verified.
func username(header string) (string, error) {
	if header == "" {
		return "", ErrNoCredentials
	}
	c, err := digest.ParseCredentials(header)
	if err != nil || c.Username == "" {
		return "", ErrMalformed
	}
	return c.Username, nil
}

// Pick returns, of the values of a request's Authorization (or
// Proxy-Authorization) headers, the one for this realm: a request may carry
// credentials for several (RFC 3261 22.3). When none is ours it is the
// first (it gets a new challenge), and "" when there are none.
func (a *Authenticator) Pick(values []string) string {
	for _, v := range values {
		if c, err := digest.ParseCredentials(v); err == nil && c.Realm == a.realm {
			return v
		}
	}
	if len(values) > 0 {
		return values[0]
	}
	return ""
}

// dummyPassword is what an unknown user's answer is checked against, so
// that an unknown user costs the same work as a known one.
const dummyPassword = "\x00unknown-user\x00"

// Verify checks an Authorization (or Proxy-Authorization) header value for
// a request with the given method and Request-URI (its string form).
// password returns the user's password, or false when the user is unknown.
// On success the nonce's count is recorded: the same header again is a
// replay.
func (a *Authenticator) Verify(header, method, requestURI string, password func(user string) (string, bool)) (string, error) {
	if header == "" {
		return "", ErrNoCredentials
	}
	c, err := digest.ParseCredentials(header)
	if err != nil || c.Username == "" || c.URI == "" || c.Response == "" || c.Userhash {
		return "", ErrMalformed
	}
	if c.Realm != a.realm {
		return c.Username, ErrRealm
	}
	alg := strings.ToUpper(c.Algorithm)
	if alg == "" {
		alg = "MD5" // RFC 7616 3.3: the default
	}
	if !slices.Contains(a.algs, alg) {
		return c.Username, ErrMalformed
	}
	// RFC 7616 3.4: qop=auth is what makes the nonce-count (and so replay
	// protection) part of the answer; RFC 2069 answers without it are refused.
	if c.QOP != "auth" || c.Nc <= 0 || c.Cnonce == "" {
		return c.Username, ErrMalformed
	}
	ok, issued, stale := a.checkNonce(c.Nonce)
	if !ok {
		return c.Username, ErrNonce
	}
	pw, known := password(c.Username)
	if !known {
		pw = dummyPassword
	}
	chal := &digest.Challenge{Realm: a.realm, Nonce: c.Nonce, Algorithm: alg, QOP: []string{"auth"}}
	want, err := digest.Digest(chal, digest.Options{
		Method: method, URI: c.URI, Username: c.Username, Password: pw,
		Count: c.Nc, Cnonce: c.Cnonce,
	})
	if err != nil {
		return c.Username, ErrMalformed
	}
	right := hmac.Equal([]byte(strings.ToLower(want.Response)), []byte(strings.ToLower(c.Response)))
	switch {
	case !known:
		return c.Username, ErrUnknownUser
	case !right:
		return c.Username, ErrBadPassword
	case !SameURI(c.URI, requestURI):
		// Right password, wrong request: credentials seen on the wire for
		// another Request-URI (RFC 3261 22.4: "the server SHOULD check that
		// the URI in the request line and the uri directive refer to the
		// same resource").
		return c.Username, ErrURI
	case stale:
		return c.Username, ErrStale
	}
	return c.Username, a.count(c.Nonce, issued, c.Nc)
}

// count records nonce-count nc for nonce; a count not above the last one
// accepted for it is a replay.
func (a *Authenticator) count(nonce string, issued time.Time, nc int) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if issued.Before(a.floor) {
		return ErrStale // its entry may have been dropped: never trust it again
	}
	if u, ok := a.used[nonce]; ok {
		if nc <= u.nc {
			return ErrReplay
		}
		u.nc = nc
		return nil
	}
	// Drop entries whose nonce is past its life, then the oldest if full.
	cut := a.now().Add(-NonceLifetime)
	for len(a.order) > 0 && (len(a.order) >= MaxNonces || a.used[a.order[0]].issued.Before(cut)) {
		old := a.used[a.order[0]]
		if len(a.order) >= MaxNonces && old.issued.After(a.floor) {
			a.floor = old.issued.Add(time.Nanosecond)
		}
		delete(a.used, a.order[0])
		a.order = a.order[1:]
	}
	if issued.Before(a.floor) {
		return ErrStale
	}
	a.used[nonce] = &use{issued: issued, nc: nc}
	a.order = append(a.order, nonce)
	return nil
}

// SameURI reports whether the uri= of credentials names the same resource
// as the Request-URI: same scheme, user, host (case-insensitive) and port
// (5060 when none is given for sip:). URI parameters are not compared: the
// digest covers the uri= string itself, and clients differ in whether they
// copy ";transport=..." into it.
func SameURI(credURI, requestURI string) bool {
	if credURI == requestURI {
		return true
	}
	var c, r sip.Uri
	if sip.ParseUri(credURI, &c) != nil || sip.ParseUri(requestURI, &r) != nil {
		return false
	}
	port := func(u sip.Uri) int {
		if u.Port != 0 {
			return u.Port
		}
		if strings.EqualFold(u.Scheme, "sips") {
			return 5061
		}
		return 5060
	}
	return strings.EqualFold(c.Scheme, r.Scheme) && c.User == r.User &&
		strings.EqualFold(c.Host, r.Host) && port(c) == port(r)
}

// Attempt is one request's claim to act for a line, to Check.
type Attempt struct {
	Header   string // Authorization / Proxy-Authorization value; "" when none
	Method   string
	URI      string // the Request-URI as sent
	Source   string // the request's source address, ip:port
	Password func(user string) (string, bool)
	// Home, when set, reports whether Source is one of user's registered
	// devices. A failure from there is counted against the source only, not
	// the account: a phone refreshing with the right password is not locked
	// out because someone else guessed at its account (docs/security.md).
	Home func(user string) bool
}

// AttemptOf is the Attempt of req, with the credentials of its headers
// named header ("Authorization" answering a 401, "Proxy-Authorization" a
// 407); of several, the one for our realm (Pick). home is Attempt.Home for
// req's source.
func (a *Authenticator) AttemptOf(req *sip.Request, header string, password func(user string) (string, bool), home func(user, source string) bool) Attempt {
	var values []string
	for _, h := range req.GetHeaders(header) {
		values = append(values, h.Value())
	}
	return Attempt{
		Header: a.Pick(values), Method: string(req.Method), URI: req.Recipient.String(), Source: req.Source(),
		Password: password, Home: func(user string) bool { return home(user, req.Source()) },
	}
}

// Decision is what to answer an Attempt.
type Decision struct {
	User      string // the authenticated user (on success), or the claimed one
	OK        bool
	Challenge bool // answer 401/407 with a fresh challenge (Headers)
	Stale     bool // ... marked stale=true
	Forbidden bool // answer 403 Forbidden, and nothing more
	Reason    string
}

// Check decides on an Attempt: challenge, refuse or accept, with
// throttling (kind "sip"): a blocked source or account gets 403 before its
// credentials are looked at, a wrong password counts, a success forgets.
// Unknown and known users get the same answers for the same work.
func (a *Authenticator) Check(at Attempt) Decision {
	if at.Header == "" {
		return Decision{Challenge: true, Reason: "no credentials"}
	}
	user, err := username(at.Header)
	if err != nil {
		return Decision{Challenge: true, Reason: err.Error()}
	}
	account := user
	if at.Home != nil && at.Home(user) {
		account = ""
	}
	if a.Guard.Blocked("sip", at.Source, account) > 0 {
		return Decision{User: user, Forbidden: true, Reason: "throttled"}
	}
	user, err = a.Verify(at.Header, at.Method, at.URI, at.Password)
	switch {
	case err == nil:
		a.Guard.Succeeded(at.Source, account)
		return Decision{User: user, OK: true}
	case errors.Is(err, ErrStale):
		return Decision{User: user, Challenge: true, Stale: true, Reason: err.Error()}
	case errors.Is(err, ErrBadPassword), errors.Is(err, ErrUnknownUser):
		// One reason for both, on the wire and in the log line: neither
		// tells an unknown account from a known one.
		a.Guard.Failed("sip", at.Source, account, "wrong password")
		return Decision{User: user, Forbidden: true, Reason: "wrong password"}
	case errors.Is(err, ErrURI):
		a.Guard.Failed("sip", at.Source, account, "credentials replayed for another request")
		return Decision{User: user, Forbidden: true, Reason: err.Error()}
	default: // malformed, foreign realm or nonce, replayed count
		return Decision{User: user, Challenge: true, Reason: err.Error()}
	}
}

// Prove is Check for a request that must prove it acts for a line (a
// SUBSCRIBE or PUBLISH, as REGISTER does): it answers 401 with a fresh
// challenge or 403 itself (RFC 3261 s22.2), and says so with ok false.
// The Decision's User is the proven line.
func (a *Authenticator) Prove(tx sip.ServerTransaction, req *sip.Request, password func(user string) (string, bool), home func(user, source string) bool, log *slog.Logger) (d Decision, ok bool) {
	d = a.Check(a.AttemptOf(req, "Authorization", password, home))
	switch {
	case d.Challenge:
		sipmsg.Respond(tx, req, 401, "Unauthorized", log, a.Headers("WWW-Authenticate", d.Stale)...)
		return d, false
	case d.Forbidden:
		log.Debug("request refused", "method", req.Method, "user", d.User, "source", req.Source(), "reason", d.Reason)
		sipmsg.Respond(tx, req, 403, "Forbidden", log)
		return d, false
	}
	return d, true
}
