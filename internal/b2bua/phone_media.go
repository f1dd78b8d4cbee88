package b2bua

import (
	"net/netip"

	"github.com/callbackd/callbackd/internal/media/endpoint"
)

// ports opens the server's media endpoints (internal/media/endpoint) on the
// legs where the server itself is a party: the offer and the recall, and
// the relay of a recalled call. A zero MediaIP means the SIP address.
func (b *B2BUA) ports() endpoint.Ports {
	ip := b.cfg.MediaIP
	if !ip.IsValid() {
		ip = netip.AddrFrom4([4]byte{127, 0, 0, 1})
		if a, ok := netip.AddrFromSlice(b.msg.IP()); ok {
			ip = a.Unmap()
		}
	}
	return endpoint.Ports{IP: ip, Min: b.cfg.RTPPortMin, Max: b.cfg.RTPPortMax, Latch: b.cfg.RTPLatch,
		Log: b.log, OnStats: b.OnMediaStats, OnForeign: b.OnForeignRTP}
}

// newEndpoint opens an endpoint toward party (a line or a number, for the
// log).
func (b *B2BUA) newEndpoint(party string) (*endpoint.Endpoint, error) {
	return b.ports().Open(party)
}
