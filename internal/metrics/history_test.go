package metrics

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/callbackd/callbackd/internal/engine"
	"github.com/callbackd/callbackd/internal/screen"
)

var t0 = time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)

// TestF37_HistoryRing: the ring keeps the last HistorySize samples, oldest
// first, drops one that is not later than the last, and Since filters.
func TestF37_HistoryRing(t *testing.T) {
	h := NewHistory(HistorySize)
	if got := h.Since(time.Time{}); len(got) != 0 {
		t.Fatalf("empty ring: %d samples", len(got))
	}
	for i := range HistorySize + 5 {
		h.Add(Sample{Time: t0.Add(time.Duration(i) * HistoryInterval), Calls: int64(i)})
	}
	h.Add(Sample{Time: t0, Calls: -1}) // in the past: dropped
	all := h.Since(time.Time{})
	if len(all) != HistorySize {
		t.Fatalf("%d samples kept, want %d", len(all), HistorySize)
	}
	for i, s := range all {
		if s.Calls != int64(i+5) {
			t.Fatalf("sample %d: calls %d, want %d (oldest first, the 5 oldest dropped)", i, s.Calls, i+5)
		}
	}
	if got := all[len(all)-1].Time.Sub(all[0].Time); got != (HistorySize-1)*HistoryInterval {
		t.Errorf("the ring spans %v, want %v", got, (HistorySize-1)*HistoryInterval)
	}
	last := all[len(all)-1].Time
	if got := h.Since(last.Add(-2 * HistoryInterval)); len(got) != 2 || !got[1].Time.Equal(last) {
		t.Errorf("Since(last-2 intervals) = %v, want the last 2 samples", got)
	}
	if got := h.Since(last); len(got) != 0 {
		t.Errorf("Since(last) = %v, want none", got)
	}

	small := NewHistory(0)
	small.Add(Sample{Time: t0})
	small.Add(Sample{Time: t0.Add(time.Second)})
	if got := small.Since(time.Time{}); len(got) != 1 || !got[0].Time.Equal(t0.Add(time.Second)) {
		t.Errorf("a ring of 1 keeps %v", got)
	}
}

// TestF37_Sampler: the sampler records the counters and gauges at start
// and at each tick, with the tick's time; counters are totals since start.
func TestF37_Sampler(t *testing.T) {
	open, active, regs := 0, 0, 2
	m := New(Sources{
		Registrations: func() int { return regs },
		ActiveCalls:   func() int { return active },
		OpenRequests:  func() int { return open },
	})
	ctx, cancel := context.WithCancel(context.Background())
	ticks := make(chan time.Time)
	done := make(chan struct{})
	go func() { m.RunSampler(ctx, t0, ticks); close(done) }()
	waitSamples := func(n int) []Sample {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			got := m.History().Since(time.Time{})
			if len(got) >= n {
				return got
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d samples within 5 s, want %d", len(got), n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitSamples(1)

	// Between start and the first tick: two calls, one busy, a
	// notification (the alert with its screen), a failure (t3), a
	// completed request and a key press the engine found inactive.
	m.CallResult("answered")
	m.CallResult("busy")
	m.Action(engine.Alert{DN: "1001", About: "1002"})
	m.Action(engine.ShowScreen{DN: "1001", Screen: screen.Screen{Kind: screen.Available, DN: "1002"}})
	m.Action(engine.Delete{ID: 1, Reason: engine.EndT3})
	m.Action(engine.Delete{ID: 2, Reason: engine.EndCompleted}) // not a failure
	m.Action(engine.ShowScreen{DN: "1001", Screen: screen.Screen{Kind: screen.KeyNotActive}})
	m.Action(engine.Pressed{DN: "1001", Key: engine.KeyCallBack, Result: engine.KeyInactive})
	open, active, regs = 3, 1, 4
	ticks <- t0.Add(HistoryInterval)
	got := waitSamples(2)
	want := []Sample{
		{Time: t0, Registrations: 2},
		{Time: t0.Add(HistoryInterval), Calls: 2, ActiveCalls: 1, OpenRequests: 3, Notifications: 1, Failures: 2, Registrations: 4},
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("sample %d = %+v\nwant %+v", i, got[i], want[i])
		}
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the sampler did not stop with its context")
	}
}

// TestF37_Names: every registered metric is named, also a label vector
// nobody counted yet.
func TestF37_Names(t *testing.T) {
	m := New(Sources{OpenRequests: func() int { return 0 }})
	names := m.Names()
	for _, want := range []string{"callbackd_calls_total", "callbackd_auth_throttled_total", "callbackd_callback_requests_open", "go_goroutines", "process_resident_memory_bytes"} {
		if _, ok := names[want]; !ok {
			t.Errorf("Names() lacks %s", want)
		}
	}
	if got := names["callbackd_auth_failures_total"]; !slices.Equal(got, []string{"kind", "reason"}) {
		t.Errorf("callbackd_auth_failures_total has labels %v, want kind, reason", got)
	}
	if _, ok := names["callbackd_registrations"]; ok {
		t.Error("Names() lists callbackd_registrations, whose source was not given")
	}
}
