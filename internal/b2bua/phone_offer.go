package b2bua

import (
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/callbackd/callbackd/internal/media"
	"github.com/callbackd/callbackd/internal/media/endpoint"
)

// The Call Back offer (F28, UCware): a caller whose call fails because the
// callee is busy or logged out hears, as early media (183 Session Progress,
// RFC 3261 13.3.1.1 and RFC 3960), an announcement in their locale, "...
// is busy. Press 5 to be called back." Pressing 5 (RFC 4733, or SIP INFO
// application/dtmf-relay as a fallback) asks for the call back; a prompt
// confirms it. Then the call fails as it would have without the offer (486
// or 480), so the phone shows why. CC_BUSY_TONE plays the busy tone
// instead of the announcement; 5 still works. No answer (CCNR) gets no
// announcement: as in UCware it is asked for after hanging up (*39).

// offerTone bounds the busy tone of CC_BUSY_TONE, and maxOffer the whole
// offer: a caller who neither presses nor hangs up is not held forever.
const (
	offerTone = 20 * time.Second
	maxOffer  = 2 * time.Minute
)

// serverSide is the server standing as A's other party.
type serverSide struct {
	ep        *endpoint.Endpoint
	bye       chan struct{} // closed when A hangs up
	once      sync.Once
	confirmed bool // the dialog with A is confirmed (the recall); false: early (the offer)
}

func (s *serverSide) hungUp() { s.once.Do(func() { close(s.bye) }) }

// offerable reports whether a failed call gets the offer: the outcome is
// one the announcement speaks of, and the caller offered media.
func (b *B2BUA) offerable(req *sip.Request, why Outcome) bool {
	return b.OfferCallBack != nil && (why == FailBusy || why == FailDND || why == FailUnregistered) && len(req.Body()) > 0
}

// announceOffer ends a failed call of c with the offer when Call Back
// offers it, else with the failure at once. It reports the failure
// (OfferCallBack) and ends c; it returns when the caller's INVITE has its
// final response.
func (b *B2BUA) announceOffer(req *sip.Request, tx sip.ServerTransaction, c *call, code int, reason string, why Outcome, started time.Time) {
	final := func() {
		res := sip.NewResponseFromRequest(req, code, reason, nil)
		res.To().Params.Add("tag", c.a.LocalTag) // the tag of our 18x (RFC 3261 8.2.6.2)
		for _, h := range b.callInfoOf(c, why) {
			res.AppendHeader(h)
		}
		if err := tx.Respond(res); err != nil {
			b.log.Debug("respond failed", "code", code, "error", err)
		}
		b.end(c)
	}
	offer := b.OfferCallBack(c.result(code, why, started))
	if offer == (Offer{}) {
		final()
		return
	}
	ep, err := b.newEndpoint(c.caller)
	if err != nil {
		b.log.Warn("call back offer without media", "caller", c.caller, "error", err)
		final()
		return
	}
	answer, err := ep.Answer(req.Body())
	if err != nil {
		// No common codec (RFC 3264 6): the offer is skipped, not the
		// failure turned into 488; *39 still asks for the call back.
		b.log.Info("call back offer not announced: caller's SDP unusable", "caller", c.caller, "error", err)
		ep.Close()
		final()
		return
	}
	b.lines.Ended(c.callee, c.id) // B is not part of the offer
	srv := &serverSide{ep: ep, bye: make(chan struct{})}
	c.mu.Lock()
	c.srv = srv
	c.eps = append(c.eps, ep)
	c.mu.Unlock()

	canceled := make(chan struct{})
	if !tx.OnCancel(func(*sip.Request) { close(canceled) }) {
		b.end(c)
		return
	}
	res := sip.NewResponseFromRequest(req, 183, "Session Progress", nil)
	res.To().Params.Add("tag", c.a.LocalTag)
	res.AppendHeader(b.msg.Contact(c.callee, c.a.Transport))
	for _, h := range b.callInfoOf(c, why) { // RFC 6910 s7.1: in a provisional too
		res.AppendHeader(h)
	}
	res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	res.SetBody(answer)
	if err := tx.Respond(res); err != nil {
		b.log.Debug("respond 183", "error", err)
		b.end(c)
		return
	}
	ep.Start()
	b.log.Info("call back offered", "caller", c.caller, "callee", c.callee, "outcome", why, "busy_tone", offer.BusyTone)
	if !b.offerKeys(c, ep, offer, canceled, tx.Done()) {
		b.end(c) // CANCEL: the transaction answered 487 (RFC 3261 9.2)
		return
	}
	final()
}

// offerKeys plays the offer to c's caller on ep and waits for 5, the end of
// the offer, or the caller leaving (either of gone). It reports whether the
// caller is still there.
func (b *B2BUA) offerKeys(c *call, ep *endpoint.Endpoint, offer Offer, gone1, gone2 <-chan struct{}) bool {
	locale := b.locale(c.caller)
	var src media.Source
	if offer.BusyTone {
		src = endpoint.Tone(locale, media.ToneBusy, offerTone)
	} else {
		src = b.prompt(locale, offer.Prompt, 2)
	}
	done := ep.Play(src)
	limit := time.NewTimer(maxOffer)
	defer limit.Stop()
	pressed := false
	for {
		select {
		case d := <-ep.Digits():
			if d != '5' || pressed || b.OfferKey == nil {
				continue
			}
			pressed = true
			name := b.OfferKey(c.caller)
			b.log.Info("call back asked by key", "caller", c.caller, "callee", c.callee, "prompt", name)
			done = ep.Play(b.prompt(locale, name, 1))
		case <-done:
			return true
		case <-limit.C:
			return true
		case <-gone1:
			return false
		case <-gone2:
			return false
		}
	}
}

// prompt plays a prompt n times with a second of silence between, or a
// second of silence when it is missing.
func (b *B2BUA) prompt(locale, name string, n int) media.Source {
	p, err := media.Prompt(locale, name)
	if err != nil {
		b.log.Error("prompt missing", "locale", locale, "prompt", name, "error", err)
		return media.Silence(50)
	}
	var srcs []media.Source
	for i := range n {
		if i > 0 {
			srcs = append(srcs, media.Silence(50))
		}
		srcs = append(srcs, media.NewSamples(p, false))
	}
	return media.Sequence(srcs...)
}

func (b *B2BUA) locale(dn string) string {
	if l, ok := b.dir.Line(dn); ok && l.Locale != "" {
		return l.Locale
	}
	return media.DefaultLocale
}

// serverLeg answers a request on a leg whose other party is the server
// itself (c.srv): BYE ends it, INFO carries a key press (the fallback for
// phones without RFC 4733, "application/dtmf-relay"), a re-INVITE is a new
// offer the server answers itself; anything else is refused, as the server
// has no other party to pass it to.
func (b *B2BUA) serverLeg(l *leg, srv *serverSide, req *sip.Request, tx sip.ServerTransaction) {
	switch req.Method {
	case sip.BYE:
		b.respond(tx, req, 200, "OK")
		srv.hungUp()
	case sip.INFO:
		ct := ""
		if h := req.ContentType(); h != nil {
			ct = h.Value()
		}
		d, err := media.ParseINFO(ct, req.Body())
		if err != nil {
			b.respond(tx, req, 415, "Unsupported Media Type", sip.NewHeader("Accept", "application/dtmf-relay, application/dtmf"))
			return
		}
		b.respond(tx, req, 200, "OK")
		srv.ep.Key(d.Digit)
	case sip.INVITE:
		b.reoffer(l, srv, req, tx)
	default:
		b.respond(tx, req, 405, "Method Not Allowed", sip.NewHeader("Allow", allow))
	}
}

// reoffer answers a re-INVITE from A while the server is A's only party
// (the recall before B answers): its offer is answered by the server's
// media (RFC 3264 section 8), or refused with 488 and the session kept
// when no codec is common (RFC 3261 14.2, 21.4.26; Warning 305, 20.43).
// In the offer's early dialog there is no re-INVITE (14.1: the first
// INVITE has no final answer yet): 500 with Retry-After.
func (b *B2BUA) reoffer(l *leg, srv *serverSide, req *sip.Request, tx sip.ServerTransaction) {
	c := l.call
	if !srv.confirmed {
		b.respond(tx, req, 500, "Server Internal Error", sip.NewHeader("Retry-After", "5"))
		return
	}
	if !c.startReinvite() {
		b.respond(tx, req, 491, "Request Pending") // 14.2: glare
		return
	}
	defer c.endReinvite()
	answer, err := srv.ep.Renegotiate(req.Body())
	if err != nil {
		b.log.Info("re-INVITE refused", "call", c.id, "error", err)
		b.respond(tx, req, 488, "Not Acceptable Here", sip.NewHeader("Warning", `305 callbackd "Incompatible media format"`))
		return
	}
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	res.AppendHeader(b.msg.Contact(l.Local.User, l.Transport))
	res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	res.SetBody(answer)
	stop := make(chan struct{})
	c.mu.Lock()
	l.pendingAck = &relayed{res: res, stop: stop, cseq: req.CSeq().SeqNo}
	c.mu.Unlock()
	if err := tx.Respond(res); err != nil {
		b.log.Debug("answer re-INVITE", "error", err)
	}
	go b.awaitAck(c, tx, res, stop, sip.IsReliable(l.Transport))
}
