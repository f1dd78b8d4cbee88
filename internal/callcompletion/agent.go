package callcompletion

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/callbackd/callbackd/internal/config"
	"github.com/callbackd/callbackd/internal/engine"
	"github.com/callbackd/callbackd/internal/sipmsg"
	"github.com/callbackd/callbackd/internal/subscription"
	"github.com/callbackd/callbackd/internal/throttle"
)

// Subscriptions is the RFC 6665 layer's subscriber side as the agent uses it.
type Subscriptions interface {
	Subscribe(spec subscription.Spec) (string, error)
	Unsubscribe(id string) bool
}

// publishTimeout bounds one PUBLISH transaction (Timer F, RFC 3261
// 17.1.2.2).
const publishTimeout = 32 * time.Second

// Agent is the RFC 6910 agent role (s7, s8) of our callers whose callee is
// behind a trunk with call_completion: it remembers the cc-URI of their
// failed calls, subscribes for the engine's request (MsgRequest), turns
// the NOTIFYs into the engine's messages, PUBLISHes closed and open for
// suspend and resume (F17), unsubscribes on cancel, and marks the CC call.
type Agent struct {
	Engine Engine
	Subs   Subscriptions
	Client *sipgo.Client
	Msg    *sipmsg.Builder
	Trunks config.Trunks
	Domain string // host of our callers' AOR (From)
	Log    *slog.Logger
	// Expires asked for the subscription: the request's lifetime.
	Expires func(kind engine.Kind) time.Duration

	once   *throttle.Every
	mu     sync.Mutex
	uris   map[[2]string]CallInfo // the last failed call's Call-Info, by caller and callee
	byRef  map[int64]*agentReq
	readyT map[[2]string]time.Time // B said ready: the next call to B is the CC call
}

// agentReq is one of our requests behind a peer.
type agentReq struct {
	data     agentData
	sub      string // the subscription's ID
	accepted bool
	etag     string // the live publication's entity-tag
}

// agentData is kept with the subscription (Spec.Data).
type agentData struct {
	Ref     int64
	Peer    string
	A, B    string
	URI     string
	M       Service
	Created time.Time
}

// NewAgent builds the agent; Engine and Subs are set before it serves.
func NewAgent(trunks config.Trunks, log *slog.Logger) *Agent {
	return &Agent{Trunks: trunks, Log: log, once: throttle.NewEvery(time.Minute),
		uris: map[[2]string]CallInfo{}, byRef: map[int64]*agentReq{}, readyT: map[[2]string]time.Time{}}
}

// Event is the package name (subscription.Watcher).
func (g *Agent) Event() string { return EventPackage }

// CallFailed records what the trunk answered our caller's failed call:
// its Call-Info purpose=call-completion (the cc-URI), or none, which is
// logged once a minute per trunk (F8: the call back cannot be activated).
func (g *Agent) CallFailed(trunk, caller, callee, callInfo string) (ok bool) {
	ci, found, err := ParseCallInfo(callInfo)
	if err != nil || !found {
		why := "no Call-Info purpose=call-completion"
		if err != nil {
			why = err.Error()
		}
		if first, n := g.once.OK("no cc " + trunk); first {
			g.Log.Info("call completion not offered by the trunk: call back cannot be activated", "trunk", trunk, "why", why, "more_since_last_log", n)
		}
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.uris) >= maxFailed {
		clear(g.uris) // flooded: the newest failures still work
	}
	g.uris[[2]string{caller, callee}] = ci
	return true
}

// Send carries the engine's messages of the originating side (callback.
// Peers): request, suspend, resume, cancel. It runs on the engine's
// goroutine: what waits for the wire runs on a goroutine of its own, and
// answers come back with Engine.Submit.
func (g *Agent) Send(m engine.PeerMessage) {
	r, ok := AgentRequest(m)
	if !ok {
		return
	}
	switch {
	case r.Method == "SUBSCRIBE" && !r.Unsubscribe:
		g.subscribe(m, r.M)
	case r.Method == "SUBSCRIBE":
		g.mu.Lock()
		ar := g.byRef[m.Ref]
		delete(g.byRef, m.Ref)
		g.mu.Unlock()
		if ar != nil {
			g.Subs.Unsubscribe(ar.sub) // RFC 6665 s4.1.2.3: Expires: 0
		}
	default:
		g.mu.Lock()
		ar := g.byRef[m.Ref]
		g.mu.Unlock()
		if ar != nil {
			go g.publish(ar, r.Open)
		}
	}
}

func (g *Agent) subscribe(m engine.PeerMessage, svc Service) {
	refuse := func(why string) {
		g.Log.Info("call completion request not sent", "peer", m.Peer, "caller", m.A, "callee", m.B, "why", why)
		g.Engine.Submit(engine.FromPeer{Msg: engine.PeerMessage{Peer: m.Peer, Type: engine.MsgReject, Ref: m.Ref}})
	}
	t, ok := g.trunk(m.Peer)
	if !ok || !t.CallCompletion {
		refuse("trunk does not speak call completion")
		return
	}
	g.mu.Lock()
	ci, ok := g.uris[[2]string{m.A, m.B}]
	g.mu.Unlock()
	if !ok {
		refuse("no cc-URI from a failed call")
		return
	}
	if ci.M != "" {
		svc = ci.M
	}
	dest, transport := trunkDest(t)
	d := agentData{Ref: m.Ref, Peer: m.Peer, A: m.A, B: m.B, URI: ci.URI, M: svc}
	data, _ := json.Marshal(d)
	var u sip.Uri
	if sip.ParseUri(ci.URI, &u) != nil {
		refuse("bad cc-URI")
		return
	}
	target := u.Clone()
	target.UriParams = sip.NewParams()
	target.UriParams.Add("m", string(svc)) // RFC 6910 s11.1: the service asked
	spec := subscription.Spec{Event: EventPackage, Target: target.String(), From: g.aor(m.A), To: ci.URI,
		Dest: dest, Transport: transport, Accept: ContentType, Data: data}
	if g.Expires != nil {
		spec.Expires = g.Expires(m.Kind)
	}
	ar := &agentReq{data: d}
	g.mu.Lock()
	g.byRef[m.Ref] = ar
	g.mu.Unlock()
	id, err := g.Subs.Subscribe(spec)
	if err != nil {
		g.mu.Lock()
		delete(g.byRef, m.Ref)
		g.mu.Unlock()
		refuse(err.Error())
		return
	}
	g.mu.Lock()
	ar.sub = id
	g.mu.Unlock()
}

// Notified takes a NOTIFY of one of our subscriptions (subscription.
// Watcher): queued, ready, or its end.
func (g *Agent) Notified(s subscription.Info, state string, body subscription.Body) {
	ar := g.request(s)
	if ar == nil {
		return
	}
	if state == "terminated" {
		// Ended follows when it is over for good; after "timeout" or
		// "deactivated" the layer subscribes again (RFC 6665 s4.1.3).
		return
	}
	b, err := ParseBody(body.Data)
	if err != nil {
		if ok, c := g.once.OK("bad body " + ar.data.Peer); ok {
			g.Log.Info("call completion NOTIFY body ignored", "peer", ar.data.Peer, "error", err, "more_since_last_log", c)
		}
		return
	}
	g.deliver(ar, Notification{Body: b})
}

// Ended: the subscription is over for good (refused, terminated, gone).
func (g *Agent) Ended(s subscription.Info, reason string) {
	if ar := g.request(s); ar != nil {
		g.Log.Info("call completion subscription ended", "peer", ar.data.Peer, "caller", ar.data.A, "callee", ar.data.B, "reason", reason)
		g.deliver(ar, Notification{Terminated: true, Reason: reason})
	}
}

// request finds (or, after a restart, rebuilds) our request of s.
func (g *Agent) request(s subscription.Info) *agentReq {
	var d agentData
	if json.Unmarshal(s.Data, &d) != nil || d.Ref == 0 {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	ar := g.byRef[d.Ref]
	if ar == nil {
		ar = &agentReq{data: d, sub: s.ID}
		g.byRef[d.Ref] = ar
	}
	return ar
}

func (g *Agent) deliver(ar *agentReq, n Notification) {
	g.mu.Lock()
	m := Notified(ar.data.Peer, ar.data.Ref, n, ar.accepted)
	switch m.Type {
	case engine.MsgAccept:
		ar.accepted = true
	case engine.MsgAvailable:
		ar.accepted = true
		g.readyT[[2]string{ar.data.A, ar.data.B}] = time.Now()
	case engine.MsgReject, engine.MsgEnd:
		if g.byRef[ar.data.Ref] != ar {
			g.mu.Unlock()
			return // cancelled here already
		}
		delete(g.byRef, ar.data.Ref)
	}
	g.mu.Unlock()
	g.Engine.Submit(engine.FromPeer{Msg: m})
}

// CCCall says whether our caller's call to callee through trunk is the CC
// call (RFC 6910 s10: its Request-URI carries m): callee said ready within
// the last minute. It returns the m value, or "".
func (g *Agent) CCCall(trunk, caller, callee string) Service {
	g.mu.Lock()
	defer g.mu.Unlock()
	key := [2]string{caller, callee}
	at, ok := g.readyT[key]
	if !ok {
		return ""
	}
	delete(g.readyT, key)
	if time.Since(at) > time.Minute {
		return ""
	}
	m := g.uris[key].M
	if m == "" {
		m = BS
	}
	// The monitor ends the subscription once it admits the CC call; if it
	// does not (it did not know the call as one), we end it ourselves.
	for ref, ar := range g.byRef {
		if ar.data.A == caller && ar.data.B == callee && ar.data.Peer == trunk {
			time.AfterFunc(publishTimeout, func() { g.giveUp(ref, ar) })
		}
	}
	return m
}

// giveUp unsubscribes ar unless its subscription ended meanwhile.
func (g *Agent) giveUp(ref int64, ar *agentReq) {
	g.mu.Lock()
	live := g.byRef[ref] == ar
	if live {
		delete(g.byRef, ref)
	}
	g.mu.Unlock()
	if live {
		g.Subs.Unsubscribe(ar.sub)
	}
}

// publish sends our caller's presence to the monitor (RFC 6910 s9, RFC
// 3903): closed suspends, open resumes; a modification names the entity
// tag, and a 412 makes it publish afresh.
func (g *Agent) publish(ar *agentReq, open bool) {
	g.mu.Lock()
	d, etag := ar.data, ar.etag
	g.mu.Unlock()
	t, ok := g.trunk(d.Peer)
	if !ok {
		return
	}
	for attempt := 0; attempt < 2; attempt++ {
		code, newTag := g.sendPublish(t, d, etag, open)
		if code == 412 && etag != "" {
			etag = "" // RFC 3903 s4.1: the monitor lost it; start again
			continue
		}
		g.mu.Lock()
		if code >= 200 && code < 300 {
			ar.etag = newTag
		}
		g.mu.Unlock()
		if code < 200 || code >= 300 {
			g.Log.Info("call completion PUBLISH not accepted", "peer", d.Peer, "caller", d.A, "callee", d.B, "open", open, "code", code)
		}
		return
	}
}

func (g *Agent) sendPublish(t config.Trunk, d agentData, etag string, open bool) (int, string) {
	dest, transport := trunkDest(t)
	var local, remote sip.Uri
	if sip.ParseUri(g.aor(d.A), &local) != nil || sip.ParseUri(d.URI, &remote) != nil {
		return 0, ""
	}
	dl, err := sipmsg.NewDialog(local, "", remote, d.URI, dest, transport)
	if err != nil {
		return 0, ""
	}
	req := g.Msg.Request(dl, sip.PUBLISH, 1)
	req.AppendHeader(sip.NewHeader("Event", EventPackage))
	req.AppendHeader(sip.NewHeader("Expires", "3600"))
	if etag != "" {
		req.AppendHeader(sip.NewHeader("SIP-If-Match", etag))
	}
	req.AppendHeader(sip.NewHeader("Content-Type", PIDFContentType))
	req.SetBody(BuildPIDF(g.aor(d.A), open))
	ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
	defer cancel()
	res, err := g.Client.Do(ctx, req, func(*sipgo.Client, *sip.Request) error { return nil })
	if err != nil || res == nil {
		return 0, ""
	}
	tag := ""
	if h := res.GetHeader("SIP-ETag"); h != nil {
		tag = strings.TrimSpace(h.Value())
	}
	return res.StatusCode, tag
}

func (g *Agent) trunk(name string) (config.Trunk, bool) {
	for _, t := range g.Trunks {
		if t.Name == name {
			return t, true
		}
	}
	return config.Trunk{}, false
}

// aor is our caller's address of record.
func (g *Agent) aor(dn string) string { return "sip:" + dn + "@" + g.Domain }

// trunkDest is where requests to the trunk go, and over what.
func trunkDest(t config.Trunk) (dest, transport string) {
	a, err := config.ParseAddress(t.Address)
	if err != nil {
		return "", ""
	}
	return net.JoinHostPort(a.IP(), a.Port), strings.ToUpper(a.Via())
}
