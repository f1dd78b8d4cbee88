// Package callback runs the Call Back engine (internal/engine) inside the
// server: it turns what happens on the wire (failed calls, line state,
// feature codes, console keys, timers) into engine events, feeds them to
// the engine from a single goroutine, and carries out the engine's actions
// in one place (execute): store the request before anything confirms it,
// arm timers, send the screens as SIP MESSAGE, ring the audio alert, place
// the call back call. Each event carries its origin (the feature code's
// INVITE, the console or API, the answered recall), which decides how a
// PlaceCall is placed; a Watch's line status is stepped after the action
// list, never from inside it.
//
// The side an event came from is answered from the engine's typed
// decisions: Feature (603 and its reason phrase, or the INVITE routed) and
// OfferKey's prompt from engine.Pressed, Offered from engine.Offer's form,
// Press and Activate return the Pressed with the screen (the API's 201
// and 409), RecallAnswered the route execute gave the answered leg.
//
// Flow: wire -> events -> engine (pure) -> actions -> adapters (store, SIP).
package callback

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/callbackd/callbackd/internal/b2bua"
	"github.com/callbackd/callbackd/internal/config"
	"github.com/callbackd/callbackd/internal/directory"
	"github.com/callbackd/callbackd/internal/engine"
	"github.com/callbackd/callbackd/internal/linestate"
	"github.com/callbackd/callbackd/internal/media"
	"github.com/callbackd/callbackd/internal/screen"
	"github.com/callbackd/callbackd/internal/store"
)

// Phones is what the service needs from the SIP side.
type Phones interface {
	SendText(dn, text string) int
	Alert(dn, about string, ring time.Duration)
	// Connect rings caller's devices and, once one answers, calls callee
	// and connects the two (third-party call control, RFC 3725): Dial
	// pressed where no phone dialed (the web console, the API).
	Connect(caller, callee string) error
	// Recall is the automatic recall (F29): ring caller's devices for
	// ring and, once one answers, connect it to callee (the server asks
	// RecallAnswered where to). It returns when connected or failed.
	Recall(id int64, caller, callee string, ring time.Duration) error
	// Hold puts line dn's connected calls on hold toward their other
	// party (F14) and returns how many.
	Hold(dn string) int
}

// Peers carries the engine's call completion messages to the servers
// behind trunks (RFC 6910 on the wire: internal/callcompletion). Send runs
// on the engine's goroutine: it must not wait for the wire, nor step the
// engine itself (it queues the answers with Submit).
type Peers interface {
	Send(m engine.PeerMessage)
}

// Service owns the engine. Create with New, start with Run.
type Service struct {
	cfg    config.Callback // guarded by mu: changed live (SetParams)
	store  store.Store
	dir    *directory.Directory
	lines  *linestate.Tracker
	phones Phones
	log    *slog.Logger
	now    func() time.Time

	in chan input

	// Observe, when set before Run, sees every action the engine emits
	// (metrics). It runs in the engine's goroutine and must be quick.
	Observe func(engine.Action)
	// VoicemailPilot, set before Run, is where a forward to "voicemail"
	// goes (config calls.voicemail_pilot): the engine sees it as the target.
	VoicemailPilot string
	// Profile, set before Run, gives a line's profile (F33: may it use
	// Call Back?); nil: every line may.
	Profile func(name string) (config.Profile, bool)
	// Peers, set before Run, carries ToPeer (F3); nil: no trunk speaks
	// call completion, and a ToPeer is logged.
	Peers Peers
	// Remote, set before Run, watches callees of other servers (B6); nil:
	// none.
	Remote RemoteLines

	// loop-owned
	eng     *engine.Engine
	timers  *timers
	preload chan preloaded // Preload's result, taken by restore
	next    []engine.Event // asked for by the actions carried out (drain)

	mu      sync.RWMutex
	watched map[string]bool          // read by the line-state subscriber
	screens map[string]screen.Screen // current screen per line (console, API)
	status  []engine.LineStatus      // line changes not yet stepped (see lineChanged)
	// lastCallee is the line each caller called last, and the line the
	// call reached (forwarding, route point): their status is refreshed
	// before a key press, which acts on that call.
	lastCallee map[string][2]string
	remotes    map[string]bool    // B6: the callees of other servers the engine knows as lines
	kick       chan struct{}      // a change was added to status
	alerts     map[string][]int16 // alert sounds by alert_file (AlertSound)
}

type input struct {
	ev    engine.Event
	from  *origin              // where ev came from; nil: nowhere a call can be placed
	fresh []string             // lines whose current status the engine gets first
	reply chan []engine.Action // nil: fire and forget
	read  func()               // instead of ev: read engine state in the loop
}

// via is where line A is when an event about it is stepped; it decides how
// a call back call (PlaceCall) is placed, in execute and nowhere else.
type via int

const (
	viaInvite  via = iota + 1 // A dialed the feature code: the INVITE that carried it goes to To
	viaConsole                // the web console or the API: no phone dialed; ring A, then To (RFC 3725)
	viaRecall                 // A answered the automatic recall (F29): that leg is connected to To
)

// origin is where an event came from: via what, for which line. execute
// writes into route where A's leg goes (viaInvite, viaRecall), read once
// the step is answered.
type origin struct {
	via   via
	dn    string
	route string
}

// Params maps the configuration to engine parameters.
func Params(c config.Callback) engine.Params {
	p := engine.DefaultParams()
	p.Enabled = c.Enabled
	p.CCNREnabled = c.CCNR
	if c.Policy == "fifo" {
		p.Policy = engine.FIFO
	}
	p.OfferWindow = c.OfferWindow.Duration
	p.T1 = c.T1.Duration
	p.T3 = c.T3.Duration
	p.Lifetime = c.Lifetime.Duration
	p.LifetimeCCNR = c.LifetimeCCNR.Duration
	p.External = c.External
	p.WaitTime = c.WaitTime.Duration
	p.Announce = c.Announce
	p.BusyTone = c.BusyTone
	return p
}

// New builds the service; nothing runs until Run.
func New(cfg config.Callback, st store.Store, dir *directory.Directory, lines *linestate.Tracker, phones Phones, log *slog.Logger) *Service {
	s := &Service{
		cfg: cfg, store: st, dir: dir, lines: lines, phones: phones, log: log, now: time.Now,
		in:      make(chan input, 4096),
		eng:     engine.New(Params(cfg)),
		watched: map[string]bool{},
		screens: map[string]screen.Screen{},
		kick:    make(chan struct{}, 1),

		lastCallee: map[string][2]string{},
		remotes:    map[string]bool{},
		alerts:     map[string][]int16{},
	}
	s.timers = newTimers(func() { s.in <- input{read: s.fireDue} })
	lines.Subscribe(s.lineChanged)
	return s
}

// Run restores the stored requests and serves events until ctx ends.
func (s *Service) Run(ctx context.Context, ready chan<- error) {
	err := s.restore(ctx)
	if ready != nil {
		ready <- err
	}
	if err != nil {
		return
	}
	for {
		// A watched line's change first: it is what notifies a caller
		// (B's BYE -> A's screen), and at load s.in holds a call result
		// for every call of the box (issue 14: the latency at load).
		select {
		case <-s.kick:
			s.stepStatus()
			continue
		default:
		}
		select {
		case <-ctx.Done():
			s.timers.stop()
			return
		case <-s.kick:
			s.stepStatus()
		case in := <-s.in:
			if in.read != nil {
				in.read()
				continue
			}
			for _, dn := range in.fresh {
				if st, ok := s.lines.Get(dn); ok {
					s.step(status(st), nil)
				}
			}
			acts := s.step(in.ev, in.from)
			if in.reply != nil {
				in.reply <- acts
			}
		}
	}
}

// Preload starts reading and decoding the stored requests, and tells the
// engine the configured lines, in the background: a start runs it beside
// the registrar's load (internal/app), on the other core, and Run's
// restore takes its result. Call it at most once, before Run; Run calls it
// if nobody did. The engine is not stepped by anything else until Run.
func (s *Service) Preload(ctx context.Context) {
	done := make(chan preloaded, 1)
	s.preload = done
	go func() { done <- s.readStored(ctx) }()
}

// preloaded is what Preload read: the decoded requests, or why not.
type preloaded struct {
	dns  []string // the lines configured
	reqs []engine.Request
	err  error
}

// readStored configures the lines in the engine (no request is open yet:
// the actions are none) and reads and decodes the stored requests,
// deleting those it cannot read. The rows are read while the lines are
// configured, and decoded on every core: with 100k requests the decoding
// was the longest part of the start once the registrations loaded faster.
func (s *Service) readStored(ctx context.Context) preloaded {
	type rows struct {
		stored []store.Request
		err    error
	}
	read := make(chan rows, 1)
	go func() {
		stored, err := s.store.Requests(ctx)
		read <- rows{stored, err}
	}()
	now := s.now()
	lines := s.dir.LinesAnyOrder() // each line is a step of its own: any order
	dns := make([]string, 0, len(lines))
	for _, l := range lines {
		s.eng.Step(now, engine.LineConfig{Line: s.engineLine(l)})
		dns = append(dns, l.DN)
	}
	r := <-read
	if r.err != nil {
		return preloaded{err: fmt.Errorf("callback: load requests: %w", r.err)}
	}
	reqs, bad := decodeRequests(r.stored)
	for _, b := range bad {
		s.log.Error("stored call back request unreadable, deleting", "id", b.id, "error", b.err)
		if err := s.store.DeleteRequest(ctx, b.id); err != nil {
			return preloaded{err: err}
		}
	}
	return preloaded{dns: dns, reqs: reqs}
}

// unreadable is a stored request decodeRequests could not read.
type unreadable struct {
	id  int64
	err error
}

// decodeRequests decodes the stored rows in place (no allocation per
// request), a share of them on each core, keeping their order. Each row's
// bytes are let go once decoded.
func decodeRequests(stored []store.Request) ([]engine.Request, []unreadable) {
	reqs := make([]engine.Request, len(stored))
	errs := make([]error, len(stored))
	workers := runtime.GOMAXPROCS(0)
	share := (len(stored) + workers - 1) / workers
	var wg sync.WaitGroup
	for lo := 0; lo < len(stored); lo += share {
		hi := min(lo+share, len(stored))
		wg.Go(func() {
			for i := lo; i < hi; i++ {
				errs[i] = json.Unmarshal(stored[i].Data, &reqs[i])
				stored[i].Data = nil
			}
		})
	}
	wg.Wait()
	var bad []unreadable
	n := 0
	for i := range reqs {
		if errs[i] != nil {
			bad = append(bad, unreadable{stored[i].ID, errs[i]})
			continue
		}
		reqs[n] = reqs[i]
		n++
	}
	clear(reqs[n:])
	return reqs[:n], bad
}

// stepStatus steps the line changes lineChanged added.
func (s *Service) stepStatus() {
	s.mu.Lock()
	pending := s.status
	s.status = nil
	s.mu.Unlock()
	for _, st := range pending {
		s.step(st, nil)
	}
}

func (s *Service) restore(ctx context.Context) error {
	if s.preload == nil {
		s.Preload(ctx)
	}
	var pre preloaded
	select {
	case pre = <-s.preload:
	case <-ctx.Done():
		return ctx.Err()
	}
	if pre.err != nil {
		return pre.err
	}
	// The lines' status once the registrations are loaded (F25: a caller
	// without a device loses its request).
	now := s.now()
	for _, dn := range pre.dns { // a line added since is stepped by its own LineChanged
		if st, ok := s.lines.Get(dn); ok {
			s.eng.Step(now, status(st))
		}
	}
	for _, r := range pre.reqs { // B6: a callee watched on another server is a line to the engine
		s.remoteLine(r.B)
	}
	s.timers.grow(len(pre.reqs))
	s.execute(s.eng.Restore(now, pre.reqs), nil)
	s.drain()
	s.log.Info("call back requests restored", "requests", s.eng.Open())
	return nil
}

// fireDue steps the timers that are due, in deadline order (in the loop:
// the timers' wake-up asks for it).
func (s *Service) fireDue() {
	s.timers.fired()
	now := time.Now()
	for id, ok := s.timers.next(now); ok; id, ok = s.timers.next(now) {
		s.step(engine.TimerFired{Timer: id}, nil)
	}
	s.timers.arm()
}

func status(st linestate.Snapshot) engine.LineStatus {
	return engine.LineStatus{DN: st.DN, Registered: st.Devices > 0, OffHook: st.State == linestate.Busy, Full: st.Full()}
}

// RemoteLines watches callees that live on another server (B6: the
// dialog event package, internal/dialogevent): their state comes in
// through RemoteStatus.
type RemoteLines interface {
	Monitors(number string) bool // number is such a callee
	Watch(number string)
	Unwatch(number string)
}

// remoteLine tells the engine, once, that a watched callee of another
// server is a line (on the loop, or before it runs).
func (s *Service) remoteLine(number string) {
	if s.Remote == nil || !s.Remote.Monitors(number) {
		return
	}
	s.mu.Lock()
	known := s.remotes[number]
	s.remotes[number] = true
	s.mu.Unlock()
	if !known {
		s.eng.Step(s.now(), engine.LineConfig{Line: engine.Line{DN: number}})
	}
}

// knowRemote has the loop tell the engine of a watched callee of another
// server before the call's result that follows.
func (s *Service) knowRemote(number string) {
	if s.Remote != nil && s.Remote.Monitors(number) {
		s.in <- input{read: func() { s.remoteLine(number) }}
	}
}

// Watching reports whether the engine watches line dn (F38).
func (s *Service) Watching(dn string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.watched[dn]
}

// RemoteStatus is a watched callee of another server's state (B6),
// stepped as a line's; ignored unless the engine watches it.
func (s *Service) RemoteStatus(dn string, registered, offHook bool) {
	s.mu.Lock()
	w := s.watched[dn]
	if w {
		s.status = append(s.status, engine.LineStatus{DN: dn, Registered: registered, OffHook: offHook})
	}
	s.mu.Unlock()
	if w {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
}

// RemoteLost: the watch of a callee of another server ended for good
// (B6); the requests waiting for it end, their callers told.
func (s *Service) RemoteLost(dn string) {
	s.mu.RLock()
	w := s.watched[dn]
	s.mu.RUnlock()
	if w {
		s.Submit(engine.Unmonitorable{DN: dn})
	}
}

// lineChanged runs under the line-state lock, so it must never block: it
// appends to a list the loop drains (the loop itself takes that lock when it
// reads a line). Only watched lines are passed on (F38).
func (s *Service) lineChanged(c linestate.Change) {
	s.mu.Lock()
	w := s.watched[c.New.DN]
	if w {
		s.status = append(s.status, status(c.New))
	}
	s.mu.Unlock()
	if w {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
}

// Submit queues an event.
func (s *Service) Submit(ev engine.Event) { s.in <- input{ev: ev} }

// Do steps an event and returns the actions once they are carried out.
// The engine is told the current status of the lines fresh first: it only
// follows the lines it watches (F38), and a decision about A or B (is B
// still busy when A presses the key?) must not rest on an old status.
func (s *Service) Do(ev engine.Event, fresh ...string) []engine.Action {
	return s.ask(ev, nil, fresh...)
}

// ask is Do for an event from an origin (a call can be placed there).
func (s *Service) ask(ev engine.Event, from *origin, fresh ...string) []engine.Action {
	reply := make(chan []engine.Action, 1)
	s.in <- input{ev: ev, from: from, fresh: fresh, reply: reply}
	return <-reply
}

// step steps ev and carries out its actions, then the events they asked
// for (drain). It returns ev's actions.
func (s *Service) step(ev engine.Event, from *origin) []engine.Action {
	acts := s.eng.Step(s.now(), ev)
	s.execute(acts, from)
	s.drain()
	return acts
}

// drain steps the events the last actions asked for, in order: a watched
// line's current status (Watch). They are stepped after the whole action
// list, never from inside it, so the order Step promised (the request
// stored before the screen confirming it, A's screen after the Delete)
// holds for each list.
func (s *Service) drain() {
	for len(s.next) > 0 {
		ev := s.next[0]
		s.next = s.next[1:]
		s.execute(s.eng.Step(s.now(), ev), nil)
	}
	s.next = nil // an empty tail still holds the array: a restore's 100k Watch events
}

// execute carries out actions in order; it is the only place that does.
// Store writes are waited for before the next other action, so a screen
// that confirms a request is only sent once the request is stored;
// consecutive writes (a restore, a burst of expiries) go to the store
// together, to share its group commits. from is where the event came
// from: where a call back call is placed.
func (s *Service) execute(acts []engine.Action, from *origin) {
	var writes []engine.Action
	debug := s.log.Enabled(context.Background(), slog.LevelDebug) // a restore emits 100k+ actions: no String() unless logged
	for _, a := range acts {
		if _, answer := a.(engine.Pressed); !answer && debug { // logged by press, once answered
			s.log.Debug("callback action", "action", a.String())
		}
		if s.Observe != nil {
			s.Observe(a)
		}
		switch a.(type) {
		case engine.Persist, engine.Delete:
			writes = append(writes, a)
			continue
		}
		s.write(writes)
		writes = writes[:0]
		s.do(a, from)
	}
	s.write(writes)
}

// write stores Persist and Delete actions, concurrently, and waits for all.
func (s *Service) write(writes []engine.Action) {
	if len(writes) == 0 {
		return
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	for _, a := range writes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			switch a := a.(type) {
			case engine.Persist:
				data, err := json.Marshal(a.Request)
				if err == nil {
					err = s.store.PutRequest(ctx, store.Request{ID: a.Request.ID, Data: data})
				}
				if err != nil {
					// The engine already counts on it; say so loudly. The
					// next change of the request writes it again.
					s.log.Error("call back request not stored", "id", a.Request.ID, "error", err)
				}
			case engine.Delete:
				if err := s.store.DeleteRequest(ctx, a.ID); err != nil {
					s.log.Error("call back request not deleted", "id", a.ID, "error", err)
				}
				s.log.Info("call back ended", "id", a.ID, "reason", a.Reason)
			}
		}()
	}
	wg.Wait()
}

// do carries out one action other than a store write.
func (s *Service) do(a engine.Action, from *origin) {
	switch a := a.(type) {
	case engine.StartTimer:
		s.timers.start(a.Timer, a.At)
	case engine.CancelTimer:
		s.timers.cancel(a.Timer)
	case engine.Watch:
		s.mu.Lock()
		s.watched[a.DN] = true
		s.mu.Unlock()
		if st, ok := s.lines.Get(a.DN); ok { // stepped once this list is done
			s.next = append(s.next, status(st))
		} else if s.Remote != nil && s.Remote.Monitors(a.DN) {
			s.Remote.Watch(a.DN) // its state comes with the first NOTIFY
		}
	case engine.Unwatch:
		s.mu.Lock()
		delete(s.watched, a.DN)
		s.mu.Unlock()
		if s.Remote != nil && s.Remote.Monitors(a.DN) {
			s.Remote.Unwatch(a.DN)
		}
	case engine.ShowScreen:
		s.show(a)
	case engine.Alert:
		s.phones.Alert(a.DN, a.About, s.Params().AlertRing.Duration)
	case engine.Recall:
		go func() {
			if err := s.phones.Recall(a.ID, a.A, a.B, a.Ring); err != nil {
				s.log.Info("automatic recall not connected", "id", a.ID, "caller", a.A, "callee", a.B, "error", err)
			}
		}()
	case engine.PlaceCall:
		s.place(a, from)
	case engine.ToPeer:
		if s.Peers == nil {
			s.log.Warn("call back message to a peer, but no trunk speaks call completion", "action", a.String())
			return
		}
		s.Peers.Send(a.Msg)
	case engine.Reorder, engine.Offer, engine.Pressed, engine.Admit:
		// Answers to the side the event came from, which waits for the
		// step: the feature code's INVITE (Feature: 503 for Reorder, 603
		// with the Pressed's reason), the failed call (Offered: the
		// Offer's form), the answered recall (RecallAnswered: no route
		// after Reorder), the console and the API (Press, Activate), a
		// peer's call completion call (PeerCall: the Admit).
	default:
		s.log.Warn("call back action not supported here", "action", a.String())
	}
}

// place carries out a PlaceCall (F14, F21, F29): how depends on where A
// is, which the event's origin says.
func (s *Service) place(a engine.PlaceCall, from *origin) {
	switch {
	case from == nil || from.dn != a.From:
		s.log.Warn("call back call with no call of its caller to place it from", "action", a.String())
	case from.via == viaInvite: // the feature code's INVITE goes to To (b2bua.Feature.Route)
		from.route = a.To
	case from.via == viaRecall && a.Peer == "": // the answered recall leg is connected to To
		from.route = a.To
	case from.via == viaConsole: // no phone dialed: ring A, then To (Phones.Connect)
		go func() {
			if a.HoldFirst {
				s.log.Info("call back: calls on hold before Dial", "dn", a.From, "held", s.phones.Hold(a.From))
			}
			if err := s.phones.Connect(a.From, a.To); err != nil {
				s.log.Info("call back call not connected", "id", a.ID, "caller", a.From, "callee", a.To, "error", err)
			}
		}()
	default:
		s.log.Warn("call back call not placed: the recall connects lines of this server only", "action", a.String())
	}
}

func (s *Service) show(a engine.ShowScreen) {
	s.mu.Lock()
	if a.Screen.Kind == screen.None {
		delete(s.screens, a.DN)
	} else {
		s.screens[a.DN] = a.Screen
	}
	s.mu.Unlock()
	if a.Screen.Kind == screen.None {
		return
	}
	locale := "en"
	if l, ok := s.dir.Line(a.DN); ok {
		locale = l.Locale
	}
	text := a.Screen.Text(locale)
	// Sent in the background: the engine must not wait on phones, and the
	// order of screens is kept because each is stored before the next step.
	go func() {
		if n := s.phones.SendText(a.DN, text); n == 0 {
			s.log.Info("screen not delivered to any device", "dn", a.DN, "screen", a.Screen.Kind.String())
		}
	}()
}

// Screen returns the screen a line shows now.
func (s *Service) Screen(dn string) (screen.Screen, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	sc, ok := s.screens[dn]
	return sc, ok
}

// Requests returns the open requests (a snapshot, through the loop).
func (s *Service) Requests() []engine.Request {
	reply := make(chan []engine.Request, 1)
	s.in <- input{read: func() { reply <- s.eng.Requests() }}
	return <-reply
}

// Counts returns the number of open requests and of timers armed, or -1s
// when the engine does not answer within a second (not running yet, or a
// restore under way): a scrape must not hang.
func (s *Service) Counts() (open, timers int) {
	type counts struct{ open, timers int }
	reply := make(chan counts, 1)
	timeout := time.After(time.Second)
	select {
	case s.in <- input{read: func() { reply <- counts{s.eng.Open(), s.timers.len()} }}:
	case <-timeout:
		return -1, -1
	}
	select {
	case c := <-reply:
		return c.open, c.timers
	case <-timeout:
		return -1, -1
	}
}

// RequestStates counts the open requests by state (nil when the engine
// does not answer within a second, as Counts).
func (s *Service) RequestStates() map[string]int {
	reply := make(chan map[string]int, 1)
	timeout := time.After(time.Second)
	select {
	case s.in <- input{read: func() {
		n := map[string]int{}
		for _, r := range s.eng.Requests() {
			n[string(r.State)]++
		}
		reply <- n
	}}:
	case <-timeout:
		return nil
	}
	select {
	case n := <-reply:
		return n
	case <-timeout:
		return nil
	}
}

// RequestOf returns caller's open request, if any.
func (s *Service) RequestOf(caller string) (engine.Request, bool) {
	type result struct {
		r  engine.Request
		ok bool
	}
	reply := make(chan result, 1)
	s.in <- input{read: func() {
		r, ok := s.eng.RequestOf(caller)
		reply <- result{r, ok}
	}}
	res := <-reply
	return res.r, res.ok
}

// CallResult reports a call between lines to the engine (CallUpdate).
func (s *Service) CallResult(r b2bua.Result) {
	s.knowRemote(r.Callee)
	if cu, ok := s.callUpdate(r); ok {
		s.in <- input{ev: cu, fresh: []string{r.Caller, r.Callee, r.Reached}}
	}
}

// callUpdate maps a call's result to the engine's event; ok is false for
// outcomes the engine does not follow.
func (s *Service) callUpdate(r b2bua.Result) (engine.CallUpdate, bool) {
	var o engine.Outcome
	switch r.Outcome {
	case b2bua.Answered:
		o = engine.Answered
	case b2bua.FailBusy:
		o = engine.Busy
	case b2bua.FailNoAnswer:
		o = engine.NoAnswer
	case b2bua.FailUnregistered:
		o = engine.Unregistered
	case b2bua.FailDND:
		o = engine.DNDReject
	default:
		// F10: a voicemail pilot that fails is, for Call Back, a busy
		// voicemail port: the call belongs to the pilot now.
		if l, ok := s.dir.Line(r.Reached); !ok || l.Kind != config.KindVoicemail {
			return engine.CallUpdate{}, false
		}
		o = engine.Busy
	}
	from, _ := s.dir.Line(r.Caller)
	to, _ := s.dir.Line(r.Callee)
	s.mu.Lock()
	s.lastCallee[r.Caller] = [2]string{r.Callee, r.Reached}
	s.mu.Unlock()
	cu := engine.CallUpdate{From: r.Caller, To: r.Callee, FromName: from.Name, ToName: to.Name, Outcome: o, Reached: r.Reached}
	if r.CallInfo != "" {
		// F3: the trunk's Call-Info says the callee's server speaks call
		// completion (RFC 6910 s7.1). Without it the callee stays what it
		// was: unknown (F8), or watched by its dialog state (B6).
		cu.Peer, cu.PeerCC = r.CalleeTrunk, true
	}
	return cu, true
}

// Offered reports a failed call as CallResult does, and waits for the
// engine's decision: how a call back is offered to the caller on the spot
// (F28): the announcement, the busy tone (CC_BUSY_TONE), or nothing there
// (the zero Offer: the softkey only, or no call back).
func (s *Service) Offered(r b2bua.Result) b2bua.Offer {
	s.knowRemote(r.Callee)
	cu, ok := s.callUpdate(r)
	if !ok {
		return b2bua.Offer{}
	}
	for _, a := range s.Do(cu, r.Caller, r.Callee, r.Reached) {
		if o, ok := a.(engine.Offer); ok && o.A == r.Caller {
			return offers[o.Form]
		}
	}
	return b2bua.Offer{}
}

// offers: what the caller hears for each form of the offer.
var offers = map[engine.OfferForm]b2bua.Offer{
	engine.OfferBusy:      {Prompt: media.PromptBusyOffer},
	engine.OfferLoggedOut: {Prompt: media.PromptLoggedOutOffer},
	engine.OfferBusyTone:  {BusyTone: true},
}

// OfferKey is 5 pressed by caller during the offer's announcement: the
// CallBack key while A still hears the failed call (F2's ring-out state).
// It returns the prompt that answers: activated when the press made the
// call back (B found available at once included) or found it monitoring
// already, else not possible.
func (s *Service) OfferKey(caller string) string {
	// No origin: 5 during the offer activates, never dials (not `*39`).
	return offerPrompt(s.press(engine.KeyPress{DN: caller, Key: engine.KeyCallBack, State: engine.RingOut}, nil))
}

func offerPrompt(p engine.Pressed) string {
	if p.Confirmed() || p.Result == engine.Activated && p.State == engine.Available {
		return media.PromptActivated
	}
	return media.PromptNotPossible
}

// RecallAnswered is the caller answering the automatic recall of request
// id (F29): the engine completes the request and places the call on the
// answered leg; it returns where that leg goes (B, or the target of B's
// forwarding), "" when the request is gone.
func (s *Service) RecallAnswered(id int64, caller string) string {
	r, _ := s.RequestOf(caller)
	from := &origin{via: viaRecall, dn: caller}
	s.ask(engine.RecallAnswered{ID: id, DN: caller}, from, caller, r.B, r.Forward)
	return from.route
}

// AlertSound is the Call Back audio alert (F32 "Callback Audio
// Notification File Name"): the built-in prompt or WAV file alert_file
// names, read once per name. Nil when it cannot be read (logged).
func (s *Service) AlertSound() []int16 {
	name := s.Params().AlertFile
	s.mu.RLock()
	snd, ok := s.alerts[name]
	s.mu.RUnlock()
	if ok {
		return snd
	}
	snd, err := media.Sound(name)
	if err != nil {
		s.log.Error("call back alert sound unreadable", "alert_file", name, "error", err)
	}
	s.mu.Lock()
	s.alerts[name] = snd
	s.mu.Unlock()
	return snd
}

// IsFeature reports whether a dialed number is a Call Back feature code:
// the activate code (alone or followed by a DN) or the cancel code.
func (s *Service) IsFeature(dialed string) bool {
	p := s.Params()
	return dialed == p.CancelCode || strings.HasPrefix(dialed, p.ActivateCode)
}

// Feature handles a feature code dialed by line caller and says how to answer
// the INVITE that carried it:
//   - `*39` when B is available (T3 runs) is Dial: the INVITE becomes the
//     call to B;
//   - anything else is answered 603 Decline with the outcome as reason
//     phrase, after the request is stored; the screen follows as MESSAGE.
func (s *Service) Feature(caller, dialed string) b2bua.Feature {
	p := s.Params()
	k := engine.KeyPress{DN: caller, Key: engine.KeyCallBack, State: engine.OnHook, Code: true}
	switch {
	case dialed == p.CancelCode:
		k.Key = engine.KeyCancel
	default:
		// What the code means (OK on the F6 question, Dial while T3 runs,
		// activate, show the state) is the engine's: see README.md "Call
		// Back on a SIP phone" and internal/engine/testdata/star39.txt.
		k.Target = strings.TrimPrefix(dialed, p.ActivateCode)
	}
	from := &origin{via: viaInvite, dn: caller}
	pressed := s.press(k, from)
	switch {
	case pressed.Result == engine.Dialed && from.route != "":
		return b2bua.Feature{Route: from.route}
	case pressed.Result == engine.BRemoved:
		return b2bua.Feature{Code: 503, Reason: "Service Unavailable (CallBack)"}
	}
	return b2bua.Feature{Code: 603, Reason: reason(pressed)}
}

// reason is the reason phrase of the 603 answering a feature code: the
// gist of the screen that follows as MESSAGE.
func reason(p engine.Pressed) string {
	switch p.Result {
	case engine.KeyInactive:
		return "Key Not Active"
	case engine.NotActive:
		return "CallBack Not Active"
	case engine.CannotActivate:
		return "CallBack Cannot Be Activated"
	case engine.AskReplace:
		return "CallBack Already Active"
	case engine.Cancelled:
		return "CallBack Cancelled"
	case engine.Activated, engine.Shown:
		switch p.State {
		case engine.Active, engine.Suspended:
			return "CallBack Activated"
		case engine.Available:
			return "CallBack Available"
		}
	}
	return "CallBack" // nothing to say yet (B's server must accept), or the screen closed
}

// press steps a key press of line k.DN from where it came, the engine
// first told the fresh status of the lines the press is about: A, the line
// A called last, the target, and the B and forward target of A's request.
// It returns what the press came to.
func (s *Service) press(k engine.KeyPress, from *origin) engine.Pressed {
	s.mu.RLock()
	last := s.lastCallee[k.DN]
	fresh := []string{k.DN, last[0], last[1]}
	s.mu.RUnlock()
	if k.Target != "" {
		fresh = append(fresh, k.Target)
	}
	if r, ok := s.RequestOf(k.DN); ok {
		fresh = append(fresh, r.B, r.Forward)
	}
	acts := s.ask(k, from, fresh...)
	p := engine.Pressed{DN: k.DN, Key: k.Key}
	if n := len(acts); n > 0 {
		if last, ok := acts[n-1].(engine.Pressed); ok { // one per press, last
			p = last
		}
	}
	// Logged here rather than in the loop: a log write between the
	// screen's MESSAGE going out and the answer (the feature code's 603)
	// would let the MESSAGE overtake it.
	s.log.Debug("callback key answered", "pressed", p.String())
	return p
}

// Keys of the phone console and the API, by softkey name.
var softkeys = map[string]engine.Key{
	"CallBack": engine.KeyCallBack, screen.KeyDial: engine.KeyDial, screen.KeyCancel: engine.KeyCancel,
	screen.KeyExit: engine.KeyExit, screen.KeyOK: engine.KeyOK,
}

// ErrUnknownKey: Press got a key that is no softkey.
var ErrUnknownKey = errors.New("unknown key: want CallBack, Dial, Cancel, Exit or OK")

// Press is a softkey pressed on line dn's console (the web phone console or
// the API), on hook: CallBack, Dial, Cancel, Exit or OK (seed 002). It acts
// as the phone's softkey and the feature codes do. Dial has no phone
// dialing, so the server places the call: it rings A's devices and, once A
// answers, calls B (Phones.Connect). It returns what the press came to and
// the screen shown after.
func (s *Service) Press(dn, key string) (engine.Pressed, screen.Screen, error) {
	return s.PressOn(0, dn, key)
}

// PressOn is Press for request id of line dn (the API's
// /callbacks/{id}/dial): Dial does nothing there unless id is dn's
// available request (Pressed NotAvailable, A's screen untouched).
func (s *Service) PressOn(id int64, dn, key string) (engine.Pressed, screen.Screen, error) {
	k, ok := softkeys[key]
	if !ok {
		return engine.Pressed{}, screen.Screen{}, ErrUnknownKey
	}
	state := engine.OnHook
	if st, ok := s.lines.Get(dn); ok && st.State == linestate.Busy {
		state = engine.Connected // the console's line is in a call (F14)
	}
	p := s.press(engine.KeyPress{DN: dn, Key: k, State: state, Request: id}, &origin{via: viaConsole, dn: dn})
	sc, _ := s.Screen(dn)
	return p, sc, nil
}

// Activate is the CallBack key of line caller pressed through the API: on
// the last failed call, or, with callee, as `*39<callee>`. It returns what
// the press came to and the screen shown after.
func (s *Service) Activate(caller, callee string) (engine.Pressed, screen.Screen) {
	p := s.press(engine.KeyPress{DN: caller, Key: engine.KeyCallBack, State: engine.OnHook, Target: callee},
		&origin{via: viaConsole, dn: caller})
	sc, _ := s.Screen(caller)
	return p, sc
}

// Params returns the service parameters in force.
func (s *Service) Params() config.Callback {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.cfg
}

// SetParams changes the service parameters while running (F31, F32, F36):
// the next key press and the next request use them; running deadlines stay.
// The caller has checked them (config.CheckCallback).
func (s *Service) SetParams(c config.Callback) {
	s.mu.Lock()
	s.cfg = c
	s.mu.Unlock()
	s.Do(engine.SetParams{Params: Params(c)})
}

// LineChanged tells the engine a line was added or changed while running.
func (s *Service) LineChanged(l config.Line) {
	s.Do(engine.LineConfig{Line: s.engineLine(l)}, l.DN)
}

// engineLine is what the engine knows of a configured line.
func (s *Service) engineLine(l config.Line) engine.Line {
	el := engine.Line{DN: l.DN, Name: l.Name, AutoRecall: l.Notification == config.NotifyAutoRecall, DND: l.DND,
		ForwardAll: config.ForwardTarget(l.ForwardAll, s.VoicemailPilot), ForwardBusy: config.ForwardTarget(l.ForwardBusy, s.VoicemailPilot),
		ForwardNoAnswer: config.ForwardTarget(l.ForwardNoAnswer, s.VoicemailPilot)}
	if s.Profile != nil {
		if p, ok := s.Profile(l.Profile); ok && !p.CallBack {
			el.NoCallBack = true
		}
	}
	switch l.Kind {
	case config.KindRoutePoint:
		el.Kind = engine.RoutePoint
	case config.KindVoicemail:
		el.Kind = engine.Voicemail
	}
	return el
}

// PeerCall steps the arrival of a peer's call completion call (an INVITE
// to our cc-URI, RFC 6910 s10) for its request ref and says where it goes
// and whether B's forwarding is overridden (F21: only while T3 runs).
func (s *Service) PeerCall(peer string, ref int64, b string) engine.Admit {
	for _, a := range s.Do(engine.PeerCall{Peer: peer, Ref: ref, B: b}, b) {
		if ad, ok := a.(engine.Admit); ok {
			return ad
		}
	}
	return engine.Admit{Peer: peer, Ref: ref, To: b}
}

// DeviceReset tells the engine that a device of line dn went away or
// restarted (F25: A's call back is cancelled; B's is not). It never blocks
// the registrar for long: the event is queued.
func (s *Service) DeviceReset(dn string) { s.Submit(engine.DeviceReset{DN: dn}) }

// Mobility tells the engine of an Extension Mobility login or logout on
// line dn's phone (F23: dn's call back is cancelled, silently). It returns
// once the engine has acted, so that the registration change that follows
// is not taken for a reset.
func (s *Service) Mobility(dn string, login bool) { s.Do(engine.Mobility{DN: dn, Login: login}) }

// LineRemoved tells the engine a line was removed (F24): requests from it
// end, callers waiting on it are told.
func (s *Service) LineRemoved(dn string) { s.Do(engine.LineRemoved{DN: dn}) }
