package api

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/callbackd/callbackd/internal/callback"
	"github.com/callbackd/callbackd/internal/config"
	"github.com/callbackd/callbackd/internal/directory"
	"github.com/callbackd/callbackd/internal/engine"
	"github.com/callbackd/callbackd/internal/linestate"
	"github.com/callbackd/callbackd/internal/screen"
)

// ---------------------------------------------------------------------------
// Lines

// lineJSON is a line as the API shows it; the password is never shown.
type lineJSON struct {
	DN              string   `json:"dn"`
	Name            string   `json:"name"`
	Locale          string   `json:"locale"`
	BusyTrigger     int      `json:"busy_trigger"`
	MaxDevices      int      `json:"max_devices"`
	Notification    string   `json:"notification"`
	Kind            string   `json:"kind"`
	Members         []string `json:"members"` // [] unless a route point
	ForwardAll      string   `json:"forward_all"`
	ForwardBusy     string   `json:"forward_busy"`
	ForwardNoAnswer string   `json:"forward_no_answer"`
	DND             bool     `json:"dnd"`
	Profile         string   `json:"profile"`
	State           string   `json:"state"`
	Devices         int      `json:"devices"`
	Calls           int      `json:"calls"`
}

func (a *API) line(l config.Line) lineJSON {
	j := lineJSON{DN: l.DN, Name: l.Name, Locale: l.Locale, BusyTrigger: l.BusyTrigger, MaxDevices: l.MaxDevices,
		Notification: l.Notification, Kind: cmp.Or(l.Kind, config.KindPhone), Members: append([]string{}, l.Members...),
		ForwardAll: l.ForwardAll, ForwardBusy: l.ForwardBusy, ForwardNoAnswer: l.ForwardNoAnswer, DND: l.DND,
		Profile: cmp.Or(l.Profile, config.DefaultProfile),
		State:   string(linestate.Unregistered)}
	if st, ok := a.s.LineState(l.DN); ok {
		j.State, j.Devices, j.Calls = string(st.State), st.Devices, st.Calls
	}
	return j
}

func (a *API) listLines(w http.ResponseWriter, r *http.Request) {
	out := []lineJSON{}
	for _, l := range a.s.AllLines() {
		out = append(out, a.line(l))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) lookupLine(dn string) (config.Line, error) {
	l, ok := a.s.Line(dn)
	if !ok {
		return l, newError(http.StatusNotFound, "not_found", "no line "+strconv.Quote(dn), "dn")
	}
	return l, nil
}

func (a *API) getLine(w http.ResponseWriter, r *http.Request) {
	l, err := a.lookupLine(r.PathValue("dn"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, a.line(l))
}

// lineFields are the fields of a line object on write, in the order an
// unknown field's error lists them.
var lineFields = []string{"dn", "name", "password", "locale", "busy_trigger", "max_devices", "notification",
	"kind", "members", "forward_all", "forward_busy", "forward_no_answer", "dnd", "profile"}

// readLine reads a line object over base: every field is optional except
// what the rules require of the result: those of a [[line]] table
// (config.CheckLine), and that the members and forwarding targets it names
// are lines of the directory, looked up with lookup (members phone lines).
func readLine(r *http.Request, base config.Line, lookup func(dn string) (config.Line, bool), profile func(name string) (config.Profile, bool)) (config.Line, error) {
	obj, err := readObject(r)
	if err != nil {
		return base, err
	}
	l := base
	l.Kind = cmp.Or(l.Kind, config.KindPhone)
	// Decoding into base's members would write into its array, which
	// the directory's line may share.
	l.Members = slices.Clone(base.Members)
	fields := map[string]struct {
		into any
		want string
	}{
		"dn": {&l.DN, "a string of digits"}, "name": {&l.Name, "a string"}, "password": {&l.Password, "a string"},
		"locale": {&l.Locale, "a string"}, "busy_trigger": {&l.BusyTrigger, "an integer"}, "max_devices": {&l.MaxDevices, "an integer"},
		"notification": {&l.Notification, "a string"}, "kind": {&l.Kind, "a string"}, "members": {&l.Members, "an array of strings"},
		"forward_all": {&l.ForwardAll, "a string"}, "forward_busy": {&l.ForwardBusy, "a string"},
		"forward_no_answer": {&l.ForwardNoAnswer, "a string"}, "dnd": {&l.DND, "a boolean"},
		"profile": {&l.Profile, "a string"},
	}
	for _, k := range sortedKeys(obj) {
		f, ok := fields[k]
		if !ok {
			return base, newError(http.StatusBadRequest, "unknown_field", fmt.Sprintf("unknown field %q (want %s)", k, strings.Join(lineFields, ", ")), k)
		}
		if err := decodeField(obj[k], k, f.into, f.want); err != nil {
			return base, err
		}
	}
	if len(l.Members) == 0 {
		l.Members = nil // [] is none, as in a file
	}
	errs := config.CheckLine(l)
	// lookup answers for numbers of a trunk too (kind "external").
	kind := func(dn string) (string, bool) { l, ok := lookup(dn); return cmp.Or(l.Kind, config.KindPhone), ok }
	errs = append(errs, config.LineReferences(l, kind, func(string) bool { return false })...)
	if _, ok := profile(l.Profile); !ok {
		errs = append(errs, &config.Error{Key: "profile", Msg: fmt.Sprintf("line %q: profile %q is not a [[profile]]", l.DN, l.Profile)})
	}
	if len(errs) > 0 {
		return base, invalid(errs, "")
	}
	return l, nil
}

// invalid turns the configuration's rule violations into a 422.
func invalid(errs []*config.Error, prefix string) error {
	e := newError(http.StatusUnprocessableEntity, "invalid_value", "", "")
	for _, ce := range errs {
		field := strings.TrimPrefix(ce.Key, prefix)
		e.Details = append(e.Details, fieldError{Field: field, Message: ce.Msg})
	}
	e.Message, e.Field = e.Details[0].Message, e.Details[0].Field
	return e
}

func sortedKeys(m map[string]json.RawMessage) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// target looks up what a line may name: a line of the directory, or a
// number called through a trunk (kind "external": a forwarding target,
// never a route point's member).
func (a *API) target(dn string) (config.Line, bool) {
	if l, ok := a.s.Line(dn); ok {
		return l, true
	}
	if a.s.External(dn) {
		return config.Line{DN: dn, Kind: "external"}, true
	}
	return config.Line{}, false
}

func (a *API) createLine(w http.ResponseWriter, r *http.Request) {
	l, err := readLine(r, config.Line{Locale: config.DefaultLocale, BusyTrigger: config.DefaultBusyTrigger, MaxDevices: config.DefaultMaxDevices,
		Notification: config.DefaultNotification, Kind: config.KindPhone}, a.target, a.s.Profile)
	if err != nil {
		writeError(w, err)
		return
	}
	if err := a.s.PutLine(r.Context(), l, true); err != nil {
		writeError(w, storeError(err, l.DN))
		return
	}
	w.Header().Set("Location", "/api/v1/lines/"+l.DN)
	writeJSON(w, http.StatusCreated, a.line(l))
}

func (a *API) updateLine(w http.ResponseWriter, r *http.Request) {
	dn := r.PathValue("dn")
	old, err := a.lookupLine(dn)
	if err != nil {
		writeError(w, err)
		return
	}
	l, err := readLine(r, old, a.target, a.s.Profile)
	if err != nil {
		writeError(w, err)
		return
	}
	if l.DN != dn {
		fail(w, http.StatusUnprocessableEntity, "invalid_value", "dn cannot change (delete the line and create another)", "dn")
		return
	}
	if err := a.s.PutLine(r.Context(), l, false); err != nil {
		writeError(w, storeError(err, dn))
		return
	}
	writeJSON(w, http.StatusOK, a.line(l))
}

func (a *API) deleteLine(w http.ResponseWriter, r *http.Request) {
	dn := r.PathValue("dn")
	if err := a.s.RemoveLine(r.Context(), dn); err != nil {
		writeError(w, storeError(err, dn))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func storeError(err error, dn string) error {
	switch {
	case errors.Is(err, directory.ErrLineExists):
		return newError(http.StatusConflict, "conflict", "line "+strconv.Quote(dn)+" exists", "dn")
	case errors.Is(err, directory.ErrNoLine):
		return newError(http.StatusNotFound, "not_found", "no line "+strconv.Quote(dn), "dn")
	case errors.Is(err, context.Canceled):
		return newError(http.StatusServiceUnavailable, "unavailable", "the request was cancelled", "")
	}
	return newError(http.StatusInternalServerError, "store", "not stored: "+err.Error(), "")
}

// ---------------------------------------------------------------------------
// Registrations

type registrationJSON struct {
	DN        string    `json:"dn"`
	Contact   string    `json:"contact"`
	Transport string    `json:"transport"`
	Source    string    `json:"source"`
	UserAgent string    `json:"user_agent,omitempty"`
	Expires   time.Time `json:"expires"`
}

// listRegistrations shows contacts and source addresses, which tell an
// attacker where to send spoofed requests: the admin sees all, a line its
// own (B7).
func (a *API) listRegistrations(w http.ResponseWriter, r *http.Request) {
	u, err := a.authenticate(r)
	if err != nil {
		writeError(w, err)
		return
	}
	out := []registrationJSON{}
	for _, b := range a.s.Registrations() {
		if !u.admin && b.DN != u.dn {
			continue
		}
		out = append(out, registrationJSON{DN: b.DN, Contact: b.Contact, Transport: b.Transport, Source: b.Source, UserAgent: b.UserAgent, Expires: b.Expires.UTC()})
	}
	writeJSON(w, http.StatusOK, out)
}

// ---------------------------------------------------------------------------
// Screens and keys

// screenJSON is what a line's phone shows: the Call Back screen in the
// line's locale and the softkeys it offers (Keys). CallBack is a key of
// the phone itself, always there, so it is not in Keys; Labels names all five.
type screenJSON struct {
	DN     string            `json:"dn"`
	Locale string            `json:"locale"`
	Kind   string            `json:"kind"`
	Text   string            `json:"text"`
	Keys   []string          `json:"keys"`
	Labels map[string]string `json:"labels"`
	State  string            `json:"state"`
}

func (a *API) screenOf(l config.Line, sc screen.Screen) screenJSON {
	locale := screen.Normalize(l.Locale)
	j := screenJSON{DN: l.DN, Locale: locale, Kind: sc.Kind.String(), Text: sc.Text(locale), Keys: sc.Kind.Keys(), Labels: map[string]string{}, State: a.line(l).State}
	if j.Keys == nil {
		j.Keys = []string{}
	}
	for _, k := range []string{screen.KeyCallBack, screen.KeyDial, screen.KeyCancel, screen.KeyExit, screen.KeyOK} {
		j.Labels[k] = screen.Label(locale, k)
	}
	return j
}

func (a *API) getScreen(w http.ResponseWriter, r *http.Request) {
	l, err := a.lookupLine(r.PathValue("dn"))
	if err != nil {
		writeError(w, err)
		return
	}
	sc, _ := a.s.Screen(l.DN)
	writeJSON(w, http.StatusOK, a.screenOf(l, sc))
}

// pressKey: a softkey pressed on the line's console; it acts as the phone's
// softkey and the feature codes do (seed 002).
func (a *API) pressKey(w http.ResponseWriter, r *http.Request) {
	l, err := a.lookupLine(r.PathValue("dn"))
	if err != nil {
		writeError(w, err)
		return
	}
	if err := a.forLine(r, l.DN); err != nil {
		writeError(w, err)
		return
	}
	obj, err := readObject(r)
	if err != nil {
		writeError(w, err)
		return
	}
	var key string
	for _, k := range sortedKeys(obj) {
		if k != "key" {
			fail(w, http.StatusBadRequest, "unknown_field", fmt.Sprintf("unknown field %q (want key)", k), k)
			return
		}
		if err := decodeField(obj[k], k, &key, "a string"); err != nil {
			writeError(w, err)
			return
		}
	}
	if key == "" {
		fail(w, http.StatusBadRequest, "missing_field", "key is required: CallBack, Dial, Cancel, Exit or OK", "key")
		return
	}
	_, sc, err := a.s.Press(l.DN, key)
	if errors.Is(err, callback.ErrUnknownKey) {
		fail(w, http.StatusUnprocessableEntity, "invalid_value", fmt.Sprintf("key %q: want CallBack, Dial, Cancel, Exit or OK", key), "key")
		return
	}
	writeJSON(w, http.StatusOK, a.screenOf(l, sc))
}

// ---------------------------------------------------------------------------
// Call-back requests

type timerJSON struct {
	Name string    `json:"name"`
	At   time.Time `json:"at"`
}

type requestJSON struct {
	ID       int64       `json:"id"`
	Caller   string      `json:"caller"`
	Callee   string      `json:"callee"`
	Kind     string      `json:"kind"`
	State    string      `json:"state"`
	Created  time.Time   `json:"created"`
	Expires  time.Time   `json:"expires"`
	Notified *time.Time  `json:"notified,omitempty"`
	Forward  string      `json:"forward,omitempty"`
	Timers   []timerJSON `json:"timers"`
}

func requestOf(r engine.Request) requestJSON {
	j := requestJSON{ID: r.ID, Caller: r.A, Callee: r.B, Kind: string(r.Kind), State: string(r.State),
		Created: r.Created.UTC(), Expires: r.Expires.UTC(), Forward: r.Forward, Timers: []timerJSON{}}
	if !r.Notice.IsZero() {
		n := r.Notice.UTC()
		j.Notified = &n
	}
	if !r.T1.IsZero() && r.State == engine.Activating {
		j.Timers = append(j.Timers, timerJSON{"t1", r.T1.UTC()})
	}
	if !r.T3.IsZero() && r.State == engine.Available {
		name := "t3"
		if r.Recall {
			name = "wait"
		}
		j.Timers = append(j.Timers, timerJSON{name, r.T3.UTC()})
	}
	j.Timers = append(j.Timers, timerJSON{"lifetime", r.Expires.UTC()})
	return j
}

// mayRead: who may see a request: the admin, its caller and its callee.
func (u who) mayRead(req engine.Request) bool {
	return u.admin || u.dn == req.A || u.dn == req.B
}

// listCallbacks: who called whom is not for everyone; the admin sees all
// requests, a line those it is the caller or callee of (B7).
func (a *API) listCallbacks(w http.ResponseWriter, r *http.Request) {
	u, err := a.authenticate(r)
	if err != nil {
		writeError(w, err)
		return
	}
	out := []requestJSON{}
	for _, req := range a.s.Requests() {
		if !u.mayRead(req) {
			continue
		}
		out = append(out, requestOf(req))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	writeJSON(w, http.StatusOK, out)
}

func (a *API) findRequest(r *http.Request) (engine.Request, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return engine.Request{}, newError(http.StatusBadRequest, "invalid_id", "a request id is a positive integer", "id")
	}
	for _, req := range a.s.Requests() {
		if req.ID == id {
			return req, nil
		}
	}
	return engine.Request{}, newError(http.StatusNotFound, "not_found", fmt.Sprintf("no open call back request %d", id), "id")
}

func (a *API) getCallback(w http.ResponseWriter, r *http.Request) {
	u, err := a.authenticate(r)
	if err != nil {
		writeError(w, err)
		return
	}
	req, err := a.findRequest(r)
	if err != nil {
		writeError(w, err)
		return
	}
	if !u.mayRead(req) {
		fail(w, http.StatusForbidden, "forbidden", "these credentials are line "+u.dn+"'s, which is neither caller nor callee of this request", "")
		return
	}
	writeJSON(w, http.StatusOK, requestOf(req))
}

// activate asks for a call back for a line: {"caller": A} acts on A's last
// failed call, as the CallBack key; {"caller": A, "callee": B} as `*39B`.
// It answers with A's screen, which says what happened.
func (a *API) activate(w http.ResponseWriter, r *http.Request) {
	u, err := a.authenticate(r)
	if err != nil {
		writeError(w, err)
		return
	}
	obj, err := readObject(r)
	if err != nil {
		writeError(w, err)
		return
	}
	var caller, callee string
	for _, k := range sortedKeys(obj) {
		var into *string
		switch k {
		case "caller":
			into = &caller
		case "callee":
			into = &callee
		default:
			fail(w, http.StatusBadRequest, "unknown_field", fmt.Sprintf("unknown field %q (want caller, callee)", k), k)
			return
		}
		if err := decodeField(obj[k], k, into, "a string"); err != nil {
			writeError(w, err)
			return
		}
	}
	if caller == "" {
		fail(w, http.StatusBadRequest, "missing_field", "caller is required", "caller")
		return
	}
	l, err := a.lookupLine(caller)
	if err != nil {
		writeError(w, newError(http.StatusUnprocessableEntity, "invalid_value", "caller: no line "+strconv.Quote(caller), "caller"))
		return
	}
	if !u.admin && u.dn != caller {
		fail(w, http.StatusForbidden, "forbidden", "these credentials are line "+u.dn+"'s, not line "+caller+"'s", "")
		return
	}
	pressed, sc := a.s.Activate(caller, callee)
	status := http.StatusOK
	if pressed.Confirmed() {
		status = http.StatusCreated
	}
	writeJSON(w, status, a.screenOf(l, sc))
}

// cancelCallback is Cancel for the request's caller.
func (a *API) cancelCallback(w http.ResponseWriter, r *http.Request) {
	a.keyOnRequest(w, r, screen.KeyCancel)
}

// dialCallback is Dial for the request's caller: the server rings the
// caller, then the callee (third-party call control).
func (a *API) dialCallback(w http.ResponseWriter, r *http.Request) {
	a.keyOnRequest(w, r, screen.KeyDial)
}

func (a *API) keyOnRequest(w http.ResponseWriter, r *http.Request, key string) {
	req, err := a.findRequest(r)
	if err != nil {
		writeError(w, err)
		return
	}
	if err := a.forLine(r, req.A); err != nil {
		writeError(w, err)
		return
	}
	if req.PeerA != "" { // the caller is a line of the peer's, not ours: the admin only
		if u, _ := a.authenticate(r); !u.admin {
			fail(w, http.StatusForbidden, "forbidden", fmt.Sprintf("request %d is kept for a caller behind %s: this needs the admin token", req.ID, req.PeerA), "")
			return
		}
	}
	pressed, sc, _ := a.s.PressOn(req.ID, req.A, key)
	if pressed.Result == engine.NotAvailable {
		fail(w, http.StatusConflict, "not_available", fmt.Sprintf("%s is not available yet: Dial applies once the caller is notified", req.B), "")
		return
	}
	if req.PeerA != "" { // ended, and the peer told; no screen of ours to show
		w.WriteHeader(http.StatusNoContent)
		return
	}
	l, _ := a.s.Line(req.A)
	writeJSON(w, http.StatusOK, a.screenOf(l, sc))
}

// ---------------------------------------------------------------------------
// Service parameters

func (a *API) getParams(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, a.s.Params())
}

// putParams changes some parameters (a partial object), checked with the
// configuration file's rules; in force for the next request, and stored.
func (a *API) putParams(w http.ResponseWriter, r *http.Request) {
	obj, err := readObject(r)
	if err != nil {
		writeError(w, err)
		return
	}
	cb := a.s.Params()
	fields := jsonFields(&cb)
	for _, k := range sortedKeys(obj) {
		f, ok := fields[k]
		if !ok {
			fail(w, http.StatusBadRequest, "unknown_field", fmt.Sprintf("unknown parameter %q", k), k)
			return
		}
		want := "a string"
		switch f.(type) {
		case *bool:
			want = "true or false"
		case *config.Duration:
			want = `a duration string such as "20s"`
		}
		if err := decodeField(obj[k], k, f, want); err != nil {
			writeError(w, err)
			return
		}
	}
	if errs := config.CheckCallback(cb); len(errs) > 0 {
		writeError(w, invalid(errs, "callback."))
		return
	}
	if err := a.s.SetParams(r.Context(), cb); err != nil {
		writeError(w, storeError(err, ""))
		return
	}
	writeJSON(w, http.StatusOK, a.s.Params())
}

func (a *API) resetParams(w http.ResponseWriter, r *http.Request) {
	if err := a.s.ResetParams(r.Context()); err != nil {
		writeError(w, storeError(err, ""))
		return
	}
	writeJSON(w, http.StatusOK, a.s.Params())
}

// jsonFields maps the JSON names of a struct's fields to pointers to them.
func jsonFields(v any) map[string]any {
	out := map[string]any{}
	rv := reflect.ValueOf(v).Elem()
	for i := 0; i < rv.NumField(); i++ {
		name, _, _ := strings.Cut(rv.Type().Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out[name] = rv.Field(i).Addr().Interface()
		}
	}
	return out
}
