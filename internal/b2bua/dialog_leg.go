package b2bua

import (
	"sync/atomic"
	"time"

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
	// acking is set while HandleAck passes the party's ACK on; ackGate,
	// when a BYE waits for that (ackOrder), is closed once it is sent.
	acking     bool
	ackGate    chan struct{}
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
	invite *sip.Request  // our INVITE on the leg that answered
	res    *sip.Response // its 2xx
	stop   chan struct{} // closed when the ACK for our own 2xx arrived
	cseq   uint32        // CSeq of the INVITE we answered on this leg (0: A's initial INVITE)
}

// sendAck sends ack, for the 2xx to our INVITE invite, and keeps its bytes
// by the INVITE's client transaction key (its branch, RFC 3261 17.1.3) for
// 64*T1: sipgo's transaction ended at the 2xx (sipserver sets Timer M to
// 0), so a 2xx retransmitted because the ACK was lost reaches
// HandleStrayResponse, which sends the same ACK again (13.2.2.4). Kept
// as bytes, not the call: at call load that is 32 s of every call.
func (b *B2BUA) sendAck(invite, ack *sip.Request) error {
	if key, err := sip.ClientTxKeyMake(invite); err == nil {
		b.acks.Put(key, []byte(ack.String()), time.Now(), 64*sip.T1)
	}
	return b.client.WriteRequest(ack, noBuild)
}

// HandleStrayResponse takes a response no client transaction matches. A
// 2xx to an INVITE we acknowledged already gets the ACK again (RFC 3261
// 13.2.2.4), sent where the 2xx came from; anything else is dropped
// (17.1.1.2 for a stray non-2xx; RFC 6026 7.2).
func (b *B2BUA) HandleStrayResponse(res *sip.Response) {
	if !res.IsSuccess() || res.CSeq() == nil || res.CSeq().MethodName != sip.INVITE {
		return
	}
	key, err := sip.ClientTxKeyMake(res)
	if err != nil {
		return
	}
	raw := b.acks.Get(key, time.Now())
	if raw == nil {
		b.log.Debug("2xx matching no INVITE of ours still acknowledged: dropped", "source", res.Source())
		return
	}
	ack, err := b.msg.Again(raw, res.Source(), res.Transport())
	if err == nil {
		err = b.client.WriteRequest(ack, noBuild)
	}
	if err != nil {
		b.log.Debug("ack retransmission", "error", err)
	}
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
