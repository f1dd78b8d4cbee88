package interop

// The browser test of issue 7 ("Show"; docs/features.md B4, F4, F12, F14, F34):
// the real callbackd, SIPp playing the phones, and Debian's chromium driven
// by test/browser/console.mjs (playwright-core) as the user at two web
// phone consoles.
//
// A = 1003 (locale de: the screens are checked in German), B = 1002,
// C = 1001. B is busy with C; A's phone calls B and gets 486. On A's
// console the user presses CallBack and sees the activation screen; the
// test frees B (C hangs up); A's console shows the availability screen with
// the time in German format; the user presses Dial: the server rings A's
// phone (recall Alert-Info, RFC 7462) and, once it answers, calls B with
// A's number and connects the two (third-party call control, RFC 3725).
//
// Screenshots of every step: test-output/browser/ at the repository root.
// Needs: sipp (sip-tester), chromium, node and npm (nodejs, npm); the
// test fails, not skips, without them. It runs `npm ci` in test/browser
// when test/browser/node_modules is missing.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/callbackd/callbackd/internal/screen"
	"github.com/callbackd/callbackd/test/sipptrace"
)

const (
	browserNpmTimeout  = 3 * time.Minute  // npm ci, when node_modules is missing
	browserReady       = 90 * time.Second // chromium start, two consoles, CallBack, the admin page
	browserStep        = 30 * time.Second // one step of the script after that
	browserPhoneLife   = 150 * time.Second
	browserDETimeRegex = `\d\d:\d\d \d\d\.\d\d\.\d{4}` // "15:04 02.01.2006"
	browserDETime      = "15:04 02.01.2006"
)

// browserLines: the demo lines with the locales of the default config.
const browserLines = `
[[line]]
dn = "1001"
name = "1001"
password = "demo1001"
locale = "en"
[[line]]
dn = "1002"
name = "1002"
password = "demo1002"
locale = "en"
[[line]]
dn = "1003"
name = "1003"
password = "demo1003"
locale = "de"
[[line]]
dn = "1004"
name = "1004"
password = "demo1004"
locale = "zh"
`

// needBrowser fails the test when node, npm or chromium is missing, and
// returns the chromium to use ($CHROMIUM, else chromium on the PATH).
func needBrowser(t *testing.T) string {
	t.Helper()
	var missing []string
	for _, p := range []string{"node", "npm"} {
		if _, err := exec.LookPath(p); err != nil {
			missing = append(missing, p)
		}
	}
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium, _ = exec.LookPath("chromium")
	}
	if chromium == "" {
		missing = append(missing, "chromium")
	} else if _, err := os.Stat(chromium); err != nil {
		missing = append(missing, "chromium ("+chromium+")")
	}
	if len(missing) > 0 {
		t.Fatalf("the browser test needs %s: apt-get install chromium nodejs npm (Debian packages; a nodejs that bundles npm will do); .ci/run installs them",
			strings.Join(missing, ", "))
	}
	return chromium
}

// npmCI installs test/browser's locked dependencies when they are missing.
func npmCI(t *testing.T, root string) {
	t.Helper()
	dir := filepath.Join(root, "test", "browser")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "playwright-core", "package.json")); err == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), browserNpmTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "ci", "--prefix", dir, "--no-audit", "--no-fund")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("npm ci --prefix test/browser (bounded by %v): %v\n%s", browserNpmTimeout, err, out)
	}
}

// browserSetup is what every browser test needs first: Chromium (its
// path), the repository root with test/browser's dependencies installed,
// and an empty folder test-output/name for the screenshots.
func browserSetup(t *testing.T, name string) (chromium, root, out string) {
	t.Helper()
	chromium = needBrowser(t)
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	npmCI(t, root)
	out = filepath.Join(root, "test-output", name)
	if err := os.RemoveAll(out); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	return chromium, root, out
}

// hangUp tells a caller running web_uac_hangup_on_info.xml to hang up
// now (poke), and returns once its scenario ended (BYE sent, 200 received).
func (p *cbPhone) hangUp(t *testing.T, port int) {
	t.Helper()
	p.poke(t, port)
	p.pass(t)
}

// poke sends a SIPp phone waiting for it an INFO with its call's Call-ID,
// straight to its port: the test's signal to go on (SIPp maps a request to
// its call by the Call-ID; it answers nothing).
func (p *cbPhone) poke(t *testing.T, port int) {
	t.Helper()
	pokeCall(t, port, p.sent(t, "INVITE").Header("Call-ID"))
}

// pokeCall sends SIPp on port the test's signal (an INFO) for its call
// callID.
func pokeCall(t *testing.T, port int, callID string) {
	t.Helper()
	conn, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	local := conn.LocalAddr().(*net.UDPAddr)
	info := fmt.Sprintf("INFO sip:%[1]d@127.0.0.1:%[1]d SIP/2.0\r\n"+
		"Via: SIP/2.0/UDP 127.0.0.1:%[2]d;branch=z9hG4bK-poke-%[3]s;rport\r\n"+
		"From: <sip:test@127.0.0.1>;tag=poke\r\nTo: <sip:%[1]d@127.0.0.1>\r\n"+
		"Call-ID: %[3]s\r\nCSeq: 1 INFO\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n", port, local.Port, callID)
	if _, err := conn.Write([]byte(info)); err != nil {
		t.Fatal(err)
	}
}

// sentResponse returns the first response with status code the phone sent
// to the request with callID and method.
func (p *cbPhone) sentResponse(callID, method string, code int) (sipptrace.Message, bool) {
	for _, m := range p.messages() {
		if !m.Received && strings.HasPrefix(m.Text, fmt.Sprintf("SIP/2.0 %d ", code)) &&
			m.Header("Call-ID") == callID && strings.HasSuffix(m.Header("CSeq"), " "+method) {
			return m, true
		}
	}
	return sipptrace.Message{}, false
}

// browserScript is console.mjs (or another script) running: its stdout
// lines and stderr.
type browserScript struct {
	name   string
	cmd    *exec.Cmd
	stdin  interface{ Write([]byte) (int, error) }
	lines  chan string
	stderr cbBuffer
	done   chan struct{}
	err    error
}

func startBrowserScript(t *testing.T, root string, env []string) *browserScript {
	t.Helper()
	return startBrowserScriptFile(t, root, "console.mjs", env)
}

// startBrowserScriptFile runs test/browser/NAME (a playwright-core script
// speaking the same stdin/stdout protocol).
func startBrowserScriptFile(t *testing.T, root, name string, env []string) *browserScript {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), browserReady+4*browserStep)
	t.Cleanup(cancel)
	b := &browserScript{name: name, lines: make(chan string, 16), done: make(chan struct{})}
	b.cmd = exec.CommandContext(ctx, "node", filepath.Join(root, "test", "browser", name))
	b.cmd.Dir = root
	b.cmd.Env = append(os.Environ(), env...)
	b.cmd.Stderr = &b.stderr
	b.cmd.WaitDelay = 5 * time.Second
	// Its own process group, killed as a whole: chromium and its helpers
	// do not outlive a killed node.
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	b.cmd.Cancel = func() error { return syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL) }
	stdin, err := b.cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	b.stdin = stdin
	stdout, err := b.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := b.cmd.Start(); err != nil {
		t.Fatalf("node %s: %v", name, err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			b.lines <- sc.Text()
		}
		close(b.lines)
	}()
	go func() {
		wg.Wait()
		b.err = b.cmd.Wait()
		close(b.done)
	}()
	t.Cleanup(func() {
		select {
		case <-b.done:
		default:
			syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
			<-b.done
		}
		if t.Failed() {
			t.Logf("=== %s stderr:\n%s", name, cbTail(b.stderr.String(), 12000))
		}
	})
	return b
}

// expect waits for the script's next stdout line, which must start with
// prefix; it returns the rest.
func (b *browserScript) expect(t *testing.T, prefix string, d time.Duration) string {
	t.Helper()
	select {
	case line, ok := <-b.lines:
		if !ok {
			<-b.done
			t.Fatalf("%s ended (%v) while the test waited for %q:\n%s", b.name, b.err, prefix, cbTail(b.stderr.String(), 8000))
		}
		if !strings.HasPrefix(line, prefix) {
			t.Fatalf("%s said %q, want %q...\n%s", b.name, line, prefix, cbTail(b.stderr.String(), 8000))
		}
		return strings.TrimPrefix(line, prefix)
	case <-time.After(d):
		t.Fatalf("%s did not say %q within %v:\n%s", b.name, prefix, d, cbTail(b.stderr.String(), 8000))
	}
	return ""
}

// germanAvailableRE is the F12 screen about b in German, its time in the
// German format: built from internal/screen's de catalogue.
func germanAvailableRE(t *testing.T, b string) string {
	t.Helper()
	if got := screen.TimeLayout("de"); got != browserDETime {
		t.Errorf("the de catalogue's time layout is %q, want %q (F12, F34)", got, browserDETime)
	}
	at := time.Date(2001, 12, 13, 14, 15, 0, 0, time.Local)
	text := screen.Screen{Kind: screen.Available, DN: b, At: at}.Text("de")
	stamp := at.Format(browserDETime)
	if !strings.Contains(text, stamp) {
		t.Fatalf("the German availability screen %q does not show the time %q", text, stamp)
	}
	return "^" + strings.Replace(regexp.QuoteMeta(text), regexp.QuoteMeta(stamp), "("+browserDETimeRegex+")", 1) + "$"
}

// TestBrowser_B4_F4_F12_F14_Console: two web phone consoles in chromium;
// A (1003, German) presses CallBack after a busy call to B (1002), sees
// the activation screen, then, B freed, the availability screen with the
// time in German format, and presses Dial: A's phone rings with the recall
// Alert-Info and answers, then B's phone rings with A's number and answers.
func TestBrowser_B4_F4_F12_F14_Console(t *testing.T) {
	need(t, "sipp")
	chromium, root, out := browserSetup(t, "browser")

	const a, b, c = "1003", "1002", "1001"
	activated := screen.Screen{Kind: screen.Activated, DN: b}.Text("de")
	availableRE := germanAvailableRE(t, b)
	avail := regexp.MustCompile(availableRE)

	ports := callPorts(t, 3)
	pa, pb, pc := ports[0], ports[1], ports[2]
	// alert_ring 0: no audio alert when B is free, so the one INVITE A's
	// phone gets is the call Dial places.
	s := startServer(t, "[callback]\nalert_ring = \"0s\"\nannounce = false\n"+browserLines)
	s.register(t, a, pa)
	s.register(t, b, pb)
	s.register(t, c, pc)

	// B is busy with C until the test says so.
	mark := s.cbMark()
	busyB := s.cbStartFor(t, "B (busy with C)", "uas.xml", pb, true, browserPhoneLife, "-m", "1")
	callC := s.cbStartFor(t, "C calls B", "web_uac_hangup_on_info.xml", pc, false, browserPhoneLife, "-m", "1", "-s", b, "-set", "caller", c)
	s.cbBusy(t, mark, b)

	s.cbRun(t, "A calls busy B", "uac_busy.xml", pa, "-s", b, "-set", "caller", a)
	phoneA := s.cbStartFor(t, "A's phone", "web_phone.xml", pa, true, browserPhoneLife, "-m", "50")

	script := startBrowserScript(t, root, []string{
		"CALLBACKD_URL=http://" + s.HTTP,
		"A_DN=" + a, "A_PASSWORD=demo" + a, "B_DN=" + b, "B_PASSWORD=demo" + b, "ADMIN_TOKEN=" + apiToken,
		"EXPECT_ACTIVATED=" + activated, "EXPECT_AVAILABLE=" + availableRE,
		"OUT_DIR=" + out, "CHROMIUM=" + chromium,
		fmt.Sprintf("STEP_TIMEOUT=%d", (browserStep / 2).Milliseconds()),
		fmt.Sprintf("GO_TIMEOUT=%d", (2 * browserStep).Milliseconds()),
	})

	// CallBack pressed on A's console: the activation screen there (the
	// script checked its text) and on A's phone, in German.
	script.expect(t, "READY activated", browserReady)
	s.cbWaitLog(t, mark, `action="persist #1 `+a+`->`+b+` CCBS active`)
	phoneA.expectScreen(t, 1, activated)

	// Free B: C hangs up, B's phone takes the BYE.
	mark = s.cbMark()
	callC.hangUp(t, pc)
	busyB.pass(t)
	// B's phone for the call Dial places: it answers, and hangs up after 1 s.
	recallB := s.cbStartFor(t, "B answers A's call back", "uas_hangs_up.xml", pb, true, browserPhoneLife, "-m", "1", "-d", "1000")
	if _, err := script.stdin.Write([]byte("GO\n")); err != nil {
		t.Fatalf("tell console.mjs to go on: %v", err)
	}

	// The availability screen, in German, with the time B became free.
	var text string
	if err := json.Unmarshal([]byte(script.expect(t, "AVAILABLE ", browserStep)), &text); err != nil {
		t.Fatalf("console.mjs: AVAILABLE: %v", err)
	}
	sub := avail.FindStringSubmatch(text)
	if sub == nil {
		t.Fatalf("A's console showed %q, want %s", text, availableRE)
	}
	if at, err := time.ParseInLocation(browserDETime, sub[1], time.Local); err != nil || time.Since(at) < -time.Minute || time.Since(at) > 2*time.Minute {
		t.Errorf("A's console says B was available at %q, now is %s", sub[1], time.Now().Format(browserDETime))
	}
	if m := phoneA.waitScreen(t, 2); !avail.MatchString(m.Body()) {
		t.Errorf("A's phone: screen 2 is %q, want %s", m.Body(), availableRE)
	}

	// Dial pressed: the script saw the screen close or change.
	kind := script.expect(t, "DONE ", browserStep)
	select {
	case <-script.done:
	case <-time.After(browserStep):
		t.Fatal("console.mjs did not exit after DONE")
	}
	if script.err != nil {
		t.Fatalf("console.mjs: %v\n%s", script.err, cbTail(script.stderr.String(), 8000))
	}
	t.Logf("after Dial, A's console shows screen %s\nconsole.mjs stderr:\n%s", kind, cbTail(script.stderr.String(), 8000))

	// B's phone rang with A's number, answered and hung up (the call was
	// connected: B's BYE got its 200).
	recallB.pass(t)
	invB := recallB.received("INVITE")
	if len(invB) != 1 {
		t.Fatalf("B's phone got %d INVITEs, want 1", len(invB))
	}
	if from := invB[0].Header("From"); !strings.Contains(from, "sip:"+a+"@") {
		t.Errorf("B's phone rang with From %q, want A's number sip:%s@...", from, a)
	}

	// A's phone rang first, with the recall Alert-Info, and answered.
	var invA []sipptrace.Message
	for _, m := range phoneA.received("INVITE") {
		if m.Header("To") != "" && !strings.Contains(m.Header("To"), ";tag=") { // not a re-INVITE
			invA = append(invA, m)
		}
	}
	if len(invA) != 1 {
		t.Fatalf("A's phone got %d INVITEs (out of dialog), want 1", len(invA))
	}
	if got := invA[0].Header("Alert-Info"); got != alertURN {
		t.Errorf("A's phone: INVITE with Alert-Info %q, want %q", got, alertURN)
	}
	okA, ok := phoneA.sentResponse(invA[0].Header("Call-ID"), "INVITE", 200)
	if !ok {
		t.Fatalf("A's phone did not answer the INVITE (no 200 sent)")
	}
	// Third-party call control, RFC 3725 Flow I: A's INVITE has no SDP,
	// A's offer (in its 200) goes to B, B's answer to A in the ACK.
	if body := invA[0].Body(); body != "" {
		t.Errorf("A's INVITE carries a body %q, want none (A makes the offer)", body)
	}
	if okA.Body() == "" || invB[0].Body() != okA.Body() {
		t.Errorf("B's INVITE offers %q, want A's offer %q", invB[0].Body(), okA.Body())
	}
	okB, ok := recallB.sentResponse(invB[0].Header("Call-ID"), "INVITE", 200)
	var ackA []sipptrace.Message
	for _, m := range phoneA.received("ACK") {
		if m.Header("Call-ID") == invA[0].Header("Call-ID") {
			ackA = append(ackA, m)
		}
	}
	if !ok || len(ackA) == 0 || ackA[0].Body() != okB.Body() {
		t.Errorf("A's ACK: %d ACKs, first body %q, want B's answer %q", len(ackA), firstBody(ackA), okB.Body())
	}
	if !invA[0].At.Before(invB[0].At) {
		t.Errorf("B rang at %s, before A answered at %s: Dial must ring A first", invB[0].At.Format("15:04:05.000"), invA[0].At.Format("15:04:05.000"))
	}
	// B's hang-up reached A.
	deadline := time.Now().Add(cbWait)
	for {
		byes := 0
		for _, m := range phoneA.received("BYE") {
			if m.Header("Call-ID") == invA[0].Header("Call-ID") {
				byes++
			}
		}
		if byes == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("A's phone got no BYE within %v of B hanging up", cbWait)
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.cbWaitLog(t, mark, `msg="call back ended" id=1 reason=completed`)
	if m := metricsText(t, s); !strings.Contains(m, `callbackd_callback_recalls_total{result="connected"} 1`) {
		t.Errorf("/metrics does not count the connected call back call")
	}

	shots, _ := filepath.Glob(filepath.Join(out, "*.png"))
	if len(shots) < 6 {
		t.Errorf("screenshots: %d in %s, want one per step", len(shots), out)
	}
	t.Logf("screenshots: %s", out)
}

func firstBody(ms []sipptrace.Message) string {
	if len(ms) == 0 {
		return ""
	}
	return ms[0].Body()
}

func metricsText(t *testing.T, s *server) string {
	t.Helper()
	res, err := http.Get("http://" + s.HTTP + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}
