package interop

// The admin page's browser test (issue 18; docs/features.md B4, B7, F37): the real
// callbackd, SIPp making calls, and Debian's chromium driven by
// test/browser/admin.mjs (playwright-core) as the admin at a 1280x800
// window. Screenshots: test-output/browser-admin/ at the repository root.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// adminHistory reads GET /api/v1/history with the admin token.
func adminHistory(t *testing.T, s *server) (samples []struct {
	Calls        int64 `json:"calls"`
	OpenRequests int   `json:"open_requests"`
}) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+s.HTTP+"/api/v1/history", nil)
	req.Header.Set("Authorization", "Bearer "+apiToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var h struct {
		Samples []struct {
			Calls        int64 `json:"calls"`
			OpenRequests int   `json:"open_requests"`
		} `json:"samples"`
	}
	if res.StatusCode != 200 || json.NewDecoder(res.Body).Decode(&h) != nil {
		t.Fatalf("GET /api/v1/history: %d", res.StatusCode)
	}
	return h.Samples
}

// TestBrowser_F37_AdminPage: at 1280x800 the admin page hides no column,
// says "loading" before "none", shows an alarm's attributes, clears an old
// error after a good save, draws the last hour's calls and open requests
// from GET /api/v1/history, and a wrong token never gets a Basic challenge.
func TestBrowser_F37_AdminPage(t *testing.T) {
	need(t, "sipp")
	chromium, root, out := browserSetup(t, "browser-admin")

	// Lines with every column filled: a route point with members and
	// forwarding make the widest rows.
	lines := strings.Replace(browserLines, "locale = \"zh\"\n",
		"locale = \"zh\"\nforward_busy = \"1001\"\nforward_no_answer = \"1003\"\nnotification = \"auto-recall\"\ndnd = true\n", 1) + `
[[line]]
dn = "2000"
name = "2000"
kind = "route-point"
members = ["1001", "1002", "1003"]
`
	s := startServer(t, "[callback]\nannounce = false\n"+lines)
	ports := callPorts(t, 2)
	pa, pc := ports[0], ports[1]
	s.register(t, "1001", pa)
	s.register(t, "1003", pc)

	// Calls: 1003 and 1001 call 1002, which is not registered (480); 1001
	// asks for a call back on it (an open request, CCNL).
	s.cbRun(t, "1003 calls unregistered 1002", "uac_unavailable.xml", pc, "-s", "1002", "-set", "caller", "1003")
	s.cbActivateCCNL(t, "1001", pa)
	const minCalls = 2

	// A failed login: an alarm about line 1004 and its reason.
	mark := s.cbMark()
	req, _ := http.NewRequest("GET", "http://"+s.HTTP+"/api/v1/registrations", nil)
	req.SetBasicAuth("1004", "wrong")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 401 {
		t.Fatalf("wrong password: %d, want 401", res.StatusCode)
	}
	s.cbWaitLog(t, mark, `level=WARN msg="authentication failed" kind=http source=127.0.0.1 account=1004 reason="wrong password"`)

	// The server samples its counters every 10 s: wait for the sample
	// that has the calls and the open request.
	deadline := time.Now().Add(30 * time.Second)
	for {
		h := adminHistory(t, s)
		if n := len(h); n >= 2 && h[n-1].Calls >= minCalls && h[n-1].OpenRequests >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no sample with %d calls and an open request within 30 s: %+v", minCalls, h)
		}
		time.Sleep(200 * time.Millisecond)
	}

	script := startBrowserScriptFile(t, root, "admin.mjs", []string{
		"CALLBACKD_URL=http://" + s.HTTP, "ADMIN_TOKEN=" + apiToken,
		"ALARM_ACCOUNT=1004", "ALARM_REASON=wrong password", fmt.Sprintf("MIN_CALLS=%d", minCalls),
		"OUT_DIR=" + out, "CHROMIUM=" + chromium,
		fmt.Sprintf("STEP_TIMEOUT=%d", (browserStep / 2).Milliseconds()),
	})
	summary := script.expect(t, "DONE ", browserReady)
	select {
	case <-script.done:
	case <-time.After(browserStep):
		t.Fatal("admin.mjs did not exit after DONE")
	}
	if script.err != nil {
		t.Fatalf("admin.mjs: %v\n%s", script.err, cbTail(script.stderr.String(), 8000))
	}
	var got struct {
		Layout struct {
			Page         struct{ Scroll, Client int }
			LinesColumns []string
		}
		Alarm  struct{ Attrs map[string]string }
		Charts map[string]struct {
			Points int
			Max    float64
		}
	}
	if err := json.Unmarshal([]byte(summary), &got); err != nil {
		t.Fatalf("admin.mjs summary: %v\n%s", err, summary)
	}
	if got.Layout.Page.Scroll > got.Layout.Page.Client || len(got.Layout.LinesColumns) != 12 {
		t.Errorf("layout: %+v", got.Layout)
	}
	if got.Alarm.Attrs["account"] != "1004" || got.Alarm.Attrs["reason"] != "wrong password" {
		t.Errorf("the alarm shows %v", got.Alarm.Attrs)
	}
	if c := got.Charts["calls"]; c.Points < 1 || c.Max < minCalls {
		t.Errorf("calls chart: %+v, want a point with %d calls", c, minCalls)
	}
	if c := got.Charts["open_requests"]; c.Points < 2 || c.Max < 1 {
		t.Errorf("open requests chart: %+v", c)
	}
	shots, _ := filepath.Glob(filepath.Join(out, "*.png"))
	if len(shots) < 5 {
		t.Errorf("screenshots: %d in %s, want one per step", len(shots), out)
	}
	t.Logf("admin.mjs: %s\nscreenshots: %s\n%s", summary, out, cbTail(script.stderr.String(), 4000))
}
