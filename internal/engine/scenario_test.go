package engine

import (
	"cmp"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/callbackd/callbackd/internal/screen"
)

// TestScenarios runs the seeds' examples in testdata/*.txt (one file per
// example) against the engine with a fake clock, like etcd raft's
// interaction tests. Regenerate with `go test ./internal/engine -rewrite`,
// then READ the diff: the files are the specification.
//
// Commands (see each file for use):
//
//	new [policy=fifo] [t1= t3= window= lifetime= lifetime-ccnr= wait=] [ccnr=off] [external] [disabled] [strict-names] [announce] [busy-tone]
//	params ...                   same keys, changed live (SetParams)
//	lines DN...                  add phone lines, registered and idle
//	line DN [name=] [kind=] [peer=] [cc] [dnd[=off]] [cfa= cfb= cfna=] [recall[=off]]
//	status DN idle|in-call|busy|unregistered   (in-call: off hook below the busy trigger)
//	remove DN | reset DN | login DN | logout DN
//	call A B OUTCOME [reached=] [peer=] [cc] [from-name=] [to-name=]
//	key DN callback|dial|cancel|exit|ok [state=] [dn=] [code] [request=]
//	recall-answered DN id=
//	peer PEER TYPE ref= [a= b= kind=]
//	peer-call PEER ref= b=
//	tick DURATION                advance the clock, firing due timers in deadline order
//	restart [down=DURATION]      new engine, same store: Restore (after being down that long)
//	requests | watched
//	screen DN                    the line's screen now (console, API), in en, and its softkeys
func TestScenarios(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		h := &harness{t: t}
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			h.t = t
			return h.run(d)
		})
	})
}

// t0 is the scenarios' start: the date of the UCware page (seed 004).
var t0 = time.Date(2024, 3, 19, 10, 0, 0, 0, time.UTC)

type harness struct {
	t       *testing.T
	e       *Engine
	p       Params
	now     time.Time
	lines   map[string]Line
	status  map[string]LineStatus
	timers  map[TimerID]time.Time
	store   map[int64]Request
	watched map[string]bool
	screens map[string]screen.Screen // what each line shows now (the console, the API)
	quiet   bool                     // restart: the new engine does not know the stored requests yet
}

func (h *harness) run(d *datadriven.TestData) string { return tidy(h.do(d)) }

func (h *harness) do(d *datadriven.TestData) string {
	pos, named := args(d)
	arg := func(i int) string {
		if i >= len(pos) {
			h.t.Fatalf("%s: missing argument %d", d.Pos, i+1)
		}
		return pos[i]
	}
	if d.Cmd != "new" && h.e == nil {
		h.t.Fatalf("%s: start with new", d.Pos)
	}
	switch d.Cmd {
	case "new":
		h.p = h.params(DefaultParams(), pos, named)
		h.e = New(h.p)
		h.now = t0
		h.lines, h.status = map[string]Line{}, map[string]LineStatus{}
		h.timers, h.store, h.watched = map[TimerID]time.Time{}, map[int64]Request{}, map[string]bool{}
		h.screens = map[string]screen.Screen{}
		return fmt.Sprintf("%s, T1 %s, T3 %s, lifetime %s/%s (CCNR), wait %s",
			h.p.Policy, h.p.T1, h.p.T3, h.p.Lifetime, h.p.LifetimeCCNR, h.p.WaitTime)
	case "params":
		h.p = h.params(h.p, pos, named)
		return h.step(SetParams{h.p})
	case "lines":
		var b strings.Builder
		for _, dn := range pos {
			h.lines[dn] = Line{DN: dn}
			b.WriteString(h.step(LineConfig{h.lines[dn]}))
			b.WriteString(h.step(h.setStatus(dn, "idle")))
		}
		return b.String()
	case "line":
		return h.step(LineConfig{h.line(arg(0), named)})
	case "status":
		return h.step(h.setStatus(arg(0), arg(1)))
	case "remove":
		delete(h.lines, arg(0))
		delete(h.status, arg(0))
		return h.step(LineRemoved{arg(0)})
	case "reset":
		return h.step(DeviceReset{arg(0)})
	case "unmonitorable":
		return h.step(Unmonitorable{arg(0)})
	case "login", "logout":
		return h.step(Mobility{DN: arg(0), Login: d.Cmd == "login"})
	case "call":
		c := CallUpdate{From: arg(0), To: arg(1), Outcome: parse[Outcome](h.t, arg(2), outcomeNames[:]),
			Reached: named["reached"], Peer: named["peer"], PeerCC: has(named, "cc"),
			FromName: named["from-name"], ToName: named["to-name"]}
		return h.step(c)
	case "key":
		k := KeyPress{DN: arg(0), Key: parse[Key](h.t, arg(1), keyNames[:]), Target: named["dn"], Code: has(named, "code")}
		if s, ok := named["state"]; ok {
			k.State = parse[CallState](h.t, s, stateNames[:])
		}
		if v, ok := named["request"]; ok {
			k.Request = h.int(v)
		}
		acts := h.e.Step(h.now, k)
		// One answer per key press, for the line that pressed, last.
		if p, ok := acts[len(acts)-1].(Pressed); !ok || p.DN != k.DN || p.Key != k.Key {
			h.t.Errorf("%s: key press not answered last: %v", d.Pos, acts)
		}
		return h.apply(acts)
	case "recall-answered":
		return h.step(RecallAnswered{ID: h.int(named["id"]), DN: arg(0)})
	case "peer":
		m := PeerMessage{Peer: arg(0), Type: MsgType(arg(1)), Ref: h.int(named["ref"]),
			A: named["a"], B: named["b"], Kind: Kind(named["kind"])}
		return h.step(FromPeer{m})
	case "peer-call":
		return h.step(PeerCall{Peer: arg(0), Ref: h.int(named["ref"]), B: named["b"]})
	case "tick":
		dur, err := time.ParseDuration(arg(0))
		if err != nil {
			h.t.Fatal(err)
		}
		return h.tick(dur)
	case "restart":
		if v, ok := named["down"]; ok { // the server is down for a while: no timer fires
			dur, err := time.ParseDuration(v)
			if err != nil {
				h.t.Fatal(err)
			}
			h.now = h.now.Add(dur)
		}
		return h.restart()
	case "requests":
		var b strings.Builder
		for _, r := range h.e.Requests() {
			fmt.Fprintln(&b, describe(r))
		}
		return b.String()
	case "watched":
		return strings.Join(h.e.Watched(), " ")
	case "screen":
		sc, ok := h.screens[arg(0)]
		if !ok {
			return arg(0) + ": no screen"
		}
		return fmt.Sprintf("%s: %s %q keys %v", arg(0), sc.Kind, strings.ReplaceAll(sc.Text("en"), "\n", " | "), sc.Kind.Keys())
	}
	h.t.Fatalf("%s: unknown command %q", d.Pos, d.Cmd)
	return ""
}

func args(d *datadriven.TestData) (pos []string, named map[string]string) {
	named = map[string]string{}
	for _, a := range d.CmdArgs {
		if len(a.Vals) == 0 {
			pos = append(pos, a.Key)
			named[a.Key] = ""
			continue
		}
		named[a.Key] = strings.Join(a.Vals, ",")
	}
	return pos, named
}

func has(m map[string]string, k string) bool { _, ok := m[k]; return ok }

// flag sets f from the named argument k: on, unless its value is "off".
func flag(named map[string]string, k string, f *bool) {
	if v, ok := named[k]; ok {
		*f = v != "off"
	}
}

func parse[T ~int](t *testing.T, s string, names []string) T {
	i := slices.Index(names, s)
	if i < 0 {
		t.Fatalf("%q is none of %v", s, names)
	}
	return T(i)
}

func (h *harness) int(s string) int64 {
	var n int64
	if _, err := fmt.Sscan(s, &n); err != nil {
		h.t.Fatalf("number %q: %v", s, err)
	}
	return n
}

func (h *harness) params(p Params, pos []string, named map[string]string) Params {
	dur := func(k string, d *time.Duration) {
		if v, ok := named[k]; ok {
			x, err := time.ParseDuration(v)
			if err != nil {
				h.t.Fatal(err)
			}
			*d = x
		}
	}
	dur("t1", &p.T1)
	dur("t3", &p.T3)
	dur("window", &p.OfferWindow)
	dur("lifetime", &p.Lifetime)
	dur("lifetime-ccnr", &p.LifetimeCCNR)
	dur("wait", &p.WaitTime)
	if v, ok := named["policy"]; ok {
		p.Policy = map[string]Policy{"fifo": FIFO, "notify-all": NotifyAll}[v]
	}
	flag(named, "ccnr", &p.CCNREnabled)
	flag(named, "external", &p.External)
	flag(named, "enabled", &p.Enabled)
	if has(named, "disabled") {
		p.Enabled = false
	}
	flag(named, "strict-names", &p.StrictNames)
	flag(named, "announce", &p.Announce)
	flag(named, "busy-tone", &p.BusyTone)
	return p
}

func (h *harness) line(dn string, named map[string]string) Line {
	l, ok := h.lines[dn]
	if !ok {
		l = Line{DN: dn}
	}
	set := func(k string, f *string) {
		if v, ok := named[k]; ok {
			*f = v
		}
	}
	set("name", &l.Name)
	set("peer", &l.Peer)
	set("cfa", &l.ForwardAll)
	set("cfb", &l.ForwardBusy)
	set("cfna", &l.ForwardNoAnswer)
	flag(named, "cc", &l.PeerCC)
	flag(named, "dnd", &l.DND)
	flag(named, "recall", &l.AutoRecall)
	flag(named, "nokey", &l.NoCallBack)
	if v, ok := named["kind"]; ok {
		l.Kind = map[string]LineKind{"phone": Phone, "routepoint": RoutePoint, "voicemail": Voicemail}[v]
	}
	h.lines[dn] = l
	return l
}

func (h *harness) setStatus(dn, state string) LineStatus {
	s := LineStatus{DN: dn}
	switch state {
	case "idle":
		s.Registered = true
	case "in-call":
		s.Registered, s.OffHook = true, true
	case "busy":
		s.Registered, s.OffHook, s.Full = true, true, true
	case "unregistered":
	default:
		h.t.Fatalf("status %q: want idle, in-call, busy or unregistered", state)
	}
	h.status[dn] = s
	return s
}

func (h *harness) step(ev Event) string { return h.apply(h.e.Step(h.now, ev)) }

func (h *harness) tick(d time.Duration) string {
	end := h.now.Add(d)
	var b strings.Builder
	for {
		var next *TimerID
		for id, at := range h.timers {
			if at.After(end) {
				continue
			}
			if next == nil || at.Before(h.timers[*next]) ||
				(at.Equal(h.timers[*next]) && id.String() < next.String()) {
				next = &id
			}
		}
		if next == nil {
			break
		}
		h.now = h.timers[*next]
		delete(h.timers, *next)
		fmt.Fprintf(&b, "%s %s fired\n", h.now.Format("15:04:05"), next)
		b.WriteString(h.step(TimerFired{*next}))
	}
	h.now = end
	return b.String()
}

// restart: the process dies (timers and watches are gone, the store stays);
// a new engine learns the directory, then restores the stored requests.
func (h *harness) restart() string {
	h.e = New(h.p)
	h.timers, h.watched = map[TimerID]time.Time{}, map[string]bool{}
	h.screens = map[string]screen.Screen{} // the console's screens are not stored
	var b strings.Builder
	h.quiet = true
	for _, dn := range slices.Sorted(maps.Keys(h.lines)) {
		b.WriteString(h.step(LineConfig{h.lines[dn]}))
	}
	for _, dn := range slices.Sorted(maps.Keys(h.status)) {
		b.WriteString(h.step(h.status[dn]))
	}
	h.quiet = false
	stored := slices.Collect(maps.Values(h.store))
	b.WriteString(h.apply(h.e.Restore(h.now, stored)))
	return b.String()
}

// apply carries the actions out on the fake world, checks the engine's
// promises, and renders them one per line.
func (h *harness) apply(acts []Action) string {
	var b strings.Builder
	ended := map[string]bool{}     // A of a request deleted in this step: A must be shown its end
	alerted := map[string]string{} // A -> the line its alert is about
	for i, a := range acts {
		switch a := a.(type) {
		case Pressed:
			if i != len(acts)-1 {
				h.t.Errorf("%v is not the step's last action", a)
			}
		case Alert:
			alerted[a.DN] = a.About
		case StartTimer:
			h.timers[a.Timer] = a.At
			fmt.Fprintf(&b, "timer %s at %s\n", a.Timer, a.At.Format("15:04:05"))
			continue
		case CancelTimer:
			delete(h.timers, a.Timer)
		case Persist:
			h.store[a.Request.ID] = a.Request
		case Delete:
			r, ok := h.store[a.ID]
			if !ok {
				h.t.Errorf("delete of #%d, which is not stored", a.ID)
			}
			if ok && r.PeerA == "" && a.Reason != EndReplaced && a.Reason != EndInvalid {
				ended[r.A] = true
			}
			delete(h.store, a.ID)
		case Watch:
			if h.watched[a.DN] {
				h.t.Errorf("watch %s twice", a.DN)
			}
			h.watched[a.DN] = true
		case Unwatch:
			if !h.watched[a.DN] {
				h.t.Errorf("unwatch %s, not watched", a.DN)
			}
			delete(h.watched, a.DN)
		case ShowScreen:
			delete(ended, a.DN)
			if a.Screen.Kind == screen.None {
				delete(h.screens, a.DN)
			} else {
				h.screens[a.DN] = a.Screen
			}
			// F20: the alert is about the line the screen says is available.
			if about, ok := alerted[a.DN]; ok && a.Screen.Kind == screen.Available && about != a.Screen.DN {
				h.t.Errorf("alert to %s about %s, screen about %s", a.DN, about, a.Screen.DN)
			}
			// B3: a request is stored before the screen says it is active.
			if k := a.Screen.Kind; k == screen.Activated || k == screen.Available {
				if !slices.ContainsFunc(slices.Collect(maps.Values(h.store)), func(r Request) bool {
					return r.A == a.DN && r.State != Activating
				}) {
					h.t.Errorf("%s shown to %s before the request was persisted", k, a.DN)
				}
			}
		}
		b.WriteString(a.String())
		b.WriteByte('\n')
	}
	if !h.quiet {
		for a := range ended { // F19: A is told when its request is deleted
			h.t.Errorf("request of %s deleted, and %s's screen not changed", a, a)
		}
		h.check()
		h.checkScreens()
	}
	return b.String()
}

// checkScreens: issue 18, no screen outlives what it says. A screen that
// says a request is there (Activated, Available, the F6 question) is on a
// line that has that request; Dial is offered only while B is available.
func (h *harness) checkScreens() {
	h.t.Helper()
	for dn, sc := range h.screens {
		r, ok := h.e.RequestOf(dn)
		switch sc.Kind {
		case screen.Activated, screen.AvailableDND:
			if !ok || r.B != sc.DN && r.Forward != sc.DN {
				h.t.Errorf("%s shows %s on %s, but has no request on it (%v)", dn, sc.Kind, sc.DN, r.String())
			}
		case screen.Available:
			if !ok || r.State != Available || r.NoticeDN != sc.DN {
				h.t.Errorf("%s shows %s available with Dial, but its request is %v", dn, sc.DN, r.String())
			}
		case screen.Replace, screen.ReplaceAvailable:
			if !ok || cmp.Or(r.NoticeDN, r.B) != sc.OldDN && r.B != sc.OldDN {
				h.t.Errorf("%s shows the F6 question about %s, but its request is %v", dn, sc.OldDN, r.String())
			}
		}
	}
}

// check: the store, the watches and the armed timers are exactly what the
// engine's state says they should be.
func (h *harness) check() {
	h.t.Helper()
	reqs := h.e.Requests()
	stored := slices.SortedFunc(maps.Values(h.store), func(a, b Request) int { return cmp.Compare(a.ID, b.ID) })
	if len(reqs) != len(stored) || (len(reqs) > 0 && !reflect.DeepEqual(reqs, stored)) {
		h.t.Errorf("store out of date:\nengine %v\nstore  %v", reqs, stored)
	}
	if w := slices.Sorted(maps.Keys(h.watched)); !slices.Equal(w, h.e.Watched()) {
		h.t.Errorf("watched %v, engine wants %v", w, h.e.Watched())
	}
	want := map[TimerID]time.Time{}
	for i := range reqs {
		for _, t := range timersOf(&reqs[i]) {
			want[t.id] = t.at
		}
	}
	if !maps.EqualFunc(want, h.timers, time.Time.Equal) {
		h.t.Errorf("armed timers %v, requests want %v", h.timers, want)
	}
	// F38, independently of the engine: A while its request is monitoring
	// (active, suspended), B and the forward target while monitored; local
	// phones only. Nothing once A is notified.
	expect := map[string]bool{}
	add := func(dn string) {
		if l, ok := h.lines[dn]; ok && l.Kind == Phone && l.Peer == "" {
			expect[dn] = true
		}
	}
	for _, r := range reqs {
		if r.State != Active && r.State != Suspended {
			continue
		}
		if r.PeerA == "" {
			add(r.A)
		}
		if r.PeerB == "" {
			add(r.B)
			add(r.Forward)
		}
	}
	if w, x := slices.Sorted(maps.Keys(h.watched)), slices.Sorted(maps.Keys(expect)); !slices.Equal(w, x) {
		h.t.Errorf("F38: watched %v, want %v", w, x)
	}
}

func describe(r Request) string {
	s := fmt.Sprintf("#%d %s->%s %s %s created %s expires %s", r.ID, r.A, r.B, r.Kind, r.State,
		r.Created.Format("15:04:05"), r.Expires.Format("15:04:05"))
	if !r.T1.IsZero() {
		s += " t1 " + r.T1.Format("15:04:05")
	}
	if !r.Notice.IsZero() {
		s += fmt.Sprintf(" notice %s at %s", r.NoticeDN, r.Notice.Format("15:04:05"))
	}
	if !r.T3.IsZero() {
		s += " t3 " + r.T3.Format("15:04:05")
	}
	return s + strings.TrimPrefix(Persist{r}.String(), "persist "+r.String()) // fwd, peer, seen...
}

func tidy(s string) string {
	if s == "" {
		return "ok"
	}
	return strings.TrimRight(s, "\n")
}
