package api

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callbackd/callbackd/internal/engine"
	"github.com/callbackd/callbackd/internal/throttle"
)

// protected serves a handler that records whether it ran, behind Protect.
func protected(p Policy) (http.Handler, *bool) {
	ran := new(bool)
	return Protect(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		*ran = true
		w.WriteHeader(http.StatusNoContent)
	}), p), ran
}

// TestB7_ProtectHost: only the allowed Host values are answered (421
// otherwise, with the JSON error), /healthz and /readyz whatever the Host; "*" any.
func TestB7_ProtectHost(t *testing.T) {
	h, ran := protected(Policy{Hosts: append(DefaultHosts("127.0.0.1:8080"), "PBX.example.com")})
	for _, c := range []struct {
		host, path string
		want       int
	}{
		{"127.0.0.1:8080", "/api/v1/lines", 204},
		{"localhost:8080", "/phone/1001", 204},
		{"LOCALHOST:8080", "/phone/1001", 204},
		{"[::1]:8080", "/metrics", 204},
		{"pbx.example.com", "/admin", 204},      // any port
		{"pbx.example.com:9999", "/admin", 204}, // any port
		{"attacker.example:8080", "/api/v1/registrations", 421},
		{"attacker.example", "/debug/vars", 421},
		{"127.0.0.1:8081", "/api/v1/lines", 421},
		{"localhost", "/api/v1/lines", 421}, // localhost is allowed with the port only
		{"127.0.0.2:8080", "/api/v1/events", 421},
		{"", "/api/v1/lines", 421},
		{"attacker.example", "/healthz", 204},
		{"attacker.example", "/readyz", 204},
	} {
		*ran = false
		req := httptest.NewRequest("GET", "http://x"+c.path, nil)
		req.Host = c.host
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != c.want || *ran != (c.want == 204) {
			t.Errorf("Host %q %s: %d (handler ran: %v), want %d", c.host, c.path, rec.Code, *ran, c.want)
		}
		if c.want == 421 && (!strings.Contains(rec.Body.String(), `"code": "misdirected"`) || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json")) {
			t.Errorf("Host %q: body %s", c.host, rec.Body)
		}
	}
	any, ran := protected(Policy{Hosts: []string{"*"}})
	req := httptest.NewRequest("GET", "/api/v1/lines", nil)
	req.Host = "whatever.example"
	rec := httptest.NewRecorder()
	any.ServeHTTP(rec, req)
	if rec.Code != 204 || !*ran {
		t.Errorf(`hosts ["*"]: %d`, rec.Code)
	}
}

// TestB7_ProtectCrossSite: a write runs only from this server's origin, an
// allowed one, a same-origin or user-typed fetch, or a client that is not
// a browser; reads are not checked.
func TestB7_ProtectCrossSite(t *testing.T) {
	h, ran := protected(Policy{Hosts: []string{"127.0.0.1:8080"}, AllowedOrigins: []string{"https://admin.example.com"}})
	for _, c := range []struct {
		method, origin, site string
		want                 int
	}{
		{"POST", "http://127.0.0.1:8080", "same-origin", 204},
		{"POST", "https://127.0.0.1:8080", "", 204}, // behind a TLS proxy: the same host and port
		{"DELETE", "http://127.0.0.1:8080", "", 204},
		{"PUT", "https://admin.example.com", "cross-site", 204},
		{"POST", "", "same-origin", 204},
		{"POST", "", "none", 204},
		{"POST", "", "", 204}, // curl
		{"POST", "http://127.0.0.2:8080", "cross-site", 403},
		{"POST", "http://127.0.0.1:9999", "same-site", 403}, // another port is another origin
		{"POST", "http://127.0.0.1:8080.attacker.example", "cross-site", 403},
		{"PATCH", "null", "cross-site", 403},
		{"DELETE", "https://admin.example.com.evil", "", 403},
		{"POST", "", "cross-site", 403},
		{"PUT", "", "same-site", 403},
		{"GET", "http://127.0.0.2:8080", "cross-site", 204}, // reads: CORS keeps their answers from the page
		{"OPTIONS", "http://127.0.0.2:8080", "cross-site", 204},
	} {
		*ran = false
		req := httptest.NewRequest(c.method, "/api/v1/lines/1001/keys", nil)
		req.Host = "127.0.0.1:8080"
		if c.origin != "" {
			req.Header.Set("Origin", c.origin)
		}
		if c.site != "" {
			req.Header.Set("Sec-Fetch-Site", c.site)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != c.want || *ran != (c.want == 204) {
			t.Errorf("%s Origin %q Sec-Fetch-Site %q: %d (handler ran: %v), want %d", c.method, c.origin, c.site, rec.Code, *ran, c.want)
		}
		if c.want == 403 && !strings.Contains(rec.Body.String(), `"code": "cross_site"`) {
			t.Errorf("%s Origin %q: body %s", c.method, c.origin, rec.Body)
		}
	}
}

// TestB7_ProtectContentType: a write with a body must say application/json;
// writes without a body and reads need no Content-Type.
func TestB7_ProtectContentType(t *testing.T) {
	h, ran := protected(Policy{Hosts: []string{"*"}})
	for _, c := range []struct {
		method, ctype, body string
		want                int
	}{
		{"POST", "application/json", `{"key":"CallBack"}`, 204},
		{"POST", "application/json; charset=utf-8", `{"key":"CallBack"}`, 204},
		{"POST", "", `{"key":"CallBack"}`, 415},
		{"POST", "text/plain", `{"key":"CallBack"}`, 415},
		{"POST", "text/plain;charset=UTF-8", `{"key":"CallBack","x":"="}`, 415}, // a form with enctype text/plain
		{"PUT", "application/x-www-form-urlencoded", `t3=30s`, 415},
		{"POST", "multipart/form-data; boundary=x", "--x--", 415},
		{"POST", "application/jsonp", `{}`, 415},
		{"DELETE", "", "", 204},
		{"POST", "", "", 204}, // POST .../dial has no body
		{"GET", "", "", 204},
	} {
		*ran = false
		req := httptest.NewRequest(c.method, "/api/v1/lines/1001/keys", strings.NewReader(c.body))
		if c.ctype != "" {
			req.Header.Set("Content-Type", c.ctype)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != c.want || *ran != (c.want == 204) {
			t.Errorf("%s Content-Type %q body %q: %d, want %d", c.method, c.ctype, c.body, rec.Code, c.want)
		}
		if c.want == 415 && !strings.Contains(rec.Body.String(), `"code": "unsupported_media_type"`) {
			t.Errorf("%s %q: body %s", c.method, c.ctype, rec.Body)
		}
	}
	// Chunked (length unknown): a body.
	req := httptest.NewRequest("POST", "/api/v1/lines/1001/keys", strings.NewReader(`{}`))
	req.ContentLength = -1
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 415 {
		t.Errorf("chunked body without Content-Type: %d, want 415", rec.Code)
	}
}

func TestB7_DefaultHosts(t *testing.T) {
	got := DefaultHosts("127.0.0.1:8080")
	want := []string{"127.0.0.1:8080", "[::1]:8080", "localhost:8080"}
	if !slices.Equal(got, want) {
		t.Errorf("DefaultHosts(127.0.0.1:8080) = %v, want %v", got, want)
	}
	if got := DefaultHosts("[::1]:9090"); !slices.Contains(got, "[::1]:9090") || !slices.Contains(got, "localhost:9090") {
		t.Errorf("DefaultHosts([::1]:9090) = %v", got)
	}
	// All addresses: this machine's, loopback among them; not 0.0.0.0 itself
	// as a name anyone would type (it is listed, harmlessly).
	if got := DefaultHosts("0.0.0.0:8080"); !slices.Contains(got, "127.0.0.1:8080") || len(got) < 4 {
		t.Errorf("DefaultHosts(0.0.0.0:8080) = %v", got)
	}
}

// strictGuard gives the fixture the server's default throttling with a
// clock the test moves, and counts what the Guard logs.
func strictGuard(f *fixture) (*throttle.Guard, *logCount, *time.Time) {
	lc := &logCount{}
	g := throttle.NewGuard(throttle.Default, slog.New(lc))
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	g.Now = func() time.Time { return now }
	g.Observe(f.srv.Metrics.AuthFailure, f.srv.Metrics.AuthThrottled)
	f.srv.Guard = g
	return g, lc, &now
}

// logCount is a slog handler that keeps the records' texts.
type logCount struct {
	mu    sync.Mutex
	lines []string
}

func (l *logCount) Enabled(context.Context, slog.Level) bool { return true }
func (l *logCount) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logCount) WithGroup(string) slog.Handler            { return l }
func (l *logCount) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "level=%s msg=%q", r.Level, r.Message)
	r.Attrs(func(a slog.Attr) bool { fmt.Fprintf(&b, " %s=%v", a.Key, a.Value); return true })
	l.mu.Lock()
	l.lines = append(l.lines, b.String())
	l.mu.Unlock()
	return nil
}

func (l *logCount) matching(sub ...string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
next:
	for _, line := range l.lines {
		for _, s := range sub {
			if !strings.Contains(line, s) {
				continue next
			}
		}
		n++
	}
	return n
}

// TestB7_BasicThrottled: wrong line passwords are answered 401 five times,
// then 429 with Retry-After without looking at the password (the right
// one too); one log line per key; after the delay the right password
// works and clears the count.
func TestB7_BasicThrottled(t *testing.T) {
	f := start(t)
	_, lc, now := strictGuard(f)
	press := func(auth string) reply {
		return f.do("POST", "/api/v1/lines/1001/keys", auth, `{"key":"Exit"}`)
	}
	for i := 1; i <= 5; i++ {
		if r := press(fmt.Sprintf("1001:guess%d", i)); r.status != 401 {
			t.Fatalf("guess %d: %d %s, want 401", i, r.status, r.body)
		}
	}
	// The 6th failure is counted and starts the delay.
	if r := press("1001:guess6"); r.status != 401 {
		t.Fatalf("guess 6: %d, want 401", r.status)
	}
	for _, auth := range []string{"1001:guess7", "1001:pw1001", "admin:" + token} {
		r := press(auth)
		if r.status != 429 || r.errorOf().Code != "too_many_attempts" || r.header.Get("Retry-After") != "1" {
			t.Errorf("%s while blocked: %d %q %s, want 429 with Retry-After 1", auth, r.status, r.header.Get("Retry-After"), r.body)
		}
	}
	// (The source key blocks every account from this address: the
	// interop test shows another address with another account served.)
	if n := lc.matching(`msg="authentication failed"`, "kind=http", "account=1001", "reason=wrong password", "key=acct:1001"); n != 1 {
		t.Errorf("%d log lines for key acct:1001, want 1 (once per interval):\n%s", n, strings.Join(lc.lines, "\n"))
	}
	if n := lc.matching(`msg="authentication failed"`, "kind=http", "key=src:127.0.0.1"); n != 1 {
		t.Errorf("%d log lines for key src:127.0.0.1, want 1", n)
	}
	// After the delay: the right password works and forgets the failures.
	*now = now.Add(1100 * time.Millisecond)
	if r := press("1001:pw1001"); r.status != 200 {
		t.Fatalf("right password after the delay: %d %s", r.status, r.body)
	}
	if r := press("1001:wrong-again"); r.status != 401 {
		t.Errorf("a failure after a success: %d, want 401 (count cleared)", r.status)
	}
	// The admin token guessed as Bearer counts against account "admin"
	// (a window later, when the address's failures are forgotten).
	*now = now.Add(11 * time.Minute)
	for i := 0; i < 6; i++ {
		f.do("GET", "/api/v1/alarms", "bad", "")
	}
	if r := f.do("GET", "/api/v1/alarms", "bad", ""); r.status != 429 {
		t.Errorf("Bearer guesses: %d, want 429", r.status)
	}
	if n := lc.matching(`msg="authentication failed"`, "kind=http", "account=admin", "reason=wrong token"); n == 0 {
		t.Errorf("no log line for the admin token guesses:\n%s", strings.Join(lc.lines, "\n"))
	}
	m := metricsOf(f)
	for _, want := range []string{
		`callbackd_auth_failures_total{kind="http",reason="wrong password"} 7`, // 6 guesses, 1 after the success
		`callbackd_auth_failures_total{kind="http",reason="wrong token"} 6`,
		`callbackd_auth_throttled_total{kind="http"} 4`, // 3 while 1001 was blocked, 1 Bearer
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func metricsOf(f *fixture) string {
	rec := httptest.NewRecorder()
	f.srv.Metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}

// TestB7_ReadsNeedCredentials: registrations, call-back requests, alarms
// and events need the admin token, or a line's credentials for its own
// data; the directory and screens stay open.
func TestB7_ReadsNeedCredentials(t *testing.T) {
	f := start(t)
	for _, p := range []string{"/api/v1/registrations", "/api/v1/callbacks", "/api/v1/callbacks/1", "/api/v1/alarms", "/api/v1/events", "/api/v1/events?line=1001"} {
		if r := f.do("GET", p, "", ""); r.status != 401 || !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Basic ") {
			t.Errorf("GET %s without credentials: %d %q", p, r.status, r.header.Get("WWW-Authenticate"))
		}
	}
	for _, p := range []string{"/api/v1/alarms", "/api/v1/events", "/api/v1/events?line=1002"} {
		if r := f.do("GET", p, "1001:pw1001", ""); r.status != 403 {
			t.Errorf("GET %s as line 1001: %d, want 403", p, r.status)
		}
	}
	for _, p := range []string{"/api/v1/status", "/api/v1/lines", "/api/v1/lines/1001", "/api/v1/lines/1001/screen", "/api/v1/params", "/api/v1/log", "/api/v1/ui/de"} {
		if r := f.do("GET", p, "", ""); r.status != 200 {
			t.Errorf("GET %s: %d, want 200 (open)", p, r.status)
		}
	}
	// A line sees the requests it is caller or callee of; the admin all.
	for _, auth := range []string{"admin", "1002:pw1002"} {
		if r := f.do("GET", "/api/v1/callbacks", auth, ""); r.status != 200 {
			t.Errorf("GET /api/v1/callbacks as %s: %d %s", auth, r.status, r.body)
		}
	}
	req := engine.Request{A: "1001", B: "1002"}
	if !(who{admin: true}).mayRead(req) || !(who{dn: "1001"}).mayRead(req) || !(who{dn: "1002"}).mayRead(req) || (who{dn: "1003"}).mayRead(req) {
		t.Error("mayRead: want the admin, the caller and the callee only")
	}
	if r := f.do("GET", "/api/v1/registrations", "1001:pw1001", ""); r.status != 200 {
		t.Errorf("1001's own registrations: %d %s", r.status, r.body)
	}
}

// TestB7_EventStreamCap: over the cap per source a stream gets 503 with
// Retry-After and the connection closed; a stream that ends frees its slot.
func TestB7_EventStreamCap(t *testing.T) {
	f := start(t)
	a := New(Deps{Server: f.srv, Token: token, OpenAPI: OpenAPI(), Started: time.Now(), MaxStreams: 3, MaxStreamsPerSource: 2})
	mux := http.NewServeMux()
	a.Register(mux)
	hs := httptest.NewServer(mux)
	defer hs.Close()
	open := func() (*http.Response, context.CancelFunc) {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "GET", hs.URL+"/api/v1/events?line=1001", nil)
		req.SetBasicAuth("1001", "pw1001")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return res, cancel
	}
	var cancels []context.CancelFunc
	defer func() {
		for _, c := range cancels {
			c()
		}
	}()
	for i := 0; i < 2; i++ {
		res, cancel := open()
		cancels = append(cancels, cancel)
		if res.StatusCode != 200 {
			t.Fatalf("stream %d: %d", i+1, res.StatusCode)
		}
		bufio.NewReader(res.Body).ReadString('\n') // it is served
	}
	res, cancel := open()
	b, _ := io.ReadAll(res.Body)
	cancel()
	if res.StatusCode != 503 || res.Header.Get("Retry-After") != "5" || !res.Close || !strings.Contains(string(b), "too_many_streams") {
		t.Fatalf("third stream from one address: %d Retry-After %q close %v %s", res.StatusCode, res.Header.Get("Retry-After"), res.Close, b)
	}
	// One ends: its slot is free again.
	cancels[0]()
	deadline := time.Now().Add(5 * time.Second)
	for {
		res, cancel := open()
		cancels = append(cancels, cancel)
		if res.StatusCode == 200 {
			break
		}
		res.Body.Close()
		if time.Now().After(deadline) {
			t.Fatalf("a slot was not freed when a stream ended: %d", res.StatusCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestB7_APIRefusesBodyWithoutType: the API alone (without Protect) also
// refuses a body that is not declared JSON, before it changes anything.
func TestB7_APIRefusesBodyWithoutType(t *testing.T) {
	f := start(t)
	req, _ := http.NewRequest("POST", f.url+"/api/v1/lines/1001/keys", strings.NewReader(`{"key":"CallBack"}`))
	req.SetBasicAuth("1001", "pw1001")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 415 {
		t.Errorf("key press without Content-Type: %d, want 415", res.StatusCode)
	}
	if r := f.do("GET", "/api/v1/lines/1001/screen", "", ""); !strings.Contains(r.body, `"kind": "None"`) {
		t.Errorf("the screen changed: %s", r.body)
	}
}
