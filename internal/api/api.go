// Package api is callbackd's HTTP API under /api/v1 (JSON; documented by
// internal/api/openapi.json, embedded and served at /api/v1/openapi.json):
// lines, registrations, call-back requests, the phone screens and softkeys,
// service parameters, log switches, alarms, status, and live events as
// server-sent events. Every write needs the admin token (Bearer, or Basic
// with user "admin"), and a line's own credentials may press that line's
// keys and act on its own requests. The reads that show more than the
// directory and a line's screen (registrations, call-back requests,
// alarms, the event stream) need the token or, for a line's own data, the
// line's credentials. Wrong credentials are throttled (B7) by the Guard the
// SIP side shares; Protect guards the listener against cross-site use.
//
// The API only turns HTTP into the calls the rest of the server offers,
// which it declares in Server (internal/app implements it): what a key
// press does is decided by the engine, exactly as for the feature codes.
package api

import (
	"context"
	"crypto/subtle"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/callbackd/callbackd/internal/cluster"
	"github.com/callbackd/callbackd/internal/config"
	"github.com/callbackd/callbackd/internal/engine"
	"github.com/callbackd/callbackd/internal/events"
	"github.com/callbackd/callbackd/internal/linestate"
	"github.com/callbackd/callbackd/internal/metrics"
	"github.com/callbackd/callbackd/internal/screen"
	"github.com/callbackd/callbackd/internal/store"
	"github.com/callbackd/callbackd/internal/throttle"
)

// Server is what the API asks of the running server, and all it asks.
type Server interface {
	// Lines: the directory, their state, and changes while running
	// (PutLine and RemoveLine report directory.ErrLineExists and
	// directory.ErrNoLine).
	AllLines() []config.Line
	Line(dn string) (config.Line, bool)
	Password(dn string) (string, bool)
	LineState(dn string) (linestate.Snapshot, bool)
	Profile(name string) (config.Profile, bool)
	External(number string) bool // called through a trunk
	PutLine(ctx context.Context, l config.Line, create bool) error
	RemoveLine(ctx context.Context, dn string) error
	Registrations() []store.Registration

	// Call Back: screens, keys, requests and the service parameters.
	Screen(dn string) (screen.Screen, bool)
	Press(dn, key string) (engine.Pressed, screen.Screen, error)
	PressOn(id int64, dn, key string) (engine.Pressed, screen.Screen, error)
	Activate(caller, callee string) (engine.Pressed, screen.Screen)
	Requests() []engine.Request
	Params() config.Callback
	SetParams(ctx context.Context, cb config.Callback) error
	ResetParams(ctx context.Context) error

	// Status, history, the SIP trace, live events, and the Guard that
	// throttles failed authentications (B7), shared with SIP.
	RequestCounts() (open, timers int)
	RegistrationCount() int
	Notifications() int64
	ActiveCalls() int
	History() *metrics.History
	SIPTrace() bool
	SetSIPTrace(on bool)
	Watch(filter func(events.Event) bool) *events.Watcher
	AuthGuard() *throttle.Guard
}

// Deps is what the API works on.
type Deps struct {
	Server   Server
	Log      *slog.Logger
	Token    string         // admin token (config http.token, or made at start)
	Level    *slog.LevelVar // the log level, switched live (F36)
	Alarms   *events.Alarms // recent warnings and errors (F37); may be nil
	OpenAPI  []byte         // the OpenAPI document served at /api/v1/openapi.json
	Started  time.Time
	Instance string // names this instance (F35, F37); default host:pid
	// MaxStreams and MaxStreamsPerSource cap the open event streams (B7;
	// config http.max_event_streams*); 0: 100 and 10.
	MaxStreams, MaxStreamsPerSource int
}

// API serves /api/v1.
type API struct {
	d       Deps
	s       Server
	streams *streamCap
}

// New builds the API.
func New(d Deps) *API {
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Instance == "" {
		host, _ := os.Hostname()
		d.Instance = fmt.Sprintf("%s:%d", host, os.Getpid())
	}
	return &API{d: d, s: d.Server, streams: newStreamCap(d.MaxStreams, d.MaxStreamsPerSource)}
}

// Register adds the API's routes to mux.
func (a *API) Register(mux *http.ServeMux) {
	r := func(pattern string, h http.HandlerFunc) { mux.HandleFunc(pattern, h) }
	r("GET /api/v1/status", a.status)
	r("GET /api/v1/openapi.json", a.openapi)
	r("GET /api/v1/lines", a.listLines)
	r("POST /api/v1/lines", a.admin(a.createLine))
	r("GET /api/v1/lines/{dn}", a.getLine)
	r("PUT /api/v1/lines/{dn}", a.admin(a.updateLine))
	r("DELETE /api/v1/lines/{dn}", a.admin(a.deleteLine))
	r("GET /api/v1/lines/{dn}/screen", a.getScreen)
	r("POST /api/v1/lines/{dn}/keys", a.pressKey)
	r("GET /api/v1/registrations", a.listRegistrations)
	r("GET /api/v1/callbacks", a.listCallbacks)
	r("POST /api/v1/callbacks", a.activate)
	r("GET /api/v1/callbacks/{id}", a.getCallback)
	r("DELETE /api/v1/callbacks/{id}", a.cancelCallback)
	r("POST /api/v1/callbacks/{id}/dial", a.dialCallback)
	r("GET /api/v1/params", a.getParams)
	r("PUT /api/v1/params", a.admin(a.putParams))
	r("DELETE /api/v1/params", a.admin(a.resetParams))
	r("GET /api/v1/log", a.getLog)
	r("PUT /api/v1/log", a.admin(a.putLog))
	r("GET /api/v1/alarms", a.admin(a.alarms))
	r("GET /api/v1/history", a.admin(a.history))
	r("GET /api/v1/events", a.events)
	r("GET /api/v1/ui/{locale}", a.ui)
	r("/api/v1/", func(w http.ResponseWriter, r *http.Request) {
		fail(w, http.StatusNotFound, "not_found", "no such API resource: "+r.URL.Path, "")
	})
}

// ---------------------------------------------------------------------------
// Errors and JSON

// apiError is the body of every error response.
type apiError struct {
	Code    string       `json:"code"`
	Message string       `json:"message"`
	Field   string       `json:"field,omitempty"`
	Details []fieldError `json:"details,omitempty"`
}

type fieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// httpError is an error with its response.
type httpError struct {
	status int
	header http.Header // sent with the error (WWW-Authenticate, Retry-After)
	apiError
}

func (e *httpError) Error() string { return e.Message }

func newError(status int, code, msg, field string) *httpError {
	return &httpError{status: status, apiError: apiError{Code: code, Message: msg, Field: field}}
}

func fail(w http.ResponseWriter, status int, code, msg, field string) {
	writeError(w, newError(status, code, msg, field))
}

func writeError(w http.ResponseWriter, err error) {
	var he *httpError
	if !errors.As(err, &he) {
		he = newError(http.StatusInternalServerError, "internal", err.Error(), "")
	}
	for k, v := range he.header {
		w.Header()[k] = v
	}
	if he.status == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
		w.Header().Set("WWW-Authenticate", basicChallenge)
	}
	writeJSON(w, he.status, map[string]apiError{"error": he.apiError})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// maxBody bounds a request body: the largest legitimate one is a line.
const maxBody = 64 << 10

// readObject reads a JSON object body into fields by name, refusing what is
// not JSON, not an object, too large, or not declared as JSON.
func readObject(r *http.Request) (map[string]json.RawMessage, error) {
	if !isJSON(r.Header.Get("Content-Type")) {
		// Also checked by Protect for the whole listener; here for the
		// API mounted without it.
		return nil, unsupportedType(r)
	}
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, maxBody))
	var obj map[string]json.RawMessage
	if err := dec.Decode(&obj); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, newError(http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("the body exceeds %d bytes", maxBody), "")
		}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, newError(http.StatusBadRequest, "invalid_json", "the body must be a JSON object", "")
		}
		return nil, newError(http.StatusBadRequest, "invalid_json", "the body is not valid JSON: "+err.Error(), "")
	}
	if obj == nil {
		return nil, newError(http.StatusBadRequest, "invalid_json", "the body must be a JSON object", "")
	}
	if dec.More() {
		return nil, newError(http.StatusBadRequest, "invalid_json", "the body must hold one JSON object", "")
	}
	return obj, nil
}

func isJSON(ct string) bool {
	for i := 0; i < len(ct); i++ {
		if ct[i] == ';' {
			ct = ct[:i]
			break
		}
	}
	return ct == "application/json"
}

// decodeField decodes one field of an object, naming it on a type error.
func decodeField(raw json.RawMessage, field string, into any, want string) error {
	if string(raw) == "null" {
		// Left as it is, as documented: json.Unmarshal would clear a slice.
		return nil
	}
	if err := json.Unmarshal(raw, into); err != nil {
		return newError(http.StatusBadRequest, "wrong_type", fmt.Sprintf("%s: want %s", field, want), field)
	}
	return nil
}

// ---------------------------------------------------------------------------
// Status, alarms, log, UI texts, OpenAPI

func (a *API) status(w http.ResponseWriter, r *http.Request) {
	open, timers := a.s.RequestCounts()
	status := map[string]any{
		"instance": a.d.Instance,
		// A cluster's standby answers from Standby, with false.
		"active":        true,
		"started":       a.d.Started.UTC().Format(time.RFC3339),
		"version":       version(),
		"lines":         len(a.s.AllLines()),
		"registrations": a.s.RegistrationCount(),
		"open_requests": open,
		"timers":        timers,
		"notifications": a.s.Notifications(),
		"active_calls":  a.s.ActiveCalls(),
	}
	if cs, ok := a.s.(clustered); ok {
		ctx, cancel := context.WithTimeout(r.Context(), time.Second)
		defer cancel()
		if st, err := cs.ClusterStatus(ctx); err != nil {
			a.d.Log.Warn("cluster status not read", "error", err)
		} else if st != nil {
			status["cluster"] = st
		}
	}
	writeJSON(w, http.StatusOK, status)
}

// version is the module's version, "devel" for a build from a checkout.
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "devel"
}

// clustered is a Server that may be one of a cluster's instances (F35,
// F37): its status lists every instance, the active and since when, and
// the takeovers.
type clustered interface {
	ClusterStatus(ctx context.Context) (*cluster.Status, error)
}

func (a *API) alarms(w http.ResponseWriter, r *http.Request) {
	list := []events.Alarm{}
	if a.d.Alarms != nil {
		list = append(list, a.d.Alarms.Recent()...)
	}
	writeJSON(w, http.StatusOK, list)
}

// history serves the last hour of the server's own counters, a sample
// every metrics.HistoryInterval (the admin page's charts). With ?since=T
// (RFC 3339) only the samples after T: a page that has the hour asks for
// what is new.
func (a *API) history(w http.ResponseWriter, r *http.Request) {
	var since time.Time
	if v := r.URL.Query().Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			fail(w, http.StatusBadRequest, "wrong_type", "since: want an RFC 3339 time such as 2026-11-23T09:12:03Z", "since")
			return
		}
		since = t
	}
	h := a.s.History()
	samples := h.Since(since)
	for i := range samples {
		samples[i].Time = samples[i].Time.UTC()
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"interval": metrics.HistoryInterval.String(),
		"size":     h.Size(),
		"samples":  samples,
	})
}

type logSwitches struct {
	Level    string `json:"level"`
	SIPTrace bool   `json:"sip_trace"`
}

func (a *API) currentLog() logSwitches {
	level := "info"
	if a.d.Level != nil {
		switch l := a.d.Level.Level(); {
		case l <= slog.LevelDebug:
			level = "debug"
		case l >= slog.LevelError:
			level = "error"
		case l >= slog.LevelWarn:
			level = "warn"
		}
	}
	return logSwitches{Level: level, SIPTrace: a.s.SIPTrace()}
}

func (a *API) getLog(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, a.currentLog())
}

// putLog switches the log level and the SIP trace while running (F36, F37).
func (a *API) putLog(w http.ResponseWriter, r *http.Request) {
	obj, err := readObject(r)
	if err != nil {
		writeError(w, err)
		return
	}
	cur := a.currentLog()
	for _, k := range sortedKeys(obj) {
		raw := obj[k]
		switch k {
		case "level":
			if err := decodeField(raw, k, &cur.Level, "a string"); err != nil {
				writeError(w, err)
				return
			}
			switch cur.Level {
			case "debug", "info", "warn", "error":
			default:
				fail(w, http.StatusUnprocessableEntity, "invalid_value", fmt.Sprintf("level %q: want debug, info, warn or error", cur.Level), k)
				return
			}
		case "sip_trace":
			if err := decodeField(raw, k, &cur.SIPTrace, "true or false"); err != nil {
				writeError(w, err)
				return
			}
		default:
			fail(w, http.StatusBadRequest, "unknown_field", fmt.Sprintf("unknown field %q (want level, sip_trace)", k), k)
			return
		}
	}
	var l slog.Level
	l.UnmarshalText([]byte(cur.Level))
	if a.d.Level != nil {
		a.d.Level.Set(l)
	}
	a.s.SetSIPTrace(cur.SIPTrace)
	a.d.Log.Info("log switches changed", "level", cur.Level, "sip_trace", cur.SIPTrace)
	writeJSON(w, http.StatusOK, cur)
}

func (a *API) ui(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, screen.UI(r.PathValue("locale")))
}

func (a *API) openapi(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(a.d.OpenAPI)
}

// ---------------------------------------------------------------------------
// Authentication

// who is the authenticated caller: the admin, or a line.
type who struct {
	admin bool
	dn    string
}

// basicChallenge asks a browser for a user and password (RFC 7617).
const basicChallenge = `Basic realm="callbackd", charset="UTF-8"`

// throttleKind names HTTP in the Guard's log line and metrics.
const throttleKind = "http"

// authenticate checks the request's credentials: the admin token as
// Bearer or as Basic admin:TOKEN, or a line's SIP credentials as Basic
// DN:PASSWORD. Comparisons take constant time.
//
// Guessing is throttled (B7) with the server's Guard, keyed by the TCP
// peer's address (X-Forwarded-For is not trusted) and the account (the
// DN, or "admin" for the token): a blocked source or account gets 429 with
// Retry-After before its credentials are looked at, so guesses during a
// lockout learn nothing; a failure is counted and logged by the Guard
// (msg="authentication failed" kind=http, once per key and interval); a
// success forgets the failures.
func (a *API) authenticate(r *http.Request) (who, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return who{}, unauthorized(false)
	}
	var account, secret string
	bearer := false
	if tok, ok := cutPrefixFold(h, "Bearer "); ok {
		account, secret, bearer = "admin", tok, true
	} else if user, pass, ok := r.BasicAuth(); ok {
		account, secret = user, pass
		if len(account) > 64 {
			account = account[:64] // bounds the Guard's keys and the log line
		}
	}
	g := a.s.AuthGuard()
	if d := g.Blocked(throttleKind, r.RemoteAddr, account); d > 0 {
		secs := int((d + time.Second - 1) / time.Second)
		e := newError(http.StatusTooManyRequests, "too_many_attempts",
			fmt.Sprintf("too many failed authentications from this address or for this account: try again in %d s", secs), "")
		e.header = http.Header{"Retry-After": {strconv.Itoa(secs)}}
		return who{}, e
	}
	var u who
	reason := ""
	switch {
	case account == "":
		reason = "malformed credentials"
	case account == "admin":
		if equal(secret, a.d.Token) {
			u = who{admin: true}
		} else {
			reason = "wrong token"
		}
	default:
		if pw, ok := a.s.Password(account); !ok {
			reason = "unknown user"
		} else if equal(secret, pw) {
			u = who{dn: account}
		} else {
			reason = "wrong password"
		}
	}
	if reason != "" {
		g.Failed(throttleKind, r.RemoteAddr, account, reason)
		return who{}, unauthorized(bearer)
	}
	g.Succeeded(r.RemoteAddr, account)
	return u, nil
}

// unauthorized is the 401: a Basic challenge (a browser then asks for a
// user and password, as the phone console wants), or, to a client that
// sent a Bearer token, a Bearer challenge (RFC 6750 3), which a browser
// does not answer with a login dialog (the admin page sends the token).
func unauthorized(bearer bool) *httpError {
	e := newError(http.StatusUnauthorized, "unauthorized", "missing or wrong credentials: use the admin token (Bearer) or the line's DN and password (Basic)", "")
	if bearer {
		e.header = http.Header{"Www-Authenticate": {`Bearer realm="callbackd", error="invalid_token"`}}
	}
	return e
}

func equal(a, b string) bool {
	return b != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// cutPrefixFold cuts an auth scheme, which is case-insensitive (RFC 9110 11.1).
func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return "", false
}

// admin wraps a handler that only the admin may call.
func (a *API) admin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, err := a.authenticate(r)
		if err != nil {
			writeError(w, err)
			return
		}
		if !u.admin {
			fail(w, http.StatusForbidden, "forbidden", "this needs the admin token", "")
			return
		}
		h(w, r)
	}
}

// forLine authenticates a request about line dn: the admin, or dn itself.
func (a *API) forLine(r *http.Request, dn string) error {
	u, err := a.authenticate(r)
	if err != nil {
		return err
	}
	if !u.admin && u.dn != dn {
		return newError(http.StatusForbidden, "forbidden", "these credentials are line "+u.dn+"'s, not line "+dn+"'s", "")
	}
	return nil
}

//go:embed openapi.json
var openapiJSON []byte

// OpenAPI returns the API's OpenAPI 3.1 document.
func OpenAPI() []byte { return openapiJSON }
