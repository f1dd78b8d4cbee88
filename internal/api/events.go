package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/callbackd/callbackd/internal/events"
	"github.com/callbackd/callbackd/internal/linestate"
	"github.com/callbackd/callbackd/internal/screen"
)

// heartbeat keeps idle event streams open through proxies and lets a
// client notice a dead server.
const heartbeat = 15 * time.Second

type lineEvent struct {
	DN      string `json:"dn"`
	State   string `json:"state"`
	Devices int    `json:"devices"`
	Calls   int    `json:"calls"`
}

// events streams live events as server-sent events (HTML Living Standard,
// "Server-sent events"): `event: TYPE` and one line of JSON data. With
// ?line=DN only that line's screen, line and registration events come, and
// the stream starts with its current screen and state (the phone console).
//
// B7: all events need the admin token, one line's the admin or that line;
// the open streams are capped in total and per source address (503 with
// Retry-After over a cap).
func (a *API) events(w http.ResponseWriter, r *http.Request) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		fail(w, http.StatusInternalServerError, "internal", "streaming not supported", "")
		return
	}
	dn := r.URL.Query().Get("line")
	u, err := a.authenticate(r)
	if err != nil {
		writeError(w, err)
		return
	}
	if !u.admin && (dn == "" || u.dn != dn) {
		what := "all events need the admin token"
		if dn != "" {
			what = "these credentials are line " + u.dn + "'s, not line " + dn + "'s"
		}
		fail(w, http.StatusForbidden, "forbidden", what, "")
		return
	}
	var line *lineEvent
	if dn != "" {
		l, err := a.lookupLine(dn)
		if err != nil {
			fail(w, http.StatusNotFound, "not_found", "no line "+strconv.Quote(dn), "line")
			return
		}
		j := a.line(l)
		line = &lineEvent{DN: dn, State: j.State, Devices: j.Devices, Calls: j.Calls}
	}
	if !a.streams.acquire(r.RemoteAddr) {
		e := newError(http.StatusServiceUnavailable, "too_many_streams",
			fmt.Sprintf("too many open event streams (at most %d, %d per address): try again later", a.streams.max, a.streams.per), "")
		// Close the connection: a refused client holds nothing.
		e.header = http.Header{"Retry-After": {"5"}, "Connection": {"close"}}
		writeError(w, e)
		return
	}
	defer a.streams.release(r.RemoteAddr)
	watch := a.s.Watch(func(e events.Event) bool {
		if dn == "" {
			return true
		}
		return e.DN == dn && (e.Type == "screen" || e.Type == "line" || e.Type == "registration")
	})
	defer watch.Close()

	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	send := func(typ string, data any) bool {
		b, err := json.Marshal(data)
		if err != nil {
			return true
		}
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", typ, b); err != nil {
			return false
		}
		flusher.Flush()
		return true
	}
	fmt.Fprint(w, "retry: 1000\n\n")
	if line != nil {
		l, _ := a.s.Line(dn)
		sc, _ := a.s.Screen(dn)
		send("screen", a.screenOf(l, sc))
		send("line", line)
	} else {
		flusher.Flush()
	}
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
			if _, err := fmt.Fprint(w, ": heartbeat\n\n"); err != nil {
				return
			}
			flusher.Flush()
		case e := <-watch.C:
			if n := watch.Lost(); n > 0 && !send("lost", map[string]int{"events": n}) {
				return
			}
			if !a.sendEvent(send, e) {
				return
			}
		}
	}
}

// sendEvent renders one hub event as the API shows it.
func (a *API) sendEvent(send func(string, any) bool, e events.Event) bool {
	switch d := e.Data.(type) {
	case screen.Screen:
		l, ok := a.s.Line(e.DN)
		if !ok {
			return true
		}
		return send("screen", a.screenOf(l, d))
	case linestate.Snapshot:
		return send("line", lineEvent{DN: d.DN, State: string(d.State), Devices: d.Devices, Calls: d.Calls})
	case events.RequestEvent:
		out := map[string]any{"op": d.Op}
		if d.Op == "end" {
			out["id"], out["reason"] = d.ID, d.Reason
		} else {
			out["request"] = requestOf(d.Request)
		}
		return send("callback", out)
	case events.Alarm:
		return send("alarm", d)
	case nil:
		return send(e.Type, map[string]string{"dn": e.DN})
	default:
		return send(e.Type, d)
	}
}
