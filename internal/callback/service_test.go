package callback

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callbackd/callbackd/internal/b2bua"
	"github.com/callbackd/callbackd/internal/config"
	"github.com/callbackd/callbackd/internal/directory"
	"github.com/callbackd/callbackd/internal/engine"
	"github.com/callbackd/callbackd/internal/linestate"
	"github.com/callbackd/callbackd/internal/media"
	"github.com/callbackd/callbackd/internal/screen"
	"github.com/callbackd/callbackd/internal/store"
	"github.com/callbackd/callbackd/internal/store/sqlite"
)

// phones records what would go to the phones.
type phones struct {
	texts    chan sent
	connects chan [2]string
	recalls  chan recall

	mu  sync.Mutex
	log []string // alerts and holds, in order: "alert A about B", "hold A"
}

type recall struct {
	id   int64
	a, b string
	ring time.Duration
}

type sent struct {
	dn, text string
	at       time.Time
}

func (p *phones) SendText(dn, text string) int {
	p.texts <- sent{dn, text, time.Now()}
	return 1
}
func (p *phones) Alert(dn, about string, ring time.Duration) {
	p.record("alert " + dn + " about " + about)
}
func (p *phones) Connect(caller, callee string) error {
	p.connects <- [2]string{caller, callee}
	return nil
}
func (p *phones) Hold(dn string) int { p.record("hold " + dn); return 0 }

func (p *phones) record(s string) {
	p.mu.Lock()
	p.log = append(p.log, s)
	p.mu.Unlock()
}

func (p *phones) recorded() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.log)
}
func (p *phones) Recall(id int64, caller, callee string, ring time.Duration) error {
	p.recalls <- recall{id, caller, callee, ring}
	return nil
}

type fixture struct {
	svc    *Service
	lines  *linestate.Tracker
	st     *sqlite.SQLite
	phones *phones
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// start runs a service over a fresh (or given) SQLite file with lines
// registered and idle.
func start(tb testing.TB, path string, dns ...string) *fixture {
	tb.Helper()
	return startWith(tb, path, nil, dns...)
}

// startWith is start with set run on the service before it runs.
func startWith(tb testing.TB, path string, set func(*Service), dns ...string) *fixture {
	tb.Helper()
	st, err := sqlite.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	cfg := config.Default()
	var ls []config.Line
	tr := linestate.New(nil)
	for _, dn := range dns {
		l := config.Line{DN: dn, Password: "x", Locale: "en", BusyTrigger: 1, MaxDevices: 1, Notification: config.NotifyScreen}
		if strings.HasPrefix(dn, "9") { // auto-recall lines of these tests
			l.Notification = config.NotifyAutoRecall
		}
		ls = append(ls, l)
		tr.SetLine(dn, 1)
		tr.SetDevices(dn, 1)
	}
	p := &phones{texts: make(chan sent, 1<<20), connects: make(chan [2]string, 16), recalls: make(chan recall, 16)}
	svc := New(cfg.Callback, st, directory.New(ls), tr, p, slog.New(slog.DiscardHandler))
	if set != nil {
		set(svc)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan error, 1)
	done := make(chan struct{})
	go func() { svc.Run(ctx, ready); close(done) }()
	if err := <-ready; err != nil {
		tb.Fatal(err)
	}
	f := &fixture{svc: svc, lines: tr, st: st, phones: p, cancel: cancel, done: done}
	tb.Cleanup(f.stop)
	return f
}

func (f *fixture) stop() {
	f.once.Do(func() {
		f.cancel()
		<-f.done
		f.st.Close()
	})
}

func (f *fixture) next(tb testing.TB) sent {
	tb.Helper()
	return within(tb, f.phones.texts, "screen sent")
}

// within is the next value of ch; tb fails when none comes within 5 s.
func within[T any](tb testing.TB, ch <-chan T, what string) T {
	tb.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		tb.Fatalf("no %s within 5 s", what)
		var zero T
		return zero
	}
}

// busyFail makes B busy with a call from C, then reports A's call to B as
// failed busy (CCBS).
func (f *fixture) busyFail(a, b, c string) {
	f.lines.Originate(c, "call-"+c)
	f.lines.Offer(b, "call-"+c)
	f.lines.Answered(b, "call-"+c)
	f.svc.CallResult(b2bua.Result{Caller: a, Callee: b, Code: 486, Outcome: b2bua.FailBusy, At: time.Now()})
}

// TestB3_StoredBeforeConfirmed: the activation answer and screen come only
// after the request is in the store, and a restart brings it back (F4, F12).
func TestB3_StoredBeforeConfirmed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cb.db")
	f := start(t, path, "1001", "1002", "1003")
	f.busyFail("1001", "1002", "1003")
	res := f.svc.Feature("1001", "*39")
	if res.Code != 603 || res.Reason != "CallBack Activated" {
		t.Fatalf("*39 answered %d %q", res.Code, res.Reason)
	}
	stored, err := f.st.Requests(context.Background())
	if err != nil || len(stored) != 1 {
		t.Fatalf("stored requests when *39 was answered: %d, %v", len(stored), err)
	}
	var r engine.Request
	if err := json.Unmarshal(stored[0].Data, &r); err != nil || r.A != "1001" || r.B != "1002" || r.Kind != engine.CCBS {
		t.Fatalf("stored %+v, %v", r, err)
	}
	if s := f.next(t); s.dn != "1001" || !strings.HasPrefix(s.text, "CallBack is activated on 1002\n") {
		t.Fatalf("screen %+v", s)
	}
	f.stop()

	// After a restart the request is back and still completes: B frees.
	g := start(t, path, "1001", "1002", "1003")
	g.lines.Originate("1003", "x")
	g.lines.Offer("1002", "x")
	g.lines.Answered("1002", "x")
	if reqs := g.svc.Requests(); len(reqs) != 1 || reqs[0].A != "1001" {
		t.Fatalf("after restart: %+v", reqs)
	}
	g.lines.Ended("1002", "x")
	if s := g.next(t); s.dn != "1001" || !strings.HasPrefix(s.text, "1002 has become available\n") {
		t.Fatalf("screen after restart %+v", s)
	}
	if res := g.svc.Feature("1001", "*39"); res.Route != "1002" {
		t.Fatalf("*39 when B is available: %+v, want the call routed to 1002", res)
	}
}

// TestF28_F29_OfferKeyAndAutoRecall: a busy failure reported through
// Offered is offered (the announcement plays); 5 pressed during it
// activates (the "activated" prompt); a second 5 is not possible. When B
// frees, the auto-recall caller is recalled (ringing CC_WAIT_TIME) instead
// of alerted, and answering the recall completes the request towards B.
func TestF28_F29_OfferKeyAndAutoRecall(t *testing.T) {
	f := start(t, filepath.Join(t.TempDir(), "cb.db"), "9001", "1002", "1003")
	f.lines.Originate("1003", "c")
	f.lines.Offer("1002", "c")
	f.lines.Answered("1002", "c")
	res := b2bua.Result{Caller: "9001", Callee: "1002", Code: 486, Outcome: b2bua.FailBusy, At: time.Now()}
	if o := f.svc.Offered(res); o != (b2bua.Offer{Prompt: media.PromptBusyOffer}) {
		t.Fatalf("Offered on a busy failure: %+v, want the busy announcement", o)
	}
	if p := f.svc.OfferKey("9001"); p != media.PromptActivated {
		t.Fatalf("5 during the offer: prompt %q, want %q", p, media.PromptActivated)
	}
	if s := f.next(t); !strings.HasPrefix(s.text, "CallBack is activated on 1002\n") {
		t.Fatalf("screen after 5: %q", s.text)
	}
	if o := f.svc.Offered(b2bua.Result{Caller: "1003", Callee: "9999", Code: 480, Outcome: b2bua.FailUnregistered}); o != (b2bua.Offer{}) {
		t.Fatalf("a call to an unknown line was offered: %+v", o)
	}

	f.lines.Ended("1002", "c") // B frees: recall, not the alert
	var r recall
	select {
	case r = <-f.phones.recalls:
	case <-time.After(5 * time.Second):
		t.Fatal("no recall within 5 s of B freeing")
	}
	if r.a != "9001" || r.b != "1002" || r.ring != config.Default().Callback.WaitTime.Duration {
		t.Fatalf("recall %+v, want 9001 -> 1002 ringing wait_time", r)
	}
	if to := f.svc.RecallAnswered(r.id, "9001"); to != "1002" {
		t.Fatalf("recall answered: connect to %q, want 1002", to)
	}
	if reqs := f.svc.Requests(); len(reqs) != 0 {
		t.Fatalf("requests after the recall was answered: %+v", reqs)
	}
	if to := f.svc.RecallAnswered(r.id, "9001"); to != "" {
		t.Fatalf("a second answer of the same recall connects to %q, want nothing", to)
	}

	p := f.svc.Params()
	p.BusyTone = true
	f.svc.SetParams(p)
	f.lines.Originate("1003", "d")
	f.lines.Offer("1002", "d")
	f.lines.Answered("1002", "d")
	if o := f.svc.Offered(res); o != (b2bua.Offer{BusyTone: true}) {
		t.Fatalf("with busy_tone: %+v, want the busy tone", o)
	}
}

// TestF7_F8_FeatureAnswers: the 603 reason phrases of the feature codes.
func TestF7_F8_FeatureAnswers(t *testing.T) {
	f := start(t, filepath.Join(t.TempDir(), "cb.db"), "1001", "1002")
	for _, c := range []struct{ dialed, reason, screen string }{
		{"*39", "CallBack Not Active", "CallBack is not active"},
		{"*399999", "CallBack Cannot Be Activated", "CallBack cannot be activated for 9999."},
		{"#39", "CallBack Not Active", "CallBack is not active"},
	} {
		if !f.svc.IsFeature(c.dialed) {
			t.Fatalf("%s not a feature code", c.dialed)
		}
		res := f.svc.Feature("1001", c.dialed)
		if res.Code != 603 || res.Reason != c.reason {
			t.Errorf("%s: %d %q, want 603 %q", c.dialed, res.Code, res.Reason, c.reason)
		}
		if s := f.next(t); !strings.HasPrefix(s.text, c.screen) {
			t.Errorf("%s: screen %q, want %q...", c.dialed, s.text, c.screen)
		}
	}
	if f.svc.IsFeature("1002") || f.svc.IsFeature("*3") {
		t.Fatal("a DN taken for a feature code")
	}
}

// seed stores n open CCNR requests of callers 200001.. on B lines 3001..3010.
func seed(tb testing.TB, path string, n int) []string {
	st, err := sqlite.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	now := time.Now()
	dns := []string{}
	for i := 1; i <= 10; i++ {
		dns = append(dns, fmt.Sprint(3000+i))
	}
	var wg sync.WaitGroup
	ch := make(chan int)
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range ch {
				r := engine.Request{ID: int64(i), A: fmt.Sprint(200000 + i), B: fmt.Sprint(3001 + i%10),
					Kind: engine.CCNR, State: engine.Active, Created: now, Expires: now.Add(time.Hour)}
				data, _ := json.Marshal(r)
				if err := st.PutRequest(context.Background(), store.Request{ID: r.ID, Data: data}); err != nil {
					tb.Error(err)
				}
			}
		}()
	}
	for i := 1; i <= n; i++ {
		ch <- i
		dns = append(dns, fmt.Sprint(200000+i))
	}
	close(ch)
	wg.Wait()
	st.Close()
	return dns
}

// BenchmarkRestore100k: start of the service with 100k stored open requests
// (engine restore, timers, watches), as at a restart.
func BenchmarkRestore100k(b *testing.B) {
	path := filepath.Join(b.TempDir(), "cb.db")
	dns := seed(b, path, 100000)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f := start(b, path, dns...)
		if n, _ := f.svc.Counts(); n != 100000 {
			b.Fatalf("restored %d", n)
		}
		f.stop()
	}
}

// BenchmarkNotifyLatency: with N open requests, the time from B's call
// ending (the line-state change the B2BUA makes on B's BYE) to the screen
// going out to A's phone. Reports p50 and p99 in microseconds.
func BenchmarkNotifyLatency(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("open=%d", n), func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "cb.db")
			dns := seed(b, path, n)
			dns = append(dns, "1001", "1002", "1003")
			f := start(b, path, dns...)
			var lat []time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				// A (1001) activates on busy B (1002, in a call with 1003)...
				f.busyFail("1001", "1002", "1003")
				if res := f.svc.Feature("1001", "*39"); res.Reason != "CallBack Activated" {
					b.Fatalf("activation %+v", res)
				}
				f.next(b)
				// ...B hangs up: measure until A's screen is sent.
				t0 := time.Now()
				f.lines.Ended("1002", "call-1003")
				f.lines.Ended("1003", "call-1003")
				s := f.next(b)
				lat = append(lat, s.at.Sub(t0))
				if !strings.HasPrefix(s.text, "1002 has become available") {
					b.Fatalf("screen %q", s.text)
				}
				if res := f.svc.Feature("1001", "#39"); res.Reason != "CallBack Cancelled" {
					b.Fatalf("cancel %+v", res)
				}
				f.next(b)
			}
			b.StopTimer()
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}

// TestF19_TimersForgottenOnceFired: a fired timer leaves the service's timer
// table (it would otherwise grow by one entry per ended request), and the
// lifetime expiry deletes the request and tells A.
func TestF19_TimersForgottenOnceFired(t *testing.T) {
	f := start(t, filepath.Join(t.TempDir(), "cb.db"), "1001", "1002", "1003")
	p := Params(f.svc.cfg)
	p.Lifetime = 50 * time.Millisecond
	f.svc.Do(engine.SetParams{Params: p})
	f.busyFail("1001", "1002", "1003")
	if res := f.svc.Feature("1001", "*39"); res.Reason != "CallBack Activated" {
		t.Fatalf("activation %+v", res)
	}
	f.next(t)
	if s := f.next(t); s.dn != "1001" || !strings.HasPrefix(s.text, "CallBack on 1002 has expired and was deleted\n") {
		t.Fatalf("expiry screen %+v", s)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		var n int
		done := make(chan struct{})
		f.svc.in <- input{read: func() { n = f.svc.timers.len(); close(done) }}
		<-done
		if n == 0 && len(f.svc.Requests()) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d timers and %d requests left after the lifetime expired", n, len(f.svc.Requests()))
		}
		time.Sleep(10 * time.Millisecond)
	}
	stored, err := f.st.Requests(context.Background())
	if err != nil || len(stored) != 0 {
		t.Fatalf("store after expiry: %d requests, %v", len(stored), err)
	}
}

// TestB4_ConsoleKeysAndLiveParams: the console's softkeys act as the
// feature codes do (CallBack activates, Dial makes the server connect A to
// B, an unknown key is refused), and a parameter changed while running is
// in force for the next request (F31, F36).
func TestB4_ConsoleKeysAndLiveParams(t *testing.T) {
	f := start(t, filepath.Join(t.TempDir(), "cb.db"), "1001", "1002", "1003")
	if _, _, err := f.svc.Press("1001", "Redial"); err != ErrUnknownKey {
		t.Fatalf("unknown key: %v", err)
	}
	p := f.svc.Params()
	p.T3.Duration = 7 * time.Second
	f.svc.SetParams(p)

	f.busyFail("1001", "1002", "1003")
	_, sc, err := f.svc.Press("1001", "CallBack")
	if err != nil || sc.Kind != screen.Activated || sc.DN != "1002" {
		t.Fatalf("CallBack pressed: %+v, %v", sc, err)
	}
	f.next(t)
	f.lines.Ended("1002", "call-1003")
	f.next(t) // available
	r, ok := f.svc.RequestOf("1001")
	if !ok || r.State != engine.Available || r.T3.Sub(r.Notice) != 7*time.Second {
		t.Fatalf("request after B freed: %+v (T3 %v after the notice, want 7s)", r, r.T3.Sub(r.Notice))
	}
	// Issue 18: the console says the request ended and where the call goes.
	if _, sc, err := f.svc.Press("1001", "Dial"); err != nil || sc.Kind != screen.Completed || sc.DN != "1002" {
		t.Fatalf("Dial pressed: screen %v %s (want Completed 1002), %v", sc.Kind, sc.DN, err)
	}
	if c := f.connected(t); c != [2]string{"1001", "1002"} {
		t.Fatalf("Dial connected %v, want 1001 to 1002", c)
	}
}

// connected is the next call the service placed through the console.
func (f *fixture) connected(tb testing.TB) [2]string {
	tb.Helper()
	return within(tb, f.phones.connects, "call placed")
}

// TestF18_F19_F25_ScreenAfterTheRequestEnds (issue 18): through the service
// and its real timers, after each way a request ends the line's screen (what
// the console and GET /api/v1/lines/{dn}/screen show) and the MESSAGE sent
// to the phone say so: `*39` as Dial, T3 expiry, lifetime expiry, a reset
// of A. None leaves "Press Dial" or "CallBack is activated" behind.
func TestF18_F19_F25_ScreenAfterTheRequestEnds(t *testing.T) {
	f := start(t, filepath.Join(t.TempDir(), "cb.db"), "1001", "1002", "1003")
	p := f.svc.Params()
	// Short, yet long enough for a loaded machine to read each screen
	// before the next timer: T3 1 s, lifetime 3 s.
	p.T3.Duration = time.Second
	p.Lifetime.Duration = 3 * time.Second
	f.svc.SetParams(p)

	expect := func(what string, kind screen.Kind, prefix string) {
		t.Helper()
		s := f.next(t)
		if s.dn != "1001" || !strings.HasPrefix(s.text, prefix) {
			t.Fatalf("%s: sent %q to %s, want %q...", what, s.text, s.dn, prefix)
		}
		if sc, ok := f.svc.Screen("1001"); !ok || sc.Kind != kind {
			t.Fatalf("%s: the line's screen is %v (%v), want %v", what, sc.Kind, ok, kind)
		}
	}
	activate := func(what string) {
		t.Helper()
		f.busyFail("1001", "1002", "1003")
		if res := f.svc.Feature("1001", "*39"); res.Reason != "CallBack Activated" {
			t.Fatalf("%s: *39 answered %+v", what, res)
		}
		expect(what, screen.Activated, "CallBack is activated on 1002\n")
	}
	free := func(what string) {
		t.Helper()
		f.lines.Ended("1002", "call-1003")
		expect(what, screen.Available, "1002 has become available\n")
	}

	activate("completed by *39")
	free("completed by *39")
	if res := f.svc.Feature("1001", "*39"); res.Route != "1002" {
		t.Fatalf("*39 with B available: %+v, want Dial to 1002", res)
	}
	expect("completed by *39", screen.Completed, "Calling 1002\nCallBack has ended\n")

	activate("T3 expiry")
	free("T3 expiry")
	expect("T3 expiry", screen.AvailableEnded, "1002 has become available\nTime ")

	activate("lifetime expiry") // B stays busy
	expect("lifetime expiry", screen.Expired, "CallBack on 1002 has expired and was deleted\n")
	f.lines.Ended("1002", "call-1003")

	activate("reset of A")
	f.svc.DeviceReset("1001")
	if _, ok := f.svc.RequestOf("1001"); ok { // through the loop: the reset is done
		t.Fatal("reset of A: the request is still open")
	}
	if sc, ok := f.svc.Screen("1001"); ok {
		t.Fatalf("reset of A (F25: no screen): the line shows %v", sc.Kind)
	}
}

// TestF4_F28_ReasonAndPromptFromPressed: the feature code's 603 reason phrase and
// the offer's prompt after 5 are read from the engine's Pressed, not from a
// screen: each result (and A's request state after it) has its answer.
func TestF4_F28_ReasonAndPromptFromPressed(t *testing.T) {
	for _, c := range []struct {
		p              engine.Pressed
		reason, prompt string
		created        bool // the API's 201
	}{
		{engine.Pressed{Result: engine.KeyInactive}, "Key Not Active", media.PromptNotPossible, false},
		{engine.Pressed{Result: engine.NotActive}, "CallBack Not Active", media.PromptNotPossible, false},
		{engine.Pressed{Result: engine.CannotActivate, Why: engine.UnknownDN}, "CallBack Cannot Be Activated", media.PromptNotPossible, false},
		{engine.Pressed{Result: engine.Activated, State: engine.Active}, "CallBack Activated", media.PromptActivated, true},
		{engine.Pressed{Result: engine.Activated, State: engine.Suspended}, "CallBack Activated", media.PromptActivated, true},
		{engine.Pressed{Result: engine.Activated, State: engine.Available}, "CallBack Available", media.PromptActivated, false},
		{engine.Pressed{Result: engine.Activated, State: engine.Activating}, "CallBack", media.PromptNotPossible, false},
		{engine.Pressed{Result: engine.Shown, State: engine.Active}, "CallBack Activated", media.PromptActivated, true},
		{engine.Pressed{Result: engine.Shown, State: engine.Available}, "CallBack Available", media.PromptNotPossible, false},
		{engine.Pressed{Result: engine.Shown, State: engine.Activating}, "CallBack", media.PromptNotPossible, false},
		{engine.Pressed{Result: engine.AskReplace, State: engine.Active}, "CallBack Already Active", media.PromptNotPossible, false},
		{engine.Pressed{Result: engine.Cancelled}, "CallBack Cancelled", media.PromptNotPossible, false},
		{engine.Pressed{Result: engine.Closed, State: engine.Active}, "CallBack", media.PromptNotPossible, false},
	} {
		if got := reason(c.p); got != c.reason {
			t.Errorf("%v: reason %q, want %q", c.p, got, c.reason)
		}
		if got := offerPrompt(c.p); got != c.prompt {
			t.Errorf("%v: prompt %q, want %q", c.p, got, c.prompt)
		}
		if got := c.p.Confirmed(); got != c.created {
			t.Errorf("%v: confirmed %v, want %v", c.p, got, c.created)
		}
	}
}

// TestF14_F29_PlaceCallByOrigin: execute places the call back call where A's call
// is: the feature code's INVITE is routed, the console rings A then B (A's
// call on hold first, F14), the answered recall leg is connected; with no
// call of A's to place it from, nothing is placed.
func TestF14_F29_PlaceCallByOrigin(t *testing.T) {
	f := start(t, filepath.Join(t.TempDir(), "cb.db"), "1001", "1002", "1003")
	pc := engine.PlaceCall{ID: 1, From: "1001", To: "1002", OverrideForwarding: true}
	inLoop := func(fn func()) {
		done := make(chan struct{})
		f.svc.in <- input{read: func() { fn(); close(done) }}
		<-done
	}
	for _, c := range []struct {
		from  *origin
		route string
	}{
		{&origin{via: viaInvite, dn: "1001"}, "1002"},
		{&origin{via: viaRecall, dn: "1001"}, "1002"},
		{&origin{via: viaInvite, dn: "1003"}, ""}, // not A's call
		{nil, ""}, // a timer, a line change
	} {
		inLoop(func() { f.svc.place(pc, c.from) })
		if c.from != nil && c.from.route != c.route {
			t.Errorf("%+v: route %q, want %q", *c.from, c.from.route, c.route)
		}
	}
	remote := pc
	remote.Peer = "pbx2"
	o := &origin{via: viaRecall, dn: "1001"}
	inLoop(func() { f.svc.place(remote, o) })
	if o.route != "" {
		t.Errorf("the recall leg connected to a peer's line: %q", o.route)
	}
	select {
	case c := <-f.phones.connects:
		t.Fatalf("connected %v, want only the console to connect", c)
	default:
	}

	held := pc
	held.HoldFirst = true
	inLoop(func() { f.svc.place(held, &origin{via: viaConsole, dn: "1001"}) })
	if c := f.connected(t); c != [2]string{"1001", "1002"} {
		t.Fatalf("console: connected %v", c)
	}
	if log := f.phones.recorded(); !slices.Equal(log, []string{"hold 1001"}) {
		t.Fatalf("console with HoldFirst: %v, want A's call held first", log)
	}
}

// TestF14_DialOnRequestNotAvailable: Dial through the API names the request;
// before B is available nothing happens (the API's 409): no screen is sent
// and A keeps its request and screen.
func TestF14_DialOnRequestNotAvailable(t *testing.T) {
	f := start(t, filepath.Join(t.TempDir(), "cb.db"), "1001", "1002", "1003")
	f.busyFail("1001", "1002", "1003")
	if p, _ := f.svc.Activate("1001", ""); p.Result != engine.Activated || p.State != engine.Active || !p.Confirmed() {
		t.Fatalf("activate: %v", p)
	}
	f.next(t)
	r, _ := f.svc.RequestOf("1001")
	p, sc, err := f.svc.PressOn(r.ID, "1001", screen.KeyDial)
	if err != nil || p.Result != engine.NotAvailable || sc.Kind != screen.Activated {
		t.Fatalf("Dial on #%d before B is available: %v, screen %v, %v", r.ID, p, sc.Kind, err)
	}
	select {
	case s := <-f.phones.texts:
		t.Fatalf("sent %q to %s", s.text, s.dn)
	case <-time.After(100 * time.Millisecond):
	}
	if _, ok := f.svc.RequestOf("1001"); !ok {
		t.Fatal("the request is gone")
	}
	// The softkey's Dial, with no request named, says so on the screen.
	if p, sc, _ := f.svc.Press("1001", screen.KeyDial); p.Result != engine.KeyInactive || sc.Kind != screen.KeyNotActive {
		t.Fatalf("Dial softkey before B is available: %v, screen %v", p, sc.Kind)
	}
}

// TestF4_F12_WatchStatusAfterTheActions: the current status of a line the engine
// starts watching is stepped after the step's actions, not in the middle:
// A's "activated" screen goes out before the "available" one that B's
// status brings, and the alert names B (Alert.About).
func TestF4_F12_WatchStatusAfterTheActions(t *testing.T) {
	f := start(t, filepath.Join(t.TempDir(), "cb.db"), "1001", "1002", "1003")
	// The engine believes B busy; the line state says idle (B hung up
	// before the engine was told: it does not watch B yet, F38).
	f.svc.Do(engine.LineStatus{DN: "1002", Registered: true, OffHook: true, Full: true})
	f.svc.Do(engine.CallUpdate{From: "1001", To: "1002", Outcome: engine.Busy})
	acts := f.svc.Do(engine.KeyPress{DN: "1001", Key: engine.KeyCallBack, State: engine.OnHook})
	if p, ok := acts[len(acts)-1].(engine.Pressed); !ok || p.Result != engine.Activated || p.State != engine.Active {
		t.Fatalf("key press answered %v", acts[len(acts)-1])
	}
	if s := f.next(t); !strings.HasPrefix(s.text, "CallBack is activated on 1002\n") {
		t.Fatalf("first screen %q, want the activation", s.text)
	}
	if s := f.next(t); !strings.HasPrefix(s.text, "1002 has become available\n") {
		t.Fatalf("second screen %q, want B available", s.text)
	}
	if r, _ := f.svc.RequestOf("1001"); r.State != engine.Available {
		t.Fatalf("request %v, want available", r.String())
	}
	if log := f.phones.recorded(); !slices.Equal(log, []string{"alert 1001 about 1002"}) {
		t.Fatalf("phones: %v, want the alert about 1002", log)
	}
}
