// Package sipmsg builds the SIP messages the server sends as a user agent:
// requests in a dialog (RFC 3261 12.2.1.1) and the first request of a new
// one (8.1.1), the ACK of a 2xx (13.2.2.4), the CANCEL of an INVITE (9.1),
// and the answer to a request it handles (Respond). The B2BUA's call legs,
// the server's own calls and screens, and any later sender of in-dialog or
// out-of-dialog requests (SUBSCRIBE/NOTIFY) build them here, so every
// request carries the same Via, Contact and source socket.
package sipmsg

import (
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"

	"github.com/emiago/sipgo/sip"
)

// ServiceUser is the user part of the server's own identity: the From of
// the requests it sends to phones (screens, alerts); a phone's reply to a
// screen comes back to it.
const ServiceUser = "callback"

// Local is where the server listens on one transport: it goes into Via,
// Contact and, for UDP, selects the listening socket as the sender so that
// phones see requests come from the port they registered to.
type Local struct {
	Host string
	Port int
}

// Dialog is one dialog as the server, a user agent in it, sees it (RFC
// 3261 12): what its requests carry and where they go.
type Dialog struct {
	CallID    string
	LocalTag  string
	RemoteTag string  // "" until the other party's tag is known (12.1.2)
	Local     sip.Uri // our side's address (From in requests we send)
	LocalName string  // display name shown with it
	Remote    sip.Uri // the other party's address (To in requests we send)
	Target    sip.Uri // remote target: the party's Contact (12.1.1)
	Dest      string  // ip:port we send to (where the party's requests come from)
	Transport string
	CSeq      atomic.Uint32 // last CSeq we used in this dialog
}

// NewDialog starts a dialog from local (shown as localName) to remote, whose
// requests go to the device with Contact target, reached at dest over
// transport: a new Call-ID and tag, CSeq 1 for its first request.
func NewDialog(local sip.Uri, localName string, remote sip.Uri, target, dest, transport string) (*Dialog, error) {
	d := &Dialog{
		CallID:   sip.GenerateTagN(24) + "@callbackd",
		LocalTag: sip.GenerateTagN(16),
		Local:    local, LocalName: localName, Remote: remote,
		Dest: dest, Transport: strings.ToUpper(transport),
	}
	if err := sip.ParseUri(target, &d.Target); err != nil {
		return nil, err
	}
	d.CSeq.Store(1)
	return d, nil
}

// Builder builds the server's requests from its listening addresses.
type Builder struct {
	local map[string]Local // by transport, "UDP"/"TCP"
	ip    net.IP
}

// NewBuilder returns a Builder for the server listening at local, by
// transport ("UDP", "TCP").
func NewBuilder(local map[string]Local) *Builder {
	var ip net.IP
	for _, l := range local {
		ip = net.ParseIP(l.Host)
		break
	}
	return &Builder{local: local, ip: ip}
}

// IP is the server's SIP address (nil when it has none configured).
func (b *Builder) IP() net.IP { return b.ip }

// Via is a new top Via for a request we send over transport (18.1.1:
// branch and rport, RFC 3581).
func (b *Builder) Via(transport string) *sip.ViaHeader {
	loc := b.local[strings.ToUpper(transport)]
	v := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: strings.ToUpper(transport), Host: loc.Host, Port: loc.Port, Params: sip.NewParams()}
	v.Params.Add("branch", sip.GenerateBranchN(16))
	v.Params.Add("rport", "")
	return v
}

// Contact is our Contact on a transport: the DN we stand for at the
// server's address, so the phone shows a number and its in-dialog requests
// come back to us.
func (b *Builder) Contact(user, transport string) *sip.ContactHeader {
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
func (b *Builder) route(m *sip.Request, dest, transport string) {
	tp := strings.ToUpper(transport)
	m.SetTransport(tp)
	m.SetDestination(dest)
	if tp == "UDP" {
		loc := b.local["UDP"]
		m.Laddr = sip.Addr{IP: b.ip, Port: loc.Port}
	}
}

// Again parses a request the server sent before (raw, as it went out) to
// send it again to dest over transport, from the listening socket.
func (b *Builder) Again(raw []byte, dest, transport string) (*sip.Request, error) {
	m, err := sip.ParseMessage(raw)
	if err != nil {
		return nil, err
	}
	req, ok := m.(*sip.Request)
	if !ok {
		return nil, errors.New("not a request")
	}
	b.route(req, dest, transport)
	return req, nil
}

// Request builds a request inside dialog d (RFC 3261 12.2.1.1) with CSeq
// number cseq; out of a dialog, the first request of d (8.1.1).
func (b *Builder) Request(d *Dialog, method sip.RequestMethod, cseq uint32) *sip.Request {
	req := sip.NewRequest(method, *d.Target.Clone())
	req.AppendHeader(b.Via(d.Transport))
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	from := &sip.FromHeader{DisplayName: d.LocalName, Address: *d.Local.Clone(), Params: sip.NewParams()}
	from.Params.Add("tag", d.LocalTag)
	req.AppendHeader(from)
	to := &sip.ToHeader{Address: *d.Remote.Clone(), Params: sip.NewParams()}
	if d.RemoteTag != "" {
		to.Params.Add("tag", d.RemoteTag)
	}
	req.AppendHeader(to)
	cid := sip.CallIDHeader(d.CallID)
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: cseq, MethodName: method})
	if method == sip.INVITE || method == sip.UPDATE {
		req.AppendHeader(b.Contact(d.Local.User, d.Transport))
	}
	req.SetBody(nil) // Content-Length: 0, required on TCP (18.3); callers may set a body
	b.route(req, d.Dest, d.Transport)
	return req
}

// Ack builds the ACK for a 2xx to an INVITE we sent in d (13.2.2.4): same
// CSeq number, a new branch, sent to the remote target, carrying body (an
// answer to an offer in the 2xx, 13.2.1) when given.
func (b *Builder) Ack(d *Dialog, invite *sip.Request, body []byte, contentType sip.Header) *sip.Request {
	req := b.Request(d, sip.ACK, invite.CSeq().SeqNo)
	if len(body) > 0 && contentType != nil {
		req.AppendHeader(sip.HeaderClone(contentType))
	}
	req.SetBody(body)
	return req
}

// Cancel builds the CANCEL of an INVITE we sent (9.1): same Request-URI,
// Call-ID, From, To, CSeq number and top Via branch.
func Cancel(inv *sip.Request) *sip.Request {
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

// CopyBody copies the body and its Content-Type from one message to another.
func CopyBody(from sip.Message, to sip.Message) {
	if ct := from.GetHeaders("Content-Type"); len(ct) > 0 && len(from.Body()) > 0 {
		to.AppendHeader(sip.HeaderClone(ct[0]))
	}
	to.SetBody(from.Body())
}

// Respond answers req on its transaction with code and reason, and hdrs;
// a transport failure is logged (at debug: the peer retransmits).
func Respond(tx sip.ServerTransaction, req *sip.Request, code int, reason string, log *slog.Logger, hdrs ...sip.Header) {
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	if err := tx.Respond(res); err != nil {
		log.Debug("respond failed", "code", code, "error", err)
	}
}
