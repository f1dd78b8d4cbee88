package main

import "testing"

// The governor: all Ps at start, one after 5 s of little CPU on average,
// all again once one P is not enough over three windows; a lone busy
// window (a collection, a metrics scrape) moves nothing.
func TestProcsGovernor(t *testing.T) {
	steps := []struct {
		busy    float64 // CPU used per window, in cores
		windows int     // for this many windows
		want    int     // Ps after the last of them
	}{
		{0.8, 1, 2},                    // the start: busy, all Ps
		{0.1, procsDownWindows - 2, 2}, // quiet, one window short of 5 s
		{0.1, 1, 1},                    // 5 s: one P
		{0.3, 100, 1},                  // moderate load: one P stays
		{0.8, 1, 1},                    // a lone busy window
		{0.3, 2, 1},                    // ... averaged away
		{0.55, procsUpWindows - 1, 1},  // busy: not yet three windows
		{0.55, 1, 2},                   // three: all Ps at once
		{0.45, procsDownWindows, 2},    // on all Ps, over the low mark: they stay
		{0.3, 16, 2},                   // under it: the 5 s mean not yet
		{0.3, 1, 1},                    // 17 x 0.3 + 33 x 0.45: under, one P
		{0.45, 200, 1},                 // on one P, under the high mark: it stays
	}
	g := &procsGovernor{max: 2, cur: 2}
	for i, s := range steps {
		var got int
		for range s.windows {
			got = g.next(s.busy)
		}
		if got != s.want {
			t.Fatalf("step %d (busy %.2f x%d): %d Ps, want %d", i, s.busy, s.windows, got, s.want)
		}
	}
}
