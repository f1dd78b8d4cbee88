package engine

import (
	"strings"
	"time"

	"github.com/callbackd/callbackd/internal/dialplan"
	"github.com/callbackd/callbackd/internal/screen"
)

// activation is a checked request to be created.
type activation struct {
	A, B    string
	Kind    Kind
	Forward string // F20
	PeerB   string // F3
	Recall  bool   // F29
}

// callUpdate records A's last call; a failed one that a call back can follow
// is offered to A (F28: announcement / CallBack softkey).
func (e *Engine) callUpdate(c CallUpdate) {
	e.sweepCalls()
	e.calls[c.From] = lastCall{CallUpdate: c, at: e.now}
	switch c.Outcome {
	case Busy, NoAnswer, Unregistered, DNDReject:
		if !e.p.Enabled {
			return
		}
		if act, no := e.check(c.From, c); no == nil {
			e.emit(Offer{A: c.From, B: act.B, Kind: act.Kind, Form: e.p.offerForm(act.Kind)})
		}
	}
}

// sweepCalls forgets old last calls now and then, so that callers from
// trunks (F30) do not grow the map forever.
func (e *Engine) sweepCalls() {
	if len(e.calls) < 2*e.callsGC+1024 {
		return
	}
	keep := max(e.p.OfferWindow, time.Hour)
	for dn, c := range e.calls {
		if e.now.Sub(c.at) > keep {
			delete(e.calls, dn)
		}
	}
	e.callsGC = len(e.calls)
}

func (e *Engine) key(k KeyPress) {
	switch k.Key {
	case KeyCallBack:
		if l := e.configured(k.DN); l != nil && l.NoCallBack { // F33
			e.keyNotActive(k.DN)
			return
		}
		e.callBack(k)
	case KeyDial:
		r := e.current(k.DN)
		if r == nil || r.State != Available || k.Request != 0 && r.ID != k.Request {
			if k.Request != 0 { // the API answers it (409): no screen
				e.answer(NotAvailable)
				return
			}
			e.keyNotActive(k.DN)
			return
		}
		// F14: A's call is put on hold first.
		e.dialReq(r, k.State == Connected || k.State == ConnectedTransfer, false)
	case KeyCancel:
		delete(e.pending, k.DN)
		if r := e.reqs[k.Request]; r != nil && r.PeerA != "" && r.A == k.DN {
			// The operator on B's server cancels the request it keeps for
			// the peer's A: the peer is told (MsgEnd), so A's side ends too.
			e.answer(Cancelled)
			e.end(r, EndCancelled)
			e.toPeer(r.PeerA, MsgEnd, r.PeerRef, r)
			return
		}
		r := e.current(k.DN)
		if r == nil {
			e.notActive(k.DN)
			return
		}
		e.answer(Cancelled)
		e.end(r, EndCancelled)
	case KeyExit: // F6: Exit keeps the active request; F13: closes the screen
		delete(e.pending, k.DN)
		e.answer(Closed)
		e.show(k.DN, screen.Screen{Kind: screen.None})
	case KeyOK: // F6: OK replaces the old request
		p, ok := e.pending[k.DN]
		delete(e.pending, k.DN)
		if !ok || e.now.Sub(p.at) > e.p.T1 {
			e.keyNotActive(k.DN)
			return
		}
		if old := e.current(k.DN); old != nil {
			e.end(old, EndReplaced)
		}
		e.activate(p.act)
		if r := e.current(k.DN); r != nil && r.State == Activating {
			// The question is answered; the new screen comes with the
			// peer's accept (B3), the old one must not stay.
			e.show(k.DN, screen.Screen{Kind: screen.None})
		}
	}
}

type found int

const (
	foundNone     found = iota // nothing to activate on
	foundCall                  // a call to activate on
	foundTooEarly              // F2: pressed before B rings
)

// callBack: the CallBack key / `*39` / `*39<DN>` / DTMF 5.
func (e *Engine) callBack(k KeyPress) {
	a := k.DN
	if !e.p.Enabled {
		e.keyNotActive(a)
		return
	}
	switch k.State { // F2: live on hook, in ring out, in connected transfer
	case OnHook, RingOut, ConnectedTransfer:
	default:
		e.keyNotActive(a)
		return
	}
	cur := e.current(a)
	if k.Code { // `*39` on a phone without softkeys: the screen says what it does
		if p, ok := e.pending[a]; ok && e.now.Sub(p.at) <= e.p.T1 && (k.Target == "" || k.Target == p.act.B) {
			e.key(KeyPress{DN: a, Key: KeyOK, State: k.State, Code: true}) // F6 shown: OK
			return
		}
		if cur != nil && cur.State == Available && k.Target == "" {
			e.dialReq(cur, false, false) // T3 runs: Dial, whatever failed since (F12, F14)
			return
		}
	}
	c, f := e.targetCall(k, cur)
	switch f {
	case foundTooEarly:
		e.keyNotActive(a)
		return
	case foundNone: // nothing new: show the state (F13, F26) or F7
		switch {
		case cur == nil:
			e.notActive(a)
		case cur.State == Available && k.Code:
			e.dialReq(cur, false, false) // `*39` is Dial when B is available
		default:
			e.showState(cur)
		}
		return
	}
	act, no := e.check(a, c)
	if no != nil {
		e.refuse(a, *no)
		return
	}
	if cur != nil {
		if cur.B == act.B && cur.PeerB == act.PeerB {
			if cur.State == Available && k.Code {
				e.dialReq(cur, false, false)
			} else {
				e.showState(cur)
			}
			return
		}
		// F5: one request per caller; F6: ask before replacing it.
		e.pending[a] = pendingReplace{act: act, at: e.now}
		e.answer(AskReplace)
		if cur.State == Available { // F26: say B was already available
			e.show(a, screen.Screen{Kind: screen.ReplaceAvailable, OldDN: cur.NoticeDN, DN: act.B, At: cur.Notice})
		} else {
			e.show(a, screen.Screen{Kind: screen.Replace, OldDN: cur.B, DN: act.B})
		}
		return
	}
	e.activate(act)
}

func (e *Engine) showState(r *Request) {
	e.answer(Shown)
	switch r.State {
	case Activating: // the screen comes with the peer's accept (B3: not before)
		return
	case Available: // F13: the same availability screen again
		e.show(r.A, screen.Screen{Kind: screen.Available, DN: r.NoticeDN, At: r.Notice})
	default:
		e.show(r.A, screen.Screen{Kind: screen.Activated, DN: r.B})
	}
}

// failed: outcomes a call back can follow.
func failed(o Outcome) bool {
	switch o {
	case Ringing, Busy, NoAnswer, Unregistered, DNDReject:
		return true
	}
	return false
}

// targetCall finds the call the key acts on; cur is A's request.
func (e *Engine) targetCall(k KeyPress, cur *Request) (CallUpdate, found) {
	last, has := e.calls[k.DN]
	// A failed call that no request was made from yet (one call, one call back).
	usable := has && !last.used && failed(last.Outcome)
	recent := usable && e.now.Sub(last.at) <= e.p.OfferWindow
	if cur != nil && cur.State == Available && !last.at.After(cur.Notice) {
		// On hook, the availability screen came after that call: the key
		// shows it again (F13) rather than asking about the older call.
		recent = false
	}
	if k.Target != "" { // `*39<DN>`
		if usable && (last.To == k.Target || last.Reached == k.Target) && (recent || k.State != OnHook) {
			return last.CallUpdate, foundCall
		}
		return e.guessCall(k.DN, k.Target), foundCall
	}
	switch {
	case k.State == OnHook && recent: // UCware: `*39` after hanging up
		return last.CallUpdate, foundCall
	case k.State == OnHook, has && last.used: // nothing new: show the state
		return CallUpdate{}, foundNone
	case !usable: // ring out, connected transfer: B is not ringing (yet)
		return CallUpdate{}, foundTooEarly
	}
	return last.CallUpdate, foundCall
}

// guessCall: `*39<DN>` without a call to it: the kind follows B's state now.
func (e *Engine) guessCall(a, b string) CallUpdate {
	c := CallUpdate{From: a, To: b, Outcome: NoAnswer}
	l := e.configured(b)
	switch {
	case l == nil || l.Peer != "":
		c.Outcome = Busy // unknown (F8 follows) or remote: the peer will tell
	case !l.statusKnown:
	case !l.registered:
		c.Outcome = Unregistered
	case l.DND:
		c.Outcome = DNDReject
	case l.full:
		c.Outcome = Busy
	}
	return c
}

// refusal: no call back can follow a call: the key is not active (why
// NotRefused), or it cannot be activated on dn, for why.
type refusal struct {
	dn  string
	why Refusal
}

// refuse tells A, who pressed the key, that no call back follows.
func (e *Engine) refuse(a string, no refusal) {
	if no.why == NotRefused {
		e.keyNotActive(a)
		return
	}
	e.answer(CannotActivate)
	if e.pressed != nil {
		e.pressed.Why = no.why
	}
	e.show(a, screen.Screen{Kind: screen.CannotActivate, DN: no.dn})
}

func (e *Engine) notActive(a string) {
	e.answer(NotActive)
	e.show(a, screen.Screen{Kind: screen.NotActive})
}

// check decides whether A may have a call back for call c, and on whom.
// no says why not.
func (e *Engine) check(a string, c CallUpdate) (act activation, no *refusal) {
	keyNotActive := &refusal{}
	cannot := func(dn string, why Refusal) *refusal { return &refusal{dn, why} }

	switch c.Outcome {
	case Busy, DNDReject: // F22: DND-Reject on B, A hears fast busy and may activate
		act.Kind = CCBS
	case Ringing, NoAnswer:
		act.Kind = CCNR
	case Unregistered:
		act.Kind = CCNL
	default:
		return act, keyNotActive // F10: connected (to voicemail); F2: not ringing yet
	}
	la := e.configured(a)
	if la != nil && la.NoCallBack { // F33: the line has no CallBack key
		return act, keyNotActive
	}
	external := la == nil || la.Peer != ""
	if external && !e.p.External { // F30 CC_EXTERNAL
		return act, keyNotActive
	}
	if act.Kind == CCNR && !e.p.CCNREnabled { // F30 CC_CCNR_ENABLED
		return act, keyNotActive
	}
	act.A = a
	act.Recall = external || la.AutoRecall // F29; an external A has no screen
	b := c.To
	aName := c.FromName
	if aName == "" && la != nil {
		aName = la.Name
	}
	// F9: digits and spaces only in numbers; no '#' or '*' in names.
	if !dialplan.IsNumber(a) || !dialplan.IsNumber(b) || !e.validName(aName) || !e.validName(c.ToName) {
		return act, cannot(b, BadCharacters)
	}
	lb := e.configured(b)
	peer, peerCC := c.Peer, c.PeerCC
	if peer == "" && lb != nil && lb.Peer != "" {
		peer, peerCC = lb.Peer, lb.PeerCC
	}
	if peer != "" { // F3: B behind another server
		if !peerCC {
			return act, cannot(b, NoCallCompletion) // F8: no call-completion route
		}
		act.B, act.PeerB = b, peer
		return act, nil
	}
	if lb == nil {
		return act, cannot(b, UnknownDN) // F8: unknown DN
	}
	reached := c.Reached
	switch lb.Kind {
	case Voicemail:
		return act, cannot(b, ToVoicemail)
	case RoutePoint: // F27: the call back is on the line it handed the call to
		lr := e.localPhone(reached)
		if lr == nil || !dialplan.IsNumber(reached) {
			return act, cannot(b, NoLineReached)
		}
		b, lb, reached = reached, lr, ""
	}
	if !e.validName(lb.Name) {
		return act, cannot(b, BadCharacters)
	}
	if lb.ForwardAll != "" { // F10: B forwards all calls
		return act, cannot(b, ForwardsAll)
	}
	if reached != "" && reached != b {
		if lr := e.configured(reached); lr != nil && lr.Kind == Voicemail {
			// F10: voicemail busy or failed: the call now belongs to the pilot
			return act, cannot(reached, ToVoicemail)
		}
		if e.localPhone(reached) != nil && dialplan.IsNumber(reached) {
			act.Forward = reached // F20
		}
	}
	if a == b {
		return act, cannot(b, OwnLine)
	}
	act.B = b
	return act, nil
}

// validName: F9 for names: no '#' or '*'; with StrictNames, digits and
// spaces only.
func (e *Engine) validName(s string) bool {
	if e.p.StrictNames {
		return dialplan.DigitsAndSpaces(s)
	}
	return !strings.ContainsAny(s, "#*")
}

// activate creates the request: local B at once, remote B once the peer
// accepts (T1). Persisted before A is told (B3).
func (e *Engine) activate(act activation) {
	e.answer(Activated)
	e.lastID++
	r := &Request{
		ID: e.lastID, A: act.A, B: act.B, Kind: act.Kind,
		Created: e.now, Expires: e.now.Add(e.p.lifetime(act.Kind)),
		Forward: act.Forward, PeerB: act.PeerB, Recall: act.Recall,
	}
	if c, ok := e.calls[r.A]; ok {
		c.used = true
		e.calls[r.A] = c
	}
	if r.PeerB != "" {
		r.State = Activating
		r.T1 = e.now.Add(e.p.T1)
		e.add(r)
		e.persist(r)
		e.emit(StartTimer{TimerID{TimerT1, r.ID}, r.T1})
		e.emit(StartTimer{TimerID{TimerLifetime, r.ID}, r.Expires})
		e.toPeer(r.PeerB, MsgRequest, r.ID, r)
		return
	}
	r.State = Active
	// F11: CCBS and CCNL start with B seen not available; CCNR waits for
	// B's next call. With F20 the kind is about the forward target.
	if r.Forward == "" {
		r.Seen = r.Kind != CCNR || e.notAvailable(r.B)
	} else {
		r.Seen = e.notAvailable(r.B)
		r.SeenForward = r.Kind != CCNR || e.notAvailable(r.Forward)
	}
	e.add(r)
	e.persist(r)
	e.sync(r.A, r.B, r.Forward)
	e.emit(StartTimer{TimerID{TimerLifetime, r.ID}, r.Expires})
	e.show(r.A, screen.Screen{Kind: screen.Activated, DN: r.B})
	// B may have become free between the failed call and the key.
	e.recheck = append(e.recheck, r.B)
	if r.Forward != "" {
		e.recheck = append(e.recheck, r.Forward)
	}
}

// recallAnswered: F29, A answered the automatic recall: dial B.
func (e *Engine) recallAnswered(ev RecallAnswered) {
	r := e.reqs[ev.ID]
	if r == nil || r.State != Available || !r.Recall || !r.local() {
		e.emit(Reorder{DN: ev.DN})
		return
	}
	e.dialReq(r, false, true)
}
