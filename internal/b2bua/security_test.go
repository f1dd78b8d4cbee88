package b2bua

import (
	"bytes"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"

	"github.com/callbackd/callbackd/internal/media"
	"github.com/callbackd/callbackd/internal/sipmsg"
)

// TestB7_EndpointForeignKeys: a stranger's "5" to an endpoint's port,
// sent before the party sends anything, is not heard; it is counted per
// packet and logged once; the party's own 5 is heard.
func TestB7_EndpointForeignKeys(t *testing.T) {
	udp := func() *net.UDPConn {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	phone, stranger := udp(), udp()
	var logs bytes.Buffer
	var alien atomic.Int64
	b := &B2BUA{cfg: Config{MediaIP: netip.MustParseAddr("127.0.0.1")},
		log: slog.New(slog.NewTextHandler(&logs, nil)), OnForeignRTP: func() { alien.Add(1) }}
	e, err := b.newEndpoint("1001")
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	offer := media.Offer(media.Endpoint{Addr: phone.LocalAddr().(*net.UDPAddr).AddrPort(), Codecs: []media.Codec{media.PCMU}})
	if _, err := e.Answer(offer); err != nil {
		t.Fatal(err)
	}
	e.Start()
	to := e.local.Addr
	press := func(c *net.UDPConn) int {
		evs := media.DigitEvents(5, 60*time.Millisecond, 20*time.Millisecond, 10)
		for i, ev := range evs {
			p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 101, SequenceNumber: uint16(i), Timestamp: 800, SSRC: 7, Marker: i == 0},
				Payload: ev.Marshal(nil)}
			out, _ := p.Marshal()
			if _, err := c.WriteToUDPAddrPort(out, to); err != nil {
				t.Fatal(err)
			}
		}
		return len(evs)
	}
	n := press(stranger) + press(stranger)
	for deadline := time.Now().Add(5 * time.Second); alien.Load() < int64(n); {
		if time.Now().After(deadline) {
			t.Fatalf("%d foreign packets counted, want %d", alien.Load(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case d := <-e.digits:
		t.Fatalf("the stranger's key %q was heard", d)
	default:
	}
	press(phone)
	select {
	case d := <-e.digits:
		if d != '5' {
			t.Fatalf("heard key %q, want 5", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the party's 5 not heard within 5 s")
	}
	if got := strings.Count(logs.String(), "RTP from a foreign source dropped"); got != 1 ||
		!strings.Contains(logs.String(), "source="+stranger.LocalAddr().String()) {
		t.Fatalf("%d log lines for %d foreign packets, want 1 naming the source:\n%s", got, n, logs.String())
	}
}

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
