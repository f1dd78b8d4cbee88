package engine

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/callbackd/callbackd/internal/dialplan"
	"github.com/callbackd/callbackd/internal/screen"
)

// The engine is pure (GUIDE: no I/O, no goroutines, no wall clock): its
// non-test files must not import the network, the OS or the SIP stack, start
// goroutines, or read the clock.
func TestEngineIsPure(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	clock := map[string]bool{"Now": true, "Since": true, "Until": true, "After": true, "AfterFunc": true,
		"NewTimer": true, "NewTicker": true, "Sleep": true, "Tick": true}
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if p == "net" || strings.HasPrefix(p, "net/") || p == "os" || strings.HasPrefix(p, "os/") ||
				p == "syscall" || p == "unsafe" || strings.Contains(p, "sipgo") || strings.Contains(p, "/sip") ||
				p == "io/ioutil" || p == "log" || p == "log/slog" || p == "math/rand" || p == "math/rand/v2" {
				t.Errorf("%s imports %s", name, p)
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.GoStmt:
				t.Errorf("%s: go statement at %s", name, fset.Position(n.Pos()))
			case *ast.SelectorExpr:
				if id, ok := n.X.(*ast.Ident); ok && id.Name == "time" && clock[n.Sel.Name] {
					t.Errorf("%s: time.%s at %s", name, n.Sel.Name, fset.Position(n.Pos()))
				}
			}
			return true
		})
	}
	if checked < 5 {
		t.Fatalf("only %d files checked", checked)
	}
}

// Every behaviour ID the engine owns is named by a scenario or a test.
func TestFeatureIDsCovered(t *testing.T) {
	var all strings.Builder
	for _, pat := range []string{"testdata/*.txt", "*_test.go"} {
		files, _ := filepath.Glob(pat)
		for _, f := range files {
			if f == "engine_test.go" { // this list does not count
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			all.Write(b)
		}
	}
	text := all.String()
	ids := []int{29, 30, 31, 38}
	for i := 1; i <= 27; i++ {
		ids = append(ids, i)
	}
	for _, i := range ids {
		if !regexp.MustCompile(fmt.Sprintf(`\bF%d\b`, i)).MatchString(text) {
			t.Errorf("F%d is named by no scenario or test", i)
		}
	}
}

// F9: digits and spaces only in numbers; names must not have '#' or '*'.
func TestF9_NumbersAndNames(t *testing.T) {
	for s, want := range map[string]bool{
		"1002": true, "10 02": true, "+4930123": true, "": false, " ": false, "+": false,
		"10#2": false, "*39": false, "10a2": false, "bob": false, "1+2": false,
	} {
		if got := dialplan.IsNumber(s); got != want {
			t.Errorf("dialplan.IsNumber(%q) = %v", s, got)
		}
	}
	e := New(DefaultParams())
	for s, want := range map[string]bool{"": true, "Alice": true, "Al*ce": false, "#1": false, "10 01": true} {
		if got := e.validName(s); got != want {
			t.Errorf("validName(%q) = %v", s, got)
		}
	}
	e.p.StrictNames = true
	for s, want := range map[string]bool{"": true, "Alice": false, "10 01": true} {
		if got := e.validName(s); got != want {
			t.Errorf("strict validName(%q) = %v", s, got)
		}
	}
}

// F2: the CallBack key is live on hook, in ring out and in connected transfer.
func TestF2_KeyLiveInThreeCallStates(t *testing.T) {
	for st, want := range map[CallState]screen.Kind{
		OnHook: screen.Activated, RingOut: screen.Activated, ConnectedTransfer: screen.Activated,
		Dialing: screen.KeyNotActive, Connected: screen.KeyNotActive,
	} {
		e := newLines(DefaultParams(), "1001", "1002")
		e.Step(t0, LineStatus{DN: "1002", Registered: true, OffHook: true, Full: true})
		e.Step(t0, CallUpdate{From: "1001", To: "1002", Outcome: Busy})
		if got := lastScreen(e.Step(t0, KeyPress{DN: "1001", Key: KeyCallBack, State: st})); got != want {
			t.Errorf("%v: %v, want %v", st, got, want)
		}
	}
}

// F1: which outcomes give which kind, and which cannot be acted on.
func TestF1_OutcomeKinds(t *testing.T) {
	for o, want := range map[Outcome]Kind{
		Busy: CCBS, DNDReject: CCBS, Ringing: CCNR, NoAnswer: CCNR, Unregistered: CCNL, Answered: "", Proceeding: "",
	} {
		e := newLines(DefaultParams(), "1001", "1002")
		e.Step(t0, CallUpdate{From: "1001", To: "1002", Outcome: o})
		e.Step(t0, KeyPress{DN: "1001", Key: KeyCallBack, State: RingOut})
		var got Kind
		if rs := e.Requests(); len(rs) == 1 {
			got = rs[0].Kind
		}
		if got != want {
			t.Errorf("%v: kind %q, want %q", o, got, want)
		}
	}
}

// B3: the stored record is JSON and comes back identical.
func TestRequestJSONRoundTrip(t *testing.T) {
	r := Request{ID: 7, A: "1001", B: "1002", Kind: CCNR, State: Available, Created: t0,
		Expires: t0.Add(3 * time.Hour), T3: t0.Add(time.Minute), Notice: t0.Add(40 * time.Second),
		NoticeDN: "1003", Seen: true, SeenForward: true, Forward: "1003", PeerB: "pbx2", Recall: true}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), `"t1"`) {
		t.Errorf("zero T1 stored: %s", b)
	}
	var back Request
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.String(), r.String()) || !back.Expires.Equal(r.Expires) || back != r {
		t.Errorf("round trip\n got %+v\nwant %+v", back, r)
	}
}

// A timer the engine no longer wants (raced with Dial) does nothing.
func TestStaleTimerIgnored(t *testing.T) {
	e := newLines(DefaultParams(), "1001", "1002")
	e.Step(t0, LineStatus{DN: "1002", Registered: true, OffHook: true, Full: true})
	e.Step(t0, CallUpdate{From: "1001", To: "1002", Outcome: Busy})
	e.Step(t0, KeyPress{DN: "1001", Key: KeyCallBack, State: RingOut})
	e.Step(t0, LineStatus{DN: "1002", Registered: true})
	e.Step(t0, KeyPress{DN: "1001", Key: KeyDial})
	for _, k := range []TimerKind{TimerT1, TimerT3, TimerLifetime, TimerWait} {
		if acts := e.Step(t0.Add(time.Hour), TimerFired{TimerID{k, 1}}); len(acts) != 0 {
			t.Errorf("stale %s fired: %v", k, acts)
		}
	}
}

// Same events, same actions: nothing depends on map order or the clock.
func TestDeterministic(t *testing.T) {
	run := func() string {
		h := &harness{t: t}
		var b strings.Builder
		randomRun(h, rand.New(rand.NewPCG(1, 2)), 400, &b)
		return b.String()
	}
	if a, b := run(), run(); a != b {
		t.Fatal("two runs of the same events differ")
	}
}

// Random events (seeded) against the invariants of the scenario harness:
// the store always equals the engine's requests, exactly the involved lines
// are watched (F38), the armed timers are the requests' deadlines, screens
// that say "active" come after the persist, and A never has two (F5).
func TestRandomEventsKeepInvariants(t *testing.T) {
	for seed := range uint64(20) {
		h := &harness{t: t}
		randomRun(h, rand.New(rand.NewPCG(seed, 99)), 1500, nil)
		if t.Failed() {
			t.Fatalf("seed %d", seed)
		}
	}
}

func randomRun(h *harness, rng *rand.Rand, steps int, log *strings.Builder) {
	h.p = DefaultParams()
	if rng.IntN(2) == 0 {
		h.p.Policy = FIFO
	}
	h.e = New(h.p)
	h.now = t0
	h.lines, h.status = map[string]Line{}, map[string]LineStatus{}
	h.timers, h.store, h.watched = map[TimerID]time.Time{}, map[int64]Request{}, map[string]bool{}
	h.screens = map[string]screen.Screen{}
	dns := []string{"1001", "1002", "1003", "1004", "1005"}
	pick := func(s []string) string { return s[rng.IntN(len(s))] }
	out := func(s string) {
		if log != nil {
			log.WriteString(s)
		}
	}
	for _, dn := range dns {
		h.lines[dn] = Line{DN: dn}
		out(h.step(LineConfig{h.lines[dn]}))
		out(h.step(h.setStatus(dn, "idle")))
	}
	h.lines["2001"] = Line{DN: "2001", Peer: "pbx2", PeerCC: true}
	out(h.step(LineConfig{h.lines["2001"]}))
	failing := []Outcome{Ringing, Busy, NoAnswer, Unregistered, DNDReject}
	for range steps {
		var ev Event
		switch rng.IntN(20) {
		case 0, 1, 2, 3:
			ev = h.setStatus(pick(dns), pick([]string{"idle", "idle", "busy", "busy", "in-call", "unregistered"}))
		case 4, 5, 6: // a failed call, and mostly the key right away
			a, b := pick(dns), pick(append(dns, "2001"))
			c := CallUpdate{From: a, To: b, Outcome: failing[rng.IntN(len(failing))]}
			if rng.IntN(5) == 0 {
				c.Reached = pick(dns)
			}
			if rng.IntN(10) == 0 {
				c.Outcome = Outcome(rng.IntN(int(Answered) + 1))
			}
			out(fmt.Sprintf("%T %+v\n", c, c))
			out(h.step(c))
			if rng.IntN(4) == 0 {
				continue
			}
			ev = KeyPress{DN: a, Key: KeyCallBack, State: []CallState{RingOut, OnHook, ConnectedTransfer}[rng.IntN(3)]}
		case 7, 8, 9:
			ev = KeyPress{DN: pick(dns), Key: Key(rng.IntN(5)), State: CallState(rng.IntN(5)),
				Code: rng.IntN(2) == 0, Target: pick([]string{"", "", "", pick(dns)})}
		case 10:
			d := time.Duration(rng.IntN(40)) * time.Second
			if rng.IntN(10) == 0 {
				d = time.Duration(rng.IntN(200)) * time.Minute
			}
			out(h.tick(d))
			continue
		case 11:
			l, ok := h.lines[pick(dns)]
			if !ok {
				continue
			}
			l.DND = rng.IntN(3) == 0
			l.ForwardAll, l.ForwardBusy, l.AutoRecall = "", "", rng.IntN(4) == 0
			if rng.IntN(4) == 0 {
				l.ForwardBusy = pick(dns)
			}
			h.lines[l.DN] = l
			ev = LineConfig{l}
		case 12:
			ev = DeviceReset{pick(dns)}
		case 13:
			if rng.IntN(3) > 0 {
				continue
			}
			ev = Mobility{DN: pick(dns), Login: true}
		case 14, 15:
			var ids []int64
			for id := range h.store {
				ids = append(ids, id)
			}
			slices.Sort(ids)
			ref := int64(rng.IntN(5))
			if len(ids) > 0 {
				ref = ids[rng.IntN(len(ids))]
			}
			typ := pick([]string{"accept", "accept", "available", "available", "reject", "end", "request", "suspend", "resume", "cancel"})
			ev = FromPeer{PeerMessage{Peer: pick([]string{"pbx2", "pbx1"}), Type: MsgType(typ), Ref: ref,
				A: "3001", B: pick(dns), Kind: Kind(pick([]string{"CCBS", "CCNR", "CCNL"}))}}
		case 16:
			ev = PeerCall{Peer: "pbx1", Ref: int64(rng.IntN(5)), B: pick(dns)}
		case 17:
			ev = RecallAnswered{ID: int64(rng.IntN(8)), DN: pick(dns)}
		case 18:
			if rng.IntN(3) > 0 {
				continue
			}
			if rng.IntN(2) == 0 {
				h.now = h.now.Add(time.Duration(rng.IntN(60)) * time.Second)
			}
			out(h.restart())
			continue
		case 19:
			if rng.IntN(3) > 0 {
				continue
			}
			dn := pick(dns)
			if _, ok := h.lines[dn]; ok {
				delete(h.lines, dn)
				delete(h.status, dn)
				ev = LineRemoved{dn}
			} else {
				h.lines[dn] = Line{DN: dn}
				ev = LineConfig{h.lines[dn]}
			}
		}
		out(fmt.Sprintf("%T %+v\n", ev, ev))
		out(h.step(ev))
		seen := map[string]bool{}
		for _, r := range h.e.Requests() {
			if r.local() {
				if seen[r.A] {
					h.t.Errorf("F5: %s has two requests", r.A)
				}
				seen[r.A] = true
			}
		}
		if h.t.Failed() {
			return
		}
	}
}

func newLines(p Params, dns ...string) *Engine {
	e := New(p)
	for _, dn := range dns {
		e.Step(t0, LineConfig{Line{DN: dn}})
		e.Step(t0, LineStatus{DN: dn, Registered: true})
	}
	return e
}

func lastScreen(acts []Action) screen.Kind {
	k := screen.Kind(-1)
	for _, a := range acts {
		if s, ok := a.(ShowScreen); ok {
			k = s.Screen.Kind
		}
	}
	return k
}

// B3: Restore keeps the good records of a damaged store and deletes the
// rest; IDs continue after the highest one seen.
func TestRestoreRejectsBadRecords(t *testing.T) {
	good := Request{ID: 3, A: "1001", B: "1002", Kind: CCBS, State: Active, Created: t0, Expires: t0.Add(time.Hour)}
	dupA := good
	dupA.ID = 5 // F5: a second request of 1001
	noKind := good
	noKind.ID, noKind.A, noKind.Kind = 4, "1003", "XX"
	badState := good
	badState.ID, badState.A, badState.State = 6, "1004", Available // no T3
	dupID := good
	dupID.A = "1005" // ID 3 again
	e := newLines(DefaultParams(), "1001", "1002", "1003", "1004", "1005")
	var deleted []string
	for _, a := range e.Restore(t0, []Request{dupA, good, dupID, noKind, badState}) {
		if d, ok := a.(Delete); ok {
			deleted = append(deleted, d.String())
		}
	}
	want := []string{"delete #4 invalid", "delete #5 invalid", "delete #6 invalid"} // never #3: it is the good one's ID
	if !slices.Equal(deleted, want) {
		t.Errorf("deleted %v, want %v", deleted, want)
	}
	if rs := e.Requests(); len(rs) != 1 || rs[0].ID != 3 || rs[0].A != "1001" {
		t.Errorf("kept %v", rs)
	}
	e.Step(t0, CallUpdate{From: "1003", To: "1002", Outcome: Busy})
	e.Step(t0, KeyPress{DN: "1003", Key: KeyCallBack, State: RingOut})
	if rs := e.Requests(); len(rs) != 2 || rs[1].ID != 7 {
		t.Errorf("next ID: %v", rs)
	}
}
