package sipmsg

import (
	"testing"
	"time"
)

// TestB7_RecentBounded: entries go after their time, and past max the
// oldest go first, so what finished transactions leave behind is bounded.
func TestB7_RecentBounded(t *testing.T) {
	r := NewRecent(3)
	t0 := time.Unix(1000, 0)
	for i, k := range []string{"a", "b", "c", "d"} {
		r.Put(k, []byte(k), t0.Add(time.Duration(i)*time.Second), 10*time.Second)
	}
	if r.Len() != 3 || r.Get("a", t0) != nil || string(r.Get("d", t0)) != "d" {
		t.Errorf("past max: len %d, a %q, d %q; want 3, the oldest (a) gone", r.Len(), r.Get("a", t0), r.Get("d", t0))
	}
	if got := r.Get("b", t0.Add(11*time.Second)); got != nil {
		t.Errorf("b after its time: %q, want nothing", got)
	}
	r.Put("e", []byte("e"), t0.Add(12500*time.Millisecond), 10*time.Second) // b and c are due
	if r.Len() != 2 {
		t.Errorf("after b and c expired: len %d, want 2 (d, e)", r.Len())
	}
	for i := range 5000 { // the queue's front is reused, not grown for ever
		r.Put("k", nil, t0.Add(time.Duration(13+i)*time.Second), time.Second)
	}
	if len(r.order) > 2100 || r.Len() != 1 {
		t.Errorf("after 5000 expired puts: queue %d, len %d; want a bounded queue, 1 entry", len(r.order), r.Len())
	}
}
