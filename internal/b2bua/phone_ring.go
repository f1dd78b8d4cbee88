package b2bua

import (
	"fmt"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/callbackd/callbackd/internal/registrar"
)

// Ring A, then connect B: the one path of a call the server places itself,
// for the Dial of the console or the API (Connect, phone_connect.go) and
// for the automatic recall (Recall, phone_recall.go).
//
//  1. ringCaller rings every device of the caller A as a call back (the
//     recall Alert-Info of RFC 7462, the callee's number as From); the
//     first to answer is A's leg of the call.
//  2. What A hears meanwhile and what B is offered is the caller's part:
//     Connect passes A's offer on (RFC 3725 Flow I), Recall offers the
//     server's own media and relays.
//  3. ringDevices rings every device of the callee B; joinCallee makes the
//     device that answered B's leg of the call and acknowledges its 2xx.
//
// Every 2xx of these INVITEs is acknowledged by ackAnswer, which keeps the
// ACK to answer each retransmission of the 2xx (RFC 3261 13.2.2.4).

// ringCaller rings caller's devices as the server places a call back (the
// recall Alert-Info, RFC 7462, and the callee's number as From, so that
// A's phones show who the call back is for) with inv, for ring (0: the
// no-answer timeout). When a device answers it returns the call caller ->
// callee whose A leg is that dialog (we are its UAC), counted on the
// caller's line, with the device's 2xx (its ACK is the caller's to send,
// ackAnswer).
func (b *B2BUA) ringCaller(caller, callee, calleeName string, devices []registrar.Binding, inv *sip.Request, ring time.Duration) (*call, *relayed, error) {
	// The setup call's caller and callee are reversed: B "calls" A.
	ringA := &call{id: "ring-" + sip.GenerateTagN(16), caller: callee, callee: caller}
	fa, f := b.ringDevices(ringA, inv, "CallBack "+calleeName, devices, ring, nil, sip.NewHeader("Alert-Info", RecallAlertInfo))
	if f != nil {
		return nil, nil, fmt.Errorf("%s did not answer: %d %s", caller, f.code, f.reason)
	}
	c := &call{caller: caller, callee: callee}
	aLeg, relA := b.dialogOf(fa)
	aLeg.call, aLeg.name = c, "A"
	c.id, c.a = aLeg.CallID, aLeg
	b.addLeg(aLeg)
	b.lines.Originate(caller, c.id)
	return c, relA, nil
}

// ringDevices forks inv to devices for c (relay_ringing.go, with the server
// as the caller, shown as callerName) for timeout (0: the no-answer
// timeout), every fork with the extra headers; abort (nil: none) stops it
// when A hangs up. It returns the device that answered, or why none did;
// neither when aborted (the call is ended then).
func (b *B2BUA) ringDevices(c *call, inv *sip.Request, callerName string, devices []registrar.Binding, timeout time.Duration, abort <-chan struct{}, extra ...sip.Header) (answered, *failed) {
	ans := make(chan answered, 1)
	fail := make(chan *failed, 1)
	r := &ringing{
		b: b, c: c, req: inv, callerName: callerName,
		responses: make(chan forkResponse),
		timeout:   timeout,
		extra:     extra,
		abort:     abort,
		onAnswer:  func(f *fork, res *sip.Response) { ans <- answered{f, res} },
		onFail:    func(code int, reason string, why Outcome) { fail <- &failed{code, reason, why} },
	}
	r.run(devices, time.Now())
	select {
	case a := <-ans:
		return a, nil
	case f := <-fail:
		return answered{}, f
	default:
		return answered{}, nil // run returned through abort; it ended the call
	}
}

// joinCallee makes the device of B that answered the B leg of c and
// acknowledges its 2xx (no body: the offer was in our INVITE).
func (b *B2BUA) joinCallee(c *call, fb answered) *leg {
	bLeg, relB := b.dialogOf(fb)
	b.ackAnswer(bLeg, relB, nil, nil)
	c.mu.Lock()
	c.b = bLeg
	c.mu.Unlock()
	b.addLeg(bLeg)
	return bLeg
}

// ackAnswer sends the ACK of the 2xx rel on l, carrying body (the answer
// to an offer in the 2xx, RFC 3261 13.2.1) when given, and keeps it for
// the 2xx's retransmissions.
func (b *B2BUA) ackAnswer(l *leg, rel *relayed, body []byte, contentType sip.Header) {
	ack := b.ack(l, rel.invite, body, contentType)
	if err := b.sendAck(rel.invite, ack); err != nil {
		b.log.Info("ack failed", "call", l.call.id, "leg", l.name, "error", err)
	}
}

// answered is a fork's device that answered, with its 2xx.
type answered struct {
	f   *fork
	res *sip.Response
}

// failed is why no device answered: the final response the call gets.
type failed struct {
	code   int
	reason string
	why    Outcome
}

func (f *failed) Error() string { return fmt.Sprintf("%d %s", f.code, f.reason) }

// dialogOf completes the dialog of a fork whose device answered (RFC 3261
// 12.1.2), and the 2xx to acknowledge (sendAck keeps the ACK for its
// retransmissions).
func (b *B2BUA) dialogOf(a answered) (*leg, *relayed) {
	l := a.f.leg
	l.confirm(a.res)
	rel := &relayed{invite: a.f.invite, res: a.res}
	return l, rel
}

// emptyInvite is the request a server-placed call forks: no body, the
// usual Max-Forwards.
func emptyInvite() *sip.Request {
	req := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", Host: "invalid"})
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	return req
}
