package api

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/callbackd/callbackd/internal/config"
	"github.com/callbackd/callbackd/internal/events"
	"github.com/callbackd/callbackd/internal/sipserver"
	"github.com/callbackd/callbackd/internal/store"
)

// The API against a real server (SIP on a loopback port nobody calls, a
// real SQLite store): each test asserts the responses an integrator sees
// and that a refused write changed nothing (B4, F31, F32, F36, F37).

const token = "test-token"

type fixture struct {
	t   testing.TB
	url string
	srv *sipserver.Server
	st  *store.SQLite
}

func start(t testing.TB) *fixture {
	t.Helper()
	cfg := config.Default()
	cfg.SIP.Listen = []string{"udp:127.0.0.1:0"}
	cfg.Lines = []config.Line{
		{DN: "1001", Password: "pw1001", Locale: "en", BusyTrigger: 1, MaxDevices: 2, Notification: config.NotifyScreen},
		{DN: "1002", Password: "pw1002", Locale: "de", BusyTrigger: 1, MaxDevices: 2, Notification: config.NotifyScreen},
	}
	st, err := store.OpenSQLite(filepath.Join(t.TempDir(), "api.db"))
	if err != nil {
		t.Fatal(err)
	}
	level := new(slog.LevelVar)
	alarms := events.NewAlarms(slog.DiscardHandler, 10, nil)
	srv, err := sipserver.New(cfg, st, slog.New(alarms))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx); close(done) }()
	waitCtx, waitCancel := context.WithTimeout(ctx, 10*time.Second)
	srv.WaitServing(waitCtx)
	waitCancel()
	mux := http.NewServeMux()
	New(Deps{Server: srv, Token: token, Level: level, Alarms: alarms, OpenAPI: OpenAPI(), Started: time.Now()}).Register(mux)
	hs := httptest.NewServer(mux)
	t.Cleanup(func() {
		hs.Close()
		cancel()
		<-done
		st.Close()
	})
	return &fixture{t: t, url: hs.URL, srv: srv, st: st}
}

type reply struct {
	status int
	header http.Header
	body   string
}

func (r reply) errorOf() apiError {
	var e struct{ Error apiError }
	json.Unmarshal([]byte(r.body), &e)
	return e.Error
}

// do sends a request; auth is "" (none), "admin", "bad" or "DN:PASSWORD".
func (f *fixture) do(method, path, auth, body string) reply {
	f.t.Helper()
	req, err := http.NewRequest(method, f.url+path, strings.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	switch {
	case auth == "admin":
		req.Header.Set("Authorization", "Bearer "+token)
	case auth == "bad":
		req.Header.Set("Authorization", "Bearer wrong")
	case auth != "":
		u, p, _ := strings.Cut(auth, ":")
		req.SetBasicAuth(u, p)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return reply{res.StatusCode, res.Header, string(b)}
}

func (f *fixture) snapshot() string {
	return f.do("GET", "/api/v1/lines", "", "").body + f.do("GET", "/api/v1/params", "", "").body
}

// TestB4_WritesNeedCredentials: every write without, or with wrong,
// credentials gets 401 with a Basic challenge; a line's credentials only
// act for that line (403 otherwise); nothing changes.
func TestB4_WritesNeedCredentials(t *testing.T) {
	f := start(t)
	before := f.snapshot()
	writes := []struct{ method, path, body string }{
		{"POST", "/api/v1/lines", `{"dn":"1009","password":"x"}`},
		{"PUT", "/api/v1/lines/1001", `{"name":"5"}`},
		{"DELETE", "/api/v1/lines/1001", ""},
		{"POST", "/api/v1/lines/1001/keys", `{"key":"CallBack"}`},
		{"POST", "/api/v1/callbacks", `{"caller":"1001","callee":"1002"}`},
		{"PUT", "/api/v1/params", `{"t3":"30s"}`},
		{"DELETE", "/api/v1/params", ""},
		{"PUT", "/api/v1/log", `{"level":"debug"}`},
	}
	for _, w := range writes {
		for _, auth := range []string{"", "bad", "admin:wrong", "1001:wrong", "9999:pw1001"} {
			r := f.do(w.method, w.path, auth, w.body)
			if r.status != 401 || r.errorOf().Code != "unauthorized" || !strings.HasPrefix(r.header.Get("WWW-Authenticate"), `Basic realm="callbackd"`) {
				t.Errorf("%s %s with %q: %d %s %q", w.method, w.path, auth, r.status, r.body, r.header.Get("WWW-Authenticate"))
			}
		}
	}
	// A line's own credentials: its keys yes, another line's or admin work no.
	if r := f.do("POST", "/api/v1/lines/1002/keys", "1001:pw1001", `{"key":"Exit"}`); r.status != 403 || r.errorOf().Code != "forbidden" {
		t.Errorf("1001 pressing 1002's key: %d %s", r.status, r.body)
	}
	if r := f.do("PUT", "/api/v1/params", "1001:pw1001", `{"t3":"30s"}`); r.status != 403 {
		t.Errorf("a line changing parameters: %d %s", r.status, r.body)
	}
	if r := f.do("POST", "/api/v1/lines/1001/keys", "1001:pw1001", `{"key":"Exit"}`); r.status != 200 {
		t.Errorf("1001 pressing its own key: %d %s", r.status, r.body)
	}
	if after := f.snapshot(); after != before {
		t.Errorf("refused writes changed state:\nbefore %s\nafter %s", before, after)
	}
}

// TestB4_BadInput: malformed JSON, wrong types, unknown fields, values out
// of range, unknown lines: the exact status and error code and field, and
// nothing changed (F31: out-of-range timers are refused).
func TestB4_BadInput(t *testing.T) {
	f := start(t)
	before := f.snapshot()
	for _, c := range []struct {
		method, path, body string
		status             int
		code, field        string
	}{
		{"PUT", "/api/v1/params", `{"t3":`, 400, "invalid_json", ""},
		{"PUT", "/api/v1/params", `[1,2]`, 400, "invalid_json", ""},
		{"PUT", "/api/v1/params", `null`, 400, "invalid_json", ""},
		{"PUT", "/api/v1/params", `{"t3":"20s"} {"t1":"5s"}`, 400, "invalid_json", ""},
		{"PUT", "/api/v1/params", `{"t3":20}`, 400, "wrong_type", "t3"},
		{"PUT", "/api/v1/params", `{"t3":"soon"}`, 400, "wrong_type", "t3"},
		{"PUT", "/api/v1/params", `{"enabled":"yes"}`, 400, "wrong_type", "enabled"},
		{"PUT", "/api/v1/params", `{"CC_TIMEOUT":"60m"}`, 400, "unknown_field", "CC_TIMEOUT"},
		{"PUT", "/api/v1/params", `{"t3":"11m"}`, 422, "invalid_value", "t3"},
		{"PUT", "/api/v1/params", `{"t1":"0s"}`, 422, "invalid_value", "t1"},
		{"PUT", "/api/v1/params", `{"lifetime":"49h"}`, 422, "invalid_value", "lifetime"},
		{"PUT", "/api/v1/params", `{"wait_time":"1s"}`, 422, "invalid_value", "wait_time"},
		{"PUT", "/api/v1/params", `{"policy":"lifo"}`, 422, "invalid_value", "policy"},
		{"PUT", "/api/v1/params", `{"activate_code":"#39"}`, 422, "invalid_value", "cancel_code"},
		{"PUT", "/api/v1/params", `{"t3":"30s","t1":"99h"}`, 422, "invalid_value", "t1"}, // all or nothing
		{"PUT", "/api/v1/params", `{"busy_tone":"yes"}`, 400, "wrong_type", "busy_tone"},
		{"PUT", "/api/v1/params", `{"alert_file":7}`, 400, "wrong_type", "alert_file"},
		{"PUT", "/api/v1/params", `{"alert_file":"chime"}`, 422, "invalid_value", "alert_file"},
		{"PUT", "/api/v1/params", `{"alert_file":""}`, 422, "invalid_value", "alert_file"},
		{"PUT", "/api/v1/params", `{"alert_file":"/nonexistent/alert.wav"}`, 422, "invalid_value", "alert_file"},
		{"PUT", "/api/v1/params", `{"alert_file":"api_test.go"}`, 422, "invalid_value", "alert_file"}, // not a WAV file
		{"POST", "/api/v1/lines", `{"dn":"12ab","password":"x"}`, 422, "invalid_value", "dn"},
		{"POST", "/api/v1/lines", `{"dn":"1009"}`, 422, "invalid_value", "password"},
		{"POST", "/api/v1/lines", `{"dn":"1009","password":"x","locale":"fr"}`, 422, "invalid_value", "locale"},
		{"POST", "/api/v1/lines", `{"dn":"1009","password":"x","busy_trigger":0}`, 422, "invalid_value", "busy_trigger"},
		{"POST", "/api/v1/lines", `{"dn":"1009","password":"x","max_devices":"4"}`, 400, "wrong_type", "max_devices"},
		{"POST", "/api/v1/lines", `{"dn":"1009","password":"x","notification":"ring"}`, 422, "invalid_value", "notification"},
		{"POST", "/api/v1/lines", `{"dn":"1009","password":"x","notification":""}`, 422, "invalid_value", "notification"},
		{"POST", "/api/v1/lines", `{"dn":"1009","password":"x","notification":true}`, 400, "wrong_type", "notification"},
		{"PUT", "/api/v1/lines/1001", `{"notification":"AUTO-RECALL"}`, 422, "invalid_value", "notification"},
		{"POST", "/api/v1/lines", `{"dn":"1001","password":"x"}`, 409, "conflict", "dn"},
		{"POST", "/api/v1/lines", `{"dn":"1009","password":"x","pin":"1"}`, 400, "unknown_field", "pin"},
		{"PUT", "/api/v1/lines/4711", `{"name":"1"}`, 404, "not_found", "dn"},
		{"PUT", "/api/v1/lines/1001", `{"dn":"1003"}`, 422, "invalid_value", "dn"},
		{"DELETE", "/api/v1/lines/4711", "", 404, "not_found", "dn"},
		{"GET", "/api/v1/lines/4711", "", 404, "not_found", "dn"},
		{"GET", "/api/v1/lines/4711/screen", "", 404, "not_found", "dn"},
		{"POST", "/api/v1/lines/1001/keys", `{"key":"Redial"}`, 422, "invalid_value", "key"},
		{"POST", "/api/v1/lines/1001/keys", `{}`, 400, "missing_field", "key"},
		{"POST", "/api/v1/lines/1001/keys", `{"key":5}`, 400, "wrong_type", "key"},
		{"POST", "/api/v1/callbacks", `{"callee":"1002"}`, 400, "missing_field", "caller"},
		{"POST", "/api/v1/callbacks", `{"caller":"4711"}`, 422, "invalid_value", "caller"},
		{"GET", "/api/v1/callbacks/abc", "", 400, "invalid_id", "id"},
		{"GET", "/api/v1/callbacks/77", "", 404, "not_found", "id"},
		{"DELETE", "/api/v1/callbacks/77", "", 404, "not_found", "id"},
		{"POST", "/api/v1/callbacks/77/dial", "", 404, "not_found", "id"},
		{"PUT", "/api/v1/log", `{"level":"loud"}`, 422, "invalid_value", "level"},
		{"PUT", "/api/v1/log", `{"sip_trace":"on"}`, 400, "wrong_type", "sip_trace"},
		{"GET", "/api/v1/nothing", "", 404, "not_found", ""},
		{"GET", "/api/v1/events?line=4711", "", 404, "not_found", "line"},
	} {
		r := f.do(c.method, c.path, "admin", c.body)
		e := r.errorOf()
		if r.status != c.status || e.Code != c.code || e.Field != c.field || e.Message == "" {
			t.Errorf("%s %s %s: %d %s, want %d code %q field %q", c.method, c.path, c.body, r.status, r.body, c.status, c.code, c.field)
		}
	}
	// Not JSON at all.
	req, _ := http.NewRequest("PUT", f.url+"/api/v1/params", strings.NewReader("t3=30s"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 415 {
		t.Errorf("form body: %d, want 415", res.StatusCode)
	}
	big := `{"name":"` + strings.Repeat("1", maxBody) + `"}`
	if r := f.do("PUT", "/api/v1/lines/1001", "admin", big); r.status != 413 || r.errorOf().Code != "too_large" {
		t.Errorf("huge body: %d %s", r.status, r.body)
	}
	if after := f.snapshot(); after != before {
		t.Errorf("refused writes changed state:\nbefore %s\nafter %s", before, after)
	}
	stored, _ := f.st.Settings(context.Background())
	lines, _ := f.st.Lines(context.Background())
	if len(stored) != 0 || len(lines) != 0 {
		t.Errorf("refused writes were stored: %v %v", stored, lines)
	}
}

// TestF31_F36_ParamsAndLinesLive: a parameter change is in force at once
// and stored; a line created, changed and removed is served at once and
// stored; DELETE /params returns to the file's values.
func TestF31_F36_ParamsAndLinesLive(t *testing.T) {
	f := start(t)
	r := f.do("PUT", "/api/v1/params", "admin", `{"t3":"45s","policy":"fifo","ccnr":false}`)
	var p config.Callback
	if err := json.Unmarshal([]byte(r.body), &p); r.status != 200 || err != nil || p.T3.Duration != 45*time.Second || p.Policy != "fifo" || p.CCNR {
		t.Fatalf("PUT params: %d %s", r.status, r.body)
	}
	if got := f.srv.Callback.Params(); got.T3.Duration != 45*time.Second {
		t.Fatalf("service T3 %v after PUT", got.T3)
	}
	if s, _ := f.st.Settings(context.Background()); !strings.Contains(string(s["callback"]), `"t3":"45s"`) {
		t.Errorf("stored parameters: %s", s["callback"])
	}
	if r := f.do("DELETE", "/api/v1/params", "admin", ""); r.status != 200 || f.srv.Callback.Params().T3.Duration != 20*time.Second {
		t.Errorf("DELETE params: %d %s", r.status, r.body)
	}
	r = f.do("PUT", "/api/v1/params", "admin", `{"busy_tone":true,"alert_file":"connecting"}`)
	if err := json.Unmarshal([]byte(r.body), &p); r.status != 200 || err != nil || !p.BusyTone || p.AlertFile != "connecting" {
		t.Errorf("PUT busy_tone, alert_file: %d %s", r.status, r.body)
	}
	if got := f.srv.Callback.Params(); !got.BusyTone || got.AlertFile != "connecting" {
		t.Errorf("service parameters after PUT: %+v", got)
	}
	f.do("DELETE", "/api/v1/params", "admin", "")

	if r := f.do("POST", "/api/v1/lines", "admin", `{"dn":"1009","password":"pw","locale":"ko","name":"9"}`); r.status != 201 || r.header.Get("Location") != "/api/v1/lines/1009" {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	if pw, ok := f.srv.Directory.Password("1009"); !ok || pw != "pw" {
		t.Fatal("created line not in the directory")
	}
	r = f.do("GET", "/api/v1/lines/1009/screen", "", "")
	if r.status != 200 || !strings.Contains(r.body, `"locale": "ko"`) || !strings.Contains(r.body, `"CallBack": "콜백"`) {
		t.Errorf("screen of the new line: %s", r.body)
	}
	if r := f.do("PUT", "/api/v1/lines/1009", "admin", `{"locale":"zh"}`); r.status != 200 || !strings.Contains(r.body, `"locale": "zh"`) {
		t.Errorf("update: %d %s", r.status, r.body)
	}
	if pw, _ := f.srv.Directory.Password("1009"); pw != "pw" {
		t.Error("an update without password lost the password")
	}
	if strings.Contains(f.do("GET", "/api/v1/lines", "", "").body, "pw") {
		t.Error("a password is shown")
	}
	var l struct{ Notification *string }
	if r := f.do("GET", "/api/v1/lines/1009", "", ""); json.Unmarshal([]byte(r.body), &l) != nil || l.Notification == nil || *l.Notification != "notify" {
		t.Errorf("a line created without notification: %s", r.body)
	}
	if r := f.do("PUT", "/api/v1/lines/1009", "admin", `{"notification":"auto-recall"}`); r.status != 200 || !strings.Contains(r.body, `"notification": "auto-recall"`) {
		t.Errorf("update notification: %d %s", r.status, r.body)
	}
	if dl, _ := f.srv.Directory.Line("1009"); dl.Notification != config.NotifyAutoRecall || dl.Locale != "zh" {
		t.Errorf("directory line after update: %+v", dl)
	}
	if r := f.do("DELETE", "/api/v1/lines/1009", "admin", ""); r.status != 204 {
		t.Errorf("delete: %d %s", r.status, r.body)
	}
	if r := f.do("GET", "/api/v1/lines/1009", "", ""); r.status != 404 {
		t.Errorf("deleted line: %d", r.status)
	}
	if ls, _ := f.st.Lines(context.Background()); len(ls) != 1 || !ls[0].Deleted {
		t.Errorf("stored lines: %+v", ls)
	}

	if r := f.do("PUT", "/api/v1/log", "admin", `{"level":"debug","sip_trace":true}`); r.status != 200 || !f.srv.SIPTrace() {
		t.Errorf("log switches: %d %s", r.status, r.body)
	}
	f.do("PUT", "/api/v1/log", "admin", `{"level":"info","sip_trace":false}`)
}

// TestB4_ConsoleEvents: the console's event stream starts with the line's
// screen, and a key pressed shows the next screen on it.
func TestB4_ConsoleEvents(t *testing.T) {
	f := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", f.url+"/api/v1/events?line=1002", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("content type %q", ct)
	}
	sc := bufio.NewScanner(res.Body)
	next := func() (string, string) {
		var typ string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				typ = line[7:]
			case strings.HasPrefix(line, "data: "):
				return typ, line[6:]
			}
		}
		t.Fatalf("stream ended: %v", sc.Err())
		return "", ""
	}
	if typ, data := next(); typ != "screen" || !strings.Contains(data, `"kind":"None"`) || !strings.Contains(data, `"Dial":"Wählen"`) {
		t.Fatalf("first event %s %s", typ, data)
	}
	if typ, _ := next(); typ != "line" {
		t.Fatalf("second event %s", typ)
	}
	if r := f.do("POST", "/api/v1/lines/1002/keys", "1002:pw1002", `{"key":"CallBack"}`); r.status != 200 {
		t.Fatalf("press: %d %s", r.status, r.body)
	}
	for {
		typ, data := next()
		if typ == "screen" {
			if !strings.Contains(data, `"kind":"NotActive"`) || !strings.Contains(data, "Rückruf ist nicht aktiv") {
				t.Fatalf("screen after CallBack: %s", data)
			}
			return
		}
	}
}

// TestLineNotification: a line created with notification "auto-recall"
// reads back so, from the API, the directory and the store; one created
// without it is "notify".
func TestLineNotification(t *testing.T) {
	f := start(t)
	r := f.do("POST", "/api/v1/lines", "admin", `{"dn":"1010","password":"pw","notification":"auto-recall"}`)
	if r.status != 201 || !strings.Contains(r.body, `"notification": "auto-recall"`) {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	var got lineJSON
	if r := f.do("GET", "/api/v1/lines/1010", "", ""); r.status != 200 || json.Unmarshal([]byte(r.body), &got) != nil || got.Notification != config.NotifyAutoRecall {
		t.Errorf("read back: %d %s", r.status, r.body)
	}
	if l, _ := f.srv.Directory.Line("1010"); l.Notification != config.NotifyAutoRecall {
		t.Errorf("directory: %+v", l)
	}
	stored, _ := f.st.Lines(context.Background())
	var sl config.Line
	if len(stored) != 1 || json.Unmarshal(stored[0].Data, &sl) != nil || sl.Notification != config.NotifyAutoRecall {
		t.Errorf("stored: %+v", stored)
	}

	if r := f.do("POST", "/api/v1/lines", "admin", `{"dn":"1011","password":"pw"}`); r.status != 201 || !strings.Contains(r.body, `"notification": "notify"`) {
		t.Errorf("create without notification: %d %s", r.status, r.body)
	}
	// The configured lines show theirs too.
	var all []lineJSON
	json.Unmarshal([]byte(f.do("GET", "/api/v1/lines", "", "").body), &all)
	for _, l := range all {
		want := config.NotifyScreen
		if l.DN == "1010" {
			want = config.NotifyAutoRecall
		}
		if l.Notification != want {
			t.Errorf("line %s: notification %q, want %q", l.DN, l.Notification, want)
		}
	}
}
