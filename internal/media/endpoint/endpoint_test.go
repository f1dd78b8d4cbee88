package endpoint

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/callbackd/callbackd/internal/media"
)

// TestEndpointPorts: the server's RTP sockets are even ports of the
// configured range (RFC 3550 section 11), distinct while open.
func TestEndpointPorts(t *testing.T) {
	b := Ports{IP: netip.MustParseAddr("127.0.0.1"), Min: 41001, Max: 41040}
	seen := map[int]bool{}
	var eps []*Endpoint
	for range 10 {
		e, err := b.Open("1001")
		if err != nil {
			t.Fatal(err)
		}
		eps = append(eps, e)
		p := int(e.local.Addr.Port())
		if p%2 != 0 || p < 41001 || p > 41040 || seen[p] {
			t.Fatalf("port %d: want a fresh even port in 41001-41040 (have %v)", p, seen)
		}
		seen[p] = true
	}
	for _, e := range eps {
		e.Close()
		e.Close() // twice is harmless
	}
}

// udp is a socket of a party on loopback.
func udp(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// started is an endpoint of p that answered the offer of the party at
// phone with codec, and started.
func started(t *testing.T, p Ports, phone *net.UDPConn, codec media.Codec) *Endpoint {
	t.Helper()
	e, err := p.Open("1001")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	offer := media.Offer(media.Endpoint{Addr: phone.LocalAddr().(*net.UDPAddr).AddrPort(), Codecs: []media.Codec{codec}})
	if _, err := e.Answer(offer); err != nil {
		t.Fatal(err)
	}
	e.Start()
	return e
}

// TestEndpointPlaysAndHearsKeys: an endpoint answering an offer plays a
// source to the offerer's address, reports when it ends, and hears a key
// pressed with RFC 4733 events.
func TestEndpointPlaysAndHearsKeys(t *testing.T) {
	phone := udp(t)
	e := started(t, Ports{IP: netip.MustParseAddr("127.0.0.1")}, phone, media.PCMA)
	done := e.Play(media.Silence(5))
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("5 frames did not end within 5 s")
	}
	phone.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1500)
	n, from, err := phone.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatal(err)
	}
	var pkt rtp.Packet
	if err := pkt.Unmarshal(buf[:n]); err != nil || pkt.PayloadType != 8 || len(pkt.Payload) != media.FrameSamples {
		t.Fatalf("phone got %v (payload type %d, %d bytes), want a 20 ms PCMA frame", err, pkt.PayloadType, len(pkt.Payload))
	}
	for i, ev := range media.DigitEvents(5, 60*time.Millisecond, 20*time.Millisecond, 10) {
		p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 101, SequenceNumber: uint16(i), Timestamp: 800, SSRC: 7, Marker: i == 0},
			Payload: ev.Marshal(nil)}
		out, _ := p.Marshal()
		phone.WriteToUDPAddrPort(out, from)
	}
	hears5(t, e)
}

// hears5 waits for e to hear the key 5.
func hears5(t *testing.T, e *Endpoint) {
	t.Helper()
	select {
	case d := <-e.digits:
		if d != '5' {
			t.Fatalf("heard key %q, want 5", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("key 5 not heard within 5 s")
	}
}
