package interop

// Call Back end to end: the real callbackd with SIPp playing every phone.
// Each test asserts what the users see: the SIP responses to their calls and
// feature codes (with the reason phrases), the screens that arrive as SIP
// MESSAGE (exact texts), the audio alert (an INVITE with the recall
// Alert-Info that rings alert_ring and is cancelled), and who rings with
// which identity when A presses Dial.
//
// Lines: A = 1001 (devices PA1, from which A dials, and PA2, a display that
// keeps its screens), B = 1002, C = 1003, D = 1004.
//
// Waits are bounded and event driven: a background SIPp (a phone waiting
// for calls or screens) is ready once its port is bound; screens are waited
// for by polling that phone's SIPp message trace; server facts by polling
// its log. The only timed steps are SIPp pauses that end B's calls, and each
// test checks, from the traces' timestamps, that what had to happen before
// such a hang-up did.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callbackd/callbackd/test/sipptrace"
)

const (
	cbRunTimeout = 30 * time.Second // bounds one SIPp run (its -timeout)
	cbWait       = 10 * time.Second // bounds waiting for one thing to happen
	cbHold       = "3000"           // ms a call that keeps B busy lasts
	alertURN     = "<urn:alert:service:recall:callback>"
)

// cbConfig is the server configuration of these tests: the [callback]
// keys given (alert ring 1 s and no announcement unless given: these tests
// follow Cisco's flow, where a failed call fails at once and the caller
// asks with *39; media_test.go has the announcement), other tables, the
// demo lines.
func cbConfig(callbackKeys, tables string) string {
	if !strings.Contains(callbackKeys, "alert_ring") {
		callbackKeys += "alert_ring = \"1s\"\n"
	}
	if !strings.Contains(callbackKeys, "announce") {
		callbackKeys += "announce = false\n"
	}
	return "[callback]\n" + callbackKeys + tables + demoLines
}

// The screens (internal/screen/catalog.go, English).
func activatedScreen(b string) string {
	return "CallBack is activated on " + b + "\nPress Cancel to deactivate\nPress Exit to quit this screen"
}

func availableRE(b string) *regexp.Regexp {
	return regexp.MustCompile(`^` + b + ` has become available\nTime (\d\d:\d\d \d\d/\d\d/\d{4})\nPress Dial to call\nPress Cancel to deactivate\nPress Exit to quit this screen$`)
}

const notActiveScreen = "CallBack is not active. Press Exit to quit this screen."

// ---------------------------------------------------------------------------
// SIPp phones

// cbPhone is one SIPp run playing a phone, with its message trace.
type cbPhone struct {
	name string
	dir  string
	cmd  *exec.Cmd
	out  cbBuffer
	done chan struct{}
}

type cbBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *cbBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *cbBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// cbStart starts SIPp in the background from local UDP port with scenario
// (args must give -m). listen: wait until the port is bound, for a phone
// that waits for requests. The process is killed at cleanup; on failure its
// traces are printed.
func (s *server) cbStart(t *testing.T, name, scenario string, port int, listen bool, args ...string) *cbPhone {
	t.Helper()
	return s.cbStartFor(t, name, scenario, port, listen, cbRunTimeout, args...)
}

// cbStartFor is cbStart with the SIPp run bounded by life instead of
// cbRunTimeout (phones that live across a browser's steps).
func (s *server) cbStartFor(t *testing.T, name, scenario string, port int, listen bool, life time.Duration, args ...string) *cbPhone {
	t.Helper()
	p := &cbPhone{name: name, dir: t.TempDir(), done: make(chan struct{})}
	a := append([]string{"-p", strconv.Itoa(port),
		"-trace_msg", "-message_file", filepath.Join(p.dir, "messages.log"),
		"-error_file", filepath.Join(p.dir, "errors.log")}, args...)
	p.cmd = s.sippCmd(t, context.Background(), scenario, life, a...)
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("=== %s (%s, port %d): exit %d\nerrors:\n%s\nmessages:\n%s\noutput:\n%s", name, scenario, port,
				p.cmd.ProcessState.ExitCode(), p.file("errors.log"), cbTail(p.trace(), 12000), cbTail(p.out.String(), 2000))
		}
	})
	if listen {
		deadline := time.Now().Add(5 * time.Second)
		for !cbPortBound(port) {
			select {
			case <-p.done:
				t.Fatalf("%s (%s) exited before it listened on port %d: exit %d\n%s", name, scenario, port, p.cmd.ProcessState.ExitCode(), p.out.String())
			case <-time.After(10 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s (%s) does not listen on port %d after 5s", name, scenario, port)
			}
		}
	}
	return p
}

// cbPortBound reports whether a UDP socket is bound to port (from
// /proc/net; Linux, as CI).
func cbPortBound(port int) bool {
	want := fmt.Sprintf(":%04X ", port)
	for _, f := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if fields := strings.Fields(line); len(fields) > 1 && strings.HasSuffix(fields[1]+" ", want) {
				return true
			}
		}
	}
	return false
}

// cbTail is the end of a long text.
func cbTail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// cbRun runs SIPp in the foreground (a call or a feature code) and requires
// that every step of its scenario happened (exit 0).
func (s *server) cbRun(t *testing.T, name, scenario string, port int, args ...string) *cbPhone {
	t.Helper()
	p := s.cbStart(t, name, scenario, port, false, append([]string{"-m", "1"}, args...)...)
	p.pass(t)
	return p
}

// pass waits for the phone's scenario to end and requires exit 0.
func (p *cbPhone) pass(t *testing.T) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(cbRunTimeout + 10*time.Second):
		t.Fatalf("%s did not end", p.name)
	}
	if c := p.cmd.ProcessState.ExitCode(); c != 0 {
		t.Fatalf("%s: sipp exit %d, want 0\nerrors:\n%s\nmessages:\n%s\noutput:\n%s", p.name, c, p.file("errors.log"), cbTail(p.trace(), 8000), cbTail(p.out.String(), 2000))
	}
}

func (p *cbPhone) file(name string) string {
	b, _ := os.ReadFile(filepath.Join(p.dir, name))
	return string(b)
}

func (p *cbPhone) trace() string { return p.file("messages.log") }

// messages splits the message trace; retransmitted requests are left out.
func (p *cbPhone) messages() []sipptrace.Message {
	var out []sipptrace.Message
	seen := map[string]bool{}
	for _, m := range sipptrace.Parse(p.trace()) {
		if !strings.HasPrefix(m.Text, "SIP/2.0 ") {
			key := fmt.Sprint(m.Received, m.Header("Call-ID"), m.Header("CSeq"))
			if seen[key] {
				continue
			}
			seen[key] = true
		}
		out = append(out, m)
	}
	return out
}

// received returns the received requests of method (retransmissions left out).
func (p *cbPhone) received(method string) []sipptrace.Message {
	var out []sipptrace.Message
	for _, m := range p.messages() {
		if m.Received && m.IsRequest(method) {
			out = append(out, m)
		}
	}
	return out
}

// sent returns the first request of method the phone sent.
func (p *cbPhone) sent(t *testing.T, method string) sipptrace.Message {
	t.Helper()
	for _, m := range p.messages() {
		if !m.Received && m.IsRequest(method) {
			return m
		}
	}
	t.Fatalf("%s sent no %s\n%s", p.name, method, p.trace())
	return sipptrace.Message{}
}

// final returns the status line ("603 CallBack Activated") of the first
// final response the phone received.
func (p *cbPhone) final(t *testing.T) (string, sipptrace.Message) {
	t.Helper()
	callID := p.sent(t, "INVITE").Header("Call-ID")
	for _, m := range p.messages() {
		// A response of another call (a retransmission meant for an earlier
		// SIPp on the same port) is not this call's answer.
		// The 407 that challenges every INVITE of a line (B7) is not the
		// answer either: the one to the INVITE with credentials is.
		if m.Received && strings.HasPrefix(m.Text, "SIP/2.0 ") && !strings.HasPrefix(m.Text, "SIP/2.0 1") &&
			!strings.HasPrefix(m.Text, "SIP/2.0 407") && m.Header("Call-ID") == callID {
			return strings.TrimPrefix(m.StartLine(), "SIP/2.0 "), m
		}
	}
	t.Fatalf("%s received no final response\n%s", p.name, p.trace())
	return "", sipptrace.Message{}
}

// screens returns the texts of the MESSAGEs the phone received, in order.
func (p *cbPhone) screens() []string {
	var out []string
	for _, m := range p.received("MESSAGE") {
		out = append(out, m.Body())
	}
	return out
}

// waitScreen waits for the n-th MESSAGE (from 1) to arrive and returns it.
func (p *cbPhone) waitScreen(t *testing.T, n int) sipptrace.Message {
	t.Helper()
	m, ok := p.tryScreen(t, n)
	if !ok {
		t.Fatalf("%s: screen %d did not arrive within %v; screens: %q", p.name, n, cbWait, p.screens())
	}
	return m
}

// tryScreen is waitScreen that reports a missing screen instead of failing.
func (p *cbPhone) tryScreen(t *testing.T, n int) (sipptrace.Message, bool) {
	t.Helper()
	deadline := time.Now().Add(cbWait)
	for {
		if ms := p.received("MESSAGE"); len(ms) >= n {
			m := ms[n-1]
			if ct := m.Header("Content-Type"); ct != "text/plain;charset=UTF-8" {
				t.Errorf("%s: screen %d has Content-Type %q, want text/plain;charset=UTF-8", p.name, n, ct)
			}
			return m, true
		}
		if time.Now().After(deadline) {
			return sipptrace.Message{}, false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// expectScreen waits for the n-th screen and checks its text.
func (p *cbPhone) expectScreen(t *testing.T, n int, want string) sipptrace.Message {
	t.Helper()
	m := p.waitScreen(t, n)
	if got := m.Body(); got != want {
		t.Fatalf("%s: screen %d:\n got %q\nwant %q", p.name, n, got, want)
	}
	return m
}

// expectAvailable waits for the n-th screen and checks it is the F12
// availability screen for b, with the time it arrived.
func (p *cbPhone) expectAvailable(t *testing.T, n int, b string) sipptrace.Message {
	t.Helper()
	m := p.waitScreen(t, n)
	sub := availableRE(b).FindStringSubmatch(m.Body())
	if sub == nil {
		t.Fatalf("%s: screen %d:\n got %q\nwant %q", p.name, n, m.Body(), availableRE(b))
	}
	at, err := time.ParseInLocation("15:04 01/02/2006", sub[1], time.Local)
	if err != nil || m.At.Sub(at) < 0 || m.At.Sub(at) > 2*time.Minute {
		t.Errorf("%s: availability screen says Time %s, received at %s", p.name, sub[1], m.At.Format("15:04:05 01/02/2006"))
	}
	return m
}

// expectAlert checks the audio alert (F12, B2): an INVITE with the recall
// Alert-Info and no SDP, cancelled by the server after alert_ring (1 s).
// A missing alert is an error (reported, the test goes on): false.
func (p *cbPhone) expectAlert(t *testing.T, about string) bool {
	t.Helper()
	deadline := time.Now().Add(cbWait)
	for len(p.received("INVITE")) == 0 || len(p.received("CANCEL")) == 0 {
		if time.Now().After(deadline) {
			t.Errorf("%s: no alert (INVITE, then CANCEL) within %v", p.name, cbWait)
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	invs := p.received("INVITE")
	if len(invs) != 1 {
		t.Errorf("%s: %d alert INVITEs, want 1", p.name, len(invs))
		return false
	}
	inv := invs[0]
	if got := inv.Header("Alert-Info"); got != alertURN {
		t.Errorf("%s: alert Alert-Info %q, want %q", p.name, got, alertURN)
	}
	if inv.Body() != "" || inv.Header("Content-Type") != "" {
		t.Errorf("%s: alert INVITE carries a body (%q): want none", p.name, inv.Header("Content-Type"))
	}
	// The phone shows the alert's caller: the service, about B.
	if from, want := inv.Header("From"), `"CallBack `+about+`" <sip:callback@`; !strings.HasPrefix(from, want) {
		t.Errorf("%s: alert From %q, want %s...", p.name, from, want)
	}
	cancels := p.received("CANCEL")
	if len(cancels) != 1 {
		t.Errorf("%s: %d CANCELs of the alert, want 1", p.name, len(cancels))
		return false
	}
	if rang := cancels[0].At.Sub(inv.At); rang < 900*time.Millisecond || rang > 3*time.Second {
		t.Errorf("%s: the alert rang %v, want alert_ring 1s", p.name, rang)
	}
	return true
}

// mustAlert is expectAlert that stops the test when no alert came.
func (p *cbPhone) mustAlert(t *testing.T, about string) {
	t.Helper()
	if !p.expectAlert(t, about) {
		t.FailNow()
	}
}

// ---------------------------------------------------------------------------
// Server log

// cbMark returns a position in the server log; cbLogSince what followed it.
func (s *server) cbMark() int { return len(s.Log()) }

func (s *server) cbLogSince(mark int) string { return s.Log()[mark:] }

// cbWaitLog waits until the log after mark has a line matching re.
func (s *server) cbWaitLog(t *testing.T, mark int, re string) string {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(cbWait)
	for {
		if m := rx.FindString(s.cbLogSince(mark)); m != "" {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("no server log line matching %q within %v", re, cbWait)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// cbBusy waits until line dn is busy with one call (the server's line state).
func (s *server) cbBusy(t *testing.T, mark int, dn string) {
	t.Helper()
	s.cbWaitLog(t, mark, `msg="line state" dn=`+dn+` from=\S+ to=busy calls=1 `)
}

// ---------------------------------------------------------------------------
// Steps

// cbCode dials a feature code from port as line caller and returns the
// final response's status line ("603 CallBack Activated").
func (s *server) cbCode(t *testing.T, caller string, port int, code string) (string, sipptrace.Message) {
	t.Helper()
	p := s.cbRun(t, caller+" dials "+code, "cb_uac_code.xml", port, "-s", code, "-set", "caller", caller)
	return p.final(t)
}

func expectStatus(t *testing.T, what, got, want string) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: got %q, want %q", what, got, want)
	}
}

// cbActivateCCNL: line a's device on port calls 1002, which is not
// registered (480), then dials *39: 603 CallBack Activated (CCNL).
func (s *server) cbActivateCCNL(t *testing.T, a string, port int) {
	t.Helper()
	s.cbRun(t, a+" calls unregistered B", "uac_unavailable.xml", port, "-s", "1002", "-set", "caller", a)
	got, _ := s.cbCode(t, a, port, "*39")
	expectStatus(t, a+" dials *39 after B was unavailable", got, "603 CallBack Activated")
}

// cbActivateCCBS: line a's device on port calls 1002, which is busy (486,
// the announcement off), then dials *39: 603 CallBack Activated (CCBS).
func (s *server) cbActivateCCBS(t *testing.T, a string, port int) {
	t.Helper()
	s.cbRun(t, a+" calls busy B", "uac_busy.xml", port, "-s", "1002", "-set", "caller", a)
	got, _ := s.cbCode(t, a, port, "*39")
	expectStatus(t, a+" dials *39 after B was busy", got, "603 CallBack Activated")
}

// cbDial: A presses Dial (dials *39 once B is available); B's device on pb
// rings with A's identity and answers; A hangs up after a moment.
func (s *server) cbDial(t *testing.T, pa, pb int) {
	t.Helper()
	b := s.cbStart(t, "B answers the call back", "cb_uas_callback.xml", pb, true, "-m", "1")
	a := s.cbRun(t, "A presses Dial (*39)", "uac.xml", pa, "-s", "*39", "-set", "caller", "1001", "-d", "300")
	b.pass(t)
	invs := b.received("INVITE")
	if len(invs) != 1 {
		t.Fatalf("B's device got %d INVITEs, want 1", len(invs))
	}
	if from := invs[0].Header("From"); !strings.Contains(from, "sip:1001@") {
		t.Errorf("B rings with From %q, want A's identity sip:1001@...", from)
	}
	if to := invs[0].Header("To"); !strings.Contains(to, "sip:1002@") {
		t.Errorf("B rings with To %q, want sip:1002@...", to)
	}
	if got, _ := a.final(t); got != "200 OK" {
		t.Errorf("A's Dial call: final response %q, want 200 OK", got)
	}
}

// cbBusyB makes B busy: B's device on pb answers a call from D (line d on
// port pd) and, when hangUp, hangs up itself after cbHold ms; otherwise the
// call lasts until the processes are killed. It returns once B is busy.
func (s *server) cbBusyB(t *testing.T, pb int, d string, pd int, hangUp bool) (b, caller *cbPhone) {
	t.Helper()
	mark := s.cbMark()
	if hangUp {
		b = s.cbStart(t, "B (busy with "+d+", hangs up)", "uas_hangs_up.xml", pb, true, "-m", "1", "-d", cbHold)
		caller = s.cbStart(t, d+" calls B", "uac_callee_hangs_up.xml", pd, false, "-m", "1", "-s", "1002", "-set", "caller", d)
	} else {
		b = s.cbStart(t, "B (busy with "+d+")", "uas.xml", pb, true, "-m", "1")
		caller = s.cbStart(t, d+" calls B", "uac.xml", pd, false, "-m", "1", "-s", "1002", "-set", "caller", d, "-d", "60000")
	}
	s.cbBusy(t, mark, "1002")
	return b, caller
}

// cbBusyBUntil makes B busy as cbBusyB does, until the test says so: the
// caller (line d on port pd) hangs up on caller.hangUp(t, pd).
func (s *server) cbBusyBUntil(t *testing.T, pb int, d string, pd int) (b, caller *cbPhone) {
	t.Helper()
	mark := s.cbMark()
	b = s.cbStart(t, "B (busy with "+d+")", "uas.xml", pb, true, "-m", "1")
	caller = s.cbStart(t, d+" calls B", "web_uac_hangup_on_info.xml", pd, false, "-m", "1", "-s", "1002", "-set", "caller", d)
	s.cbBusy(t, mark, "1002")
	return b, caller
}

// beforeBye fails the test unless msg came before B's BYE: the steps that
// had to happen while B was busy did (or the machine is too slow for
// cbHold).
func beforeBye(t *testing.T, what string, m sipptrace.Message, bye sipptrace.Message) {
	t.Helper()
	if !m.At.Before(bye.At) {
		t.Fatalf("%s at %s came after B hung up at %s: the test needs it within %s ms of B answering", what,
			m.At.Format("15:04:05.000"), bye.At.Format("15:04:05.000"), cbHold)
	}
}

// ---------------------------------------------------------------------------

// TestF4_F11_F12_CCBSBusyThenDial: B is busy with C; A's call gets 486; A
// dials *39: 603 "CallBack Activated" and the F4 screen on every device of
// A (two displays here, besides the device A dials from). When B hangs up,
// within 1 s, A's devices show "1002 has become available" and ring with
// the recall Alert-Info for alert_ring; A dials *39 again (Dial, F14) and
// B's phone rings with A's identity.
func TestF4_F11_F12_CCBSBusyThenDial(t *testing.T) {
	need(t, "sipp")
	ports := callPorts(t, 5)
	pa1, pa2, pa3, pb, pc := ports[0], ports[1], ports[2], ports[3], ports[4]
	s := startServer(t, cbConfig("", ""))
	s.register(t, "1001", pa1)
	s.register(t, "1001", pa2)
	s.register(t, "1001", pa3)
	s.register(t, "1002", pb)
	s.register(t, "1003", pc)

	displays := []*cbPhone{
		s.cbStart(t, "A's display", "display.xml", pa2, true, "-m", "3"),
		s.cbStart(t, "A's second display", "display.xml", pa3, true, "-m", "3"),
	}
	b, c := s.cbBusyB(t, pb, "1003", pc, true)

	s.cbRun(t, "A calls busy B", "uac_busy.xml", pa1, "-s", "1002", "-set", "caller", "1001")
	mark := s.cbMark()
	got, res := s.cbCode(t, "1001", pa1, "*39")
	expectStatus(t, "A dials *39 after a busy call", got, "603 CallBack Activated")
	s.cbWaitLog(t, mark, `action="persist #1 1001->1002 CCBS active seen=1002"`)
	var activated []sipptrace.Message
	for _, d := range displays {
		activated = append(activated, d.expectScreen(t, 1, activatedScreen("1002")))
	}

	b.pass(t) // B hung up: BYE, 200
	c.pass(t)
	bye := b.sent(t, "BYE")
	beforeBye(t, "the 603 to *39", res, bye)
	for _, m := range activated {
		beforeBye(t, "the activation screen", m, bye)
	}

	for _, d := range displays {
		avail := d.expectAvailable(t, 2, "1002")
		if lag := avail.At.Sub(bye.At); lag < -50*time.Millisecond || lag > time.Second {
			t.Errorf("%s: the availability screen came %v after B's BYE, want within 1s", d.name, lag)
		}
		d.mustAlert(t, "1002")
		d.pass(t)
	}

	mark = s.cbMark()
	s.cbDial(t, pa1, pb)
	s.cbWaitLog(t, mark, `msg="call back ended" id=1 reason=completed`)

	// F37: the operator sees the same story at /metrics.
	body := metricsText(t, s)
	for _, want := range []string{
		`callbackd_callback_screens_total{screen="Activated"} 1`,
		`callbackd_callback_screens_total{screen="Available"} 1`,
		`callbackd_callback_alerts_total 1`,
		`callbackd_callback_ended_total{reason="completed"} 1`,
		`callbackd_callback_requests_open 0`,
		`callbackd_calls_total{outcome="busy"} 1`,
		`callbackd_registrations 5`,
		`callbackd_callback_activations_total 1`,
		`callbackd_callback_notifications_total 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// SIP messages in and out, at least as many as the test made (UDP
	// retransmissions may add some): 5 devices registered (REGISTER, 401
	// challenge, REGISTER again); *39 answered 603 once (the second *39 is
	// Dial, routed to B); two screens to each of A's 3 devices as MESSAGE.
	for kind, least := range map[string]int{
		`direction="in",kind="REGISTER"`: 10, `direction="out",kind="401"`: 5,
		`direction="out",kind="603"`: 1, `direction="out",kind="MESSAGE"`: 6,
	} {
		m := regexp.MustCompile(`callbackd_sip_messages_total\{` + regexp.QuoteMeta(kind) + `\} (\d+)`).FindStringSubmatch(body)
		if n := 0; m == nil {
			t.Errorf("/metrics lacks SIP messages %s", kind)
		} else if n, _ = strconv.Atoi(m[1]); n < least {
			t.Errorf("/metrics: SIP messages %s = %d, want at least %d", kind, n, least)
		}
	}
}

// TestB3_CCNLSurvivesKill9: B is not registered, A's call gets 480, A
// activates (CCNL); the server is killed with SIGKILL and restarted: the
// request is restored, and when B registers A is told and alerted, and Dial
// reaches B with A's identity.
func TestB3_CCNLSurvivesKill9(t *testing.T) {
	need(t, "sipp")
	ports := callPorts(t, 3)
	pa1, pa2, pb := ports[0], ports[1], ports[2]
	s := startServer(t, cbConfig("", ""))
	s.register(t, "1001", pa1)
	s.register(t, "1001", pa2)

	display := s.cbStart(t, "A's display", "display.xml", pa2, true, "-m", "1")
	mark := s.cbMark()
	s.cbActivateCCNL(t, "1001", pa1)
	s.cbWaitLog(t, mark, `action="persist #1 1001->1002 CCNL active seen=1002"`)
	display.expectScreen(t, 1, activatedScreen("1002"))
	display.pass(t)

	s.kill9()
	mark = s.cbMark()
	s.restart()
	s.cbWaitLog(t, mark, `msg="call back requests restored" requests=1`)

	display = s.cbStart(t, "A's display after the restart", "display.xml", pa2, true, "-m", "2")
	s.register(t, "1002", pb)
	display.expectAvailable(t, 1, "1002")
	display.mustAlert(t, "1002")
	display.pass(t)

	mark = s.cbMark()
	s.cbDial(t, pa1, pb)
	s.cbWaitLog(t, mark, `msg="call back ended" id=1 reason=completed`)
}

// TestB3_CCBSKill9Restart: A activates on B, busy with C; the server is
// killed with SIGKILL between the activation and B hanging up, and
// restarted. The call B-C is restored with the request (both phones answer
// the server's in-dialog OPTIONS audit), so B stays busy: A is told nothing
// until B hangs up after the restart; B's BYE is relayed to C, A gets the
// availability screen within 1 s of it, and Dial reaches B.
func TestB3_CCBSKill9Restart(t *testing.T) {
	need(t, "sipp")
	ports := callPorts(t, 4)
	pa1, pa2, pb, pc := ports[0], ports[1], ports[2], ports[3]
	s := startServer(t, cbConfig("", ""))
	s.register(t, "1001", pa1)
	s.register(t, "1001", pa2)
	s.register(t, "1002", pb)
	s.register(t, "1003", pc)

	display := s.cbStart(t, "A's display", "display.xml", pa2, true, "-m", "3")
	mark := s.cbMark()
	// -aa: the phones answer the audit OPTIONS with 200 on their own.
	b := s.cbStart(t, "B (busy with 1003, hangs up after the restart)", "uas_hangs_up.xml", pb, true, "-m", "1", "-d", "5000", "-aa")
	c := s.cbStart(t, "1003 calls B", "uac_callee_hangs_up.xml", pc, false, "-m", "1", "-s", "1002", "-set", "caller", "1003", "-aa")
	s.cbBusy(t, mark, "1002")
	s.cbRun(t, "A calls busy B", "uac_busy.xml", pa1, "-s", "1002", "-set", "caller", "1001")
	mark = s.cbMark()
	got, res := s.cbCode(t, "1001", pa1, "*39")
	expectStatus(t, "A dials *39 after a busy call", got, "603 CallBack Activated")
	s.cbWaitLog(t, mark, `action="persist #1 1001->1002 CCBS active seen=1002"`)
	display.expectScreen(t, 1, activatedScreen("1002"))

	s.kill9()
	mark = s.cbMark()
	s.restart()
	s.cbWaitLog(t, mark, `msg="calls restored" calls=1`)
	s.cbWaitLog(t, mark, `msg="call back requests restored" requests=1`)

	b.pass(t) // B hung up after the restart: BYE relayed, 200
	c.pass(t) // C got B's BYE through the restarted server
	bye := b.sent(t, "BYE")
	beforeBye(t, "the 603 to *39", res, bye)
	avail := display.expectAvailable(t, 2, "1002")
	if lag := avail.At.Sub(bye.At); lag < -50*time.Millisecond || lag > time.Second {
		t.Errorf("the availability screen came %v after B's BYE, want within 1s (B stayed busy over the restart)", lag)
	}
	display.mustAlert(t, "1002")
	display.pass(t)
	if log := s.cbLogSince(mark); strings.Contains(log, "not delivered") || strings.Contains(log, "ending it") {
		t.Errorf("after the restart: a screen was lost or the audit ended the live call:\n%s", log)
	}

	mark = s.cbMark()
	s.cbDial(t, pa1, pb)
	s.cbWaitLog(t, mark, `msg="call back ended" id=1 reason=completed`)
}

// TestF1_CCNR: B rings and does not answer: A gets 480 No Answer when the
// no-answer timer runs out; A dials *39: the request is CCNR. B's next call
// (C calls B, B answers and hangs up) ends, and only then A is told B is
// available (F11: for SIP devices the end of B's next call).
func TestF1_CCNR(t *testing.T) {
	need(t, "sipp")
	ports := callPorts(t, 4)
	pa1, pa2, pb, pc := ports[0], ports[1], ports[2], ports[3]
	s := startServer(t, cbConfig("", "[calls]\nno_answer_timeout = \"2s\"\n"))
	s.register(t, "1001", pa1)
	s.register(t, "1001", pa2)
	s.register(t, "1002", pb)
	s.register(t, "1003", pc)

	display := s.cbStart(t, "A's display", "display.xml", pa2, true, "-m", "3")
	ring := s.cbStart(t, "B rings, nobody answers", "uas_ring.xml", pb, true, "-m", "1")
	s.cbRun(t, "A calls B, no answer", "uac_no_answer.xml", pa1, "-s", "1002", "-set", "caller", "1001")
	ring.pass(t)

	mark := s.cbMark()
	got, _ := s.cbCode(t, "1001", pa1, "*39")
	expectStatus(t, "A dials *39 after no answer", got, "603 CallBack Activated")
	s.cbWaitLog(t, mark, `action="persist #1 1001->1002 CCNR active"`)
	display.expectScreen(t, 1, activatedScreen("1002"))

	// B's next call: C calls, B answers and hangs up.
	b, c := s.cbBusyB(t, pb, "1003", pc, true)
	if n := len(display.screens()); n != 1 {
		t.Fatalf("A got %d screens before B's next call ended, want 1: %q", n, display.screens())
	}
	b.pass(t)
	c.pass(t)
	bye := b.sent(t, "BYE")
	avail := display.expectAvailable(t, 2, "1002")
	if d := avail.At.Sub(bye.At); d < -50*time.Millisecond || d > time.Second {
		t.Errorf("the availability screen came %v after B's BYE, want after it, within 1s", d)
	}
	display.mustAlert(t, "1002")
	display.pass(t)
}

// f16TwoCallers: B is busy with D; A (1001), then C (1003) call B, get 486
// and activate. Returns once both are active, with B's and D's phones (D
// hangs up after cbHold) and A's and C's displays.
type f16 struct {
	s                  *server
	pa1, pa2, pc1, pc2 int
	pb, pd             int
	b, d               *cbPhone
	dispA, dispC       *cbPhone
	actA, actC         sipptrace.Message // the 603s
}

func f16TwoCallers(t *testing.T, policy string, screensA, screensC int) *f16 {
	ports := callPorts(t, 6)
	f := &f16{pa1: ports[0], pa2: ports[1], pc1: ports[2], pc2: ports[3], pb: ports[4], pd: ports[5]}
	f.s = startServer(t, cbConfig(fmt.Sprintf("policy = %q\n", policy), ""))
	s := f.s
	s.register(t, "1001", f.pa1)
	s.register(t, "1001", f.pa2)
	s.register(t, "1003", f.pc1)
	s.register(t, "1003", f.pc2)
	s.register(t, "1002", f.pb)
	s.register(t, "1004", f.pd)

	f.dispA = s.cbStart(t, "A's display", "display.xml", f.pa2, true, "-m", strconv.Itoa(screensA))
	f.dispC = s.cbStart(t, "C's display", "display.xml", f.pc2, true, "-m", strconv.Itoa(screensC))
	// B's phone hangs up on D after cbHold.
	f.b, f.d = s.cbBusyB(t, f.pb, "1004", f.pd, true)

	s.cbRun(t, "A calls busy B", "uac_busy.xml", f.pa1, "-s", "1002", "-set", "caller", "1001")
	got, res := s.cbCode(t, "1001", f.pa1, "*39")
	expectStatus(t, "A dials *39", got, "603 CallBack Activated")
	f.actA = res
	s.cbRun(t, "C calls busy B", "uac_busy.xml", f.pc1, "-s", "1002", "-set", "caller", "1003")
	got, res = s.cbCode(t, "1003", f.pc1, "*39")
	expectStatus(t, "C dials *39", got, "603 CallBack Activated")
	f.actC = res
	f.dispA.expectScreen(t, 1, activatedScreen("1002"))
	f.dispC.expectScreen(t, 1, activatedScreen("1002"))
	return f
}

// freed waits for B to hang up on D and checks both activations came first.
func (f *f16) freed(t *testing.T) sipptrace.Message {
	t.Helper()
	f.b.pass(t)
	f.d.pass(t)
	bye := f.b.sent(t, "BYE")
	beforeBye(t, "A's activation", f.actA, bye)
	beforeBye(t, "C's activation", f.actC, bye)
	return bye
}

// TestF16_TwoCallersNotifyAll: policy notify-all (Cisco): A and C wait on
// B; when B is free both are told and alerted; the first to dial (A) gets B.
func TestF16_TwoCallersNotifyAll(t *testing.T) {
	need(t, "sipp")
	f := f16TwoCallers(t, "notify-all", 3, 3)
	f.freed(t)
	f.dispA.expectAvailable(t, 2, "1002")
	f.dispC.expectAvailable(t, 2, "1002")
	f.dispA.mustAlert(t, "1002")
	f.dispC.mustAlert(t, "1002")
	f.dispA.pass(t)
	f.dispC.pass(t)

	mark := f.s.cbMark()
	f.s.cbDial(t, f.pa1, f.pb)
	f.s.cbWaitLog(t, mark, `msg="call back ended" id=1 reason=completed`)
}

// TestF16_TwoCallersFIFO: policy fifo (ETSI, UCware): A asked first, C
// second; when B is free only A is told and alerted, C is not (proved by
// the server's actions up to a later engine step, and by C's display). A
// cancels with #39: 603 "CallBack Cancelled", and then C is told.
func TestF16_TwoCallersFIFO(t *testing.T) {
	need(t, "sipp")
	f := f16TwoCallers(t, "fifo", 4, 3)
	s := f.s
	mark := s.cbMark()
	f.freed(t)
	f.dispA.expectAvailable(t, 2, "1002")
	// A barrier: the engine serves one event at a time, so once D's key
	// press is answered the step that saw B free is fully carried out (and
	// logged). It told A only.
	got, _ := s.cbCode(t, "1004", f.pd, "*39")
	expectStatus(t, "D dials *39 (nothing active)", got, "603 CallBack Not Active")
	if l := s.cbLogSince(mark); !strings.Contains(l, `action="1001: alert"`) ||
		strings.Contains(l, `action="1003: screen`) || strings.Contains(l, `action="1003: alert"`) {
		t.Fatalf("fifo: when B became free, A (first in line) must be told and alerted, C not:\n%s", l)
	}
	if n := len(f.dispC.screens()); n != 1 {
		t.Fatalf("fifo: C got %d screens, want only the activation: %q", n, f.dispC.screens())
	}

	got, _ = s.cbCode(t, "1001", f.pa1, "#39")
	expectStatus(t, "A dials #39", got, "603 CallBack Cancelled")
	f.dispA.expectScreen(t, 3, "CallBack is deactivated on 1002\nPress Exit to quit this screen")
	f.dispC.expectAvailable(t, 2, "1002")
	f.dispA.mustAlert(t, "1002")
	f.dispC.mustAlert(t, "1002")
	f.dispA.pass(t)
	f.dispC.pass(t)
}

// TestF5_F6_F7_F8_Screens: the answers of the CallBack key on hook.
// F7 nothing active; F8 unknown DN; F5 one request per caller, F6 asking
// for another DN asks to replace, asking again is OK and replaces; cancel.
func TestF5_F6_F7_F8_Screens(t *testing.T) {
	need(t, "sipp")
	ports := callPorts(t, 2)
	pa1, pa2 := ports[0], ports[1]
	s := startServer(t, cbConfig("", ""))
	s.register(t, "1001", pa1)
	s.register(t, "1001", pa2)
	display := s.cbStart(t, "A's display", "display.xml", pa2, true, "-m", "7")

	steps := []struct {
		why, code, status, screen string
	}{
		{"F7: nothing active", "*39", "603 CallBack Not Active", notActiveScreen},
		{"F8: unknown DN", "*399999", "603 CallBack Cannot Be Activated", "CallBack cannot be activated for 9999."},
		{"asked for 1002 (not registered: CCNL)", "*391002", "603 CallBack Activated", activatedScreen("1002")},
		{"F5, F6: asked for another DN", "*391003", "603 CallBack Already Active",
			"CallBack is already active on 1002. Press OK to activate on 1003. Press Exit to quit this screen."},
		{"F6: asked again is OK: replaced", "*391003", "603 CallBack Activated", activatedScreen("1003")},
		{"the key shows the state: on 1003", "*39", "603 CallBack Activated", activatedScreen("1003")},
		{"cancel", "#39", "603 CallBack Cancelled", "CallBack is deactivated on 1003\nPress Exit to quit this screen"},
	}
	for i, st := range steps {
		mark := s.cbMark()
		got, _ := s.cbCode(t, "1001", pa1, st.code)
		expectStatus(t, fmt.Sprintf("step %d (%s): A dials %s", i+1, st.why, st.code), got, st.status)
		display.expectScreen(t, i+1, st.screen)
		switch i + 1 {
		case 3:
			s.cbWaitLog(t, mark, `action="persist #1 1001->1002 CCNL active seen=1002"`)
		case 5:
			s.cbWaitLog(t, mark, `msg="call back ended" id=1 reason=replaced`)
			s.cbWaitLog(t, mark, `action="persist #2 1001->1003 CCNL active seen=1003"`)
		case 7:
			s.cbWaitLog(t, mark, `msg="call back ended" id=2 reason=cancelled`)
		}
	}
	display.pass(t)
	// Nothing is left: *39 shows F7 again.
	got, _ := s.cbCode(t, "1001", pa1, "*39")
	expectStatus(t, "A dials *39 after cancelling", got, "603 CallBack Not Active")
}
