package interop

// Issue 12 ("Safe to expose", B7), the HTTP side, through the real binary:
// cross-site key presses from another site's page in Chromium, a foreign
// Host (DNS rebinding), the debug endpoints off the main listener, reads
// behind credentials, JSON-only bodies, HTTP Basic guessing throttled with
// its fail2ban line and metrics, and the cap on event streams.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// httpFrom is an HTTP client whose connections come from the loopback
// address src (127.0.0.x): another "machine" for the server's per-source
// throttling and caps.
func httpFrom(src string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

// b7Request is one HTTP request to the server: auth is "" (none), "admin"
// (the token) or "DN:PASSWORD"; hdr are more headers, name then value.
func (s *server) b7Request(t *testing.T, c *http.Client, method, path, auth, body string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+s.HTTP+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case auth == "admin":
		req.Header.Set("Authorization", "Bearer "+apiToken)
	case auth != "":
		u, p, _ := strings.Cut(auth, ":")
		req.SetBasicAuth(u, p)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if strings.EqualFold(hdr[i], "Host") {
			req.Host = hdr[i+1]
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	if c == nil {
		c = http.DefaultClient
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

// screenKind is line dn's screen kind, as the API shows it.
func (s *server) screenKind(t *testing.T, dn string) string {
	t.Helper()
	code, body := s.api(t, "GET", "/api/v1/lines/"+dn+"/screen", "")
	var sc struct{ Kind string }
	if code != 200 || json.Unmarshal([]byte(body), &sc) != nil {
		t.Fatalf("GET screen of %s: %d %s", dn, code, body)
	}
	return sc.Kind
}

// waitLogCount waits until the log after mark has at least n lines
// matching re, and returns them.
func (s *server) waitLogCount(t *testing.T, mark int, re string, n int, d time.Duration) []string {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(d)
	for {
		got := rx.FindAllString(s.cbLogSince(mark), -1)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d server log lines matching %q within %v, want %d:\n%s", len(got), re, d, n, strings.Join(got, "\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// attackerPage is another site's page: it tries to press line dn's keys on
// target and to read the API, with the visitor's browser, and leaves what
// its script could see in window.attackResults.
func attackerPage(target, dn string) string {
	key := target + "/api/v1/lines/" + dn + "/keys"
	h := func(s string) string { return html.EscapeString(s) }
	return `<!doctype html><meta charset="utf-8"><title>You won a prize</title>
<h1>You won a prize</h1>
<iframe name="f1"></iframe><iframe name="f2"></iframe><iframe name="f3"></iframe>
<form id="plain" method="POST" enctype="text/plain" target="f1" action="` + h(key) + `"><input type="hidden" name='{"key":"CallBack","x":"' value='"}'></form>
<form id="empty" method="POST" target="f2" action="` + h(target+"/api/v1/callbacks/1/dial") + `"></form>
<form id="activate" method="POST" enctype="text/plain" target="f3" action="` + h(target+"/api/v1/callbacks") + `"><input type="hidden" name='{"caller":"` + dn + `","callee":"1002","x":"' value='"}'></form>
<script>
const T = ` + strconv.Quote(target) + `, KEY = ` + strconv.Quote(key) + `;
window.attackResults = {};
async function attempt(name, f) {
  try { window.attackResults[name] = String(await f()); } catch (e) { window.attackResults[name] = 'error: ' + e.message; }
}
function submitted(form, frame) {
  return new Promise((resolve) => {
    const fr = document.querySelector('iframe[name="' + frame + '"]');
    const timer = setTimeout(() => resolve('timeout'), 5000);
    fr.onload = () => { clearTimeout(timer); resolve('loaded'); };
    document.getElementById(form).submit();
  });
}
(async () => {
  await attempt('fetch no-cors text/plain', async () => (await fetch(KEY, { method: 'POST', mode: 'no-cors', credentials: 'include', body: '{"key":"CallBack"}' })).type);
  await attempt('fetch no-cors without type', async () => (await fetch(KEY, { method: 'POST', mode: 'no-cors', credentials: 'include', body: new Blob(['{"key":"CallBack"}']) })).type);
  await attempt('fetch cors json', async () => (await fetch(KEY, { method: 'POST', credentials: 'include', headers: { 'Content-Type': 'application/json' }, body: '{"key":"CallBack"}' })).status);
  await attempt('fetch no-cors activate', async () => (await fetch(T + '/api/v1/callbacks', { method: 'POST', mode: 'no-cors', credentials: 'include', body: '{"caller":"` + dn + `","callee":"1002"}' })).type);
  await attempt('sendBeacon', async () => navigator.sendBeacon(KEY, '{"key":"CallBack"}'));
  await attempt('form text/plain', () => submitted('plain', 'f1'));
  await attempt('form empty dial', () => submitted('empty', 'f2'));
  await attempt('form text/plain activate', () => submitted('activate', 'f3'));
  await attempt('read registrations', async () => (await (await fetch(T + '/api/v1/registrations', { credentials: 'include' })).text()).slice(0, 300));
  await attempt('read events', async () => (await fetch(T + '/api/v1/events?line=` + dn + `', { credentials: 'include' })).status);
  window.attackDone = true;
})();
</script>`
}

// TestB7_HTTPCrossSiteKeyPress: Chromium, logged in to line 1001's console
// with the browser's own credential cache, visits pages of two other
// origins that fetch, post forms and beacon to press 1001's keys and
// activate a call back: one on another port of the same address (another
// origin but the same site, so the browser sends it the cached Basic
// credentials: the attack of the issue) and one on another address
// (another site). Every such write reaches the server and is refused (403
// cross_site), 1001's screen and the call-back requests stay unchanged,
// and the pages read nothing. Then CallBack pressed on the console itself
// works.
func TestB7_HTTPCrossSiteKeyPress(t *testing.T) {
	chromium, root, out := browserSetup(t, "browser-b7")

	s := startServer(t, noOffer+demoLines)
	s.register(t, "1001", callPorts(t, 1)[0])
	target := "http://" + s.HTTP

	// The other origins: another port of this address (same site) and
	// another loopback address (another site: an IP address is its own).
	var origins []string
	for _, addr := range []string{"127.0.0.1:0", "127.0.0.2:0"} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("listen on %s: %v", addr, err)
		}
		page := attackerPage(target, "1001")
		evil := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, page)
		})}
		go evil.Serve(ln)
		t.Cleanup(func() { evil.Close() })
		origins = append(origins, "http://"+ln.Addr().String())
	}

	if k := s.screenKind(t, "1001"); k != "None" {
		t.Fatalf("1001's screen is %s before the test, want None", k)
	}
	mark := s.cbMark()
	script := startBrowserScriptFile(t, root, "crosssite.mjs", []string{
		"CALLBACKD_URL=" + target, "ATTACKER_URLS=" + origins[0] + "/," + origins[1] + "/",
		"DN=1001", "PASSWORD=demo1001", "OUT_DIR=" + out, "CHROMIUM=" + chromium,
		fmt.Sprintf("STEP_TIMEOUT=%d", (browserStep / 2).Milliseconds()),
		fmt.Sprintf("GO_TIMEOUT=%d", (2 * browserStep).Milliseconds()),
	})
	script.expect(t, "CONSOLE live", browserReady)
	var results map[string]map[string]string
	if err := json.Unmarshal([]byte(script.expect(t, "ATTACKED ", browserStep)), &results); err != nil {
		t.Fatalf("crosssite.mjs: ATTACKED: %v", err)
	}
	t.Logf("what the attackers' pages saw: %v", results)

	// Every write each page sent reached the server and was refused as
	// cross-site: two fetches and a beacon at the keys, a fetch and a form
	// at /callbacks, a form at the keys, an empty form at .../dial. (The
	// CORS fetch with a JSON type is stopped by the browser: its preflight
	// gets no CORS answer.)
	for i, o := range origins {
		refused := s.waitLogCount(t, mark, `msg="http request refused" status=403 reason="Origin `+regexp.QuoteMeta(o)+`"[^\n]*`, 7, browserStep)
		paths := map[string]int{}
		withCredentials := 0
		for _, l := range refused {
			paths[regexp.MustCompile(`path=(\S+)`).FindStringSubmatch(l)[1]]++
			if strings.HasSuffix(l, "credentials=true") {
				withCredentials++
			}
		}
		if paths["/api/v1/lines/1001/keys"] < 4 || paths["/api/v1/callbacks"] < 2 || paths["/api/v1/callbacks/1/dial"] < 1 {
			t.Errorf("%s: refused writes by path: %v, want 4 key presses, 2 activations, 1 dial", o, paths)
		}
		// The same-site page's requests carried the user's credentials:
		// only the origin check stood between them and the keys.
		if i == 0 && withCredentials == 0 {
			t.Errorf("%s (same site): no refused request carried credentials; the test does not show the attack:\n%s", o, strings.Join(refused, "\n"))
		}
		t.Logf("%s: %d writes refused, %d with the user's credentials; e.g. %s", o, len(refused), withCredentials, refused[0])
	}

	// Nothing was pressed, nothing activated.
	if k := s.screenKind(t, "1001"); k != "None" {
		t.Errorf("1001's screen is %s after the attack, want None (a key was pressed)", k)
	}
	if code, body := s.api(t, "GET", "/api/v1/callbacks", ""); code != 200 || strings.TrimSpace(body) != "[]" {
		t.Errorf("call-back requests after the attack: %d %s, want []", code, body)
	}
	// The pages read nothing: CORS keeps the answers from them.
	for o, r := range results {
		for _, k := range []string{"read registrations", "read events"} {
			if !strings.HasPrefix(r[k], "error:") {
				t.Errorf("%s read %s: %q", o, k, r[k])
			}
		}
	}
	if strings.Contains(fmt.Sprint(results), "contact") {
		t.Errorf("registrations leaked to a page: %v", results)
	}

	// The console on the server's own origin still presses keys.
	if _, err := script.stdin.Write([]byte("GO\n")); err != nil {
		t.Fatal(err)
	}
	kind := script.expect(t, "PRESSED ", browserStep)
	if api := s.screenKind(t, "1001"); kind == "None" || api != kind {
		t.Errorf("after CallBack on the console: the console shows %s, the API %s; want the same screen, not None", kind, api)
	}
	select {
	case <-script.done:
	case <-time.After(browserStep):
		t.Fatal("crosssite.mjs did not exit")
	}
	if script.err != nil {
		t.Fatalf("crosssite.mjs: %v\n%s", script.err, cbTail(script.stderr.String(), 8000))
	}
}

// TestB7_HTTPForeignHost: requests whose Host is not the server's (a DNS
// rebinding page's name) are refused with 421, whatever the credentials;
// /healthz answers any Host.
func TestB7_HTTPForeignHost(t *testing.T) {
	s := startServer(t, demoLines)
	_, port, _ := net.SplitHostPort(s.HTTP)
	for _, host := range []string{"rebind.attacker.example:" + port, "rebind.attacker.example", "127.0.0.1:1", "localhost.attacker.example:" + port} {
		for _, p := range []string{"/api/v1/registrations", "/api/v1/alarms", "/api/v1/lines", "/api/v1/status", "/phone/1001", "/admin", "/metrics", "/debug/vars"} {
			res, body := s.b7Request(t, nil, "GET", p, "admin", "", "Host", host)
			if res.StatusCode != http.StatusMisdirectedRequest || !strings.Contains(body, `"code": "misdirected"`) {
				t.Errorf("GET %s with Host %s: %d %.200s, want 421 misdirected", p, host, res.StatusCode, body)
			}
		}
		if res, body := s.b7Request(t, nil, "GET", "/healthz", "", "", "Host", host); res.StatusCode != 200 || body != "ok\n" {
			t.Errorf("GET /healthz with Host %s: %d %q", host, res.StatusCode, body)
		}
	}
	// The server's own names are served.
	for _, host := range []string{s.HTTP, "localhost:" + port, "[::1]:" + port, "LOCALHOST:" + port} {
		if res, body := s.b7Request(t, nil, "GET", "/api/v1/registrations", "admin", "", "Host", host); res.StatusCode != 200 {
			t.Errorf("GET with Host %s: %d %.200s, want 200", host, res.StatusCode, body)
		}
	}

	// A configured name, and nothing else.
	s2 := startServerKeys(t, "min_expires = 1", `hosts = ["pbx.example.com"]`, demoLines)
	if res, _ := s2.b7Request(t, nil, "GET", "/api/v1/status", "", "", "Host", "pbx.example.com:8080"); res.StatusCode != 200 {
		t.Errorf("http.hosts pbx.example.com: Host pbx.example.com:8080 got %d", res.StatusCode)
	}
	if res, _ := s2.b7Request(t, nil, "GET", "/api/v1/status", "", ""); res.StatusCode != 421 {
		t.Errorf("http.hosts set: the default 127.0.0.1 got %d, want 421 (the list replaces the default)", res.StatusCode)
	}
}

// TestB7_HTTPDebugEndpoints: /debug/pprof and /debug/vars are not on the
// main listener; with http.debug_listen they are served there only.
func TestB7_HTTPDebugEndpoints(t *testing.T) {
	s := startServer(t, demoLines)
	for _, p := range []string{"/debug/pprof/", "/debug/pprof/goroutine?debug=1", "/debug/pprof/heap", "/debug/vars", "/debug/pprof/profile?seconds=1"} {
		if res, body := s.b7Request(t, nil, "GET", p, "admin", ""); res.StatusCode != 404 {
			t.Errorf("GET %s on the main listener: %d %.100s, want 404", p, res.StatusCode, body)
		}
	}
	if strings.Contains(s.Log(), "HTTP debug listening") {
		t.Error("a debug listener without http.debug_listen")
	}

	dbg := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	s2 := startServerKeys(t, "min_expires = 1", `debug_listen = "`+dbg+`"`, demoLines)
	s2.cbWaitLog(t, 0, regexp.QuoteMeta(`msg="HTTP debug listening" addr=`+dbg))
	get := func(host, p string, hdr ...string) (int, string) {
		req, _ := http.NewRequest("GET", "http://"+dbg+p, nil)
		if len(hdr) == 2 {
			req.Host = hdr[1]
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if code, body := get(dbg, "/debug/vars"); code != 200 || !strings.Contains(body, `"memstats"`) {
		t.Errorf("GET /debug/vars on debug_listen: %d %.100s", code, body)
	}
	if code, body := get(dbg, "/debug/pprof/goroutine?debug=1"); code != 200 || !strings.Contains(body, "goroutine profile: total") {
		t.Errorf("GET /debug/pprof/goroutine on debug_listen: %d %.100s", code, body)
	}
	if code, _ := get(dbg, "/debug/vars", "Host", "rebind.attacker.example"); code != 421 {
		t.Errorf("debug listener with a foreign Host: %d, want 421", code)
	}
	if code, _ := get(dbg, "/api/v1/status"); code != 404 {
		t.Errorf("the API on the debug listener: %d, want 404", code)
	}
	if res, _ := s2.b7Request(t, nil, "GET", "/debug/vars", "", ""); res.StatusCode != 404 {
		t.Errorf("/debug/vars on the main listener with debug_listen set: %d", res.StatusCode)
	}
}

// TestB7_HTTPReadsNeedAuth: registrations (contacts, source addresses),
// call backs, alarms and events need the admin token; a line's credentials
// see that line's own; the directory and screens stay open.
func TestB7_HTTPReadsNeedAuth(t *testing.T) {
	s := startServer(t, demoLines)
	ports := callPorts(t, 2)
	s.register(t, "1001", ports[0])
	s.register(t, "1002", ports[1])
	for _, p := range []string{"/api/v1/registrations", "/api/v1/callbacks", "/api/v1/alarms", "/api/v1/events", "/api/v1/events?line=1001"} {
		res, body := s.b7Request(t, nil, "GET", p, "", "")
		if res.StatusCode != 401 || !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), `Basic realm="callbackd"`) || strings.Contains(body, "127.0.0.1") {
			t.Errorf("GET %s without credentials: %d %q %.200s", p, res.StatusCode, res.Header.Get("WWW-Authenticate"), body)
		}
	}
	for _, p := range []string{"/api/v1/alarms", "/api/v1/events", "/api/v1/events?line=1002"} {
		if res, body := s.b7Request(t, nil, "GET", p, "1001:demo1001", ""); res.StatusCode != 403 {
			t.Errorf("GET %s as 1001: %d %.200s, want 403", p, res.StatusCode, body)
		}
	}
	var regs []struct{ DN, Contact, Source string }
	res, body := s.b7Request(t, nil, "GET", "/api/v1/registrations", "1001:demo1001", "")
	if res.StatusCode != 200 || json.Unmarshal([]byte(body), &regs) != nil || len(regs) != 1 || regs[0].DN != "1001" {
		t.Errorf("1001's registrations as 1001: %d %s, want its own binding only", res.StatusCode, body)
	}
	res, body = s.b7Request(t, nil, "GET", "/api/v1/registrations", "admin", "")
	if res.StatusCode != 200 || json.Unmarshal([]byte(body), &regs) != nil || len(regs) != 2 {
		t.Errorf("registrations as admin: %d %s, want both", res.StatusCode, body)
	}
	for _, p := range []string{"/api/v1/status", "/api/v1/lines", "/api/v1/lines/1001/screen", "/api/v1/params", "/phone/1001", "/admin", "/metrics", "/healthz"} {
		if res, body := s.b7Request(t, nil, "GET", p, "", ""); res.StatusCode != 200 {
			t.Errorf("GET %s: %d %.200s, want 200 (open)", p, res.StatusCode, body)
		}
	}
	// The line's own event stream with its credentials.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+s.HTTP+"/api/v1/events?line=1001", nil)
	req.SetBasicAuth("1001", "demo1001")
	ev, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Body.Close()
	line, _ := bufio.NewReader(ev.Body).ReadString('\n')
	if ev.StatusCode != 200 || line != "retry: 1000\n" {
		t.Errorf("1001's events as 1001: %d %q", ev.StatusCode, line)
	}
}

// TestB7_HTTPWriteNeedsJSON: a key press with the right credentials but a
// body not declared application/json is refused (415) and presses nothing;
// declared, it works.
func TestB7_HTTPWriteNeedsJSON(t *testing.T) {
	s := startServer(t, noOffer+demoLines)
	for _, ct := range []string{"", "text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"} {
		res, body := s.b7Request(t, nil, "POST", "/api/v1/lines/1001/keys", "1001:demo1001", `{"key":"CallBack"}`, "Content-Type", ct)
		if res.StatusCode != 415 || !strings.Contains(body, `"code": "unsupported_media_type"`) {
			t.Errorf("Content-Type %q: %d %s, want 415", ct, res.StatusCode, body)
		}
	}
	if k := s.screenKind(t, "1001"); k != "None" {
		t.Fatalf("a refused key press changed the screen to %s", k)
	}
	res, body := s.b7Request(t, nil, "POST", "/api/v1/lines/1001/keys", "1001:demo1001", `{"key":"CallBack"}`, "Content-Type", "application/json")
	if res.StatusCode != 200 || s.screenKind(t, "1001") == "None" {
		t.Errorf("key press with application/json: %d %s", res.StatusCode, body)
	}
	// No body, no type needed (Dial on a request that is not there: 404).
	if res, body := s.b7Request(t, nil, "POST", "/api/v1/callbacks/9/dial", "admin", ""); res.StatusCode != 404 {
		t.Errorf("POST .../dial without a body: %d %s, want 404 (it got past the type check)", res.StatusCode, body)
	}
}

// TestB7_HTTPBasicBruteForce: guessing line 1001's password over HTTP Basic
// (as fast as the test can): 5 free wrong answers, the 6th starts a delay,
// and from then on every try gets 429 with Retry-After without its
// password being looked at (the right one too). One fail2ban line per key
// (source, account) for the whole run, and the metrics count failures and
// refusals. Meanwhile another address with another line is served.
func TestB7_HTTPBasicBruteForce(t *testing.T) {
	s := startServer(t, demoLines)
	mark := s.cbMark()
	const tries = 40
	codes := map[int]int{}
	start := time.Now()
	var last *http.Response
	for i := 0; i < tries; i++ {
		res, _ := s.b7Request(t, nil, "POST", "/api/v1/lines/1001/keys", fmt.Sprintf("1001:guess%04d", i), `{"key":"Exit"}`, "Content-Type", "application/json")
		codes[res.StatusCode]++
		last = res
	}
	took := time.Since(start)
	t.Logf("%d guesses in %v: %v", tries, took, codes)
	if codes[401] != 6 || codes[429] != tries-6 {
		t.Errorf("answers %v, want 6 x 401 then %d x 429", codes, tries-6)
	}
	if ra, err := strconv.Atoi(last.Header.Get("Retry-After")); err != nil || ra < 1 {
		t.Errorf("429 with Retry-After %q", last.Header.Get("Retry-After"))
	}
	// The right password while blocked: refused unchecked.
	if res, body := s.b7Request(t, nil, "POST", "/api/v1/lines/1001/keys", "1001:demo1001", `{"key":"Exit"}`, "Content-Type", "application/json"); res.StatusCode != 429 {
		t.Errorf("the right password during the lockout: %d %s, want 429", res.StatusCode, body)
	}
	// Another address, another line: served.
	if res, body := s.b7Request(t, httpFrom("127.0.0.2"), "POST", "/api/v1/lines/1002/keys", "1002:demo1002", `{"key":"Exit"}`, "Content-Type", "application/json"); res.StatusCode != 200 {
		t.Errorf("1002 from 127.0.0.2 during 1001's lockout: %d %s, want 200", res.StatusCode, body)
	}
	// The log: one line per key for the run, fail2ban-readable.
	fail := `level=WARN msg="authentication failed" kind=http source=127.0.0.1 account=1001 reason="wrong password" `
	s.cbWaitLog(t, mark, regexp.QuoteMeta(fail)+`key=src:127\.0\.0\.1 `)
	s.cbWaitLog(t, mark, regexp.QuoteMeta(fail)+`key=acct:1001 `)
	if n := strings.Count(s.cbLogSince(mark), `msg="authentication failed"`); n != 2 {
		t.Errorf("%d log lines for %d guesses, want 2 (one per source and per account per interval):\n%s", n, tries, s.cbLogSince(mark))
	}
	m := metricsText(t, s)
	for _, want := range []string{
		`callbackd_auth_failures_total{kind="http",reason="wrong password"} 6`,
		fmt.Sprintf(`callbackd_auth_throttled_total{kind="http"} %d`, tries-6+1),
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestB7_HTTPEventStreamCap: with http.max_event_streams 4 and 2 per
// source, a third stream from one address and a fifth in total get 503
// with Retry-After; a stream that ends frees its slot.
func TestB7_HTTPEventStreamCap(t *testing.T) {
	s := startServerKeys(t, "min_expires = 1", "max_event_streams = 4\nmax_event_streams_per_source = 2", demoLines)
	type stream struct {
		res    *http.Response
		cancel context.CancelFunc
	}
	var mu sync.Mutex
	var open []stream
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, st := range open {
			st.cancel()
			st.res.Body.Close()
		}
	})
	try := func(src string) (int, string, stream) {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+s.HTTP+"/api/v1/events", nil)
		req.Header.Set("Authorization", "Bearer "+apiToken)
		c := httpFrom(src)
		c.Timeout = 0
		res, err := c.Do(req)
		if err != nil {
			cancel()
			t.Fatalf("events from %s: %v", src, err)
		}
		st := stream{res, cancel}
		if res.StatusCode == 200 {
			bufio.NewReader(res.Body).ReadString('\n')
			mu.Lock()
			open = append(open, st)
			mu.Unlock()
			return 200, "", st
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		cancel()
		return res.StatusCode, res.Header.Get("Retry-After") + " " + string(b), st
	}
	if code, _, _ := try("127.0.0.1"); code != 200 {
		t.Fatalf("first stream from 127.0.0.1: %d", code)
	}
	if code, _, _ := try("127.0.0.1"); code != 200 {
		t.Fatalf("second stream from 127.0.0.1: %d", code)
	}
	if code, body, _ := try("127.0.0.1"); code != 503 || !strings.HasPrefix(body, "5 ") || !strings.Contains(body, "too_many_streams") {
		t.Errorf("third stream from 127.0.0.1: %d %s, want 503 too_many_streams with Retry-After 5", code, body)
	}
	for i := 0; i < 2; i++ {
		if code, body, _ := try("127.0.0.2"); code != 200 {
			t.Fatalf("stream %d from 127.0.0.2: %d %s", i+1, code, body)
		}
	}
	if code, body, _ := try("127.0.0.3"); code != 503 {
		t.Errorf("a fifth stream in total: %d %s, want 503", code, body)
	}
	// One ends: 127.0.0.3 gets its slot.
	mu.Lock()
	open[0].cancel()
	mu.Unlock()
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, _, _ := try("127.0.0.3")
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no slot freed when a stream ended: %d", code)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestB7_HTTPEventStreamFlood_Measure (CALLBACKD_B7_MEASURE=1; a
// measurement for the note, not a check of its own): 5,000
// event-stream requests with the admin token from 50 loopback addresses,
// 200 at a time, against the default caps (100, 10 per address). It
// reports how many were served and refused, and the server's RSS and
// goroutines while the served ones are held and after they end.
func TestB7_HTTPEventStreamFlood_Measure(t *testing.T) {
	if os.Getenv("CALLBACKD_B7_MEASURE") == "" {
		t.Skip("set CALLBACKD_B7_MEASURE=1 to measure 5,000 event streams against the caps")
	}
	dbg := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	s := startServerKeys(t, "min_expires = 1", `debug_listen = "`+dbg+`"`, demoLines)
	pid := s.cmd.Process.Pid
	measure := func(when string) int {
		st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		rss := regexp.MustCompile(`VmRSS:\s+(\d+) kB`).FindSubmatch(st)
		res, err := http.Get("http://" + dbg + "/debug/pprof/goroutine?debug=1")
		if err != nil {
			t.Fatal(err)
		}
		first, _ := bufio.NewReader(res.Body).ReadString('\n')
		res.Body.Close()
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		t.Logf("%s: RSS %s kB, %s, %d open files", when, rss[1], strings.TrimSpace(first), len(fds))
		n, _ := strconv.Atoi(strings.TrimPrefix(strings.TrimSpace(first), "goroutine profile: total "))
		return n
	}
	idle := measure("idle")

	const total, sources, parallel = 5000, 50, 200
	codes := map[int]int{}
	var mu sync.Mutex
	var held []func()
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < total; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			ctx, cancel := context.WithCancel(context.Background())
			req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+s.HTTP+"/api/v1/events", nil)
			req.Header.Set("Authorization", "Bearer "+apiToken)
			c := httpFrom(fmt.Sprintf("127.0.1.%d", 1+i%sources))
			c.Timeout = 0
			res, err := c.Do(req)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				codes[0]++
				cancel()
				return
			}
			codes[res.StatusCode]++
			if res.StatusCode == 200 {
				held = append(held, func() { cancel(); res.Body.Close() })
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			cancel()
		}(i)
	}
	wg.Wait()
	t.Logf("%d stream requests from %d addresses in %v: %v (0: connection error)", total, sources, time.Since(start).Round(time.Millisecond), codes)
	measure(fmt.Sprintf("%d streams held", len(held)))
	if codes[200] != 100 || codes[503] != total-100 {
		t.Errorf("served %d, refused %d; want 100 and %d", codes[200], codes[503], total-100)
	}
	for _, f := range held {
		f()
	}
	// The server notices the closed streams: back to its idle goroutines.
	deadline := time.Now().Add(10 * time.Second)
	for measure("streams closed") > idle+2 {
		if time.Now().After(deadline) {
			t.Fatal("the streams' goroutines did not end within 10 s")
		}
		time.Sleep(200 * time.Millisecond)
	}
}
