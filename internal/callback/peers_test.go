package callback

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/callbackd/callbackd/internal/engine"
)

// peers records what the executor sends to peer servers.
type peers chan engine.PeerMessage

func (p peers) Send(m engine.PeerMessage) { p <- m }

// F3 on the monitor side: a peer's request for our line is accepted
// through the one executor (Peers.Send), stored, and B's availability
// goes to the peer; the peer's call completion call within T3 is admitted
// with B's forwarding overridden (F21), and completes the request.
func TestF21_PeerRequestAndCallThroughExecutor(t *testing.T) {
	out := make(peers, 16)
	f := startWith(t, filepath.Join(t.TempDir(), "s.db"), func(s *Service) { s.Peers = out }, "2001")
	f.lines.Offer("2001", "c1") // B busy in a call
	f.lines.Answered("2001", "c1")

	f.svc.Do(engine.FromPeer{Msg: engine.PeerMessage{Peer: "pbx-a", Type: engine.MsgRequest, Ref: 5, A: "1001", B: "2001", Kind: engine.CCBS}})
	expectPeer(t, out, engine.MsgAccept)
	if reqs := f.svc.Requests(); len(reqs) != 1 || reqs[0].PeerA != "pbx-a" {
		t.Fatalf("requests after the peer's request: %+v", reqs)
	}
	f.lines.Ended("2001", "c1") // B hangs up
	expectPeer(t, out, engine.MsgAvailable)

	ad := f.svc.PeerCall("pbx-a", 5, "2001")
	if ad.To != "2001" || !ad.OverrideForwarding {
		t.Fatalf("admit within T3: %+v, want to 2001 overriding forwarding", ad)
	}
	if reqs := f.svc.Requests(); len(reqs) != 0 {
		t.Fatalf("the request stays after its call completion call: %+v", reqs)
	}
	// Unknown to us (ended, or never ours): the call goes as dialed.
	if ad := f.svc.PeerCall("pbx-a", 6, "2001"); ad.To != "2001" || ad.OverrideForwarding {
		t.Fatalf("admit of an unknown request: %+v", ad)
	}
}

func expectPeer(t *testing.T, out peers, want engine.MsgType) {
	t.Helper()
	select {
	case m := <-out:
		if m.Type != want || m.Peer != "pbx-a" || m.Ref != 5 {
			t.Fatalf("to the peer: %v, want %s for pbx-a ref 5", m, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("nothing sent to the peer, want %s", want)
	}
}
