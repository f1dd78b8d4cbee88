package sipserver

import (
	"net"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/callbackd/callbackd/internal/sipmsg"
)

// Finished transactions. RFC 3261 17.2.2 keeps a non-INVITE server
// transaction "Completed" for Timer J (64*T1, 32 s over UDP) after its
// final response, and RFC 6026 7.1 an INVITE one "Accepted" for Timer L
// after a 2xx, only to answer retransmissions of the request with that
// response (and to absorb them). sipgo keeps the whole transaction for it:
// the parsed request, the parsed response, timers, channels and whatever
// the handlers' callbacks hold; at 2,000 calls/s that was 128,000
// transactions, most of the heap, and the sip.max_transactions cap
// answering 503 after 28 s of honest load. What a retransmission needs is
// the transaction's key and the response's bytes: once a final response
// is sent, finishingTx records those here and ends sipgo's transaction;
// guard answers a retransmission from here before any handler sees it.
//
// An INVITE answered with a non-2xx stays in sipgo's transaction: that one
// retransmits its response until the ACK (Timer G) and absorbs the ACK
// (17.2.1), and calls answered that way are few.

// finished holds the final responses of server transactions that ended
// (by sip.ServerTxKeyMake, RFC 3261 17.2.3) for 64*T1.
type finished struct {
	*sipmsg.Recent
	answered atomic.Int64 // retransmissions answered (metrics)
}

func newFinished(max int) *finished { return &finished{Recent: sipmsg.NewRecent(max)} }

// collectors are the table's metrics.
func (f *finished) collectors() []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "callbackd_sip_finished_transactions",
			Help: "Server transactions ended at their final response whose response is kept (64*T1) to answer retransmissions of their request.",
		}, func() float64 { return float64(f.Len()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "callbackd_sip_retransmissions_answered_total",
			Help: "Retransmitted requests answered with the final response their transaction ended with (RFC 3261 17.2.2, RFC 6026 7.1).",
		}, func() float64 { return float64(f.answered.Load()) }),
	}
}

// finishingTx is the server transaction the handlers get. Its first final
// response that ends the transaction (any for a non-INVITE, a 2xx for an
// INVITE) is recorded in finished and sipgo's transaction is ended; the
// response sent again afterwards (the B2BUA's 2xx retransmissions until
// the ACK, RFC 3261 13.3.1.4) goes straight to the transport.
type finishingTx struct {
	sip.ServerTransaction
	req  *sip.Request
	key  string
	f    *finished
	done atomic.Bool
}

func (t *finishingTx) Respond(res *sip.Response) error {
	if t.done.Load() {
		if c := txConnection(t.ServerTransaction); c != nil {
			return c.WriteMsg(res)
		}
		return t.ServerTransaction.Respond(res)
	}
	if res.IsProvisional() || (t.req.IsInvite() && !res.IsSuccess()) {
		return t.ServerTransaction.Respond(res)
	}
	// Recorded before it is sent, so that a retransmission finds sipgo's
	// transaction or the record, whichever ends the transaction first
	// (Timer L is 0: acceptedAtOnce).
	b := []byte(res.String())
	t.f.Put(t.key, b, time.Now(), 64*sip.T1)
	t.done.Store(true)
	c := txConnection(t.ServerTransaction)
	invite := c != nil && t.req.IsInvite()
	// On UDP the bytes just recorded are what sipgo's Respond would write:
	// sending them spares a second serialisation of every final response
	// (one in eight of the messages of a relayed call).
	u, udp := c.(*sip.UDPConnection)
	direct := udp && len(b) <= sip.UDPMTUSize-200
	if invite || direct {
		// End sipgo's transaction before the response goes out, so that
		// what arrives right after it finds none: a retransmission is then
		// answered from the record (answerAgain; sipgo's own transaction,
		// not having seen the response we wrote, would absorb it), and an
		// ACK for a 2xx that reuses the INVITE's branch (an RFC 2543
		// peer's, SIPp's) reaches Handlers.Ack (sipgo drops one matching a
		// transaction that ends).
		t.ServerTransaction.Terminate()
	}
	switch {
	case direct:
		return writeUDP(u, res.Destination(), b)
	case invite:
		return c.WriteMsg(res)
	}
	err := t.ServerTransaction.Respond(res)
	t.ServerTransaction.Terminate()
	return err
}

// writeUDP sends an already serialised message to dest ("host:port", the
// response's destination as sipgo set it from the request's Via, RFC 3261
// 18.2.2) over the listener's connection, as sipgo's WriteMsg does.
func writeUDP(c *sip.UDPConnection, dest string, b []byte) error {
	host, port, err := sip.ParseAddr(dest)
	if err != nil {
		return err
	}
	if port == 0 {
		port = sip.DefaultUdpPort
	}
	_, err = c.WriteTo(b, &net.UDPAddr{IP: net.ParseIP(host), Port: port})
	return err
}

// acceptedAtOnce makes sipgo's INVITE transactions end as soon as a 2xx
// is sent or received (RFC 6026 Timers L and M, 64*T1 by default): the
// "Accepted" state is kept by finishingTx on the server side and, on the
// client side, by the B2BUA's ACKs kept for 2xx retransmissions, which
// reach Handlers.StrayResponse. Ending the transactions ourselves does not
// do it: sipgo v1.7.2 stops every timer of an ended transaction but Timers
// L and M, which then hold the transaction, its request, its responses and
// the handlers' callbacks (the whole call) for 32 s: at 2,000 calls/s most
// of the heap. A process-wide setting of sipgo's; set by New, after
// anything that sets sipgo's timers (sip.SetTimers).
func acceptedAtOnce() { sip.Timer_L, sip.Timer_M = 0, 0 }

// Connection is the transaction's connection (responses written outside it).
func (t *finishingTx) Connection() sip.Connection { return txConnection(t.ServerTransaction) }

// txConnection returns the connection of a sipgo transaction, nil for one
// without (tests' transactions).
func txConnection(tx sip.ServerTransaction) sip.Connection {
	if c, ok := tx.(interface{ Connection() sip.Connection }); ok {
		return c.Connection()
	}
	return nil
}

// finishing wraps tx so that its final response is recorded in s.finished
// (see finishingTx). An ACK has no response to record.
func (s *Server) finishing(req *sip.Request, tx sip.ServerTransaction) sip.ServerTransaction {
	if req.IsAck() {
		return tx
	}
	key, err := sip.ServerTxKeyMake(req)
	if err != nil {
		return tx
	}
	return &finishingTx{ServerTransaction: tx, req: req, key: key, f: s.finished}
}

// answerAgain answers a retransmission of a request whose transaction
// finished with the final response it got (RFC 3261 17.2.2, RFC 6026
// 7.1), and ends the transaction sipgo made for it. It reports whether
// req was one. An ACK is never answered: one matching a finished INVITE
// acknowledges its 2xx (an RFC 2543 peer's, whose ACK has the INVITE's
// key) and goes to the handler.
func (s *Server) answerAgain(req *sip.Request, tx sip.ServerTransaction) bool {
	if req.IsAck() {
		return false
	}
	key, err := sip.ServerTxKeyMake(req)
	if err != nil {
		return false
	}
	b := s.finished.Get(key, time.Now())
	if b == nil {
		return false
	}
	m, err := sip.ParseMessage(b)
	res, ok := m.(*sip.Response)
	if err != nil || !ok { // cannot be: we wrote it
		s.Log.Error("recorded response unreadable", "error", err)
		return false
	}
	res.SetTransport(req.Transport())
	res.SetDestination(req.Source())
	s.finished.answered.Add(1)
	writeOnce(tx, res, s.Log)
	return true
}
