// Package b2bua connects calls between lines as a back-to-back user agent
// (RFC 3261 6, "B2BUA"): the caller's INVITE ends here (A leg) and a new
// INVITE goes to every registered device of the called line (B legs, forked
// in parallel as in 16.7), first answer wins. Every message of the call
// passes through the server, which is what lets it see a line's calls (busy
// trigger, line state) and take a failed call over for Call Back.
//
// Its files are named by role:
//   - relay (b2bua.go, relay_*.go): who an INVITE acts for, where the
//     dialed number leads (route points, forwarding, DND, trunks), forking
//     and the no-answer timer. SDP of a relayed call passes end to end
//     unchanged: its media does not touch the server.
//   - dialog layer (dialog*.go): the legs of a call, in-dialog requests
//     relayed (BYE, re-INVITE, INFO, ...), the ACK of each 2xx, hold, and
//     answered calls stored and restored after a restart.
//   - the server acting as a phone (phone_*.go): the Call Back offer as
//     early media, the automatic recall, Dial (third-party call control),
//     MESSAGE screens and the recall alert; the recall and Dial share one
//     "ring A, then connect B" path (phone_ring.go). Here the media does
//     touch the server: the offer and the recall play prompts and tones
//     and listen for keys, and a recall relays RTP between A and B.
//
// The three stay one package because they share the call and its legs: the
// relay, the dialog layer and the server-as-a-phone all act on the same
// *call (its legs, the server side standing in for a party, its endpoints
// and relay), under one lock and one table of legs by Call-ID; splitting it
// would mean exporting that state between packages. What separates
// cleanly lives apart: the request builders in internal/sipmsg, the fake
// transaction for tests in internal/siptest, and the server's media on its
// legs (RTP socket, SDP offer/answer, playout, keys, the relay of two legs)
// in internal/media/endpoint, opened through phone_media.go.
//
// The dialog layer is our own, not sipgo's dialog sessions nor
// emiago/diago: sipgo keeps its sessions in a private table filled only by
// an INVITE it sent or received, so a call restored after a restart could
// not be put back; it uses one Contact for all dialogs, where each leg's
// Contact names the DN it stands for; and it has no notion of a relayed
// 2xx, whose ACK (with a late answer, RFC 3261 13.2.1) is passed to the
// other leg and resent on each retransmission of that 2xx. Forking to a
// line's devices with CANCEL after the first provisional (9.1) and ACK and
// BYE for a late answer is ours either way. diago brings its own user
// agent and media stack, where requests here are routed and authenticated
// by sipserver and the media (relay, latching, RFC 4733) is internal/media.
package b2bua

import (
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/callbackd/callbackd/internal/auth"
	"github.com/callbackd/callbackd/internal/callcompletion"
	"github.com/callbackd/callbackd/internal/config"
	"github.com/callbackd/callbackd/internal/dialplan"
	"github.com/callbackd/callbackd/internal/directory"
	"github.com/callbackd/callbackd/internal/linestate"
	"github.com/callbackd/callbackd/internal/media"
	"github.com/callbackd/callbackd/internal/media/endpoint"
	"github.com/callbackd/callbackd/internal/registrar"
	"github.com/callbackd/callbackd/internal/sipmsg"
	"github.com/callbackd/callbackd/internal/store"
)

// Outcome says how a call between lines ended its setup; Call Back
// (CCBS/CCNR/CCNL) is offered on the failures.
type Outcome string

const (
	Answered         Outcome = "answered"     // a device answered
	FailBusy         Outcome = "busy"         // 486: the line is at its busy trigger or its devices said busy
	FailNoAnswer     Outcome = "no-answer"    // the no-answer timer ran out
	FailUnregistered Outcome = "unregistered" // 480: no device registered
	FailDND          Outcome = "dnd"          // 486: the line is in DND-Reject (F22)
	FailOther        Outcome = "other"        // any other final response
)

// Result is the outcome of one call from Caller (a line, or a number from
// outside through a trunk) to the number Callee.
type Result struct {
	Caller, Callee string // Callee: the number dialed
	CallerTrunk    string // the trunk an outside Caller called in through; "" for a line
	CalleeTrunk    string // the trunk Callee was called through; "" for a line
	CallInfo       string // that trunk's Call-Info on the failure (RFC 6910 s7.1: the cc-URI), if any
	Reached        string // where the call was handed or diverted to (route point, forwarding); "" if not
	Code           int
	Outcome        Outcome
	At             time.Time
}

// Feature is what a feature code dialed by a line turned into: either a call
// to route (Route, a DN, rung as is: the Call Back's Dial overrides the
// callee's forwarding, F21) or a final answer to the dialing phone.
type Feature struct {
	Route  string // DN to call instead of the code; empty: answer Code/Reason
	Code   int
	Reason string
}

// Offer is how a caller whose call failed is offered a call back on the
// spot (F28), as Call Back decided: the announcement Prompt (a media
// prompt name), or the busy tone instead (CC_BUSY_TONE). The zero Offer:
// none, the call fails at once.
type Offer struct {
	Prompt   string
	BusyTone bool
}

// Origin is where a request came from: the device, for feature codes that
// act on it (Extension Mobility).
type Origin struct {
	Transport, Source string
	Device            string // the line the phone authenticated as (its own line, not a login)
	Contact           string // the request's Contact URI
}

// Config holds the call settings.
type Config struct {
	Domain          string        // host of the From/To URIs we create
	NoAnswerTimeout time.Duration // how long B's devices ring before A gets 480 No Answer (or the call is diverted)
	UserAgent       string
	VoicemailPilot  string // DN a forward to "voicemail" goes to; "" none
	Trunks          config.Trunks
	// TrustRegisteredSource: [sip] trust_registered_source (over TCP only).
	TrustRegisteredSource bool
	// CallCompletionPhones: [sip] call_completion_phones: a line's failed
	// call carries Call-Info, and its INVITE with m to a cc-URI is a CC call.
	CallCompletionPhones bool
	// DialOut reports whether line dn may call, or forward to, the
	// external number (its profile's dial_out, F32). nil: never.
	DialOut func(dn, number string) bool
	// The server's own media (announcements, recall): the address in its
	// SDP and the RTP port range. A zero MediaIP means the SIP address; a
	// zero range means ports the system picks.
	MediaIP                netip.Addr
	RTPPortMin, RTPPortMax int
	// RTPLatch accepts each party's RTP from its first source, locked for
	// the call, instead of only from its SDP address (media.PeerFilter):
	// for phones behind NAT.
	RTPLatch bool
}

// B2BUA places and relays calls. Create with New.
type B2BUA struct {
	cfg    Config
	client *sipgo.Client
	dir    *directory.Directory
	reg    *registrar.Registrar
	lines  *linestate.Tracker
	auth   *auth.Authenticator
	log    *slog.Logger
	msg    *sipmsg.Builder // the requests the server sends, from its addresses
	acks   *sipmsg.Recent  // ACKs sent for 2xx, for their retransmissions (sendAck)

	mu   sync.Mutex
	legs map[string]*leg // by Call-ID of the leg

	// Store, when set, keeps answered calls across restarts (see Restore).
	Store    store.Store
	restored []*call // by Restore, for Audit

	// OnResult, when set, is told how every call toward a known line was
	// answered or failed (Call Back consumes it). It must not block.
	OnResult func(Result)

	// OnFeature, when set, handles a dialed number it claims (IsFeature):
	// the Call Back feature codes and a line's own (forwarding, DND,
	// Extension Mobility). It may block until the change is stored.
	IsFeature func(dialed string) bool
	OnFeature func(caller, dialed string, from Origin) Feature

	// OnCCCall, when set, routes the call completion call of a trunk's
	// caller (RFC 6910 s10: an INVITE with the m parameter in its
	// Request-URI from a trunk with call_completion): the line it goes to
	// and whether that line's forwarding is overridden (F21).
	OnCCCall func(trunk, caller, callee string) (to string, override bool)
	// CCCallTo, when set, says whether a line's call to callee through a
	// trunk with call_completion is the CC call of its request there: the
	// m value its Request-URI carries (RFC 6910 s10), or "".
	CCCallTo func(trunk, caller, callee string) string

	// OfferCallBack, when set, is asked about a call that failed busy or
	// with no device registered (F28): it reports the failure to Call Back
	// (OnResult is not called for it) and says how a call back is offered
	// on the spot (the zero Offer: not). It may block until the engine has
	// decided.
	OfferCallBack func(r Result) Offer
	// OfferKey is told that the caller pressed 5 during the offer; it
	// returns the prompt that answers (media.PromptActivated, ...).
	OfferKey func(caller string) string
	// RecallAnswered is told that the caller answered the automatic recall
	// of request id (F29); it returns the line to connect them to, or ""
	// when the request is gone.
	RecallAnswered func(id int64, caller string) string
	// AlertSound, when set, is what a caller hears first on answering an
	// automatic recall (F32 "Callback Audio Notification File Name").
	AlertSound func() []int16
	// OnMediaStats, when set, is told what each of the server's RTP
	// streams sent, when it ends (metrics: packets, late packets).
	OnMediaStats func(media.StreamStats)
	// OnForeignRTP, when set, is told of each RTP packet dropped because
	// it came from another source than the party's (metrics). It must
	// not block: it runs on the media goroutines.
	OnForeignRTP func()
}

// New returns a B2BUA sending through client. local gives our address per
// transport ("UDP", "TCP").
func New(cfg Config, client *sipgo.Client, dir *directory.Directory, reg *registrar.Registrar, lines *linestate.Tracker, a *auth.Authenticator, local map[string]Local, log *slog.Logger) *B2BUA {
	return &B2BUA{cfg: cfg, client: client, dir: dir, reg: reg, lines: lines, auth: a, msg: sipmsg.NewBuilder(local), log: log, legs: map[string]*leg{},
		acks: sipmsg.NewRecent(maxAcksKept)}
}

// maxAcksKept bounds the ACKs kept for 2xx retransmissions (64*T1 each):
// 32 s of 4,000 answered calls/s, about 1 KB each.
const maxAcksKept = 128 * 1024

// Calls returns the number of calls in progress (ringing or connected).
func (b *B2BUA) Calls() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, l := range b.legs {
		if l.name == "A" {
			n++
		}
	}
	return n
}

// call is one call between two lines.
type call struct {
	mu      sync.Mutex
	id      string // the A leg's Call-ID; key for line state
	caller  string // DN of A, or an outside number when trunk is set
	trunk   string // A called in through this trunk: an outsider, even if caller equals a DN
	callee  string // DN of the line B rung (counted in its line state)
	dialed  string // the number A dialed, when not callee (route point, forwarding)
	reached string // where the call was handed or diverted to, for Result
	// outTrunk: the callee is a number of this trunk; outCallInfo: the
	// trunk's Call-Info on its failure (RFC 6910 s7.1), for Result.
	outTrunk, outCallInfo string
	a, b                  *leg
	ended                 bool
	reinvite              bool // a re-INVITE is being relayed (491 for a second one)

	// The server's media in the call: srv while the server itself is A's
	// other party (announcement, recall before B answers); eps are closed
	// and relay stopped when the call ends.
	srv   *serverSide
	eps   []*endpoint.Endpoint
	relay *endpoint.Relay
}

// startReinvite marks a re-INVITE in progress in c; false when one already
// is (RFC 3261 14.1: one offer/answer at a time; 14.2: 491 to the other).
func (c *call) startReinvite() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reinvite {
		return false
	}
	c.reinvite = true
	return true
}

func (c *call) endReinvite() {
	c.mu.Lock()
	c.reinvite = false
	c.mu.Unlock()
}

func (b *B2BUA) addLeg(l *leg) {
	b.mu.Lock()
	b.legs[l.CallID] = l
	b.mu.Unlock()
}

func (b *B2BUA) findLeg(callID string) *leg {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.legs[callID]
}

// end forgets a call and frees both lines. Safe to call more than once.
func (b *B2BUA) end(c *call) {
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return
	}
	c.ended = true
	a, bl := c.a, c.b
	c.mu.Unlock()
	b.mu.Lock()
	if a != nil && b.legs[a.CallID] == a {
		delete(b.legs, a.CallID)
	}
	if bl != nil && b.legs[bl.CallID] == bl {
		delete(b.legs, bl.CallID)
	}
	b.mu.Unlock()
	if c.trunk == "" {
		b.lines.Ended(c.caller, c.id)
	}
	b.lines.Ended(c.callee, c.id)
	c.mu.Lock()
	eps, rl := c.eps, c.relay
	c.mu.Unlock()
	if rl != nil {
		rl.Stop()
	}
	for _, e := range eps {
		e.Close()
	}
	if bl != nil { // it was answered, so it was stored
		b.forget(c)
	}
}

// respond answers a request, logging a transport failure.
func (b *B2BUA) respond(tx sip.ServerTransaction, req *sip.Request, code int, reason string, hdrs ...sip.Header) {
	sipmsg.Respond(tx, req, code, reason, b.log, hdrs...)
}

// HandleInvite takes an INVITE: a new call, or a re-INVITE in a dialog.
func (b *B2BUA) HandleInvite(req *sip.Request, tx sip.ServerTransaction) {
	if to := req.To(); to != nil && to.Params.Has("tag") {
		b.HandleInDialog(req, tx)
		return
	}
	b.newCall(req, tx)
}

// who is who an INVITE acts for (docs/security.md, "What proves a request
// acts for a line").
type who struct {
	dn     string        // the caller: a line, or a number outside
	trunk  *config.Trunk // an outside caller through this trunk; never a line, whatever its number
	device string        // the line the phone authenticated as (Extension Mobility: dn is the user's line)
}

// identify decides who an INVITE acts for, answering it when it may not:
//   - from a trunk's address (a configured, trusted peer): an outside
//     caller, its number from the From, never a line's identity;
//   - with [sip] trust_registered_source, over TCP only, from the address
//     of one of the From line's registered devices: that line;
//   - otherwise digest credentials (Proxy-Authorization) bound to this
//     INVITE's method and Request-URI, for the From line (RFC 3261 22.3).
//
// The answers to requests without valid credentials (407, 403) are sent
// once, statelessly (RFC 3261 8.2.7): no retransmissions, so a flood with
// spoofed sources is not amplified.
func (b *B2BUA) identify(req *sip.Request, tx sip.ServerTransaction) (who, bool) {
	from := req.From().Address.User
	if t, ok := b.trunkAt(req.Transport(), req.Source()); ok {
		if !dialplan.IsExternal(from) {
			b.log.Info("invite from a trunk without a usable caller number", "trunk", t.Name, "from", from)
			b.respondOnce(tx, req, 403, "Forbidden (caller number)")
			return who{}, false
		}
		return who{dn: from, trunk: &t}, true
	}
	if b.cfg.TrustRegisteredSource && sip.IsReliable(req.Transport()) {
		if _, ok := b.dir.Line(from); ok && b.reg.FromSource(from, req.Transport(), req.Source()) {
			return b.device(from, req), true
		}
	}
	at := b.auth.AttemptOf(req, "Proxy-Authorization", b.dir.Password, b.reg.HomeOf)
	d := b.auth.Check(at)
	switch {
	case d.Challenge:
		if at.Header != "" {
			b.log.Debug("invite: new challenge", "from", from, "source", req.Source(), "reason", d.Reason)
		}
		b.respondOnce(tx, req, 407, "Proxy Authentication Required", b.auth.Headers("Proxy-Authenticate", d.Stale)...)
		return who{}, false
	case d.Forbidden:
		b.log.Debug("invite: refused", "from", from, "user", d.User, "source", req.Source(), "reason", d.Reason)
		b.respondOnce(tx, req, 403, "Forbidden")
		return who{}, false
	}
	if d.User != from {
		b.log.Warn("invite: From does not match credentials", "user", d.User, "from", from, "source", req.Source())
		b.respondOnce(tx, req, 403, "Forbidden")
		return who{}, false
	}
	if len(b.reg.Bindings(d.User)) == 0 {
		b.log.Info("invite from a line with no registered device", "dn", d.User, "source", req.Source())
		b.respondOnce(tx, req, 403, "Forbidden (not registered)")
		return who{}, false
	}
	return b.device(d.User, req), true
}

// device is who a request of the phone authenticated as line dn acts for:
// the line, or the user's line a user logged in to on this phone (F23),
// found by the phone's own binding of dn (its Contact, else its source).
func (b *B2BUA) device(dn string, req *sip.Request) who {
	contact := ""
	if c := req.Contact(); c != nil {
		contact = c.Address.String()
	}
	if user, ok := b.reg.LoginOn(dn, req.Transport(), req.Source(), contact); ok {
		return who{dn: user, device: dn}
	}
	return who{dn: dn, device: dn}
}

// respondOnce answers req statelessly: the response is written once on the
// connection the request came in on and the transaction ends without
// retransmitting it (RFC 3261 8.2.7, 16.11). A phone that missed it sends
// its request again and gets another. For answers to requests that have
// not proved anything, so that they cannot be used as a reflector.
func (b *B2BUA) respondOnce(tx sip.ServerTransaction, req *sip.Request, code int, reason string, hdrs ...sip.Header) {
	st, ok := tx.(interface {
		Connection() sip.Connection
		Terminate()
	})
	if !ok || st.Connection() == nil {
		b.respond(tx, req, code, reason, hdrs...)
		return
	}
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	if err := st.Connection().WriteMsg(res); err != nil {
		b.log.Debug("respond failed", "code", code, "error", err)
	}
	st.Terminate()
}

func (b *B2BUA) newCall(req *sip.Request, tx sip.ServerTransaction) {
	if mf := req.MaxForwards(); mf != nil && mf.Val() == 0 {
		b.respond(tx, req, 483, "Too Many Hops") // 16.3 step 3
		return
	}
	w, ok := b.identify(req, tx)
	if !ok {
		return
	}
	caller := w.dn
	callee := req.Recipient.User
	override := false
	callerIsLine := w.trunk == nil // a trunk's caller is never a line, whatever its number
	if b.IsFeature != nil && callerIsLine && b.IsFeature(callee) {
		f := b.OnFeature(caller, callee, Origin{Transport: strings.ToUpper(req.Transport()), Source: req.Source(), Device: w.device, Contact: contactOf(req)})
		if f.Route == "" {
			b.respond(tx, req, f.Code, f.Reason)
			return
		}
		callee, override = f.Route, true
	}
	if b.OnCCCall != nil && req.Recipient.UriParams.Has("m") {
		if w.trunk != nil && w.trunk.CallCompletion {
			callee, override = b.OnCCCall(w.trunk.Name, caller, callee)
		} else if callerIsLine && b.cfg.CallCompletionPhones && !override {
			// The phone's own CC call (RFC 6910 s10): the peer is the line.
			callee, override = b.OnCCCall(callcompletion.PhonePeer(caller), caller, callee)
		}
	}
	_, calleeIsLine := b.dir.Line(callee)
	if _, external := b.cfg.Trunks.For(callee); !calleeIsLine && !external {
		b.log.Info("call to unknown number", "caller", caller, "dn", callee)
		b.respond(tx, req, 404, "Not Found")
		return
	}
	now := time.Now()
	callID := req.CallID().Value()
	if b.findLeg(callID) != nil {
		// A retransmission arriving after its transaction ended, or a
		// Call-ID reused by a broken client: not a new call.
		b.respond(tx, req, 482, "Loop Detected")
		return
	}
	dialed, reached := callee, ""
	trunkName := ""
	if w.trunk != nil {
		trunkName = w.trunk.Name
	}
	fail := func(code int, reason string, why Outcome) {
		if b.offerable(req, why) {
			c := b.callFrom(req, caller, callee, w.trunk)
			c.dialed, c.reached = dialed, reached
			b.announceOffer(req, tx, c, code, reason, why, now)
			return
		}
		b.respond(tx, req, code, reason, b.callCompletionInfo(trunkName, dialed, req.Transport(), why)...)
		b.result(Result{Caller: caller, CallerTrunk: trunkName, Callee: dialed, Reached: reached, Code: code, Outcome: why, At: now})
	}
	var trunk *config.Trunk
	if !override {
		rt := b.routeCall(dialed, w)
		callee, reached, trunk = rt.dn, rt.reached, rt.trunk
		if rt.code != 0 {
			fail(rt.code, rt.reason, rt.why)
			return
		}
	} else if t, ok := b.remoteCallee(callee); ok {
		trunk = &t // Dial of a call back on a callee of another server (B6, F3)
	}
	var devices []registrar.Binding
	if trunk != nil { // an external number: the trunk's line state is not ours
		devices = []registrar.Binding{trunkDevice(*trunk, callee)}
		if w.trunk == nil {
			b.markCCCall(&devices[0], *trunk, caller, callee)
		}
	} else {
		devices = b.reg.Bindings(callee)
		if len(devices) == 0 {
			fail(480, "Temporarily Unavailable", FailUnregistered)
			return
		}
		b.lines.Between(callID, caller, callee) // named in each line's dialog state (RFC 4235)
		if _, ok := b.lines.Offer(callee, callID); !ok {
			fail(486, "Busy Here", FailBusy)
			return
		}
	}
	callerName := ""
	if callerIsLine {
		l, _ := b.dir.Line(caller)
		callerName = l.Name
	}
	c := b.callFrom(req, caller, callee, w.trunk)
	c.dialed, c.reached = dialed, reached
	if trunk != nil {
		c.outTrunk = trunk.Name
	}
	r := &ringing{b: b, c: c, req: req, tx: tx, callerName: callerName, responses: make(chan forkResponse)}
	if !override {
		r.divert = b.noAnswerDivert(c)
	}
	r.run(devices, now)
}

func contactOf(req *sip.Request) string {
	if c := req.Contact(); c != nil {
		return c.Address.String()
	}
	return ""
}

// callFrom makes the call of an INVITE from line caller to callee, with
// its A leg (we are its UAS), and counts it on the caller's line.
func (b *B2BUA) callFrom(req *sip.Request, caller, callee string, trunk *config.Trunk) *call {
	callID := req.CallID().Value()
	c := &call{id: callID, caller: caller, callee: callee}
	if trunk != nil {
		c.trunk = trunk.Name
	}
	from := req.From()
	c.a = &leg{
		call: c, name: "A", Dialog: &sipmsg.Dialog{CallID: callID,
			LocalTag: sip.GenerateTagN(16), RemoteTag: tagOf(from.Params),
			Local: *req.To().Address.Clone(), Remote: *from.Address.Clone(),
			Dest: req.Source(), Transport: strings.ToUpper(req.Transport())},
		inviteCSeq: req.CSeq().SeqNo,
	}
	if ct := req.Contact(); ct != nil {
		c.a.Target = *ct.Address.Clone()
	} else {
		c.a.Target = *from.Address.Clone()
	}
	b.addLeg(c.a)
	if c.trunk == "" { // an outside caller has no line state here
		b.lines.Originate(caller, callID)
	}
	return c
}

// result is the Result of c's setup.
func (c *call) result(code int, why Outcome, at time.Time) Result {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := Result{Caller: c.caller, CallerTrunk: c.trunk, Callee: c.callee, Reached: c.reached, Code: code, Outcome: why, At: at,
		CalleeTrunk: c.outTrunk, CallInfo: c.outCallInfo}
	if c.dialed != "" {
		r.Callee = c.dialed
	}
	return r
}

func (b *B2BUA) result(r Result) {
	if b.OnResult != nil {
		b.OnResult(r)
	}
}

func tagOf(p sip.HeaderParams) string {
	t, _ := p.Get("tag")
	return t
}
