package interop

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestF4_LinphoneRecipe runs linphonec (Debian's linphone-cli) with the
// recipe contrib/phones/linphone/linphonerc-1001 (docs/phones.md) as line
// 1001, beside the baresip recipes of 1002 (answering on its own) and
// 1003. linphone registers with digest; its call to 1002 is challenged
// (407), authenticated and connected, and it hangs up. 1003 then calls
// 1002, which is busy when linphone calls again (486); linphone dials *39
// (challenged too) and gets 603 CallBack Activated, and the F4 screen
// arrives as a MESSAGE that linphone shows and accepts with 200 (the
// recipe's writable [storage] uri is what lets it take screens); its
// delivery report back to the server gets 200.
func TestF4_LinphoneRecipe(t *testing.T) {
	needLinphone(t)
	need(t, "baresip")
	t.Parallel()
	deadline := time.Now().Add(40 * time.Second)
	left := func() time.Duration { return time.Until(deadline) }

	s := startServer(t, noOffer+demoLines) // 486 at once: the offer is TestF28_BaresipRecipeOfferKey5's
	if code, body := s.api(t, "PUT", "/api/v1/log", `{"sip_trace":true}`); code != 200 {
		t.Fatalf("PUT /api/v1/log: %d %s", code, body)
	}
	b := startBaresip(t, s, "1002", bsAutoAnswer, left())
	c := startBaresip(t, s, "1003", "", left())
	bsWaitRegistered(t, s, left, b, c)
	lp := startLinphone(t, s, "1001", left())
	reg := bsWaitLogs(t, s, left(), "msg=registered dn=1001 ")[0]
	if src := fmt.Sprintf("source=127.0.0.1:%d", lp.port); !strings.Contains(reg, src) {
		t.Fatalf("linphone's registration not from its SIP port (%s): %s", src, reg)
	}

	// A call: challenged, authenticated, connected to baresip 1002.
	to1002 := fmt.Sprintf("sip:1002@127.0.0.1:%d", s.SIPPort)
	lp.send("call " + to1002)
	b.waitEvents(left(), "CALL_ESTABLISHED")
	lp.waitOut(left(), "connected.")
	bsWaitLogs(t, s, left(),
		`msg="line state" dn=1001 from=idle to=busy`,
		`msg="line state" dn=1002 from=ringing to=busy`)
	lpChallenged(t, s, lp.port, "INVITE sip:1002@")
	lp.send("terminate")
	b.waitEvents(left(), "CALL_CLOSED")
	bsWaitLogs(t, s, left(),
		`msg="line state" dn=1001 from=busy to=idle`,
		`msg="line state" dn=1002 from=busy to=idle`)

	// 1002 busy, linphone's call fails, *39 activates Call Back.
	c.command("dial", to1002, left())
	c.waitEvents(left(), "CALL_ESTABLISHED")
	bsWaitLogs(t, s, left(), `msg="line state" dn=1002 from=ringing to=busy`)
	lp.send("call " + to1002)
	lp.waitOut(left(), "Call 2 with "+to1002+" error.") // how linphonec shows a 486
	lpSent(t, s, lp.port, "SIP/2.0 486 Busy Here")
	lp.send(fmt.Sprintf("call sip:*39@127.0.0.1:%d", s.SIPPort))
	// The 603 and the screen's MESSAGE are two requests on their way at
	// once (the screen is sent once the request is stored, the 603 once
	// the engine has answered): linphonec may print them in either order.
	lp.waitOut(left(), "ended (Call declined)", "Message received from sip:callback@127.0.0.1: CallBack is activated on 1002")
	lpSent(t, s, lp.port, "SIP/2.0 603 CallBack Activated")
	lpChallenged(t, s, lp.port, "INVITE sip:*39@")
	waitScreenAccepted(t, s, left(), lp.port, "CallBack is activated on 1002")
	// linphone's delivery report of the screen (RFC 5438), a MESSAGE to
	// the screen's sender, is answered 200 (and ignored), not 405.
	remote := fmt.Sprintf("remote=127.0.0.1:%d ", lp.port)
	waitTrace(t, s, left(), "200 to linphone's delivery report", func(line string) bool {
		return strings.Contains(line, `msg="sip trace" direction=out`) && strings.Contains(line, remote) &&
			strings.Contains(line, `message="SIP/2.0 200 `) && strings.Contains(line, ` MESSAGE\r\n`)
	})

	lp.quit(left())
	bsWaitLogs(t, s, left(), `msg="line state" dn=1001 from=idle to=unregistered`)
}

// lpSent fails unless the server's SIP trace shows a message starting
// with start sent to the phone at port.
func lpSent(t *testing.T, s *server, port int, start string) {
	t.Helper()
	remote := fmt.Sprintf("remote=127.0.0.1:%d ", port)
	for _, line := range strings.Split(s.Log(), "\n") {
		if strings.Contains(line, `msg="sip trace" direction=out`) && strings.Contains(line, remote) && strings.Contains(line, `message="`+start) {
			return
		}
	}
	t.Fatalf("the server sent no %q to port %d\n%s", start, port, s.Log())
}

// lpChallenged fails unless the server's SIP trace shows, from the phone
// at port, a request starting with start answered 407 and then sent again
// with Proxy-Authorization (B7: every INVITE of a line is challenged).
func lpChallenged(t *testing.T, s *server, port int, start string) {
	t.Helper()
	remote := fmt.Sprintf("remote=127.0.0.1:%d ", port)
	// In the trace's quoting: up to the header's end, an escaped \r.
	auth := regexp.MustCompile(`Proxy-Authorization: +Digest (?:[^\\]|\\[^r])*username=\\"1001\\"`)
	challenged, authorized := false, false
	for _, line := range strings.Split(s.Log(), "\n") {
		if !strings.Contains(line, `msg="sip trace"`) || !strings.Contains(line, remote) {
			continue
		}
		if strings.Contains(line, "direction=out") && strings.Contains(line, `message="SIP/2.0 407 `) {
			challenged = true
		}
		if challenged && strings.Contains(line, "direction=in") && strings.Contains(line, `message="`+start) &&
			auth.MatchString(line) {
			authorized = true
		}
	}
	if !challenged || !authorized {
		t.Fatalf("%s from port %d: challenged %v, authorized %v\n%s", start, port, challenged, authorized, s.Log())
	}
}

// needLinphone fails the test when linphonec is not installed (as need
// does for the other peers).
func needLinphone(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("linphonec")
	if err != nil {
		t.Fatal("linphonec is not installed (apt-get install linphone-cli); .ci/run installs it")
	}
	return p
}

// lpRecipe is the linphone recipe of line 1001.
const lpRecipe = "../../contrib/phones/linphone/linphonerc-1001"

// linphone is one running linphonec, driven through its stdin as a user
// types: commands such as `call URI`, `terminate`, `quit`.
type linphone struct {
	t      *testing.T
	port   int // SIP port
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	out    *lpOutput
	log    string // linphone's own log file (-l)
	exited chan struct{}
}

// startLinphone runs linphonec with the recipe (a copy: linphone rewrites
// its configuration file) with its ports replaced by free ones, the
// server's port, and its storage in the test's temporary folder; HOME too,
// for the call history and ZRTP caches linphone keeps there.
func startLinphone(t *testing.T, s *server, dn string, d time.Duration) *linphone {
	t.Helper()
	prog := needLinphone(t)
	b, err := os.ReadFile(lpRecipe)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ports := callPorts(t, 2)
	rc := string(b)
	rc = recipeSub(t, lpRecipe, rc, `(?m)^sip_port=5080$`, fmt.Sprintf("sip_port=%d", ports[0]))
	rc = recipeSub(t, lpRecipe, rc, `(?m)^reg_proxy=<sip:127\.0\.0\.1:5060;transport=udp>$`,
		fmt.Sprintf("reg_proxy=<sip:127.0.0.1:%d;transport=udp>", s.SIPPort))
	rc = recipeSub(t, lpRecipe, rc, `(?m)^uri=/tmp/linphone-1001\.db$`, "uri="+filepath.Join(dir, "linphone.db"))
	rc = recipeSub(t, lpRecipe, rc, `(?m)^audio_rtp_port=7078$`, fmt.Sprintf("audio_rtp_port=%d", ports[1]))
	if err := os.MkdirAll(filepath.Join(dir, ".local", "share", "linphone"), 0o700); err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "linphonerc")
	if err := os.WriteFile(config, []byte(rc), 0o600); err != nil {
		t.Fatal(err)
	}
	lp := &linphone{t: t, port: ports[0], out: &lpOutput{changed: make(chan struct{}, 1)},
		log: filepath.Join(dir, "linphone.log"), exited: make(chan struct{})}
	lp.cmd = exec.Command(prog, "-c", config, "-d", "6", "-l", lp.log)
	lp.cmd.Dir = dir
	lp.cmd.Env = append(os.Environ(), "HOME="+dir)
	lp.cmd.Stdout, lp.cmd.Stderr = lp.out, lp.out
	if lp.stdin, err = lp.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := lp.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { lp.cmd.Wait(); close(lp.exited) }()
	t.Cleanup(lp.stop)
	lp.waitOut(d, "linphonec>")
	return lp
}

// send types a command line.
func (lp *linphone) send(line string) {
	lp.t.Helper()
	if _, err := io.WriteString(lp.stdin, line+"\n"); err != nil {
		lp.t.Fatalf("linphonec: %s: %v\n%s", line, err, lp.dump())
	}
}

// waitOut waits until linphonec has printed want since the output the
// previous waitOut matched (so the same line is not matched twice).
// waitOut waits until linphonec has printed every one of want, in any
// order, after what earlier waits consumed.
func (lp *linphone) waitOut(d time.Duration, want ...string) {
	lp.t.Helper()
	timeout := time.After(d)
	for {
		if lp.out.consume(want) {
			return
		}
		select {
		case <-lp.out.changed:
		case <-lp.exited:
			if lp.out.consume(want) {
				return
			}
			lp.t.Fatalf("linphonec exited while waiting for %q\n%s", want, lp.dump())
		case <-timeout:
			lp.t.Fatalf("linphonec did not print %q within %v\n%s", want, d, lp.dump())
		}
	}
}

// quit ends linphonec with its quit command (it unregisters first) and
// waits for it to exit.
func (lp *linphone) quit(d time.Duration) {
	lp.t.Helper()
	lp.send("quit")
	select {
	case <-lp.exited:
	case <-time.After(d):
		lp.t.Fatalf("linphonec did not exit within %v of quit\n%s", d, lp.dump())
	}
}

// stop ends linphonec by its pid (SIGTERM, then SIGKILL) if it still runs
// and prints its output and log if the test failed.
func (lp *linphone) stop() {
	select {
	case <-lp.exited:
	default:
		lp.stdin.Close()
		lp.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-lp.exited:
		case <-time.After(3 * time.Second):
			lp.cmd.Process.Kill()
			<-lp.exited
		}
	}
	if lp.t.Failed() {
		lp.t.Log(lp.dump())
	}
}

func (lp *linphone) dump() string {
	log, _ := os.ReadFile(lp.log)
	var sip []string // the SIP messages' first lines: the whole log is long
	for _, line := range strings.Split(string(log), "\n") {
		for _, m := range []string{"REGISTER ", "INVITE ", "ACK ", "BYE ", "MESSAGE ", "SIP/2.0 ", "error"} {
			if strings.HasPrefix(line, m) || (m == "error" && strings.Contains(line, "-error-")) {
				sip = append(sip, line)
				break
			}
		}
	}
	return fmt.Sprintf("linphonec output:\n%s\nlinphone log (SIP start lines, errors):\n%s", lp.out.String(), strings.Join(sip, "\n"))
}

// lpOutput collects linphonec's output and signals each write.
type lpOutput struct {
	mu      sync.Mutex
	b       bytes.Buffer
	seen    int // what consume has matched so far
	changed chan struct{}
}

func (o *lpOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	n, err := o.b.Write(p)
	o.mu.Unlock()
	select {
	case o.changed <- struct{}{}:
	default:
	}
	return n, err
}

// consume reports whether want was printed after what it matched before,
// and if so moves past it.
// consume reports whether every one of want stands in the output after
// what was consumed before; if so, it consumes up to the end of the last.
func (o *lpOutput) consume(want []string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	rest, end := o.b.String()[o.seen:], 0
	for _, w := range want {
		i := strings.Index(rest, w)
		if i < 0 {
			return false
		}
		end = max(end, i+len(w))
	}
	o.seen += end
	return true
}

func (o *lpOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}
