package interop

// The HTTP API through the real binary with SIPp phones: a line created
// through the API registers and is called at once, and a parameter changed
// through the API is in force for the next request without a restart
// (F31, F32, F36).

import (
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// api sends a JSON request with the admin token and returns status and body.
func (s *server) api(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+s.HTTP+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+apiToken)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

var logTime = regexp.MustCompile(`time=(\S+)`)

// logAt returns the time of the log line matching re after mark.
func (s *server) logAt(t *testing.T, mark int, re string) time.Time {
	t.Helper()
	line := s.cbWaitLog(t, mark, `time=\S+ [^\n]*`+re)
	m := logTime.FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("no time in %q", line)
	}
	at, err := time.Parse(time.RFC3339Nano, m[1])
	if err != nil {
		t.Fatal(err)
	}
	return at
}

// TestF31_F36_APIChangesLive: T3 set to 2 s through the API ends the next
// request 2 s after its notification (the default is 20 s); a line created
// through the API (locale ko) registers, gets called, and asks for a call
// back whose screen comes in Korean.
func TestF31_F36_APIChangesLive(t *testing.T) {
	need(t, "sipp")
	ports := callPorts(t, 3)
	pa, pd, pb := ports[0], ports[1], ports[2]
	s := startServer(t, cbConfig("", ""))

	if code, body := s.api(t, "PUT", "/api/v1/params", `{"t3":"2s"}`); code != 200 || !strings.Contains(body, `"t3": "2s"`) {
		t.Fatalf("PUT /api/v1/params: %d %s", code, body)
	}
	if code, body := s.api(t, "POST", "/api/v1/lines", `{"dn":"1009","name":"1009","password":"demo1009","locale":"ko"}`); code != 201 {
		t.Fatalf("POST /api/v1/lines: %d %s", code, body)
	}
	s.register(t, "1009", pa)
	s.register(t, "1009", pd)
	display := s.cbStart(t, "1009's display", "display.xml", pd, true, "-m", "2")

	s.cbActivateCCNL(t, "1009", pa)
	display.expectScreen(t, 1, "1002에 대해 콜백이 활성화되었습니다\n비활성화하려면 [취소]를 누르십시오\n이 화면을 종료하려면 [종료]를 누르십시오")

	mark := s.cbMark()
	s.register(t, "1002", pb)
	notified := s.logAt(t, mark, `action="persist #1 1009->1002 CCNL available`)
	ended := s.logAt(t, mark, `msg="call back ended" id=1 reason=t3`)
	if d := ended.Sub(notified); d < 1500*time.Millisecond || d > 4*time.Second {
		t.Errorf("T3 ran %v after the notification, want the 2s set through the API", d)
	}
	display.pass(t)
}

// TestB4_DialThroughAPICalleeBusy: Dial through the API
// (POST /api/v1/callbacks/{id}/dial) rings A first; A answers, but B's
// phone answers 486: A's offer is refused in the ACK (port 0, RFC 3264 6)
// and A gets BYE; the failure is counted.
func TestB4_DialThroughAPICalleeBusy(t *testing.T) {
	need(t, "sipp")
	ports := callPorts(t, 3)
	pa, pa2, pb := ports[0], ports[1], ports[2]
	s := startServer(t, cbConfig("alert_ring = \"0s\"\n", ""))
	s.register(t, "1001", pa)
	s.register(t, "1001", pa2)
	phoneA := s.cbStart(t, "A's phone", "web_phone.xml", pa, true, "-m", "10")

	s.cbActivateCCNL(t, "1001", pa2)

	mark := s.cbMark()
	s.register(t, "1002", pb)
	busyB := s.cbStart(t, "B's phone (busy)", "uas_busy.xml", pb, true, "-m", "1")
	s.cbWaitLog(t, mark, `action="persist #1 1001->1002 CCNL available`)

	// The request ends with the Dial (issue 18: the screen says so).
	if code, body := s.api(t, "POST", "/api/v1/callbacks/1/dial", ""); code != 200 || !strings.Contains(body, `"kind": "Completed"`) {
		t.Fatalf("dial: %d %s", code, body)
	}
	s.cbWaitLog(t, mark, `msg="call back call not connected" id=1 caller=1001 callee=1002 error="connect: 1002: 486 Busy Here"`)
	busyB.pass(t)

	// A answered, then got an ACK refusing its streams and a BYE.
	deadline := time.Now().Add(cbWait)
	for len(phoneA.received("BYE")) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("A's phone got no BYE after B refused")
		}
		time.Sleep(20 * time.Millisecond)
	}
	acks := phoneA.received("ACK")
	if len(acks) != 1 || !strings.Contains(acks[0].Body(), "m=audio 0 ") {
		t.Errorf("A's ACK: %d, body %q, want one refusing the audio stream (port 0)", len(acks), firstBody(acks))
	}
	if m := metricsText(t, s); !strings.Contains(m, `callbackd_callback_recalls_total{result="failed"} 1`) {
		t.Error("/metrics does not count the failed call back call")
	}
}

// TestF36_ReloadOnSIGHUP: the configuration file read again on SIGHUP puts
// its [callback] parameters in force; a broken file changes nothing; a
// parameter set through the API wins over the file until it is deleted.
func TestF36_ReloadOnSIGHUP(t *testing.T) {
	s := startServer(t, cbConfig("", ""))
	orig, err := os.ReadFile(s.Config)
	if err != nil {
		t.Fatal(err)
	}
	reload := func(text string, wantLog string) {
		t.Helper()
		if err := os.WriteFile(s.Config, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		mark := s.cbMark()
		s.cmd.Process.Signal(syscall.SIGHUP)
		s.cbWaitLog(t, mark, wantLog)
	}
	t3 := func() string {
		t.Helper()
		_, body := s.api(t, "GET", "/api/v1/params", "")
		m := regexp.MustCompile(`"t3": "([^"]+)"`).FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("no t3 in %s", body)
		}
		return m[1]
	}
	withT3 := func(d string) string {
		return strings.Replace(string(orig), "[callback]\n", "[callback]\nt3 = \""+d+"\"\n", 1)
	}

	reload(withT3("7s"), `msg="configuration reloaded" file=`)
	if got := t3(); got != "7s" {
		t.Errorf("t3 after SIGHUP = %s, want 7s", got)
	}
	reload(withT3("7 seconds"), `msg="configuration not reloaded, nothing changed"`)
	if got := t3(); got != "7s" {
		t.Errorf("t3 after a broken file = %s, want 7s still", got)
	}
	if code, _ := s.api(t, "PUT", "/api/v1/params", `{"t3":"9s"}`); code != 200 {
		t.Fatalf("PUT params: %d", code)
	}
	reload(withT3("5s"), `parameters set through the API are in force`)
	if got := t3(); got != "9s" {
		t.Errorf("t3 after SIGHUP with an API change = %s, want the API's 9s", got)
	}
	if code, _ := s.api(t, "DELETE", "/api/v1/params", ""); code != 200 {
		t.Fatal("DELETE params")
	}
	if got := t3(); got != "5s" {
		t.Errorf("t3 after DELETE = %s, want the file's 5s", got)
	}
}
