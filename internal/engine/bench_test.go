package engine

import (
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"
)

// BenchmarkStep: events per second through Step, in full call back cycles
// (failed call, CallBack, B free -> notify, Dial, B busy again).
func BenchmarkStep(b *testing.B) {
	const callers, callees = 1000, 10
	e := New(DefaultParams())
	var as, bs []string
	for i := range callers {
		as = append(as, fmt.Sprintf("1%04d", i))
	}
	for i := range callees {
		bs = append(bs, fmt.Sprintf("2%04d", i))
	}
	for _, dn := range append(as, bs...) {
		e.Step(t0, LineConfig{Line{DN: dn}})
		e.Step(t0, LineStatus{DN: dn, Registered: true})
	}
	busy := func(dn string) LineStatus { return LineStatus{DN: dn, Registered: true, OffHook: true, Full: true} }
	for _, dn := range bs {
		e.Step(t0, busy(dn))
	}
	now := t0
	i, events := 0, 0
	for b.Loop() {
		a, callee := as[i%callers], bs[i%callees]
		i++
		now = now.Add(time.Millisecond)
		e.Step(now, CallUpdate{From: a, To: callee, Outcome: Busy})
		e.Step(now, KeyPress{DN: a, Key: KeyCallBack, State: RingOut})
		e.Step(now, LineStatus{DN: callee, Registered: true})
		e.Step(now, KeyPress{DN: a, Key: KeyDial})
		e.Step(now, busy(callee))
		events += 5
	}
	if len(e.Requests()) != 0 {
		b.Fatalf("%d requests left: the cycle did not complete", len(e.Requests()))
	}
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}

// directory returns an engine that knows n callers and n/100 callees, and
// the open requests of every caller on a callee (CCBS, B busy).
func directory(n int) (*Engine, []Request) {
	e := New(DefaultParams())
	callees := max(1, n/100)
	reqs := make([]Request, 0, n)
	for i := range callees {
		dn := fmt.Sprintf("2%06d", i)
		e.Step(t0, LineConfig{Line{DN: dn}})
		e.Step(t0, LineStatus{DN: dn, Registered: true, OffHook: true, Full: true})
	}
	for i := range n {
		a := fmt.Sprintf("1%06d", i)
		e.Step(t0, LineConfig{Line{DN: a}})
		e.Step(t0, LineStatus{DN: a, Registered: true})
		reqs = append(reqs, Request{ID: int64(i + 1), A: a, B: fmt.Sprintf("2%06d", i%callees), Kind: CCBS,
			State: Active, Created: t0, Expires: t0.Add(time.Hour), Seen: true})
	}
	return e, reqs
}

// BenchmarkOpenRequests100k reports the engine's memory per open request:
// the record, its indexes, its watch.
func BenchmarkOpenRequests100k(b *testing.B) {
	const n = 100_000
	var perReq float64
	for b.Loop() {
		e, reqs := directory(n)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		held := slices.Clone(reqs) // the records: the engine keeps the slice it is handed
		e.Restore(t0, held)        // the actions are dropped: only the engine's own memory counts
		runtime.GC()
		runtime.ReadMemStats(&after)
		if got := len(e.reqs); got != n {
			b.Fatalf("%d requests", got)
		}
		perReq = float64(after.HeapAlloc-before.HeapAlloc) / n
		runtime.KeepAlive(e)
		runtime.KeepAlive(held)
		runtime.KeepAlive(reqs) // allocated before the count: not freed within it
	}
	b.ReportMetric(perReq, "B/request")
}

// BenchmarkRestore100k: how long a restart takes to restore 100k stored
// requests (watches and timers included).
func BenchmarkRestore100k(b *testing.B) {
	const n = 100_000
	for b.Loop() {
		b.StopTimer()
		e, reqs := directory(n)
		b.StartTimer()
		acts := e.Restore(t0, reqs)
		if len(acts) < 2*n {
			b.Fatalf("%d actions", len(acts))
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "requests/s")
}
