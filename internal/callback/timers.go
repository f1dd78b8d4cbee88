package callback

import (
	"time"

	"github.com/callbackd/callbackd/internal/engine"
)

// timers are the engine's armed timers (StartTimer, CancelTimer), owned
// by the loop. One runtime timer is armed, for the earliest deadline,
// rather than one per engine timer: with 100k open requests (each with
// its lifetime timer) a runtime timer each cost ~280 B and a closure, and
// arming them all was a good part of a restart (issue 14).
//
// The deadlines are kept in a map (the truth) and a min-heap (the order).
// A cancelled or re-armed timer leaves its old heap entry behind; an entry
// is live only while the map still holds its deadline and sequence, and
// the heap is rebuilt when stale entries outnumber live ones.
type timers struct {
	armed map[engine.TimerID]deadline
	order deadlines
	seq   uint64      // orders entries of the same deadline: first armed, first fired
	wake  *time.Timer // fires at order's earliest deadline; nil until the first arm
	at    int64       // wake's deadline (Unix ns); 0 when not set
	fire  func()      // wake's function: asks the loop to fire what is due
}

type deadline struct {
	at  int64 // Unix ns: wall clock, as the engine's deadlines (stored ones have no monotonic reading)
	seq uint64
}

type entry struct {
	id engine.TimerID
	deadline
}

func newTimers(fire func()) *timers {
	return &timers{armed: map[engine.TimerID]deadline{}, fire: fire}
}

// grow makes room for n timers (a restore arms one per request at least).
func (t *timers) grow(n int) {
	if len(t.armed) == 0 && n > 0 {
		t.armed = make(map[engine.TimerID]deadline, n)
	}
	t.order = append(make(deadlines, 0, len(t.order)+n), t.order...)
}

// len is the number of timers armed.
func (t *timers) len() int { return len(t.armed) }

// start arms (or re-arms: a new StartTimer with the same ID replaces the
// old one) timer id for at.
func (t *timers) start(id engine.TimerID, at time.Time) {
	t.seq++
	d := deadline{at.UnixNano(), t.seq}
	t.armed[id] = d
	t.order.push(entry{id, d})
	t.compact()
	t.arm()
}

// cancel disarms timer id, if armed.
func (t *timers) cancel(id engine.TimerID) {
	delete(t.armed, id)
	t.compact()
}

// fired is the wake-up having fired: it is set again by the next arm.
func (t *timers) fired() { t.at = 0 }

// next removes and returns the earliest timer if its deadline is not
// after now (for the same deadline, the one armed first). Taken one at a
// time: firing one may cancel or re-arm another that was due too.
func (t *timers) next(now time.Time) (engine.TimerID, bool) {
	t.dropStale()
	if len(t.order) == 0 || t.order[0].at > now.UnixNano() {
		return engine.TimerID{}, false
	}
	e := t.order[0]
	t.order.pop()
	delete(t.armed, e.id)
	return e.id, true
}

// dropStale pops the entries of cancelled or re-armed timers off the top.
func (t *timers) dropStale() {
	for len(t.order) > 0 {
		e := t.order[0]
		if d, ok := t.armed[e.id]; ok && d == e.deadline {
			return
		}
		t.order.pop()
	}
}

// arm sets the wake-up for the earliest live deadline, unless it is set
// for that already or earlier (an early wake-up finds nothing due and
// re-arms).
func (t *timers) arm() {
	t.dropStale()
	if len(t.order) == 0 {
		return
	}
	next := t.order[0].at
	if t.at != 0 && next >= t.at {
		return
	}
	t.at = next
	if t.wake == nil {
		t.wake = time.AfterFunc(time.Until(time.Unix(0, next)), t.fire)
		return
	}
	t.wake.Reset(time.Until(time.Unix(0, next)))
}

// compact rebuilds the heap from the map when stale entries (cancelled
// or re-armed timers) are more than the live ones.
func (t *timers) compact() {
	if len(t.order) <= 2*len(t.armed)+64 {
		return
	}
	t.order = t.order[:0]
	for id, d := range t.armed {
		t.order = append(t.order, entry{id, d})
	}
	for i := len(t.order)/2 - 1; i >= 0; i-- {
		t.order.down(i)
	}
}

// stop disarms the wake-up (the loop ends).
func (t *timers) stop() {
	if t.wake != nil {
		t.wake.Stop()
	}
}

// deadlines is a binary min-heap of entries by deadline, then sequence
// (written out rather than container/heap, whose Push boxes every entry).
type deadlines []entry

func (h deadlines) less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].seq < h[j].seq
}

func (h *deadlines) push(e entry) {
	*h = append(*h, e)
	s := *h
	for i := len(s) - 1; i > 0; {
		p := (i - 1) / 2
		if !s.less(i, p) {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
}

// pop removes the earliest entry.
func (h *deadlines) pop() {
	s := *h
	n := len(s) - 1
	s[0] = s[n]
	*h = s[:n]
	h.down(0)
}

func (h deadlines) down(i int) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && h.less(r, l) {
			m = r
		}
		if !h.less(m, i) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}
