package media

import (
	"net/netip"
	"sync"
	"sync/atomic"
)

// PeerFilter decides which source a leg's RTP is accepted from: key
// presses (RFC 4733 events, in-band audio) and packets to relay. Anyone
// can send a datagram to a port announced in SDP, so a third party could
// otherwise press 5 in another caller's offer or speak into a relayed call.
//
// The rule:
//
//   - The peer's SDP address (c= and m= lines) is where its media comes
//     from: RTP is symmetric (RFC 4961 section 4: send from the port you
//     receive on), which every phone this server talks to does. When that
//     address is a usable unicast address, it is the only source
//     accepted, from the first packet on: a third party sending before
//     the peer does wins nothing (comedia-style latching alone would let
//     it).
//   - Otherwise (0.0.0.0, port 0, multicast: RFC 3264 section 8.4 and
//     RFC 4566 do not name a source then), or when latching is asked for
//     (media.rtp_latch, for phones behind NAT whose SDP carries their
//     private address), the first source that sends is the peer, locked
//     for the life of the filter: later sources never take over.
//
// Packets from any other source are dropped and counted; OnForeign is told
// of each with the count so far, so that a caller can log the first once
// and count the rest. The SSRC is not checked: it changes legitimately
// (RFC 3550 section 8.2, a re-INVITE, hold) and an on-path attacker sees
// it anyway; the source address is what a third party off the path cannot
// choose freely over a NAT or an anti-spoofing network.
//
// Allow is safe for concurrent use with Dest.
type PeerFilter struct {
	sdp   netip.AddrPort                 // from the SDP; invalid when unusable
	peer  atomic.Pointer[netip.AddrPort] // the accepted source; nil until latched
	mu    sync.Mutex                     // serialises latching
	count atomic.Uint64

	// OnForeign, when set, is called for each packet from another source
	// with that source, the accepted one and the number of such packets
	// so far (1 for the first).
	OnForeign func(src, peer netip.AddrPort, n uint64)
	// OnLatch, when set, is called once when the first source is latched
	// (never for a usable SDP address without latching): where the peer's
	// media must go from now on.
	OnLatch func(src netip.AddrPort)
}

// NewPeerFilter returns the filter of a peer whose SDP gives sdp as its RTP
// address; latch makes its first source the peer whatever sdp says.
func NewPeerFilter(sdp netip.AddrPort, latch bool) *PeerFilter {
	f := &PeerFilter{}
	sdp = unmap(sdp)
	if UsableSource(sdp) {
		f.sdp = sdp
		if !latch {
			f.peer.Store(&sdp)
		}
	}
	return f
}

// UsableSource reports whether an SDP address names where a peer's RTP
// comes from: a unicast address and a port. 0.0.0.0 (RFC 2543 hold, "not
// known yet") and multicast say nothing of the sender.
func UsableSource(a netip.AddrPort) bool {
	ip := a.Addr().Unmap()
	return ip.IsValid() && a.Port() != 0 && !ip.IsUnspecified() && !ip.IsMulticast()
}

// Allow reports whether a packet from src is the peer's, latching src when
// no source is fixed yet.
func (f *PeerFilter) Allow(src netip.AddrPort) bool {
	src = unmap(src)
	p := f.peer.Load()
	if p == nil {
		f.mu.Lock()
		latched := false
		if p = f.peer.Load(); p == nil {
			first := src // a copy, so that src itself never escapes (no allocation per packet)
			p = &first
			f.peer.Store(p)
			latched = true
		}
		f.mu.Unlock()
		if latched && f.OnLatch != nil {
			f.OnLatch(src)
		}
	}
	if *p == src {
		return true
	}
	n := f.count.Add(1)
	if f.OnForeign != nil {
		f.OnForeign(src, *p, n)
	}
	return false
}

// Dest is where the peer's media goes: the accepted source, or before one
// is latched the SDP address; false when neither is known.
func (f *PeerFilter) Dest() (netip.AddrPort, bool) {
	if p := f.peer.Load(); p != nil {
		return *p, true
	}
	return f.sdp, f.sdp.IsValid()
}

// Foreign is the number of packets dropped as from another source.
func (f *PeerFilter) Foreign() uint64 { return f.count.Load() }

// unmap turns an IPv4-mapped IPv6 source (from a dual-stack socket) into
// plain IPv4 so addresses compare equal.
func unmap(a netip.AddrPort) netip.AddrPort { return netip.AddrPortFrom(a.Addr().Unmap(), a.Port()) }
