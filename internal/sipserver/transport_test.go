package sipserver

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/callbackd/callbackd/internal/config"
)

func newTestServer(t *testing.T, listen ...string) *Server {
	t.Helper()
	return newTestServerWith(t, func(*config.Config) {}, listen...)
}

func newTestServerWith(t *testing.T, change func(*config.Config), listen ...string) *Server {
	t.Helper()
	cfg := config.Default()
	cfg.SIP.Listen = listen
	change(cfg)
	srv, err := New(cfg.SIP, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	notHere := func(req *sip.Request, tx sip.ServerTransaction) {
		respond(tx, req, 404, "Not Found", srv.Log)
	}
	srv.Route(Handlers{Register: notHere, Invite: notHere, Ack: func(*sip.Request, sip.ServerTransaction) {}, InDialog: notHere,
		IsLine: func(string) bool { return false }})
	return srv
}

// serve serves srv as internal/app does: Start (it returns once
// listening), then, once ctx ends, Close. served reports the end.
func serve(ctx context.Context, srv *Server) (served <-chan error) {
	srv.Start(ctx)
	done := make(chan error, 1)
	go func() {
		<-ctx.Done()
		srv.Close()
		done <- nil
	}()
	return done
}

// TestB7_ListenerDownHealthAndShutdown: a listener that stops while
// serving (here its socket closed under sipgo) makes Healthy fail with the
// reason while the others keep serving, and stopping the server afterwards
// returns at once. Before, serve waited for goroutines whose context it
// cancelled only after the wait: the process hung with SIP gone.
func TestB7_ListenerDownHealthAndShutdown(t *testing.T) {
	srv := newTestServer(t, "udp:127.0.0.1:0", "tcp:127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	served := serve(ctx, srv)
	if err := srv.Healthy(); err != nil {
		t.Fatalf("Healthy while serving: %v", err)
	}

	// Close the TCP socket below our wrapper: Accept fails for good.
	for _, l := range srv.listeners {
		if l.transport == "TCP" {
			l.tcp.(*tcpListener).Listener.Close()
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for srv.Healthy() == nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	err := srv.Healthy()
	if err == nil || !strings.Contains(err.Error(), "SIP TCP listener") {
		t.Fatalf("Healthy after the TCP listener stopped = %v, want the TCP listener named", err)
	}

	// The UDP listener still answers.
	c, err := net.Dial("udp", srv.Addrs()[0][len("udp:"):])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK1;rport\r\n" +
		"From: <sip:a@b>;tag=1\r\nTo: <sip:x@127.0.0.1>\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"))
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 2048)
	n, err := c.Read(buf)
	if err != nil || !strings.HasPrefix(string(buf[:n]), "SIP/2.0 200") {
		t.Fatalf("UDP OPTIONS after the TCP listener stopped: %q %v", buf[:n], err)
	}

	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after cancel: shutdown hangs")
	}
}

// failingListener fails its first n Accepts with EMFILE, as a process out
// of file descriptors does, then accepts from the real listener.
type failingListener struct {
	net.Listener
	fail atomic.Int32
}

func (f *failingListener) Accept() (net.Conn, error) {
	if f.fail.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: syscall.EMFILE}
	}
	return f.Listener.Accept()
}

// TestB7_AcceptErrorRetried: Accept errors are waited out, never the end of
// the listener (sipgo's TCP Serve returns on the first one).
func TestB7_AcceptErrorRetried(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := &failingListener{Listener: inner}
	fl.fail.Store(5)
	lim := newConnLimits(time.Minute, 10, 10, slog.New(slog.DiscardHandler))
	l := newTCPListener(fl, "TCP", lim)
	defer l.Close()
	go func() {
		c, err := net.Dial("tcp", inner.Addr().String())
		if err == nil {
			defer c.Close()
			time.Sleep(2 * time.Second)
		}
	}()
	c, err := l.Accept()
	if err != nil {
		t.Fatalf("Accept after EMFILE errors: %v", err)
	}
	c.Close()
	if n := lim.Open(); n != 0 {
		t.Errorf("open connections after close = %d", n)
	}

	// Close ends an Accept waiting out errors.
	fl.fail.Store(1000)
	done := make(chan error, 1)
	go func() { _, err := l.Accept(); done <- err }()
	time.Sleep(50 * time.Millisecond)
	l.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept after Close = %v, want net.ErrClosed", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Accept did not return after Close")
	}
}

// TestB7_ConnCapsAndIdle: connections beyond the per-source cap are closed
// as soon as accepted, and an idle one is closed after the idle timeout.
func TestB7_ConnCapsAndIdle(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lim := newConnLimits(300*time.Millisecond, 10, 2, slog.New(slog.DiscardHandler))
	l := newTCPListener(inner, "TCP", lim)
	defer l.Close()
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	var clients []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c)
	}
	// The third is refused: closed by the server at once.
	clients[2].SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := clients[2].Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("third connection from one source: read %v, want EOF (closed)", err)
	}
	for range 2 {
		c := <-accepted
		start := time.Now()
		_, err := c.Read(make([]byte, 10))
		if err != io.EOF || time.Since(start) > 2*time.Second {
			t.Fatalf("idle connection: read %v after %v, want EOF after the idle timeout", err, time.Since(start))
		}
		c.Close()
	}
	if n := lim.Open(); n != 0 {
		t.Errorf("open connections = %d", n)
	}
}

// TestB7_UDPSourcesBounded: requests from ever new source addresses (free
// to spoof over UDP) do not grow sipgo's pool without bound: past a bound
// the UDP loop restarts and forgets them, and every request is still
// answered from the listening socket (never from a socket opened for it).
func TestB7_UDPSourcesBounded(t *testing.T) {
	srv := newTestServer(t, "udp:127.0.0.1:0")
	u := srv.listeners[0].udp
	u.max, u.keep = 40, 10
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := serve(ctx, srv)
	addr := u.LocalAddr().String()
	pool := srv.srv.TransportLayer().Pool("udp")
	maxSize := 0
	for i := range 300 {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		dst, _ := net.ResolveUDPAddr("udp", addr)
		c.WriteTo([]byte("OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP "+c.LocalAddr().String()+";branch=z9hG4bKu"+
			strings.Repeat("x", i%7)+c.LocalAddr().String()+";rport\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@127.0.0.1>\r\n"+
			"Call-ID: u"+c.LocalAddr().String()+"\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"), dst)
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		buf := make([]byte, 2048)
		n, from, err := c.ReadFrom(buf)
		c.Close()
		if err != nil || !strings.HasPrefix(string(buf[:n]), "SIP/2.0 200") {
			t.Fatalf("request %d: %q %v", i, buf[:n], err)
		}
		if from.String() != addr {
			t.Fatalf("request %d answered from %s, not from the listening socket %s", i, from, addr)
		}
		maxSize = max(maxSize, pool.Size())
	}
	cancel()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	if got := u.restarts; got < 1 {
		t.Errorf("UDP loop restarts = %v, want at least 1", got)
	}
	if maxSize > 40+10+5 {
		t.Errorf("sipgo's UDP pool held up to %d entries, want at most about 50", maxSize)
	}
}

// TestB7_TransactionsBounded: with sip.max_transactions alive (each INVITE
// answered 404 lives until its ACK, which never comes: Timer H, 32 s over
// UDP), a new request gets 503 with Retry-After at once and leaves nothing
// behind. (Finished transactions are not alive: TestB7_FinishedKeepsOnlyTheResponse.)
func TestB7_TransactionsBounded(t *testing.T) {
	srv := newTestServerWith(t, func(c *config.Config) { c.SIP.MaxTransactions = 8 }, "udp:127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := serve(ctx, srv)
	dst, _ := net.ResolveUDPAddr("udp", srv.Addrs()[0][len("udp:"):])
	var codes []string
	for i := range 9 {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		la := c.LocalAddr().String()
		auth := ""
		if i == 8 { // with credentials: the reserved quarter
			auth = "Authorization: Digest username=\"1001\", realm=\"callbackd\", nonce=\"x\", uri=\"sip:x@127.0.0.1\", response=\"0\"\r\n"
		}
		c.WriteTo([]byte("INVITE sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP "+la+";branch=z9hG4bKt"+la+";rport\r\n"+
			"From: <sip:a@b>;tag=1\r\nTo: <sip:x@127.0.0.1>\r\nCall-ID: t"+la+"\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n"+auth+"Content-Length: 0\r\n\r\n"), dst)
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		buf := make([]byte, 2048)
		n, _, err := c.ReadFrom(buf)
		c.Close()
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		res := string(buf[:n])
		codes = append(codes, res[8:11])
		if i >= 6 && i < 8 && !strings.Contains(res, "Retry-After: 5") {
			t.Errorf("503 without Retry-After: %q", res)
		}
	}
	// 8 at most, a quarter of them kept for requests with credentials or
	// in a dialog: anonymous ones get 6.
	if got := strings.Join(codes, " "); got != "404 404 404 404 404 404 503 503 404" {
		t.Errorf("answers = %s, want six 404, two 503, then 404 for the request with credentials", got)
	}
	if n := srv.txOpen.Load(); n != 7 {
		t.Errorf("transactions alive = %d, want 7 (the refused ones kept nowhere)", n)
	}
	cancel()
	<-served
}

// TestB7_LagProbe: with more runnable goroutines than the CPU gets through
// (here 40 busy ones on one P), the probe says the server is behind, and
// says it no longer once they are done.
func TestB7_LagProbe(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	var p lagProbe
	// The first look takes the history so far as its baseline; wait for a
	// calm window before loading.
	for deadline := time.Now().Add(3 * time.Second); p.isBehind() && time.Now().Before(deadline); {
		time.Sleep(probeEvery)
	}
	if p.isBehind() {
		t.Fatal("behind before any load")
	}
	stop := make(chan struct{})
	var sink atomic.Int64
	for range 40 {
		go func() {
			for n := 0; ; n++ {
				if n%1024 == 0 {
					select {
					case <-stop:
						return
					default:
					}
				}
				sink.Add(1)
			}
		}()
	}
	behind := false
	for deadline := time.Now().Add(3 * time.Second); !behind && time.Now().Before(deadline); {
		behind = p.isBehind()
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	if !behind {
		t.Fatal("40 busy goroutines on one P: the probe never said behind")
	}
	for deadline := time.Now().Add(3 * time.Second); p.isBehind() && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if p.isBehind() {
		t.Fatal("still behind 3 s after the busy goroutines ended")
	}
}
