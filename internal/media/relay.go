package media

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync/atomic"
	"time"
)

// Side names one leg of a Relay: A talks to socket a, B to socket b.
type Side int

// The two legs.
const (
	SideA Side = iota
	SideB
)

// Counter counts packets and bytes.
type Counter struct {
	Packets uint64
	Bytes   uint64
}

// RelayStats counts what a Relay forwarded: AToB counts packets from leg
// A handed to the socket towards B (a failed send still counts, as a
// packet lost on the network would), BToA the reverse.
type RelayStats struct {
	AToB, BToA Counter
	// Foreign counts packets from a source other than the leg's peer
	// (dropped); NoPeer those dropped because the other leg's address is
	// unknown.
	Foreign, NoPeer uint64
}

type counter struct{ packets, bytes atomic.Uint64 }

// Relay forwards datagrams between two sockets, one per leg, for calls
// where the server stays in the media path. Each leg's packets are
// accepted only from its peer (PeerFilter: the address of its SDP, or its
// first source when that address is unusable or latching is asked for)
// and sent to the other leg's peer; packets from anyone else are dropped
// and counted as Foreign, never relayed.
type Relay struct {
	conns [2]net.PacketConn
	peers [2]atomic.Pointer[PeerFilter]
	count [2]counter // by the leg the packet came from
	foreign,
	noPeer atomic.Uint64

	// OnForeign, when set, is told of each packet from a foreign source
	// (see PeerFilter.OnForeign), with the leg it arrived on. Set it
	// before SetPeer.
	OnForeign func(side Side, src, peer netip.AddrPort, n uint64)
}

// NewRelay relays between a (facing leg A) and b (facing leg B).
func NewRelay(a, b net.PacketConn) *Relay {
	return &Relay{conns: [2]net.PacketConn{a, b}}
}

// SetPeer sets leg side's address from its SDP: its only accepted source
// when usable, else, or with latch, its first source (see PeerFilter).
// Called again (a new offer/answer), it starts the leg afresh.
func (r *Relay) SetPeer(side Side, addr netip.AddrPort, latch bool) {
	f := NewPeerFilter(addr, latch)
	if r.OnForeign != nil {
		f.OnForeign = func(src, peer netip.AddrPort, n uint64) { r.OnForeign(side, src, peer, n) }
	}
	r.peers[side].Store(f)
}

// route decides what to do with a packet that arrived on from's socket
// from src: the address to forward it to on the other socket.
func (r *Relay) route(from Side, src netip.AddrPort) (netip.AddrPort, bool) {
	f := r.peers[from].Load()
	if f == nil { // no SDP yet: latch, as for an unusable address
		r.peers[from].CompareAndSwap(nil, NewPeerFilter(netip.AddrPort{}, true))
		f = r.peers[from].Load()
	}
	if !f.Allow(src) {
		r.foreign.Add(1)
		return netip.AddrPort{}, false
	}
	var to netip.AddrPort
	ok := false
	if g := r.peers[1-from].Load(); g != nil {
		to, ok = g.Dest()
	}
	if !ok {
		r.noPeer.Add(1)
	}
	return to, ok
}

// Run relays both ways until ctx ends (its error) or a socket is closed
// (nil); it closes neither socket.
func (r *Relay) Run(parent context.Context) error {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		for _, c := range r.conns {
			_ = c.SetReadDeadline(time.Unix(1, 0))
		}
	})
	defer stop()
	errs := make(chan error, 2)
	for _, side := range []Side{SideA, SideB} {
		go func() {
			err := r.pump(ctx, side)
			cancel() // one leg gone ends the other
			errs <- err
		}()
	}
	err1, err2 := <-errs, <-errs
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	return parent.Err()
}

func (r *Relay) pump(ctx context.Context, from Side) error {
	in, out := r.conns[from], r.conns[1-from]
	uin, _ := in.(*net.UDPConn)
	uout, _ := out.(*net.UDPConn)
	buf := make([]byte, 1500)
	// Bounded by ctx and the sockets' life.
	for {
		var (
			n   int
			src netip.AddrPort
			err error
		)
		if uin != nil {
			n, src, err = uin.ReadFromUDPAddrPort(buf)
		} else {
			var a net.Addr
			n, a, err = in.ReadFrom(buf)
			if err == nil {
				src = addrPortOf(a)
			}
		}
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		to, ok := r.route(from, unmap(src))
		if !ok {
			continue
		}
		// Counted before the write so a reader that has seen the packet
		// arrive also sees it counted.
		r.count[from].packets.Add(1)
		r.count[from].bytes.Add(uint64(n))
		if uout != nil {
			_, err = uout.WriteToUDPAddrPort(buf[:n], to)
		} else {
			_, err = out.WriteTo(buf[:n], net.UDPAddrFromAddrPort(to))
		}
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			// A refused or unreachable peer (ICMP) must not stop the
			// call; the packet is lost like any UDP packet.
		}
	}
}

func addrPortOf(a net.Addr) netip.AddrPort {
	if u, ok := a.(*net.UDPAddr); ok {
		return u.AddrPort()
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

// Stats returns the counters so far; safe while Run is going.
func (r *Relay) Stats() RelayStats {
	return RelayStats{
		AToB:    Counter{r.count[SideA].packets.Load(), r.count[SideA].bytes.Load()},
		BToA:    Counter{r.count[SideB].packets.Load(), r.count[SideB].bytes.Load()},
		Foreign: r.foreign.Load(),
		NoPeer:  r.noPeer.Load(),
	}
}
