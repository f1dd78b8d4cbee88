// Package events carries what happens in the server to those who watch it
// live: the API's server-sent events (phone consoles, the admin page). It is
// a fan-out hub: publishers never block (a watcher too slow to keep up loses
// events and is told so), and alarms, the recent warnings and errors of the
// log, are kept for the admin page (F37).
package events

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Event is one thing that happened. Type names it ("screen", "line",
// "callback", "params", "registration", "alarm"); DN is the line it is about,
// if any; Data is the payload, owned by the hub once published.
type Event struct {
	Type string
	DN   string
	Data any
}

// Hub fans events out to watchers. The zero value is not usable; use NewHub.
type Hub struct {
	mu       sync.Mutex
	watchers map[*Watcher]struct{}
}

// NewHub returns an empty hub.
func NewHub() *Hub { return &Hub{watchers: map[*Watcher]struct{}{}} }

// Watcher receives events on C until Close. Lost counts events dropped
// because C was full.
type Watcher struct {
	C      chan Event
	filter func(Event) bool
	hub    *Hub
	mu     sync.Mutex
	lost   int
}

// Watch returns a watcher of the events filter accepts (nil: all).
func (h *Hub) Watch(filter func(Event) bool) *Watcher {
	w := &Watcher{C: make(chan Event, 256), filter: filter, hub: h}
	h.mu.Lock()
	h.watchers[w] = struct{}{}
	h.mu.Unlock()
	return w
}

// Close stops the watcher's events.
func (w *Watcher) Close() {
	w.hub.mu.Lock()
	delete(w.hub.watchers, w)
	w.hub.mu.Unlock()
}

// Lost returns and resets the number of events dropped since the last call.
func (w *Watcher) Lost() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := w.lost
	w.lost = 0
	return n
}

// Publish hands e to every watcher that wants it, without blocking.
func (h *Hub) Publish(e Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for w := range h.watchers {
		if w.filter != nil && !w.filter(e) {
			continue
		}
		select {
		case w.C <- e:
		default:
			w.mu.Lock()
			w.lost++
			w.mu.Unlock()
		}
	}
}

// Alarm is a warning or error the server logged.
type Alarm struct {
	Time    time.Time         `json:"time"`
	Level   string            `json:"level"`
	Message string            `json:"message"`
	Attrs   map[string]string `json:"attrs,omitempty"`
}

// Alarms is a slog.Handler that passes every record on to next and keeps
// the last records at warning level or above (the admin page's "recent
// alarms"), publishing each as an "alarm" event.
type Alarms struct {
	next  slog.Handler
	state *alarmState
	attrs []slog.Attr
}

type alarmState struct {
	mu   sync.Mutex
	ring []Alarm
	keep int
	hub  *Hub
}

// NewAlarms wraps next, keeping the last keep alarms and publishing them on
// hub (may be nil).
func NewAlarms(next slog.Handler, keep int, hub *Hub) *Alarms {
	return &Alarms{next: next, state: &alarmState{keep: keep, hub: hub}}
}

func (a *Alarms) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn || a.next.Enabled(ctx, l)
}

func (a *Alarms) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		al := Alarm{Time: r.Time, Level: r.Level.String(), Message: r.Message, Attrs: map[string]string{}}
		for _, at := range a.attrs {
			al.Attrs[at.Key] = at.Value.String()
		}
		r.Attrs(func(at slog.Attr) bool {
			al.Attrs[at.Key] = at.Value.String()
			return true
		})
		s := a.state
		s.mu.Lock()
		s.ring = append(s.ring, al)
		if len(s.ring) > s.keep {
			s.ring = s.ring[len(s.ring)-s.keep:]
		}
		hub := s.hub
		s.mu.Unlock()
		if hub != nil {
			hub.Publish(Event{Type: "alarm", Data: al})
		}
	}
	if !a.next.Enabled(ctx, r.Level) {
		return nil
	}
	return a.next.Handle(ctx, r)
}

func (a *Alarms) WithAttrs(as []slog.Attr) slog.Handler {
	return &Alarms{next: a.next.WithAttrs(as), state: a.state, attrs: append(append([]slog.Attr(nil), a.attrs...), as...)}
}

func (a *Alarms) WithGroup(g string) slog.Handler {
	return &Alarms{next: a.next.WithGroup(g), state: a.state, attrs: a.attrs}
}

// SetHub makes the alarms published on hub from now on.
func (a *Alarms) SetHub(hub *Hub) {
	a.state.mu.Lock()
	a.state.hub = hub
	a.state.mu.Unlock()
}

// Recent returns the kept alarms, oldest first.
func (a *Alarms) Recent() []Alarm {
	a.state.mu.Lock()
	defer a.state.mu.Unlock()
	return append([]Alarm(nil), a.state.ring...)
}
