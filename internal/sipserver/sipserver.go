// Package sipserver is callbackd's SIP front: the listeners on UDP, TCP
// and TLS (transport.go: caps, idle timeouts, the UDP loop), sipgo's
// transport and transaction layers, and the routing of each request to
// the handler that owns it (Handlers, given by internal/app: registrar,
// B2BUA). It gives every malformed or unsupported request the response
// RFC 3261 asks for, and never lets a bad message take the process down.
// It builds none of the parts it routes to.
package sipserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/callbackd/callbackd/internal/config"
	"github.com/callbackd/callbackd/internal/sipmsg"
)

// Server is the SIP service: listeners, sipgo's layers and the routes.
type Server struct {
	Log *slog.Logger

	ua        *sipgo.UserAgent
	srv       *sipgo.Server
	client    *sipgo.Client
	listeners []listener
	local     map[string]sipmsg.Local // first listener of each transport
	h         Handlers                // from Route
	allow     string                  // Allow of the server (OPTIONS, 501), from routes
	lineAllow string                  // Allow of a line's URI (405), from routes
	handlers  map[sip.RequestMethod]sipgo.RequestHandler
	limits    *connLimits   // TCP/TLS caps and idle timeout (transport.go)
	txOpen    atomic.Int64  // server transactions alive (admit)
	maxTx     int64         // sip.max_transactions
	finished  *finished     // final responses of ended transactions (finished.go)
	overload  *overload     // refusing new work while behind (overload.go)
	stop      chan struct{} // closed by Close: ends overload.run

	wg      sync.WaitGroup // the listeners' goroutines (Start)
	closing atomic.Bool
	close   sync.Once

	downMu sync.Mutex
	down   []string // listeners that stopped while serving, with why
}

// Handlers are the parts that answer what the server routes to them
// (built by internal/app). Each takes the request and its server
// transaction as sipgo hands them over. A method served later (PUBLISH:
// RFC 6910) gets a field here and its line in routes.
type Handlers struct {
	Register sipgo.RequestHandler // REGISTER: the registrar
	Invite   sipgo.RequestHandler // INVITE: the B2BUA (new calls and re-INVITEs)
	Ack      sipgo.RequestHandler // ACK: the B2BUA
	// InDialog takes BYE, INFO, UPDATE, NOTIFY, OPTIONS and MESSAGE with a
	// To tag (RFC 3261 12.2.2): the B2BUA's dialogs.
	InDialog sipgo.RequestHandler
	// Publish, when set, takes PUBLISH (RFC 3903): the call completion
	// monitor's suspend and resume (RFC 6910 s9). Unset: 405.
	Publish sipgo.RequestHandler
	// IsLine reports whether user is a line's DN (a MESSAGE to a line is
	// refused with 405, to anything else 404).
	IsLine func(user string) bool
	// RegisteredFrom reports whether a phone is registered from the
	// source (transport.go: its idle TCP/TLS connection stays).
	RegisteredFrom func(transport, source string) bool
	// Counted is told of every SIP message read or written: "in" or
	// "out", and its method or status code (the metrics).
	Counted func(dir, kind string)
	// StrayResponse takes a response no client transaction matches:
	// a 2xx retransmitted after the INVITE's transaction ended at the
	// first one (acceptedAtOnce), to be acknowledged again (RFC 3261
	// 13.2.2.4). Nil: dropped.
	StrayResponse func(res *sip.Response)
	// Refreshes reports whether a REGISTER refreshes a binding the
	// registrar holds (same line, same Call-ID): overload control lets
	// it through (overload.go, newWork).
	Refreshes func(req *sip.Request) bool
	// Serving reports whether this instance serves now; nil: always. A
	// cluster's standby (internal/cluster), or an active whose lease ran
	// out, answers every request 503 (RFC 3261 21.5.4), OPTIONS too, so
	// that a dispatcher probing with OPTIONS sends nothing its way.
	Serving func() bool
	// Events takes every SUBSCRIBE (new and in a dialog) and the NOTIFYs
	// IsSubscription claims (RFC 6665: internal/subscription); nil:
	// SUBSCRIBE is answered 405.
	Events sipgo.RequestHandler
	// IsSubscription reports whether an in-dialog NOTIFY belongs to a
	// subscription we made (the others go to InDialog: the B2BUA's).
	IsSubscription func(req *sip.Request) bool
}

type listener struct {
	transport string // UDP, TCP or TLS
	addr      string // host:port as configured
	udp       *udpConn
	tcp       net.Listener // TCP, or TLS over TCP, wrapped (transport.go)
}

// New binds the listeners of c and builds sipgo's user agent, server and
// client. Nothing is routed until Route, nor served until Start.
func New(c config.SIP, log *slog.Logger) (*Server, error) {
	s := &Server{Log: log, local: map[string]sipmsg.Local{}}
	maxConns := tcpCap(c.TCPMaxConnections, fdLimit())
	if maxConns < c.TCPMaxConnections {
		log.Info("sip.tcp_max_connections lowered to stay below the open-files limit", "tcp_max_connections", maxConns, "configured", c.TCPMaxConnections, "open_files_limit", fdLimit())
	}
	s.limits = newConnLimits(time.Duration(c.TCPIdleTimeout)*time.Second, maxConns, min(c.TCPMaxPerSource, maxConns), log)
	s.maxTx = int64(c.MaxTransactions)
	s.finished = newFinished(c.MaxTransactions)
	acceptedAtOnce()
	s.overload, s.stop = newOverload(c.OverloadDelay.Duration), make(chan struct{})
	if s.overload.force != "" {
		log.Warn("test knob set: SIP overload forced while its file exists", "env", overloadForceEnv, "file", s.overload.force)
	}
	var tlsConf *tls.Config
	for _, entry := range c.Listen {
		a, err := config.ParseAddress(entry)
		if err != nil {
			s.closeListeners()
			return nil, fmt.Errorf("bad listen address %q: %w", entry, err)
		}
		tp, addr := a.Via(), a.HostPort()
		l := listener{transport: tp, addr: addr}
		switch tp {
		case "UDP":
			var pc net.PacketConn
			if pc, err = net.ListenPacket("udp", addr); err == nil {
				setReadBuffer(pc, s.Log)
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
					tlsConf, err = serverTLS(c)
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
		if _, ok := s.local[tp]; !ok {
			host, port := l.localAddr()
			s.local[tp] = sipmsg.Local{Host: host, Port: port}
		}
	}

	// The library's transports and transactions log through its default
	// logger: make that ours (same format and level).
	sipLog := slog.New(newSipgoLog(log.Handler())).With("component", "sip")
	sip.SetDefaultLogger(sipLog)
	ua, err := sipgo.NewUA(sipgo.WithUserAgent(c.UserAgent), sipgo.WithUserAgentHostname(c.Domain),
		sipgo.WithUserAgentDNSResolver(noDNS),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerUnhandledResponseHandler(s.strayResponse)))
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
	if s.client, err = sipgo.NewClient(ua, sipgo.WithClientLogger(log)); err != nil {
		s.closeListeners()
		return nil, err
	}
	return s, nil
}

// strayResponse passes a response no client transaction matches to the
// handler that takes them (set by Route, before serving).
func (s *Server) strayResponse(res *sip.Response) {
	if s.h.StrayResponse != nil {
		s.h.StrayResponse(res)
	}
}

// Client is the SIP client the server's own requests go out through (the
// B2BUA's), sharing the listeners' transports.
func (s *Server) Client() *sipgo.Client { return s.client }

// Local is the bound address of the first listener of each transport
// ("UDP", "TCP", "TLS"): what the server's own messages say it is.
func (s *Server) Local() map[string]sipmsg.Local { return s.local }

// Collectors are the transport's metrics (connections, UDP loop restarts,
// transactions cap, event-loop lag), overload control's and the finished
// transactions'.
func (s *Server) Collectors() []prometheus.Collector {
	return append(append(s.limits.collectors(), s.overload.collectors()...), s.finished.collectors()...)
}

// Route takes the handlers and routes requests to them; the SIP trace
// hook is set here, once, before serving.
func (s *Server) Route(h Handlers) {
	s.h = h
	s.limits.registered = h.RegisteredFrom
	sipTrace.s.Store(s)
	sip.SIPDebugTracer(&sipTrace)
	sip.SIPDebug = true // read by the transports; set once, before serving
	s.routes()
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

// Start serves every listener until ctx ends or Close, and returns once
// sipgo serves them all, having logged "SIP listening" for each address.
// A listener that stops on its own is logged and reported by Healthy; the
// others keep serving.
func (s *Server) Start(ctx context.Context) {
	for _, l := range s.listeners {
		s.wg.Add(1)
		go func(l listener) {
			defer s.wg.Done()
			err := s.serveListener(l)
			if ctx.Err() != nil || s.closing.Load() { // closed by Close
				return
			}
			// Not stopped by us: SIP on this listener is gone. Say so
			// (an alarm, and /healthz fails) and keep serving the others.
			s.listenerDown(l, err)
		}(l)
	}
	s.wg.Add(1)
	go func() { defer s.wg.Done(); s.overload.run(ctx, s.stop, s.limits) }()
	s.waitListening()
	for _, a := range s.Addrs() {
		s.Log.Info("SIP listening", "addr", a)
	}
}

// Close closes the listeners and the user agent, and waits until the
// listeners' goroutines have ended. Cancel Start's ctx first: every
// goroutine ends with it or its listener (waiting before cancelling hung
// the server for good once a listener had failed). A second Close does
// nothing.
func (s *Server) Close() {
	s.close.Do(func() {
		s.closing.Store(true)
		close(s.stop)
		s.closeListeners()
		s.ua.Close()
		s.wg.Wait()
	})
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

// Healthy reports the listeners that stopped while serving, or nil.
func (s *Server) Healthy() error {
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

// notAllowed are the methods we know but do not serve out of a dialog:
// 405 with Allow (RFC 3261 8.2.1); any other unknown method gets 501
// (8.2.1, 21.5.2). MESSAGE has its own handler (message). A method served
// later (PUBLISH for call completion between servers, RFC 6910) leaves
// this list and gets its handler in Handlers and routes; SUBSCRIBE leaves
// it when Handlers.Events is set.
var notAllowed = []sip.RequestMethod{sip.SUBSCRIBE, sip.PUBLISH, sip.REFER, sip.PRACK}

// allowed is what the server accepts (OPTIONS, 501): MESSAGE only to the
// service identity (message). A 405 for a line's URI lists lineAllowed,
// what that address accepts (RFC 3261 21.4.6).
const (
	allowed     = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, INFO, UPDATE, NOTIFY, MESSAGE"
	lineAllowed = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, INFO, UPDATE, NOTIFY"
)

// routes maps each method to its handler: the one place a method is
// plugged in.
func (s *Server) routes() {
	h := map[sip.RequestMethod]sipgo.RequestHandler{
		sip.REGISTER: s.h.Register,
		sip.INVITE:   s.h.Invite,
		sip.ACK:      s.h.Ack,
		sip.CANCEL: func(req *sip.Request, tx sip.ServerTransaction) {
			// A CANCEL that matched an INVITE transaction never gets here.
			respond(tx, req, 481, "Call/Transaction Does Not Exist", s.Log) // 9.2
		},
		sip.MESSAGE: s.message,
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
		if req.Method == sip.NOTIFY && s.h.IsSubscription != nil && s.h.IsSubscription(req) {
			s.h.Events(req, tx)
			return
		}
		s.h.InDialog(req, tx)
	}
	for _, m := range []sip.RequestMethod{sip.BYE, sip.INFO, sip.UPDATE, sip.NOTIFY, sip.OPTIONS} {
		h[m] = inDialog
	}
	s.allow, s.lineAllow = allowed, lineAllowed
	for _, m := range notAllowed {
		h[m] = func(req *sip.Request, tx sip.ServerTransaction) {
			respond(tx, req, 405, "Method Not Allowed", s.Log, sip.NewHeader("Allow", s.lineAllow))
		}
	}
	if s.h.Events != nil { // RFC 6665: SUBSCRIBE leaves notAllowed
		h[sip.SUBSCRIBE] = s.h.Events
		s.allow, s.lineAllow = allowed+", SUBSCRIBE", lineAllowed+", SUBSCRIBE"
	}
	if s.h.Publish != nil { // RFC 3903: PUBLISH leaves notAllowed
		h[sip.PUBLISH] = s.h.Publish
		s.allow, s.lineAllow = s.allow+", PUBLISH", s.lineAllow+", PUBLISH"
	}
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
		s.h.InDialog(req, tx)
		return
	}
	user := req.Recipient.User
	switch isLine := s.h.IsLine(user); {
	case user == sipmsg.ServiceUser:
		ct := ""
		if h := req.ContentType(); h != nil {
			ct = h.Value()
		}
		s.Log.Debug("MESSAGE to the service identity ignored", "from", req.From().Address.User, "source", req.Source(),
			"content_type", truncate(ct, 64), "bytes", len(req.Body()))
		respond(tx, req, 200, "OK", s.Log)
	case isLine:
		respond(tx, req, 405, "Method Not Allowed", s.Log, sip.NewHeader("Allow", s.lineAllow))
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
	respond(tx, req, 501, "Not Implemented", s.Log, sip.NewHeader("Allow", s.allow))
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
		sip.NewHeader("Allow", s.allow),
		sip.NewHeader("Accept", "application/sdp"),
		sip.NewHeader("Supported", ""),
	)
}

// guard checks what every handler relies on (RFC 3261 8.1.1: To, From,
// CSeq, Call-ID, Max-Forwards, Via; the CSeq method matching the request,
// 8.1.1.5; a malformed request gets 400, 21.4.1) and turns a panic into a 500 so one bad message cannot stop
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
		if tx != nil && (s.answerAgain(req, tx) || s.refuse(req, tx) || !s.admit(req, tx)) {
			return
		}
		if req.SipVersion != "SIP/2.0" {
			s.Log.Info("unsupported SIP version", "version", req.SipVersion, "source", req.Source())
			if req.Method != sip.ACK {
				respond(tx, req, 505, "Version Not Supported", s.Log) // 7.1 / 21.5.7
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
		if s.h.Serving != nil && !s.h.Serving() {
			if req.Method != sip.ACK {
				respond(tx, req, 503, "Service Unavailable", s.Log, sip.NewHeader("Retry-After", "1"))
			}
			return
		}
		if tx != nil {
			tx = s.finishing(req, tx)
		}
		h(req, tx)
	}
}

// admit counts the server transaction of req until it ends, or, when
// too many are alive (a flood, B7; being behind is refuse's, overload.go: each lives up to 32 s after its answer, RFC
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
