// Package interop tests the real callbackd binary against real SIP peers
// (SIPp, baresip) on loopback. A missing peer fails the test: CI installs
// them (.ci/run), and a silent skip would hide a gap.
package interop

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	// The binary under test is built by TestMain, which go test's cache
	// does not see: importing the server's packages makes a change to them
	// invalidate cached results of this package.
	_ "github.com/callbackd/callbackd/internal/app"
)

var binary string // path of the callbackd binary built by TestMain

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "callbackd-interop")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "callbackd")
	args := []string{"build", "-o", binary}
	if os.Getenv("CALLBACKD_RACE") != "" {
		// CALLBACKD_RACE=1 go test ./test/interop: the server under the
		// race detector; a race it reports fails the test (stop).
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, "../../cmd/callbackd")...)
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build callbackd:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// need fails the test when a peer program is not installed.
func need(t *testing.T, prog string) string {
	t.Helper()
	p, err := exec.LookPath(prog)
	if err != nil {
		t.Fatalf("%s is not installed (apt-get install %s); .ci/run installs it", prog, map[string]string{"sipp": "sip-tester", "baresip": "baresip-core"}[prog])
	}
	return p
}

// nextPort walks the ports freePort hands out. They are taken below the
// kernel's ephemeral range (32768-60999 on Linux): a port from that range,
// once released, can be grabbed by any outgoing socket before the SIPp or
// server that should bind it does. Steps of 2 keep P+1 free as well
// (baresip also binds its port + 1).
var nextPort = struct {
	sync.Mutex
	p int
}{p: 20000 + 2*rand.IntN(5000)}

// freePort returns a port free on 127.0.0.1 for both UDP and TCP.
func freePort(t *testing.T) int {
	t.Helper()
	for i := 0; i < 500; i++ {
		nextPort.Lock()
		port := nextPort.p
		nextPort.p += 2
		if nextPort.p >= 32000 {
			nextPort.p = 20000
		}
		nextPort.Unlock()
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		u.Close()
		if err == nil {
			l.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

// handedOut holds every port callPorts gave out in this test process: the
// tests run in parallel and a phone's port is unbound between its REGISTER
// and its SIPp that waits for calls, when freePort could give it again.
var handedOut = struct {
	sync.Mutex
	m map[int]bool
}{m: map[int]bool{}}

// callPorts returns n free loopback ports, none given out before.
func callPorts(t *testing.T, n int) []int {
	t.Helper()
	var out []int
	for tries := 0; len(out) < n; tries++ {
		if tries > 1000 {
			t.Fatal("no free port")
		}
		p := freePort(t)
		handedOut.Lock()
		fresh := !handedOut.m[p]
		handedOut.m[p] = true
		handedOut.Unlock()
		if fresh {
			out = append(out, p)
		}
	}
	return out
}

// server is a running callbackd process.
type server struct {
	t       *testing.T
	Host    string // SIP address the phones use; "" is 127.0.0.1
	SIPPort int
	HTTP    string
	Dir     string // working directory (data folder inside)
	Config  string // config file path
	cmd     *exec.Cmd
	mu      sync.Mutex
	log     bytes.Buffer
	lines   chan string
}

// noOffer turns the Call Back offer's announcement off, for tests of the
// SIP server's own answers to failed calls (486, 480 at once).
const noOffer = "[callback]\nannounce = false\n"

// demoLinesWith is demoLines with keys (TOML lines) added to line dn.
func demoLinesWith(dn, keys string) string {
	at := fmt.Sprintf("password = \"demo%s\"\n", dn)
	return strings.Replace(demoLines, at, at+keys, 1)
}

// demoLines is the directory most tests use: 1001-1004 like the defaults.
const demoLines = `
[[line]]
dn = "1001"
name = "1001"
password = "demo1001"
[[line]]
dn = "1002"
name = "1002"
password = "demo1002"
[[line]]
dn = "1003"
name = "1003"
password = "demo1003"
[[line]]
dn = "1004"
name = "1004"
password = "demo1004"
`

// startServer writes a config (listeners on free loopback ports, the data
// folder in a temp dir, then extra TOML, e.g. [calls] or [[line]] tables)
// and starts the binary. It returns once SIP is served.
// apiToken is the admin token of the servers the tests start (http.token).
const apiToken = "interop-token"

func startServer(t *testing.T, extra string) *server {
	t.Helper()
	return startServerWith(t, "min_expires = 1", extra)
}

// startServerWith is startServer with the [sip] keys other than listen given
// (e.g. "min_expires = 60" to see 423 Interval Too Brief).
func startServerWith(t *testing.T, sipKeys, extra string) *server {
	t.Helper()
	return startServerKeys(t, sipKeys, "", extra)
}

// startServerKeys is startServerWith with more [http] keys (TOML lines)
// after listen and token, e.g. "max_event_streams = 4".
func startServerKeys(t *testing.T, sipKeys, httpKeys, extra string) *server {
	t.Helper()
	s := &server{t: t, Dir: t.TempDir(), SIPPort: freePort(t)}
	s.HTTP = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	s.Config = filepath.Join(s.Dir, "callbackd.toml")
	if !strings.Contains(sipKeys, "overload_delay") {
		// The box that runs these tests is shared (go test runs packages
		// side by side, the bench smoke test among them): a busy moment
		// must not make a test's call meet overload control's 503.
		// TestOverload_503KeepsCallsInProgress turns it on.
		sipKeys += "\noverload_delay = \"0s\""
	}
	cfg := fmt.Sprintf(`[sip]
listen = ["udp:127.0.0.1:%d", "tcp:127.0.0.1:%d"]
%s
[http]
listen = %q
token = "`+apiToken+`"
%s
[store]
path = "data/callbackd.db"
[log]
level = "debug"
%s`, s.SIPPort, s.SIPPort, sipKeys, s.HTTP, httpKeys, extra)
	if err := os.WriteFile(s.Config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *server) start() {
	s.t.Helper()
	s.launch()
	s.waitLog(`msg="SIP listening" addr=tcp`, 10*time.Second)
	// Serving (and /healthz "ok") once the stored requests are back.
	s.waitLog(`msg="call back requests restored"`, 10*time.Second)
}

// launch starts the binary and reads its log, waiting for nothing.
func (s *server) launch() {
	t := s.t
	t.Helper()
	s.cmd = exec.Command(binary, "-config", s.Config)
	s.cmd.Dir = s.Dir
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Stdout = io.Discard
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.lines = make(chan string, 4096)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			s.log.WriteString(line + "\n")
			s.mu.Unlock()
			select {
			case s.lines <- line:
			default: // nobody waiting on log lines: drop from the channel, keep in log
			}
		}
		close(s.lines)
	}()
}

// waitLog waits for a log line containing substr.
func (s *server) waitLog(substr string, d time.Duration) string {
	s.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case line, ok := <-s.lines:
			if !ok {
				s.t.Fatalf("callbackd exited while waiting for %q\n%s", substr, s.Log())
			}
			if strings.Contains(line, substr) {
				return line
			}
		case <-deadline:
			s.t.Fatalf("no log line %q within %v\n%s", substr, d, s.Log())
		}
	}
}

// Log returns everything the server logged so far.
func (s *server) Log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

// stop ends the server with SIGTERM and, on test failure, prints its log.
func (s *server) stop() {
	if s.cmd.Process != nil && s.cmd.ProcessState == nil {
		s.cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { s.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			s.cmd.Process.Kill()
			<-done
		}
	}
	if strings.Contains(s.Log(), "WARNING: DATA RACE") {
		s.t.Error("the server reported a data race")
	}
	if s.t.Failed() {
		s.t.Logf("callbackd log:\n%s", s.Log())
	}
}

// kill9 kills the server the hard way (no shutdown) and waits for it.
func (s *server) kill9() {
	s.cmd.Process.Kill()
	s.cmd.Wait()
}

// restart starts the same configuration again (after kill9 or stop).
func (s *server) restart() {
	s.start()
}

// sippResult is the outcome of one SIPp run.
type sippResult struct {
	Code   int
	Output string
}

// sipp runs SIPp against the server with a scenario from ./sipp and waits
// for it (bounded by timeout). args come after the scenario.
func (s *server) sipp(t *testing.T, scenario string, timeout time.Duration, args ...string) sippResult {
	t.Helper()
	return s.sippCtx(t, context.Background(), scenario, timeout, args...)
}

func (s *server) sippCtx(t *testing.T, ctx context.Context, scenario string, timeout time.Duration, args ...string) sippResult {
	t.Helper()
	cmd := s.sippCmd(t, ctx, scenario, timeout, args...)
	out, _ := cmd.CombinedOutput()
	code := cmd.ProcessState.ExitCode()
	return sippResult{Code: code, Output: string(out)}
}

func (s *server) sippCmd(t *testing.T, ctx context.Context, scenario string, timeout time.Duration, args ...string) *exec.Cmd {
	t.Helper()
	sipp := need(t, "sipp")
	scen, err := filepath.Abs(filepath.Join("sipp", scenario))
	if err != nil {
		t.Fatal(err)
	}
	host := s.Host
	if host == "" {
		host = "127.0.0.1"
	}
	args = withCallerAuth(args, fmt.Sprintf("%s:%d", host, s.SIPPort))
	secs := int(timeout / time.Second)
	if secs < 1 {
		secs = 1
	}
	all := append([]string{fmt.Sprintf("%s:%d", host, s.SIPPort), "-sf", scen, "-i", "127.0.0.1",
		"-nostdin", "-timeout", fmt.Sprint(secs), "-timeout_error", "-trace_err", "-max_recv_loops", "1000"}, args...)
	ctx, cancel := context.WithTimeout(ctx, timeout+5*time.Second)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, sipp, all...)
	cmd.Dir = t.TempDir() // SIPp writes its logs into the working directory
	return cmd
}

// withCallerAuth completes the SIPp args of a caller scenario (-set
// caller DN): every INVITE of a line is challenged (B7) and the scenarios
// answer the 407 with [authentication], so it adds the caller's demo
// credentials (-au DN -ap demoDN) unless the test gives its own, and binds
// them to the Request-URI (-auth_uri: SIPp otherwise puts
// sip:remote_ip:remote_port in uri=, which the server refuses, RFC 3261
// 22.4).
func withCallerAuth(args []string, server string) []string {
	caller, service := "", ""
	has := map[string]bool{}
	for i, a := range args {
		has[a] = true
		switch {
		case a == "-set" && i+2 < len(args) && args[i+1] == "caller":
			caller = args[i+2]
		case a == "-s" && i+1 < len(args):
			service = args[i+1]
		}
	}
	if caller == "" {
		return args
	}
	out := args[:len(args):len(args)]
	if !has["-au"] {
		out = append(out, "-au", caller, "-ap", "demo"+caller)
	}
	if !has["-auth_uri"] && service != "" {
		out = append(out, "-auth_uri", service+"@"+server)
	}
	return out
}

// dev is a device of line dn registered from local UDP port.
type dev struct {
	dn   string
	port int
}

// registerAll registers each device with register.
func (s *server) registerAll(t *testing.T, devs ...dev) {
	t.Helper()
	for _, d := range devs {
		s.register(t, d.dn, d.port)
	}
}

// register registers line dn from local port (UDP unless args say -t t1)
// with the line's demo password.
func (s *server) register(t *testing.T, dn string, port int, args ...string) {
	t.Helper()
	a := append([]string{"-s", dn, "-au", dn, "-ap", "demo" + dn, "-set", "expires", "300", "-p", fmt.Sprint(port), "-m", "1"}, args...)
	if r := s.sipp(t, "register.xml", 10*time.Second, a...); r.Code != 0 {
		t.Fatalf("register %s from port %d: sipp exit %d\n%s", dn, port, r.Code, r.Output)
	}
}
