package interop

// B7, the SIP transport exposed to an attacker: TCP connection floods and
// descriptor exhaustion, SIP over TLS, where TCP responses go, requests
// without CSeq or Via. Each test drives the real binary over loopback and
// asserts what a peer sees (responses, closed connections, /healthz) and
// what the log says.

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/icholy/digest"
)

// tpRequest builds a request from local address local over transport
// (UDP, TCP, TLS). via is the sent-by of the Via ("" for local itself);
// headers left out with drop ("CSeq", "Via").
func tpRequest(method, transport, local, via, callID string, extra string, drop ...string) string {
	if via == "" {
		via = local
	}
	hs := []string{
		fmt.Sprintf("Via: SIP/2.0/%s %s;branch=z9hG4bK%s;rport", transport, via, callID),
		"From: <sip:probe@127.0.0.1>;tag=" + callID,
		"To: <sip:1001@127.0.0.1>",
		"Call-ID: " + callID,
		fmt.Sprintf("CSeq: 1 %s", method),
		"Max-Forwards: 70",
		"Contact: <sip:1001@" + local + ";transport=" + strings.ToLower(transport) + ">",
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s sip:1001@127.0.0.1 SIP/2.0\r\n", method)
	for _, h := range hs {
		name, _, _ := strings.Cut(h, ":")
		skip := false
		for _, d := range drop {
			skip = skip || name == d
		}
		if !skip {
			b.WriteString(h + "\r\n")
		}
	}
	b.WriteString(extra)
	b.WriteString("Content-Length: 0\r\n\r\n")
	return b.String()
}

var tpCallSeq int

func tpCallID(t *testing.T) string {
	tpCallSeq++
	return fmt.Sprintf("b7tp%d%d", time.Now().UnixNano()%1e9, tpCallSeq)
}

// tpReadResponse reads one SIP response (headers; no body expected) from r.
func tpReadResponse(r *bufio.Reader) (string, error) {
	var b strings.Builder
	for {
		line, err := r.ReadString('\n')
		b.WriteString(line)
		if err != nil {
			return b.String(), err
		}
		if line == "\r\n" {
			return b.String(), nil
		}
	}
}

// tpUDPAsk sends a request over UDP from a socket on srcIP and returns the
// response, "" when none comes within d.
func (s *server) tpUDPAsk(t *testing.T, srcIP, method string, d time.Duration, drop ...string) string {
	t.Helper()
	c, err := net.ListenPacket("udp", srcIP+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := tpRequest(method, "UDP", c.LocalAddr().String(), "", tpCallID(t), "", drop...)
	dst := &net.UDPAddr{IP: net.ParseIP("127.0.0.1"), Port: s.SIPPort}
	if _, err := c.WriteTo([]byte(msg), dst); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 4096)
	n, _, err := c.ReadFrom(buf)
	if err != nil {
		return ""
	}
	return string(buf[:n])
}

// tpTCPAsk opens a TCP connection from srcIP, sends a request and returns the
// response ("" when none within d).
func (s *server) tpTCPAsk(t *testing.T, srcIP, method string, d time.Duration) string {
	t.Helper()
	dialer := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(srcIP)}, Timeout: d}
	c, err := dialer.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.SIPPort))
	if err != nil {
		return ""
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(d))
	if _, err := io.WriteString(c, tpRequest(method, "TCP", c.LocalAddr().String(), "", tpCallID(t), "")); err != nil {
		return ""
	}
	res, _ := tpReadResponse(bufio.NewReader(c))
	return res
}

// healthz returns the status and body of /healthz.
func (s *server) tpHealthz(t *testing.T) (int, string) {
	t.Helper()
	res, err := http.Get("http://" + s.HTTP + "/healthz")
	if err != nil {
		t.Fatalf("/healthz: %v", err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// metric returns the value of a metric line (name with labels) of /metrics.
func (s *server) tpMetric(t *testing.T, name string) float64 {
	t.Helper()
	for _, line := range strings.Split(metricsText(t, s), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

// tpOpenIdle opens n TCP connections from srcIP that send nothing.
func (s *server) tpOpenIdle(t *testing.T, srcIP string, n int) []net.Conn {
	t.Helper()
	dialer := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(srcIP)}, Timeout: 5 * time.Second}
	var cs []net.Conn
	for range n {
		c, err := dialer.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.SIPPort))
		if err != nil {
			t.Fatalf("connection %d from %s: %v", len(cs), srcIP, err)
		}
		cs = append(cs, c)
	}
	t.Cleanup(func() {
		for _, c := range cs {
			c.Close()
		}
	})
	return cs
}

// tpClosedBy reports how many of cs the server has closed by deadline (a
// read sees EOF or a reset); the others are left as they are.
func tpClosedBy(cs []net.Conn, deadline time.Time) int {
	// In parallel: a read past its deadline fails without looking.
	closed := make(chan bool, len(cs))
	for _, c := range cs {
		go func() {
			c.SetReadDeadline(deadline)
			_, err := c.Read(make([]byte, 64))
			closed <- err != nil && !tpIsTimeout(err)
		}()
	}
	n := 0
	for range cs {
		if <-closed {
			n++
		}
	}
	return n
}

func tpIsTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

func tpMustAnswer(t *testing.T, what, res string) {
	t.Helper()
	if !strings.HasPrefix(res, "SIP/2.0 ") {
		t.Fatalf("%s: no SIP response (got %q)", what, res)
	}
}

// TestB7_TCPFloodKeepsSIPServed: idle TCP connections from one source
// beyond sip.tcp_max_per_source are closed as soon as accepted; those
// accepted are closed after sip.tcp_idle_timeout, a message trickled byte
// by byte too. Meanwhile and afterwards UDP and TCP OPTIONS and REGISTER
// from another address are answered, /healthz says ok, and the refusals
// are logged once, not once per connection.
func TestB7_TCPFloodKeepsSIPServed(t *testing.T) {
	s := startServerWith(t, "min_expires = 1\ntcp_idle_timeout = 2\ntcp_max_per_source = 20\ntcp_max_connections = 200", demoLines)
	start := time.Now()
	flood := s.tpOpenIdle(t, "127.0.0.2", 120)

	// A message that never ends, one byte every 300 ms.
	trickle := s.tpOpenIdle(t, "127.0.0.3", 1)[0]
	stopTrickle := make(chan struct{})
	defer close(stopTrickle)
	go func() {
		msg := tpRequest("INVITE", "TCP", trickle.LocalAddr().String(), "", "trickle", "")
		for i := 0; i < len(msg)-4; i++ {
			select {
			case <-stopTrickle:
				return
			case <-time.After(300 * time.Millisecond):
			}
			if _, err := trickle.Write([]byte{msg[i]}); err != nil {
				return
			}
		}
	}()

	// During the flood: legitimate use from 127.0.0.1.
	tpMustAnswer(t, "UDP OPTIONS during the flood", s.tpUDPAsk(t, "127.0.0.1", "OPTIONS", 3*time.Second))
	tpMustAnswer(t, "TCP OPTIONS during the flood", s.tpTCPAsk(t, "127.0.0.1", "OPTIONS", 3*time.Second))
	p := callPorts(t, 2)
	s.register(t, "1001", p[0])
	s.register(t, "1002", p[1], "-t", "t1")
	if code, body := s.tpHealthz(t); code != 200 {
		t.Fatalf("/healthz during the flood: %d %s", code, body)
	}

	// 100 of the 120 were refused at once, the 20 accepted close when idle.
	refused := tpClosedBy(flood, time.Now().Add(200*time.Millisecond))
	if refused < 100 { // (and the 20 accepted too if the steps above took over 2 s)
		t.Fatalf("connections closed at once: %d of %d, want at least the 100 above the cap", refused, len(flood))
	}
	if got := s.tpMetric(t, `callbackd_sip_tcp_refused_total{cap="per_source"}`); got != 100 {
		t.Errorf("callbackd_sip_tcp_refused_total{cap=per_source} = %v, want 100", got)
	}
	if n := tpClosedBy(flood, start.Add(2*time.Second+3*time.Second)); n != len(flood) {
		t.Fatalf("%d of %d flood connections closed 5 s after opening (idle timeout 2 s)", n, len(flood))
	}
	if n := tpClosedBy([]net.Conn{trickle}, start.Add(2*time.Second+3*time.Second)); n != 1 {
		t.Fatal("a message trickled byte by byte kept its connection open past the idle timeout")
	}

	// After: still served, and truthful.
	tpMustAnswer(t, "UDP OPTIONS after the flood", s.tpUDPAsk(t, "127.0.0.1", "OPTIONS", 3*time.Second))
	tpMustAnswer(t, "TCP OPTIONS after the flood", s.tpTCPAsk(t, "127.0.0.2", "OPTIONS", 3*time.Second))
	s.register(t, "1002", p[1], "-t", "t1")
	if code, body := s.tpHealthz(t); code != 200 {
		t.Fatalf("/healthz after the flood: %d %s", code, body)
	}
	log := s.Log()
	if n := strings.Count(log, "SIP TCP connection refused"); n != 1 {
		t.Errorf("%d log lines for 100 refused connections, want 1", n)
	}
	if strings.Contains(log, "level=ERROR") {
		t.Errorf("an ERROR was logged:\n%s", tpLines(log, "level=ERROR"))
	}
}

// TestB7_DescriptorsExhausted: the server's open-files limit is lowered
// under it (prlimit) so that a TCP flood makes Accept fail with EMFILE.
// sipgo's TCP transport used to end on that error, the server then closed
// every listener and hung, with /healthz still ok. Now Accept is retried:
// UDP is answered during, and once the idle connections are closed TCP
// is answered again; the listener never stops.
func TestB7_DescriptorsExhausted(t *testing.T) {
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		t.Fatal("prlimit (util-linux) is not installed")
	}
	s := startServerWith(t, "min_expires = 1\ntcp_idle_timeout = 2", demoLines)
	pid := s.cmd.Process.Pid
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	limit := len(fds) + 8
	if out, err := exec.Command(prlimit, "--pid", fmt.Sprint(pid), fmt.Sprintf("--nofile=%d:%d", limit, limit)).CombinedOutput(); err != nil {
		t.Fatalf("prlimit: %v %s", err, out)
	}
	start := time.Now()
	flood := s.tpOpenIdle(t, "127.0.0.2", 30) // the kernel queues what the server cannot accept
	s.waitLog("SIP accept failing, retrying", 5*time.Second)

	tpMustAnswer(t, "UDP OPTIONS while descriptors are exhausted", s.tpUDPAsk(t, "127.0.0.1", "OPTIONS", 3*time.Second))

	// The accepted ones close when idle, the queued ones are accepted then
	// and close in turn: all are closed after a few idle timeouts (about 8
	// at a time, each round 2 s idle and at most 1 s of accept backoff).
	if n := tpClosedBy(flood, start.Add(40*time.Second)); n != len(flood) {
		t.Fatalf("%d of %d connections closed", n, len(flood))
	}
	tpMustAnswer(t, "TCP OPTIONS after the flood", s.tpTCPAsk(t, "127.0.0.1", "OPTIONS", 5*time.Second))
	tpMustAnswer(t, "UDP OPTIONS after the flood", s.tpUDPAsk(t, "127.0.0.1", "OPTIONS", 3*time.Second))
	if code, body := s.tpHealthz(t); code != 200 {
		t.Fatalf("/healthz after the flood: %d %s", code, body)
	}
	log := s.Log()
	if strings.Contains(log, "SIP listener stopped") {
		t.Fatalf("a listener stopped:\n%s", tpLines(log, "listener stopped"))
	}
	if n := strings.Count(log, "SIP accept failing"); n != 1 {
		t.Errorf("%d log lines for the failing accepts, want 1 (once per minute)", n)
	}
	if s.tpMetric(t, "callbackd_sip_accept_errors_total") < 1 {
		t.Error("callbackd_sip_accept_errors_total did not count the failed accepts")
	}
}

// TestB7_TCPResponseOnSameConnection: a response to a request over TCP goes
// back on the connection it came on (RFC 3261 18.2.2), whatever the Via
// says: another host, an empty host; and also when the client closes its
// sending side right after the request. Nothing connects to the Via's
// address.
func TestB7_TCPResponseOnSameConnection(t *testing.T) {
	s := startServer(t, demoLines)
	viaPort := freePort(t)
	bait, err := net.Listen("tcp", fmt.Sprintf("127.0.0.9:%d", viaPort))
	if err != nil {
		t.Fatal(err)
	}
	defer bait.Close()
	baited := make(chan string, 10)
	go func() {
		for {
			c, err := bait.Accept()
			if err != nil {
				return
			}
			baited <- c.RemoteAddr().String()
			c.Close()
		}
	}()
	for _, tc := range []struct {
		name, via  string
		closeWrite bool
	}{
		{"Via another host", bait.Addr().String(), false},
		{"Via another host, client half-closes", bait.Addr().String(), true},
		{"Via empty host", fmt.Sprintf(":%d", viaPort), false},
		{"Via empty host, client half-closes", fmt.Sprintf(":%d", viaPort), true},
	} {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.SIPPort))
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(3 * time.Second))
		msg := tpRequest("OPTIONS", "TCP", c.LocalAddr().String(), tc.via, tpCallID(t), "")
		io.WriteString(c, msg)
		if tc.closeWrite {
			c.(*net.TCPConn).CloseWrite()
		}
		start := time.Now()
		res, err := tpReadResponse(bufio.NewReader(c))
		c.Close()
		if !strings.HasPrefix(res, "SIP/2.0 200") {
			t.Errorf("%s: response on the request's connection: %q %v", tc.name, res, err)
		} else if d := time.Since(start); d > time.Second {
			t.Errorf("%s: response after %v (a DNS lookup?)", tc.name, d)
		}
	}
	select {
	case from := <-baited:
		t.Fatalf("the server connected to the Via address (from %s)", from)
	case <-time.After(300 * time.Millisecond):
	}
}

// TestB7_MissingCSeqOrVia: requests without CSeq get 400 (sipgo answers
// them statelessly); 50 of them, and 50 without Via, log no error or
// warning (which would fill the alarms), and at most one line per kind and
// source.
func TestB7_MissingCSeqOrVia(t *testing.T) {
	s := startServer(t, demoLines)
	res := s.tpUDPAsk(t, "127.0.0.1", "OPTIONS", 3*time.Second, "CSeq")
	if !strings.HasPrefix(res, "SIP/2.0 400") || !strings.Contains(res, "branch=z9hG4bK") {
		t.Fatalf("OPTIONS without CSeq: %q, want 400 with the request's Via", res)
	}
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.SIPPort))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	io.WriteString(c, tpRequest("OPTIONS", "TCP", c.LocalAddr().String(), "", tpCallID(t), "", "CSeq"))
	if res, err := tpReadResponse(bufio.NewReader(c)); !strings.HasPrefix(res, "SIP/2.0 400") {
		t.Fatalf("TCP OPTIONS without CSeq: %q %v, want 400", res, err)
	}

	u, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	dst := &net.UDPAddr{IP: net.ParseIP("127.0.0.1"), Port: s.SIPPort}
	for i := range 100 {
		drop := "CSeq"
		if i%2 == 1 {
			drop = "Via"
		}
		u.WriteTo([]byte(tpRequest("OPTIONS", "UDP", u.LocalAddr().String(), "", tpCallID(t), "", drop)), dst)
	}
	// The server still answers, after the last of them.
	tpMustAnswer(t, "OPTIONS after 100 malformed", s.tpUDPAsk(t, "127.0.0.1", "OPTIONS", 3*time.Second))
	// The log reaches the test through a pipe: wait for the line before
	// counting, not for the answer that came after it on the wire.
	s.waitLog(`msg="SIP request not handled"`, 5*time.Second)
	log := s.Log()
	for _, bad := range []string{"level=ERROR", "level=WARN"} {
		if strings.Contains(log, bad) {
			t.Errorf("malformed requests logged at %s:\n%s", bad, tpLines(log, bad))
		}
	}
	if n := strings.Count(log, `msg="SIP request not handled"`); n < 1 || n > 2 {
		t.Errorf("%d log lines for 102 requests without CSeq or Via from one address, want 1 (per kind and source per minute)\n%s", n, tpLines(log, "not handled"))
	}
}

// TestB7_TLSRegister: a "tls:" listener with a certificate made here; a
// phone registers over TLS (digest challenge, then 200) and is answered on
// its TLS connection. With tcp_idle_timeout 1 s, an idle TLS connection
// that registered nothing is closed, the phone's stays open while its
// registration lasts (calls to it would go that way).
func TestB7_TLSRegister(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := tpSelfSigned(t, dir)
	tlsPort := freePort(t)
	s := startServerWith(t, fmt.Sprintf("min_expires = 1\ntcp_idle_timeout = 1\ntls_cert = %q\ntls_key = %q", certFile, keyFile), demoLines)
	// startServerWith writes listen itself: add the TLS listener and restart.
	cfg, err := os.ReadFile(s.Config)
	if err != nil {
		t.Fatal(err)
	}
	cfg = regexp.MustCompile(`listen = \["udp`).ReplaceAll(cfg, []byte(fmt.Sprintf(`listen = ["tls:127.0.0.1:%d", "udp`, tlsPort)))
	if err := os.WriteFile(s.Config, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	s.stop()
	s.restart()
	if want := fmt.Sprintf("addr=tls:127.0.0.1:%d", tlsPort); !strings.Contains(s.Log(), want) {
		t.Fatalf("no log line with %s", want)
	}

	c, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", tlsPort), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatalf("TLS handshake: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	local := c.LocalAddr().String()
	callID := tpCallID(t)
	reg := func(cseq int, auth string) string {
		msg := tpRequest("REGISTER", "TLS", local, "", callID, "Expires: 60\r\n"+auth)
		msg = strings.Replace(msg, "CSeq: 1 REGISTER", fmt.Sprintf("CSeq: %d REGISTER", cseq), 1)
		msg = strings.Replace(msg, "REGISTER sip:1001@127.0.0.1", "REGISTER sip:127.0.0.1", 1)
		msg = strings.Replace(msg, ";branch=z9hG4bK"+callID, fmt.Sprintf(";branch=z9hG4bK%s%d", callID, cseq), 1)
		msg = strings.Replace(msg, "To: <sip:1001@127.0.0.1>", "To: <sip:1001@127.0.0.1>", 1)
		msg = strings.Replace(msg, "From: <sip:probe@127.0.0.1>", "From: <sip:1001@127.0.0.1>", 1)
		if _, err := io.WriteString(c, msg); err != nil {
			t.Fatal(err)
		}
		res, err := tpReadResponse(r)
		if err != nil {
			t.Fatalf("REGISTER over TLS: %q %v", res, err)
		}
		return res
	}
	res := reg(1, "")
	if !strings.HasPrefix(res, "SIP/2.0 401") {
		t.Fatalf("first REGISTER over TLS: %q, want a 401 challenge", res)
	}
	var chal *digest.Challenge
	for _, line := range strings.Split(res, "\r\n") {
		if v, ok := strings.CutPrefix(line, "WWW-Authenticate: "); ok && chal == nil {
			if chal, err = digest.ParseChallenge(v); err != nil {
				t.Fatal(err)
			}
		}
	}
	if chal == nil {
		t.Fatalf("401 without WWW-Authenticate: %q", res)
	}
	cred, err := digest.Digest(chal, digest.Options{Method: "REGISTER", URI: "sip:127.0.0.1", Username: "1001", Password: "demo1001", Count: 1})
	if err != nil {
		t.Fatal(err)
	}
	res = reg(2, "Authorization: "+cred.String()+"\r\n")
	if !strings.HasPrefix(res, "SIP/2.0 200") {
		t.Fatalf("REGISTER over TLS with credentials: %q, want 200", res)
	}
	// The binding is stored with its transport: calls to 1001 go over TLS.
	if code, body := s.api(t, "GET", "/api/v1/registrations", ""); code != 200 || !strings.Contains(body, `"TLS"`) {
		t.Fatalf("registrations after REGISTER over TLS: %d %s", code, body)
	}

	// Idle for 2.5 idle timeouts: the anonymous connection is closed, the
	// phone's still answers.
	anon, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", tlsPort), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer anon.Close()
	idleFrom := time.Now()
	if n := tpClosedBy([]net.Conn{anon}, idleFrom.Add(2500*time.Millisecond)); n != 1 {
		t.Fatal("an idle TLS connection that registered nothing is still open after 2.5 idle timeouts")
	}
	time.Sleep(time.Until(idleFrom.Add(2500 * time.Millisecond)))
	c.SetDeadline(time.Now().Add(3 * time.Second))
	msg := tpRequest("OPTIONS", "TLS", local, "", tpCallID(t), "")
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatalf("the registered phone's TLS connection was closed while idle: %v", err)
	}
	if res, err := tpReadResponse(r); !strings.HasPrefix(res, "SIP/2.0 200") {
		t.Fatalf("OPTIONS on the registered phone's idle TLS connection: %q %v", res, err)
	}
}

// tpSelfSigned writes a self-signed certificate for 127.0.0.1 and its key
// to dir and returns their paths and a pool that trusts it.
func tpSelfSigned(t *testing.T, dir string) (string, string, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "callbackd test"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// tpLines returns the lines of log containing substr.
func tpLines(log, substr string) string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
