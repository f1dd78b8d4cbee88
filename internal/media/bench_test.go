package media

import (
	"testing"
	"time"

	"github.com/pion/rtp"
)

// BenchmarkPacketize measures encoding one 20 ms frame and writing its RTP
// packet, per codec.
func BenchmarkPacketize(b *testing.B) {
	prompt, err := Prompt("en", PromptBusyOffer)
	if err != nil {
		b.Fatal(err)
	}
	frame := prompt[8000 : 8000+FrameSamples]
	for _, c := range []Codec{PCMU, PCMA} {
		b.Run(c.Name, func(b *testing.B) {
			pk := Packetizer{Codec: c, SSRC: 1}
			buf := make([]byte, 0, 1500)
			b.ReportAllocs()
			b.SetBytes(FrameSamples)
			for b.Loop() {
				buf = pk.Audio(buf[:0], frame)
			}
		})
	}
}

// BenchmarkDecodeFrame measures G.711 decoding of one 20 ms payload.
func BenchmarkDecodeFrame(b *testing.B) {
	payload := PCMU.Encode(nil, make([]int16, FrameSamples))
	pcm := make([]int16, 0, FrameSamples)
	b.ReportAllocs()
	for b.Loop() {
		pcm = PCMU.Decode(pcm[:0], payload)
	}
}

// BenchmarkToneFrame measures rendering one 20 ms frame of a single and of
// a dual frequency tone.
func BenchmarkToneFrame(b *testing.B) {
	for _, cc := range []string{"DE", "US"} {
		p, _ := Tone(cc, ToneRingback)
		p.Segments = p.Segments[:1] // always sounding: the costly case
		b.Run(cc, func(b *testing.B) {
			g := NewGenerator(p)
			frame := make([]int16, FrameSamples)
			b.ReportAllocs()
			for b.Loop() {
				g.Frame(frame)
			}
		})
	}
}

// BenchmarkDTMFDecode measures one telephone-event packet through the
// decoder, over a stream of key presses of 7 packets each.
func BenchmarkDTMFDecode(b *testing.B) {
	var ps []*rtp.Packet
	for i := range 64 {
		ps = append(ps, eventPackets(101, uint16(i*7), uint32(i*4000), DigitEvents(uint8(i%16), 100*time.Millisecond, 0, 10))...)
	}
	d := &DTMFDecoder{PT: 101}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, _, err := d.Decode(ps[i%len(ps)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkReceiverHandle measures parsing and decoding one received audio
// packet.
func BenchmarkReceiverHandle(b *testing.B) {
	pk := Packetizer{Codec: PCMU}
	pkt := pk.Audio(nil, make([]int16, FrameSamples))
	r := NewReceiver(nil, Session{Codec: PCMU, DTMFPT: 101})
	r.OnAudio = func(*rtp.Packet, []int16) {}
	b.ReportAllocs()
	for b.Loop() {
		r.Handle(pkt)
	}
}

// BenchmarkRelay measures one packet through a Relay over loopback UDP,
// sent by party A and read by party B in lock step (so it is the latency
// of the path, an upper bound on the cost per packet).
func BenchmarkRelay(b *testing.B) {
	a, bb := udp(b), udp(b)
	pa, pb := udp(b), udp(b)
	relay := NewRelay(a, bb)
	relay.SetPeer(SideB, ap(pb), false)
	done := make(chan error, 1)
	go func() { done <- relay.Run(b.Context()) }()
	pk := Packetizer{Codec: PCMU}
	pkt := pk.Audio(nil, make([]int16, FrameSamples))
	buf := make([]byte, 1500)
	to := ap(a)
	_ = pb.SetReadDeadline(time.Now().Add(time.Minute))
	b.SetBytes(int64(len(pkt)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := pa.WriteToUDPAddrPort(pkt, to); err != nil {
			b.Fatal(err)
		}
		if _, _, err := pb.ReadFromUDPAddrPort(buf); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	_ = a.Close()
	_ = bb.Close()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}
