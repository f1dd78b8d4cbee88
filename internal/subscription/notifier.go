package subscription

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/callbackd/callbackd/internal/sipmsg"
)

// subscribed answers a new SUBSCRIBE (RFC 6665 4.2.1).
func (l *Layer) subscribed(req *sip.Request, tx sip.ServerTransaction) {
	ev, present := headerValue(req, "Event")
	event, eventID := eventType(ev)
	l.mu.Lock()
	pkg := l.pkgs[event]
	l.mu.Unlock()
	if !present || pkg == nil {
		// 8.2.2 / 4.2.1.1: 489 lists the packages we serve.
		l.respond(tx, req, 489, "Bad Event", sip.NewHeader("Allow-Events", strings.Join(l.Events(), ", ")))
		return
	}
	contact := req.Contact()
	if contact == nil {
		l.respond(tx, req, 400, "Bad Request (missing Contact)") // 4.1.2.1: a SUBSCRIBE carries one
		return
	}
	period, ok := l.grant(req, tx)
	if !ok {
		return
	}
	g, ok := pkg.Authorize(req, tx)
	if !ok {
		return
	}
	if g.Owner != "" && period > 0 && l.Limits.PerOwner > 0 && l.ownedBy(g.Owner) >= l.Limits.PerOwner {
		l.Log.Debug("subscription refused: too many for its owner", "owner", g.Owner, "limit", l.Limits.PerOwner)
		l.respond(tx, req, 403, "Forbidden (too many subscriptions)")
		return
	}
	fromTag, _ := req.From().Params.Get("tag")
	r := record{
		ID: newID(), Role: roleNotifier, Event: event, EventID: eventID, Resource: g.Resource, Data: g.Data,
		CallID: req.CallID().Value(), LocalTag: sip.GenerateTagN(16), RemoteTag: fromTag,
		Local: req.To().Address.String(), Remote: req.From().Address.String(), Target: contact.Address.String(),
		Dest: req.Source(), Transport: strings.ToUpper(req.Transport()), RemoteCSeq: req.CSeq().SeqNo,
		Expires: time.Now().Add(period), Owner: g.Owner,
	}
	for _, h := range req.GetHeaders("Record-Route") { // 12.1.1: the UAS keeps their order
		r.Routes = append(r.Routes, h.Value())
	}
	if period == 0 {
		// A fetch (4.2.1.1 / 4.4.3): the state once, no subscription.
		s := &sub{rec: r, ended: true, fetch: true}
		l.accept(tx, req, &r, 0)
		l.spawn(func() { l.send(s, job{terminate: "timeout"}) })
		return
	}
	// Nothing lost: stored before it is confirmed.
	if err := l.persist(&r); err != nil {
		l.Log.Error("subscription not stored: refused", "event", event, "error", err)
		l.respond(tx, req, 500, "Server Internal Error")
		return
	}
	s := &sub{rec: r}
	l.add(s)
	l.accept(tx, req, &r, period)
	s.mu.Lock()
	l.armExpiry(s)
	s.mu.Unlock()
	l.Log.Info("subscription accepted", "id", r.ID, "event", event, "resource", r.Resource, "from", r.Remote, "expires", int(period/time.Second))
	l.enqueue(s, job{}) // 4.2.1.2: a NOTIFY at once, with the full state
}

// grant reads the Expires asked and bounds it (4.2.1.1): below the
// minimum 423 with Min-Expires, above the maximum lowered; 0 stays 0.
func (l *Layer) grant(req *sip.Request, tx sip.ServerTransaction) (time.Duration, bool) {
	secs, present, ok := expiresOf(req)
	switch {
	case !ok:
		l.respond(tx, req, 400, "Bad Request (Expires)")
		return 0, false
	case !present:
		return l.Limits.Default, true
	case secs == 0:
		return 0, true
	}
	d := time.Duration(secs) * time.Second
	if d < l.Limits.Min {
		l.respond(tx, req, 423, "Interval Too Brief", sip.NewHeader("Min-Expires", strconv.Itoa(int(l.Limits.Min/time.Second))))
		return 0, false
	}
	return min(d, l.Limits.Max), true
}

// accept answers 200 with the dialog's To tag, our Contact and the
// granted Expires.
func (l *Layer) accept(tx sip.ServerTransaction, req *sip.Request, r *record, period time.Duration) {
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	if to := res.To(); to != nil {
		to.Params.Add("tag", r.LocalTag) // replaces the one sipgo makes up
	}
	res.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(int(period/time.Second))))
	res.AppendHeader(l.contact(r))
	if err := tx.Respond(res); err != nil {
		l.Log.Debug("respond failed", "code", 200, "error", err)
	}
}

func (l *Layer) contact(r *record) *sip.ContactHeader {
	var u sip.Uri
	sip.ParseUri(r.Local, &u)
	return l.msg.Contact(u.User, r.Transport)
}

// refreshed answers a SUBSCRIBE in a dialog: a refresh, or Expires 0 to
// end it (4.2.1.2), each followed by a NOTIFY.
func (l *Layer) refreshed(req *sip.Request, tx sip.ServerTransaction) {
	s := l.find(req)
	if s == nil {
		l.respond(tx, req, 481, "Subscription Does Not Exist") // 4.2.1.2 / RFC 3261 12.2.2
		return
	}
	s.mu.Lock()
	if s.rec.Role != roleNotifier || s.ended {
		s.mu.Unlock()
		l.respond(tx, req, 481, "Subscription Does Not Exist")
		return
	}
	ev, _ := headerValue(req, "Event")
	if event, id := eventType(ev); event != s.rec.Event || id != s.rec.EventID {
		s.mu.Unlock()
		l.respond(tx, req, 489, "Bad Event", sip.NewHeader("Allow-Events", s.rec.Event))
		return
	}
	if cseq := req.CSeq().SeqNo; cseq <= s.rec.RemoteCSeq {
		s.mu.Unlock()
		l.respond(tx, req, 500, "Server Internal Error (CSeq out of order)") // RFC 3261 12.2.2
		return
	}
	s.mu.Unlock()
	period, ok := l.grant(req, tx)
	if !ok {
		return
	}
	s.mu.Lock()
	s.rec.RemoteCSeq = req.CSeq().SeqNo
	if c := req.Contact(); c != nil {
		s.rec.Target = c.Address.String() // RFC 3261 12.2.2: a target refresh
	}
	r := s.rec
	if period == 0 {
		s.mu.Unlock()
		l.accept(tx, req, &r, 0)
		l.Log.Info("subscription ended by the subscriber", "id", r.ID, "event", r.Event)
		l.enqueue(s, job{terminate: "timeout", why: "unsubscribed"}) // the final NOTIFY (4.2.1.2); no reason fits better
		return
	}
	s.rec.Expires = time.Now().Add(period)
	err := l.persist(&s.rec)
	if err == nil {
		l.armExpiry(s)
	}
	r = s.rec
	s.mu.Unlock()
	if err != nil {
		l.Log.Error("subscription refresh not stored: refused", "id", r.ID, "error", err)
		l.respond(tx, req, 500, "Server Internal Error")
		return
	}
	l.accept(tx, req, &r, period)
	l.enqueue(s, job{})
}

// armExpiry (s.mu held) ends the subscription at its Expires with
// terminated;reason=timeout (4.2.2).
func (l *Layer) armExpiry(s *sub) {
	if s.timer != nil {
		s.timer.Stop()
	}
	s.timer = time.AfterFunc(time.Until(s.rec.Expires), func() {
		s.mu.Lock()
		due := !time.Now().Before(s.rec.Expires)
		s.mu.Unlock()
		if due && !l.isClosed() {
			l.Log.Info("subscription expired", "id", s.rec.ID, "event", s.rec.Event)
			l.enqueue(s, job{terminate: "timeout"})
		}
	})
}

// Changed sends a NOTIFY to every subscription to resource of event: its
// body from partial, or the full state when partial is nil.
func (l *Layer) Changed(event, resource string, partial func(Info) (Body, bool)) {
	l.mu.Lock()
	var subs []*sub
	for _, s := range l.byID {
		if s.rec.Role == roleNotifier && s.rec.Event == event && s.rec.Resource == resource {
			subs = append(subs, s)
		}
	}
	l.mu.Unlock()
	for _, s := range subs {
		l.enqueue(s, job{partial: partial})
	}
}

// Notify sends a NOTIFY to one subscription (nil partial: full state).
// It reports false when there is no such subscription.
func (l *Layer) Notify(id string, partial func(Info) (Body, bool)) bool {
	s := l.byIDGet(id)
	if s == nil || s.rec.Role != roleNotifier {
		return false
	}
	return l.enqueue(s, job{partial: partial})
}

// End ends one subscription we serve with a final NOTIFY (full state,
// terminated with reason: "noresource", "rejected", "deactivated", ...).
func (l *Layer) End(id, reason string) bool {
	s := l.byIDGet(id)
	if s == nil || s.rec.Role != roleNotifier {
		return false
	}
	return l.enqueue(s, job{terminate: reason})
}

func (l *Layer) ownedBy(owner string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.owned[owner]
}

func (l *Layer) byIDGet(id string) *sub {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.byID[id]
}

// enqueue queues a NOTIFY; one goroutine per subscription sends them in
// order, each once the previous is answered. A queue that grows past
// maxQueue collapses into one full-state NOTIFY.
func (l *Layer) enqueue(s *sub, j job) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return false
	}
	if j.terminate != "" {
		s.ended = true
		if s.timer != nil {
			s.timer.Stop()
		}
	}
	if len(s.queue) >= maxQueue {
		s.queue = s.queue[:0]
		j.partial = nil
	}
	s.queue = append(s.queue, j)
	if !s.running {
		s.running = l.spawn(func() { l.drain(s) })
	}
	return true
}

func (l *Layer) drain(s *sub) {
	for {
		s.mu.Lock()
		if len(s.queue) == 0 {
			s.running = false
			s.mu.Unlock()
			return
		}
		j := s.queue[0]
		s.queue = s.queue[1:]
		s.mu.Unlock()
		if !l.send(s, j) {
			return
		}
	}
}

// send sends one NOTIFY and reports whether the subscription goes on.
// A NOTIFY answered 481, or not at all, ends it (4.2.2, 4.1.3).
func (l *Layer) send(s *sub, j job) bool {
	if !l.acting() {
		return false // stays stored: the active sends it
	}
	s.mu.Lock()
	info := s.rec.info()
	s.mu.Unlock()
	pkg := l.pkg(info.Event)
	var body Body
	if j.partial != nil {
		b, ok := j.partial(info)
		if !ok {
			return true
		}
		body = b
	} else if pkg != nil {
		body = pkg.State(info)
	}

	s.mu.Lock()
	s.rec.LocalCSeq++
	s.rec.Sent++
	state := "terminated;reason=" + j.terminate
	if j.terminate == "" {
		left := max(int(time.Until(s.rec.Expires)/time.Second), 0)
		state = "active;expires=" + strconv.Itoa(left)
	}
	req := l.request(&s.rec, sip.NOTIFY)
	final := j.terminate != ""
	stored := !final && !s.ended
	if stored {
		// The CSeq and version carry on after a restart. A write per
		// NOTIFY: the subscription's own goroutine waits, nobody else.
		if err := l.persist(&s.rec); err != nil {
			l.Log.Warn("subscription's CSeq not stored", "id", s.rec.ID, "error", err)
		}
	}
	s.mu.Unlock()
	req.AppendHeader(sip.NewHeader("Subscription-State", state))
	if body.Type != "" {
		req.AppendHeader(sip.NewHeader("Content-Type", body.Type))
	}
	req.SetBody(body.Data)

	if final {
		why := j.why
		if why == "" {
			why = j.terminate
		}
		l.finish(s, why)
	}
	ctx, cancel := context.WithTimeout(l.ctx, notifyTimeout)
	defer cancel()
	res, err := l.client.Do(ctx, req, noBuild)
	switch {
	case l.ctx.Err() != nil:
		return false // closing: the subscription stays stored for Restore
	case err != nil || res == nil:
		if !final {
			l.Log.Info("NOTIFY unanswered: subscription ended", "id", info.ID, "event", info.Event, "error", errString(err))
			l.endNow(s, "timeout")
		}
		return false
	case res.StatusCode == 481:
		if !final {
			l.Log.Info("NOTIFY answered 481: subscription ended", "id", info.ID, "event", info.Event)
			l.endNow(s, "gone")
		}
		return false
	case res.StatusCode >= 300:
		l.Log.Debug("NOTIFY refused", "id", info.ID, "code", res.StatusCode)
	}
	return !final
}

// endNow ends a subscription without a final NOTIFY (the subscriber is
// gone).
func (l *Layer) endNow(s *sub, reason string) {
	s.mu.Lock()
	s.ended = true
	s.queue = nil
	if s.timer != nil {
		s.timer.Stop()
	}
	s.mu.Unlock()
	l.finish(s, reason)
}

// finish forgets an ended subscription and tells its package.
func (l *Layer) finish(s *sub, reason string) {
	l.remove(s)
	if s.fetch {
		return // never stored, nobody to tell
	}
	l.forget(s.rec.ID)
	s.mu.Lock()
	info := s.rec.info()
	s.mu.Unlock()
	var e any
	if s.rec.Role == roleNotifier {
		e = l.pkg(info.Event)
	} else {
		e = l.watcher(info.Event)
	}
	if e, ok := e.(Ender); ok {
		e.Ended(info, reason)
	}
}

func (l *Layer) pkg(event string) Package {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.pkgs[event]
}

func (l *Layer) watcher(event string) Watcher {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.watchers[event]
}

// request builds a request in the subscription's dialog (RFC 3261
// 12.2.1.1) with the next local CSeq (already counted by the caller),
// its Event header and our Contact (RFC 6665 8.2.4: NOTIFY and SUBSCRIBE
// carry one).
func (l *Layer) request(r *record, method sip.RequestMethod) *sip.Request {
	d := &sipmsg.Dialog{CallID: r.CallID, LocalTag: r.LocalTag, RemoteTag: r.RemoteTag, Dest: r.Dest, Transport: r.Transport}
	sip.ParseUri(r.Local, &d.Local)
	sip.ParseUri(r.Remote, &d.Remote)
	if err := sip.ParseUri(r.Target, &d.Target); err != nil {
		d.Target = *d.Remote.Clone()
	}
	req := l.msg.Request(d, method, r.LocalCSeq)
	for _, rt := range r.Routes {
		req.AppendHeader(sip.NewHeader("Route", rt))
	}
	ev := r.Event
	if r.EventID != "" {
		ev += ";id=" + r.EventID
	}
	req.AppendHeader(sip.NewHeader("Event", ev))
	req.AppendHeader(l.contact(r))
	return req
}

func (l *Layer) respond(tx sip.ServerTransaction, req *sip.Request, code int, reason string, hdrs ...sip.Header) {
	sipmsg.Respond(tx, req, code, reason, l.Log, hdrs...)
}

type sipgoClient = sipgo.Client

func noBuild(*sipgoClient, *sip.Request) error { return nil }

func errString(err error) string {
	if err == nil {
		return "no response"
	}
	return err.Error()
}
