package engine

import (
	"time"

	"github.com/callbackd/callbackd/internal/dialplan"
	"github.com/callbackd/callbackd/internal/screen"
)

// Call completion across servers (F3, F17, F21), the seeds' QSIG role. The
// originating side (A's server) owns the request and its T1/T3; the
// terminating side (B's server) keeps a request of its own that monitors B
// for the peer's A. Ref is always the originating request's ID.

func (e *Engine) fromPeer(m PeerMessage) {
	switch m.Type {
	case MsgAccept, MsgReject, MsgAvailable, MsgEnd:
		e.atOrigin(m)
	case MsgRequest:
		e.peerRequest(m)
	case MsgSuspend, MsgResume, MsgCancel:
		e.atTerminus(m)
	}
}

// atOrigin: messages about our own request m.Ref.
func (e *Engine) atOrigin(m PeerMessage) {
	r := e.reqs[m.Ref]
	if r == nil || r.PeerB != m.Peer {
		return // unknown or stale (ended here already)
	}
	switch m.Type {
	case MsgAccept:
		if r.State == Activating {
			e.accepted(r)
		}
	case MsgReject:
		e.end(r, EndRejected) // F8
	case MsgAvailable:
		if r.State == Activating {
			e.accepted(r)
		}
		if r.State != Active {
			return
		}
		if e.aBusy(r) { // F17 across servers: suspend
			e.suspend(r)
			return
		}
		e.notify(r, r.B)
	case MsgEnd:
		e.end(r, EndPeer)
	}
}

func (e *Engine) accepted(r *Request) {
	e.emit(CancelTimer{TimerID{TimerT1, r.ID}})
	r.T1 = time.Time{}
	r.State = Active
	e.persist(r)
	e.sync(r.A)
	e.show(r.A, screen.Screen{Kind: screen.Activated, DN: r.B}) // F4, after the accept
}

// peerRequest: a peer asks us to monitor our line m.B for its caller m.A.
func (e *Engine) peerRequest(m PeerMessage) {
	key := peerKey{m.Peer, m.Ref}
	if _, dup := e.byRef[key]; dup { // the peer restarted and asks again
		e.toPeer(m.Peer, MsgAccept, m.Ref, nil)
		return
	}
	lb := e.localPhone(m.B)
	ok := e.p.Enabled && lb != nil && lb.ForwardAll == "" && dialplan.IsNumber(m.B) && dialplan.IsNumber(m.A) &&
		e.validName(lb.Name) && (m.Kind == CCBS || m.Kind == CCNL || (m.Kind == CCNR && e.p.CCNREnabled))
	if !ok {
		e.toPeer(m.Peer, MsgReject, m.Ref, nil)
		return
	}
	e.lastID++
	r := &Request{
		ID: e.lastID, A: m.A, B: m.B, Kind: m.Kind, State: Active,
		Created: e.now, Expires: e.now.Add(e.p.lifetime(m.Kind)),
		PeerA: m.Peer, PeerRef: m.Ref,
	}
	r.Seen = r.Kind != CCNR || e.notAvailable(r.B)
	e.add(r)
	e.persist(r)
	e.sync(r.B)
	e.emit(StartTimer{TimerID{TimerLifetime, r.ID}, r.Expires})
	e.toPeer(m.Peer, MsgAccept, m.Ref, nil)
	e.recheck = append(e.recheck, r.B)
}

// atTerminus: the peer's A side suspends, resumes or cancels.
func (e *Engine) atTerminus(m PeerMessage) {
	id, ok := e.byRef[peerKey{m.Peer, m.Ref}]
	if !ok {
		return
	}
	r := e.reqs[id]
	switch m.Type {
	case MsgSuspend: // F17: A is busy, pause monitoring B
		if r.State != Active && r.State != Available {
			return
		}
		if r.State == Available {
			e.emit(CancelTimer{TimerID{TimerT3, r.ID}})
			r.T3 = time.Time{}
			e.recheck = append(e.recheck, r.B) // FIFO: the next one may go
		}
		r.State = Suspended
		r.Seen = true
		e.persist(r)
		e.sync(r.B)
	case MsgResume: // F17: A is free: monitor again; B free -> available now
		if r.State != Suspended {
			return
		}
		r.State = Active
		e.persist(r)
		e.recheck = append(e.recheck, r.B)
	case MsgCancel:
		e.end(r, EndCancelled)
	}
}

// peerCall: the peer's call completion call arrived. F21: within T3 A
// always reaches B (forwarding overridden); after it, B's forwarding applies.
func (e *Engine) peerCall(p PeerCall) {
	id, ok := e.byRef[peerKey{p.Peer, p.Ref}]
	if !ok {
		e.emit(Admit{Peer: p.Peer, Ref: p.Ref, To: p.B})
		return
	}
	r := e.reqs[id]
	if r.State != Available {
		e.emit(Admit{Peer: p.Peer, Ref: p.Ref, To: r.B})
		return
	}
	e.emit(Admit{Peer: p.Peer, Ref: p.Ref, To: r.B, OverrideForwarding: true})
	e.end(r, EndCompleted)
}
