package b2bua

import (
	"strings"
	"sync/atomic"

	"github.com/emiago/sipgo/sip"
)

// Local is where the server listens on one transport: it goes into Via,
// Contact and, for UDP, selects the listening socket as the sender so that
// phones see requests come from the port they registered to.
type Local struct {
	Host string
	Port int
}

// leg is one dialog of a call, as the B2BUA sees it (RFC 3261 12): the A leg
// toward the caller (we are its UAS), the B leg toward the callee's device
// (we are its UAC).
type leg struct {
	call      *call
	name      string // "A" or "B", for logs
	callID    string
	localTag  string
	remoteTag string
	local     sip.Uri // our side's address (From in requests we send)
	localName string  // display name shown with it
	remote    sip.Uri // the other party's address (To in requests we send)
	target    sip.Uri // remote target: the party's Contact (12.1.1)
	dest      string  // ip:port we send to (where the party's requests come from)
	transport string
	cseq      atomic.Uint32 // last CSeq we used in this dialog

	// pendingAck is set on a leg we sent a 2xx to: when its ACK arrives
	// we ACK the peer's 2xx that we relayed, carrying the ACK's body (an
	// answer to a late offer, RFC 3261 13.2.1).
	pendingAck *relayed
	inviteCSeq uint32 // CSeq of the party's initial INVITE (A leg)

	// sdp is the session description last sent to the party (the other
	// party's, relayed): the base of a hold offer (hold.go).
	sdp atomic.Pointer[[]byte]
}

// sent records a session description sent to the party.
func (l *leg) sent(m sip.Message) {
	if b := m.Body(); len(b) > 0 {
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
	invite *sip.Request                // our INVITE on the leg that answered
	res    *sip.Response               // its 2xx
	ack    atomic.Pointer[sip.Request] // the ACK we sent for it, resent on retransmissions
	stop   chan struct{}               // closed when the ACK for our own 2xx arrived
	cseq   uint32                      // CSeq of the INVITE we answered on this leg (0: A's initial INVITE)
}

func (r *relayed) loadAck() *sip.Request   { return r.ack.Load() }
func (r *relayed) storeAck(a *sip.Request) { r.ack.Store(a) }

func (l *leg) peer() *leg {
	if l == l.call.a {
		return l.call.b
	}
	return l.call.a
}

func (b *B2BUA) via(transport string) *sip.ViaHeader {
	loc := b.local[strings.ToUpper(transport)]
	v := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: strings.ToUpper(transport), Host: loc.Host, Port: loc.Port, Params: sip.NewParams()}
	v.Params.Add("branch", sip.GenerateBranchN(16))
	v.Params.Add("rport", "")
	return v
}

// contact is our Contact for a leg: the DN we stand for at the server's
// address on the leg's transport, so the phone shows a number and its
// in-dialog requests come back to us.
func (b *B2BUA) contact(user, transport string) *sip.ContactHeader {
	tp := strings.ToUpper(transport)
	loc := b.local[tp]
	c := &sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: user, Host: loc.Host, Port: loc.Port}}
	if tp != "UDP" {
		c.Address.UriParams = sip.NewParams()
		c.Address.UriParams.Add("transport", strings.ToLower(tp))
	}
	return c
}

// route sets where a request goes and, for UDP, that it leaves from the
// listening socket.
func (b *B2BUA) route(m *sip.Request, dest, transport string) {
	tp := strings.ToUpper(transport)
	m.SetTransport(tp)
	m.SetDestination(dest)
	if tp == "UDP" {
		loc := b.local["UDP"]
		m.Laddr = sip.Addr{IP: b.localIP, Port: loc.Port}
	}
}

// request builds a request inside the dialog of l (RFC 3261 12.2.1.1).
func (b *B2BUA) request(l *leg, method sip.RequestMethod, cseq uint32) *sip.Request {
	req := sip.NewRequest(method, *l.target.Clone())
	req.AppendHeader(b.via(l.transport))
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	from := &sip.FromHeader{DisplayName: l.localName, Address: *l.local.Clone(), Params: sip.NewParams()}
	from.Params.Add("tag", l.localTag)
	req.AppendHeader(from)
	to := &sip.ToHeader{Address: *l.remote.Clone(), Params: sip.NewParams()}
	if l.remoteTag != "" {
		to.Params.Add("tag", l.remoteTag)
	}
	req.AppendHeader(to)
	cid := sip.CallIDHeader(l.callID)
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: cseq, MethodName: method})
	if method == sip.INVITE || method == sip.UPDATE {
		req.AppendHeader(b.contact(l.local.User, l.transport))
	}
	req.SetBody(nil) // Content-Length: 0, required on TCP (18.3); callers may set a body
	b.route(req, l.dest, l.transport)
	return req
}

// ack builds the ACK for a 2xx to an INVITE we sent on l (13.2.2.4): same
// CSeq number, a new branch, sent to the remote target.
func (b *B2BUA) ack(l *leg, invite *sip.Request, body []byte, contentType sip.Header) *sip.Request {
	req := b.request(l, sip.ACK, invite.CSeq().SeqNo)
	if len(body) > 0 && contentType != nil {
		req.AppendHeader(sip.HeaderClone(contentType))
	}
	req.SetBody(body)
	return req
}

// cancel builds the CANCEL of an INVITE we sent (9.1): same Request-URI,
// Call-ID, From, To, CSeq number and top Via branch.
func cancelOf(inv *sip.Request) *sip.Request {
	req := sip.NewRequest(sip.CANCEL, *inv.Recipient.Clone())
	req.AppendHeader(inv.Via().Clone())
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	req.AppendHeader(sip.HeaderClone(inv.From()))
	req.AppendHeader(sip.HeaderClone(inv.To()))
	req.AppendHeader(sip.HeaderClone(inv.CallID()))
	req.AppendHeader(&sip.CSeqHeader{SeqNo: inv.CSeq().SeqNo, MethodName: sip.CANCEL})
	req.SetBody(nil)
	req.SetTransport(inv.Transport())
	req.SetDestination(inv.Destination())
	req.Laddr = inv.Laddr
	return req
}

// copyBody copies the body and its Content-Type from one message to another.
func copyBody(from sip.Message, to sip.Message) {
	if ct := from.GetHeaders("Content-Type"); len(ct) > 0 && len(from.Body()) > 0 {
		to.AppendHeader(sip.HeaderClone(ct[0]))
	}
	to.SetBody(from.Body())
}
