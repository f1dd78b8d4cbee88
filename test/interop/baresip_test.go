package interop

import (
	"bufio"
	"bytes"
	endian "encoding/binary"
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
	wav := bsSilenceWAV(t, 30*time.Second)
	a := startBaresip(t, s, "1001", wav, bsRegistered, left())
	b := startBaresip(t, s, "1002", wav, bsRegistered+bsAutoAnswer, left())
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
	wav := bsSilenceWAV(t, 30*time.Second)
	desk := startBaresip(t, s, "1001", wav, bsRegistered, left())
	b := startBaresip(t, s, "1002", wav, bsRegistered+bsAutoAnswer, left())
	bsWaitRegistered(t, s, left, desk, b)
	a := startBaresip(t, s, "1001", wav, ";regint=0", left())

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

// bsSilenceWAV writes d of 8 kHz mono S16LE silence, the format baresip's
// aufile source needs for G.711. aufile ends the call at the end of the
// file, so d must outlast the test.
func bsSilenceWAV(t *testing.T, d time.Duration) string {
	t.Helper()
	const rate = 8000
	data := int(d/time.Second) * rate * 2
	var h bytes.Buffer
	h.WriteString("RIFF")
	endian.Write(&h, endian.LittleEndian, uint32(36+data))
	h.WriteString("WAVEfmt ")
	for _, v := range []any{uint32(16), uint16(1), uint16(1), uint32(rate), uint32(rate * 2), uint16(2), uint16(16)} {
		endian.Write(&h, endian.LittleEndian, v) // fmt: PCM, mono, 8 kHz, 16 bit
	}
	h.WriteString("data")
	endian.Write(&h, endian.LittleEndian, uint32(data))
	h.Write(make([]byte, data))
	p := filepath.Join(t.TempDir(), "silence.wav")
	if err := os.WriteFile(p, h.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// baresipPorts are the loopback ports of one baresip: SIP on UDP and TCP
// at sip, SIP/TLS at sip+1 (baresip 1.0 always opens TLS on the next
// port), ctrl_tcp at ctrl.
type baresipPorts struct{ sip, ctrl int }

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
		return baresipPorts{sip: port, ctrl: freePort(t)}
	}
	t.Fatal("no free port pair for baresip")
	return baresipPorts{}
}

// baresip is one running baresip, driven through its ctrl_tcp module.
type baresip struct {
	t      *testing.T
	dn     string
	port   int // SIP port
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

// baresipConfig: no sound device exists, so audio comes from a WAV file
// (aufile) and goes to an unconnected aubridge device; G.711 only; no
// stdio UI (it needs a terminal on stdin): commands and events go through
// ctrl_tcp, whose commands the menu module provides. RTP stays below the
// ephemeral port range the SIP and ctrl_tcp ports come from. No account:
// startBaresip adds it once ctrl_tcp is known to work.
const baresipConfig = `poll_method		epoll
sip_listen		127.0.0.1:%[1]d
net_interface		127.0.0.1
call_local_timeout	10
call_max_calls		4
audio_source		aufile,%[2]s
audio_player		aubridge,play%[1]d
audio_alert		aubridge,alert%[1]d
audio_path		/usr/share/baresip
rtp_stats		no
rtp_ports		10000-20000
module_path		/usr/lib/baresip/modules
module			g711.so
module			aufile.so
module			aubridge.so
module_tmp		uuid.so
module_tmp		account.so
module_app		menu.so
module_app		ctrl_tcp.so
ctrl_tcp_listen		127.0.0.1:%[3]d
`

// startBaresip starts baresip as a device of line dn (password demo<dn>)
// whose domain is the server (registrar, and where its calls go) over UDP,
// with params added to its account (bsRegistered, bsAutoAnswer, ...). It
// connects to ctrl_tcp, then creates the account, which registers unless
// params say regint=0.
func startBaresip(t *testing.T, s *server, dn, wav, params string, d time.Duration) *baresip {
	t.Helper()
	deadline := time.Now().Add(d)
	var bs *baresip
	for attempt := 1; bs == nil; attempt++ {
		var taken string
		bs, taken = tryBaresip(t, dn, wav, time.Until(deadline))
		if bs == nil {
			if attempt == 5 {
				t.Fatalf("baresip %s: ports taken %d times, last: %s", dn, attempt, taken)
			}
			t.Logf("baresip %s: a port was taken meanwhile (%s), again with others", dn, taken)
		}
	}
	account := fmt.Sprintf("<sip:%[1]s@127.0.0.1:%[2]d;transport=udp>;auth_pass=demo%[1]s;mwi=no%[3]s", dn, s.SIPPort, params)
	bs.command("uanew", account, time.Until(deadline))
	return bs
}

// tryBaresip starts baresip without an account on fresh ports and connects
// to its ctrl_tcp. If a port was taken by someone else since
// reserveBaresipPorts, it ends that baresip and returns nil and the error.
func tryBaresip(t *testing.T, dn, wav string, d time.Duration) (*baresip, string) {
	t.Helper()
	prog := need(t, "baresip")
	p := reserveBaresipPorts(t)
	dir := t.TempDir()
	files := map[string]string{
		"config":   fmt.Sprintf(baresipConfig, p.sip, wav, p.ctrl),
		"accounts": "",
		"contacts": "",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	bs := &baresip{t: t, dn: dn, port: p.sip, exited: make(chan struct{}),
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
	if out := bs.out.String(); strings.Contains(out, "ctrl_tcp: failed") {
		bs.cmd.Process.Kill()
		<-bs.exited
		return nil, bsFirstLine(out, "ctrl_tcp: failed")
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
