package b2bua

import (
	"sync/atomic"

	"github.com/emiago/sipgo/sip"

	"github.com/callbackd/callbackd/internal/sipmsg"
)

// Local is where the server listens on one transport (sipmsg.Local).
type Local = sipmsg.Local

// leg is one dialog of a call, as the B2BUA sees it (RFC 3261 12): the A leg
// toward the caller (we are its UAS), the B leg toward the callee's device
// (we are its UAC).
type leg struct {
	*sipmsg.Dialog
	call *call
	name string // "A" or "B", for logs

	// pendingAck is set on a leg we sent a 2xx to: when its ACK arrives
	// we ACK the peer's 2xx that we relayed, carrying the ACK's body (an
	// answer to a late offer, RFC 3261 13.2.1).
	pendingAck *relayed
	inviteCSeq uint32 // CSeq of the party's initial INVITE (A leg)

	// sdp is the session description last sent to the party (the other
	// party's, relayed): the base of a hold offer (dialog_hold.go).
	sdp atomic.Pointer[[]byte]
}

// confirm completes the dialog from the other party's 2xx to our INVITE
// (RFC 3261 12.1.2): its To tag is the remote tag, its Contact the remote
// target.
func (l *leg) confirm(res *sip.Response) {
	l.RemoteTag = tagOf(res.To().Params)
	if ct := res.Contact(); ct != nil {
		l.Target = *ct.Address.Clone()
	}
}

// sent records a session description sent to the party.
func (l *leg) sent(m sip.Message) { l.sentBody(m.Body()) }

func (l *leg) sentBody(b []byte) {
	if len(b) > 0 {
		l.sdp.Store(&b)
	}
}

// remoteCSeqFor is the CSeq number the ACK for a relayed 2xx must carry:
// the one of the INVITE it answers (17.1.1.3, 13.2.2.4).
func (l *leg) remoteCSeqFor(p *relayed) uint32 {
	if p.cseq != 0 {
		return p.cseq
	}
	return l.inviteCSeq
}

// relayed is a 2xx received on one leg and relayed to the other.
type relayed struct {
	invite *sip.Request            // our INVITE on the leg that answered
	res    *sip.Response           // its 2xx
	ack    atomic.Pointer[sentAck] // the ACK we sent for it, sent again on retransmissions
	stop   chan struct{}           // closed when the ACK for our own 2xx arrived
	cseq   uint32                  // CSeq of the INVITE we answered on this leg (0: A's initial INVITE)
}

// sentAck is what the ACK we sent for a 2xx is made of. It is kept, not
// the message (some 2 KB of headers), for as long as the 2xx may be
// retransmitted (64*T1, Timer M of RFC 6026), which at call load is 32 s
// of every call, and the same ACK, branch included, is built again for
// each retransmission, which hardly ever comes (RFC 3261 13.2.2.4).
type sentAck struct {
	leg    *leg
	body   []byte
	ct     sip.Header
	branch string
}

// storeAck keeps what ack, sent on l for r's 2xx, is made of.
func (r *relayed) storeAck(l *leg, ack *sip.Request) {
	branch, _ := ack.Via().Params.Get("branch")
	a := &sentAck{leg: l, body: ack.Body(), branch: branch}
	if h := ack.GetHeaders("Content-Type"); len(h) > 0 {
		a.ct = h[0]
	}
	r.ack.Store(a)
}

// sentAck builds again the ACK stored for r, nil if none was sent.
func (b *B2BUA) sentAck(r *relayed) *sip.Request {
	a := r.ack.Load()
	if a == nil {
		return nil
	}
	ack := b.ack(a.leg, r.invite, a.body, a.ct)
	ack.Via().Params.Add("branch", a.branch)
	return ack
}

func (l *leg) peer() *leg {
	if l == l.call.a {
		return l.call.b
	}
	return l.call.a
}

// request builds a request inside the dialog of l (RFC 3261 12.2.1.1).
func (b *B2BUA) request(l *leg, method sip.RequestMethod, cseq uint32) *sip.Request {
	return b.msg.Request(l.Dialog, method, cseq)
}

// ack builds the ACK for a 2xx to an INVITE we sent on l (13.2.2.4).
func (b *B2BUA) ack(l *leg, invite *sip.Request, body []byte, contentType sip.Header) *sip.Request {
	return b.msg.Ack(l.Dialog, invite, body, contentType)
}
