package media

import (
	"context"
	"math"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
)

func parse(t testing.TB, b []byte) *rtp.Packet {
	t.Helper()
	var p rtp.Packet
	if err := p.Unmarshal(b); err != nil {
		t.Fatal(err)
	}
	return &p
}

func TestPacketizer(t *testing.T) {
	for _, c := range []Codec{PCMU, PCMA} {
		pk := Packetizer{Codec: c, DTMFPT: 101, SSRC: 0xdeadbeef, Seq: 65534, Timestamp: 0xffffff00}
		frame := make([]int16, FrameSamples)
		for i := range frame {
			frame[i] = int16(1000 * math.Sin(float64(i)/5))
		}
		var ps []*rtp.Packet
		for range 3 {
			ps = append(ps, parse(t, pk.Audio(nil, frame)))
		}
		for i, p := range ps {
			if p.Version != 2 || p.PayloadType != c.PT || p.SSRC != 0xdeadbeef {
				t.Fatalf("%s header %+v", c.Name, p.Header)
			}
			if p.SequenceNumber != uint16(65534+i) {
				t.Errorf("seq %d", p.SequenceNumber)
			}
			if p.Timestamp != 0xffffff00+uint32(i*FrameSamples) {
				t.Errorf("ts %#x", p.Timestamp)
			}
			if p.Marker != (i == 0) {
				t.Errorf("packet %d marker %v", i, p.Marker)
			}
			if !slices.Equal(p.Payload, c.Encode(nil, frame)) {
				t.Errorf("payload")
			}
		}
		// A key press: same timestamp, marker on its first packet, and the
		// clock goes on under it.
		start := pk.Timestamp
		evs := DigitEvents(5, 60*time.Millisecond, 0, 10)
		for i, e := range evs {
			p := parse(t, pk.Event(nil, e, start, i == 0))
			if p.PayloadType != 101 || p.Timestamp != start || p.Marker != (i == 0) {
				t.Fatalf("event packet %d: %+v", i, p.Header)
			}
			if got, _ := DecodeEvent(p.Payload); got != e {
				t.Fatalf("event payload %+v", got)
			}
		}
		after := parse(t, pk.Audio(nil, frame))
		if after.Timestamp != start+uint32(len(evs)*FrameSamples) || after.Marker {
			t.Fatalf("audio after event: %+v", after.Header)
		}
	}
}

func TestSources(t *testing.T) {
	s := make([]int16, 250)
	for i := range s {
		s[i] = int16(i + 1)
	}
	got := render(NewSamples(s, false), 1000)
	if len(got) != 2*FrameSamples || !slices.Equal(got[:250], s) || slices.ContainsFunc(got[250:], func(x int16) bool { return x != 0 }) {
		t.Fatalf("once: %d samples", len(got))
	}
	got = render(NewSamples(s, true), 600)
	if len(got) != 600 || got[250] != 1 || got[499] != 250 || got[500] != 1 {
		t.Fatalf("loop: %v", got[248:252])
	}
	if NewSamples(nil, true).Frame(make([]int16, FrameSamples)) {
		t.Fatal("empty loop yields frames")
	}
	busy, _ := Tone("DE", ToneBusy)
	q := Sequence(NewSamples(s, false), nil, Silence(1), NewGenerator(busy))
	got = render(q, 5*FrameSamples)
	if got[0] != 1 || got[2*FrameSamples] != 0 || got[3*FrameSamples+1] == 0 {
		t.Fatal("sequence order")
	}
	if Sequence().Frame(make([]int16, FrameSamples)) {
		t.Fatal("empty sequence")
	}
}

func TestStreamStep(t *testing.T) {
	s := NewStream(nil, nil, Packetizer{Codec: PCMA, DTMFPT: 96, Seq: 10}, Silence(2))
	if s.SendDigit('x', time.Second) {
		t.Fatal("x accepted")
	}
	s.SendDigit('#', 40*time.Millisecond) // 320 samples: 160, then 3 ends
	var pts []uint8
	var marks []bool
	for {
		b, ok := s.Step(nil)
		if !ok {
			break
		}
		p := parse(t, b)
		pts = append(pts, p.PayloadType)
		marks = append(marks, p.Marker)
	}
	if !slices.Equal(pts, []uint8{96, 96, 96, 96, 8, 8}) {
		t.Fatalf("payload types %v", pts)
	}
	if !slices.Equal(marks, []bool{true, false, false, false, false, false}) {
		t.Fatalf("markers %v", marks)
	}
	s.SetSource(nil)
	if _, ok := s.Step(nil); ok {
		t.Fatal("nil source")
	}
}

func udp(t testing.TB) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	// Room for a whole prompt sent without pacing.
	_ = c.SetReadBuffer(1 << 20)
	return c
}

func ap(c *net.UDPConn) netip.AddrPort { return c.LocalAddr().(*net.UDPAddr).AddrPort() }

// burstClock makes Stream.run send without waiting: every reading after
// the first is far past every due time.
func burstClock() func() time.Time {
	t0 := time.Now()
	first := true
	return func() time.Time {
		if first {
			first = false
			return t0
		}
		return t0.Add(10 * time.Hour)
	}
}

const testDeadline = 10 * time.Second

func startReceiver(t *testing.T, r *Receiver) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != context.Canceled {
				t.Errorf("receiver: %v", err)
			}
		case <-time.After(testDeadline):
			t.Error("receiver did not stop")
		}
	})
}

func TestStreamPromptLoopback(t *testing.T) {
	for _, c := range []Codec{PCMU, PCMA} {
		t.Run(c.Name, func(t *testing.T) {
			prompt, err := Prompt("en", PromptNotPossible)
			if err != nil {
				t.Fatal(err)
			}
			frames := (len(prompt) + FrameSamples - 1) / FrameSamples
			tx, rx := udp(t), udp(t)

			var (
				mu   sync.Mutex
				got  []int16
				seqs []uint16
				done = make(chan struct{})
			)
			r := NewReceiver(rx, Session{Codec: c, DTMFPT: 101})
			r.OnAudio = func(p *rtp.Packet, pcm []int16) {
				mu.Lock()
				defer mu.Unlock()
				if len(seqs) == frames {
					return
				}
				got = append(got, pcm...)
				seqs = append(seqs, p.SequenceNumber)
				if len(seqs) == frames {
					close(done)
				}
			}
			startReceiver(t, r)

			s := NewStream(tx, rx.LocalAddr(), Packetizer{Codec: c, SSRC: 7, Seq: 100}, NewSamples(prompt, false))
			if err := s.run(context.Background(), burstClock()); err != nil {
				t.Fatal(err)
			}
			select {
			case <-done:
			case <-time.After(testDeadline):
				t.Fatalf("received %d of %d packets", r.Stats().Audio, frames)
			}
			mu.Lock()
			defer mu.Unlock()
			if st := s.Stats(); st.Packets != uint64(frames) || st.Bytes != uint64(frames*(12+FrameSamples)) {
				t.Errorf("stream stats %+v, want %d packets", st, frames)
			}
			for i, q := range seqs {
				if q != uint16(100+i) {
					t.Fatalf("packet %d has seq %d", i, q)
				}
			}
			if len(got) != frames*FrameSamples {
				t.Fatalf("decoded %d samples, want %d", len(got), frames*FrameSamples)
			}
			// Same duration and energy: G.711 keeps about 38 dB of SNR.
			want, have := rms(prompt), rms(got[:len(prompt)])
			if math.Abs(have-want)/want > 0.03 {
				t.Errorf("RMS %.1f after G.711, %.1f before", have, want)
			}
		})
	}
}

func TestStreamDTMFLoopback(t *testing.T) {
	tx, rx := udp(t), udp(t)
	digits := make(chan Digit, 4)
	audioDone := make(chan struct{})
	audio := 0
	r := NewReceiver(rx, Session{Codec: PCMU, DTMFPT: 101})
	r.OnDigit = func(d Digit) { digits <- d }
	r.OnAudio = func(*rtp.Packet, []int16) {
		if audio++; audio == 3 {
			close(audioDone)
		}
	}
	startReceiver(t, r)

	s := NewStream(tx, rx.LocalAddr(), Packetizer{Codec: PCMU, DTMFPT: 101, Timestamp: 5000}, Silence(3))
	s.SendDigit('5', 100*time.Millisecond)
	if err := s.run(context.Background(), burstClock()); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-digits:
		if d.Digit != '5' || d.Timestamp != 5000 {
			t.Fatalf("digit %+v", d)
		}
	case <-time.After(testDeadline):
		t.Fatal("no digit")
	}
	// The audio comes after the event packets on the same path, so once
	// it is in, every event packet has been handled.
	select {
	case <-audioDone:
	case <-time.After(testDeadline):
		t.Fatal("audio after the digit missing")
	}
	select {
	case d := <-digits:
		t.Fatalf("digit reported twice: %+v", d)
	default:
	}
	if st := r.Stats(); st.Events != 7 || st.Audio != 3 || st.Packets != 10 || st.Invalid != 0 {
		t.Fatalf("receiver stats %+v", st)
	}
}

// TestStreamRealtime runs the real pacing path: ten frames, about 200 ms.
func TestStreamRealtime(t *testing.T) {
	tx, rx := udp(t), udp(t)
	got := make(chan struct{})
	n := 0
	r := NewReceiver(rx, Session{Codec: PCMU})
	r.OnAudio = func(*rtp.Packet, []int16) {
		if n++; n == 10 {
			close(got)
		}
	}
	startReceiver(t, r)
	s := NewStream(tx, rx.LocalAddr(), Packetizer{Codec: PCMU}, Silence(10))
	ctx, cancel := context.WithTimeout(context.Background(), testDeadline)
	defer cancel()
	if err := s.Run(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-got:
	case <-time.After(testDeadline):
		t.Fatal("packets missing")
	}
	if st := s.Stats(); st.Packets != 10 {
		t.Fatalf("stats %+v", st)
	}

	// A cancelled context stops an endless source.
	busy, _ := Tone("US", ToneBusy)
	s = NewStream(tx, rx.LocalAddr(), Packetizer{Codec: PCMU}, NewGenerator(busy))
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	if err := s.Run(ctx); err != context.Canceled {
		t.Fatalf("Run after cancel: %v", err)
	}
}

func TestReceiverHandle(t *testing.T) {
	r := NewReceiver(nil, Session{Codec: PCMA, DTMFPT: 101})
	var digits []rune
	r.OnDigit = func(d Digit) { digits = append(digits, d.Digit) }
	pk := Packetizer{Codec: PCMA, DTMFPT: 101}
	r.Handle(pk.Audio(nil, make([]int16, FrameSamples)))
	r.Handle([]byte{1, 2, 3})                                                    // not RTP
	r.Handle(pk.Event(nil, Event{Code: 3}, 0, true)[:14])                        // short event
	r.Handle((&Packetizer{Codec: Codec{PT: 13, Name: "CN"}}).Audio(nil, nil))    // comfort noise
	r.Handle(pk.Event(nil, Event{Code: 9, End: true, Duration: 800}, 160, true)) // end only
	want := ReceiverStats{Packets: 5, Audio: 1, Events: 1, Other: 1, Invalid: 2}
	st := r.Stats()
	st.Bytes = 0
	if st != want || !slices.Equal(digits, []rune{'9'}) {
		t.Fatalf("stats %+v digits %q", st, digits)
	}
}

func TestRelayLoopback(t *testing.T) {
	a, b := udp(t), udp(t)   // relay sockets
	pa, pb := udp(t), udp(t) // the two parties
	stranger := udp(t)       // neither party
	relay := NewRelay(a, b)
	relay.SetPeer(SideB, ap(pb), false) // B known from SDP; A is learned
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- relay.Run(ctx) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != context.Canceled {
				t.Errorf("relay: %v", err)
			}
		case <-time.After(testDeadline):
			t.Error("relay did not stop")
		}
	}()

	recv := func(c *net.UDPConn, want []byte, from netip.AddrPort) {
		t.Helper()
		buf := make([]byte, 1500)
		_ = c.SetReadDeadline(time.Now().Add(testDeadline))
		n, src, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(buf[:n], want) || src != from {
			t.Fatalf("got %q from %v, want %q from %v", buf[:n], src, want, from)
		}
	}
	pk := Packetizer{Codec: PCMU}
	frame := make([]int16, FrameSamples)
	for range 10 {
		pkt := pk.Audio(nil, frame)
		if _, err := pa.WriteToUDPAddrPort(pkt, ap(a)); err != nil {
			t.Fatal(err)
		}
		recv(pb, pkt, ap(b))
	}
	// A stranger's packet to A's side is dropped once A is latched (no
	// SDP address: its first source, locked); the next packet from A
	// proves it has been handled.
	_, _ = stranger.WriteToUDPAddrPort([]byte("intruder"), ap(a))
	last := pk.Audio(nil, frame)
	_, _ = pa.WriteToUDPAddrPort(last, ap(a))
	recv(pb, last, ap(b))
	for i := range 7 {
		pkt := []byte{0x80, 0, 0, byte(i)}
		_, _ = pb.WriteToUDPAddrPort(pkt, ap(b))
		recv(pa, pkt, ap(a)) // back to A's learned address
	}
	st := relay.Stats()
	want := RelayStats{AToB: Counter{11, 11 * 172}, BToA: Counter{7, 28}, Foreign: 1}
	if st != want {
		t.Fatalf("stats %+v, want %+v", st, want)
	}
}

func TestRelayRoute(t *testing.T) {
	r := NewRelay(nil, nil)
	x := netip.MustParseAddrPort("127.0.0.1:1000")
	y := netip.MustParseAddrPort("127.0.0.1:2000")
	if _, ok := r.route(SideA, x); ok || r.Stats().NoPeer != 1 {
		t.Fatal("forwarded without a peer for B")
	}
	r.SetPeer(SideB, netip.MustParseAddrPort("[::ffff:127.0.0.1]:3000"), false)
	if to, ok := r.route(SideA, x); !ok || to != netip.MustParseAddrPort("127.0.0.1:3000") {
		t.Fatalf("to %v", to)
	}
	// B's SDP address is its only source: y is someone else.
	if _, ok := r.route(SideB, y); ok || r.Stats().Foreign != 1 {
		t.Fatalf("a stranger's packet relayed: %+v", r.Stats())
	}
	if to, ok := r.route(SideB, netip.MustParseAddrPort("127.0.0.1:3000")); !ok || to != x {
		t.Fatalf("back to %v", to)
	}
	// A new answer moves B.
	r.SetPeer(SideB, netip.MustParseAddrPort("127.0.0.1:4000"), false)
	if to, _ := r.route(SideA, x); to != netip.MustParseAddrPort("127.0.0.1:4000") {
		t.Fatalf("new SDP address not used: %v", to)
	}
	// Latching (NAT): B's first source replaces the SDP hint, for good.
	r.SetPeer(SideB, netip.MustParseAddrPort("10.0.0.9:4000"), true)
	if to, _ := r.route(SideA, x); to != netip.MustParseAddrPort("10.0.0.9:4000") {
		t.Fatalf("before latching, to %v", to)
	}
	if to, ok := r.route(SideB, y); !ok || to != x {
		t.Fatalf("first source of B not taken: %v %v", to, ok)
	}
	if _, ok := r.route(SideB, netip.MustParseAddrPort("127.0.0.1:4000")); ok {
		t.Fatal("a later source took over the latched one")
	}
	if to, _ := r.route(SideA, x); to != y {
		t.Fatalf("to %v, want the latched %v", to, y)
	}
}
