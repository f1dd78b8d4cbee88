package callcompletion

import (
	"encoding/json"
	"hash/fnv"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/callbackd/callbackd/internal/config"
	"github.com/callbackd/callbackd/internal/dialplan"
	"github.com/callbackd/callbackd/internal/engine"
	"github.com/callbackd/callbackd/internal/subscription"
	"github.com/callbackd/callbackd/internal/throttle"
)

// Engine is what the monitor and the agent need of the Call Back service
// (internal/callback.Service): the one engine and its one executor.
type Engine interface {
	Do(ev engine.Event, fresh ...string) []engine.Action
	Submit(ev engine.Event)
	PeerCall(peer string, ref int64, b string) engine.Admit
}

// Events is the RFC 6665 layer (internal/subscription) as the monitor
// uses it.
type Events interface {
	Changed(event, resource string, partial func(subscription.Info) (subscription.Body, bool))
	End(id, reason string) bool
	Subscriptions(event string) []subscription.Info
}

// Notification limits (RFC 6910 s11.3 leaves the rate to the package: at
// most 3 NOTIFYs per subscription in 10 s, the rest collapsed into one).
const (
	notifyBurst  = 3
	notifyWindow = 10 * time.Second
	// failedKeep is how long a failed call lets its caller subscribe:
	// the agent subscribes when its user activates, within its offer
	// window (callback.offer_window, 10 minutes at most).
	failedKeep = 10 * time.Minute
	maxFailed  = 10000
)

// Monitor is the RFC 6910 monitor role (s7, s9, s10) for the callers of
// trunks with call_completion = true, and with Phones for our lines' own
// phones (each the agent of its line): the call-completion event package as
// notifier (a subscription.Package), the PUBLISH target (Pubs), and the
// terminating side of the engine's peer messages (Send). A request is
// named by Ref, the same for the same trunk, caller and callee (refOf), so
// an agent that re-subscribes after its restart finds its request again.
type Monitor struct {
	Engine Engine
	Events Events
	Trunks config.Trunks
	IsLine func(dn string) bool
	Log    *slog.Logger
	// MaxQueue bounds the callers waiting for one callee (480 beyond).
	MaxQueue int
	Pubs     *Publications
	// Phones (sip.call_completion_phones): a line's own phone may be the
	// agent; Prove is its digest, as for REGISTER (answers 401/403
	// itself; B7: nothing acts for a line without proving it is that line).
	Phones bool
	Prove  func(req *sip.Request, tx sip.ServerTransaction) (dn string, ok bool)

	once   *throttle.Every
	mu     sync.Mutex
	failed map[failKey]failedCall
	reqs   map[int64]*monitored
}

type failKey struct{ trunk, a, b string }

type failedCall struct {
	kind engine.Kind
	at   time.Time
}

// monitored is a request the monitor serves.
type monitored struct {
	grant   grantData
	ready   bool        // the last word was "ready" (MsgAvailable)
	sent    []time.Time // NOTIFYs within notifyWindow
	pending bool        // a NOTIFY waits for the window
}

// grantData is kept with each subscription (subscription.Grant.Data).
type grantData struct {
	Ref   int64
	Trunk string
	A, B  string
	Kind  engine.Kind
	URI   string // the cc-URI: the SUBSCRIBE's Request-URI
}

// NewMonitor builds the monitor; Events and Engine are set by the caller
// before it serves.
func NewMonitor(trunks config.Trunks, isLine func(string) bool, log *slog.Logger) *Monitor {
	m := &Monitor{Trunks: trunks, IsLine: isLine, Log: log, MaxQueue: 16,
		once: throttle.NewEvery(time.Minute), failed: map[failKey]failedCall{}, reqs: map[int64]*monitored{}}
	m.Pubs = NewPublications(m.resolvePublish, m.suspend, log)
	return m
}

// Event is the package name (subscription.Package).
func (m *Monitor) Event() string { return EventPackage }

// PhonePeer is the peer name of a line whose own phone is the agent
// (sip.call_completion_phones): requests of a trunk and of a phone never
// share a name, as config refuses trunk names starting with "line:".
func PhonePeer(dn string) string { return "line:" + dn }

// refOf names the request of caller a for callee b behind trunk: a
// positive number, stable across restarts of either side.
func refOf(trunk, a, b string) int64 {
	h := fnv.New64a()
	h.Write([]byte(trunk + "\x00" + a + "\x00" + b))
	return int64(h.Sum64()>>2) + 1
}

func resourceOf(ref int64) string { return "cc:" + strconv.FormatInt(ref, 10) }

// CallFailed records a failed call of a trunk's caller (the b2bua's
// result): only that caller may subscribe for that callee (RFC 6910 s7.2).
func (m *Monitor) CallFailed(trunk, caller, callee string, kind engine.Kind) {
	if t, ok := m.trunk(trunk); (!ok || !t.CallCompletion) && !(m.Phones && trunk == PhonePeer(caller)) {
		return
	}
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.failed) >= maxFailed {
		for k, f := range m.failed {
			if now.Sub(f.at) > failedKeep {
				delete(m.failed, k)
			}
		}
		if len(m.failed) >= maxFailed {
			return // flooded: the oldest stay, a new one cannot subscribe
		}
	}
	m.failed[failKey{trunk, caller, callee}] = failedCall{kind, now}
}

func (m *Monitor) trunk(name string) (config.Trunk, bool) {
	for _, t := range m.Trunks {
		if t.Name == name {
			return t, true
		}
	}
	return config.Trunk{}, false
}

// peerOf proves who sends req: a trunk that speaks call completion (its
// address), or with Phones a line by digest whose From is itself; the
// caller (From) and the callee (Request-URI) as numbers. It answers 401,
// 403 or 404 itself.
func (m *Monitor) peerOf(req *sip.Request, tx sip.ServerTransaction) (trunk, a, b string, ok bool) {
	a, b = req.From().Address.User, req.Recipient.User
	t, fromTrunk := m.Trunks.At(req.Transport(), req.Source())
	switch {
	case fromTrunk && t.CallCompletion:
		trunk = t.Name
	case fromTrunk || !m.Phones:
		m.refuse(tx, req, 403, "Forbidden", "not from a trunk that speaks call completion")
		return "", "", "", false
	default:
		dn, proven := m.Prove(req, tx)
		if !proven {
			return "", "", "", false
		}
		if dn != a { // RFC 6910 s7.2: only the failed call's caller; a line acts for itself only
			m.refuse(tx, req, 403, "Forbidden", "From is not the proven line")
			return "", "", "", false
		}
		trunk = PhonePeer(dn)
	}
	if !dialplan.IsNumber(a) {
		m.refuse(tx, req, 403, "Forbidden", "caller is not a number")
		return "", "", "", false
	}
	if !m.IsLine(b) {
		m.refuse(tx, req, 404, "Not Found", "callee is not a line")
		return "", "", "", false
	}
	return trunk, a, b, true
}

// Authorize answers a new SUBSCRIBE (subscription.Package): the caller of
// a failed call asks to be queued for its callee (RFC 6910 s7.2, s9).
func (m *Monitor) Authorize(req *sip.Request, tx sip.ServerTransaction) (subscription.Grant, bool) {
	trunk, a, b, ok := m.peerOf(req, tx)
	if !ok {
		return subscription.Grant{}, false
	}
	ref := refOf(trunk, a, b)
	m.mu.Lock()
	f, failed := m.failed[failKey{trunk, a, b}]
	_, known := m.reqs[ref]
	queued := 0
	for _, r := range m.reqs {
		if r.grant.B == b && r.grant.Ref != ref {
			queued++
		}
	}
	m.mu.Unlock()
	if !failed && !known {
		m.refuse(tx, req, 403, "Forbidden", "no failed call of this caller to this callee")
		return subscription.Grant{}, false
	}
	if queued >= m.MaxQueue {
		m.refuse(tx, req, 480, "Temporarily Unavailable", "call completion queue full")
		return subscription.Grant{}, false
	}
	mv, _ := req.Recipient.UriParams.Get("m")
	kind := KindOf(ParseService(mv), f.kind)
	if kind == "" {
		kind = engine.CCBS
	}
	accepted := false
	for _, act := range m.Engine.Do(engine.FromPeer{Msg: engine.PeerMessage{Peer: trunk, Type: engine.MsgRequest, Ref: ref, A: a, B: b, Kind: kind}}, b) {
		if tp, ok := act.(engine.ToPeer); ok && tp.Msg.Ref == ref && tp.Msg.Peer == trunk {
			accepted = tp.Msg.Type == engine.MsgAccept
		}
	}
	if !accepted {
		m.refuse(tx, req, 480, "Temporarily Unavailable", "call back not possible for this callee")
		return subscription.Grant{}, false
	}
	uri := req.Recipient
	uri.UriParams = nil
	g := grantData{Ref: ref, Trunk: trunk, A: a, B: b, Kind: kind, URI: uri.String()}
	data, _ := json.Marshal(g)
	m.mu.Lock()
	r := m.reqs[ref]
	if r == nil {
		r = &monitored{grant: g}
		m.reqs[ref] = r
	}
	r.sent = append(r.sent, time.Now()) // the first NOTIFY (RFC 6665 s4.2.1.2)
	m.mu.Unlock()
	m.Log.Info("call completion request queued", "trunk", trunk, "caller", a, "callee", b, "kind", kind)
	return subscription.Grant{Resource: resourceOf(ref), Data: data}, true
}

// State is the full state of a subscription: queued or ready (RFC 6910
// s11.2.2), and its cc-URI.
func (m *Monitor) State(s subscription.Info) subscription.Body {
	var g grantData
	_ = json.Unmarshal(s.Data, &g)
	m.mu.Lock()
	ready := m.reqs[g.Ref] != nil && m.reqs[g.Ref].ready
	m.mu.Unlock()
	body := Body{State: Queued, URI: g.URI}
	if ready {
		body.State = Ready
	}
	return subscription.Body{Type: ContentType, Data: body.Bytes()}
}

// Ended is told when a subscription ends (subscription.Ender): an agent
// that unsubscribes or lets it expire cancels the request (RFC 6910 s9),
// unless another subscription of the same request lives on.
func (m *Monitor) Ended(s subscription.Info, reason string) {
	var g grantData
	if json.Unmarshal(s.Data, &g) != nil {
		return
	}
	res := resourceOf(g.Ref)
	for _, o := range m.Events.Subscriptions(EventPackage) {
		if o.Resource == res && o.ID != s.ID {
			return
		}
	}
	m.Pubs.Forget(Subscriber{g.Trunk, g.Ref})
	m.mu.Lock()
	_, live := m.reqs[g.Ref]
	delete(m.reqs, g.Ref)
	m.mu.Unlock()
	if live {
		m.Log.Info("call completion subscription ended", "trunk", g.Trunk, "caller", g.A, "callee", g.B, "reason", reason)
		m.Engine.Submit(engine.FromPeer{Msg: engine.PeerMessage{Peer: g.Trunk, Type: engine.MsgCancel, Ref: g.Ref}})
	}
}

// Send carries the engine's messages of the terminating side to the agent
// (callback.Peers): queued, ready, or the end. It runs on the engine's
// goroutine: the layer queues the NOTIFYs.
func (m *Monitor) Send(msg engine.PeerMessage) {
	m.mu.Lock()
	r := m.reqs[msg.Ref]
	if r == nil || r.grant.Trunk != msg.Peer {
		m.mu.Unlock()
		return // being authorized (the first NOTIFY says it), or gone
	}
	switch msg.Type {
	case engine.MsgAccept:
		r.ready = false
	case engine.MsgAvailable:
		r.ready = true
	case engine.MsgReject, engine.MsgEnd:
		delete(m.reqs, msg.Ref)
		m.mu.Unlock()
		n, _ := Notify(msg, r.grant.URI)
		m.endAll(msg.Ref, n.Reason)
		return
	}
	m.mu.Unlock()
	m.notify(msg.Ref)
}

// notify sends the full state to the request's subscriptions, at most
// notifyBurst in notifyWindow; beyond, one NOTIFY when the window allows.
func (m *Monitor) notify(ref int64) {
	m.mu.Lock()
	r := m.reqs[ref]
	if r == nil {
		m.mu.Unlock()
		return
	}
	now := time.Now()
	for len(r.sent) > 0 && now.Sub(r.sent[0]) >= notifyWindow {
		r.sent = r.sent[1:]
	}
	if len(r.sent) >= notifyBurst {
		if !r.pending {
			r.pending = true
			time.AfterFunc(r.sent[0].Add(notifyWindow).Sub(now), func() {
				m.mu.Lock()
				r.pending = false
				m.mu.Unlock()
				m.notify(ref)
			})
		}
		m.mu.Unlock()
		return
	}
	r.sent = append(r.sent, now)
	m.mu.Unlock()
	m.Events.Changed(EventPackage, resourceOf(ref), nil)
}

func (m *Monitor) endAll(ref int64, reason string) {
	res := resourceOf(ref)
	for _, s := range m.Events.Subscriptions(EventPackage) {
		if s.Resource == res {
			m.Events.End(s.ID, reason)
		}
	}
}

// CCCall admits the CC call of a trunk's caller (an INVITE to the cc-URI
// with m, RFC 6910 s10): where it goes, and whether it overrides B's
// forwarding (F21: only while B's T3 runs). A completed request ends its
// subscriptions.
func (m *Monitor) CCCall(trunk, caller, callee string) (to string, override bool) {
	ref := refOf(trunk, caller, callee)
	ad := m.Engine.PeerCall(trunk, ref, callee)
	if ad.OverrideForwarding {
		m.mu.Lock()
		delete(m.reqs, ref)
		m.mu.Unlock()
		m.endAll(ref, "noresource") // RFC 6665 s4.1.3: the request is served
	}
	return ad.To, ad.OverrideForwarding
}

// Restore rebuilds the monitored requests from the stored subscriptions
// after a restart (call after the layer's Restore).
func (m *Monitor) Restore() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range m.Events.Subscriptions(EventPackage) {
		var g grantData
		if json.Unmarshal(s.Data, &g) == nil && g.Ref != 0 && m.reqs[g.Ref] == nil {
			m.reqs[g.Ref] = &monitored{grant: g}
		}
	}
}

// resolvePublish finds the request a PUBLISH suspends or resumes: sent by
// the trunk, for its caller's request for the callee of the Request-URI.
func (m *Monitor) resolvePublish(req *sip.Request, tx sip.ServerTransaction) (Subscriber, bool) {
	trunk, a, b, ok := m.peerOf(req, tx)
	if !ok {
		return Subscriber{}, false
	}
	ref := refOf(trunk, a, b)
	m.mu.Lock()
	_, known := m.reqs[ref]
	m.mu.Unlock()
	if !known {
		m.refuse(tx, req, 404, "Not Found", "no call completion request of this caller")
		return Subscriber{}, false
	}
	return Subscriber{Peer: trunk, Ref: ref}, true
}

func (m *Monitor) suspend(s Subscriber, suspend bool) {
	t := engine.MsgResume
	if suspend {
		t = engine.MsgSuspend
	}
	m.Engine.Submit(engine.FromPeer{Msg: engine.PeerMessage{Peer: s.Peer, Type: t, Ref: s.Ref}})
}

func (m *Monitor) refuse(tx sip.ServerTransaction, req *sip.Request, code int, reason, why string) {
	refuse(m.once, m.Log, tx, req, code, reason, why)
}

// Peers hands each message of the engine to the role it belongs to
// (callback.Peers): the terminating side's answers to the monitor, the
// originating side's requests to the agent.
type Peers struct {
	Monitor interface{ Send(engine.PeerMessage) }
	Agent   interface{ Send(engine.PeerMessage) }
}

func (p Peers) Send(m engine.PeerMessage) {
	switch m.Type {
	case engine.MsgAccept, engine.MsgReject, engine.MsgAvailable, engine.MsgEnd:
		if p.Monitor != nil {
			p.Monitor.Send(m)
		}
	default:
		if p.Agent != nil {
			p.Agent.Send(m)
		}
	}
}
