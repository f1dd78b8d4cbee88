package endpoint

import (
	"bytes"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/callbackd/callbackd/internal/media"
)

// TestB7_EndpointForeignKeys: a stranger's "5" to an endpoint's port,
// sent before the party sends anything, is not heard; it is counted per
// packet and logged once; the party's own 5 is heard.
func TestB7_EndpointForeignKeys(t *testing.T) {
	phone, stranger := udp(t), udp(t)
	var logs bytes.Buffer
	var alien atomic.Int64
	e := started(t, Ports{IP: netip.MustParseAddr("127.0.0.1"),
		Log: slog.New(slog.NewTextHandler(&logs, nil)), OnForeign: func() { alien.Add(1) }}, phone, media.PCMU)
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
	hears5(t, e)
	if got := strings.Count(logs.String(), "RTP from a foreign source dropped"); got != 1 ||
		!strings.Contains(logs.String(), "source="+stranger.LocalAddr().String()) {
		t.Fatalf("%d log lines for %d foreign packets, want 1 naming the source:\n%s", got, n, logs.String())
	}
}
