package sipserver

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/callbackd/callbackd/internal/throttle"
	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
)

// The SIP transport as exposed to anyone (B7). sipgo's TCP transport ends
// for good on the first Accept error, keeps every connection for as long
// as the peer likes, and its UDP transport remembers every source address
// it ever read from. The wrappers here, around the sockets handed to
// sipgo, keep those in bounds:
//   - tcpListener retries Accept errors (EMFILE when descriptors run out)
//     with backoff, and closes at once connections beyond the caps;
//   - tcpConn closes a connection that completes no message for the idle
//     timeout (a message sent too slowly included);
//   - udpConn restarts sipgo's UDP read loop when the source addresses it
//     remembered pass a bound, which forgets them;
//   - both stop reading while the server is behind (lagProbe), so that a
//     flood waits in the kernel's socket buffers, and is dropped there,
//     instead of in the heap.

const (
	logInterval     = time.Minute            // at most one log line per kind (and source) per interval
	acceptBackoffLo = 5 * time.Millisecond   // first wait after an Accept error
	acceptBackoffHi = time.Second            // longest wait between Accept attempts
	eofGrace        = 20 * time.Millisecond  // a closing peer's last request still finds its connection
	udpSourcesMax   = 8192                   // source addresses sipgo's UDP pool may hold
	maxLag          = 100 * time.Millisecond // reading stops while a tenth of goroutines wait this long to run
	probeEvery      = 10 * time.Millisecond
)

// lagProbe tells whether the server is behind. sipgo starts a goroutine
// for every message it reads; when the CPU cannot keep up, they pile up,
// each holding its message (a flood of 5,000 INVITEs/s on a busy 2-core
// machine left 30,000 of them, 900 MB). The runtime's histogram of how
// long goroutines waited to run tells: behind when, over the last
// probeEvery, a tenth of them waited more than maxLag.
type lagProbe struct {
	last   atomic.Int64 // unix ns of the last look
	behind atomic.Bool  // what it saw

	mu     sync.Mutex // the look
	sample []metrics.Sample
	prev   []uint64
}

func (p *lagProbe) isBehind() bool {
	now := time.Now().UnixNano()
	last := p.last.Load()
	if now-last < int64(probeEvery) || !p.last.CompareAndSwap(last, now) {
		return p.behind.Load()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sample == nil {
		p.sample = []metrics.Sample{{Name: "/sched/latencies:seconds"}}
	}
	metrics.Read(p.sample)
	if p.sample[0].Value.Kind() != metrics.KindFloat64Histogram {
		return false
	}
	h := p.sample[0].Value.Float64Histogram()
	var slow, all uint64
	for i, c := range h.Counts {
		if i < len(p.prev) {
			c -= p.prev[i]
		}
		all += c
		if h.Buckets[i] >= maxLag.Seconds() {
			slow += c
		}
	}
	p.prev = append(p.prev[:0], h.Counts...)
	b := all > 0 && slow*10 >= all
	p.behind.Store(b)
	return b
}

// udpReadBuffer is the SIP UDP socket's receive buffer. What arrives
// while nothing reads waits there: a read pause (waitNotBehind), a
// garbage collection, another process holding the CPUs. Linux's default
// (net.core.rmem_default, 208 KB) holds about 100 ms of 1000 calls/s;
// past it the kernel drops, the phones retransmit (RFC 3261 17.1.1.2),
// and retransmissions crossing answers fail calls (issue 14: 124 of 34k
// background calls failed in 2 s on a busy box). Linux caps it at
// net.core.rmem_max.
const udpReadBuffer = 4 << 20

// setReadBuffer asks for udpReadBuffer, and says once if the system gave
// less (raise net.core.rmem_max).
func setReadBuffer(pc net.PacketConn, log *slog.Logger) {
	uc, ok := pc.(*net.UDPConn)
	if !ok {
		return
	}
	if err := uc.SetReadBuffer(udpReadBuffer); err != nil {
		log.Warn("SIP UDP receive buffer not set", "error", err)
		return
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		return
	}
	got := 0
	rc.Control(func(fd uintptr) {
		got, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF)
	})
	if got > 0 && got < udpReadBuffer { // Linux reports twice what it holds for data
		log.Info("SIP UDP receive buffer smaller than asked: raise net.core.rmem_max", "bytes", got, "asked", udpReadBuffer)
	}
}

// waitNotBehind pauses a reading goroutine while the server is behind
// (until stop says so).
func (l *connLimits) waitNotBehind(stop func() bool) {
	if !l.probe.isBehind() {
		return
	}
	l.m.readPauses.Inc()
	l.warn("behind", "SIP overloaded: reading paused while the server catches up (excess is dropped by the kernel)", "max_lag", maxLag.String())
	for l.probe.isBehind() && !stop() {
		time.Sleep(5 * time.Millisecond)
	}
}

// transportMetrics are the transport's counters on /metrics.
type transportMetrics struct {
	refused      *prometheus.CounterVec
	idleClosed   prometheus.Counter
	acceptErrors prometheus.Counter
	udpRecycles  prometheus.Counter
	overload     prometheus.Counter
	readPauses   prometheus.Counter
	open         prometheus.GaugeFunc
}

// connLimits holds what every TCP and TLS listener shares: the caps, the
// idle timeout and the accepted connections.
type connLimits struct {
	idle      time.Duration
	maxTotal  int
	maxPerSrc int
	log       *slog.Logger
	every     *throttle.Every
	m         transportMetrics
	probe     lagProbe
	// registered reports whether a phone is registered from the
	// connection (transport TCP or TLS, source ip:port): its connection is
	// where calls to it go, so idleness does not close it.
	registered func(transport, source string) bool

	mu     sync.Mutex
	total  int
	perSrc map[netip.Addr]int
	conns  map[string]*tcpConn // by remote address, as sipgo names a message's source
}

func newConnLimits(idle time.Duration, maxTotal, maxPerSrc int, log *slog.Logger) *connLimits {
	l := &connLimits{idle: idle, maxTotal: maxTotal, maxPerSrc: maxPerSrc, log: log, every: throttle.NewEvery(logInterval),
		perSrc: map[netip.Addr]int{}, conns: map[string]*tcpConn{}}
	l.m = transportMetrics{
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "callbackd_sip_tcp_refused_total", Help: "TCP/TLS connections closed as soon as accepted, by cap reached (total, per_source).",
		}, []string{"cap"}),
		idleClosed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "callbackd_sip_tcp_idle_closed_total", Help: "TCP/TLS connections closed for completing no SIP message within sip.tcp_idle_timeout.",
		}),
		acceptErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "callbackd_sip_accept_errors_total", Help: "Failed accepts on the SIP TCP/TLS listeners (retried), e.g. when file descriptors run out.",
		}),
		udpRecycles: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "callbackd_sip_udp_source_resets_total", Help: "Times the SIP UDP transport forgot the source addresses it remembered (more than a bound).",
		}),
		overload: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "callbackd_sip_overload_total", Help: "SIP requests answered 503 at once because sip.max_transactions transactions were alive.",
		}),
		readPauses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "callbackd_sip_read_pauses_total", Help: "Times SIP reading paused because the server was behind (a goroutine waited over 100 ms to run).",
		}),
		open: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "callbackd_sip_tcp_connections", Help: "TCP/TLS connections accepted and open.",
		}, func() float64 { return float64(l.Open()) }),
	}
	return l
}

func (l *connLimits) collectors() []prometheus.Collector {
	return []prometheus.Collector{l.m.refused, l.m.idleClosed, l.m.acceptErrors, l.m.udpRecycles, l.m.overload, l.m.readPauses, l.m.open}
}

// Open returns the number of accepted connections open.
func (l *connLimits) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

// admit wraps an accepted connection, or returns the cap it would break.
func (l *connLimits) admit(c net.Conn, transport string) (*tcpConn, string) {
	src := remoteIP(c)
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.total >= l.maxTotal:
		return nil, "total"
	case l.perSrc[src] >= l.maxPerSrc:
		return nil, "per_source"
	}
	l.total++
	l.perSrc[src]++
	tc := &tcpConn{Conn: c, lim: l, src: src, key: c.RemoteAddr().String(), transport: transport}
	tc.last.Store(time.Now().UnixNano())
	l.conns[tc.key] = tc
	return tc, ""
}

func (l *connLimits) release(c *tcpConn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.perSrc[c.src]--; l.perSrc[c.src] <= 0 {
		delete(l.perSrc, c.src)
	}
	if l.conns[c.key] == c {
		delete(l.conns, c.key)
	}
}

// completed notes that a whole message arrived from source (sipgo's
// transport calls its handlers on the connection's reading goroutine,
// between two Reads).
func (l *connLimits) completed(source string) {
	l.mu.Lock()
	c := l.conns[source]
	l.mu.Unlock()
	if c != nil {
		c.last.Store(time.Now().UnixNano())
		c.partial.Store(false)
	}
}

func (l *connLimits) warn(key, msg string, args ...any) {
	if ok, n := l.every.OK(key); ok {
		if n > 0 {
			args = append(args, "more_since_last_log", n)
		}
		l.log.Warn(msg, args...)
	}
}

func remoteIP(c net.Conn) netip.Addr {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap()
	}
	ap, _ := netip.ParseAddrPort(c.RemoteAddr().String())
	return ap.Addr()
}

// tcpListener is a TCP listener for sipgo whose Accept does not fail
// while the listener is open (sipgo's Serve returns on the first error).
type tcpListener struct {
	net.Listener
	transport string // TCP or TLS, as a registration names it
	lim       *connLimits
	done      chan struct{}
	closeOnce sync.Once
}

func newTCPListener(l net.Listener, transport string, lim *connLimits) *tcpListener {
	return &tcpListener{Listener: l, transport: transport, lim: lim, done: make(chan struct{})}
}

func (l *tcpListener) Accept() (net.Conn, error) {
	var wait time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			select {
			case <-l.done:
				return nil, net.ErrClosed
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return nil, err
			}
			// EMFILE/ENFILE (descriptors exhausted), ECONNABORTED,
			// ENOBUFS...: the listener is fine, the moment is not.
			wait = min(max(2*wait, acceptBackoffLo), acceptBackoffHi)
			l.lim.m.acceptErrors.Inc()
			l.lim.warn("accept "+l.Addr().String(), "SIP accept failing, retrying", "listener", l.Addr().String(), "error", err.Error(), "retry_in", wait.String())
			select {
			case <-l.done:
				return nil, net.ErrClosed
			case <-time.After(wait):
			}
			continue
		}
		wait = 0
		tc, full := l.lim.admit(c, l.transport)
		if tc == nil {
			c.Close()
			l.lim.m.refused.WithLabelValues(full).Inc()
			src := remoteIP(c).String()
			key := "refused " + full
			if full == "per_source" {
				key += " " + src
			}
			l.lim.warn(key, "SIP TCP connection refused: limit reached", "source", src, "cap", full,
				"tcp_max_connections", l.lim.maxTotal, "tcp_max_per_source", l.lim.maxPerSrc)
			continue
		}
		return tc, nil
	}
}

func (l *tcpListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// tcpConn is an accepted connection with a deadline: the idle timeout
// counted from the last complete message (or CRLF keep-alive between
// messages, RFC 5626 3.5.1). A message trickled in byte by byte does not
// move it. A connection a phone registered from stays while registered.
type tcpConn struct {
	net.Conn
	lim       *connLimits
	src       netip.Addr
	key       string
	transport string
	last      atomic.Int64 // unix nanoseconds of the last complete message
	partial   atomic.Bool  // bytes of a message arrived since
	closeOnce sync.Once
}

func (c *tcpConn) Read(b []byte) (int, error) {
	c.lim.waitNotBehind(func() bool { return false }) // TCP: the peer waits (flow control)
	var n int
	var err error
	for {
		deadline := time.Unix(0, c.last.Load()).Add(c.lim.idle)
		if err := c.Conn.SetReadDeadline(deadline); err != nil {
			return 0, err
		}
		n, err = c.Conn.Read(b)
		if !errors.Is(err, os.ErrDeadlineExceeded) || c.partial.Load() ||
			c.lim.registered == nil || !c.lim.registered(c.transport, c.key) {
			break
		}
		c.last.Store(time.Now().UnixNano()) // idle but registered: calls to the phone come this way
	}
	if n > 0 {
		if len(bytes.Trim(b[:n], "\r\n")) > 0 {
			c.partial.Store(true)
		} else if !c.partial.Load() {
			c.last.Store(time.Now().UnixNano()) // a keep-alive
		}
	}
	switch {
	case err == nil:
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.lim.m.idleClosed.Inc()
		c.lim.log.Debug("SIP TCP connection idle, closed", "source", c.key, "tcp_idle_timeout", c.lim.idle.String(), "partial_message", c.partial.Load())
		return 0, io.EOF // the end of the connection, not an error of the server's
	case errors.Is(err, io.EOF):
		// A peer may send a request and close at once. sipgo forgets the
		// connection when the read ends, and its transaction, looking it up
		// a moment later, would connect to the Via host instead (RFC 3261
		// 18.2.2 wants the same connection). Wait a moment for it: only a
		// moment, as the closed connection stays in sipgo's pool meanwhile,
		// where a request to the peer's address would take it.
		if since := time.Since(time.Unix(0, c.last.Load())); since < eofGrace {
			time.Sleep(eofGrace - since)
		}
	}
	return n, err
}

func (c *tcpConn) Close() error {
	c.closeOnce.Do(func() { c.lim.release(c) })
	return c.Conn.Close()
}

// errForget ends sipgo's UDP read loop so that it starts again with its
// source addresses forgotten (see udpConn).
var errForget = errors.New("forget UDP sources")

// udpConn is a UDP listening socket for sipgo. sipgo's UDP transport keeps
// every source address it reads from in its connection pool and in its
// read loop, until the loop ends: spoofed sources are free, so this grows
// without bound. When more than udpSourcesMax are held, ReadFrom ends the
// loop (errForget, which makes sipgo drop them); serveListener starts it again and
// the datagram read is handed out first.
//
// The loop's end drops every source from the pool, the socket's own address
// too, while requests just read are on their way to their transactions,
// which look their source up there (and, not finding it, sipgo would open
// a new socket to answer from). So before ending the loop the recent
// sources and the socket's address are put in the pool under a stand-in
// for the listener (keeper: the same socket), which the loop's end leaves
// alone; the stand-ins of the time before are removed then.
type udpConn struct {
	net.PacketConn
	pool     *sip.ConnectionPool // sipgo's UDP pool (set before serving)
	max      int                 // sources the pool may hold (udpSourcesMax)
	keep     int                 // recent sources kept across a restart (udpRecent)
	last     string
	fresh    int      // source changes since the loop started
	recent   []string // the last keep distinct sources (a ring)
	next     int
	kept     []string // sources under keeper since the last restart
	keeper   *sip.UDPConnection
	held     []byte
	heldAt   net.Addr
	lim      *connLimits // for waitNotBehind (set before serving)
	forget   bool        // the loop ended on errForget
	restarts int         // loops ended on errForget (for tests)
	err      error       // the last read error, when the loop ended on one
	closed   atomic.Bool
}

// udpRecent is how many recent sources survive a restart: more than a
// flood can read in the moment a transaction takes to begin.
const udpRecent = 4096

func newUDPConn(pc net.PacketConn) *udpConn {
	u := &udpConn{PacketConn: pc, max: udpSourcesMax, keep: udpRecent}
	u.keeper = &sip.UDPConnection{PacketConn: u, PacketAddr: pc.LocalAddr().String(), Listener: true}
	return u
}

// keepRecent hands the recent sources and the socket's address to keeper,
// and takes back those handed over last time.
func (u *udpConn) keepRecent() {
	for _, a := range u.kept {
		if u.pool.Get(a) == sip.Connection(u.keeper) {
			u.pool.Delete(a)
		}
	}
	u.kept = append(u.kept[:0], u.recent...)
	for _, a := range u.kept {
		u.pool.Add(a, u.keeper)
	}
	u.pool.Add(u.keeper.PacketAddr, u.keeper)
}

func (u *udpConn) ReadFrom(b []byte) (int, net.Addr, error) {
	if u.held != nil {
		n := copy(b, u.held)
		addr := u.heldAt
		u.held, u.heldAt = nil, nil
		return n, addr, nil
	}
	if u.lim != nil {
		u.lim.waitNotBehind(u.closed.Load)
	}
	n, addr, err := u.PacketConn.ReadFrom(b)
	if err != nil {
		if !errors.Is(err, net.ErrClosed) {
			u.err = err
		}
		return n, addr, err
	}
	if s := addr.String(); s != u.last {
		u.last = s
		u.fresh++
		if len(u.recent) < u.keep {
			u.recent = append(u.recent, s)
		} else {
			u.recent[u.next] = s
			u.next = (u.next + 1) % u.keep
		}
		if u.fresh > u.max && u.pool != nil && u.pool.Size() > u.max+u.keep {
			u.held, u.heldAt = bytes.Clone(b[:n]), addr
			u.forget = true
			u.keepRecent()
			return 0, nil, errForget
		}
	}
	return n, addr, nil
}

// restart reports whether the loop ended to forget sources, and readies
// the socket to be served again.
func (u *udpConn) restart() bool {
	if !u.forget || u.closed.Load() {
		return false
	}
	u.forget, u.fresh, u.last = false, 0, ""
	u.restarts++
	return true
}

func (u *udpConn) Close() error {
	u.closed.Store(true)
	return u.PacketConn.Close()
}

// noDNS is the resolver of the SIP stack: callbackd sends to addresses
// (where requests came from, trunks configured by IP), so a name it would
// look up can only come from a message, such as a Via host; resolving it
// would let anyone make the server query DNS (an empty Via host made an SRV
// lookup). Names fail at once.
var noDNS = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
	return nil, &net.DNSError{Err: "SIP does not resolve names", Name: address, IsNotFound: true}
}}

// fdLimit returns the soft limit on open files, 0 if unknown.
func fdLimit() int {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil || r.Cur > 1<<30 {
		return 0
	}
	return int(r.Cur)
}

// tcpCap returns the total cap to apply: the configured one, lowered to
// leave a quarter of the descriptors (at least 64) to everything else
// (UDP and RTP sockets, the store, HTTP, outgoing connections).
func tcpCap(configured, limit int) int {
	if limit <= 0 {
		return configured
	}
	spare := max(limit/4, 64)
	return max(min(configured, limit-spare), 1)
}
