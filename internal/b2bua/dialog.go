package b2bua

import (
	"context"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/callbackd/callbackd/internal/sipmsg"
)

type sipgoClient = sipgo.Client

// allow lists the methods a device may send us in a call.
const allow = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, MESSAGE, NOTIFY"

// awaitAck retransmits our 2xx over UDP until the ACK comes (RFC 3261
// 13.3.1.4: T1 doubling up to T2). Without an ACK after 64*T1 the session
// is ended with BYE on both sides. A call that ended meanwhile (its BYE
// came after a lost ACK) needs neither: at load a moment of lost
// datagrams otherwise came back 32 s later as a burst of BYEs for calls
// long gone.
func (b *B2BUA) awaitAck(c *call, tx sip.ServerTransaction, res *sip.Response, stop chan struct{}, reliable bool) {
	interval := sip.T1
	deadline := time.NewTimer(64 * sip.T1)
	defer deadline.Stop()
	tick := time.NewTimer(interval)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-deadline.C:
			if c.isEnded() {
				return
			}
			b.log.Info("no ACK for 200 OK, ending call", "call", c.id)
			b.hangup(c)
			return
		case <-tick.C:
			if c.isEnded() {
				return
			}
			if !reliable {
				if err := tx.Respond(res); err != nil {
					b.log.Debug("2xx retransmission", "error", err)
				}
				interval = min(2*interval, sip.T2)
			}
			tick.Reset(interval)
		}
	}
}

// isEnded reports whether the call has ended (b.end).
func (c *call) isEnded() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ended
}

// hangup ends a call from the server side: BYE to both parties.
func (b *B2BUA) hangup(c *call) {
	c.mu.Lock()
	legs := []*leg{c.a, c.b}
	c.mu.Unlock()
	for _, l := range legs {
		if l != nil {
			go b.fireAndForget(b.request(l, sip.BYE, l.CSeq.Add(1)))
		}
	}
	b.end(c)
}

// HandleAck takes an ACK. ACKs for our non-2xx answers are absorbed by the
// transaction layer; one reaching here acknowledges a 2xx we relayed.
func (b *B2BUA) HandleAck(req *sip.Request, tx sip.ServerTransaction) {
	l := b.findLeg(req.CallID().Value())
	if l == nil {
		return // an ACK gets no response (17.2.3); nothing to do
	}
	c := l.call
	c.mu.Lock()
	p := l.pendingAck
	if p == nil || p.res == nil || req.CSeq().SeqNo != l.remoteCSeqFor(p) {
		c.mu.Unlock()
		return
	}
	l.pendingAck = nil
	peer := l.peer()
	l.acking = true
	c.mu.Unlock()
	defer l.acked()
	if p.stop != nil {
		close(p.stop)
	}
	if peer == nil || p.invite == nil {
		return // a 2xx the server answered itself (reoffer): nothing to pass on
	}
	var ct sip.Header
	if h := req.GetHeaders("Content-Type"); len(h) > 0 {
		ct = h[0]
	}
	ack := b.ack(peer, p.invite, req.Body(), ct)
	if err := b.sendAck(p.invite, ack); err != nil {
		b.log.Info("forward ACK failed", "call", c.id, "error", err)
	}
}

// acked ends HandleAck's pass of the ACK and lets a BYE waiting for it go.
func (l *leg) acked() {
	l.call.mu.Lock()
	l.acking = false
	g := l.ackGate
	l.ackGate = nil
	l.call.mu.Unlock()
	if g != nil {
		close(g)
	}
}

// ackWait is how long a BYE waits for the ACK the party sent before it.
const ackWait = 500 * time.Millisecond

// ackOrder keeps the party's ACK before its next request (a BYE, a
// re-INVITE) on the other side. sipgo hands each request to its own
// goroutine, so a request sent right behind the ACK for a 2xx could be
// relayed first, and the other party would get it in a dialog it has not
// confirmed (RFC 3261 13.2.2.4: the UAS waits for the ACK). When the ACK
// is being passed on, or has not come yet, the request waits for it, at
// most ackWait (an ACK may be lost for good).
func (l *leg) ackOrder() {
	c := l.call
	c.mu.Lock()
	waiting := l.acking || (l.pendingAck != nil && l.pendingAck.invite != nil)
	var g chan struct{}
	if waiting {
		if l.ackGate == nil {
			l.ackGate = make(chan struct{})
		}
		g = l.ackGate
	}
	c.mu.Unlock()
	if g == nil {
		return
	}
	t := time.NewTimer(ackWait)
	defer t.Stop()
	select {
	case <-g:
	case <-t.C:
	}
}

// HandleInDialog relays a request of an established call to the other
// party: BYE ends the call, a re-INVITE (hold, resume, codec change) goes
// through as an offer/answer, anything else (INFO, UPDATE, MESSAGE, ...)
// is passed with its response.
func (b *B2BUA) HandleInDialog(req *sip.Request, tx sip.ServerTransaction) {
	l := b.findLeg(req.CallID().Value())
	if l == nil {
		b.respond(tx, req, 481, "Call/Transaction Does Not Exist") // 12.2.2
		return
	}
	c := l.call
	c.mu.Lock()
	peer := l.peer()
	srv := c.srv
	c.mu.Unlock()
	if peer == nil && srv != nil && l == c.a {
		b.serverLeg(l, srv, req, tx)
		return
	}
	if peer == nil {
		b.respond(tx, req, 481, "Call/Transaction Does Not Exist")
		return
	}
	if req.Method == sip.BYE {
		b.respond(tx, req, 200, "OK")
		l.ackOrder()
		go b.fireAndForget(b.request(peer, sip.BYE, peer.CSeq.Add(1)))
		b.end(c)
		return
	}
	if req.Method == sip.INVITE {
		if !c.startReinvite() {
			b.respond(tx, req, 491, "Request Pending") // 14.2: glare
			return
		}
		defer c.endReinvite()
	}

	// A re-INVITE or INFO sent right behind the ACK must not overtake it
	// either: the other party would get a request in a dialog it has not
	// confirmed yet, and a strict one (SIPp) drops the call.
	l.ackOrder()
	out := b.request(peer, req.Method, peer.CSeq.Add(1))
	for _, name := range []string{"Event", "Subscription-State", "Info-Package", "Allow"} {
		for _, h := range req.GetHeaders(name) {
			out.AppendHeader(sip.HeaderClone(h))
		}
	}
	sipmsg.CopyBody(req, out)
	peer.sent(out)
	ctx, cancel := context.WithTimeout(context.Background(), 64*sip.T1)
	defer cancel()
	otx, err := b.client.TransactionRequest(ctx, out, noBuild)
	if err != nil {
		b.respond(tx, req, 503, "Service Unavailable")
		return
	}
	defer otx.Terminate()
	for {
		select {
		case in := <-otx.Responses():
			if in.StatusCode < 200 {
				continue
			}
			if in.StatusCode > 699 {
				// No class to relay it as (RFC 3261 8.1.3.2, 21): an
				// invalid response, 502 (21.5.3), as for a new call.
				b.log.Warn("invalid response from the other party", "call", c.id, "method", req.Method, "status", in.StatusCode)
				b.respond(tx, req, 502, "Bad Gateway")
				return
			}
			res := sip.NewResponseFromRequest(req, in.StatusCode, in.Reason, nil)
			sipmsg.CopyBody(in, res)
			if in.IsSuccess() {
				l.sent(res)
			}
			if req.Method == sip.INVITE && in.IsSuccess() {
				res.AppendHeader(b.msg.Contact(l.Local.User, l.Transport))
				rel := &relayed{invite: out, res: in, stop: make(chan struct{}), cseq: req.CSeq().SeqNo}
				c.mu.Lock()
				l.pendingAck = rel
				c.mu.Unlock()
				if err := tx.Respond(res); err != nil {
					b.log.Debug("relay re-INVITE answer", "error", err)
				}
				go b.awaitAck(c, tx, res, rel.stop, sip.IsReliable(l.Transport))
				return
			}
			if err := tx.Respond(res); err != nil {
				b.log.Debug("relay response", "error", err)
			}
			if in.StatusCode == 481 || in.StatusCode == 408 {
				// The other side lost the dialog (12.2.1.2): end the call.
				b.hangup(c)
			}
			return
		case <-otx.Done():
			b.respond(tx, req, 408, "Request Timeout")
			return
		case <-tx.Done():
			// The sender gave up (its transaction ended). Not
			// sip.ServerTransactionContext: in sipgo v1.7.2 it is
			// cancelled at once.
			return
		}
	}
}
