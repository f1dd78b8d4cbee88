package callcompletion

import (
	"errors"
	"fmt"
	"strings"
)

// Service is the "m" parameter: which call completion service a failed
// call offers or a SUBSCRIBE asks for (RFC 6910 s11.1, s12: BS busy
// subscriber, NR no reply, NL not logged in).
type Service string

const (
	BS Service = "BS" // CCBS
	NR Service = "NR" // CCNR
	NL Service = "NL" // CCNL
)

// ParseService reads an "m" value; missing or unknown gives "" (RFC 6910
// s11.1: the monitor then chooses the service itself).
func ParseService(v string) Service {
	switch s := Service(strings.ToUpper(strings.Trim(v, `"`))); s {
	case BS, NR, NL:
		return s
	}
	return ""
}

// CallInfo is a Call-Info value with purpose=call-completion (RFC 6910
// s7.1, s11.1): where to subscribe (the cc-URI) and the service offered.
type CallInfo struct {
	URI string
	M   Service // "" when the m parameter is missing or unknown
}

// String is the header value: <uri>;purpose=call-completion;m=XX.
func (c CallInfo) String() string {
	s := "<" + c.URI + ">;purpose=call-completion"
	if c.M != "" {
		s += ";m=" + string(c.M)
	}
	return s
}

var errCallInfo = errors.New("Call-Info")

// ParseCallInfo finds the purpose=call-completion entry in a Call-Info
// header value (RFC 3261 20.9: comma-separated <uri>;params entries;
// commas inside <> or quotes do not separate). ok is false when there is
// none; err when the call-completion entry itself is malformed.
func ParseCallInfo(value string) (c CallInfo, ok bool, err error) {
	if len(value) > MaxBody {
		return CallInfo{}, false, fmt.Errorf("%w: %d bytes", errCallInfo, len(value))
	}
	for _, entry := range splitOutside(value, ',') {
		entry = strings.TrimSpace(entry)
		if !strings.HasPrefix(entry, "<") {
			continue // not an entry we can read; another purpose perhaps
		}
		end := strings.IndexByte(entry, '>')
		if end < 0 {
			continue
		}
		params := parseParams(entry[end+1:])
		if !strings.EqualFold(params["purpose"], "call-completion") {
			continue
		}
		u, err := checkURI(entry[:end+1])
		if err != nil {
			return CallInfo{}, false, fmt.Errorf("%w: %v", errCallInfo, err)
		}
		return CallInfo{URI: u, M: ParseService(params["m"])}, true, nil
	}
	return CallInfo{}, false, nil
}

// splitOutside splits s at sep where sep is not inside <...> or "...".
func splitOutside(s string, sep byte) []string {
	var parts []string
	inAngle, inQuote, start := false, false, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case inQuote:
			if c == '\\' {
				i++
			} else if c == '"' {
				inQuote = false
			}
		case c == '"':
			inQuote = true
		case c == '<':
			inAngle = true
		case c == '>':
			inAngle = false
		case c == sep && !inAngle:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

// parseParams reads ";name=value;name" into lower-case names; the first
// occurrence of a name wins.
func parseParams(s string) map[string]string {
	p := map[string]string{}
	for _, kv := range splitOutside(s, ';') {
		name, value, _ := strings.Cut(kv, "=")
		name = strings.ToLower(strings.TrimSpace(name))
		if name == "" {
			continue
		}
		if _, dup := p[name]; !dup {
			p[name] = strings.Trim(strings.TrimSpace(value), `"`)
		}
	}
	return p
}
