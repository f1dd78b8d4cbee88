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
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/callbackd/callbackd/internal/app"
	"github.com/callbackd/callbackd/internal/config"
	"github.com/callbackd/callbackd/internal/events"
	"github.com/callbackd/callbackd/internal/store/sqlite"
	"github.com/callbackd/callbackd/internal/throttle"
)

// The API against a real server (SIP on a loopback port nobody calls, a
// real SQLite store): each test asserts the responses an integrator sees
// and that a refused write changed nothing (B4, F31, F32, F36, F37).

const token = "test-token"

type fixture struct {
	t   testing.TB
	url string
	srv *app.App
	st  *sqlite.SQLite
}

func start(t testing.TB) *fixture {
	t.Helper()
	cfg := config.Default()
	cfg.SIP.Listen = []string{"udp:127.0.0.1:0"}
	cfg.Lines = []config.Line{
		{DN: "1001", Password: "pw1001", Locale: "en", BusyTrigger: 1, MaxDevices: 2, Notification: config.NotifyScreen, Kind: config.KindPhone},
		{DN: "1002", Password: "pw1002", Locale: "de", BusyTrigger: 1, MaxDevices: 2, Notification: config.NotifyScreen, Kind: config.KindPhone},
	}
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "api.db"))
	if err != nil {
		t.Fatal(err)
	}
	level := new(slog.LevelVar)
	alarms := events.NewAlarms(slog.DiscardHandler, 10, nil)
	srv, err := app.New(cfg, st, slog.New(alarms))
	if err != nil {
		t.Fatal(err)
	}
	// The tests send many wrong credentials from one address on purpose:
	// no throttling unless a test sets a Guard of its own (B7 tests do).
	srv.Guard = throttle.NewGuard(throttle.Config{Free: 1 << 20}, slog.New(alarms))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Run(ctx); close(done) }()
	waitCtx, waitCancel := context.WithTimeout(ctx, 10*time.Second)
	srv.WaitServing(waitCtx)
	waitCancel()
	mux := http.NewServeMux()
	New(Deps{Server: srv, Log: slog.New(alarms), Token: token, Level: level, Alarms: alarms, OpenAPI: OpenAPI(), Started: time.Now()}).Register(mux)
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
			// B7: a wrong Bearer token is challenged with Bearer (RFC
			// 6750), so that a browser shows no login dialog for it.
			challenge := `Basic realm="callbackd"`
			if auth == "bad" {
				challenge = `Bearer realm="callbackd"`
			}
			if r.status != 401 || r.errorOf().Code != "unauthorized" || !strings.HasPrefix(r.header.Get("WWW-Authenticate"), challenge) {
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
	req.SetBasicAuth("1002", "pw1002") // B7: a line's events need its credentials
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

// TestLineKindsAndForwarding: a route point (F27) is created without a
// password and with members, a line with forwarding (F10, F20, F21) and
// DND (F22); both read back so from the API, the directory and the store.
// A line created without these fields is a phone line with none.
func TestLineKindsAndForwarding(t *testing.T) {
	f := start(t)
	r := f.do("POST", "/api/v1/lines", "admin", `{"dn":"300","kind":"route-point","members":["1002","1001"]}`)
	if r.status != 201 {
		t.Fatalf("create route point: %d %s", r.status, r.body)
	}
	var got lineJSON
	if r := f.do("GET", "/api/v1/lines/300", "", ""); r.status != 200 || json.Unmarshal([]byte(r.body), &got) != nil ||
		got.Kind != config.KindRoutePoint || !slices.Equal(got.Members, []string{"1002", "1001"}) {
		t.Errorf("read back: %d %s", r.status, r.body)
	}
	if l, _ := f.srv.Directory.Line("300"); l.Kind != config.KindRoutePoint || !slices.Equal(l.Members, []string{"1002", "1001"}) || l.Password != "" {
		t.Errorf("directory: %+v", l)
	}

	r = f.do("POST", "/api/v1/lines", "admin",
		`{"dn":"1010","password":"pw","forward_all":"300","forward_busy":"voicemail","forward_no_answer":"1001","dnd":true}`)
	if r.status != 201 {
		t.Fatalf("create with forwarding: %d %s", r.status, r.body)
	}
	want := lineJSON{DN: "1010", Locale: "en", BusyTrigger: 1, MaxDevices: 4, Notification: config.NotifyScreen, Kind: config.KindPhone,
		Members: []string{}, ForwardAll: "300", ForwardBusy: config.ForwardVoicemail, ForwardNoAnswer: "1001", DND: true,
		Profile: config.DefaultProfile, State: "unregistered"}
	got = lineJSON{}
	if r := f.do("GET", "/api/v1/lines/1010", "", ""); r.status != 200 || json.Unmarshal([]byte(r.body), &got) != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("read back: %d %s\nwant %+v", r.status, r.body, want)
	}
	stored, _ := f.st.Lines(context.Background())
	found := 0
	for _, s := range stored {
		var sl config.Line
		if json.Unmarshal(s.Data, &sl) != nil {
			t.Fatalf("stored %s", s.Data)
		}
		switch sl.DN {
		case "300":
			if sl.Kind != config.KindRoutePoint || !slices.Equal(sl.Members, []string{"1002", "1001"}) {
				t.Errorf("stored route point: %+v", sl)
			}
			found++
		case "1010":
			if sl.ForwardAll != "300" || sl.ForwardBusy != config.ForwardVoicemail || sl.ForwardNoAnswer != "1001" || !sl.DND || sl.Kind != config.KindPhone {
				t.Errorf("stored line: %+v", sl)
			}
			found++
		}
	}
	if found != 2 {
		t.Errorf("stored: %d of the 2 lines", found)
	}

	// Left out: a phone line without forwarding; members always an array.
	r = f.do("POST", "/api/v1/lines", "admin", `{"dn":"1011","password":"pw"}`)
	for _, s := range []string{`"kind": "phone"`, `"members": []`, `"forward_all": ""`, `"forward_busy": ""`, `"forward_no_answer": ""`, `"dnd": false`} {
		if r.status != 201 || !strings.Contains(r.body, s) {
			t.Errorf("create without the new fields: %d %s, want %s", r.status, r.body, s)
		}
	}
	// The configured lines show theirs too.
	var all []lineJSON
	json.Unmarshal([]byte(f.do("GET", "/api/v1/lines", "", "").body), &all)
	for _, l := range all {
		if l.DN == "1001" && (l.Kind != config.KindPhone || l.Members == nil || len(l.Members) != 0 || l.ForwardAll != "" || l.DND) {
			t.Errorf("line 1001: %+v", l)
		}
	}

	// Change: null keeps the members, [] with kind phone drops them;
	// forwarding is cleared with "" and DND with false.
	if r := f.do("PUT", "/api/v1/lines/300", "admin", `{"members":null}`); r.status != 200 || !strings.Contains(r.body, "\"1002\",\n    \"1001\"") {
		t.Errorf("members null: %d %s", r.status, r.body)
	}
	if r := f.do("PUT", "/api/v1/lines/300", "admin", `{"members":["1001"]}`); r.status != 200 {
		t.Errorf("members changed: %d %s", r.status, r.body)
	} else if l, _ := f.srv.Directory.Line("300"); !slices.Equal(l.Members, []string{"1001"}) {
		t.Errorf("members changed: directory %+v", l)
	}
	if r := f.do("PUT", "/api/v1/lines/1010", "admin", `{"forward_all":"","forward_busy":"","forward_no_answer":"","dnd":false}`); r.status != 200 {
		t.Errorf("forwarding off: %d %s", r.status, r.body)
	} else if l, _ := f.srv.Directory.Line("1010"); l.ForwardAll != "" || l.ForwardBusy != "" || l.ForwardNoAnswer != "" || l.DND {
		t.Errorf("forwarding off: directory %+v", l)
	}
	if r := f.do("PUT", "/api/v1/lines/300", "admin", `{"kind":"phone","members":[],"password":"pw300"}`); r.status != 200 ||
		!strings.Contains(r.body, `"kind": "phone"`) || !strings.Contains(r.body, `"members": []`) {
		t.Errorf("route point to phone: %d %s", r.status, r.body)
	} else if l, _ := f.srv.Directory.Line("300"); l.Members != nil {
		t.Errorf("route point to phone: directory %+v", l)
	}
}

// TestLineKindsAndForwardingRefused: a bad kind, members or forwarding
// target is 422 with the field named (every violation in details), a
// wrong JSON type 400; nothing changes.
func TestLineKindsAndForwardingRefused(t *testing.T) {
	f := start(t)
	if r := f.do("POST", "/api/v1/lines", "admin", `{"dn":"500","password":"vm","kind":"voicemail"}`); r.status != 201 {
		t.Fatalf("create voicemail line: %d %s", r.status, r.body)
	}
	before := f.snapshot()
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		code, field, message     string
		details                  int
	}{
		{"bad kind", "POST", "/api/v1/lines", `{"dn":"1010","password":"pw","kind":"hunt"}`,
			422, "invalid_value", "kind", `line "1010": kind "hunt": want phone, route-point or voicemail`, 1},
		{"empty kind", "PUT", "/api/v1/lines/1001", `{"kind":""}`,
			422, "invalid_value", "kind", `line "1001": kind "": want phone, route-point or voicemail`, 1},
		{"forward to an unknown line", "POST", "/api/v1/lines", `{"dn":"1010","password":"pw","forward_all":"4711"}`,
			422, "invalid_value", "forward_all", `line "1010": forward_all "4711" is not a line nor a number of a trunk`, 1},
		{"forward busy to an unknown line", "PUT", "/api/v1/lines/1001", `{"forward_busy":"4711"}`,
			422, "invalid_value", "forward_busy", `line "1001": forward_busy "4711" is not a line nor a number of a trunk`, 1},
		{"forward to itself", "PUT", "/api/v1/lines/1001", `{"forward_no_answer":"1001"}`,
			422, "invalid_value", "forward_no_answer", `line "1001": forward_no_answer: a line cannot forward to itself`, 1},
		{"forward to a code", "PUT", "/api/v1/lines/1001", `{"forward_all":"*21"}`,
			422, "invalid_value", "forward_all", `line "1001": forward_all "*21": want a DN or "voicemail"`, 1},
		{"route point without members", "POST", "/api/v1/lines", `{"dn":"300","kind":"route-point"}`,
			422, "invalid_value", "members", `line "300": a route-point needs members (the lines it hands calls to)`, 1},
		{"member unknown", "POST", "/api/v1/lines", `{"dn":"300","kind":"route-point","members":["1001","4711"]}`,
			422, "invalid_value", "members", `line "300": member "4711" is not a line`, 1},
		{"member a voicemail line", "POST", "/api/v1/lines", `{"dn":"300","kind":"route-point","members":["500"]}`,
			422, "invalid_value", "members", `line "300": member "500" is a voicemail, want a phone line`, 1},
		{"member itself", "POST", "/api/v1/lines", `{"dn":"300","kind":"route-point","members":["300"]}`,
			422, "invalid_value", "members", `line "300": member "300": want the DN of another line`, 1},
		{"members of a phone", "PUT", "/api/v1/lines/1001", `{"members":["1002"]}`,
			422, "invalid_value", "members", `line "1001": members: only a route-point has members`, 1},
		{"all at once", "POST", "/api/v1/lines", `{"dn":"300","kind":"route-point","members":["4711"],"forward_all":"4712","forward_busy":"x"}`,
			422, "invalid_value", "forward_busy", `line "300": forward_busy "x": want a DN or "voicemail"`, 3},
		{"members wrong type", "POST", "/api/v1/lines", `{"dn":"300","kind":"route-point","members":"1001"}`,
			400, "wrong_type", "members", "members: want an array of strings", 0},
		{"dnd wrong type", "PUT", "/api/v1/lines/1001", `{"dnd":"yes"}`,
			400, "wrong_type", "dnd", "dnd: want a boolean", 0},
		{"kind wrong type", "PUT", "/api/v1/lines/1001", `{"kind":1}`,
			400, "wrong_type", "kind", "kind: want a string", 0},
	} {
		r := f.do(tc.method, tc.path, "admin", tc.body)
		e := r.errorOf()
		if r.status != tc.status || e.Code != tc.code || e.Field != tc.field || e.Message != tc.message || len(e.Details) != tc.details {
			t.Errorf("%s: %d %s\nwant %d %s field %q %q with %d details", tc.name, r.status, r.body, tc.status, tc.code, tc.field, tc.message, tc.details)
		}
	}
	if after := f.snapshot(); after != before {
		t.Errorf("a refused write changed something:\n%s\n%s", before, after)
	}
}
