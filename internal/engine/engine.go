package engine

import (
	"cmp"
	"slices"
	"time"

	"github.com/callbackd/callbackd/internal/screen"
)

// Engine is the Call Back engine. It is not safe for concurrent use: feed it
// from one goroutine (or under a lock), like raft's RawNode.
type Engine struct {
	p Params

	lines   map[string]*lineState
	calls   map[string]lastCall       // A's last call (the CallBack key acts on it)
	pending map[string]pendingReplace // F6: A saw the replace screen, OK pending
	callsGC int                       // size of calls after the last sweep

	reqs    map[int64]*Request
	byA     map[string]int64   // F5: A's one request (A on this side)
	onLine  map[string][]int64 // local monitored line (B, or F20's Forward) -> requests, oldest first
	byRef   map[peerKey]int64  // terminating side: the peer's request -> ours
	watched map[string]bool    // F38
	lastID  int64

	now       time.Time
	out       []Action
	restoring bool
	recheck   []string // lines to evaluate again at the end of the step
	pressed   *Pressed // the key press being stepped: what it came to
}

type lineState struct {
	DN, Name string
	// The rest of the line's configuration, read only: most lines have
	// none of it set and share plainLine, so a line costs 48 bytes, not
	// 128 (issue 14: 100k lines).
	*lineSettings
	configured  bool // known to the directory (LineConfig seen)
	statusKnown bool
	registered  bool
	offHook     bool
	full        bool
}

// lineSettings is a Line but its DN and name.
type lineSettings struct {
	Kind                                     LineKind
	Peer                                     string
	PeerCC, DND                              bool
	ForwardAll, ForwardBusy, ForwardNoAnswer string
	AutoRecall, NoCallBack                   bool
}

// plainLine is the settings of a phone with nothing set; shared by every
// such line, never written.
var plainLine = &lineSettings{}

func settingsOf(l Line) *lineSettings {
	s := lineSettings{Kind: l.Kind, Peer: l.Peer, PeerCC: l.PeerCC, DND: l.DND,
		ForwardAll: l.ForwardAll, ForwardBusy: l.ForwardBusy, ForwardNoAnswer: l.ForwardNoAnswer,
		AutoRecall: l.AutoRecall, NoCallBack: l.NoCallBack}
	if s == *plainLine {
		return plainLine
	}
	return &s
}

type lastCall struct {
	CallUpdate
	at   time.Time
	used bool // a request was made from it: one failed call, one call back
}

type pendingReplace struct {
	act activation
	at  time.Time
}

type peerKey struct {
	peer string
	ref  int64
}

// New returns an engine with no lines and no requests. Zero durations in p
// take their defaults.
func New(p Params) *Engine {
	return &Engine{
		p:       p.normalized(),
		lines:   map[string]*lineState{},
		calls:   map[string]lastCall{},
		pending: map[string]pendingReplace{},
		reqs:    map[int64]*Request{},
		byA:     map[string]int64{},
		onLine:  map[string][]int64{},
		byRef:   map[peerKey]int64{},
		watched: map[string]bool{},
	}
}

// Params returns the parameters in use.
func (e *Engine) Params() Params { return e.p }

// Step applies one event at time now and returns the actions to carry out,
// in order. It is the only way the engine's state changes.
func (e *Engine) Step(now time.Time, ev Event) []Action {
	e.now = now
	switch ev := ev.(type) {
	case LineConfig:
		e.lineConfig(ev.Line)
	case LineRemoved:
		e.lineRemoved(ev.DN)
	case LineStatus:
		e.lineStatus(ev)
	case DeviceReset:
		e.deviceReset(ev.DN)
	case Unmonitorable:
		e.unmonitorable(ev.DN)
	case Mobility:
		e.mobility(ev.DN)
	case CallUpdate:
		e.callUpdate(ev)
	case KeyPress:
		e.pressed = &Pressed{DN: ev.DN, Key: ev.Key}
		e.key(ev)
	case RecallAnswered:
		e.recallAnswered(ev)
	case TimerFired:
		e.fire(ev.Timer)
	case FromPeer:
		e.fromPeer(ev.Msg)
	case PeerCall:
		e.peerCall(ev)
	case SetParams:
		e.p = ev.Params.normalized()
	}
	return e.flush()
}

// Restore loads the stored requests after a restart (call it once, on a new
// engine, after the directory and line status were fed): it re-watches the
// lines, re-arms the timers, asks peers again for requests still waiting for
// their accept, and fires now, in deadline order, the deadlines that passed
// while the server was down. The engine keeps reqs' elements: the caller
// must not use the slice afterwards.
func (e *Engine) Restore(now time.Time, reqs []Request) []Action {
	e.now = now
	if len(e.reqs) == 0 { // a start: room for them all at once, not by doubling
		e.reqs = make(map[int64]*Request, len(reqs))
		e.byA = make(map[string]int64, len(reqs))
	}
	// The requests stay where reqs holds them (the caller hands the slice
	// over): a start with 100k spent a tenth of its restore allocating
	// and copying them one by one.
	rs := make([]*Request, 0, len(reqs))
	for i := range reqs {
		rs = append(rs, &reqs[i])
	}
	slices.SortStableFunc(rs, func(a, b *Request) int { return cmp.Compare(a.ID, b.ID) })
	kept := rs[:0]
	for _, r := range rs {
		e.lastID = max(e.lastID, r.ID)
		if e.reqs[r.ID] != nil {
			continue // the same ID twice: the store holds one, the first wins
		}
		if !e.restorable(r) { // a bad record must not break the rest (F5, B3)
			e.emit(Delete{ID: r.ID, Reason: EndInvalid})
			continue
		}
		e.add(r)
		kept = append(kept, r)
	}
	rs = kept
	// First what expired while the server was down, in deadline order...
	var dues []armed
	var buf [3]armed
	for _, r := range rs {
		for _, t := range appendTimers(buf[:0], r) {
			if !t.at.After(now) {
				dues = append(dues, t)
			}
		}
	}
	slices.SortStableFunc(dues, func(a, b armed) int { return a.at.Compare(b.at) })
	e.restoring = true // nothing is watched yet: watch once, below
	for _, d := range dues {
		e.fire(d.id)
	}
	e.restoring = false
	// ...then the requests still open carry on.
	for _, r := range rs {
		if e.reqs[r.ID] != r {
			continue
		}
		e.sync(r.A, r.B, r.Forward)
		if r.State == Activating {
			e.toPeer(r.PeerB, MsgRequest, r.ID, r)
		}
		if r.State == Available && r.Recall && r.local() {
			// F29, B3: the recall's ringing died with the process; A's
			// phones ring again for the rest of the wait.
			e.emit(Recall{ID: r.ID, A: r.A, B: cmp.Or(r.NoticeDN, r.B), Ring: r.T3.Sub(now), Again: true})
		}
		for _, t := range appendTimers(buf[:0], r) {
			e.emit(StartTimer{t.id, t.at})
		}
	}
	return e.flush()
}

// restorable checks a stored record before it is trusted.
func (e *Engine) restorable(r *Request) bool {
	if r.ID <= 0 || r.A == "" || r.B == "" || r.Expires.IsZero() {
		return false
	}
	switch r.Kind {
	case CCBS, CCNR, CCNL:
	default:
		return false
	}
	switch r.State {
	case Activating:
		if r.PeerB == "" || r.T1.IsZero() {
			return false
		}
	case Available:
		if r.T3.IsZero() {
			return false
		}
	case Active, Suspended:
	default:
		return false
	}
	if r.State != Activating && !r.T1.IsZero() || r.State != Available && !r.T3.IsZero() {
		return false
	}
	if r.PeerA != "" && r.PeerB != "" {
		return false
	}
	if r.local() {
		_, dup := e.byA[r.A] // F5: one per caller; the older one wins
		return !dup
	}
	_, dup := e.byRef[peerKey{r.PeerA, r.PeerRef}]
	return !dup
}

// Requests returns a copy of every open request, by ID.
func (e *Engine) Requests() []Request {
	out := make([]Request, 0, len(e.reqs))
	for _, r := range e.reqs {
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b Request) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// Watched returns the lines the engine currently watches (F38), sorted.
func (e *Engine) Watched() []string {
	var out []string
	for dn, w := range e.watched {
		if w {
			out = append(out, dn)
		}
	}
	slices.Sort(out)
	return out
}

func (e *Engine) flush() []Action {
	for len(e.recheck) > 0 {
		dn := e.recheck[0]
		e.recheck = e.recheck[1:]
		e.evaluate(dn, false)
	}
	if p := e.pressed; p != nil { // last: its State is the step's outcome
		e.pressed = nil
		if r := e.current(p.DN); r != nil {
			p.State = r.State
		}
		e.emit(*p)
	}
	out := e.out
	e.out = nil
	return out
}

func (e *Engine) emit(a Action) { e.out = append(e.out, a) }

// show puts s on dn's screen. Any screen but the F6 question replaces that
// question: OK (and `*39` as OK) answers it only while it is shown.
func (e *Engine) show(dn string, s screen.Screen) {
	if s.Kind != screen.Replace && s.Kind != screen.ReplaceAvailable {
		delete(e.pending, dn)
	}
	e.emit(ShowScreen{DN: dn, Screen: s})
}

func (e *Engine) keyNotActive(dn string) {
	e.answer(KeyInactive)
	e.show(dn, screen.Screen{Kind: screen.KeyNotActive})
}

// answer records what the key press being stepped came to; outside a key
// press (a recall answered) there is nobody to answer.
func (e *Engine) answer(r KeyResult) {
	if e.pressed != nil {
		e.pressed.Result, e.pressed.Why = r, NotRefused
	}
}

func (e *Engine) persist(r *Request) { e.emit(Persist{Request: *r}) }

func (e *Engine) toPeer(peer string, t MsgType, ref int64, r *Request) {
	m := PeerMessage{Peer: peer, Type: t, Ref: ref}
	if t == MsgRequest {
		m.A, m.B, m.Kind = r.A, r.B, r.Kind
	}
	e.emit(ToPeer{Msg: m})
}

func (e *Engine) line(dn string) *lineState {
	l := e.lines[dn]
	if l == nil {
		l = &lineState{DN: dn, lineSettings: plainLine}
		e.lines[dn] = l
	}
	return l
}

// configured returns the line if the directory knows it.
func (e *Engine) configured(dn string) *lineState {
	if l := e.lines[dn]; l != nil && l.configured {
		return l
	}
	return nil
}

// localPhone: a line of this server that a call back can watch.
func (e *Engine) localPhone(dn string) *lineState {
	if l := e.configured(dn); l != nil && l.Kind == Phone && l.Peer == "" {
		return l
	}
	return nil
}

// status tells whether dn is available (F11): registered, nothing off hook,
// not in DND-Reject (F22). known is false when the engine cannot tell.
func (e *Engine) status(dn string) (free, known bool) {
	l := e.localPhone(dn)
	if l == nil || !l.statusKnown {
		return false, false
	}
	return l.registered && !l.offHook && !l.DND, true
}

func (e *Engine) notAvailable(dn string) bool {
	free, known := e.status(dn)
	return known && !free
}

// busy: the line is at its busy trigger (F17 "A is busy").
func (e *Engine) busy(dn string) bool {
	l := e.localPhone(dn)
	return l != nil && l.statusKnown && l.full
}

// Open returns the number of open requests.
func (e *Engine) Open() int { return len(e.reqs) }

// RequestOf returns caller a's open request (F5: at most one).
func (e *Engine) RequestOf(a string) (Request, bool) {
	if r := e.current(a); r != nil {
		return *r, true
	}
	return Request{}, false
}

func (e *Engine) current(a string) *Request {
	if id, ok := e.byA[a]; ok {
		return e.reqs[id]
	}
	return nil
}

// --- indexes, watching, timers ---

func (e *Engine) add(r *Request) {
	e.reqs[r.ID] = r
	if r.local() {
		e.byA[r.A] = r.ID
	} else {
		e.byRef[peerKey{r.PeerA, r.PeerRef}] = r.ID
	}
	if r.PeerB == "" {
		e.onLine[r.B] = append(e.onLine[r.B], r.ID)
		if r.Forward != "" {
			e.onLine[r.Forward] = append(e.onLine[r.Forward], r.ID)
		}
	}
}

func (e *Engine) unindex(dn string, id int64) {
	ids := e.onLine[dn]
	if i := slices.Index(ids, id); i >= 0 {
		ids = slices.Delete(ids, i, i+1)
	}
	if len(ids) == 0 {
		delete(e.onLine, dn)
	} else {
		e.onLine[dn] = ids
	}
}

// end deletes r and tells whoever needs to know, A's screen included
// (endScreen): no end of a request leaves a screen that says it is still
// there (F18, F19, F25).
func (e *Engine) end(r *Request, why Reason) {
	sc, ok := endScreen(r, why)
	e.endShowing(r, why, sc, ok)
}

// endScreen is what A's screen says once r ended for why; false: no screen
// (another one follows).
func endScreen(r *Request, why Reason) (screen.Screen, bool) {
	switch why {
	case EndCompleted: // the call is placed (dialReq says to whom)
		return screen.Screen{Kind: screen.Completed, DN: r.B}, true
	case EndCancelled, EndPeer, EndNoMonitor:
		return screen.Screen{Kind: screen.Deactivated, DN: r.B}, true
	case EndT1, EndRejected: // F8, F19: never confirmed
		return screen.Screen{Kind: screen.CannotActivate, DN: r.B}, true
	case EndT3, EndNoAnswer: // F18: B was available, A did not dial (or answer the recall, F29)
		return screen.Screen{Kind: screen.AvailableEnded, DN: cmp.Or(r.NoticeDN, r.B), At: r.Notice}, true
	case EndExpired: // F19
		return screen.Screen{Kind: screen.Expired, DN: r.B}, true
	case EndReplaced: // the new request's screen follows
		return screen.Screen{}, false
	}
	// EndReset, EndMobility, EndRemoved: F25, the phone starts again with
	// no screen (no alert, no screen).
	return screen.Screen{Kind: screen.None}, true
}

// endShowing is end with A's screen given (show false: none).
func (e *Engine) endShowing(r *Request, why Reason, sc screen.Screen, show bool) {
	wasAvailable := r.State == Available
	delete(e.reqs, r.ID)
	if r.local() {
		delete(e.byA, r.A)
	} else {
		delete(e.byRef, peerKey{r.PeerA, r.PeerRef})
	}
	if r.PeerB == "" {
		e.unindex(r.B, r.ID)
		if r.Forward != "" {
			e.unindex(r.Forward, r.ID)
		}
	}
	e.emit(Delete{ID: r.ID, Reason: why})
	e.sync(r.A, r.B, r.Forward)
	for _, t := range timersOf(r) {
		e.emit(CancelTimer{t.id})
	}
	switch {
	case r.PeerB != "" && why != EndRejected && why != EndPeer && why != EndCompleted:
		e.toPeer(r.PeerB, MsgCancel, r.ID, r)
	case r.PeerA != "" && why != EndCancelled && why != EndCompleted:
		e.toPeer(r.PeerA, MsgEnd, r.PeerRef, r)
	}
	// F16 FIFO: the next one in B's queue may be notified now.
	if wasAvailable && why != EndCompleted && r.PeerB == "" {
		e.recheck = append(e.recheck, r.B)
		if r.Forward != "" {
			e.recheck = append(e.recheck, r.Forward)
		}
	}
	if r.local() && show {
		e.show(r.A, sc)
	}
}

// sync emits Watch/Unwatch so that exactly the lines involved in an open
// request are watched (F38): A while it may have to be suspended (active,
// suspended), B and F20's forward target while monitored. Once A is notified
// nothing needs watching (seed 003: the lines "close" at notification).
func (e *Engine) sync(dns ...string) {
	if e.restoring {
		return
	}
	for i, dn := range dns {
		if dn == "" || slices.Contains(dns[:i], dn) {
			continue
		}
		if want := e.needsWatch(dn); want != e.watched[dn] {
			if want {
				e.watched[dn] = true
				e.emit(Watch{DN: dn})
			} else {
				delete(e.watched, dn)
				e.emit(Unwatch{DN: dn})
			}
		}
	}
}

func (e *Engine) needsWatch(dn string) bool {
	if e.localPhone(dn) == nil {
		return false
	}
	monitoring := func(id int64) bool {
		st := e.reqs[id].State
		return st == Active || st == Suspended
	}
	if id, ok := e.byA[dn]; ok && monitoring(id) {
		return true
	}
	return slices.ContainsFunc(e.onLine[dn], monitoring)
}

type armed struct {
	id TimerID
	at time.Time
}

// timersOf lists the timers r has armed. Invariant: T1 is set only while
// activating, T3 only while available.
func timersOf(r *Request) []armed { return appendTimers(nil, r) }

// appendTimers is timersOf into t (a restore passes a buffer of its own:
// no allocation per request).
func appendTimers(t []armed, r *Request) []armed {
	t = append(t, armed{TimerID{TimerLifetime, r.ID}, r.Expires})
	if !r.T1.IsZero() {
		t = append(t, armed{TimerID{TimerT1, r.ID}, r.T1})
	}
	if !r.T3.IsZero() {
		t = append(t, armed{TimerID{t3Kind(r), r.ID}, r.T3})
	}
	return t
}

func t3Kind(r *Request) TimerKind {
	if r.Recall {
		return TimerWait
	}
	return TimerT3
}

// fire handles an expired timer; stale ones (request gone, state moved on)
// are ignored.
func (e *Engine) fire(t TimerID) {
	r := e.reqs[t.Req]
	if r == nil {
		return
	}
	switch t.Kind {
	case TimerT1: // F19: not confirmed in time
		if r.State != Activating {
			return
		}
		e.end(r, EndT1)
	case TimerT3, TimerWait: // F18, F29
		if r.State != Available || t.Kind != t3Kind(r) {
			return
		}
		if r.Recall {
			e.end(r, EndNoAnswer)
			return
		}
		e.end(r, EndT3) // F18: A's screen still says B was available
	case TimerLifetime: // F19
		e.end(r, EndExpired)
	}
}

// --- lines ---

func (e *Engine) lineConfig(l Line) {
	ls := e.line(l.DN)
	ls.Name, ls.lineSettings = l.Name, settingsOf(l)
	ls.configured = true
	e.sync(l.DN)
	e.evaluate(l.DN, false) // F22: DND-Reject off makes B available
}

// lineRemoved: F24. A's request goes with A's line; requests on B stay: A
// may cancel or activate again, Dial gives reorder tone.
func (e *Engine) lineRemoved(dn string) {
	delete(e.lines, dn)
	delete(e.calls, dn)
	delete(e.pending, dn)
	if r := e.current(dn); r != nil {
		e.end(r, EndRemoved)
	} else {
		e.show(dn, screen.Screen{Kind: screen.None}) // a removed line has no screen
	}
	e.sync(dn)
}

func (e *Engine) lineStatus(s LineStatus) {
	l := e.line(s.DN)
	wasOffHook := l.statusKnown && l.offHook
	l.statusKnown, l.registered, l.offHook, l.full = true, s.Registered, s.OffHook, s.Full
	if r := e.current(s.DN); r != nil && l.configured {
		switch {
		case !s.Registered:
			e.resetA(s.DN) // F25: A unregistered
		case r.State == Suspended && !s.Full:
			e.resume(r) // F17: A is free again
		}
	}
	e.evaluate(s.DN, wasOffHook && !s.OffHook)
}

// unmonitorable: B6, the watch of dn on another server ended for good.
// The requests waiting for dn end; one already told (Available) keeps its
// T3: A may still dial.
func (e *Engine) unmonitorable(dn string) {
	for _, id := range slices.Clone(e.onLine[dn]) {
		if r := e.reqs[id]; r != nil && r.B == dn && r.State != Available {
			e.end(r, EndNoMonitor)
		}
	}
}

// deviceReset: F25. A: cancel (unless already notified, F26). B: nothing is
// cancelled; B was out of service, so A is notified once B is available.
func (e *Engine) deviceReset(dn string) {
	e.resetA(dn)
	for _, id := range e.onLine[dn] {
		if r := e.reqs[id]; r.State == Active && !r.seenOf(dn) {
			r.setSeen(dn)
			e.persist(r)
		}
	}
}

// resetA: F25, A's device reset or unregistered: the request is cancelled
// (unless A was already told, F26: the key shows it again) and the phone
// starts with no screen, whatever it showed.
func (e *Engine) resetA(dn string) {
	delete(e.pending, dn) // reset before confirmation: activation cancelled
	delete(e.calls, dn)
	if r := e.current(dn); r != nil && r.State != Available {
		e.end(r, EndReset) // no alert, no screen
		return
	}
	e.show(dn, screen.Screen{Kind: screen.None})
}

// mobility: F23, a login or logout on A's device cancels A's call back.
func (e *Engine) mobility(dn string) {
	delete(e.pending, dn)
	delete(e.calls, dn)
	if r := e.current(dn); r != nil {
		e.end(r, EndMobility)
		return
	}
	e.show(dn, screen.Screen{Kind: screen.None}) // another user's phone now
}

func (r *Request) seenOf(dn string) bool {
	if dn == r.B {
		return r.Seen
	}
	return r.SeenForward
}

func (r *Request) setSeen(dn string) {
	if dn == r.B {
		r.Seen = true
	} else {
		r.SeenForward = true
	}
}
