package callback

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/callbackd/callbackd/internal/engine"
	"github.com/callbackd/callbackd/internal/media"
	"github.com/callbackd/callbackd/internal/screen"
)

// TestReasonAndPromptFromPressed: the feature code's 603 reason phrase and
// the offer's prompt after 5 are read from the engine's Pressed, not from a
// screen: each result (and A's request state after it) has its answer.
func TestReasonAndPromptFromPressed(t *testing.T) {
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

// TestPlaceCallByOrigin: execute places the call back call where A's call
// is: the feature code's INVITE is routed, the console rings A then B (A's
// call on hold first, F14), the answered recall leg is connected; with no
// call of A's to place it from, nothing is placed.
func TestPlaceCallByOrigin(t *testing.T) {
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
	select {
	case c := <-f.phones.connects:
		if c != [2]string{"1001", "1002"} {
			t.Fatalf("console: connected %v", c)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("console: no call placed")
	}
	if log := f.phones.recorded(); !slices.Equal(log, []string{"hold 1001"}) {
		t.Fatalf("console with HoldFirst: %v, want A's call held first", log)
	}
}

// TestDialOnRequestNotAvailable: Dial through the API names the request;
// before B is available nothing happens (the API's 409): no screen is sent
// and A keeps its request and screen.
func TestDialOnRequestNotAvailable(t *testing.T) {
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

// TestWatchStatusAfterTheActions: the current status of a line the engine
// starts watching is stepped after the step's actions, not in the middle:
// A's "activated" screen goes out before the "available" one that B's
// status brings, and the alert names B (Alert.About).
func TestWatchStatusAfterTheActions(t *testing.T) {
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
