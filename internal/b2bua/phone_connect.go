package b2bua

import (
	"errors"
	"fmt"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/callbackd/callbackd/internal/config"
	"github.com/callbackd/callbackd/internal/media"
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
// rejects its streams (port 0, RFC 3264 6) and A gets BYE. A hears
// nothing while B rings: the server is not in the media of this call (the
// automatic recall, Recall, is, and plays ringback: Flow IV with the
// server as the media endpoint). The steps are the one "ring A, then
// connect B" path of phone_ring.go.
//
// Connect returns once the call is connected or has failed. The connected
// call is an ordinary call of the B2BUA afterwards: stored, counted on both
// lines, its BYEs and re-INVITEs relayed.
func (b *B2BUA) Connect(caller, callee string) error {
	calleeLine, isLine := b.dir.Line(callee)
	trunk, viaTrunk := b.remoteCallee(callee)
	if !isLine && !viaTrunk {
		return fmt.Errorf("connect: %s is not a line", callee)
	}
	callerLine, ok := b.dir.Line(caller)
	if !ok {
		return fmt.Errorf("connect: %s is not a line", caller)
	}
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
		b.ackAnswer(aLeg, relA, media.RejectAll(relA.res.Body()), sip.NewHeader("Content-Type", "application/sdp"))
		go b.fireAndForget(b.request(aLeg, sip.BYE, aLeg.CSeq.Add(1)))
		b.end(c)
		return why
	}
	if len(relA.res.Body()) == 0 {
		return reject(errors.New("connect: the caller's answer has no SDP offer"))
	}
	bDevices := b.reg.Bindings(callee)
	if viaTrunk { // a callee of another server (B6): through its trunk
		bDevices = []Binding{trunkDevice(trunk, callee)}
		b.markCCCall(&bDevices[0], trunk, caller, callee)
	} else if len(bDevices) == 0 {
		b.result(Result{Caller: caller, Callee: callee, Code: 480, Outcome: FailUnregistered, At: time.Now()})
		return reject(fmt.Errorf("connect: %s has no registered device", callee))
	} else if _, ok := b.lines.Offer(callee, c.id); !ok {
		b.result(Result{Caller: caller, Callee: callee, Code: 486, Outcome: FailBusy, At: time.Now()})
		return reject(fmt.Errorf("connect: %s is busy", callee))
	}

	// Step 2: ring B with A's offer.
	offer := emptyInvite()
	sipmsg.CopyBody(relA.res, offer)
	fb, f := b.ringDevices(c, offer, callerLine.Name, bDevices, min(b.cfg.NoAnswerTimeout, ackWindow), nil)
	if f != nil {
		b.result(Result{Caller: caller, Callee: callee, Code: f.code, Outcome: f.why, At: time.Now()})
		return reject(fmt.Errorf("connect: %s: %d %s", callee, f.code, f.reason))
	}

	// Step 3: ACK both, A's with B's answer.
	bLeg := b.joinCallee(c, fb)
	var ct sip.Header
	if h := fb.res.GetHeaders("Content-Type"); len(h) > 0 {
		ct = h[0]
	}
	b.ackAnswer(aLeg, relA, fb.res.Body(), ct)
	aLeg.sentBody(fb.res.Body()) // the ACK's body
	bLeg.sent(fb.f.invite)
	b.lines.Answered(callee, c.id)
	b.lines.Answered(caller, c.id)
	b.save(c)
	b.result(Result{Caller: caller, Callee: callee, Code: 200, Outcome: Answered, At: time.Now()})
	b.log.Info("call back call connected", "caller", caller, "callee", callee, "call", c.id)
	return nil
}

// remoteCallee is the trunk a call back's callee is reached through when
// it is a number of another server (B6), not a line of ours.
func (b *B2BUA) remoteCallee(number string) (config.Trunk, bool) {
	if _, line := b.dir.Line(number); line {
		return config.Trunk{}, false
	}
	return b.cfg.Trunks.For(number)
}

// ackWindow bounds how long B may ring in Connect: A retransmits its
// unacknowledged 200 for 64*T1 = 32 s (RFC 3261 13.3.1.4) and then hangs up.
const ackWindow = 30 * time.Second
