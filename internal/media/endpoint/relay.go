package endpoint

import (
	"context"
	"net/netip"

	"github.com/callbackd/callbackd/internal/media"
)

// Relay is the server relaying RTP between the two legs of a call: the
// sockets of two endpoints.
type Relay struct {
	r      *media.Relay
	a, b   *Endpoint
	cancel context.CancelFunc
	done   chan struct{}
}

// StartRelay relays between two endpoints' sockets, each leg's media
// taken only from, and sent to, the address of its SDP (symmetric RTP, RFC
// 4961), or its first source when latching (media.PeerFilter). A third
// party's packets are dropped, counted and logged once per leg.
func StartRelay(a, b *Endpoint) *Relay {
	a.Stop()
	b.Stop()
	r := &Relay{r: media.NewRelay(a.conn, b.conn), a: a, b: b, done: make(chan struct{})}
	r.r.OnForeign = func(side media.Side, src, peer netip.AddrPort, _ uint64) {
		if side == media.SideA {
			a.foreign(src, peer)
		} else {
			b.foreign(src, peer)
		}
	}
	r.r.SetPeer(media.SideA, a.Remote(), a.latch)
	r.r.SetPeer(media.SideB, b.Remote(), b.latch)
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() {
		defer close(r.done)
		_ = r.r.Run(ctx)
	}()
	return r
}

func (r *Relay) Stop() {
	r.cancel()
	<-r.done
}

// Remotes are the addresses the relay sends to, for the stored call.
func (r *Relay) Remotes() (netip.AddrPort, netip.AddrPort) {
	return r.a.Remote(), r.b.Remote()
}

// Locals are our sockets of the relay, facing A and B (ip:port), for the
// stored call.
func (r *Relay) Locals() (a, b string) {
	return r.a.conn.LocalAddr().String(), r.b.conn.LocalAddr().String()
}
