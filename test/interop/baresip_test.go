package interop

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestBaresipCall runs two real baresip phones against the binary: both
// register with digest auth over UDP, 1001 calls 1002 (auto answer), RTP
// flows end to end on the SDP the B2BUA relayed, then each side in turn
// hangs up (callee first, then caller on a second call), and finally both
// phones quit, which unregisters them. Every step waits for an event
// (baresip's ctrl_tcp events, the server's debug log), never for a sleep.
func TestBaresipCall(t *testing.T) {
	need(t, "baresip")
	t.Parallel()
	deadline := time.Now().Add(20 * time.Second)
	left := func() time.Duration { return time.Until(deadline) }

	s := startServer(t, demoLines)
	a := startBaresip(t, s, "1001", bsRegistered, left())
	b := startBaresip(t, s, "1002", bsRegistered+bsAutoAnswer, left())
	bsWaitRegistered(t, s, left, a, b)

	bsCall(t, s, left, a, b, b) // callee hangs up
	bsCall(t, s, left, a, b, a) // caller hangs up

	// Quitting unregisters (REGISTER with Expires 0).
	for _, bs := range []*baresip{a, b} {
		bs.command("quit", "", left())
	}
	bsWaitLogs(t, s, left(),
		`msg="line state" dn=1001 from=idle to=unregistered`,
		`msg="line state" dn=1002 from=idle to=unregistered`)
	for _, bs := range []*baresip{a, b} {
		select {
		case <-bs.exited:
		case <-time.After(left()):
			t.Fatalf("baresip %s did not exit after quit", bs.dn)
		}
	}
}

// TestBaresipCallChallenged: a second device of line 1001 that is not
// registered (baresip with regint=0, on another port) calls 1002. Its
// source is not trusted, so the INVITE gets 407; baresip retries with the
// line's credentials and the call connects as a call of line 1001.
func TestBaresipCallChallenged(t *testing.T) {
	need(t, "baresip")
	t.Parallel()
	deadline := time.Now().Add(20 * time.Second)
	left := func() time.Duration { return time.Until(deadline) }

	s := startServer(t, demoLines)
	desk := startBaresip(t, s, "1001", bsRegistered, left())
	b := startBaresip(t, s, "1002", bsRegistered+bsAutoAnswer, left())
	bsWaitRegistered(t, s, left, desk, b)
	a := startBaresip(t, s, "1001", ";regint=0", left())

	bsCall(t, s, left, a, b, a)
	out := a.out.String()
	for _, want := range []string{"SIP/2.0 407 Proxy Authentication Required", `Proxy-Authorization: Digest username="1001"`} {
		if !strings.Contains(out, want) {
			t.Fatalf("the unregistered caller's trace has no %q\n%s", want, a.dump())
		}
	}
	for _, line := range strings.Split(s.Log(), "\n") {
		if strings.Contains(line, "msg=registered") && strings.Contains(line, fmt.Sprintf("source=127.0.0.1:%d", a.port)) {
			t.Fatalf("the calling device registered: %s", line)
		}
	}
}

// TestF28_BaresipRecipeOfferKey5 runs the three baresip recipes as
// docs/phones.md has a new user run them, the README's walk-through: 1003
// calls 1002, which answers, so 1002 is busy. 1001 calls 1002 and gets the
// offer as early media (183). 1001 presses 5 through the recipe's cons
// module, the one way to send DTMF to a call from outside baresip (ctrl_tcp
// has no command for it): baresip sends it as RFC 4733 events, the server
// activates Call Back, 1001's call ends 486 Busy Here, and the F4 screen
// reaches baresip as a MESSAGE it accepts with 200 (the server's SIP trace).
func TestF28_BaresipRecipeOfferKey5(t *testing.T) {
	need(t, "baresip")
	t.Parallel()
	deadline := time.Now().Add(25 * time.Second)
	left := func() time.Duration { return time.Until(deadline) }

	s := startServer(t, demoLines)
	if code, body := s.api(t, "PUT", "/api/v1/log", `{"sip_trace":true}`); code != 200 {
		t.Fatalf("PUT /api/v1/log: %d %s", code, body)
	}
	a := startBaresip(t, s, "1001", "", left())
	b := startBaresip(t, s, "1002", bsAutoAnswer, left())
	c := startBaresip(t, s, "1003", "", left())
	bsWaitRegistered(t, s, left, a, b, c)

	c.command("dial", fmt.Sprintf("sip:1002@127.0.0.1:%d", s.SIPPort), left())
	c.waitEvents(left(), "CALL_ESTABLISHED")
	b.waitEvents(left(), "CALL_ESTABLISHED")
	bsWaitLogs(t, s, left(), `msg="line state" dn=1002 from=ringing to=busy`)

	a.command("dial", fmt.Sprintf("sip:1002@127.0.0.1:%d", s.SIPPort), left())
	bsWaitLogs(t, s, left(), `msg="call back offered" caller=1001 callee=1002 outcome=busy`)
	// The prompt's RTP arrives: baresip's audio stream runs, so the key
	// goes out as telephone-events rather than into a stream not started.
	a.waitEvents(left(), "CALL_RTPESTAB")
	a.key("5", left())
	bsWaitLogs(t, s, left(), `msg="call back asked by key" caller=1001 callee=1002 prompt=activated`)
	if closed := a.waitEvents(left(), "CALL_CLOSED")[0]; !strings.Contains(closed.Param, "486") {
		t.Fatalf("1001's call closed with %q, want 486 Busy Here", closed.Param)
	}
	waitScreenAccepted(t, s, left(), a.port, "CallBack is activated on 1002")
	if out := a.out.String(); !strings.Contains(out, "audio: send DTMF digit: '5'") {
		t.Fatalf("baresip 1001 did not send the key as DTMF\n%s", a.dump())
	}
}

// waitScreenAccepted waits until the server's SIP trace (on: PUT
// /api/v1/log) shows a MESSAGE containing text sent to the phone at
// 127.0.0.1:port and that phone's 200 for it. A phone that cannot take
// the MESSAGE (linphone without a storage database answers 503) fails.
func waitScreenAccepted(t *testing.T, s *server, d time.Duration, port int, text string) {
	t.Helper()
	remote := fmt.Sprintf("remote=127.0.0.1:%d ", port)
	answer := regexp.MustCompile(`message="SIP/2.0 (\d{3}) .*?CSeq: \d+ MESSAGE\\r\\n`)
	callID := regexp.MustCompile(`Call-ID: (\S+?)\\r\\n`)
	sent := "" // the Call-ID of the screen's MESSAGE
	// see reports whether line is the phone's answer to the screen.
	see := func(line string) bool {
		if !strings.Contains(line, `msg="sip trace"`) || !strings.Contains(line, remote) {
			return false
		}
		id := callID.FindStringSubmatch(line)
		if id == nil {
			return false
		}
		if sent == "" && strings.Contains(line, "direction=out") && strings.Contains(line, `message="MESSAGE sip:`) && strings.Contains(line, text) {
			sent = id[1]
		}
		if m := answer.FindStringSubmatch(line); sent == id[1] && m != nil && strings.Contains(line, "direction=in") {
			if m[1] != "200" {
				t.Fatalf("the phone at port %d answered the screen %q with %s: %s", port, text, m[1], line)
			}
			return true
		}
		return false
	}
	waitTrace(t, s, d, fmt.Sprintf("the screen %q accepted by the phone at port %d", text, port), see)
}

// waitTrace waits until see reports true for a line the server logged,
// before the call (other waits may have consumed it from s.lines) or
// within d; what says what the wait is for in the failure.
func waitTrace(t *testing.T, s *server, d time.Duration, what string, see func(line string) bool) {
	t.Helper()
	for _, line := range strings.Split(s.Log(), "\n") {
		if see(line) {
			return
		}
	}
	timeout := time.After(d)
	for {
		select {
		case line, ok := <-s.lines:
			if !ok {
				t.Fatalf("callbackd exited while waiting for %s\n%s", what, s.Log())
			}
			if see(line) {
				return
			}
		case <-timeout:
			t.Fatalf("no %s within %v\n%s", what, d, s.Log())
		}
	}
}

// TestBaresipRecipesAgree: the recipes of 1002 and 1003 are the one of
// 1001 with their line and ports: what the tests run through 1001 holds
// for them (the tests run all three). Their ports let the three run on
// one machine: SIP ports 2 apart (baresip takes the next one for TLS), no
// port used twice.
func TestBaresipRecipesAgree(t *testing.T) {
	ports := regexp.MustCompile(`(?m)^(sip_listen|cons_listen)\s+127\.0\.0\.1:(\d+)$`)
	read := func(dn, name string) string {
		b, err := os.ReadFile(filepath.Join(bsRecipe, dn, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	// generic is the file of dn with its line and ports taken out.
	generic := func(dn, text string) string {
		return ports.ReplaceAllString(strings.ReplaceAll(text, dn, "DN"), "$1 PORT")
	}
	used := map[int]string{}
	use := func(port int, what string) {
		if other, ok := used[port]; ok {
			t.Errorf("port %d: %s and %s", port, what, other)
		}
		used[port] = what
	}
	for _, dn := range []string{"1001", "1002", "1003"} {
		for _, name := range []string{"config", "accounts"} {
			if got, want := generic(dn, read(dn, name)), generic("1001", read("1001", name)); got != want {
				t.Errorf("%s/%s is not %s/%s with %s and its own ports:\n%s\nwant\n%s", dn, name, "1001", name, dn, got, want)
			}
		}
		for _, m := range ports.FindAllStringSubmatch(read(dn, "config"), -1) {
			port, _ := strconv.Atoi(m[2])
			use(port, dn+" "+m[1])
			if m[1] == "sip_listen" {
				use(port+1, dn+" SIP/TLS (sip_listen+1)")
			}
		}
	}
}

// Account parameters of startBaresip.
const (
	bsRegistered = ";regint=60"
	bsAutoAnswer = ";answermode=auto"
)

// bsWaitRegistered waits until the server has registered every device,
// each from its own SIP port, and put its line in state idle.
func bsWaitRegistered(t *testing.T, s *server, left func() time.Duration, devices ...*baresip) {
	t.Helper()
	var want []string
	for _, bs := range devices {
		want = append(want, fmt.Sprintf("msg=registered dn=%s ", bs.dn))
	}
	regs := bsWaitLogs(t, s, left(), want...)
	for _, bs := range devices {
		bs.waitEvents(left(), "REGISTER_OK")
	}
	for i, bs := range devices {
		if src := fmt.Sprintf("source=127.0.0.1:%d", bs.port); !strings.Contains(regs[i], src) {
			t.Fatalf("registration of %s not from its SIP port (%s): %s", bs.dn, src, regs[i])
		}
		if !strings.Contains(s.Log(), fmt.Sprintf(`msg="line state" dn=%s from=unregistered to=idle`, bs.dn)) {
			t.Fatalf("line %s did not become idle on registration\n%s", bs.dn, s.Log())
		}
	}
}

// bsCall has caller dial callee through the server, waits until the call
// is established with RTP flowing on both sides, has hangup (one of the
// two) hang up and waits until both have closed the call and both lines
// are idle again.
func bsCall(t *testing.T, s *server, left func() time.Duration, caller, callee, hangup *baresip) {
	t.Helper()
	caller.command("dial", fmt.Sprintf("sip:%s@127.0.0.1:%d", callee.dn, s.SIPPort), left())

	// Established on both sides, and RTP arrives on both sides: the
	// relayed SDP offer and answer point at the real peers.
	ea := caller.waitEvents(left(), "CALL_ESTABLISHED", "CALL_RTPESTAB")[0]
	eb := callee.waitEvents(left(), "CALL_ESTABLISHED", "CALL_RTPESTAB")[0]
	if ea.Direction != "outgoing" || eb.Direction != "incoming" {
		t.Fatalf("directions: caller %q, callee %q", ea.Direction, eb.Direction)
	}
	if want := fmt.Sprintf("sip:%s@", caller.dn); !strings.HasPrefix(eb.PeerURI, want) {
		t.Fatalf("%s sees the caller as %q, want %s...", callee.dn, eb.PeerURI, want)
	}
	bsWaitLogs(t, s, left(),
		fmt.Sprintf(`msg="line state" dn=%s from=idle to=busy`, caller.dn),
		fmt.Sprintf(`msg="line state" dn=%s from=ringing to=busy`, callee.dn))

	other := caller
	if hangup == caller {
		other = callee
	}
	hangup.command("hangup", "", left())
	hangup.waitEvents(left(), "CALL_CLOSED")
	// baresip reports a BYE from the peer as ECONNRESET.
	if closed := other.waitEvents(left(), "CALL_CLOSED")[0]; !strings.Contains(closed.Param, "reset by peer") {
		t.Fatalf("%s closed the call with %q, want the BYE of %s relayed (Connection reset by peer)", other.dn, closed.Param, hangup.dn)
	}
	bsWaitLogs(t, s, left(),
		fmt.Sprintf(`msg="line state" dn=%s from=busy to=idle`, caller.dn),
		fmt.Sprintf(`msg="line state" dn=%s from=busy to=idle`, callee.dn))
}

// bsWaitLogs waits until the server has logged a line containing each of
// substrs, in any order, and returns those lines in the order of substrs.
// Lines read before all are seen are consumed, as with waitLog. A line with
// one of bsFailLog fails the test at once.
func bsWaitLogs(t *testing.T, s *server, d time.Duration, substrs ...string) []string {
	t.Helper()
	found := make([]string, len(substrs))
	missing := len(substrs)
	timeout := time.After(d)
	for missing > 0 {
		select {
		case line, ok := <-s.lines:
			if !ok {
				t.Fatalf("callbackd exited while waiting for %q\n%s", substrs, s.Log())
			}
			for _, bad := range bsFailLog {
				if strings.Contains(line, bad) {
					t.Fatalf("callbackd logged %q while waiting for %q\n%s", bad, substrs, s.Log())
				}
			}
			for i, sub := range substrs {
				if found[i] == "" && strings.Contains(line, sub) {
					found[i] = line
					missing--
					break
				}
			}
		case <-timeout:
			var want []string
			for i, sub := range substrs {
				if found[i] == "" {
					want = append(want, sub)
				}
			}
			t.Fatalf("no log lines %q within %v\n%s", want, d, s.Log())
		}
	}
	return found
}

// bsFailLog are server log lines that no step of a clean baresip call may
// produce.
var bsFailLog = []string{"authentication failed", "level=ERROR"}

// baresipPorts are the loopback ports of one baresip: SIP on UDP and TCP
// at sip, SIP/TLS at sip+1 (baresip 1.0 always opens TLS on the next
// port), ctrl_tcp at ctrl, the cons module (keys, DTMF) at cons.
type baresipPorts struct{ sip, ctrl, cons int }

// reserveBaresipPorts finds free ports for one baresip (freePort keeps
// port+1 out of its own walk). They are free when it returns, not
// reserved: startBaresip retries if one is taken meanwhile.
func reserveBaresipPorts(t *testing.T) baresipPorts {
	t.Helper()
	for i := 0; i < 100; i++ {
		port := freePort(t)
		tls, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port+1))
		if err != nil {
			continue
		}
		tls.Close()
		return baresipPorts{sip: port, ctrl: freePort(t), cons: freePort(t)}
	}
	t.Fatal("no free port pair for baresip")
	return baresipPorts{}
}

// baresip is one running baresip, driven through its ctrl_tcp module.
type baresip struct {
	t      *testing.T
	dn     string
	port   int // SIP port
	cons   int // port of the cons module (UDP and TCP)
	cmd    *exec.Cmd
	out    *bsOutput // stdout and stderr (with the SIP trace, -s)
	exited chan struct{}

	ctrl      net.Conn
	events    chan bsMessage // ctrl_tcp events; closed when the connection ends
	responses chan bsMessage // ctrl_tcp command responses
	mu        sync.Mutex
	raw       []string // every ctrl_tcp message received, for failure output
	token     int
}

// bsMessage is a ctrl_tcp event or command response.
type bsMessage struct {
	Event      bool   `json:"event"`
	Response   bool   `json:"response"`
	Type       string `json:"type"`
	AccountAOR string `json:"accountaor"`
	Direction  string `json:"direction"`
	PeerURI    string `json:"peeruri"`
	ID         string `json:"id"`
	Param      string `json:"param"`
	OK         bool   `json:"ok"`
	Data       string `json:"data"`
	Token      string `json:"token"`
}

// bsOutput collects baresip's output and closes ready once baresip says
// it is ready (every module loaded).
type bsOutput struct {
	mu    sync.Mutex
	b     bytes.Buffer
	ready chan struct{}
}

func (l *bsOutput) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, err := l.b.Write(p)
	select {
	case <-l.ready:
	default:
		if bytes.Contains(l.b.Bytes(), []byte("baresip is ready.")) {
			close(l.ready)
		}
	}
	return n, err
}

func (l *bsOutput) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startBaresip starts baresip from the recipe of line dn
// (contrib/phones/baresip/DN, docs/phones.md: the server is its registrar
// and where its calls go, over UDP), with params added to or replacing
// those of the recipe's account (bsRegistered, bsAutoAnswer, ...). It
// connects to ctrl_tcp, then creates the account, which registers unless
// params say regint=0.
func startBaresip(t *testing.T, s *server, dn, params string, d time.Duration) *baresip {
	t.Helper()
	deadline := time.Now().Add(d)
	var bs *baresip
	for attempt := 1; bs == nil; attempt++ {
		var taken string
		bs, taken = tryBaresip(t, dn, time.Until(deadline))
		if bs == nil {
			if attempt == 5 {
				t.Fatalf("baresip %s: ports taken %d times, last: %s", dn, attempt, taken)
			}
			t.Logf("baresip %s: a port was taken meanwhile (%s), again with others", dn, taken)
		}
	}
	bs.command("uanew", bsRecipeAccount(t, dn, s.SIPPort, params), time.Until(deadline))
	return bs
}

// bsRecipe is the folder of the baresip recipes, one per demo line.
const bsRecipe = "../../contrib/phones/baresip"

// bsRecipeConfig is the recipe's config of line dn as the tests run it:
// its SIP and cons ports replaced by free ones; no stdio module (it needs
// a terminal on stdin); ctrl_tcp added, through which the test sends
// commands (the menu module's) and reads events; RTP kept below the range
// the SIP and ctrl_tcp ports come from. Everything else (modules, sound,
// codecs) is the recipe's own.
func bsRecipeConfig(t *testing.T, dn string, p baresipPorts) string {
	t.Helper()
	file := filepath.Join(bsRecipe, dn, "config")
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(b)
	cfg = recipeSub(t, file, cfg, `(?m)^sip_listen\s+127\.0\.0\.1:\d+$`, fmt.Sprintf("sip_listen\t\t127.0.0.1:%d", p.sip))
	cfg = recipeSub(t, file, cfg, `(?m)^cons_listen\s+127\.0\.0\.1:\d+$`, fmt.Sprintf("cons_listen\t\t127.0.0.1:%d", p.cons))
	cfg = recipeSub(t, file, cfg, `(?m)^module\s+stdio\.so\n`, "")
	return cfg + fmt.Sprintf("module_app\t\tctrl_tcp.so\nctrl_tcp_listen\t\t127.0.0.1:%d\nrtp_ports\t\t10000-20000\n", p.ctrl)
}

// bsRecipeAccount is the account line of the recipe of line dn with the
// server at port and params (";key=value...") replacing the recipe's
// values of the same keys or added.
func bsRecipeAccount(t *testing.T, dn string, port int, params string) string {
	t.Helper()
	file := filepath.Join(bsRecipe, dn, "accounts")
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var account string
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			if account != "" {
				t.Fatalf("%s: more than one account", file)
			}
			account = line
		}
	}
	account = recipeSub(t, file, account, `@127\.0\.0\.1;`, fmt.Sprintf("@127.0.0.1:%d;", port))
	for _, kv := range strings.Split(params, ";") {
		k, _, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		re := regexp.MustCompile(";" + regexp.QuoteMeta(k) + "=[^;]*")
		if re.MatchString(account) {
			account = re.ReplaceAllLiteralString(account, ";"+kv)
		} else {
			account += ";" + kv
		}
	}
	return account
}

// recipeSub replaces the one match of pattern in text, the content of
// file, with repl (literally), and fails the test unless there is exactly
// one: a recipe that changed shape must change its test too.
func recipeSub(t *testing.T, file, text, pattern, repl string) string {
	t.Helper()
	re := regexp.MustCompile(pattern)
	if n := len(re.FindAllStringIndex(text, -1)); n != 1 {
		t.Fatalf("%s: %d matches of %s, want 1 (the tests template the recipe)", file, n, pattern)
	}
	return re.ReplaceAllLiteralString(text, repl)
}

// tryBaresip starts baresip from the recipe of line dn, without its
// account, on fresh ports and connects to its ctrl_tcp. If a port was
// taken by someone else since reserveBaresipPorts, it ends that baresip
// and returns nil and the error.
func tryBaresip(t *testing.T, dn string, d time.Duration) (*baresip, string) {
	t.Helper()
	prog := need(t, "baresip")
	p := reserveBaresipPorts(t)
	dir := t.TempDir()
	files := map[string]string{
		"config":   bsRecipeConfig(t, dn, p),
		"accounts": "",
		"contacts": "",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	bs := &baresip{t: t, dn: dn, port: p.sip, cons: p.cons, exited: make(chan struct{}),
		out:    &bsOutput{ready: make(chan struct{})},
		events: make(chan bsMessage, 1024), responses: make(chan bsMessage, 16)}
	bs.cmd = exec.Command(prog, "-f", dir, "-s")
	bs.cmd.Stdout, bs.cmd.Stderr = bs.out, bs.out
	if err := bs.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { bs.cmd.Wait(); close(bs.exited) }()

	const inUse = "Address already in use"
	select {
	case <-bs.out.ready:
	case <-bs.exited:
		if out := bs.out.String(); strings.Contains(out, inUse) {
			return nil, bsFirstLine(out, inUse)
		}
		t.Fatalf("baresip %s exited at start\n%s", dn, bs.dump())
	case <-time.After(d):
		bs.cmd.Process.Kill()
		<-bs.exited
		t.Fatalf("baresip %s not ready within %v\n%s", dn, d, bs.dump())
	}
	// A module that fails does not stop baresip: without this check we
	// could talk to somebody else's ctrl_tcp.
	for _, failed := range []string{"ctrl_tcp: failed", "cons: failed"} {
		if out := bs.out.String(); strings.Contains(out, failed) {
			bs.cmd.Process.Kill()
			<-bs.exited
			return nil, bsFirstLine(out, failed)
		}
	}
	t.Cleanup(bs.stop)
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", p.ctrl), d)
	if err != nil {
		t.Fatalf("baresip %s: ctrl_tcp: %v\n%s", dn, err, bs.dump())
	}
	bs.ctrl = c
	go bs.read()
	return bs, ""
}

// bsFirstLine returns the first line of out that contains substr.
func bsFirstLine(out, substr string) string {
	for _, line := range strings.Split(bsANSI.ReplaceAllString(out, ""), "\n") {
		if strings.Contains(line, substr) {
			return strings.TrimSpace(line)
		}
	}
	return ""
}

// read decodes the netstring JSON messages of ctrl_tcp.
func (bs *baresip) read() {
	defer close(bs.events)
	r := bufio.NewReader(bs.ctrl)
	for {
		head, err := r.ReadString(':')
		if err != nil {
			return
		}
		n, err := strconv.Atoi(head[:len(head)-1])
		if err != nil || n < 0 || n > 1<<20 {
			bs.note("bad netstring length %q", head)
			return
		}
		body := make([]byte, n+1)
		if _, err := io.ReadFull(r, body); err != nil {
			return
		}
		if body[n] != ',' {
			bs.note("netstring without final comma: %q", body)
			return
		}
		bs.note("%s", body[:n])
		var m bsMessage
		if err := json.Unmarshal(body[:n], &m); err != nil {
			bs.note("bad JSON: %v", err)
			continue
		}
		switch {
		case m.Response:
			select {
			case bs.responses <- m:
			default:
			}
		case m.Event:
			select {
			case bs.events <- m:
			default:
				bs.note("(event dropped: nobody waiting)")
			}
		}
	}
}

func (bs *baresip) note(format string, args ...any) {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	bs.raw = append(bs.raw, fmt.Sprintf(format, args...))
}

// bsANSI matches the colour codes of baresip's output.
var bsANSI = regexp.MustCompile(`\x1b\[[0-9;]*m`)

func (bs *baresip) dump() string {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	out := bsANSI.ReplaceAllString(bs.out.String(), "")
	return fmt.Sprintf("baresip %s ctrl_tcp messages:\n%s\nbaresip %s output:\n%s",
		bs.dn, strings.Join(bs.raw, "\n"), bs.dn, out)
}

// command runs a ctrl_tcp command (a menu long command) and fails the
// test unless baresip answers ok.
func (bs *baresip) command(name, params string, d time.Duration) bsMessage {
	bs.t.Helper()
	bs.mu.Lock()
	bs.token++
	token := fmt.Sprintf("%s-%d", name, bs.token)
	bs.mu.Unlock()
	msg, _ := json.Marshal(map[string]string{"command": name, "params": params, "token": token})
	bs.ctrl.SetWriteDeadline(time.Now().Add(d))
	if _, err := fmt.Fprintf(bs.ctrl, "%d:%s,", len(msg), msg); err != nil {
		bs.t.Fatalf("baresip %s: send %s: %v\n%s", bs.dn, name, err, bs.dump())
	}
	timeout := time.After(d)
	for {
		select {
		case m := <-bs.responses:
			if m.Token != token {
				continue
			}
			if !m.OK {
				bs.t.Fatalf("baresip %s: command %s %q failed: %s\n%s", bs.dn, name, params, m.Data, bs.dump())
			}
			return m
		case <-timeout:
			bs.t.Fatalf("baresip %s: no answer to command %s within %v\n%s", bs.dn, name, d, bs.dump())
		}
	}
}

// key sends keys to baresip's cons module as a user types them: in a
// call, digits go to the call as DTMF.
func (bs *baresip) key(keys string, d time.Duration) {
	bs.t.Helper()
	c, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", bs.cons))
	if err != nil {
		bs.t.Fatal(err)
	}
	defer c.Close()
	c.SetWriteDeadline(time.Now().Add(d))
	if _, err := c.Write([]byte(keys)); err != nil {
		bs.t.Fatalf("baresip %s: cons: %v", bs.dn, err)
	}
}

// waitEvents waits until baresip has reported each event type, in any
// order, and returns the first event of each type in the order asked.
// Other events are consumed; a call that closes unexpectedly fails at once.
func (bs *baresip) waitEvents(d time.Duration, types ...string) []bsMessage {
	bs.t.Helper()
	found := make([]bsMessage, len(types))
	seen := make([]bool, len(types))
	missing := len(types)
	timeout := time.After(d)
	for missing > 0 {
		select {
		case m, ok := <-bs.events:
			if !ok {
				bs.t.Fatalf("baresip %s: ctrl_tcp closed while waiting for %q\n%s", bs.dn, types, bs.dump())
			}
			match := false
			for i, typ := range types {
				if !seen[i] && m.Type == typ {
					found[i], seen[i], match = m, true, true
					missing--
					break
				}
			}
			if !match && (m.Type == "CALL_CLOSED" || m.Type == "REGISTER_FAIL") {
				bs.t.Fatalf("baresip %s: %s (%s) while waiting for %q\n%s", bs.dn, m.Type, m.Param, types, bs.dump())
			}
		case <-timeout:
			bs.t.Fatalf("baresip %s: no events %q within %v\n%s", bs.dn, types, d, bs.dump())
		}
	}
	return found
}

// stop ends baresip (SIGTERM, then SIGKILL) and prints its output if the
// test failed.
func (bs *baresip) stop() {
	select {
	case <-bs.exited:
	default:
		bs.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-bs.exited:
		case <-time.After(3 * time.Second):
			bs.cmd.Process.Kill()
			<-bs.exited
		}
	}
	if bs.ctrl != nil {
		bs.ctrl.Close()
	}
	if bs.t.Failed() {
		bs.t.Log(bs.dump())
	}
}
