package throttle

import (
	"sync"
	"time"
)

// Every allows one event per key per interval: one log line per source,
// not one per packet, whatever an attacker sends.
type Every struct {
	mu       sync.Mutex
	interval time.Duration
	last     map[string]time.Time
	dropped  map[string]int
}

// NewEvery allows one event per key per d.
func NewEvery(d time.Duration) *Every {
	return &Every{interval: d, last: map[string]time.Time{}, dropped: map[string]int{}}
}

// OK reports whether key may be logged now and how many events of key were
// not logged since the last time.
func (e *Every) OK(key string) (bool, int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := time.Now()
	if t, seen := e.last[key]; seen && now.Sub(t) < e.interval {
		e.dropped[key]++
		return false, 0
	}
	if len(e.last) >= 4096 { // many sources: forget those quiet for an interval
		for k, t := range e.last {
			if now.Sub(t) >= e.interval {
				delete(e.last, k)
				delete(e.dropped, k)
			}
		}
		if len(e.last) >= 4096 {
			key = "*" // still too many: one line for all of them
			if t, seen := e.last[key]; seen && now.Sub(t) < e.interval {
				return false, 0
			}
		}
	}
	n := e.dropped[key]
	delete(e.dropped, key)
	e.last[key] = now
	return true, n
}
