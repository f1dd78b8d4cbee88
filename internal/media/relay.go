package media

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
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
	// Foreign counts packets from a source other than the latched peer;
	// NoPeer those dropped because the other leg's address is unknown.
	Foreign, NoPeer uint64
}

type peer struct {
	addr    netip.AddrPort
	latched bool
}

type counter struct{ packets, bytes atomic.Uint64 }

// Relay forwards datagrams between two sockets, one per leg, for calls
// where the server stays in the media path. Each leg's remote address is
// learned from its first packet, symmetric RTP style (RFC 4961: a peer
// sends from the port it receives on), which also gets through NAT; an
// address from SDP given to SetPeer is only used until then. Once latched,
// packets from any other source are dropped.
type Relay struct {
	conns [2]net.PacketConn
	peers [2]atomic.Pointer[peer]
	count [2]counter // by the leg the packet came from
	foreign,
	noPeer atomic.Uint64
	mu sync.Mutex
}

// NewRelay relays between a (facing leg A) and b (facing leg B).
func NewRelay(a, b net.PacketConn) *Relay {
	return &Relay{conns: [2]net.PacketConn{a, b}}
}

// SetPeer sets the address to send leg side's media to until its first
// packet arrives (the address of the SDP).
func (r *Relay) SetPeer(side Side, addr netip.AddrPort) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p := r.peers[side].Load(); p != nil && p.latched {
		return
	}
	r.peers[side].Store(&peer{addr: unmap(addr)})
}

// unmap turns an IPv4-mapped IPv6 source (from a dual-stack socket) into
// plain IPv4 so addresses compare equal.
func unmap(a netip.AddrPort) netip.AddrPort { return netip.AddrPortFrom(a.Addr().Unmap(), a.Port()) }

// route decides what to do with a packet that arrived on from's socket
// from src: the address to forward it to on the other socket.
func (r *Relay) route(from Side, src netip.AddrPort) (netip.AddrPort, bool) {
	p := r.peers[from].Load()
	if p == nil || !p.latched {
		r.mu.Lock()
		if p = r.peers[from].Load(); p == nil || !p.latched {
			p = &peer{addr: src, latched: true}
			r.peers[from].Store(p)
		}
		r.mu.Unlock()
	}
	if p.addr != src {
		r.foreign.Add(1)
		return netip.AddrPort{}, false
	}
	to := r.peers[1-from].Load()
	if to == nil {
		r.noPeer.Add(1)
		return netip.AddrPort{}, false
	}
	return to.addr, true
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
