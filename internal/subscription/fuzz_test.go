package subscription

import (
	"strings"
	"testing"
)

// FuzzHeaders feeds the header values the layer reads from the network
// (Subscription-State, Event, RFC 6665 8.2) to their parsers: never a
// panic, and what is accepted is well formed.
func FuzzHeaders(f *testing.F) {
	for _, s := range []string{
		"active;expires=3600", "pending", "terminated;reason=timeout", "terminated;reason=deactivated;retry-after=20",
		"terminated;reason=rejected", "Active ; Expires = 5", "active;expires=-1", "active;expires=99999999999999",
		"", ";", "dialog;id=7", "dialog ; ID = x;foo", "call-completion", "terminated;retry-after=;reason",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		st, ok := ParseState(v)
		if ok {
			if st.Value == "" || strings.ContainsAny(st.Value, " \t,=;") {
				t.Fatalf("accepted state value %q", st.Value)
			}
			if st.Expires < -1 || st.RetryAfter < -1 {
				t.Fatalf("negative interval %+v", st)
			}
		}
		event, id := eventType(v)
		if strings.Contains(event, ";") || strings.Contains(id, ";") {
			t.Fatalf("event %q id %q", event, id)
		}
	})
}
