package b2bua

import (
	"errors"
	"fmt"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/callbackd/callbackd/internal/media"
	"github.com/callbackd/callbackd/internal/media/endpoint"
	"github.com/callbackd/callbackd/internal/registrar"
)

// Recall is the automatic recall (UCware, F29): once the callee B is free,
// the server rings the caller A first; when A answers it dials B and
// connects the two.
//
//  1. INVITE to every device of A with the server's SDP offer, the recall
//     Alert-Info (RFC 7462) and B's number as From; it rings for ring
//     (CC_WAIT_TIME). The first answer wins.
//  2. A hears the Call Back alert sound (F32), then "... is available,
//     connecting" in A's locale; RecallAnswered asks the engine where to
//     connect (B, or the target of B's forwarding, F20/F21).
//  3. INVITE to B's devices with the server's offer, limited to the codec A
//     uses; A hears ringback meanwhile (A's country, F34).
//  4. B answers: the server relays RTP between its two sockets. If B is
//     busy or unavailable again, A is offered a new call back on the
//     spot, exactly as after a failed call (F28: press 5), then BYE.
//
// Why relay rather than re-INVITE A to a direct path: it needs nothing of
// the phones beyond a basic call (no re-INVITE support, no late offer),
// the server keeps the media it already has with A (ringback, prompts,
// keys) up to the moment B answers, and both legs were negotiated with
// the server so no codec can mismatch. It costs the server the packets
// (see README's figures); a phone's own re-INVITE later (hold, codec
// change) is relayed end to end as in any call and may move the media to
// a direct path on its own.
//
// If A does not answer, the request ends when CC_WAIT_TIME runs out (the
// engine's timer, as Cisco's T3: the caller was not there). Recall returns
// once the call is connected or has failed.
func (b *B2BUA) Recall(id int64, caller, callee string, ring time.Duration) error {
	calleeLine, ok := b.dir.Line(callee)
	if _, remote := b.remoteCallee(callee); !ok && !remote {
		return fmt.Errorf("recall: %s is not a line", callee)
	} else if !ok {
		calleeLine.Name = callee // B6: a callee of another server, shown by its number
	}
	callerLine, ok := b.dir.Line(caller)
	var aDevices []registrar.Binding
	switch t, external := b.cfg.Trunks.For(caller); {
	case ok:
		aDevices = b.reg.Bindings(caller)
	case external: // a caller from outside (F30), recalled through its trunk
		aDevices = []registrar.Binding{trunkDevice(t, caller)}
		callerLine.Name = caller
	default:
		return fmt.Errorf("recall: %s is neither a line nor a number of a trunk", caller)
	}
	if len(aDevices) == 0 {
		return fmt.Errorf("recall: %s has no registered device", caller)
	}
	ep, err := b.newEndpoint(caller)
	if err != nil {
		return fmt.Errorf("recall: %w", err)
	}

	// Step 1: ring A with the server's offer.
	inv := emptyInvite()
	inv.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	inv.SetBody(ep.Offer())
	c, relA, err := b.ringCaller(caller, callee, calleeLine.Name, aDevices, inv, ring)
	if err != nil {
		ep.Close()
		return fmt.Errorf("recall: %w", err)
	}
	aLeg := c.a
	srv := &serverSide{ep: ep, bye: make(chan struct{}), confirmed: true}
	c.mu.Lock()
	c.srv, c.eps = srv, []*endpoint.Endpoint{ep}
	c.mu.Unlock()
	b.ackAnswer(aLeg, relA, nil, nil) // the offer was ours, the answer in the 200
	if err := ep.Accept(relA.res.Body()); err != nil {
		b.hangup(c)
		return fmt.Errorf("recall: %s answered without usable media: %w", caller, err)
	}
	ep.Start()

	// Step 2: the alert, then where to connect.
	locale := b.locale(caller)
	if b.AlertSound != nil {
		if s := b.AlertSound(); len(s) > 0 && !b.hear(srv, media.NewSamples(s, false)) {
			b.end(c)
			return errors.New("recall: the caller hung up")
		}
	}
	to := ""
	if b.RecallAnswered != nil {
		to = b.RecallAnswered(id, caller)
	}
	if to == "" {
		b.hear(srv, b.prompt(locale, media.PromptNotPossible, 1))
		b.hangup(c)
		return fmt.Errorf("recall: request %d is gone", id)
	}
	if !b.hear(srv, b.prompt(locale, media.PromptConnecting, 1)) {
		b.end(c)
		return errors.New("recall: the caller hung up")
	}
	c.mu.Lock()
	c.callee = to
	c.mu.Unlock()
	return b.recallConnect(c, srv, callerLine.Name, to)
}

// hear plays src to A and waits for its end; false when A hung up.
func (b *B2BUA) hear(srv *serverSide, src media.Source) bool {
	select {
	case <-srv.ep.Play(src):
		return true
	case <-srv.bye:
		return false
	}
}

// recallConnect is steps 3 and 4 of Recall: call to and relay, or offer a
// new call back when to is not available.
func (b *B2BUA) recallConnect(c *call, srv *serverSide, callerName, to string) error {
	locale := b.locale(c.caller)
	code, reason, why := 0, "", FailOther
	devices, free := b.reg.Bindings(to), true
	if t, ok := b.remoteCallee(to); ok {
		devices = []Binding{trunkDevice(t, to)} // B6: through its trunk
	} else {
		_, free = b.lines.Offer(to, c.id)
	}
	switch {
	case len(devices) == 0:
		code, reason, why = 480, "Temporarily Unavailable", FailUnregistered
		b.lines.Ended(to, c.id)
	case !free:
		code, reason, why = 486, "Busy Here", FailBusy
	default:
		err := b.recallRing(c, srv, callerName, to, devices, locale)
		var f *failed
		switch {
		case err == nil:
			return nil
		case errors.Is(err, errHungUp):
			b.end(c)
			return err
		case errors.As(err, &f):
			code, reason, why = f.code, f.reason, f.why
		default:
			b.hangup(c)
			return err
		}
	}

	// B is not available after all. The request ended when A answered
	// the recall; A is offered a new one on the spot (retention by
	// asking again rather than silently re-queueing: A knows, and
	// decides, as after any failed call).
	b.log.Info("recall: callee not available", "caller", c.caller, "callee", to, "code", code)
	res := Result{Caller: c.caller, Callee: to, Code: code, Outcome: why, At: time.Now()}
	var offer Offer
	if b.OfferCallBack != nil && why != FailOther {
		offer = b.OfferCallBack(res)
	} else {
		b.result(res)
	}
	if offer != (Offer{}) {
		b.offerKeys(c, srv.ep, offer, srv.bye, nil)
	} else {
		b.hear(srv, endpoint.Tone(locale, media.ToneBusy, 5*time.Second))
	}
	b.hangup(c)
	return fmt.Errorf("recall: %s: %d %s", to, code, reason)
}

// errHungUp: A hung up during the recall.
var errHungUp = errors.New("recall: the caller hung up")

// recallRing rings B's devices with the server's offer while A hears
// ringback, and on B's answer relays the media between them.
func (b *B2BUA) recallRing(c *call, srv *serverSide, callerName, to string, devices []Binding, locale string) error {
	epA := srv.ep
	epB, err := b.newEndpoint(to)
	if err != nil {
		b.lines.Ended(to, c.id)
		return err
	}
	epB.OnlyCodec(epA.Codec()) // no transcoding in the relay
	c.mu.Lock()
	c.eps = append(c.eps, epB)
	c.mu.Unlock()
	epA.Play(endpoint.Tone(locale, media.ToneRingback, b.cfg.NoAnswerTimeout+5*time.Second))

	inv := emptyInvite()
	inv.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	inv.SetBody(epB.Offer())
	fb, f := b.ringDevices(c, inv, callerName, devices, b.cfg.NoAnswerTimeout, srv.bye)
	switch {
	case f != nil:
		b.lines.Ended(to, c.id)
		return f
	case fb.f == nil:
		return errHungUp // the ringing stopped when A hung up; it ended the call
	}
	b.joinCallee(c, fb)
	c.mu.Lock()
	c.srv = nil
	c.mu.Unlock()
	if err := epB.Accept(fb.res.Body()); err != nil {
		b.hangup(c)
		return fmt.Errorf("recall: %s answered without usable media: %w", to, err)
	}
	select {
	case <-srv.bye: // A left while B answered
		b.hangup(c)
		return errHungUp
	default:
	}
	b.lines.Answered(to, c.id)
	epA.Stop()
	rl := endpoint.StartRelay(epA, epB)
	c.mu.Lock()
	c.relay = rl
	c.mu.Unlock()
	b.save(c)
	b.result(Result{Caller: c.caller, Callee: to, Code: 200, Outcome: Answered, At: time.Now()})
	b.log.Info("recall connected", "caller", c.caller, "callee", to, "call", c.id)
	return nil
}
