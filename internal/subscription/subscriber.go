package subscription

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/callbackd/callbackd/internal/auth"
)

// Subscribe makes a subscription (RFC 6665 4.1.2.1): stored, then the
// SUBSCRIBE sent. It returns the subscription's ID, which stays the same
// when the layer makes it again in a new dialog.
func (l *Layer) Subscribe(spec Spec) (string, error) {
	if l.watcher(spec.Event) == nil {
		return "", errors.New("subscription: no watcher registered for event " + spec.Event)
	}
	var target sip.Uri
	if err := sip.ParseUri(spec.Target, &target); err != nil {
		return "", err
	}
	r := record{
		ID: newID(), Role: roleSubscriber, Event: spec.Event, Resource: spec.Target, Data: spec.Data,
		Local: spec.From, Remote: spec.To, RequestURI: spec.Target, Dest: spec.Dest,
		Transport: strings.ToUpper(spec.Transport), Period: spec.Expires, Accept: spec.Accept,
	}
	if r.Transport == "" {
		r.Transport = "UDP"
	}
	if r.Period <= 0 {
		r.Period = l.Limits.Default
	}
	newDialog(&r)
	if err := l.persist(&r); err != nil {
		return "", err
	}
	s := &sub{rec: r}
	l.add(s)
	l.spawn(func() { l.sendSubscribe(s, false) })
	return r.ID, nil
}

// newDialog starts r afresh: a new Call-ID and tag, no remote tag yet.
func newDialog(r *record) {
	r.CallID = sip.GenerateTagN(24) + "@callbackd"
	r.LocalTag = sip.GenerateTagN(16)
	r.RemoteTag, r.Target, r.Routes = "", r.RequestURI, nil
	r.LocalCSeq, r.RemoteCSeq = 0, 0
}

// Unsubscribe ends a subscription we made: SUBSCRIBE with Expires 0 in
// its dialog (4.1.2.3). Its final NOTIFY is still answered 200.
func (l *Layer) Unsubscribe(id string) bool {
	s := l.byIDGet(id)
	if s == nil {
		return false
	}
	s.mu.Lock()
	if s.rec.Role != roleSubscriber || s.ended {
		s.mu.Unlock()
		return false
	}
	s.ended = true
	s.gen++
	if s.timer != nil {
		s.timer.Stop()
	}
	var req *sip.Request
	if s.rec.RemoteTag != "" {
		s.rec.LocalCSeq++
		req = l.request(&s.rec, sip.SUBSCRIBE)
		req.AppendHeader(sip.NewHeader("Expires", "0"))
	}
	info := s.rec.info()
	s.mu.Unlock()
	l.mu.Lock()
	delete(l.byID, id)
	l.mu.Unlock()
	l.forget(id)
	time.AfterFunc(notifyTimeout, func() { l.remove(s) }) // the final NOTIFY's window
	if req != nil {
		l.spawn(func() {
			ctx, cancel := context.WithTimeout(l.ctx, notifyTimeout)
			defer cancel()
			if res, err := l.do(ctx, s, req); err != nil || res == nil || res.StatusCode >= 300 {
				l.Log.Debug("unsubscribe not accepted", "id", id, "error", errString(err))
			}
		})
	}
	if w := l.watcher(info.Event); w != nil {
		w.Ended(info, "unsubscribed")
	}
	return true
}

// sendSubscribe sends the SUBSCRIBE of s: in its dialog (a refresh), or
// in a new one when fresh (4.1.2.2). Run on a goroutine of its own.
func (l *Layer) sendSubscribe(s *sub, fresh bool) {
	s.mu.Lock()
	if s.ended || l.isClosed() || !l.acting() {
		s.mu.Unlock()
		return
	}
	if fresh {
		l.remove(s)
		newDialog(&s.rec)
		l.add(s)
	}
	s.rec.LocalCSeq++
	req := l.request(&s.rec, sip.SUBSCRIBE)
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(int(s.rec.Period/time.Second))))
	if s.rec.Accept != "" {
		req.AppendHeader(sip.NewHeader("Accept", s.rec.Accept))
	}
	if err := l.persist(&s.rec); err != nil {
		l.Log.Warn("subscription not stored before its SUBSCRIBE", "id", s.rec.ID, "error", err)
	}
	id, inDialog, callID := s.rec.ID, s.rec.RemoteTag != "", s.rec.CallID
	s.mu.Unlock()

	ctx, cancel := context.WithTimeout(l.ctx, notifyTimeout)
	defer cancel()
	res, err := l.do(ctx, s, req)
	s.mu.Lock()
	stale := s.rec.CallID != callID || s.ended // a newer SUBSCRIBE made another dialog meanwhile
	s.mu.Unlock()
	switch {
	case l.ctx.Err() != nil || stale:
		return // closing: Restore sends it again
	case err != nil || res == nil:
		l.Log.Info("SUBSCRIBE unanswered: trying again later", "id", id, "error", errString(err))
		l.retry(s, -1, !inDialog)
	case res.StatusCode < 300:
		l.subscribedOK(s, res)
	case res.StatusCode == 423:
		// 4.1.2.1: ask again with at least Min-Expires.
		secs, _, ok := expiresOf(minExpires(res))
		s.mu.Lock()
		if ok && secs > 0 && time.Duration(secs)*time.Second > s.rec.Period {
			s.rec.Period = time.Duration(secs) * time.Second
		}
		s.mu.Unlock()
		l.retry(s, 0, !inDialog)
	case res.StatusCode == 481 && inDialog:
		l.Log.Info("refresh answered 481: subscribing again", "id", id)
		l.retry(s, 0, true) // 4.1.2.2: the subscription is gone, make a new one
	default:
		l.Log.Info("SUBSCRIBE refused: subscription ended", "id", id, "event", s.rec.Event, "code", res.StatusCode)
		l.endSubscriber(s, "refused "+strconv.Itoa(res.StatusCode))
	}
}

// Credentialed is a Watcher with credentials for some of its
// subscriptions (a trunk's username and password): their SUBSCRIBEs
// challenged with 401 or 407 are answered.
type Credentialed interface {
	Credentials(s Info) (user, password string, ok bool)
}

// do sends req, a SUBSCRIBE of s, and answers a digest challenge once,
// when s's watcher has credentials for it: the same request again with
// the answer, the next CSeq and a new branch (RFC 3261 22.2, 8.1.3.5). A
// second challenge is the final answer (wrong credentials).
func (l *Layer) do(ctx context.Context, s *sub, req *sip.Request) (*sip.Response, error) {
	res, err := l.client.Do(ctx, req, noBuild)
	if err != nil || res == nil || (res.StatusCode != 401 && res.StatusCode != 407) {
		return res, err
	}
	s.mu.Lock()
	info, transport := s.rec.info(), s.rec.Transport
	s.mu.Unlock()
	c, ok := l.watcher(info.Event).(Credentialed)
	if !ok {
		return res, nil
	}
	user, password, ok := c.Credentials(info)
	if !ok {
		return res, nil
	}
	h, ok := auth.Answer(res, req.Method, req.Recipient.String(), user, password)
	if !ok {
		l.Log.Info("SUBSCRIBE challenged with no digest we can answer", "id", info.ID, "code", res.StatusCode)
		return res, nil
	}
	l.Log.Debug("SUBSCRIBE challenged: answered with the credentials of its watcher", "id", info.ID, "code", res.StatusCode, "user", user)
	again := req.Clone()
	again.RemoveHeader("Via")
	again.PrependHeader(l.msg.Via(transport))
	again.RemoveHeader(h.Name())
	again.AppendHeader(h)
	s.mu.Lock()
	s.rec.LocalCSeq++
	again.CSeq().SeqNo = s.rec.LocalCSeq
	s.mu.Unlock()
	return l.client.Do(ctx, again, noBuild)
}

// minExpires presents a 423's Min-Expires as an Expires to read.
func minExpires(res *sip.Response) headers {
	m := sip.NewResponse(200, "OK")
	if h := res.GetHeader("Min-Expires"); h != nil {
		m.AppendHeader(sip.NewHeader("Expires", h.Value()))
	}
	return m
}

// subscribedOK takes a 2xx to our SUBSCRIBE: the dialog (unless a NOTIFY
// made it first, 4.1.2.4), the Expires granted, and the next refresh.
func (l *Layer) subscribedOK(s *sub, res *sip.Response) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return
	}
	if s.rec.RemoteTag == "" {
		s.rec.RemoteTag, _ = res.To().Params.Get("tag")
		if c := res.Contact(); c != nil {
			s.rec.Target = c.Address.String()
		}
		s.rec.Routes = reversedRoutes(res)
	}
	granted := s.rec.Period
	if secs, present, ok := expiresOf(res); present && ok {
		granted = time.Duration(secs) * time.Second
	}
	s.rec.Expires = time.Now().Add(granted)
	s.retries = 0
	if err := l.persist(&s.rec); err != nil {
		l.Log.Warn("subscription not stored", "id", s.rec.ID, "error", err)
	}
	l.armRefresh(s, granted)
}

// reversedRoutes is a UAC's route set: the Record-Route in reverse (RFC
// 3261 12.1.2).
func reversedRoutes(m interface{ GetHeaders(string) []sip.Header }) []string {
	hs := m.GetHeaders("Record-Route")
	out := make([]string, 0, len(hs))
	for i := len(hs) - 1; i >= 0; i-- {
		out = append(out, hs[i].Value())
	}
	return out
}

// armRefresh (s.mu held) refreshes at about four fifths of what is left.
func (l *Layer) armRefresh(s *sub, left time.Duration) {
	l.arm(s, jitter(left*4/5), false)
}

// arm (s.mu held) sends the SUBSCRIBE after d: in a new dialog when fresh.
func (l *Layer) arm(s *sub, d time.Duration, fresh bool) {
	if s.timer != nil {
		s.timer.Stop()
	}
	s.gen++
	gen := s.gen
	s.timer = time.AfterFunc(max(d, 0), func() {
		s.mu.Lock()
		stale := gen != s.gen
		s.mu.Unlock()
		if !stale {
			l.spawn(func() { l.sendSubscribe(s, fresh) })
		}
	})
}

// retry sends the SUBSCRIBE again after d; d < 0: after a back-off that
// doubles from 2 s to 5 min with each failure in a row.
func (l *Layer) retry(s *sub, d time.Duration, fresh bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return
	}
	s.retries++
	if d < 0 {
		d = min(2*time.Second<<min(s.retries-1, 8), 5*time.Minute)
	} else if s.retries > 5 {
		d = max(d, 30*time.Second) // answers that keep asking to retry at once
	}
	l.arm(s, d, fresh)
}

// endSubscriber ends a subscription we made, for good.
func (l *Layer) endSubscriber(s *sub, reason string) {
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return
	}
	s.ended = true
	s.gen++
	if s.timer != nil {
		s.timer.Stop()
	}
	s.mu.Unlock()
	l.finish(s, reason)
}

// notified answers a NOTIFY of one of our subscriptions (4.1.3) and
// hands its body to the watcher.
func (l *Layer) notified(req *sip.Request, tx sip.ServerTransaction) {
	s := l.find(req)
	if s == nil {
		l.respond(tx, req, 481, "Subscription Does Not Exist")
		return
	}
	stateValue, _ := headerValue(req, "Subscription-State")
	st, ok := ParseState(stateValue)
	ev, _ := headerValue(req, "Event")
	event, eventID := eventType(ev)
	s.mu.Lock()
	switch {
	case s.rec.Role != roleSubscriber:
		s.mu.Unlock()
		l.respond(tx, req, 481, "Subscription Does Not Exist")
		return
	case event != s.rec.Event || eventID != s.rec.EventID:
		s.mu.Unlock()
		l.respond(tx, req, 489, "Bad Event") // 4.1.3
		return
	case !ok:
		s.mu.Unlock()
		l.respond(tx, req, 400, "Bad Request (Subscription-State)") // 8.2.3: required
		return
	}
	fromTag, _ := req.From().Params.Get("tag")
	changed := false
	if s.rec.RemoteTag == "" {
		// 4.1.2.4: a NOTIFY may come before the 200 and makes the dialog.
		s.rec.RemoteTag = fromTag
		s.rec.Routes = reversedRoutes(req)
		changed = true
	} else if fromTag != s.rec.RemoteTag {
		s.mu.Unlock()
		// Another fork of our SUBSCRIBE (4.1.2.4): we keep one dialog.
		l.respond(tx, req, 481, "Subscription Does Not Exist")
		return
	}
	if cseq := req.CSeq().SeqNo; s.rec.RemoteCSeq != 0 && cseq <= s.rec.RemoteCSeq {
		s.mu.Unlock()
		l.respond(tx, req, 500, "Server Internal Error (CSeq out of order)") // RFC 3261 12.2.2
		return
	}
	s.rec.RemoteCSeq = req.CSeq().SeqNo
	if c := req.Contact(); c != nil && c.Address.String() != s.rec.Target {
		s.rec.Target = c.Address.String()
		changed = true
	}
	if changed && !s.ended {
		if err := l.persist(&s.rec); err != nil {
			l.Log.Warn("subscription not stored", "id", s.rec.ID, "error", err)
		}
	}
	info, ending := s.rec.info(), s.ended
	s.mu.Unlock()
	l.respond(tx, req, 200, "OK")
	if ending {
		if st.Value == "terminated" {
			l.remove(s)
		}
		return
	}
	if w := l.watcher(info.Event); w != nil {
		var body Body
		if ct := req.ContentType(); ct != nil {
			body.Type = ct.Value()
		}
		body.Data = req.Body()
		w.Notified(info, st.Value, body)
	}
	l.followState(s, st)
}

// followState acts on the Subscription-State of a NOTIFY (4.1.3): a
// shorter expiry brings the refresh forward; terminated re-subscribes
// (deactivated, timeout: at once; a retry-after: then) or ends.
func (l *Layer) followState(s *sub, st State) {
	if st.Value != "terminated" {
		if st.Expires < 0 {
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		left := time.Duration(st.Expires) * time.Second
		if !s.ended && time.Now().Add(left).Before(s.rec.Expires) {
			s.rec.Expires = time.Now().Add(left)
			l.armRefresh(s, left)
		}
		return
	}
	switch {
	case st.RetryAfter >= 0 && st.Reason != "noresource" && st.Reason != "invariant":
		l.retry(s, time.Duration(st.RetryAfter)*time.Second, true)
	case st.Reason == "deactivated" || st.Reason == "timeout":
		l.retry(s, 0, true)
	default:
		reason := "terminated"
		if st.Reason != "" {
			reason += ";" + st.Reason
		}
		l.endSubscriber(s, reason)
	}
}
