package web

// A fake of the HTTP API (/api/v1, package api) as far as the pages use it,
// with canned data: two lines, 1003 (de) and 1002 (en). 1003 presses
// CallBack and gets the activation screen about 1002; free() makes 1002
// available. It lets the pages (and test/browser/console.mjs) be checked
// without the SIP server. The real contract is package api's; this follows
// the same JSON.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

type fakeScreen struct {
	DN     string            `json:"dn"`
	Locale string            `json:"locale"`
	Kind   string            `json:"kind"`
	Text   string            `json:"text"`
	Keys   []string          `json:"keys"`
	Labels map[string]string `json:"labels"`
	State  string            `json:"state"`
}

type fakeLine struct {
	dn, password, locale, state string
	screen                      fakeScreen
}

type fakeEvent struct {
	name string
	line string // "" for events of no line
	data any
}

type fakeAPI struct {
	token string
	mu    sync.Mutex
	lines map[string]*fakeLine
	subs  map[chan fakeEvent]bool
	cb    []map[string]any // open call backs
	param map[string]any
	reqs  []string // "METHOD path" of every request, for tests
}

var fakeLabels = map[string]map[string]string{
	"en": {"CallBack": "CallBack", "Dial": "Dial", "Cancel": "Cancel", "Exit": "Exit", "OK": "OK"},
	"de": {"CallBack": "Rückruf", "Dial": "Wählen", "Cancel": "Abbrechen", "Exit": "Beenden", "OK": "OK"},
}

var fakeUI = map[string]map[string]string{
	"en": {"console.title": "Phone {dn}", "console.noScreen": "No Call Back screen", "console.connected": "connected",
		"console.disconnected": "disconnected", "console.line": "Line", "console.locale": "Language", "console.state": "State",
		"console.state.idle": "idle", "console.state.ringing": "ringing", "console.state.busy": "busy",
		"console.state.unregistered": "not registered", "console.error.unauthorized": "Wrong or missing credentials",
		"console.error.failed": "Failed: {error}"},
	"de": {"console.title": "Telefon {dn}", "console.noScreen": "Keine Rückruf-Anzeige", "console.connected": "verbunden",
		"console.disconnected": "getrennt", "console.line": "Anschluss", "console.locale": "Sprache", "console.state": "Zustand",
		"console.state.idle": "frei", "console.state.ringing": "klingelt", "console.state.busy": "besetzt",
		"console.state.unregistered": "nicht angemeldet", "console.error.unauthorized": "Anmeldung fehlt oder ist falsch",
		"console.error.failed": "Fehlgeschlagen: {error}"},
}

// The German screens (internal/screen's de catalogue at the time of writing).
const (
	fakeActivatedDE = "Rückruf ist für 1002 aktiviert\nAbbrechen drücken zum Deaktivieren\nBeenden drücken, um diese Anzeige zu verlassen"
	fakeAvailableDE = "1002 ist jetzt erreichbar\nZeit %s\nWählen drücken zum Anrufen\nAbbrechen drücken zum Deaktivieren\nBeenden drücken, um diese Anzeige zu verlassen"
)

func newFakeAPI(token string) *fakeAPI {
	f := &fakeAPI{token: token, lines: map[string]*fakeLine{}, subs: map[chan fakeEvent]bool{},
		param: map[string]any{"enabled": true, "ccnr": true, "policy": "notify-all", "t1": "20s", "t3": "20s", "alert_ring": "4s"}}
	for _, l := range []struct{ dn, locale, state string }{{"1002", "en", "busy"}, {"1003", "de", "idle"}} {
		f.lines[l.dn] = &fakeLine{dn: l.dn, password: "demo" + l.dn, locale: l.locale, state: l.state}
		f.setScreen(f.lines[l.dn], "None", "", nil)
	}
	return f
}

// setScreen changes a line's screen and tells the subscribers (mu held or
// not yet shared).
func (f *fakeAPI) setScreen(l *fakeLine, kind, text string, keys []string) {
	if keys == nil {
		keys = []string{}
	}
	l.screen = fakeScreen{DN: l.dn, Locale: l.locale, Kind: kind, Text: text, Keys: keys, Labels: fakeLabels[l.locale], State: l.state}
	if l.screen.Labels == nil {
		l.screen.Labels = fakeLabels["en"]
	}
	f.publish(fakeEvent{"screen", l.dn, l.screen})
}

func (f *fakeAPI) publish(ev fakeEvent) {
	for ch := range f.subs {
		select {
		case ch <- ev:
		default: // a slow reader loses events; the pages poll too
		}
	}
}

// free: 1002 hangs up; 1003, with a call back on it, is told.
func (f *fakeAPI) free() {
	f.mu.Lock()
	defer f.mu.Unlock()
	b := f.lines["1002"]
	b.state = "idle"
	f.publish(fakeEvent{"line", "1002", map[string]any{"dn": "1002", "state": "idle", "devices": 1, "calls": 0}})
	a := f.lines["1003"]
	if len(f.cb) == 1 {
		f.cb[0]["state"] = "notified"
		f.setScreen(a, "Available", fmt.Sprintf(fakeAvailableDE, time.Now().Format("15:04 02.01.2006")), []string{"Dial", "Cancel", "Exit"})
		f.publish(fakeEvent{"callback", "", map[string]any{"op": "update", "request": f.cb[0]}})
	}
}

func (f *fakeAPI) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.reqs...)
}

func fakeError(w http.ResponseWriter, status int, code, msg, field string) {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="callbackd"`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg, "field": field}})
}

func fakeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// authorized: the admin token (Bearer, or Basic admin:TOKEN), or Basic
// with line dn's own credentials.
func (f *fakeAPI) authorized(r *http.Request, dn string) bool {
	if h := r.Header.Get("Authorization"); h == "Bearer "+f.token {
		return true
	}
	u, p, ok := r.BasicAuth()
	if !ok {
		return false
	}
	if u == "admin" && p == f.token {
		return true
	}
	l := f.lines[dn]
	return l != nil && u == dn && p == l.password
}

func (f *fakeAPI) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/lines/{dn}/screen", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		l := f.lines[r.PathValue("dn")]
		if l == nil {
			fakeError(w, 404, "not_found", "unknown line "+r.PathValue("dn"), "dn")
			return
		}
		fakeJSON(w, l.screen)
	})
	mux.HandleFunc("POST /api/v1/lines/{dn}/keys", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		dn := r.PathValue("dn")
		l := f.lines[dn]
		if l == nil {
			fakeError(w, 404, "not_found", "unknown line "+dn, "dn")
			return
		}
		if !f.authorized(r, dn) {
			fakeError(w, 401, "unauthorized", "authentication required", "")
			return
		}
		var body struct {
			Key string `json:"key"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			fakeError(w, 400, "bad_json", "malformed JSON: "+err.Error(), "")
			return
		}
		switch body.Key {
		case "CallBack":
			if dn == "1003" && len(f.cb) == 0 {
				f.cb = append(f.cb, map[string]any{"id": 1, "caller": "1003", "callee": "1002", "kind": "CCBS", "state": "active",
					"created": time.Now().UTC().Format(time.RFC3339), "expires": time.Now().Add(time.Hour).UTC().Format(time.RFC3339),
					"timers": []map[string]any{{"name": "lifetime", "at": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}}})
				f.publish(fakeEvent{"callback", "", map[string]any{"op": "open", "request": f.cb[0]}})
			}
			if len(f.cb) == 1 && f.cb[0]["state"] == "notified" {
				break // the availability screen stays (F13)
			}
			if len(f.cb) == 1 {
				f.setScreen(l, "Activated", fakeActivatedDE, []string{"Cancel", "Exit"})
			} else {
				f.setScreen(l, "NotActive", "CallBack is not active. Press Exit to quit this screen.", []string{"Exit"})
			}
		case "Exit":
			f.setScreen(l, "None", "", nil)
		case "Cancel", "Dial":
			if !containsKey(l.screen.Keys, body.Key) {
				fakeError(w, 409, "key_not_active", "Key Not Active", "key")
				return
			}
			if len(f.cb) == 1 {
				f.publish(fakeEvent{"callback", "", map[string]any{"op": "end", "reason": map[string]string{"Dial": "completed", "Cancel": "cancelled"}[body.Key], "request": f.cb[0]}})
				f.cb = nil
			}
			f.setScreen(l, "None", "", nil)
		case "OK":
			fakeError(w, 409, "key_not_active", "Key Not Active", "key")
			return
		default:
			fakeError(w, 400, "invalid", "key must be one of CallBack, Dial, Cancel, Exit, OK", "key")
			return
		}
		fakeJSON(w, l.screen)
	})
	mux.HandleFunc("GET /api/v1/ui/{locale}", func(w http.ResponseWriter, r *http.Request) {
		t, ok := fakeUI[r.PathValue("locale")]
		if !ok {
			t = fakeUI["en"]
		}
		fakeJSON(w, t)
	})
	mux.HandleFunc("GET /api/v1/events", f.events)
	mux.HandleFunc("GET /api/v1/lines", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		var out []map[string]any
		for _, dn := range []string{"1002", "1003"} {
			l := f.lines[dn]
			out = append(out, map[string]any{"dn": l.dn, "name": l.dn, "locale": l.locale, "busy_trigger": 1, "max_devices": 4, "notification": "notify",
				"kind": "phone", "members": []string{}, "forward_all": "", "forward_busy": "", "forward_no_answer": "", "dnd": false, "state": l.state, "devices": 1, "calls": 0})
		}
		fakeJSON(w, out)
	})
	mux.HandleFunc("GET /api/v1/registrations", func(w http.ResponseWriter, r *http.Request) {
		if !f.authorized(r, "") {
			fakeError(w, 401, "unauthorized", "authentication required", "")
			return
		}
		fakeJSON(w, []map[string]any{{"dn": "1002", "contact": "sip:1002@127.0.0.1:5062", "transport": "udp", "source": "127.0.0.1:5062", "expires": time.Now().Add(5 * time.Minute).UTC().Format(time.RFC3339)}})
	})
	mux.HandleFunc("GET /api/v1/callbacks", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if !f.authorized(r, "") {
			fakeError(w, 401, "unauthorized", "authentication required", "")
			return
		}
		out := append([]map[string]any{}, f.cb...)
		fakeJSON(w, out)
	})
	mux.HandleFunc("DELETE /api/v1/callbacks/{id}", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if !f.authorized(r, "") {
			fakeError(w, 401, "unauthorized", "authentication required", "")
			return
		}
		if len(f.cb) == 0 || fmt.Sprint(f.cb[0]["id"]) != r.PathValue("id") {
			fakeError(w, 404, "not_found", "no call back "+r.PathValue("id"), "id")
			return
		}
		f.publish(fakeEvent{"callback", "", map[string]any{"op": "end", "reason": "cancelled", "request": f.cb[0]}})
		f.cb = nil
		f.setScreen(f.lines["1003"], "Deactivated", "Rückruf für 1002 ist deaktiviert\nBeenden drücken, um diese Anzeige zu verlassen", []string{"Exit"})
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /api/v1/params", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		fakeJSON(w, f.param)
	})
	mux.HandleFunc("PUT /api/v1/params", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if !f.authorized(r, "") {
			fakeError(w, 401, "unauthorized", "authentication required", "")
			return
		}
		var change map[string]any
		if err := json.NewDecoder(r.Body).Decode(&change); err != nil {
			fakeError(w, 400, "bad_json", "malformed JSON: "+err.Error(), "")
			return
		}
		for k, v := range change {
			old, ok := f.param[k]
			if !ok {
				fakeError(w, 422, "unknown_field", "unknown parameter "+k, k)
				return
			}
			if fmt.Sprintf("%T", old) != fmt.Sprintf("%T", v) {
				fakeError(w, 422, "invalid", fmt.Sprintf("%s: want a %T", k, old), k)
				return
			}
			if s, ok := v.(string); ok && strings.HasPrefix(k, "t") {
				if d, err := time.ParseDuration(s); err != nil || d < time.Second || d > 10*time.Minute {
					fakeError(w, 422, "out_of_range", k+" must be a duration between 1s and 10m", k)
					return
				}
			}
		}
		for k, v := range change {
			f.param[k] = v
		}
		f.publish(fakeEvent{"params", "", f.param})
		fakeJSON(w, f.param)
	})
	mux.HandleFunc("GET /api/v1/status", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		fakeJSON(w, map[string]any{"instance": "fake-1", "active": true, "started": time.Now().Add(-time.Minute).UTC().Format(time.RFC3339),
			"lines": len(f.lines), "registrations": 1, "open_requests": len(f.cb), "notifications": 0, "active_calls": 0})
	})
	mux.HandleFunc("GET /api/v1/alarms", func(w http.ResponseWriter, r *http.Request) {
		if !f.authorized(r, "") {
			fakeError(w, 401, "unauthorized", "authentication required", "")
			return
		}
		fakeJSON(w, []map[string]any{{"time": time.Now().Add(-30 * time.Second).UTC().Format(time.RFC3339), "level": "warn", "message": "screen to 1004 not delivered"}})
	})
	mux.HandleFunc("GET /api/v1/history", func(w http.ResponseWriter, r *http.Request) {
		if !f.authorized(r, "") {
			fakeError(w, 401, "unauthorized", "authentication required", "")
			return
		}
		now := time.Now().UTC()
		var samples []map[string]any
		for i := range 3 {
			samples = append(samples, map[string]any{"time": now.Add(time.Duration(i-2) * 10 * time.Second).Format(time.RFC3339Nano),
				"calls": i, "active_calls": 0, "open_requests": len(f.cb), "notifications": 0, "failures": 0, "registrations": 1})
		}
		if r.URL.Query().Get("since") != "" {
			samples = nil
		}
		fakeJSON(w, map[string]any{"interval": "10s", "size": 360, "samples": samples})
	})
	return mux
}

func containsKey(keys []string, k string) bool {
	for _, x := range keys {
		if x == k {
			return true
		}
	}
	return false
}

// events streams server-sent events; ?line=DN: that line's screen and line
// events (the screen first), and the events of no line.
func (f *fakeAPI) events(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "no streaming", 500)
		return
	}
	line := r.URL.Query().Get("line")
	ch := make(chan fakeEvent, 64)
	f.mu.Lock()
	// As the API (B7): all events for the admin, a line's for it too.
	if !f.authorized(r, line) {
		f.mu.Unlock()
		fakeError(w, 401, "unauthorized", "authentication required", "")
		return
	}
	if line != "" {
		l := f.lines[line]
		if l == nil {
			f.mu.Unlock()
			fakeError(w, 404, "not_found", "unknown line "+line, "line")
			return
		}
		ch <- fakeEvent{"screen", line, l.screen}
	}
	f.subs[ch] = true
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.subs, ch)
		f.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(200)
	fmt.Fprint(w, "retry: 1000\n\n")
	fl.Flush()
	for {
		select {
		case <-r.Context().Done():
			return
		case ev := <-ch:
			if line != "" && ev.line != "" && ev.line != line {
				continue
			}
			b, _ := json.Marshal(ev.data)
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev.name, b)
			fl.Flush()
		}
	}
}

// logged wraps h to record each request's method and path.
func (f *fakeAPI) logged(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.reqs = append(f.reqs, r.Method+" "+r.URL.Path)
		f.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}
