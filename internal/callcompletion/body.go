// Package callcompletion is the wire side of SIP call completion (RFC 6910,
// the "call-completion" event package): the application/call-completion
// body of its NOTIFYs, the Call-Info purpose=call-completion parameter of a
// failed call's responses, the minimal PIDF an agent PUBLISHes to suspend
// and resume (RFC 6910 s9, RFC 3863), the PUBLISH handler of the monitor
// (RFC 3903), and the mapping between these and the engine's PeerMessage.
// The engine decides; this package only translates. Everything parsed here
// comes from the network: hostile input is an error, never a panic.
package callcompletion

import (
	"errors"
	"fmt"
	"strings"
)

// ContentType of the NOTIFY body (RFC 6910 s11).
const ContentType = "application/call-completion"

// EventPackage is the Event header value of SUBSCRIBE/NOTIFY (RFC 6910 s11).
const EventPackage = "call-completion"

// MaxBody bounds every body this package parses: the largest legitimate
// one is a few hundred bytes.
const MaxBody = 4096

// State is the cc-state of a NOTIFY body (RFC 6910 s11.2.2).
type State string

const (
	Queued State = "queued" // the request is in the callee's queue
	Ready  State = "ready"  // the callee is available: make the CC call now
)

// Body is an application/call-completion body (RFC 6910 s11.2.2).
type Body struct {
	State State
	// URI is the cc-URI: where the agent sends the CC call and its
	// PUBLISHes. Empty when the body has none.
	URI string
	// Retention: cc-service-retention, the monitor keeps the request
	// when the CC call fails (RFC 6910 s11.2.2, s12).
	Retention bool
}

var errBody = errors.New("call-completion body")

// ParseBody reads an application/call-completion body. Lines are
// "name: value" (HCOLON: whitespace may precede the colon); names are
// case-insensitive; unknown lines are ignored (s11.2.2: extensible). The
// cc-URI may come as "cc-URI:" or as "URI:", both forms appear in the RFC.
// A body without cc-state, or with an unknown one, is an error.
func ParseBody(b []byte) (Body, error) {
	if len(b) > MaxBody {
		return Body{}, fmt.Errorf("%w: %d bytes, more than %d", errBody, len(b), MaxBody)
	}
	var body Body
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return Body{}, fmt.Errorf("%w: line without a colon", errBody)
		}
		value = strings.TrimSpace(value)
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "cc-state":
			switch State(strings.ToLower(value)) {
			case Queued:
				body.State = Queued
			case Ready:
				body.State = Ready
			default:
				return Body{}, fmt.Errorf("%w: unknown cc-state %q", errBody, truncate(value))
			}
		case "cc-uri", "uri":
			u, err := checkURI(value)
			if err != nil {
				return Body{}, fmt.Errorf("%w: %v", errBody, err)
			}
			body.URI = u
		case "cc-service-retention":
			body.Retention = strings.EqualFold(value, "true")
		}
	}
	if body.State == "" {
		return Body{}, fmt.Errorf("%w: no cc-state", errBody)
	}
	return body, nil
}

// Bytes is the body as sent: the RFC's "cc-URI:" form, CRLF lines.
func (b Body) Bytes() []byte {
	var s strings.Builder
	s.WriteString("cc-state: " + string(b.State) + "\r\n")
	if b.URI != "" {
		s.WriteString("cc-URI: " + b.URI + "\r\n")
	}
	if b.Retention {
		s.WriteString("cc-service-retention: true\r\n")
	}
	return []byte(s.String())
}

// checkURI accepts a sip: or sips: URI, in angle brackets or not, with no
// whitespace or control characters in it, and returns it without brackets.
func checkURI(v string) (string, error) {
	if strings.HasPrefix(v, "<") {
		end := strings.IndexByte(v, '>')
		if end < 0 {
			return "", errors.New("URI without its closing '>'")
		}
		v = v[1:end]
	}
	if len(v) > 512 {
		return "", errors.New("URI too long")
	}
	l := strings.ToLower(v)
	if !strings.HasPrefix(l, "sip:") && !strings.HasPrefix(l, "sips:") {
		return "", fmt.Errorf("not a SIP URI: %q", truncate(v))
	}
	if rest := v[strings.IndexByte(v, ':')+1:]; rest == "" {
		return "", errors.New("empty SIP URI")
	}
	for _, c := range v {
		if c <= ' ' || c == 0x7f || c == '<' || c == '>' || c == '"' {
			return "", fmt.Errorf("bad character in URI %q", truncate(v))
		}
	}
	return v, nil
}

// truncate keeps quoted hostile values short in errors (and so in logs).
func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
