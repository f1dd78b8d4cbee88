package media

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
)

// ReceiverStats counts what a Receiver got.
type ReceiverStats struct {
	Packets uint64 // every datagram
	Bytes   uint64
	Audio   uint64 // packets of the negotiated codec
	Events  uint64 // telephone-event packets
	Other   uint64 // other payload types (comfort noise, ...)
	Invalid uint64 // not RTP, or a bad telephone-event
	Foreign uint64 // from a source other than the peer (Source), dropped unread
}

// Receiver reads RTP from a socket, decodes the negotiated G.711 codec to
// linear16 and feeds telephone-events to a DTMFDecoder. Callbacks run on
// the Run goroutine; the pcm slice passed to OnAudio is reused afterwards.
// With Source set, Run hands on only the packets of the peer it accepts:
// a key press (RFC 4733, or in-band audio to OnAudio) from anyone else is
// dropped before it is decoded.
type Receiver struct {
	conn    net.PacketConn
	codec   Codec
	decoder DTMFDecoder
	hasDTMF bool

	OnAudio func(p *rtp.Packet, pcm []int16)
	OnDigit func(Digit)
	// Source, when set, is asked about each datagram's source (see
	// PeerFilter); nil accepts every source.
	Source *PeerFilter

	pkt rtp.Packet
	pcm []int16

	packets, bytes, audio, events, other, invalid, foreign atomic.Uint64
}

// NewReceiver returns a receiver for the codec and telephone-event type
// of sess.
func NewReceiver(conn net.PacketConn, sess Session) *Receiver {
	return &Receiver{
		conn:    conn,
		codec:   sess.Codec,
		decoder: DTMFDecoder{PT: sess.DTMFPT},
		hasDTMF: sess.DTMFPT != 0,
		pcm:     make([]int16, 0, FrameSamples),
	}
}

// Handle processes one datagram; it is what Run calls for each read and
// needs no socket.
func (r *Receiver) Handle(b []byte) {
	r.packets.Add(1)
	r.bytes.Add(uint64(len(b)))
	if err := r.pkt.Unmarshal(b); err != nil || r.pkt.Version != 2 {
		r.invalid.Add(1)
		return
	}
	switch pt := r.pkt.PayloadType; {
	case r.hasDTMF && pt == r.decoder.PT:
		d, ok, err := r.decoder.Decode(&r.pkt)
		if err != nil {
			r.invalid.Add(1)
			return
		}
		r.events.Add(1)
		if ok && r.OnDigit != nil {
			r.OnDigit(d)
		}
	case pt == r.codec.PT:
		r.audio.Add(1)
		if r.OnAudio != nil {
			r.pcm = r.codec.Decode(r.pcm[:0], r.pkt.Payload)
			r.OnAudio(&r.pkt, r.pcm)
		}
	default:
		r.other.Add(1)
	}
}

// Run reads until ctx ends (its error) or the socket is closed (nil).
func (r *Receiver) Run(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { _ = r.conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	buf := make([]byte, 1500)
	// Bounded by ctx and by the socket's life.
	for {
		n, src, err := r.conn.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		if r.Source != nil && !r.Source.Allow(addrPortOf(src)) {
			r.packets.Add(1)
			r.bytes.Add(uint64(n))
			r.foreign.Add(1)
			continue
		}
		r.Handle(buf[:n])
	}
}

// Stats returns the counters so far; safe while Run is going.
func (r *Receiver) Stats() ReceiverStats {
	return ReceiverStats{
		Packets: r.packets.Load(), Bytes: r.bytes.Load(), Audio: r.audio.Load(),
		Events: r.events.Load(), Other: r.other.Load(), Invalid: r.invalid.Load(),
		Foreign: r.foreign.Load(),
	}
}
