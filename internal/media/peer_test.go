package media

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestB7_PeerFilter: which source a leg accepts (issue 12, defect 8).
func TestB7_PeerFilter(t *testing.T) {
	sdp := netip.MustParseAddrPort("192.0.2.10:4000")
	attacker := netip.MustParseAddrPort("198.51.100.7:4000")
	nat := netip.MustParseAddrPort("203.0.113.5:61000")
	type packet struct {
		src netip.AddrPort
		ok  bool
	}
	for _, tc := range []struct {
		name    string
		sdp     netip.AddrPort
		latch   bool
		packets []packet
		dest    netip.AddrPort // where media goes after the packets
	}{
		{"sdp address only, attacker first", sdp, false,
			[]packet{{attacker, false}, {sdp, true}, {attacker, false}, {netip.MustParseAddrPort("192.0.2.10:4001"), false}}, sdp},
		{"ipv4-mapped source equals the sdp address", sdp, false,
			[]packet{{netip.MustParseAddrPort("[::ffff:192.0.2.10]:4000"), true}}, sdp},
		{"0.0.0.0: first source locked", netip.MustParseAddrPort("0.0.0.0:4000"), false,
			[]packet{{nat, true}, {attacker, false}, {nat, true}}, nat},
		{"port 0: first source locked", netip.MustParseAddrPort("192.0.2.10:0"), false,
			[]packet{{attacker, true}, {sdp, false}}, attacker},
		{"multicast: first source locked", netip.MustParseAddrPort("224.0.0.9:4000"), false,
			[]packet{{nat, true}, {sdp, false}}, nat},
		{"no sdp: first source locked", netip.AddrPort{}, false,
			[]packet{{nat, true}, {attacker, false}}, nat},
		{"latch (NAT): first source, not re-latched", sdp, true,
			[]packet{{nat, true}, {sdp, false}, {attacker, false}, {nat, true}}, nat},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var seen []uint64
			var latched []netip.AddrPort
			f := NewPeerFilter(tc.sdp, tc.latch)
			f.OnForeign = func(_, _ netip.AddrPort, n uint64) { seen = append(seen, n) }
			f.OnLatch = func(src netip.AddrPort) { latched = append(latched, src) }
			foreign := uint64(0)
			for i, p := range tc.packets {
				if got := f.Allow(p.src); got != p.ok {
					t.Fatalf("packet %d from %v: allowed %v, want %v", i, p.src, got, p.ok)
				}
				if !p.ok {
					foreign++
				}
			}
			if f.Foreign() != foreign || len(seen) != int(foreign) || (foreign > 0 && seen[0] != 1) {
				t.Fatalf("foreign %d, told %v; want %d", f.Foreign(), seen, foreign)
			}
			if d, ok := f.Dest(); !ok || d != tc.dest {
				t.Fatalf("dest %v %v, want %v", d, ok, tc.dest)
			}
			// Told once of a latched source; never when the SDP address rules.
			if fixed := UsableSource(tc.sdp) && !tc.latch; fixed && len(latched) != 0 ||
				!fixed && (len(latched) != 1 || latched[0] != tc.packets[0].src) {
				t.Fatalf("OnLatch told %v", latched)
			}
		})
	}

	// Before any packet: media goes to the SDP address, or nowhere.
	if d, ok := NewPeerFilter(sdp, true).Dest(); !ok || d != sdp {
		t.Fatalf("latching filter sends to %v before its first packet", d)
	}
	if _, ok := NewPeerFilter(netip.MustParseAddrPort("0.0.0.0:4000"), false).Dest(); ok {
		t.Fatal("a destination for 0.0.0.0")
	}
}

// TestB7_PeerFilterRace: of many sources sending at once to a latching
// filter, exactly one is ever accepted.
func TestB7_PeerFilterRace(t *testing.T) {
	f := NewPeerFilter(netip.AddrPort{}, true)
	var (
		mu      sync.Mutex
		winners = map[netip.AddrPort]bool{}
		wg      sync.WaitGroup
	)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			src := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(5000+i))
			for range 100 {
				if f.Allow(src) {
					mu.Lock()
					winners[src] = true
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if len(winners) != 1 || f.Foreign() != 700 {
		t.Fatalf("accepted sources %v, foreign %d; want one source and 700", winners, f.Foreign())
	}
}

// sendDigit sends the RFC 4733 packets of one key press from c to to.
func sendDigit(t *testing.T, c *net.UDPConn, to netip.AddrPort, d rune, ssrc uint32) {
	t.Helper()
	code, _ := EventCode(d)
	pk := Packetizer{Codec: PCMU, DTMFPT: 101, SSRC: ssrc}
	for i, ev := range DigitEvents(code, 100*time.Millisecond, 20*time.Millisecond, 10) {
		if _, err := c.WriteToUDPAddrPort(pk.Event(nil, ev, 1000, i == 0), to); err != nil {
			t.Fatal(err)
		}
	}
}

// TestB7_ReceiverForeignDTMF: over real sockets, a third party's "5" to the
// port of a caller's offer is dropped, even sent before the caller sends
// anything; the caller's own 5 is heard.
func TestB7_ReceiverForeignDTMF(t *testing.T) {
	rx, caller, stranger := udp(t), udp(t), udp(t)
	r := NewReceiver(rx, Session{Codec: PCMU, DTMFPT: 101})
	r.Source = NewPeerFilter(ap(caller), false) // the caller's SDP address
	digits := make(chan rune, 4)
	r.OnDigit = func(d Digit) { digits <- d.Digit }
	foreign := make(chan netip.AddrPort, 100)
	r.Source.OnForeign = func(src, _ netip.AddrPort, _ uint64) { foreign <- src }
	startReceiver(t, r)

	code, _ := EventCode('5')
	press := uint64(len(DigitEvents(code, 100*time.Millisecond, 20*time.Millisecond, 10)))
	sendDigit(t, stranger, ap(rx), '5', 0xBAD)
	for range press {
		select {
		case src := <-foreign:
			if src != ap(stranger) {
				t.Fatalf("foreign source %v, want %v", src, ap(stranger))
			}
		case <-time.After(testDeadline):
			t.Fatalf("the stranger's packets were not all seen: %+v", r.Stats())
		}
	}
	sendDigit(t, caller, ap(rx), '5', 0xA)
	select {
	case d := <-digits:
		if d != '5' {
			t.Fatalf("digit %q", d)
		}
	case <-time.After(testDeadline):
		t.Fatalf("the caller's 5 was not heard: %+v", r.Stats())
	}
	// The rest of the caller's press (end packets) is read, and counted.
	for deadline := time.Now().Add(testDeadline); r.Stats().Events < press && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case d := <-digits:
		t.Fatalf("a second digit %q: the stranger's press got through", d)
	default:
	}
	if st := r.Stats(); st.Foreign != press || st.Events != press {
		t.Fatalf("stats %+v, want %d foreign and %[2]d events", st, press)
	}
}

// TestB7_RelayForeignSource: over real sockets, a stranger sending to the
// relay's socket facing A, before A and after, gets nothing through to B;
// A's packets do, and B's come back to A's SDP address.
func TestB7_RelayForeignSource(t *testing.T) {
	a, b := udp(t), udp(t)
	pa, pb, stranger := udp(t), udp(t), udp(t)
	relay := NewRelay(a, b)
	var (
		mu   sync.Mutex
		told []Side
	)
	relay.OnForeign = func(side Side, src, peer netip.AddrPort, n uint64) {
		mu.Lock()
		defer mu.Unlock()
		if src == ap(stranger) && peer == ap(pa) && n == uint64(len(told)+1) {
			told = append(told, side)
		}
	}
	relay.SetPeer(SideA, ap(pa), false)
	relay.SetPeer(SideB, ap(pb), false)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- relay.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()

	// B reads everything it gets; the stranger's payloads start with 'X'.
	got := make(chan []byte, 64)
	go func() {
		buf := make([]byte, 1500)
		for {
			n, _, err := pb.ReadFromUDPAddrPort(buf)
			if err != nil {
				close(got)
				return
			}
			got <- slices.Clone(buf[:n])
		}
	}()
	pk := Packetizer{Codec: PCMU, SSRC: 0xA}
	frame := make([]int16, FrameSamples)
	for i := range 20 {
		_, _ = stranger.WriteToUDPAddrPort([]byte{'X', byte(i)}, ap(a))
		if i%2 == 1 {
			_, _ = pa.WriteToUDPAddrPort(pk.Audio(nil, frame), ap(a))
		}
	}
	for range 10 {
		select {
		case p := <-got:
			if p[0] == 'X' {
				t.Fatalf("B got the stranger's packet %q", p)
			}
		case <-time.After(testDeadline):
			t.Fatalf("A's packets missing at B: %+v", relay.Stats())
		}
	}
	// A last packet from A after the stranger's last: all of the
	// stranger's have been handled once it is there.
	_, _ = stranger.WriteToUDPAddrPort([]byte("X last"), ap(a))
	_, _ = pa.WriteToUDPAddrPort(pk.Audio(nil, frame), ap(a))
	select {
	case p := <-got:
		if p[0] == 'X' {
			t.Fatalf("B got the stranger's packet %q", p)
		}
	case <-time.After(testDeadline):
		t.Fatal("A's last packet missing at B")
	}
	st := relay.Stats()
	mu.Lock()
	n := len(told)
	mu.Unlock()
	if st.Foreign != 21 || st.AToB.Packets != 11 || n != 21 {
		t.Fatalf("stats %+v, told %d; want 21 foreign, 11 relayed", st, n)
	}

	// B answers to A's SDP address, not to the stranger.
	_, _ = pb.WriteToUDPAddrPort([]byte{0x80, 0, 0, 1}, ap(b))
	buf := make([]byte, 1500)
	_ = pa.SetReadDeadline(time.Now().Add(testDeadline))
	if n, src, err := pa.ReadFromUDPAddrPort(buf); err != nil || src != ap(a) || n != 4 {
		t.Fatalf("A got %d bytes from %v: %v", n, src, err)
	}
}

// BenchmarkPeerFilterAllow is the cost of the source check per packet.
func BenchmarkPeerFilterAllow(b *testing.B) {
	src := netip.MustParseAddrPort("192.0.2.10:4000")
	f := NewPeerFilter(src, false)
	b.ReportAllocs()
	for b.Loop() {
		if !f.Allow(src) {
			b.Fatal("refused")
		}
	}
}
