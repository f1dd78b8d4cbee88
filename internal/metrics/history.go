package metrics

import (
	"context"
	"sync"
	"time"
)

// The admin page's charts (issue 18) show the last hour when opened, so
// the server keeps a short history of its own counters: a sample every
// HistoryInterval in a ring of HistorySize. The sampler takes its times
// from a channel of ticks, never from a clock of its own, so tests drive
// it with the times they choose.

const (
	// HistoryInterval is the time between two samples.
	HistoryInterval = 10 * time.Second
	// HistorySize is how many samples are kept: one hour at
	// HistoryInterval.
	HistorySize = 360
)

// Sample is the server's counters and gauges at one time. Calls,
// Notifications and Failures are counters since the start (their
// increase between samples is what happened in between); the others are
// gauges read at Time.
type Sample struct {
	Time          time.Time `json:"time"`
	Calls         int64     `json:"calls"`         // callbackd_calls_total, all outcomes
	ActiveCalls   int       `json:"active_calls"`  // callbackd_calls_active
	OpenRequests  int       `json:"open_requests"` // callbackd_callback_requests_open
	Notifications int64     `json:"notifications"` // callbackd_callback_notifications_total
	Failures      int64     `json:"failures"`      // callbackd_callback_failures_total, all reasons
	Registrations int       `json:"registrations"` // callbackd_registrations
}

// History is a bounded ring of samples, oldest first. Safe for concurrent
// use.
type History struct {
	mu   sync.Mutex
	ring []Sample // len <= size; next is where the next sample goes once full
	next int
	size int
}

// NewHistory keeps the last size samples (size < 1: 1).
func NewHistory(size int) *History {
	return &History{size: max(size, 1)}
}

// Add keeps s, dropping the oldest sample when the ring is full. A sample
// not later than the last one is dropped: the series stays ordered by
// time whatever the ticks do.
func (h *History) Add(s Sample) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if n := len(h.ring); n > 0 {
		// The newest: before the ring is full next is 0, so this is n-1.
		last := h.ring[(h.next+n-1)%n]
		if !s.Time.After(last.Time) {
			return
		}
	}
	if len(h.ring) < h.size {
		h.ring = append(h.ring, s)
		return
	}
	h.ring[h.next] = s
	h.next = (h.next + 1) % h.size
}

// Since returns the samples later than t, oldest first (the zero time:
// all of them).
func (h *History) Since(t time.Time) []Sample {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]Sample, 0, len(h.ring))
	for i := range h.ring {
		s := h.ring[(h.next+i)%len(h.ring)]
		if s.Time.After(t) {
			out = append(out, s)
		}
	}
	return out
}

// Size is how many samples the ring keeps.
func (h *History) Size() int { return h.size }

// Sample takes one sample now; at is its time.
func (m *Metrics) Sample(at time.Time) Sample {
	s := Sample{
		Time:          at,
		Calls:         m.callsTotal.Load(),
		Notifications: m.notified.Load(),
		Failures:      m.failuresTotal.Load(),
	}
	read := func(f func() int) int {
		if f == nil {
			return 0
		}
		return f()
	}
	s.ActiveCalls = read(m.src.ActiveCalls)
	s.OpenRequests = read(m.src.OpenRequests)
	s.Registrations = read(m.src.Registrations)
	return s
}

// History is the ring the sampler fills.
func (m *Metrics) History() *History { return m.history }

// RunSampler records a sample at start, then one at each tick, until ctx
// ends. The server passes time.Now() and a time.Ticker's channel with
// HistoryInterval; a test passes the times it wants.
func (m *Metrics) RunSampler(ctx context.Context, start time.Time, ticks <-chan time.Time) {
	m.history.Add(m.Sample(start))
	for {
		select {
		case <-ctx.Done():
			return
		case t := <-ticks:
			m.history.Add(m.Sample(t))
		}
	}
}
