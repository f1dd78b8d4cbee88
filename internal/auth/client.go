package auth

import (
	"io"
	"strings"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

// Answer is the client side: the header that answers the digest
// challenge of res, a 401 (WWW-Authenticate -> Authorization) or a 407
// (Proxy-Authenticate -> Proxy-Authorization), for a request of method
// to uri (its Request-URI), without a body, with user's password (RFC 3261 22.2, 22.3;
// RFC 7616 3.4 with qop=auth). Of several challenges it answers the
// first whose algorithm it supports (RFC 8760 2.4: the server lists them
// in its order of preference). ok is false when res challenges nothing
// it can answer.
func Answer(res *sip.Response, method sip.RequestMethod, uri, user, password string) (h sip.Header, ok bool) {
	challenge, answer := "WWW-Authenticate", "Authorization"
	switch res.StatusCode {
	case 401:
	case 407:
		challenge, answer = "Proxy-Authenticate", "Proxy-Authorization"
	default:
		return nil, false
	}
	for _, ch := range res.GetHeaders(challenge) {
		c, err := digest.ParseChallenge(ch.Value())
		if err != nil {
			continue
		}
		c.Algorithm = strings.ToUpper(c.Algorithm)
		if !digest.CanDigest(c) {
			continue
		}
		cred, err := digest.Digest(c, digest.Options{Method: string(method), URI: uri, Username: user, Password: password,
			GetBody: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("")), nil }})
		if err != nil {
			continue
		}
		return sip.NewHeader(answer, cred.String()), true
	}
	return nil, false
}
