package sipserver

import "testing"

// messageKind labels the SIP message counters (F37): method or status.
func TestMessageKind(t *testing.T) {
	for msg, want := range map[string]string{
		"INVITE sip:1002@x SIP/2.0\r\n": "INVITE",
		"SIP/2.0 486 Busy Here\r\n":     "486",
		"SIP/2.0 99 Odd\r\n":            "",
		"FOO sip:x SIP/2.0\r\n":         "other",
		"\r\n\r\n":                      "",
		"":                              "",
		" INVITE":                       "",
	} {
		if got := messageKind([]byte(msg)); got != want {
			t.Errorf("messageKind(%q) = %q, want %q", msg, got, want)
		}
	}
}
