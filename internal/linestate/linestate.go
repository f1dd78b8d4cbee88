// Package linestate aggregates the state of each line (a DN) over all its
// devices and calls (docs/features.md B5), and reports every change as an
// event. The Call Back engine learns from these events when a line becomes
// available (F11); the B2BUA asks it whether a line is at its busy trigger.
package linestate

import (
	"log/slog"
	"sort"
	"sync"
)

// State is the aggregated state of a line.
type State string

const (
	Unregistered State = "unregistered" // no device registered and no call
	Idle         State = "idle"         // registered, no call
	Ringing      State = "ringing"      // only incoming calls that ring
	Busy         State = "busy"         // at least one call off hook (connected or dialing out)
)

// Snapshot is a line's state at one moment.
type Snapshot struct {
	DN          string `json:"dn"`
	State       State  `json:"state"`
	Devices     int    `json:"devices"`      // registered devices
	Calls       int    `json:"calls"`        // calls the line is part of, ringing ones included
	BusyTrigger int    `json:"busy_trigger"` // calls before the line counts as busy
}

// Full reports whether the line is at its busy trigger: a new incoming call
// gets 486 Busy Here.
func (s Snapshot) Full() bool { return s.Calls >= s.BusyTrigger }

// Change is one state change of one line.
type Change struct {
	Old, New Snapshot
}

// Phase is where one call of a line is (the dialog event package,
// RFC 4235, shows it).
type Phase string

const (
	PhaseRinging   Phase = "ringing"   // incoming, not answered
	PhaseDialing   Phase = "dialing"   // placed by the line, not answered
	PhaseConnected Phase = "connected" // answered
	PhaseEnded     Phase = "ended"
)

// CallChange is one call of one line changing phase.
type CallChange struct {
	DN, CallID string
	Phase      Phase
	Outgoing   bool   // placed by the line
	Remote     string // the other party's number, when the B2BUA told (Between)
}

type callPhase int

const (
	ringingIn callPhase = iota // incoming, not answered
	offHook                    // answered
	dialing                    // placed by this line, not answered: off hook too
)

type call struct {
	phase    callPhase
	outgoing bool
}

type line struct {
	trigger int
	devices int
	calls   map[string]call
}

// Tracker holds every line's state. It is safe for concurrent use.
type Tracker struct {
	mu       sync.Mutex
	lines    map[string]*line
	subs     []func(Change)
	callSubs []func(CallChange)
	parties  map[string][2]string // Call-ID -> caller, callee (Between)
	refs     map[string]int       // Call-ID -> lines in that call
	log      *slog.Logger
}

// New returns an empty Tracker; log may be nil.
func New(log *slog.Logger) *Tracker {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Tracker{lines: map[string]*line{}, parties: map[string][2]string{}, refs: map[string]int{}, log: log}
}

// Subscribe registers f for every change. f runs with the tracker locked, in
// the order changes happen: it must be quick and must not call the tracker
// (hand the change to a queue instead).
func (t *Tracker) Subscribe(f func(Change)) {
	t.mu.Lock()
	t.subs = append(t.subs, f)
	t.mu.Unlock()
}

// SubscribeCalls registers f for every call's change of phase, with the
// same rules as Subscribe. Each call of a line is reported before the
// line's Change it causes.
func (t *Tracker) SubscribeCalls(f func(CallChange)) {
	t.mu.Lock()
	t.callSubs = append(t.callSubs, f)
	t.mu.Unlock()
}

// Between records who the parties of a call are (numbers: a line's DN or
// an outside number), so that each line's CallChange names the other.
// Call it before the call's first phase.
func (t *Tracker) Between(callID, caller, callee string) {
	t.mu.Lock()
	t.parties[callID] = [2]string{caller, callee}
	t.mu.Unlock()
}

// SetLine adds a line or updates its busy trigger.
func (t *Tracker) SetLine(dn string, busyTrigger int) {
	t.update(dn, func(l *line) { l.trigger = busyTrigger }, true)
}

// RemoveLine forgets a line.
func (t *Tracker) RemoveLine(dn string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.lines, dn)
}

// SetDevices records how many devices of the line are registered.
func (t *Tracker) SetDevices(dn string, n int) {
	t.update(dn, func(l *line) { l.devices = n }, false)
}

// Offer admits an incoming call to the line unless it is at its busy
// trigger. It returns the state the decision was made on.
func (t *Tracker) Offer(dn, callID string) (Snapshot, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	l, ok := t.lines[dn]
	if !ok {
		return Snapshot{DN: dn}, false
	}
	before := l.snapshot(dn)
	if before.Full() {
		if t.refs[callID] == 0 {
			delete(t.parties, callID) // Between's, for a call that never was
		}
		return before, false
	}
	t.setCall(dn, l, callID, call{phase: ringingIn}, true)
	t.changed(before, l.snapshot(dn))
	return before, true
}

// Originate records a call placed by the line (it is off hook).
func (t *Tracker) Originate(dn, callID string) {
	t.update(dn, func(l *line) { t.setCall(dn, l, callID, call{phase: dialing, outgoing: true}, true) }, false)
}

// Answered records that a call of the line was answered: an incoming
// call by the line, or one it placed by the other party.
func (t *Tracker) Answered(dn, callID string) {
	t.update(dn, func(l *line) {
		if c, ok := l.calls[callID]; ok {
			t.setCall(dn, l, callID, call{phase: offHook, outgoing: c.outgoing}, true)
		}
	}, false)
}

// Connected records an answered call of the line at once (a call
// restored after a restart): outgoing when the line placed it.
func (t *Tracker) Connected(dn, callID string, outgoing bool) {
	t.update(dn, func(l *line) { t.setCall(dn, l, callID, call{phase: offHook, outgoing: outgoing}, true) }, false)
}

// Ended records the end of a call of the line (any phase).
func (t *Tracker) Ended(dn, callID string) {
	t.update(dn, func(l *line) {
		if c, ok := l.calls[callID]; ok {
			t.setCall(dn, l, callID, c, false)
		}
	}, false)
}

// setCall (t.mu held) sets or, when !live, removes a call of line dn and
// reports a change of its phase.
func (t *Tracker) setCall(dn string, l *line, callID string, c call, live bool) {
	old, had := l.calls[callID]
	if !live {
		if had {
			delete(l.calls, callID)
			if len(l.calls) == 0 {
				l.calls = nil // an idle line holds no map: 100k lines, 100k maps (issue 14)
			}
			t.callChanged(CallChange{DN: dn, CallID: callID, Phase: PhaseEnded, Outgoing: old.outgoing, Remote: t.remote(callID, dn)})
			if t.refs[callID]--; t.refs[callID] <= 0 {
				delete(t.refs, callID)
				delete(t.parties, callID)
			}
		}
		return
	}
	if l.calls == nil {
		l.calls = map[string]call{}
	}
	l.calls[callID] = c
	if !had {
		t.refs[callID]++
	}
	if !had || old.phase != c.phase {
		t.callChanged(CallChange{DN: dn, CallID: callID, Phase: c.phaseName(), Outgoing: c.outgoing, Remote: t.remote(callID, dn)})
	}
}

// remote (t.mu held) is the party of the call that is not dn.
func (t *Tracker) remote(callID, dn string) string {
	p, ok := t.parties[callID]
	switch {
	case !ok:
		return ""
	case p[0] == dn:
		return p[1]
	}
	return p[0]
}

func (c call) phaseName() Phase {
	switch c.phase {
	case ringingIn:
		return PhaseRinging
	case dialing:
		return PhaseDialing
	}
	return PhaseConnected
}

func (t *Tracker) callChanged(c CallChange) {
	for _, f := range t.callSubs {
		f(c)
	}
}

// Calls returns the calls of a line, in no order.
func (t *Tracker) Calls(dn string) []CallChange {
	t.mu.Lock()
	defer t.mu.Unlock()
	l, ok := t.lines[dn]
	if !ok {
		return nil
	}
	out := make([]CallChange, 0, len(l.calls))
	for id, c := range l.calls {
		out = append(out, CallChange{DN: dn, CallID: id, Phase: c.phaseName(), Outgoing: c.outgoing, Remote: t.remote(id, dn)})
	}
	return out
}

// Get returns a line's state; ok is false for an unknown line.
func (t *Tracker) Get(dn string) (Snapshot, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	l, ok := t.lines[dn]
	if !ok {
		return Snapshot{DN: dn}, false
	}
	return l.snapshot(dn), true
}

// All returns every line's state, sorted by DN.
func (t *Tracker) All() []Snapshot {
	t.mu.Lock()
	out := make([]Snapshot, 0, len(t.lines))
	for dn, l := range t.lines {
		out = append(out, l.snapshot(dn))
	}
	t.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].DN < out[j].DN })
	return out
}

func (t *Tracker) update(dn string, f func(*line), create bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	l, ok := t.lines[dn]
	if !ok {
		if !create {
			return
		}
		l = &line{trigger: 1}
		t.lines[dn] = l
	}
	before := l.snapshot(dn)
	f(l)
	t.changed(before, l.snapshot(dn))
}

func (t *Tracker) changed(old, new Snapshot) {
	if old == new {
		return
	}
	t.log.Debug("line state", "dn", new.DN, "from", old.State, "to", new.State, "calls", new.Calls, "devices", new.Devices)
	for _, f := range t.subs {
		f(Change{Old: old, New: new})
	}
}

func (l *line) snapshot(dn string) Snapshot {
	s := Snapshot{DN: dn, Devices: l.devices, Calls: len(l.calls), BusyTrigger: l.trigger}
	ringing := 0
	for _, c := range l.calls {
		if c.phase == ringingIn {
			ringing++
		}
	}
	switch {
	case len(l.calls) > ringing:
		s.State = Busy
	case ringing > 0:
		s.State = Ringing
	case l.devices > 0:
		s.State = Idle
	default:
		s.State = Unregistered
	}
	return s
}
