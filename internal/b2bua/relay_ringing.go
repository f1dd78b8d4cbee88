package b2bua

import (
	"context"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/callbackd/callbackd/internal/callcompletion"
	"github.com/callbackd/callbackd/internal/registrar"
	"github.com/callbackd/callbackd/internal/sipmsg"
)

// noBuild passes a request we built completely to the transaction layer as is.
func noBuild(*sipgoClient, *sip.Request) error { return nil }

// fork is the INVITE to one device of the called line.
type fork struct {
	leg    *leg
	invite *sip.Request
	tx     sip.ClientTransaction
	cancel chan struct{} // closed: this fork lost (another answered, A cancelled, timeout)
	done   bool
}

type forkResponse struct {
	f   *fork
	res *sip.Response // nil when the transaction failed
}

// ringing is the setup phase of one call, run by the goroutine that holds
// A's INVITE transaction until it has a final response.
type ringing struct {
	b          *B2BUA
	c          *call
	req        *sip.Request          // the INVITE being forked: its body and Max-Forwards go to each device
	tx         sip.ServerTransaction // its transaction; nil when the server itself calls (phone_ring.go)
	callerName string
	responses  chan forkResponse
	forks      []*fork
	finished   chan struct{}

	// Set when the server itself places the call (tx nil): how long the
	// devices ring, headers every fork gets, and what to do with the
	// first answer or the failure instead of answering tx.
	timeout  time.Duration
	extra    []sip.Header
	onAnswer func(f *fork, res *sip.Response)
	onFail   func(code int, reason string, why Outcome)
	abort    <-chan struct{} // closed: stop ringing (the caller hung up), neither hook is called
	// divert, when set, is asked once when the devices rang too long: the
	// devices of the line the call is forwarded to on no answer (F20).
	divert func() ([]registrar.Binding, bool)
}

func (r *ringing) run(devices []registrar.Binding, started time.Time) {
	b, c := r.b, r.c
	r.finished = make(chan struct{})
	defer close(r.finished)

	canceled := r.abort
	if r.tx != nil {
		ch := make(chan struct{})
		if !r.tx.OnCancel(func(*sip.Request) { close(ch) }) {
			b.end(c)
			return
		}
		canceled = ch
	}
	for _, d := range devices {
		if f := r.fork(d); f != nil {
			r.forks = append(r.forks, f)
			go r.watch(f)
		}
	}
	if len(r.forks) == 0 {
		r.fail(480, "Temporarily Unavailable", FailUnregistered, started)
		return
	}
	timeout := b.cfg.NoAnswerTimeout
	if r.timeout > 0 {
		timeout = r.timeout
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()

	pending := len(r.forks)
	best := 0 // best final failure so far (RFC 3261 16.7 step 6)
	bestReason := ""
	for pending > 0 {
		select {
		case fr := <-r.responses:
			if fr.res == nil { // device unreachable
				fr.f.done = true
				pending--
				if best == 0 {
					best, bestReason = 480, "Temporarily Unavailable"
				}
				continue
			}
			code := fr.res.StatusCode
			switch {
			case code == 100:
			case code < 200:
				r.relayProvisional(fr.res)
			case code < 300:
				fr.f.done = true
				r.answer(fr.f, fr.res)
				return
			default:
				fr.f.done = true
				pending--
				if better(code, best) {
					best, bestReason = code, fr.res.Reason
					r.keepCallInfo(fr.res)
				}
			}
		case <-canceled:
			// The transaction already answered 487 (RFC 3261 9.2).
			b.log.Debug("call cancelled by caller", "call", c.id)
			r.cancelForks()
			b.end(c)
			return
		case <-timer.C:
			r.cancelForks()
			if r.divert != nil {
				devices, ok := r.divert()
				r.divert = nil
				if ok {
					pending, best, bestReason = 0, 0, ""
					for _, d := range devices {
						if f := r.fork(d); f != nil {
							r.forks = append(r.forks, f)
							pending++
							go r.watch(f)
						}
					}
					if pending > 0 {
						r.forwarded()
						timer.Reset(timeout)
						continue
					}
				}
			}
			r.fail(480, "No Answer", FailNoAnswer, started)
			return
		}
	}
	why := FailOther
	switch best {
	case 486, 600:
		why = FailBusy
		best, bestReason = 486, "Busy Here"
	}
	if m := r.callInfoService(); m != "" { // the trunk says why (RFC 6910 s7.1)
		why = map[callcompletion.Service]Outcome{callcompletion.BS: FailBusy, callcompletion.NR: FailNoAnswer, callcompletion.NL: FailUnregistered}[m]
	}
	r.fail(best, bestReason, why, started)
}

// keepCallInfo keeps the Call-Info of a trunk's failure response to a
// call to one of its numbers: the cc-URI of its call completion.
func (r *ringing) keepCallInfo(res *sip.Response) {
	c := r.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.outTrunk == "" {
		return
	}
	c.outCallInfo = ""
	for _, h := range res.GetHeaders("Call-Info") {
		if _, ok, err := callcompletion.ParseCallInfo(h.Value()); ok && err == nil {
			c.outCallInfo = h.Value()
		}
	}
}

// callInfoService is the m of the kept Call-Info, or "".
func (r *ringing) callInfoService() callcompletion.Service {
	r.c.mu.Lock()
	v := r.c.outCallInfo
	r.c.mu.Unlock()
	ci, _, _ := callcompletion.ParseCallInfo(v)
	return ci.M
}

// better reports whether final response code a is a better answer for the
// caller than b (0 = none yet): 6xx first, then busy (the answer Call Back
// acts on), then the lowest class.
func better(a, b int) bool {
	switch {
	case b == 0:
		return true
	case a >= 600 || b >= 600:
		return a >= 600 && b < 600
	case a == 486 || b == 486:
		return a == 486 && b != 486
	default:
		return a/100 < b/100
	}
}

func (r *ringing) fail(code int, reason string, why Outcome, started time.Time) {
	b, c := r.b, r.c
	if r.onFail != nil {
		r.onFail(code, reason, why)
		return
	}
	if b.offerable(r.req, why) {
		b.announceOffer(r.req, r.tx, c, code, reason, why, started)
		return
	}
	res := sip.NewResponseFromRequest(r.req, code, reason, nil)
	res.To().Params.Add("tag", c.a.LocalTag) // the tag of our 18x (RFC 3261 8.2.6.2)
	for _, h := range b.callInfoOf(c, why) {
		res.AppendHeader(h)
	}
	if err := r.tx.Respond(res); err != nil {
		b.log.Debug("respond failed", "code", code, "error", err)
	}
	b.end(c)
	b.result(c.result(code, why, started))
}

func (r *ringing) cancelForks() {
	for _, f := range r.forks {
		if !f.done {
			close(f.cancel)
			f.done = true
		}
	}
}

// fork sends the INVITE to one device (RFC 3261 16.6 for what a forking
// element copies; here a new dialog, as a B2BUA does).
func (r *ringing) fork(d registrar.Binding) *fork {
	b, c := r.b, r.c
	dlg, err := sipmsg.NewDialog(sip.Uri{Scheme: "sip", User: c.caller, Host: b.cfg.Domain}, r.callerName,
		sip.Uri{Scheme: "sip", User: c.callee, Host: b.cfg.Domain}, d.Contact, d.Source, d.Transport)
	if err != nil {
		b.log.Warn("bad stored contact", "dn", d.DN, "contact", d.Contact, "error", err)
		return nil
	}
	l := &leg{Dialog: dlg, call: c, name: "B"}
	inv := b.request(l, sip.INVITE, 1)
	if mf := r.req.MaxForwards(); mf != nil {
		h := sip.MaxForwardsHeader(mf.Val() - 1)
		inv.ReplaceHeader(&h)
	}
	inv.AppendHeader(sip.NewHeader("Allow", allow))
	for _, h := range r.extra {
		inv.AppendHeader(sip.HeaderClone(h))
	}
	if b.cfg.UserAgent != "" {
		inv.AppendHeader(sip.NewHeader("User-Agent", b.cfg.UserAgent))
	}
	sipmsg.CopyBody(r.req, inv)
	l.sent(inv)
	tx, err := b.client.TransactionRequest(context.Background(), inv, noBuild)
	if err != nil {
		b.log.Info("cannot reach device", "dn", d.DN, "contact", d.Contact, "error", err)
		return nil
	}
	return &fork{leg: l, invite: inv, tx: tx, cancel: make(chan struct{})}
}

// watch reads one fork's responses. Once the fork has lost (cancel closed)
// it cleans up on its own: CANCEL after the first provisional response (9.1:
// not before), and ACK plus BYE for a 2xx that crossed our CANCEL.
func (r *ringing) watch(f *fork) {
	b := r.b
	cancel := f.cancel
	lost, provisional, cancelSent, warned := false, false, false, false
	sendCancel := func() {
		if provisional && !cancelSent {
			cancelSent = true
			go b.fireAndForget(sipmsg.Cancel(f.invite))
		}
	}
	for {
		select {
		case <-cancel:
			cancel, lost = nil, true
			sendCancel()
		case <-f.tx.Done():
			if !lost {
				select {
				case r.responses <- forkResponse{f: f}:
				case <-cancel:
				case <-r.finished:
				}
			}
			return
		case res := <-f.tx.Responses():
			if res = b.screen(f, res, &warned); res == nil {
				continue
			}
			if res.StatusCode < 200 {
				provisional = true
			}
			if !lost {
				// responses is unbuffered: once the setup is over nobody
				// takes it, and the answer is handled as lost below.
				select {
				case r.responses <- forkResponse{f: f, res: res}:
					if res.StatusCode >= 200 {
						return
					}
					continue
				case <-cancel:
					cancel, lost = nil, true
				case <-r.finished:
					lost = true
				}
			}
			// This fork lost.
			switch {
			case res.StatusCode < 200:
				sendCancel()
			case res.StatusCode < 300:
				b.dropAnswer(f, res)
				return
			default:
				return
			}
		}
	}
}

// screen checks a device's response to our INVITE before the call acts on
// it; a device's mistake must not reach the caller (the server relays
// nothing it would not send itself). It returns the response to act on:
// res, nil to ignore it, or a 502 Bad Gateway in its place. A bad response
// is logged once per device (warned), not once per datagram.
//
//   - A status below 100 is none (RFC 3261 7.2 and 21: codes are 100-699):
//     ignored, as if lost; the transaction goes on to a valid answer or
//     its timeout.
//   - Above 699 there is no class to read it as (8.1.3.2 maps an unknown
//     code to the x00 of its class, and 7xx has none): an invalid final
//     response, which the server, acting as a gateway for the caller,
//     reports as 502 Bad Gateway (21.5.3: "received an invalid response
//     from the downstream server"). Not 500, which would say the server
//     itself failed.
//   - A 2xx without a To tag establishes no dialog (12.1.2: the remote
//     tag is the To tag; 8.2.6.2: a UAS must add one): it could not be
//     ACKed or hung up in a dialog, so the call is not connected to it.
//     It counts as a 502 for that device (the others ring on); the device,
//     without an ACK, gives up after 64*T1 (13.3.1.4) and its BYE gets
//     481.
func (b *B2BUA) screen(f *fork, res *sip.Response, warned *bool) *sip.Response {
	var why string
	switch code := res.StatusCode; {
	case code < 100:
		why = "status code below 100"
	case code > 699:
		why = "status code above 699"
	case code >= 200 && code < 300 && (res.To() == nil || tagOf(res.To().Params) == ""):
		why = "2xx without a To tag"
	default:
		return res
	}
	if !*warned {
		*warned = true
		b.log.Warn("invalid response from a device", "call_id", f.leg.CallID, "device", f.leg.Target.String(),
			"status", res.StatusCode, "reason", res.Reason, "problem", why)
	}
	if res.StatusCode < 100 {
		return nil
	}
	return sip.NewResponseFromRequest(f.invite, 502, "Bad Gateway", nil)
}

// dropAnswer ends a device's answer that came too late (another device
// answered first, or the caller hung up): ACK it, then BYE (RFC 3261 15).
func (b *B2BUA) dropAnswer(f *fork, res *sip.Response) {
	l := f.leg
	l.confirm(res)
	ack := b.ack(l, f.invite, nil, nil)
	if err := b.client.WriteRequest(ack, noBuild); err != nil {
		b.log.Debug("ack late answer", "error", err)
	}
	go b.fireAndForget(b.request(l, sip.BYE, l.CSeq.Add(1)))
}

// fireAndForget sends a non-INVITE request and waits for its final response
// only to end the transaction; the outcome changes nothing for us.
func (b *B2BUA) fireAndForget(req *sip.Request) {
	ctx, cancel := context.WithTimeout(context.Background(), 64*sip.T1)
	defer cancel()
	res, err := b.client.Do(ctx, req, noBuild)
	switch {
	case err != nil:
		b.log.Debug("request failed", "method", req.Method, "error", err)
	case res == nil: // sipgo's Do returns neither when the transaction ends with no error and no final response (terminated under it)
		b.log.Debug("request ended without a response", "method", req.Method)
	case res.StatusCode >= 300:
		b.log.Debug("request refused", "method", req.Method, "code", res.StatusCode)
	}
}

// forwarded tells A that the call is forwarded: 181 Call Is Being
// Forwarded (RFC 3261 21.1.3).
func (r *ringing) forwarded() {
	if r.tx == nil {
		return
	}
	res := sip.NewResponseFromRequest(r.req, 181, "Call Is Being Forwarded", nil)
	res.To().Params.Add("tag", r.c.a.LocalTag)
	if err := r.tx.Respond(res); err != nil {
		r.b.log.Debug("respond 181", "error", err)
	}
}

// relayProvisional passes 180/183 to A, with the early media SDP if any.
func (r *ringing) relayProvisional(in *sip.Response) {
	b, c := r.b, r.c
	if r.tx == nil {
		return
	}
	res := sip.NewResponseFromRequest(r.req, in.StatusCode, in.Reason, nil)
	res.To().Params.Add("tag", c.a.LocalTag)
	res.AppendHeader(b.msg.Contact(c.callee, c.a.Transport))
	if in.StatusCode == 180 { // ringing: call completion on no reply (RFC 6910 s7.1)
		for _, h := range b.callInfoOf(c, FailNoAnswer) {
			res.AppendHeader(h)
		}
	}
	sipmsg.CopyBody(in, res)
	if err := r.tx.Respond(res); err != nil {
		b.log.Debug("relay provisional", "error", err)
	}
}

// answer connects A to the device that answered.
func (r *ringing) answer(f *fork, in *sip.Response) {
	b, c := r.b, r.c
	r.cancelForks()
	if r.onAnswer != nil {
		r.onAnswer(f, in)
		return
	}
	l := f.leg
	l.confirm(in)
	rel := &relayed{invite: f.invite, res: in, stop: make(chan struct{})}
	c.mu.Lock()
	c.b = l
	c.a.pendingAck = rel
	c.mu.Unlock()
	b.addLeg(l)
	b.lines.Answered(c.callee, c.id)
	if c.trunk == "" {
		b.lines.Answered(c.caller, c.id) // its dialog is confirmed too (RFC 4235)
	}
	b.save(c)
	b.result(c.result(200, Answered, time.Now()))

	res := sip.NewResponseFromRequest(r.req, 200, "OK", nil)
	res.To().Params.Add("tag", c.a.LocalTag)
	res.AppendHeader(b.msg.Contact(c.callee, c.a.Transport))
	res.AppendHeader(sip.NewHeader("Allow", allow))
	sipmsg.CopyBody(in, res)
	c.a.sent(res)
	if err := r.tx.Respond(res); err != nil {
		b.log.Info("answer to caller failed", "call", c.id, "error", err)
		b.hangup(c)
		return
	}
	go b.awaitAck(c, r.tx, res, rel.stop, sip.IsReliable(c.a.Transport))
}
