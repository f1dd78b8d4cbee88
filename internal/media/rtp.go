package media

import (
	"context"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
)

// Packetizer turns 20 ms frames and telephone-events into RTP packets
// (RFC 3550 section 5.1). It is a pure value: no clock, no socket, so its
// sequence and timestamp arithmetic is tested without waiting.
type Packetizer struct {
	Codec Codec // payload type from Codec.PT
	// DTMFPT is the telephone-event payload type (RFC 4733 section 2.1).
	DTMFPT uint8
	SSRC   uint32
	// Seq and Timestamp are those of the next packet. RFC 3550 section
	// 5.1 wants both to start random; the caller picks them.
	Seq       uint16
	Timestamp uint32

	started bool
}

func (p *Packetizer) header(pt uint8, ts uint32, marker bool) rtp.Header {
	return rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: p.Seq, Timestamp: ts, SSRC: p.SSRC, Marker: marker}
}

func appendPacket(dst []byte, h rtp.Header, payloadLen int, payload func([]byte) []byte) []byte {
	n := h.MarshalSize()
	dst = slices.Grow(dst, n+payloadLen)
	start := len(dst)
	dst = dst[:start+n]
	if _, err := h.MarshalTo(dst[start:]); err != nil {
		// Only a short buffer fails, and we grew it.
		panic(err)
	}
	return payload(dst)
}

// Audio appends one packet carrying frame encoded with p.Codec and moves
// sequence number and timestamp on. The first packet of the stream has the
// marker bit, as the start of a talkspurt (RFC 3551 section 4.1).
func (p *Packetizer) Audio(dst []byte, frame []int16) []byte {
	h := p.header(p.Codec.PT, p.Timestamp, !p.started)
	p.started = true
	dst = appendPacket(dst, h, len(frame), func(b []byte) []byte { return p.Codec.Encode(b, frame) })
	p.Seq++
	p.Timestamp += uint32(len(frame))
	return dst
}

// Event appends a telephone-event packet. Every packet of one key press
// carries the timestamp start of the press (RFC 4733 section 2.5.1.1) and
// its first has the marker bit (section 2.5.1.1). The media clock still
// advances one frame per packet so audio after the press resumes with the
// right timestamp.
func (p *Packetizer) Event(dst []byte, ev Event, start uint32, marker bool) []byte {
	h := p.header(p.DTMFPT, start, marker)
	p.started = true
	dst = appendPacket(dst, h, 4, func(b []byte) []byte { return ev.Marshal(b) })
	p.Seq++
	p.Timestamp += FrameSamples
	return dst
}

// StreamStats counts what a Stream sent.
type StreamStats struct {
	Packets uint64
	Bytes   uint64
	// Late counts packets sent more than LateAfter after their slot on
	// the 20 ms schedule; MaxLate is the worst delay seen.
	Late    uint64
	MaxLate time.Duration
}

// DefaultLateAfter is the lateness from which a packet counts as late:
// a quarter of a frame, well inside a typical jitter buffer.
const DefaultLateAfter = 5 * time.Millisecond

type queuedEvent struct {
	ev    Event
	first bool
}

// Stream plays a Source to one remote address as RTP, one packet every
// 20 ms on an absolute schedule (so delays do not add up), and can insert
// RFC 4733 key presses. Step builds the next packet without any clock;
// Run paces Step with real time.
type Stream struct {
	conn   net.PacketConn
	remote atomic.Pointer[net.Addr] // SetRemote may move it while Run goes
	// LateAfter overrides DefaultLateAfter when set before Run.
	LateAfter time.Duration

	mu      sync.Mutex
	pk      Packetizer
	src     Source
	frame   []int16
	events  []queuedEvent
	evStart uint32

	packets, bytes, late atomic.Uint64
	maxLate              atomic.Int64
}

// NewStream returns a stream of src to remote over conn, with the
// packetizer's codec, payload types, SSRC and initial sequence number and
// timestamp.
func NewStream(conn net.PacketConn, remote net.Addr, pk Packetizer, src Source) *Stream {
	s := &Stream{conn: conn, pk: pk, src: src, frame: make([]int16, FrameSamples)}
	s.remote.Store(&remote)
	return s
}

// SetRemote sends the next packets to remote instead: the source a peer
// was latched to (PeerFilter with latching, a phone behind NAT).
func (s *Stream) SetRemote(remote net.Addr) { s.remote.Store(&remote) }

// SetSource switches to another source from the next frame on, for
// instance from an announcement to a tone; nil ends the stream.
func (s *Stream) SetSource(src Source) {
	s.mu.Lock()
	s.src = src
	s.mu.Unlock()
}

// SendDigit queues a key press of the given duration (RFC 4733 section
// 2.5.1). While its packets go out, one per frame, the audio source
// pauses. Presses queued together are sent one after the other.
func (s *Stream) SendDigit(digit rune, duration time.Duration) bool {
	code, ok := EventCode(digit)
	if !ok {
		return false
	}
	evs := DigitEvents(code, duration, FrameDuration*time.Millisecond, 10)
	s.mu.Lock()
	for i, e := range evs {
		s.events = append(s.events, queuedEvent{ev: e, first: i == 0})
	}
	s.mu.Unlock()
	return true
}

// Step appends the next packet to dst; ok is false once the source is
// exhausted and no key press is pending.
func (s *Stream) Step(dst []byte) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.events) > 0 {
		q := s.events[0]
		s.events = s.events[1:]
		if q.first {
			s.evStart = s.pk.Timestamp
		}
		return s.pk.Event(dst, q.ev, s.evStart, q.first), true
	}
	if s.src == nil || !s.src.Frame(s.frame) {
		return dst, false
	}
	return s.pk.Audio(dst, s.frame), true
}

// Run sends until the source is exhausted (nil), ctx ends (its error) or
// a write fails.
func (s *Stream) Run(ctx context.Context) error {
	return s.run(ctx, time.Now)
}

func (s *Stream) run(ctx context.Context, now func() time.Time) error {
	lateAfter := s.LateAfter
	if lateAfter <= 0 {
		lateAfter = DefaultLateAfter
	}
	const period = FrameDuration * time.Millisecond
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	buf := make([]byte, 0, 1500)
	start := now()
	// Bounded by the source, by ctx and by write errors.
	for i := time.Duration(0); ; i++ {
		due := start.Add(i * period)
		if d := due.Sub(now()); d > 0 {
			timer.Reset(d)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-timer.C:
			}
		} else if err := ctx.Err(); err != nil {
			return err
		}
		pkt, ok := s.Step(buf[:0])
		if !ok {
			return nil
		}
		if late := now().Sub(due); late > lateAfter {
			s.late.Add(1)
			if int64(late) > s.maxLate.Load() {
				s.maxLate.Store(int64(late))
			}
		}
		if _, err := s.conn.WriteTo(pkt, *s.remote.Load()); err != nil {
			return err
		}
		s.packets.Add(1)
		s.bytes.Add(uint64(len(pkt)))
	}
}

// Stats returns the counters so far; safe while Run is going.
func (s *Stream) Stats() StreamStats {
	return StreamStats{
		Packets: s.packets.Load(),
		Bytes:   s.bytes.Load(),
		Late:    s.late.Load(),
		MaxLate: time.Duration(s.maxLate.Load()),
	}
}
