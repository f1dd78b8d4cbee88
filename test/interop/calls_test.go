package interop

// The call matrix of the registrar and the B2BUA, played with SIPp as the
// phones: every test asserts what a user of a phone would see, that is the
// SIP responses in their order (the scenarios' <recv> steps, SIPp's exit
// code and the responses read back from SIPp's message trace), and, where a
// failed call must leave a line free again, a following call that works.
//
// Waits are deterministic: a device SIPp counts as ready once its port is
// bound (read from /proc/net), a line's state is read from the server's
// "line state" log lines, and every wait has a deadline.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/callbackd/callbackd/test/sipptrace"
)

// callTimeout bounds one SIPp run of a call scenario.
const callTimeout = 15 * time.Second

// sippRun is one SIPp run with its message trace.
type sippRun struct {
	sippResult
	Trace string // SIPp's -trace_msg file: every message sent and received
	Errs  string // SIPp's -trace_err file
}

// traceArgs makes SIPp write its message trace and errors into dir.
func traceArgs(dir string) []string {
	return []string{"-trace_msg", "-message_file", filepath.Join(dir, "messages.log"),
		"-error_file", filepath.Join(dir, "errors.log")}
}

func readTraces(dir string, r *sippRun) {
	b, _ := os.ReadFile(filepath.Join(dir, "messages.log"))
	r.Trace = string(b)
	b, _ = os.ReadFile(filepath.Join(dir, "errors.log"))
	r.Errs = string(b)
}

// sippPlay runs a scenario in the foreground (a caller, or a REGISTER) from
// local port and returns once SIPp exits.
func (s *server) sippPlay(t *testing.T, scenario string, lport int, args ...string) sippRun {
	t.Helper()
	dir := t.TempDir()
	a := append([]string{"-p", strconv.Itoa(lport), "-m", "1"}, traceArgs(dir)...)
	r := sippRun{sippResult: s.sipp(t, scenario, callTimeout, append(a, args...)...)}
	readTraces(dir, &r)
	return r
}

// sippCall plays a caller scenario: line caller calls callee from local port.
func (s *server) sippCall(t *testing.T, scenario, caller, callee string, lport int, args ...string) sippRun {
	t.Helper()
	return s.sippPlay(t, scenario, lport, append([]string{"-s", callee, "-set", "caller", caller}, args...)...)
}

// sippDevice is a SIPp playing a phone that waits for calls, in the background.
type sippDevice struct {
	name string
	dir  string
	cmd  *exec.Cmd
	out  bytes.Buffer
	done chan struct{}
}

// sippDevice starts a SIPp answering scenario listening on port (the port its
// line registered from, so the server's INVITE reaches it) and returns once
// the port is bound, so a call placed after it cannot arrive too early.
// Transport args (-t t1) pass through.
func (s *server) sippDevice(t *testing.T, name, scenario string, port int, args ...string) *sippDevice {
	t.Helper()
	d := &sippDevice{name: name, dir: t.TempDir(), done: make(chan struct{})}
	a := append([]string{"-p", strconv.Itoa(port), "-m", "1"}, traceArgs(d.dir)...)
	d.cmd = s.sippCmd(t, context.Background(), scenario, callTimeout, append(a, args...)...)
	d.cmd.Stdout, d.cmd.Stderr = &d.out, &d.out
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("device %s: %v", name, err)
	}
	go func() { d.cmd.Wait(); close(d.done) }()
	proto := "udp"
	for _, x := range args {
		if x == "t1" || x == "tn" {
			proto = "tcp"
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for !portBound(proto, port) {
		select {
		case <-d.done:
			t.Fatalf("device %s (%s) exited before it listened on %s port %d: exit %d\n%s", name, scenario, proto, port, d.cmd.ProcessState.ExitCode(), d.out.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("device %s (%s) does not listen on %s port %d after 5s", name, scenario, proto, port)
		}
	}
	return d
}

// wait waits for the device's scenario to end (bounded by callTimeout).
func (d *sippDevice) wait(t *testing.T) sippRun {
	t.Helper()
	select {
	case <-d.done:
	case <-time.After(callTimeout + 10*time.Second):
		t.Fatalf("device %s did not end", d.name)
	}
	r := sippRun{sippResult: sippResult{Code: d.cmd.ProcessState.ExitCode(), Output: d.out.String()}}
	readTraces(d.dir, &r)
	return r
}

// portBound reports whether a socket is bound to 127.0.0.1:port (UDP) or
// listens there (TCP), from /proc/net (Linux; CI runs Debian).
func portBound(proto string, port int) bool {
	want := fmt.Sprintf(":%04X", port)
	for _, f := range []string{"/proc/net/" + proto, "/proc/net/" + proto + "6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 4 || !strings.HasSuffix(fields[1], want) {
				continue
			}
			if proto == "udp" || fields[3] == "0A" { // 0A: TCP_LISTEN
				return true
			}
		}
	}
	return false
}

// mustPass fails the test unless the SIPp run exited 0 (every step of its
// scenario happened, in order).
func mustPass(t *testing.T, what string, r sippRun) {
	t.Helper()
	if r.Code != 0 {
		t.Fatalf("%s: sipp exit %d, want 0\nerrors:\n%s\nmessages:\n%s\noutput:\n%s", what, r.Code, r.Errs, r.Trace, lastChars(r.Output, 3000))
	}
}

func lastChars(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// responses lists the responses a SIPp run received, in order, as
// "CODE Reason (CSeq-method)", leaving out 100 Trying (hop by hop, and
// sent only when an answer takes longer than 200 ms) and retransmissions.
func (r sippRun) responses() []string {
	var out []string
	seen := map[string]bool{}
	for _, m := range sipptrace.Parse(r.Trace) {
		if !m.Received || !strings.HasPrefix(m.Text, "SIP/2.0 ") {
			continue
		}
		status := strings.TrimPrefix(m.StartLine(), "SIP/2.0 ")
		if strings.HasPrefix(status, "100 ") {
			continue
		}
		f := strings.Fields(m.Header("CSeq"))
		cseq := strings.Join(f, " ")
		key := status + "|" + cseq + "|" + m.Header("To")
		if seen[key] {
			continue // a retransmission
		}
		seen[key] = true
		method := ""
		if len(f) == 2 {
			method = f[1]
		}
		out = append(out, status+" ("+method+")")
	}
	return out
}

// requests lists the requests a SIPp run received, in order (methods),
// retransmissions left out.
func (r sippRun) requests() []string {
	var out []string
	seen := map[string]bool{}
	for _, m := range sipptrace.Parse(r.Trace) {
		if !m.Received || strings.HasPrefix(m.Text, "SIP/2.0 ") {
			continue
		}
		key := m.Header("Via") + "|" + m.Header("CSeq")
		if seen[key] {
			continue
		}
		seen[key] = true
		method, _, _ := strings.Cut(m.StartLine(), " ")
		out = append(out, method)
	}
	return out
}

// received returns the received messages whose start line begins with
// prefix ("SIP/2.0 200", "INVITE").
func (r sippRun) received(prefix string) []sipptrace.Message {
	var out []sipptrace.Message
	for _, m := range sipptrace.Parse(r.Trace) {
		if m.Received && strings.HasPrefix(m.Text, prefix) {
			out = append(out, m)
		}
	}
	return out
}

func expectSeq(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\n got %q\nwant %q", what, got, want)
	}
}

var lineStateRE = regexp.MustCompile(`msg="line state" dn=(\S+) from=(\S+) to=(\S+) calls=(\d+) devices=(\d+)`)

// lineState returns the last state the server logged for dn ("" if none)
// and its call count.
func (s *server) lineState(dn string) (string, int) {
	state, calls := "", 0
	for _, m := range lineStateRE.FindAllStringSubmatch(s.Log(), -1) {
		if m[1] == dn {
			state = m[3]
			calls, _ = strconv.Atoi(m[4])
		}
	}
	return state, calls
}

// waitLine waits until the server's last logged state of line dn is state
// with the given number of calls (B5: aggregated over its devices).
func (s *server) waitLine(t *testing.T, dn, state string, calls int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, n := s.lineState(dn)
		if got == state && n == calls {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("line %s: state %q with %d calls, want %q with %d calls\n", dn, got, n, state, calls)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func onePort(t *testing.T) int { return callPorts(t, 1)[0] }

// ---------------------------------------------------------------------------

// TestRegisterDigest: REGISTER with digest authentication as a phone does it.
func TestRegisterDigest(t *testing.T) {
	t.Parallel()
	t.Run("ok, 200 lists the contact", func(t *testing.T) {
		t.Parallel()
		s := startServer(t, noOffer+demoLines)
		p := onePort(t)
		r := s.sippPlay(t, "register.xml", p, "-s", "1002", "-au", "1002", "-ap", "demo1002", "-set", "expires", "300")
		mustPass(t, "register 1002", r)
		expectSeq(t, "responses to REGISTER", r.responses(), "401 Unauthorized (REGISTER)", "200 OK (REGISTER)")
		res := r.received("SIP/2.0 200")
		if len(res) == 0 {
			t.Fatal("no 200 in the trace")
		}
		contacts := res[len(res)-1].Headers("Contact")
		want := fmt.Sprintf("<sip:1002@127.0.0.1:%d;transport=UDP>", p)
		if len(contacts) != 1 || !strings.HasPrefix(contacts[0], want) || !regexp.MustCompile(`;expires=(29\d|300)\b`).MatchString(contacts[0]) {
			t.Errorf("200 OK Contact = %q, want one %s;expires=300", contacts, want)
		}
		s.waitLine(t, "1002", "idle", 0)
	})
	t.Run("wrong password 403", func(t *testing.T) {
		t.Parallel()
		s := startServer(t, noOffer+demoLines)
		r := s.sippPlay(t, "register_wrong_password.xml", onePort(t), "-s", "1002", "-au", "1002", "-ap", "wrong")
		mustPass(t, "register 1002 with a wrong password", r)
		expectSeq(t, "responses to REGISTER", r.responses(), "401 Unauthorized (REGISTER)", "403 Forbidden (REGISTER)")
		if st, _ := s.lineState("1002"); st != "" && st != "unregistered" {
			t.Errorf("line 1002 is %q after a refused REGISTER", st)
		}
	})
	t.Run("another line's password 403", func(t *testing.T) {
		t.Parallel()
		s := startServer(t, noOffer+demoLines)
		// 1001's valid credentials for line 1002: user and AOR differ.
		r := s.sippPlay(t, "register_wrong_password.xml", onePort(t), "-s", "1002", "-au", "1001", "-ap", "demo1001")
		mustPass(t, "register 1002 as 1001", r)
		expectSeq(t, "responses to REGISTER", r.responses(), "401 Unauthorized (REGISTER)", "403 Forbidden (REGISTER)")
	})
	t.Run("unknown DN 401 then 403, as a known one", func(t *testing.T) {
		t.Parallel()
		s := startServer(t, noOffer+demoLines)
		// B7: a REGISTER does not tell which lines exist (no 404).
		r := s.sippPlay(t, "register_wrong_password.xml", onePort(t), "-s", "1999", "-au", "1999", "-ap", "demo1999")
		mustPass(t, "register 1999", r)
		expectSeq(t, "responses to REGISTER", r.responses(), "401 Unauthorized (REGISTER)", "403 Forbidden (REGISTER)")
	})
	t.Run("max devices 403", func(t *testing.T) {
		t.Parallel()
		s := startServer(t, noOffer+"[[line]]\ndn = \"1002\"\npassword = \"demo1002\"\nmax_devices = 1\n")
		p := callPorts(t, 2)
		s.register(t, "1002", p[0])
		// register_wrong_password.xml expects 401, credentials, 403: here
		// the password is right but the line has its one device already.
		r := s.sippPlay(t, "register_wrong_password.xml", p[1], "-s", "1002", "-au", "1002", "-ap", "demo1002")
		mustPass(t, "second device of 1002", r)
		expectSeq(t, "responses to REGISTER", r.responses(), "401 Unauthorized (REGISTER)", "403 Forbidden (max devices reached) (REGISTER)")
		s.waitLine(t, "1002", "idle", 0)
		// A refresh of the registered device is still accepted.
		s.register(t, "1002", p[0])
	})
	t.Run("de-register with expires 0", func(t *testing.T) {
		t.Parallel()
		s := startServer(t, noOffer+demoLines)
		p := callPorts(t, 2) // 1002's device, 1001's
		s.register(t, "1002", p[0])
		s.register(t, "1001", p[1])
		s.waitLine(t, "1002", "idle", 0)
		r := s.sippPlay(t, "register.xml", p[0], "-s", "1002", "-au", "1002", "-ap", "demo1002", "-set", "expires", "0")
		mustPass(t, "de-register 1002", r)
		res := r.received("SIP/2.0 200")
		if len(res) == 0 {
			t.Fatal("no 200 in the trace")
		}
		if c := res[len(res)-1].Headers("Contact"); len(c) != 0 {
			t.Errorf("200 OK to the de-registration still lists %q", c)
		}
		s.waitLine(t, "1002", "unregistered", 0)
		// A call to the line now finds no device.
		mustPass(t, "call 1001 -> 1002", s.sippCall(t, "uac_unavailable.xml", "1001", "1002", p[1]))
	})
	t.Run("expiry and refresh", func(t *testing.T) {
		t.Parallel()
		s := startServerWith(t, "min_expires = 1\ndefault_expires = 1", noOffer+demoLines)
		p := callPorts(t, 2)
		// A binding of 2 s is refreshed once (the 200 lists it), then left
		// to expire: the line goes unregistered without a REGISTER.
		for i := 0; i < 2; i++ {
			r := s.sippPlay(t, "register.xml", p[0], "-s", "1002", "-au", "1002", "-ap", "demo1002", "-set", "expires", "2")
			mustPass(t, "register 1002 for 2 s", r)
		}
		s.waitLine(t, "1002", "idle", 0)
		s.waitLog("registration expired", 10*time.Second)
		s.waitLine(t, "1002", "unregistered", 0)
		s.register(t, "1001", p[1])
		mustPass(t, "call 1001 -> expired 1002", s.sippCall(t, "uac_unavailable.xml", "1001", "1002", p[1]))
	})
	t.Run("423 below min_expires", func(t *testing.T) {
		t.Parallel()
		s := startServerWith(t, "min_expires = 60", demoLines)
		p := callPorts(t, 1)
		r := s.sippPlay(t, "register_too_brief.xml", p[0], "-s", "1002", "-au", "1002", "-ap", "demo1002")
		mustPass(t, "register 1002 for 10 s", r)
		res := r.received("SIP/2.0 423")
		if len(res) != 1 || len(res[0].Headers("Min-Expires")) != 1 || res[0].Headers("Min-Expires")[0] != "60" {
			t.Fatalf("423 with Min-Expires: 60 expected, got %d responses %v", len(res), res)
		}
	})
	t.Run("survives restart", func(t *testing.T) {
		t.Parallel()
		s := startServer(t, noOffer+demoLines)
		p := callPorts(t, 2) // 1002's device, 1001's
		s.register(t, "1002", p[0])
		s.register(t, "1001", p[1])
		s.kill9()
		s.restart()
		if !strings.Contains(s.Log(), `msg="registrations restored" bindings=2 dropped=0`) {
			t.Fatalf("the restarted server did not restore both bindings")
		}
		// Neither device registers again: 1002's device gets the call, and
		// 1001, authenticating its INVITE (407, B7), is still a registered
		// line (no 403 "not registered").
		b := s.sippDevice(t, "1002", "uas.xml", p[0])
		a := s.sippCall(t, "uac.xml", "1001", "1002", p[1], "-d", "100")
		mustPass(t, "call 1001 -> 1002 after restart", a)
		mustPass(t, "device 1002 after restart", b.wait(t))
		expectSeq(t, "caller's responses", a.responses(), challenged, "180 Ringing (INVITE)", "200 OK (INVITE)", "200 OK (BYE)")
	})
}

// challenged is the first response a line's caller gets (B7: every INVITE
// of a line is challenged; the scenarios answer it with -au/-ap).
const challenged = "407 Proxy Authentication Required (INVITE)"

// connected plays a call 1001 -> 1002 where the caller's scenario and the
// callee's decide who hangs up, and checks both lines are free after it.
func connected(t *testing.T, uac, uas string, wantCaller, wantCallee []string) {
	s := startServer(t, noOffer+demoLines)
	p := callPorts(t, 2)
	s.register(t, "1002", p[0])
	s.register(t, "1001", p[1])
	b := s.sippDevice(t, "1002", uas, p[0], "-d", "200")
	a := s.sippCall(t, uac, "1001", "1002", p[1], "-d", "200")
	mustPass(t, "caller 1001", a)
	rb := b.wait(t)
	mustPass(t, "callee 1002", rb)
	expectSeq(t, "caller's responses", a.responses(), append([]string{challenged}, wantCaller...)...)
	expectSeq(t, "callee's responses", rb.responses(), wantCallee...)
	// One INVITE per answered INVITE of the caller (re-INVITEs included),
	// each with the caller's SDP.
	want := 0
	for _, w := range wantCaller {
		if w == "200 OK (INVITE)" {
			want++
		}
	}
	inv := rb.received("INVITE")
	if len(inv) != want {
		t.Errorf("callee got %d INVITEs, want %d", len(inv), want)
	}
	for i, m := range inv {
		if !strings.Contains(m.Text, "m=audio") {
			t.Errorf("INVITE %d to the callee has no SDP", i+1)
		}
	}
	s.waitLine(t, "1001", "idle", 0)
	s.waitLine(t, "1002", "idle", 0)
}

// TestCallAnsweredCallerHangsUp: A calls B, B answers, A hangs up; the BYE
// reaches B and both lines are idle again.
func TestCallAnsweredCallerHangsUp(t *testing.T) {
	t.Parallel()
	connected(t, "uac.xml", "uas.xml",
		[]string{"180 Ringing (INVITE)", "200 OK (INVITE)", "200 OK (BYE)"},
		nil)
}

// TestCallAnsweredCalleeHangsUp: A calls B, B answers, B hangs up; the BYE
// reaches A and both lines are idle again.
func TestCallAnsweredCalleeHangsUp(t *testing.T) {
	t.Parallel()
	connected(t, "uac_callee_hangs_up.xml", "uas_hangs_up.xml",
		[]string{"180 Ringing (INVITE)", "200 OK (INVITE)"},
		[]string{"200 OK (BYE)"})
}

// holdMs is how long a first call stays connected while a second caller
// tries the busy line; the second attempt starts once the server reports
// the line busy and takes milliseconds, so this is only a generous bound.
const holdMs = "3000"

// TestBusy486: a line at its busy trigger (1 by default) refuses a new call
// with 486 Busy Here, and a device's own 486 reaches the caller.
func TestBusy486(t *testing.T) {
	t.Parallel()
	// 1002 is busy with a first call, held holdMs: taken (1001 -> 1002) or
	// placed by 1002 itself (1002 -> 1003: the line's own outgoing call
	// counts toward its busy trigger). A second caller gets 486.
	for _, c := range []struct{ name, from, to, second string }{
		{"callee in a call", "1001", "1002", "1003"},
		{"callee calling out", "1002", "1003", "1001"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, noOffer+demoLines)
			p := callPorts(t, 3)
			port := map[string]int{"1002": p[0], "1001": p[1], "1003": p[2]}
			for dn, pt := range port {
				s.register(t, dn, pt)
			}
			dev := s.sippDevice(t, c.to, "uas.xml", port[c.to])
			first := make(chan sippRun, 1)
			go func() { first <- s.sippCall(t, "uac.xml", c.from, c.to, port[c.from], "-d", holdMs) }()
			s.waitLine(t, "1002", "busy", 1)
			second := s.sippCall(t, "uac_busy.xml", c.second, "1002", port[c.second])
			mustPass(t, "second caller "+c.second, second)
			expectSeq(t, "second caller's responses", second.responses(), challenged, "486 Busy Here (INVITE)")
			mustPass(t, "first call "+c.from+" -> "+c.to, <-first)
			mustPass(t, "device "+c.to, dev.wait(t))
			s.waitLine(t, "1002", "idle", 0)
		})
	}
	t.Run("device answers 486", func(t *testing.T) {
		t.Parallel()
		s := startServer(t, noOffer+demoLines)
		p := callPorts(t, 2)
		s.register(t, "1002", p[0])
		s.register(t, "1001", p[1])
		b := s.sippDevice(t, "1002", "uas_busy.xml", p[0])
		a := s.sippCall(t, "uac_busy.xml", "1001", "1002", p[1])
		mustPass(t, "caller 1001", a)
		rb := b.wait(t)
		mustPass(t, "device 1002 (486, then ACK)", rb)
		expectSeq(t, "caller's responses", a.responses(), challenged, "486 Busy Here (INVITE)")
		expectSeq(t, "device's requests", rb.requests(), "INVITE", "ACK")
		s.waitLine(t, "1002", "idle", 0)
		s.waitLine(t, "1001", "idle", 0)
	})
}

// TestCancelWhileRinging: A hangs up while B rings. A gets 200 for its
// CANCEL and 487 for the INVITE, B's device gets a CANCEL, and the line is
// free: the next call to B rings and is answered.
func TestCancelWhileRinging(t *testing.T) {
	t.Parallel()
	s := startServer(t, noOffer+demoLines)
	p := callPorts(t, 2)
	s.register(t, "1002", p[0])
	s.register(t, "1001", p[1])
	b := s.sippDevice(t, "1002", "uas_ring.xml", p[0])
	a := s.sippCall(t, "uac_cancel.xml", "1001", "1002", p[1], "-d", "200")
	mustPass(t, "caller 1001", a)
	rb := b.wait(t)
	mustPass(t, "device 1002 (ring, CANCEL)", rb)
	expectSeq(t, "caller's responses", a.responses(), challenged, "180 Ringing (INVITE)", "200 OK (CANCEL)", "487 Request Terminated (INVITE)")
	expectSeq(t, "device's requests", rb.requests(), "INVITE", "CANCEL", "ACK")
	s.waitLine(t, "1002", "idle", 0)
	s.waitLine(t, "1001", "idle", 0)

	b = s.sippDevice(t, "1002", "uas.xml", p[0])
	mustPass(t, "next call 1001 -> 1002", s.sippCall(t, "uac.xml", "1001", "1002", p[1], "-d", "100"))
	mustPass(t, "device 1002, next call", b.wait(t))
}

// TestNoAnswer: B's device rings and nobody answers. When the no-answer
// timer runs out the server cancels the device and tells A 480 No Answer.
func TestNoAnswer(t *testing.T) {
	t.Parallel()
	s := startServer(t, noOffer+demoLines+"[calls]\nno_answer_timeout = \"1s\"\n")
	p := callPorts(t, 2)
	s.register(t, "1002", p[0])
	s.register(t, "1001", p[1])
	b := s.sippDevice(t, "1002", "uas_ring.xml", p[0])
	start := time.Now()
	a := s.sippCall(t, "uac_no_answer.xml", "1001", "1002", p[1])
	took := time.Since(start)
	mustPass(t, "caller 1001", a)
	rb := b.wait(t)
	mustPass(t, "device 1002 (ring, CANCEL)", rb)
	expectSeq(t, "caller's responses", a.responses(), challenged, "180 Ringing (INVITE)", "480 No Answer (INVITE)")
	expectSeq(t, "device's requests", rb.requests(), "INVITE", "CANCEL", "ACK")
	if took < time.Second {
		t.Errorf("480 No Answer after %v, before the 1s no-answer timeout", took)
	}
	s.waitLine(t, "1002", "idle", 0)
	s.waitLine(t, "1001", "idle", 0)
}

// TestUnknownDN404: a call to a number that is no line gets 404 Not Found.
func TestUnknownDN404(t *testing.T) {
	t.Parallel()
	s := startServer(t, noOffer+demoLines)
	p := onePort(t)
	s.register(t, "1001", p)
	a := s.sippCall(t, "uac_not_found.xml", "1001", "1999", p)
	mustPass(t, "caller 1001", a)
	expectSeq(t, "caller's responses", a.responses(), challenged, "404 Not Found (INVITE)")
	s.waitLine(t, "1001", "idle", 0)
}

// TestUnregistered480: a call to a line without a registered device gets
// 480 Temporarily Unavailable, without ringing.
func TestUnregistered480(t *testing.T) {
	t.Parallel()
	s := startServer(t, noOffer+demoLines)
	p := onePort(t)
	s.register(t, "1001", p)
	a := s.sippCall(t, "uac_unavailable.xml", "1001", "1002", p)
	mustPass(t, "caller 1001", a)
	expectSeq(t, "caller's responses", a.responses(), challenged, "480 Temporarily Unavailable (INVITE)")
	s.waitLine(t, "1001", "idle", 0)
}

// TestInviteFromUnregisteredSourceChallenged: an INVITE from an address no
// device of the calling line registered from is challenged with 407; with
// the line's credentials the call goes through, unless the line has no
// registered device (403) or the password is wrong (403).
func TestInviteFromUnregisteredSourceChallenged(t *testing.T) {
	t.Parallel()
	t.Run("credentials, call connects", func(t *testing.T) {
		t.Parallel()
		s := startServer(t, noOffer+demoLines)
		p := callPorts(t, 3) // 1002's device, 1001's device, 1001 calling from elsewhere
		s.register(t, "1002", p[0])
		s.register(t, "1001", p[1])
		b := s.sippDevice(t, "1002", "uas.xml", p[0])
		a := s.sippCall(t, "uac_auth.xml", "1001", "1002", p[2], "-au", "1001", "-ap", "demo1001", "-d", "100")
		mustPass(t, "caller 1001 from an unregistered port", a)
		mustPass(t, "device 1002", b.wait(t))
		// The 180 is left out: B's SIPp sends 180 and 200 back to back,
		// and under load the server may take the 200 first (sipgo hands
		// each response to its transaction in a goroutine of its own),
		// after which the 180 is stale. A
		// provisional response is unreliable anyway (RFC 3261 17.1.1); the
		// point here is the challenge and the call.
		var final []string
		for _, r := range a.responses() {
			if r != "180 Ringing (INVITE)" {
				final = append(final, r)
			}
		}
		expectSeq(t, "caller's responses", final,
			"407 Proxy Authentication Required (INVITE)", "200 OK (INVITE)", "200 OK (BYE)")
		s.waitLine(t, "1002", "idle", 0)
	})
	t.Run("line without device 403", func(t *testing.T) {
		t.Parallel()
		s := startServer(t, noOffer+demoLines)
		p := callPorts(t, 2)
		s.register(t, "1002", p[0])
		a := s.sippCall(t, "uac_auth_forbidden.xml", "1003", "1002", p[1], "-au", "1003", "-ap", "demo1003")
		mustPass(t, "caller 1003 (no device registered)", a)
		expectSeq(t, "caller's responses", a.responses(),
			"407 Proxy Authentication Required (INVITE)", "403 Forbidden (not registered) (INVITE)")
		if st, n := s.lineState("1002"); st != "idle" || n != 0 {
			t.Errorf("line 1002 is %s with %d calls: the refused call reached it", st, n)
		}
	})
	t.Run("wrong password 403", func(t *testing.T) {
		t.Parallel()
		s := startServer(t, noOffer+demoLines)
		p := callPorts(t, 3)
		s.register(t, "1002", p[0])
		s.register(t, "1001", p[1])
		a := s.sippCall(t, "uac_auth_forbidden.xml", "1001", "1002", p[2], "-au", "1001", "-ap", "wrong")
		mustPass(t, "caller 1001 with a wrong password", a)
		expectSeq(t, "caller's responses", a.responses(),
			"407 Proxy Authentication Required (INVITE)", "403 Forbidden (INVITE)")
	})
}

// TestCallTCP: phones on TCP (-t t1) register and call, also across
// transports (a UDP phone and a TCP phone), with either side hanging up.
// Every message a phone receives over TCP carries Content-Length, which
// frames messages on a stream (RFC 3261 18.3: it MUST be used with stream
// transports).
func TestCallTCP(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		caller, callee string
		uac, uas       string
	}{
		{"tcp", "tcp", "uac.xml", "uas.xml"},
		{"udp", "tcp", "uac.xml", "uas.xml"},
		{"tcp", "udp", "uac.xml", "uas.xml"},
		{"tcp", "tcp", "uac_callee_hangs_up.xml", "uas_hangs_up.xml"},
	} {
		hangup := "caller hangs up"
		if tc.uas == "uas_hangs_up.xml" {
			hangup = "callee hangs up"
		}
		t.Run(tc.caller+" calls "+tc.callee+", "+hangup, func(t *testing.T) {
			t.Parallel()
			tp := func(x string) []string {
				if x == "tcp" {
					return []string{"-t", "t1"}
				}
				return []string{"-t", "u1"}
			}
			s := startServer(t, noOffer+demoLines)
			p := callPorts(t, 2)
			s.register(t, "1002", p[0], tp(tc.callee)...)
			s.register(t, "1001", p[1], tp(tc.caller)...)
			b := s.sippDevice(t, "1002", tc.uas, p[0], append(tp(tc.callee), "-d", "100")...)
			a := s.sippCall(t, tc.uac, "1001", "1002", p[1], append(tp(tc.caller), "-d", "100")...)
			mustPass(t, "caller 1001 over "+tc.caller, a)
			rb := b.wait(t)
			mustPass(t, "device 1002 over "+tc.callee, rb)
			if tc.uas == "uas.xml" {
				expectSeq(t, "caller's responses", a.responses(), challenged, "180 Ringing (INVITE)", "200 OK (INVITE)", "200 OK (BYE)")
				expectSeq(t, "callee's requests", rb.requests(), "INVITE", "ACK", "BYE")
			} else {
				expectSeq(t, "caller's responses", a.responses(), challenged, "180 Ringing (INVITE)", "200 OK (INVITE)")
				expectSeq(t, "caller's requests", a.requests(), "BYE")
				expectSeq(t, "callee's responses", rb.responses(), "200 OK (BYE)")
			}
			for _, x := range []struct {
				who, tp string
				r       sippRun
			}{{"caller", tc.caller, a}, {"callee", tc.callee, rb}} {
				want := strings.ToUpper(x.tp) + " message received"
				if got := strings.Count(x.r.Trace, want); got == 0 || got != strings.Count(x.r.Trace, "message received") {
					t.Errorf("%s did not get its messages over %s only", x.who, x.tp)
				}
				if x.tp == "tcp" {
					for _, m := range sipptrace.Parse(x.r.Trace) {
						if m.Received && m.Header("Content-Length") == "" && m.Header("l") == "" {
							t.Errorf("%s got a message over TCP without Content-Length (RFC 3261 18.3):\n%s", x.who, m.Text)
						}
					}
				}
			}
			s.waitLine(t, "1001", "idle", 0)
			s.waitLine(t, "1002", "idle", 0)
		})
	}
}

// TestTwoDevicesOneLine (B5): a line with two registered devices. A call
// rings both; the first to answer gets the call, the other gets CANCEL.
// While the call lasts the line is busy as a whole: a second call gets 486
// even though one device is idle.
func TestTwoDevicesOneLine(t *testing.T) {
	t.Parallel()
	s := startServer(t, noOffer+demoLines)
	p := callPorts(t, 4) // 1002's devices 1 and 2, 1001's, 1003's
	s.register(t, "1002", p[0])
	s.register(t, "1002", p[1])
	s.register(t, "1001", p[2])
	s.register(t, "1003", p[3])
	s.waitLine(t, "1002", "idle", 0)
	if !regexp.MustCompile(`msg="line state" dn=1002 from=idle to=idle calls=0 devices=2`).MatchString(s.Log()) {
		t.Fatalf("line 1002 does not show two devices")
	}
	// Device 1 rings for a moment, then answers; device 2 rings until it is
	// cancelled. -d is device 1's ringing time.
	d1 := s.sippDevice(t, "1002/1", "uas_answer_after_ringing.xml", p[0], "-d", "300")
	d2 := s.sippDevice(t, "1002/2", "uas_ring.xml", p[1])
	first := make(chan sippRun, 1)
	go func() { first <- s.sippCall(t, "uac.xml", "1001", "1002", p[2], "-d", holdMs) }()

	r2 := d2.wait(t) // cancelled once device 1 answered
	mustPass(t, "device 2 (rings, gets CANCEL)", r2)
	expectSeq(t, "device 2's requests", r2.requests(), "INVITE", "CANCEL", "ACK")
	s.waitLine(t, "1002", "busy", 1)

	// B5: busy is the line's, not a device's.
	c := s.sippCall(t, "uac_busy.xml", "1003", "1002", p[3])
	mustPass(t, "caller 1003 while 1002 is in a call on its other device", c)
	expectSeq(t, "caller 1003's responses", c.responses(), challenged, "486 Busy Here (INVITE)")

	a := <-first
	mustPass(t, "caller 1001", a)
	r1 := d1.wait(t)
	mustPass(t, "device 1 (answers, gets BYE)", r1)
	expectSeq(t, "device 1's requests", r1.requests(), "INVITE", "ACK", "BYE")
	s.waitLine(t, "1002", "idle", 0)
}

// TestDevicesAnswerAtOnce (B5): every device of a line answers at once. The
// first answer the server takes connects the call; the other answers came
// too late and each must be acknowledged (ACK) and released (BYE) by the
// server (RFC 3261 15; 16.7 step 5 for the forking proxy it mirrors), or
// that phone stays off hook in a call nobody confirmed. Eight devices and
// eight rounds, because how close the answers come varies from run to run.
func TestDevicesAnswerAtOnce(t *testing.T) {
	t.Parallel()
	const n = 8
	s := startServer(t, noOffer+demoLines+"[[line]]\ndn = \"2000\"\npassword = \"demo2000\"\nmax_devices = 10\n")
	p := callPorts(t, n+1) // 2000's devices, then 1001's
	for i := 0; i < n; i++ {
		s.register(t, "2000", p[i])
	}
	s.register(t, "1001", p[n])
	for round := 1; round <= 8; round++ {
		var ds []*sippDevice
		for i := 0; i < n; i++ {
			ds = append(ds, s.sippDevice(t, fmt.Sprintf("2000/%d", i+1), "uas_answer_at_once.xml", p[i]))
		}
		a := s.sippCall(t, "uac.xml", "1001", "2000", p[n], "-d", "100")
		mustPass(t, fmt.Sprintf("round %d: caller 1001", round), a)
		for _, d := range ds {
			r := d.wait(t)
			mustPass(t, fmt.Sprintf("round %d: device %s (answers, gets ACK and BYE)", round, d.name), r)
			expectSeq(t, fmt.Sprintf("round %d: device %s's requests", round, d.name), r.requests(), "INVITE", "ACK", "BYE")
		}
		s.waitLine(t, "2000", "idle", 0)
	}
}

// TestReinviteHoldResume: in a connected call A puts B on hold and resumes
// with re-INVITEs; the server relays each offer to B and B's answer back
// (a=sendonly -> a=recvonly, then a=sendrecv), with the ACKs, then the BYE.
func TestReinviteHoldResume(t *testing.T) {
	t.Parallel()
	connected(t, "uac_hold.xml", "uas_hold.xml",
		[]string{"200 OK (INVITE)", "200 OK (INVITE)", "200 OK (INVITE)", "200 OK (BYE)"},
		nil)
}
