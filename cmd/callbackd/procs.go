package main

import (
	"context"
	"log/slog"
	"os"
	"runtime"
	"syscall"
	"time"
)

// Go runs goroutines on GOMAXPROCS threads at once (its default: the CPUs
// the process may use). sipgo starts a goroutine for every message it
// reads, and with a second P idle each one wakes a sleeping thread (a
// futex wake, a context switch, the thread spinning for more, going back
// to sleep). At moderate load that is a fifth of the server's CPU: at 1000
// calls/s on 2 cores, 0.35 ms of CPU per call with two Ps, 0.27 ms with
// one, the same calls, none failed, INVITE -> 200 unchanged (bench/load).
// At 2000 calls/s and beyond the second P earns its keep (with one, p99
// 4 -> 8-20 ms). So the server runs on one P while it uses little CPU and
// on all of them as soon as it uses more: procsGovernor decides,
// governProcs measures and applies. GOMAXPROCS in the environment (the
// operator's choice) turns it off.

const (
	procsWindow = 100 * time.Millisecond // one look at the CPU used
	// procsUp: CPU used (in cores, averaged over procsUpWindows) at which
	// one P is not enough. Under it a single P keeps INVITE -> 200 as with
	// all of them. Averaged, so that a lone busy window (a collection, a
	// metrics scrape) does not count as load.
	procsUp        = 0.5
	procsUpWindows = 3
	// procsDown: CPU used (in cores, averaged over procsDownWindows) under
	// which one P is enough again. Below procsUp by the second P's own
	// overhead and a margin, so the count does not flap at a steady load.
	procsDown        = 0.4
	procsDownWindows = 50 // 5 s
)

// procsGovernor decides how many Ps to run: one while quiet, max once
// busy. It is pure (no clock, no runtime): governProcs feeds it.
type procsGovernor struct {
	max    int // the runtime's default at start: the CPUs this process may use
	cur    int
	recent [procsDownWindows]float64 // CPU used per window, a ring
	n      int                       // windows seen since the last change
}

// next takes the CPU used over the last window, in cores (1.0: one core
// all the window), and returns the Ps for the next window.
func (g *procsGovernor) next(busy float64) int {
	g.recent[g.n%len(g.recent)] = busy
	g.n++
	switch {
	case g.cur == 1 && g.n >= procsUpWindows && g.mean(procsUpWindows) >= procsUp:
		// Straight to all of them: load that grows keeps growing, and a
		// single P saturated is already delay for every message.
		g.cur, g.n = g.max, 0
	case g.cur > 1 && g.n >= procsDownWindows && g.mean(procsDownWindows) < procsDown:
		g.cur, g.n = 1, 0
	}
	return g.cur
}

// mean is the CPU used over the last k windows.
func (g *procsGovernor) mean(k int) float64 {
	var sum float64
	for i := 1; i <= k; i++ {
		sum += g.recent[(g.n-i)%len(g.recent)]
	}
	return sum / float64(k)
}

// governProcs runs the governor until ctx ends, starting on all Ps (the
// start is busy); it returns at once when the operator set GOMAXPROCS or
// there is one CPU only.
func governProcs(ctx context.Context, log *slog.Logger) {
	if os.Getenv("GOMAXPROCS") != "" {
		return
	}
	g := &procsGovernor{max: runtime.GOMAXPROCS(0)}
	if g.max < 2 {
		return
	}
	g.cur = g.max
	t := time.NewTicker(procsWindow)
	defer t.Stop()
	last, lastCPU := time.Now(), processCPU()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			cpu := processCPU()
			busy := float64(cpu-lastCPU) / float64(now.Sub(last))
			last, lastCPU = now, cpu
			if was := g.cur; g.next(busy) != was {
				runtime.GOMAXPROCS(g.cur)
				log.Debug("Go threads running at once", "gomaxprocs", g.cur, "cpu_cores_used", busy)
			}
		}
	}
}

// processCPU is the CPU time this process has used (user and system, all
// threads).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
