package b2bua

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/callbackd/callbackd/internal/registrar"
	"github.com/callbackd/callbackd/internal/sipmsg"
)

// Connect is third-party call control (RFC 3725): the server places a call
// between two lines no phone dialed, for a Call Back Dial pressed on the
// web console or through the API. It uses RFC 3725 section 4.1 "Flow I":
//
//  1. INVITE without SDP to every device of the caller (A), with the recall
//     Alert-Info (RFC 7462) and the callee's number as From: A's phones
//     ring as for a call back. The first to answer wins; its 200 carries
//     A's offer.
//  2. INVITE to every device of the callee (B) with that offer, A's number
//     as From. B's 200 carries the answer.
//  3. ACK to B, and ACK to A carrying B's answer (13.2.1: the answer to an
//     offer in a 2xx goes in the ACK).
//
// Flow I is the simplest and needs nothing of the phones beyond RFC 3261;
// its weakness (section 4.1) is that A's 200 goes unacknowledged while B
// rings, so B rings at most ackWindow, inside the 64*T1 A retransmits its
// 200 for. When B fails, A's 200 is acknowledged with an answer that
// rejects its streams (port 0, RFC 3264 6) and A gets BYE. With the
// announcements of the media release, A will hear ringback meanwhile
// (Flow IV with the server as the media endpoint).
//
// Connect returns once the call is connected or has failed. The connected
// call is an ordinary call of the B2BUA afterwards: stored, counted on both
// lines, its BYEs and re-INVITEs relayed.
func (b *B2BUA) Connect(caller, callee string) error {
	if _, ok := b.dir.Line(callee); !ok {
		return fmt.Errorf("connect: %s is not a line", callee)
	}
	callerLine, ok := b.dir.Line(caller)
	if !ok {
		return fmt.Errorf("connect: %s is not a line", caller)
	}
	calleeLine, _ := b.dir.Line(callee)
	aDevices := b.reg.Bindings(caller)
	if len(aDevices) == 0 {
		return fmt.Errorf("connect: %s has no registered device", caller)
	}

	// Step 1: ring A; its answer carries A's offer.
	c, relA, err := b.ringCaller(caller, callee, calleeLine.Name, aDevices, emptyInvite(), 0)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	aLeg := c.a

	// reject acknowledges A's 200 with streams refused and hangs up.
	reject := func(why error) error {
		ack := b.ack(aLeg, relA.invite, rejectAll(relA.res.Body()), sip.NewHeader("Content-Type", "application/sdp"))
		relA.storeAck(ack)
		if err := b.client.WriteRequest(ack, noBuild); err != nil {
			b.log.Debug("connect: ack", "error", err)
		}
		go b.fireAndForget(b.request(aLeg, sip.BYE, aLeg.CSeq.Add(1)))
		b.end(c)
		return why
	}
	if len(relA.res.Body()) == 0 {
		return reject(errors.New("connect: the caller's answer has no SDP offer"))
	}
	bDevices := b.reg.Bindings(callee)
	if len(bDevices) == 0 {
		b.result(Result{Caller: caller, Callee: callee, Code: 480, Outcome: FailUnregistered, At: time.Now()})
		return reject(fmt.Errorf("connect: %s has no registered device", callee))
	}
	if _, ok := b.lines.Offer(callee, c.id); !ok {
		b.result(Result{Caller: caller, Callee: callee, Code: 486, Outcome: FailBusy, At: time.Now()})
		return reject(fmt.Errorf("connect: %s is busy", callee))
	}

	// Step 2: ring B with A's offer.
	offer := emptyInvite()
	sipmsg.CopyBody(relA.res, offer)
	bAnswer := make(chan answered, 1)
	bFail := make(chan error, 1)
	rb := &ringing{
		b: b, c: c, req: offer, callerName: callerLine.Name,
		responses: make(chan forkResponse),
		timeout:   min(b.cfg.NoAnswerTimeout, ackWindow),
		onAnswer:  func(f *fork, res *sip.Response) { bAnswer <- answered{f, res} },
		onFail: func(code int, reason string, why Outcome) {
			b.result(Result{Caller: caller, Callee: callee, Code: code, Outcome: why, At: time.Now()})
			bFail <- fmt.Errorf("connect: %s: %d %s", callee, code, reason)
		},
	}
	rb.run(bDevices, time.Now())
	var fb answered
	select {
	case err := <-bFail:
		return reject(err)
	case fb = <-bAnswer:
	}

	// Step 3: ACK both, A's with B's answer.
	bLeg, relB := b.dialogOf(fb)
	relB.storeAck(b.ack(bLeg, fb.f.invite, nil, nil))
	var ct sip.Header
	if h := fb.res.GetHeaders("Content-Type"); len(h) > 0 {
		ct = h[0]
	}
	relA.storeAck(b.ack(aLeg, relA.invite, fb.res.Body(), ct))
	aLeg.sent(relA.loadAck())
	bLeg.sent(fb.f.invite)
	c.mu.Lock()
	c.b = bLeg
	c.mu.Unlock()
	b.addLeg(bLeg)
	b.lines.Answered(callee, c.id)
	b.lines.Answered(caller, c.id)
	b.save(c)
	for _, ack := range []*sip.Request{relB.loadAck(), relA.loadAck()} {
		if err := b.client.WriteRequest(ack, noBuild); err != nil {
			b.log.Info("connect: ack failed", "call", c.id, "error", err)
		}
	}
	b.result(Result{Caller: caller, Callee: callee, Code: 200, Outcome: Answered, At: time.Now()})
	b.log.Info("call back call connected", "caller", caller, "callee", callee, "call", c.id)
	return nil
}

// ringCaller rings caller's devices as the server places a call back (the
// recall Alert-Info of RFC 7462, and the callee's number as From, so that
// A's phones show who the call back is for) with inv, for ring (0: the
// no-answer timeout). When a device answers it returns the call caller ->
// callee whose A leg is that dialog (we are its UAC), counted on the
// caller's line, with the device's 200 (its ACK is the caller's to send).
func (b *B2BUA) ringCaller(caller, callee, calleeName string, devices []registrar.Binding, inv *sip.Request, ring time.Duration) (*call, *relayed, error) {
	// The setup call's caller and callee are reversed: B "calls" A.
	ringA := &call{id: "ring-" + sip.GenerateTagN(16), caller: callee, callee: caller}
	aAnswer := make(chan answered, 1)
	aFail := make(chan string, 1)
	ra := &ringing{
		b: b, c: ringA, req: inv, callerName: "CallBack " + calleeName,
		responses: make(chan forkResponse),
		timeout:   ring,
		extra:     []sip.Header{sip.NewHeader("Alert-Info", RecallAlertInfo)},
		onAnswer:  func(f *fork, res *sip.Response) { aAnswer <- answered{f, res} },
		onFail:    func(code int, reason string, _ Outcome) { aFail <- fmt.Sprintf("%d %s", code, reason) },
	}
	ra.run(devices, time.Now())
	var fa answered
	select {
	case why := <-aFail:
		return nil, nil, fmt.Errorf("%s did not answer: %s", caller, why)
	case fa = <-aAnswer:
	}
	c := &call{caller: caller, callee: callee}
	aLeg, relA := b.dialogOf(fa)
	aLeg.call, aLeg.name = c, "A"
	c.id, c.a = aLeg.CallID, aLeg
	b.addLeg(aLeg)
	b.lines.Originate(caller, c.id)
	return c, relA, nil
}

// answered is a fork's device that answered, with its 2xx.
type answered struct {
	f   *fork
	res *sip.Response
}

// dialogOf completes the dialog of a fork whose device answered: its
// remote tag and target (RFC 3261 12.1.2), and the 2xx to acknowledge,
// whose ACK (once stored) answers each retransmission of it.
func (b *B2BUA) dialogOf(a answered) (*leg, *relayed) {
	l := a.f.leg
	l.RemoteTag = tagOf(a.res.To().Params)
	if ct := a.res.Contact(); ct != nil {
		l.Target = *ct.Address.Clone()
	}
	rel := &relayed{invite: a.f.invite, res: a.res}
	a.f.tx.OnRetransmission(func(*sip.Response) { b.resendAck(rel) })
	return l, rel
}

// ackWindow bounds how long B may ring in Connect: A retransmits its
// unacknowledged 200 for 64*T1 = 32 s (RFC 3261 13.3.1.4) and then hangs up.
const ackWindow = 30 * time.Second

// emptyInvite is the request a server-placed call forks: no body, the
// usual Max-Forwards.
func emptyInvite() *sip.Request {
	req := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", Host: "invalid"})
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	return req
}

// rejectAll answers an SDP offer refusing every stream: each m= line with
// port 0 and its first format (RFC 3264 section 6).
func rejectAll(offer []byte) []byte {
	var b bytes.Buffer
	b.WriteString("v=0\r\no=callbackd 0 0 IN IP4 0.0.0.0\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n")
	for _, line := range bytes.Split(offer, []byte("\n")) {
		f := bytes.Fields(line)
		if len(f) >= 4 && bytes.HasPrefix(f[0], []byte("m=")) {
			fmt.Fprintf(&b, "%s 0 %s %s\r\n", f[0], f[2], f[3])
		}
	}
	return b.Bytes()
}
