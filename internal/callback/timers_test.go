package callback

import (
	"testing"
	"time"

	"github.com/callbackd/callbackd/internal/engine"
)

// TestB3_TimersOrder: the one-wake-up timer table fires in deadline order
// (armed order for equal deadlines), a re-armed timer once at its new
// deadline, a cancelled one never, and forgets what fired.
func TestB3_TimersOrder(t *testing.T) {
	tm := newTimers(func() {})
	defer tm.stop()
	t0 := time.Now().Add(time.Hour) // the wake-up must not fire during the test
	id := func(n int64) engine.TimerID { return engine.TimerID{Kind: engine.TimerLifetime, Req: n} }
	tm.start(id(1), t0.Add(3*time.Second))
	tm.start(id(2), t0.Add(1*time.Second))
	tm.start(id(3), t0.Add(2*time.Second))
	tm.start(id(4), t0.Add(2*time.Second))
	tm.start(id(5), t0.Add(time.Second))
	tm.start(id(1), t0.Add(4*time.Second)) // re-armed: fires once, later
	tm.cancel(id(5))
	for i := int64(10); i < 300; i++ { // cancelled ones: the heap is compacted
		tm.start(id(i), t0)
		tm.cancel(id(i))
	}
	if tm.len() != 4 || len(tm.order) > 2*4+64 {
		t.Fatalf("%d armed, %d in the heap", tm.len(), len(tm.order))
	}
	if _, ok := tm.next(t0); ok {
		t.Fatal("a timer due before its deadline")
	}
	var got []int64
	for id, ok := tm.next(t0.Add(time.Minute)); ok; id, ok = tm.next(t0.Add(time.Minute)) {
		got = append(got, id.Req)
	}
	if want := []int64{2, 3, 4, 1}; len(got) != len(want) || got[0] != 2 || got[1] != 3 || got[2] != 4 || got[3] != 1 {
		t.Fatalf("fired %v, want %v", got, want)
	}
	if tm.len() != 0 {
		t.Fatalf("%d left after firing all", tm.len())
	}
}

// TestTimersWake: the wake-up fires for the earliest deadline, also when
// an earlier one is armed after a later one.
func TestTimersWake(t *testing.T) {
	woke := make(chan struct{}, 8)
	tm := newTimers(func() { woke <- struct{}{} })
	defer tm.stop()
	tm.start(engine.TimerID{Kind: engine.TimerT3, Req: 1}, time.Now().Add(time.Hour))
	tm.start(engine.TimerID{Kind: engine.TimerT3, Req: 2}, time.Now().Add(10*time.Millisecond))
	select {
	case <-woke:
	case <-time.After(5 * time.Second):
		t.Fatal("no wake-up for the earlier deadline")
	}
	tm.fired()
	time.Sleep(20 * time.Millisecond)
	if id, ok := tm.next(time.Now()); !ok || id.Req != 2 {
		t.Fatalf("due %v %v, want #2", id, ok)
	}
	tm.arm()
	if _, ok := tm.next(time.Now()); ok || tm.len() != 1 {
		t.Fatalf("%d left, want the later one", tm.len())
	}
}
