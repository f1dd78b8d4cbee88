package interop

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/callbackd/callbackd/internal/store/postgres/pgtest"
)

// The cluster (issue 17, F35): instances on 127.0.0.2, .3, ... sharing
// one PostgreSQL, which the tests start (pgtest). The lease is 2 s,
// renewed every 500 ms: a dead active's lease ends at most 2 s after its
// last renewal, and a standby takes it within 500 ms. 2 s, not the
// shortest 1 s, so that a loaded moment of the shared box (a stall of
// 0.9 s) does not end the active's term in the middle of a test;
// CLUSTER_LEASE sets another (bench/cluster/run.sh: 1s).
var clusterLease = func() time.Duration {
	v := os.Getenv("CLUSTER_LEASE")
	if v == "" {
		return 2 * time.Second
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < time.Second || d > time.Minute {
		panic("CLUSTER_LEASE=" + v + ": want a duration from 1s to 1m")
	}
	return d
}()

// clusterNode starts an instance of the cluster sharing the database at
// url on host:port, named name with priority prio, and returns at once
// (a standby waits for the lease; see waitActive).
func clusterNode(t *testing.T, host string, port int, name string, prio int, url string) *server {
	t.Helper()
	return clusterNodeWith(t, host, port, name, prio, url, "")
}

// clusterNodeWith is clusterNode with more TOML tables (lines).
func clusterNodeWith(t *testing.T, host string, port int, name string, prio int, url, tables string) *server {
	t.Helper()
	s := &server{t: t, Host: host, Dir: t.TempDir(), SIPPort: port}
	s.HTTP = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	s.Config = filepath.Join(s.Dir, "callbackd.toml")
	cfg := fmt.Sprintf(`[sip]
listen = ["udp:%[1]s:%[2]d", "tcp:%[1]s:%[2]d"]
min_expires = 1
overload_delay = "0s"
[http]
listen = %[3]q
token = "`+apiToken+`"
[store]
driver = "postgres"
url = %[4]q
[cluster]
name = %[5]q
priority = %[6]d
lease = %[7]q
handover_wait = "5s"
[log]
level = "debug"
%[8]s`, host, port, s.HTTP, url, name, prio, clusterLease.String(), cbConfig("", tables))
	if err := os.WriteFile(s.Config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	s.launch()
	t.Cleanup(s.stop)
	return s
}

// waitActive waits until s, after the log position mark, has become the
// active instance and serves SIP with its requests restored.
func (s *server) waitActive(t *testing.T, mark int) {
	t.Helper()
	s.cbWaitLog(t, mark, `msg="cluster: this instance is active"`)
	s.cbWaitLog(t, mark, `msg="call back requests restored"`)
}

// sipProbe sends requests out of any dialog over UDP, as Kamailio's
// dispatcher probes, and reads the answers.
type sipProbe struct {
	t          *testing.T
	c          net.Conn
	host, port string
}

func newProbe(t *testing.T, host string, port int) *sipProbe {
	t.Helper()
	c, err := net.Dial("udp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &sipProbe{t: t, c: c, host: host, port: strconv.Itoa(port)}
}

// send sends one request (OPTIONS, or a REGISTER of line 1002 without
// credentials): once sent it waits in the server's socket.
func (p *sipProbe) send(method string) {
	local := p.c.LocalAddr().String()
	id := time.Now().UnixNano()
	to := "sip:" + p.host + ":" + p.port
	if method == "REGISTER" {
		to = "sip:1002@" + p.host
	}
	fmt.Fprintf(p.c, "%s sip:%s:%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK%d;rport\r\nMax-Forwards: 70\r\n"+
		"From: <%s>;tag=%d\r\nTo: <%s>\r\nCall-ID: %d@probe\r\nCSeq: 1 %s\r\nContact: <sip:1002@%s>\r\nContent-Length: 0\r\n\r\n",
		method, p.host, p.port, local, id, to, id, to, id, method, local)
}

// status reads the next response's status code (0: none within d).
func (p *sipProbe) status(d time.Duration) int {
	p.c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 4096)
	n, err := p.c.Read(buf)
	if err != nil {
		return 0
	}
	m := regexp.MustCompile(`^SIP/2\.0 (\d{3}) `).FindSubmatch(buf[:n])
	if m == nil {
		p.t.Fatalf("%s:%s: not a response: %q", p.host, p.port, buf[:n])
	}
	code, _ := strconv.Atoi(string(m[1]))
	return code
}

// optionsStatus sends one OPTIONS and returns the answer's status code
// (0: no answer within 500 ms).
func optionsStatus(t *testing.T, host string, port int) int {
	t.Helper()
	p := newProbe(t, host, port)
	p.send("OPTIONS")
	return p.status(500 * time.Millisecond)
}

// untilServes polls s with OPTIONS until it answers 200 and returns how
// long that took.
func untilServes(t *testing.T, s *server, d time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for optionsStatus(t, s.Host, s.SIPPort) != 200 {
		if time.Since(start) > d {
			t.Fatalf("%s:%d does not serve within %v\n%s", s.Host, s.SIPPort, d, s.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// metric returns the value of one metric line of s (name with labels as
// /metrics writes it), 0 when absent.
func metric(t *testing.T, s *server, name string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindStringSubmatch(metricsText(t, s))
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

// TestF35_B3_ClusterKill9Takeover: two instances share a PostgreSQL; the
// standby answers OPTIONS 503. A activates Call Back (CCNL) on the
// active, which is then killed with SIGKILL: the standby serves within
// the bound, with the request; B registers there and A is told, once.
// The killed instance, started again with the better priority, takes the
// lease back at a quiet moment (a clean handover) and tells A nothing
// again; Dial through it completes the request.
func TestF35_B3_F37_ClusterKill9Takeover(t *testing.T) {
	c := newClusterPair(t, nil)
	s1, s2, pa1, pb := c.s1, c.s2, c.pa1, c.pb
	port := s1.SIPPort

	mark2 := s2.cbMark()
	s1.kill9()
	if took, bound := c.takenOver(t, mark2, "the active's SIGKILL"), clusterLease+clusterLease/4+5*time.Second; took > bound {
		t.Errorf("takeover took %v, bound %v (lease, a renewal period, the restore with a loaded box's slack)", took, bound)
	}

	// The killed one comes back with the better priority: it asks for the
	// lease, which the active hands over at once (no call in progress).
	mark1, mark2 := s1.cbMark(), s2.cbMark()
	s1.launch() // a standby first
	s2.cbWaitLog(t, mark2, `msg="cluster: restarting as a standby"`)
	s1.waitActive(t, mark1)
	s2.cbWaitLog(t, mark2, `msg="cluster: standby`)
	if code := optionsStatus(t, s2.Host, port); code != 503 {
		t.Errorf("the old active, now a standby, answers OPTIONS %d, want 503", code)
	}
	if n := metric(t, s1, "callbackd_callback_notifications_total"); n != 0 {
		t.Errorf("after the handover A was notified again (%v)", n)
	}
	// F37: the status lists both instances and the three grants.
	if code, body := s1.api(t, "GET", "/api/v1/status", ""); code != 200 ||
		!strings.Contains(body, `"active": "a",`) || !strings.Contains(body, `"epoch": 3,`) ||
		!strings.Contains(body, `"reason": "handover"`) || !strings.Contains(body, `"reason": "lease expired"`) ||
		!strings.Contains(body, `"takeovers_total": 3`) || strings.Count(body, `"priority"`) != 2 {
		t.Errorf("status after the takeovers: %d %s", code, body)
	}
	if a, e := metric(t, s1, "callbackd_cluster_active"), metric(t, s1, "callbackd_cluster_epoch"); a != 1 || e != 3 {
		t.Errorf("metrics: callbackd_cluster_active %v, callbackd_cluster_epoch %v; want 1 and 3", a, e)
	}
	mark1 = s1.cbMark()
	s1.cbDial(t, pa1, pb)
	s1.cbWaitLog(t, mark1, `msg="call back ended" id=1 reason=completed`)
}

// clusterPair is two instances, s1 (priority 1) active, s2 its standby
// (priority 2; with newCluster(t, nil, 3) s3 too, priority 3),
// and line 1001's two devices (pa1 calls, pa2 shows screens) with a Call
// Back request (CCNL) on 1002 activated through s1; pb is 1002's device,
// not registered.
type clusterPair struct {
	s1, s2, s3   *server
	pa1, pa2, pb int
}

// newClusterPair starts the pair; with px, s1 reaches the database
// through that proxy, which the test may cut.
func newClusterPair(t *testing.T, px *cutProxy) *clusterPair {
	t.Helper()
	return newCluster(t, px, 2)
}

// newCluster starts n instances (2 or 3), as newClusterPair.
func newCluster(t *testing.T, px *cutProxy, n int) *clusterPair {
	t.Helper()
	need(t, "sipp")
	pg := pgtest.Start(t)
	url := pg.NewDB(t)
	url1 := url
	if px != nil {
		px.mu.Lock()
		px.target = fmt.Sprintf("127.0.0.1:%d", pg.Port)
		px.mu.Unlock()
		url1 = strings.Replace(url, fmt.Sprintf(":%d/", pg.Port), fmt.Sprintf(":%d/", px.port), 1)
	}
	port := freePort(t)
	ports := callPorts(t, 3)
	c := &clusterPair{pa1: ports[0], pa2: ports[1], pb: ports[2]}
	c.s1 = clusterNode(t, "127.0.0.2", port, "a", 1, url1)
	c.s1.waitActive(t, 0)
	c.s2 = clusterNode(t, "127.0.0.3", port, "b", 2, url)
	c.s2.cbWaitLog(t, 0, `msg="cluster: standby`)
	if code := optionsStatus(t, c.s2.Host, port); code != 503 {
		t.Fatalf("the standby answers OPTIONS %d, want 503", code)
	}
	if n == 3 {
		c.s3 = clusterNode(t, "127.0.0.4", port, "c", 3, url)
		c.s3.cbWaitLog(t, 0, `msg="cluster: standby`)
		if code := optionsStatus(t, c.s3.Host, port); code != 503 {
			t.Fatalf("the third, a standby, answers OPTIONS %d, want 503", code)
		}
	}
	if code := optionsStatus(t, c.s1.Host, port); code != 200 {
		t.Fatalf("the active answers OPTIONS %d, want 200", code)
	}
	c.s1.register(t, "1001", c.pa1)
	c.s1.register(t, "1001", c.pa2)
	display := c.s1.cbStart(t, "A's display", "display.xml", c.pa2, true, "-m", "1")
	mark := c.s1.cbMark()
	c.s1.cbActivateCCNL(t, "1001", c.pa1)
	c.s1.cbWaitLog(t, mark, `action="persist #1 1001->1002 CCNL active seen=1002"`)
	display.expectScreen(t, 1, activatedScreen("1002"))
	display.pass(t)
	return c
}

// takenOver waits until s2 serves as the active with the request, and
// B registering there notifies A, once; it returns how long s2 took to
// serve (OPTIONS 200) from the call.
func (c *clusterPair) takenOver(t *testing.T, mark2 int, what string) time.Duration {
	t.Helper()
	took := servesWithRequest(t, c.s2, mark2, what)
	c.notifiesOnce(t, c.s2)
	return took
}

// servesWithRequest waits until s, after the log position mark, serves
// as the active with the request, and returns how long it took to serve
// (OPTIONS 200) from the call.
func servesWithRequest(t *testing.T, s *server, mark int, what string) time.Duration {
	t.Helper()
	took := untilServes(t, s, 10*time.Second)
	s.waitActive(t, mark)
	t.Logf("the standby %s:%d serves %v after %s (lease %v)", s.Host, s.SIPPort, took.Round(time.Millisecond), what, clusterLease)
	if code, body := s.api(t, "GET", "/api/v1/callbacks", ""); code != 200 || !strings.Contains(body, `"id": 1,`) {
		t.Fatalf("the new active's requests: %d %s", code, body)
	}
	return took
}

// notifiesOnce: B registering on the active s notifies A, once.
func (c *clusterPair) notifiesOnce(t *testing.T, s *server) {
	t.Helper()
	display := s.cbStart(t, "A's display after the takeover", "display.xml", c.pa2, true, "-m", "2")
	s.register(t, "1002", c.pb)
	display.expectAvailable(t, 1, "1002")
	display.mustAlert(t, "1002")
	display.pass(t)
	if n := metric(t, s, "callbackd_callback_notifications_total"); n != 1 {
		t.Errorf("the new active notified %v times, want 1", n)
	}
}

// TestF35_B3_ClusterFrozenActiveActsNoMore: the active is frozen
// (SIGSTOP) with B's REGISTER waiting in its socket; the standby takes
// over and notifies A when B registers there. Continued (SIGCONT), the
// old active reads B's REGISTER but acts on nothing (its lease ran out
// on its own clock: 503), stops and starts again as a standby.
func TestF35_B3_ClusterFrozenActiveActsNoMore(t *testing.T) {
	c := newClusterPair(t, nil)
	mark1, mark2 := c.s1.cbMark(), c.s2.cbMark()
	if err := c.s1.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	frozen := true
	defer func() {
		if frozen {
			c.s1.cmd.Process.Signal(syscall.SIGCONT)
		}
	}()
	// kill(2) returns before the process has stopped: a REGISTER sent at
	// once could still be answered by the running active.
	waitStopped(t, c.s1.cmd.Process.Pid)
	// A REGISTER for B reaches the frozen active: it waits in its socket.
	late := newProbe(t, c.s1.Host, c.s1.SIPPort)
	late.send("REGISTER")
	c.takenOver(t, mark2, "the active's SIGSTOP")

	c.s1.cmd.Process.Signal(syscall.SIGCONT)
	frozen = false
	// 503 from the gate, or nothing when the old active had closed its
	// listeners first; never a challenge (401) or 200: it does not act.
	if code := late.status(2 * clusterLease); code != 503 && code != 0 {
		t.Errorf("the continued old active answered the REGISTER that waited %d, want 503", code)
	}
	c.s1.cbWaitLog(t, mark1, `msg="cluster: this instance stops acting"`)
	c.s1.cbWaitLog(t, mark1, `msg="cluster: standby`)
	// What it did from SIGCONT until it was a standby again (it may then
	// take the lease back: it has the better priority).
	after := c.s1.cbLogSince(mark1)
	after = after[:strings.Index(after, `msg="cluster: standby`)]
	for _, acted := range []string{`msg="callback action"`, `msg="register: `, `"call back requests restored"`} {
		if strings.Contains(after, acted) {
			t.Errorf("the continued old active acted (%s):\n%s", acted, after)
		}
	}
}

// waitStopped waits until process pid is stopped (state T in
// /proc/PID/stat, proc(5)).
func waitStopped(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			t.Fatal(err)
		}
		// The state follows the command name in parentheses.
		if i := bytes.LastIndexByte(b, ')'); i > 0 && len(b) > i+2 && b[i+2] == 'T' {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d not stopped 5 s after SIGSTOP", pid)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestF35_B3_ClusterDatabaseCut: the active loses its database (the
// connection cut): within its lease it answers 503 and acts no more, and
// the standby takes over with the request.
func TestF35_B3_ClusterDatabaseCut(t *testing.T) {
	px := newCutProxy(t)
	c := newClusterPair(t, px)
	mark1, mark2 := c.s1.cbMark(), c.s2.cbMark()
	px.cut()
	c.s1.cbWaitLog(t, mark1, `msg="cluster: this instance stops acting"`)
	if code := optionsStatus(t, c.s1.Host, c.s1.SIPPort); code == 200 {
		t.Errorf("the active cut from its database still answers OPTIONS 200")
	}
	c.takenOver(t, mark2, "the active's database cut")
}

// cutProxy forwards TCP to the test's PostgreSQL until cut.
type cutProxy struct {
	ln     net.Listener
	port   int
	mu     sync.Mutex
	conns  []net.Conn
	target string
}

// newCutProxy listens on a free port; newClusterPair sets its target
// before the first connection.
func newCutProxy(t *testing.T) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, port: ln.Addr().(*net.TCPAddr).Port}
	t.Cleanup(p.cut)
	go p.serve()
	return p
}

func (p *cutProxy) serve() {
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		target := p.target
		p.mu.Unlock()
		out, err := net.Dial("tcp", target)
		if err != nil {
			in.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, in, out)
		p.mu.Unlock()
		go func() { io.Copy(out, in); out.Close() }()
		go func() { io.Copy(in, out); in.Close() }()
	}
}

// cut closes the listener and every connection.
func (p *cutProxy) cut() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}
