package engine

import "github.com/callbackd/callbackd/internal/screen"

// evaluate looks at the requests monitoring dn after dn's state may have
// changed (F11). cycled: dn just went on hook (end of an off-hook period).
func (e *Engine) evaluate(dn string, cycled bool) {
	ids := e.onLine[dn]
	if len(ids) == 0 {
		return
	}
	free, known := e.status(dn)
	if !known {
		return
	}
	l := e.lines[dn]
	var cands []*Request
	for _, id := range ids {
		r := e.reqs[id]
		if r.State != Active {
			continue // suspended: monitoring paused (F17); available: already told
		}
		if !free {
			if !r.seenOf(dn) {
				r.setSeen(dn)
				e.persist(r) // a restart must not forget that B was busy
			}
			// F22: B cycled the hook but is in DND-Reject: tell A, no Dial,
			// keep monitoring until DND-Reject is off.
			if cycled && l.DND && l.registered && !l.offHook && r.local() && !r.Recall {
				e.show(r.A, screen.Screen{Kind: screen.AvailableDND, DN: dn})
			}
			continue
		}
		if r.seenOf(dn) {
			cands = append(cands, r)
		}
	}
	if len(cands) == 0 {
		return
	}
	if e.p.Policy == FIFO { // F16: one at a time, oldest first
		if e.anyAvailable(dn) {
			return
		}
		for _, r := range cands {
			if e.aBusy(r) {
				e.suspend(r)
				continue
			}
			e.notify(r, dn)
			return
		}
		return
	}
	for _, r := range cands { // F16 Cisco: everybody is alerted
		if e.aBusy(r) {
			e.suspend(r)
		} else {
			e.notify(r, dn)
		}
	}
}

func (e *Engine) anyAvailable(dn string) bool {
	for _, id := range e.onLine[dn] {
		if e.reqs[id].State == Available {
			return true
		}
	}
	return false
}

// aBusy: F17, A is at its busy trigger (only an A of ours can be).
func (e *Engine) aBusy(r *Request) bool { return r.local() && e.busy(r.A) }

// notify tells A that dn (B, or F20's forward target) is available.
func (e *Engine) notify(r *Request, dn string) {
	r.State = Available
	r.Notice, r.NoticeDN = e.now, dn
	wait := e.p.T3
	if r.Recall {
		wait = e.p.WaitTime
	}
	r.T3 = e.now.Add(wait)
	e.persist(r)
	e.sync(r.A, r.B, r.Forward)
	e.emit(StartTimer{TimerID{t3Kind(r), r.ID}, r.T3})
	switch {
	case !r.local(): // terminating side: the peer tells its A
		e.toPeer(r.PeerA, MsgAvailable, r.PeerRef, r)
	case r.Recall: // F29: ring A first
		e.emit(Recall{ID: r.ID, A: r.A, B: dn, Ring: e.p.WaitTime})
	default: // F12
		e.emit(Alert{DN: r.A, About: dn})
		e.show(r.A, screen.Screen{Kind: screen.Available, DN: dn, At: r.Notice})
	}
}

// suspend: F17, B is free but A is busy: no alert, monitoring of B pauses.
// B counts as seen, so that A is notified on resume if B is still free.
func (e *Engine) suspend(r *Request) {
	r.State = Suspended
	if r.PeerB == "" {
		r.Seen = true
		r.SeenForward = r.Forward != ""
	}
	e.persist(r)
	if r.PeerB != "" {
		e.toPeer(r.PeerB, MsgSuspend, r.ID, r)
	}
}

// resume: F17, A is free again: monitoring resumes; B being free, A is
// notified (at the end of the step, by the policy).
func (e *Engine) resume(r *Request) {
	r.State = Active
	e.persist(r)
	if r.PeerB != "" {
		e.toPeer(r.PeerB, MsgResume, r.ID, r)
		return
	}
	e.recheck = append(e.recheck, r.B)
	if r.Forward != "" {
		e.recheck = append(e.recheck, r.Forward)
	}
}

// dialTarget: where the call back call goes for a local B. The call back
// follows B's forwarding (F21 on this server: forward all; forward busy when
// B is busy) and F20's captured target: the target if it is not busy, else
// B. The call is then placed overriding forwarding (F21: placed from the
// notification screen while T3 runs), the choice being made here.
func (e *Engine) dialTarget(r *Request) string {
	lb := e.configured(r.B)
	x := r.Forward
	switch {
	case lb.ForwardAll != "":
		x = lb.ForwardAll
	case lb.ForwardBusy != "" && e.busy(r.B):
		x = lb.ForwardBusy
	}
	if x != "" && x != r.B && e.localPhone(x) != nil && !e.busy(x) {
		return x
	}
	return r.B
}

// dialReq places the call back call and completes r (F14, F21, F24, F29).
func (e *Engine) dialReq(r *Request, holdFirst, onRecall bool) {
	to := r.B
	if r.PeerB == "" {
		if e.configured(r.B) == nil { // F24: B was removed
			e.answer(BRemoved)
			e.emit(Reorder{DN: r.A})
			return
		}
		to = e.dialTarget(r)
	}
	e.answer(Dialed)
	e.emit(PlaceCall{ID: r.ID, From: r.A, To: to, Peer: r.PeerB,
		OverrideForwarding: true, HoldFirst: holdFirst, OnRecall: onRecall})
	e.endShowing(r, EndCompleted, screen.Screen{Kind: screen.Completed, DN: to}, true)
	// The callee is taken by this call: the others waiting on it wait for
	// the end of it (F16: first to dial gets B).
	for _, id := range e.onLine[to] {
		if o := e.reqs[id]; (o.State == Active || o.State == Suspended) && o.seenOf(to) {
			if to == o.B {
				o.Seen = false
			} else {
				o.SeenForward = false
			}
			e.persist(o)
		}
	}
}
