package b2bua

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/callbackd/callbackd/internal/sipmsg"
)

// TestB7_ScreenResponses: what a device's response to our INVITE becomes
// before the call acts on it (RFC 3261 7.2, 8.1.3.2, 12.1.2, 21.5.3).
func TestB7_ScreenResponses(t *testing.T) {
	var logs bytes.Buffer
	b := &B2BUA{log: slog.New(slog.NewTextHandler(&logs, nil))}
	inv := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", User: "1002", Host: "127.0.0.1"})
	inv.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: "1002", Host: "example.com"}, Params: sip.NewParams()})
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "1001", Host: "example.com"}, Params: sip.NewParams()}
	from.Params.Add("tag", "a")
	inv.AppendHeader(from)
	inv.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: sip.INVITE})
	callID := sip.CallIDHeader("x")
	inv.AppendHeader(&callID)
	f := &fork{leg: &leg{Dialog: &sipmsg.Dialog{CallID: "x"}}, invite: inv}
	res := func(code int, tag string) *sip.Response {
		r := sip.NewResponseFromRequest(inv, code, "R", nil)
		r.To().Params.Remove("tag") // sipgo adds one to a 2xx
		if tag != "" {
			r.To().Params.Add("tag", tag)
		}
		return r
	}
	for _, tc := range []struct {
		code int
		tag  string
		want int // 0: dropped
	}{
		{0, "t", 0}, {99, "t", 0}, {100, "", 100}, {180, "t", 180}, {183, "", 183},
		{200, "t", 200}, {200, "", 502}, {299, "", 502}, {486, "t", 486}, {699, "t", 699},
		{700, "t", 502}, {999, "t", 502}, {65535, "", 502},
	} {
		warned := false
		got := b.screen(f, res(tc.code, tc.tag), &warned)
		switch {
		case tc.want == 0 && got != nil:
			t.Errorf("%d: got %d, want it dropped", tc.code, got.StatusCode)
		case tc.want != 0 && (got == nil || got.StatusCode != tc.want):
			t.Errorf("%d tag %q: got %v, want %d", tc.code, tc.tag, got, tc.want)
		case warned != (tc.want != tc.code || tc.want == 0):
			t.Errorf("%d: warned %v", tc.code, warned)
		}
	}
	// Logged once per device, however many bad responses it sends.
	logs.Reset()
	warned := false
	for range 5 {
		b.screen(f, res(99, "t"), &warned)
	}
	if n := strings.Count(logs.String(), "invalid response from a device"); n != 1 {
		t.Fatalf("%d log lines for 5 bad responses, want 1", n)
	}
}
