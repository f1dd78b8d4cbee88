// Package sipserver assembles the SIP side of callbackd: listeners on UDP and
// TCP (sipgo transport and transaction layers), the registrar, the B2BUA,
// line state and the store, and routes each request to the part that owns
// it. It also gives every malformed or unsupported request the response RFC
// 3261 asks for, and never lets a bad message take the process down.
package sipserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/callbackd/callbackd/internal/auth"
	"github.com/callbackd/callbackd/internal/b2bua"
	"github.com/callbackd/callbackd/internal/callback"
	"github.com/callbackd/callbackd/internal/config"
	"github.com/callbackd/callbackd/internal/directory"
	"github.com/callbackd/callbackd/internal/events"
	"github.com/callbackd/callbackd/internal/linestate"
	"github.com/callbackd/callbackd/internal/media"
	"github.com/callbackd/callbackd/internal/metrics"
	"github.com/callbackd/callbackd/internal/registrar"
	"github.com/callbackd/callbackd/internal/sipmsg"
	"github.com/callbackd/callbackd/internal/store"
	"github.com/callbackd/callbackd/internal/throttle"
)

// Server is the running SIP service.
type Server struct {
	Config    *config.Config
	Log       *slog.Logger
	Store     store.Store
	Directory *directory.Directory
	Lines     *linestate.Tracker
	Registrar *registrar.Registrar
	B2BUA     *b2bua.B2BUA
	Callback  *callback.Service
	Metrics   *metrics.Metrics
	Hub       *events.Hub // live events (the API's server-sent events)
	// Guard throttles failed authentications (B7), shared by SIP digest,
	// HTTP Basic and the mobility PIN.
	Guard *throttle.Guard

	liveMu     sync.Mutex      // serialises changes while running (live.go)
	fileParams config.Callback // the configuration file's parameters

	ua        *sipgo.UserAgent
	srv       *sipgo.Server
	listeners []listener
	handlers  map[sip.RequestMethod]sipgo.RequestHandler
	serving   chan struct{} // closed once SIP is served
	limits    *connLimits   // TCP/TLS caps and idle timeout (transport.go)
	txOpen    atomic.Int64  // server transactions alive (admit)
	maxTx     int64         // sip.max_transactions

	downMu sync.Mutex
	down   []string // listeners that stopped while serving, with why
}

type listener struct {
	transport string // UDP, TCP or TLS
	addr      string // host:port as configured
	udp       *udpConn
	tcp       net.Listener // TCP, or TLS over TCP, wrapped (transport.go)
}

// Listen parses a "transport:host:port" listen entry.
func parseListen(s string) (transport, addr string, err error) {
	tp, addr, ok := strings.Cut(s, ":")
	if !ok {
		return "", "", fmt.Errorf("bad listen address %q", s)
	}
	return strings.ToUpper(tp), addr, nil
}

// New binds the listeners and builds every part over the store st.
// Nothing is served until Serve.
func New(cfg *config.Config, st store.Store, log *slog.Logger) (*Server, error) {
	s := &Server{Config: cfg, Log: log, Store: st, serving: make(chan struct{}), Hub: events.NewHub(), fileParams: cfg.Callback,
		Guard: throttle.NewGuard(throttle.Default, log)}
	if err := s.overlay(context.Background(), cfg); err != nil {
		return nil, err
	}
	maxConns := tcpCap(cfg.SIP.TCPMaxConnections, fdLimit())
	if maxConns < cfg.SIP.TCPMaxConnections {
		log.Info("sip.tcp_max_connections lowered to stay below the open-files limit", "tcp_max_connections", maxConns, "configured", cfg.SIP.TCPMaxConnections, "open_files_limit", fdLimit())
	}
	s.limits = newConnLimits(time.Duration(cfg.SIP.TCPIdleTimeout)*time.Second, maxConns, min(cfg.SIP.TCPMaxPerSource, maxConns), log)
	s.maxTx = int64(cfg.SIP.MaxTransactions)
	var tlsConf *tls.Config
	local := map[string]b2bua.Local{}
	for _, entry := range cfg.SIP.Listen {
		tp, addr, err := parseListen(entry)
		if err != nil {
			s.closeListeners()
			return nil, err
		}
		l := listener{transport: tp, addr: addr}
		switch tp {
		case "UDP":
			var pc net.PacketConn
			if pc, err = net.ListenPacket("udp", addr); err == nil {
				l.udp = newUDPConn(pc)
			}
		case "TCP", "TLS":
			var ln net.Listener
			if ln, err = net.Listen("tcp", addr); err != nil {
				break
			}
			l.tcp = newTCPListener(ln, tp, s.limits)
			if tp == "TLS" {
				if tlsConf == nil {
					tlsConf, err = serverTLS(cfg.SIP)
				}
				if err != nil {
					ln.Close()
					break
				}
				l.tcp = tls.NewListener(l.tcp, tlsConf)
			}
		default:
			err = fmt.Errorf("unsupported transport %q", tp)
		}
		if err != nil {
			s.closeListeners()
			return nil, fmt.Errorf("sip listen %s: %w", entry, err)
		}
		s.listeners = append(s.listeners, l)
		if _, ok := local[tp]; !ok {
			host, port := l.localAddr()
			local[tp] = b2bua.Local{Host: host, Port: port}
		}
	}

	// The library's transports and transactions log through its default
	// logger: make that ours (same format and level).
	sipLog := slog.New(newSipgoLog(log.Handler())).With("component", "sip")
	sip.SetDefaultLogger(sipLog)
	ua, err := sipgo.NewUA(sipgo.WithUserAgent(cfg.SIP.UserAgent), sipgo.WithUserAgentHostname(cfg.SIP.Domain),
		sipgo.WithUserAgentDNSResolver(noDNS))
	if err != nil {
		s.closeListeners()
		return nil, err
	}
	s.ua = ua
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(sipLog))
	if err != nil {
		s.closeListeners()
		return nil, err
	}
	s.srv = srv
	tp := srv.TransportLayer()
	for _, l := range s.listeners {
		if l.udp != nil {
			l.udp.pool = tp.Pool("udp")
			l.udp.lim = s.limits
		}
	}
	// Runs on the reading goroutine after each whole message: the TCP/TLS
	// idle timeout counts from there.
	tp.OnMessage(func(m sip.Message) {
		if t := m.Transport(); t == "TCP" || t == "TLS" {
			s.limits.completed(m.Source())
		}
	})
	client, err := sipgo.NewClient(ua, sipgo.WithClientLogger(log))
	if err != nil {
		s.closeListeners()
		return nil, err
	}

	s.Directory = directory.New(cfg.Lines)
	s.Lines = linestate.New(log)
	for _, l := range cfg.Lines {
		s.Lines.SetLine(l.DN, l.BusyTrigger)
	}
	a := auth.New(cfg.SIP.Realm, cfg.SIP.DigestAlgorithms...)
	a.Guard = s.Guard // digest failures throttled (B7, docs/security.md)
	s.Registrar = registrar.New(cfg.SIP, s.Directory, a, st, s.Lines, log)
	s.limits.registered = s.Registrar.RegisteredFrom
	mediaIP, _ := netip.ParseAddr(cfg.Media.Addr(cfg.SIP))
	s.B2BUA = b2bua.New(b2bua.Config{
		Domain: cfg.SIP.Domain, NoAnswerTimeout: cfg.Calls.NoAnswerTimeout.Duration, UserAgent: cfg.SIP.UserAgent,
		MediaIP: mediaIP, RTPPortMin: cfg.Media.RTPPortMin, RTPPortMax: cfg.Media.RTPPortMax, RTPLatch: cfg.Media.RTPLatch,
		VoicemailPilot: cfg.Calls.VoicemailPilot, Trunks: cfg.Trunks,
		TrustRegisteredSource: cfg.SIP.TrustRegisteredSource,
		DialOut:               func(dn, number string) bool { return s.mayDialOut(dn, number) },
	}, client, s.Directory, s.Registrar, s.Lines, a, local, log)
	s.B2BUA.Store = st
	ph := phones{B2BUA: s.B2BUA}
	s.Callback = callback.New(cfg.Callback, st, s.Directory, s.Lines, &ph, log)
	s.Callback.VoicemailPilot = cfg.Calls.VoicemailPilot
	s.Callback.Profile = cfg.Profile
	s.Registrar.OnReset = s.Callback.DeviceReset
	s.Metrics = metrics.New(metrics.Sources{
		Registrations: s.Registrar.Count,
		ActiveCalls:   s.B2BUA.Calls,
		LineStates: func() map[string]int {
			n := map[string]int{}
			for _, l := range s.Lines.All() {
				n[string(l.State)]++
			}
			return n
		},
		OpenRequests:  func() int { open, _ := s.Callback.Counts(); return open },
		TimersPending: func() int { _, timers := s.Callback.Counts(); return timers },
		RequestStates: s.Callback.RequestStates,
	})
	ph.m = s.Metrics
	s.Guard.Observe(s.Metrics.AuthFailure, s.Metrics.AuthThrottled)
	s.Metrics.Register(s.limits.collectors()...)
	s.publish()
	sipTrace.s.Store(s)
	sip.SIPDebugTracer(&sipTrace)
	sip.SIPDebug = true // read by the transports; set once, before serving
	s.B2BUA.OnResult = func(r b2bua.Result) {
		s.Metrics.CallResult(string(r.Outcome))
		if s.impersonates(r) {
			return
		}
		s.Callback.CallResult(r)
	}
	s.B2BUA.IsFeature = func(dialed string) bool { return s.Callback.IsFeature(dialed) || isLineFeature(dialed) }
	s.B2BUA.OnFeature = func(caller, dialed string, from b2bua.Origin) b2bua.Feature {
		if s.Callback.IsFeature(dialed) {
			return s.Callback.Feature(caller, dialed)
		}
		return s.lineFeature(caller, dialed, from)
	}
	s.B2BUA.OfferCallBack = func(r b2bua.Result) (bool, bool) {
		s.Metrics.CallResult(string(r.Outcome))
		if s.impersonates(r) {
			return false, false
		}
		return s.Callback.Offered(r)
	}
	s.B2BUA.OfferKey = s.Callback.OfferKey
	s.B2BUA.RecallAnswered = s.Callback.RecallAnswered
	s.B2BUA.AlertSound = s.Callback.AlertSound
	s.B2BUA.OnMediaStats = func(st media.StreamStats) { s.Metrics.RTPStream(st.Packets, st.Late) }
	s.B2BUA.OnForeignRTP = s.Metrics.RTPForeign
	s.routes()
	s.warnDialOut()
	return s, nil
}

func (l listener) localAddr() (string, int) {
	var a net.Addr
	if l.udp != nil {
		a = l.udp.LocalAddr()
	} else {
		a = l.tcp.Addr()
	}
	host, port, _ := net.SplitHostPort(a.String())
	p, _ := strconv.Atoi(port)
	return host, p
}

// Addrs returns the bound listen addresses as "transport:host:port".
func (s *Server) Addrs() []string {
	var out []string
	for _, l := range s.listeners {
		h, p := l.localAddr()
		out = append(out, strings.ToLower(l.transport)+":"+net.JoinHostPort(h, strconv.Itoa(p)))
	}
	return out
}

// serverTLS loads the certificate of the tls: listeners (config validation
// loaded it once already; this is the copy served).
func serverTLS(c config.SIP) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("sip.tls_cert/tls_key: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

func (s *Server) closeListeners() {
	for _, l := range s.listeners {
		if l.udp != nil {
			l.udp.Close()
		}
		if l.tcp != nil {
			l.tcp.Close()
		}
	}
}

// Serve restores registrations, serves SIP, then restores the Call Back
// requests, and serves until ctx ends. The requests come back once SIP is
// served because restoring them may already notify callers (their B became
// free while the server was down); a feature code dialed meanwhile waits.
//
// Stopped at any moment, its start included, it returns nil: an error then
// is a restore seeing ctx end ("load requests: context canceled"), not a
// fault.
func (s *Server) Serve(ctx context.Context) error {
	err := s.serve(ctx)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func (s *Server) serve(ctx context.Context) error {
	if err := s.Registrar.Load(ctx); err != nil {
		return err
	}
	if _, err := s.B2BUA.Restore(ctx); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	// Every goroutine below ends with ctx or its listener: cancel and close
	// first, then wait. (Waiting before cancelling hung the server for good
	// once a listener had failed.)
	defer func() {
		cancel()
		s.closeListeners()
		s.ua.Close()
		wg.Wait()
	}()
	wg.Add(1)
	go func() { defer wg.Done(); s.Registrar.Run(ctx) }()
	for _, l := range s.listeners {
		wg.Add(1)
		go func(l listener) {
			defer wg.Done()
			err := s.serveListener(l)
			if ctx.Err() != nil { // closed by the deferred closeListeners
				return
			}
			// Not stopped by us: SIP on this listener is gone. Say so
			// (an alarm, and /healthz fails) and keep serving the others.
			s.listenerDown(l, err)
		}(l)
	}
	s.waitListening()
	for _, a := range s.Addrs() {
		s.Log.Info("SIP listening", "addr", a)
	}
	s.B2BUA.Audit()
	ready := make(chan error, 1)
	wg.Add(1)
	go func() { defer wg.Done(); s.Callback.Run(ctx, ready) }()
	select {
	case err := <-ready:
		if err != nil {
			return err
		}
		close(s.serving)
	case <-ctx.Done():
		return nil
	}
	<-ctx.Done()
	return nil
}

// serveListener serves one listener until it is closed or fails. sipgo's
// UDP loop also ends to forget the source addresses it holds (udpConn):
// it is started again at once.
func (s *Server) serveListener(l listener) error {
	switch {
	case l.udp != nil:
		for {
			s.srv.ServeUDP(l.udp) // returns when its read loop ends
			if !l.udp.restart() {
				break
			}
			s.limits.m.udpRecycles.Inc()
		}
		if l.udp.closed.Load() {
			return net.ErrClosed
		}
		if l.udp.err != nil {
			return l.udp.err
		}
		return errors.New("read loop ended")
	case l.transport == "TLS":
		return s.srv.ServeTLS(l.tcp)
	default:
		return s.srv.ServeTCP(l.tcp)
	}
}

func (s *Server) listenerDown(l listener, err error) {
	why := fmt.Sprintf("SIP %s listener %s stopped: %v", l.transport, l.addr, err)
	s.downMu.Lock()
	s.down = append(s.down, why)
	s.downMu.Unlock()
	s.Log.Error("SIP listener stopped: SIP is not served there", "transport", l.transport, "addr", l.addr, "error", fmt.Sprint(err))
}

// Healthy reports why SIP is not fully served, or nil: before the service
// is up (starting) and once a listener has stopped. /healthz says it.
func (s *Server) Healthy() error {
	select {
	case <-s.serving:
	default:
		return errors.New("SIP not served yet (starting)")
	}
	s.downMu.Lock()
	defer s.downMu.Unlock()
	if len(s.down) > 0 {
		return errors.New(strings.Join(s.down, "; "))
	}
	return nil
}

// waitListening waits (at most a second) until sipgo has taken each UDP
// socket into its transport: before that, a request the server sends from
// the listening port would try to bind it again and fail.
func (s *Server) waitListening() {
	tp := s.srv.TransportLayer()
	for _, l := range s.listeners {
		if l.udp == nil {
			continue
		}
		addr := l.udp.LocalAddr().String()
		for i := 0; i < 100; i++ {
			if c, err := tp.GetConnection("udp", addr); err == nil && c != nil {
				c.TryClose() // GetConnection took a reference
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// WaitServing returns once SIP is served and the stored Call Back requests
// are restored, or ctx ends.
func (s *Server) WaitServing(ctx context.Context) {
	select {
	case <-s.serving:
	case <-ctx.Done():
	}
}

// methods we know but do not serve out of a dialog (405 with Allow, RFC
// 3261 8.2.1); any other unknown method gets 501 (21.5.2). MESSAGE has its
// own handler (message).
var notAllowed = []sip.RequestMethod{sip.SUBSCRIBE, sip.PUBLISH, sip.REFER, sip.PRACK}

// allowed is what the server accepts (OPTIONS, 501): MESSAGE only to the
// service identity (message). A 405 for a line's URI lists lineAllowed,
// what that address accepts (RFC 3261 21.4.6).
const (
	allowed     = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, INFO, UPDATE, NOTIFY, MESSAGE"
	lineAllowed = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, INFO, UPDATE, NOTIFY"
)

func (s *Server) routes() {
	h := map[sip.RequestMethod]sipgo.RequestHandler{
		sip.REGISTER: s.Registrar.HandleRegister,
		sip.INVITE:   s.B2BUA.HandleInvite,
		sip.ACK:      s.B2BUA.HandleAck,
		sip.CANCEL: func(req *sip.Request, tx sip.ServerTransaction) {
			// A CANCEL that matched an INVITE transaction never gets here.
			respond(tx, req, 481, "Call/Transaction Does Not Exist", s.Log) // 9.2
		},
	}
	inDialog := func(req *sip.Request, tx sip.ServerTransaction) {
		if !req.To().Params.Has("tag") {
			if req.Method == sip.OPTIONS {
				s.options(req, tx)
				return
			}
			respond(tx, req, 481, "Call/Transaction Does Not Exist", s.Log)
			return
		}
		s.B2BUA.HandleInDialog(req, tx)
	}
	for _, m := range []sip.RequestMethod{sip.BYE, sip.INFO, sip.UPDATE, sip.NOTIFY, sip.OPTIONS} {
		h[m] = inDialog
	}
	for _, m := range notAllowed {
		h[m] = func(req *sip.Request, tx sip.ServerTransaction) {
			respond(tx, req, 405, "Method Not Allowed", s.Log, sip.NewHeader("Allow", lineAllowed))
		}
	}
	h[sip.MESSAGE] = s.message
	s.handlers = h
	for m := range h {
		s.srv.OnRequest(m, s.guard(h[m]))
	}
	s.srv.OnNoRoute(s.guard(s.unknownMethod))
}

// message answers a MESSAGE. In a dialog it belongs to the call. Out of
// one, addressed to the identity the screens come from (sip:callback@...):
// a phone's delivery report (RFC 5438 IMDN) or its user's reply to a
// screen. It is accepted (200, RFC 3428 section 7) and ignored: it acts
// for nothing, so it needs no credentials (B7), stores nothing and costs
// one response in a transaction counted by admit; only its size is
// logged, at debug. To a line: 405, the server relays no instant
// messages between phones; to anything else: 404.
func (s *Server) message(req *sip.Request, tx sip.ServerTransaction) {
	if req.To().Params.Has("tag") {
		s.B2BUA.HandleInDialog(req, tx)
		return
	}
	user := req.Recipient.User
	switch _, isLine := s.Directory.Line(user); {
	case user == b2bua.ServiceUser:
		ct := ""
		if h := req.ContentType(); h != nil {
			ct = h.Value()
		}
		s.Log.Debug("MESSAGE to the service identity ignored", "from", req.From().Address.User, "source", req.Source(),
			"content_type", truncate(ct, 64), "bytes", len(req.Body()))
		respond(tx, req, 200, "OK", s.Log)
	case isLine:
		respond(tx, req, 405, "Method Not Allowed", s.Log, sip.NewHeader("Allow", lineAllowed))
	default:
		respond(tx, req, 404, "Not Found", s.Log)
	}
}

// truncate bounds a string taken from a request before it is logged.
func truncate(v string, n int) string {
	if len(v) > n {
		return v[:n]
	}
	return v
}

func (s *Server) unknownMethod(req *sip.Request, tx sip.ServerTransaction) {
	respond(tx, req, 501, "Not Implemented", s.Log, sip.NewHeader("Allow", allowed))
}

// Handle dispatches one request as the transport would (used by the fuzz
// test to drive the handlers without a network).
func (s *Server) Handle(req *sip.Request, tx sip.ServerTransaction) {
	h, ok := s.handlers[req.Method]
	if !ok {
		h = s.unknownMethod
	}
	s.guard(h)(req, tx)
}

func (s *Server) options(req *sip.Request, tx sip.ServerTransaction) {
	respond(tx, req, 200, "OK", s.Log,
		sip.NewHeader("Allow", allowed),
		sip.NewHeader("Accept", "application/sdp"),
		sip.NewHeader("Supported", ""),
	)
}

// guard checks what every handler relies on (RFC 3261 8.1.1: To, From,
// CSeq, Call-ID, Max-Forwards, Via; the CSeq method matching the request,
// 8.2.? / 16.3) and turns a panic into a 500 so one bad message cannot stop
// the server.
func (s *Server) guard(h sipgo.RequestHandler) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		defer func() {
			if p := recover(); p != nil {
				s.Log.Error("panic handling request", "method", req.Method, "source", req.Source(), "panic", p)
				if req.Method != sip.ACK {
					respond(tx, req, 500, "Server Internal Error", s.Log)
				}
			}
		}()
		if tx != nil && !s.admit(req, tx) {
			return
		}
		if req.SipVersion != "SIP/2.0" {
			s.Log.Info("unsupported SIP version", "version", req.SipVersion, "source", req.Source())
			if req.Method != sip.ACK {
				respond(tx, req, 505, "Version Not Supported", s.Log) // 8.2.? / 21.5.7
			}
			return
		}
		if c := strayConnection(req, tx); c != nil {
			// RFC 3261 18.2.2: a response over TCP/TLS goes on the
			// request's connection. That one closed before sipgo took it
			// for the transaction, so sipgo connected to the Via host
			// instead: send nothing there.
			s.Log.Debug("request's connection closed before its transaction began; not answered", "method", req.Method, "source", req.Source())
			c.Close()
			return
		}
		if why := malformed(req); why != "" {
			s.Log.Info("malformed request", "method", req.Method, "source", req.Source(), "problem", why)
			if req.Method != sip.ACK { // an ACK gets no response (17.2.3)
				respond(tx, req, 400, "Bad Request ("+why+")", s.Log)
			}
			return
		}
		h(req, tx)
	}
}

// admit counts the server transaction of req until it ends, or, when
// too many are alive (a flood: each lives up to 32 s after its answer, RFC
// 3261 17.2.1/17.2.2), answers 503 with Retry-After (21.5.4) and ends it
// at once, keeping nothing. The last quarter of sip.max_transactions is
// kept for requests with credentials or in a dialog, so that phones can
// still call and hang up while anonymous requests flood in.
func (s *Server) admit(req *sip.Request, tx sip.ServerTransaction) bool {
	limit := s.maxTx - s.maxTx/4
	if to := req.To(); to != nil && to.Params.Has("tag") ||
		req.GetHeader("Authorization") != nil || req.GetHeader("Proxy-Authorization") != nil {
		limit = s.maxTx
	}
	if s.txOpen.Load() >= limit && req.Method != sip.ACK {
		s.limits.m.overload.Inc()
		s.limits.warn("overload", "SIP overloaded: new requests answered 503 at once", "max_transactions", s.maxTx,
			"method", req.Method, "source", req.Source())
		respond(tx, req, 503, "Service Unavailable", s.Log, sip.NewHeader("Retry-After", "5"))
		tx.Terminate()
		return false
	}
	s.txOpen.Add(1)
	if !tx.OnTerminate(func(string, error) { s.txOpen.Add(-1) }) {
		s.txOpen.Add(-1) // ended already
	}
	return true
}

// strayConnection returns the transaction's connection when the request
// came over TCP/TLS and that is not the connection it came on.
func strayConnection(req *sip.Request, tx sip.ServerTransaction) sip.Connection {
	if !sip.IsReliable(strings.ToLower(req.Transport())) {
		return nil
	}
	t, ok := tx.(interface{ Connection() sip.Connection })
	if !ok || t.Connection() == nil {
		return nil
	}
	c, ok := t.Connection().(interface{ RemoteAddr() net.Addr })
	if !ok || c.RemoteAddr().String() == req.Source() {
		return nil
	}
	return t.Connection()
}

func malformed(req *sip.Request) string {
	switch {
	case req.From() == nil:
		return "missing From"
	case req.To() == nil:
		return "missing To"
	case req.CallID() == nil || req.CallID().Value() == "":
		return "missing Call-ID"
	case req.CSeq() == nil:
		return "missing CSeq"
	case !strings.EqualFold(string(req.CSeq().MethodName), string(req.Method)):
		// EqualFold: the parser upper-cases the request line's method only.
		return "CSeq method does not match"
	case len(req.GetHeaders("Content-Length")) > 1:
		return "more than one Content-Length" // RFC 4475 3.1.2.11
	case req.Via() == nil:
		return "missing Via"
	}
	return ""
}

// respond answers a request (sipmsg.Respond: written once, for the B2BUA too).
var respond = sipmsg.Respond
