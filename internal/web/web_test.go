package web

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func get(t *testing.T, h http.Handler, method, target string, hdr ...string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, r *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestB4_HandlerServesPages: the console (the same page for every DN), the
// admin page and the assets, with their content types; anything else 404.
func TestB4_HandlerServesPages(t *testing.T) {
	h := Handler()
	for _, tc := range []struct {
		path, ctype, contains string
	}{
		{"/phone/1001", "text/html; charset=utf-8", `id="screen"`},
		{"/phone/123456789012345", "text/html; charset=utf-8", `id="softkeys"`},
		{"/admin", "text/html; charset=utf-8", `id="callbacks"`},
		{"/static/style.css", "text/css; charset=utf-8", "#screen"},
		{"/static/common.js", "text/javascript; charset=utf-8", "EventSource"},
		{"/static/phone.js", "text/javascript; charset=utf-8", "/keys"},
		{"/static/admin.js", "text/javascript; charset=utf-8", "sessionStorage"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			r := get(t, h, "GET", tc.path)
			b := body(t, r)
			if r.StatusCode != 200 {
				t.Fatalf("status %d, want 200: %s", r.StatusCode, b)
			}
			if ct := r.Header.Get("Content-Type"); ct != tc.ctype {
				t.Errorf("Content-Type %q, want %q", ct, tc.ctype)
			}
			if r.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Error("no X-Content-Type-Options: nosniff")
			}
			if !strings.Contains(b, tc.contains) {
				t.Errorf("body lacks %q", tc.contains)
			}
			if strings.HasSuffix(tc.ctype, "html; charset=utf-8") && !strings.Contains(r.Header.Get("Content-Security-Policy"), "default-src 'none'") {
				t.Errorf("page without the Content-Security-Policy: %q", r.Header.Get("Content-Security-Policy"))
			}
			// Revalidation with the ETag: 304, no body.
			etag := r.Header.Get("ETag")
			if etag == "" {
				t.Fatal("no ETag")
			}
			if r2 := get(t, h, "GET", tc.path, "If-None-Match", etag); r2.StatusCode != http.StatusNotModified {
				t.Errorf("If-None-Match: status %d, want 304", r2.StatusCode)
			}
			if r3 := get(t, h, "HEAD", tc.path); r3.StatusCode != 200 || body(t, r3) != "" {
				t.Errorf("HEAD: status %d", r3.StatusCode)
			}
		})
	}
	// Every DN gets the same page.
	if a, b := body(t, get(t, h, "GET", "/phone/1001")), body(t, get(t, h, "GET", "/phone/1004")); a != b {
		t.Error("/phone/1001 and /phone/1004 differ")
	}
}

func TestB4_HandlerUnknownPaths(t *testing.T) {
	h := Handler()
	for _, p := range []string{
		"/", "/phone", "/phone/", "/phone/abc", "/phone/1001/extra", "/phone/12*34", "/phone/1234567890123456",
		"/admin/", "/admin/x", "/static/", "/static/nope.js", "/static/../pages/phone.html", "/static/phone.html",
		"/pages/phone.html", "/api/v1/lines",
	} {
		r := get(t, h, "GET", p)
		switch r.StatusCode {
		case http.StatusNotFound:
		case http.StatusMovedPermanently, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
			// ServeMux cleans paths (".."): the target must be a 404 too.
			loc := r.Header.Get("Location")
			if r2 := get(t, h, "GET", loc); r2.StatusCode != http.StatusNotFound {
				t.Errorf("GET %s -> %s: status %d, want 404", p, loc, r2.StatusCode)
			}
		default:
			t.Errorf("GET %s: status %d, want 404", p, r.StatusCode)
		}
	}
	for _, m := range []string{"POST", "PUT", "DELETE"} {
		if r := get(t, h, m, "/admin"); r.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s /admin: status %d, want 405", m, r.StatusCode)
		}
	}
}

// TestB4_PagesSelfContained: the pages load only this server's assets (no
// CDN, no inline script or style, which the CSP would block), and every
// asset they name exists.
func TestB4_PagesSelfContained(t *testing.T) {
	h := Handler()
	ref := regexp.MustCompile(`(?:src|href)="([^"]*)"`)
	for _, p := range []string{"/phone/1001", "/admin"} {
		page := body(t, get(t, h, "GET", p))
		if strings.Contains(page, "<script>") || strings.Contains(page, "style=") || strings.Contains(page, "<style") {
			t.Errorf("%s has inline script or style", p)
		}
		for _, m := range ref.FindAllStringSubmatch(page, -1) {
			u := m[1]
			if !strings.HasPrefix(u, "/static/") {
				t.Errorf("%s refers to %q: only /static/ assets allowed", p, u)
				continue
			}
			if r := get(t, h, "GET", u); r.StatusCode != 200 {
				t.Errorf("%s refers to %s: status %d", p, u, r.StatusCode)
			}
		}
	}
	for _, f := range []string{"static/common.js", "static/phone.js", "static/admin.js", "static/style.css"} {
		b, err := files.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if regexp.MustCompile(`https?://|//[a-z0-9.-]+\.[a-z]{2,}/`).Match(b) {
			t.Errorf("%s refers to an external resource", f)
		}
	}
}

// TestB4_ElementIDs: the ids the browser test and integrators rely on.
func TestB4_ElementIDs(t *testing.T) {
	h := Handler()
	for p, ids := range map[string][]string{
		"/phone/1001": {"screen", "state", "softkeys", "status", "conn"},
		"/admin":      {"lines", "registrations", "callbacks", "params", "status", "alarms", "token", "charts", "chart-calls", "chart-open", "chart-notifications", "chart-failures"},
	} {
		page := body(t, get(t, h, "GET", p))
		for _, id := range ids {
			if strings.Count(page, `id="`+id+`"`) != 1 {
				t.Errorf("%s: want exactly one element with id %q", p, id)
			}
		}
	}
}

// The fake API itself answers as the contract says (so that what the pages
// are checked against is right).
func TestFakeAPIContract(t *testing.T) {
	f := newFakeAPI("tok")
	srv := httptest.NewServer(f.Handler())
	defer srv.Close()
	do := func(method, path, body string, hdr ...string) (int, map[string]any, http.Header) {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var m map[string]any
		json.NewDecoder(res.Body).Decode(&m)
		return res.StatusCode, m, res.Header
	}
	code, m, h := do("POST", "/api/v1/lines/1003/keys", `{"key":"CallBack"}`)
	if code != 401 || h.Get("WWW-Authenticate") != `Basic realm="callbackd"` || m["error"] == nil {
		t.Fatalf("unauthenticated key: %d %v %v", code, h, m)
	}
	req := func(u, p string) string {
		r, _ := http.NewRequest("GET", "/", nil)
		r.SetBasicAuth(u, p)
		return r.Header.Get("Authorization")
	}
	code, m, _ = do("POST", "/api/v1/lines/1003/keys", `{"key":"CallBack"}`, "Authorization", req("1003", "demo1003"))
	if code != 200 || m["kind"] != "Activated" || m["text"] != fakeActivatedDE {
		t.Fatalf("CallBack: %d %v", code, m)
	}
	code, m, _ = do("PUT", "/api/v1/params", `{"t3":"0s"}`, "Authorization", "Bearer tok")
	if e, _ := m["error"].(map[string]any); code != 422 || e["field"] != "t3" {
		t.Fatalf("bad t3: %d %v", code, m)
	}
}

// TestB4_ConsoleScriptFake runs test/browser/console.mjs (real chromium)
// against the pages served with the fake API. Opt-in
// (CALLBACKD_WEB_BROWSER=1): the test that counts is test/interop's
// TestBrowser, against the real server; this one checks the pages alone.
func TestB4_ConsoleScriptFake(t *testing.T) {
	if os.Getenv("CALLBACKD_WEB_BROWSER") == "" {
		t.Skip("set CALLBACKD_WEB_BROWSER=1 to run the console script with chromium against the fake API (needs chromium, node, test/browser/node_modules)")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	f := newFakeAPI("tok")
	mux := http.NewServeMux()
	mux.Handle("/api/", f.Handler())
	mux.Handle("/", Handler())
	srv := httptest.NewServer(f.logged(mux))
	defer srv.Close()

	out := filepath.Join(root, "test-output", "browser-fake")
	os.RemoveAll(out)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join(root, "test", "browser", "console.mjs"))
	cmd.Env = append(os.Environ(),
		"CALLBACKD_URL="+srv.URL, "A_DN=1003", "A_PASSWORD=demo1003", "B_DN=1002", "B_PASSWORD=demo1002", "ADMIN_TOKEN=tok",
		"EXPECT_ACTIVATED="+fakeActivatedDE,
		"EXPECT_AVAILABLE="+strings.ReplaceAll(regexp.QuoteMeta(fakeAvailableDE), "%s", `\d\d:\d\d \d\d\.\d\d\.\d{4}`),
		"OUT_DIR="+out, "STEP_TIMEOUT=10000")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	var lines []string
	for sc.Scan() {
		line := sc.Text()
		lines = append(lines, line)
		if line == "READY activated" {
			f.free()
			fmt.Fprintln(stdin, "GO")
		}
	}
	err = cmd.Wait()
	if err != nil {
		t.Fatalf("console.mjs: %v\nstdout: %q\nstderr:\n%s\nrequests: %q", err, lines, stderr.String(), f.requests())
	}
	if len(lines) != 3 || !strings.HasPrefix(lines[1], "AVAILABLE ") || lines[2] != "DONE None" {
		t.Errorf("console.mjs said %q", lines)
	}
	t.Logf("screenshots in %s\n%s", out, stderr.String())
}
