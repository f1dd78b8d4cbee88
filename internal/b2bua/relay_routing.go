package b2bua

import (
	"net"

	"github.com/callbackd/callbackd/internal/config"
	"github.com/callbackd/callbackd/internal/registrar"
)

// Where a dialed number leads (GUIDE: call control): a route point hands
// the call to its first free member (F27), a line forwarding all calls
// passes it on (F10), DND-Reject refuses it busy (F22), a busy line
// forwarding when busy passes it on; no answer is diverted while ringing
// (ringing.divert). Call Back learns where the call ended up (Result.Reached)
// to decide who a call back is on.

// maxHops bounds a chain of forwardings; a target met twice is a loop.
const maxHops = 5

// routed is the outcome of routeCall: the line to ring, or a failure.
type routed struct {
	dn      string // the line to ring
	reached string // where the call was handed or diverted to; "" when at the dialed line
	code    int    // a failure to answer at once, 0 if none
	reason  string
	why     Outcome
	trunk   *config.Trunk // dn is an external number called through it
}

// routeCall follows the dialed number through route points, forward all,
// DND-Reject and forward busy, for caller w. A hop out through a trunk is
// checked by mayLeave.
func (b *B2BUA) routeCall(dn string, w who) routed {
	seen := map[string]bool{}
	reached := ""
	payer := w.dn // whose permission a hop out is: the caller, then each line forwarding
	if w.trunk != nil {
		payer = ""
	}
	for hop := 0; ; hop++ {
		switch {
		case seen[dn]:
			// RFC 3261 16.3 step 4's answer to a loop; logged once per call.
			b.log.Warn("forwarding loop", "dn", dn, "hops", hop)
			return routed{code: 482, reason: "Loop Detected", why: FailOther, reached: reached}
		case hop > maxHops:
			b.log.Warn("forwarding chain too long", "dn", dn, "hops", hop)
			return routed{code: 483, reason: "Too Many Hops", why: FailOther, reached: reached}
		}
		seen[dn] = true
		l, ok := b.dir.Line(dn)
		if !ok {
			if t, ok := b.cfg.Trunks.For(dn); ok { // an external number
				if !b.mayLeave(w, payer, dn) {
					return routed{code: 403, reason: "Forbidden", why: FailOther, reached: reached}
				}
				return routed{dn: dn, reached: reached, trunk: &t}
			}
			// A forwarding target that is gone.
			return routed{code: 404, reason: "Not Found", why: FailOther, reached: reached}
		}
		switch l.Kind {
		case config.KindRoutePoint:
			return b.hunt(l)
		case config.KindVoicemail:
			return routed{dn: dn, reached: reached}
		}
		if t := b.forwardTarget(l.ForwardAll); t != "" {
			dn, reached, payer = t, t, l.DN
			continue
		}
		if l.DND {
			return routed{code: 486, reason: "Busy Here", why: FailDND, reached: reached}
		}
		if st, _ := b.lines.Get(dn); st.Full() {
			if t := b.forwardTarget(l.ForwardBusy); t != "" {
				dn, reached, payer = t, t, l.DN
				continue
			}
		}
		return routed{dn: dn, reached: reached}
	}
}

// hunt picks a route point's first member that has a device and is not
// busy; when none, the call fails as busy on the first busy member (that
// is the line a call back is on, F27), or unavailable.
func (b *B2BUA) hunt(rp config.Line) routed {
	busy := ""
	for _, m := range rp.Members {
		st, ok := b.lines.Get(m)
		switch {
		case !ok || st.Devices == 0:
		case !st.Full():
			return routed{dn: m, reached: m}
		case busy == "":
			busy = m
		}
	}
	if busy != "" {
		return routed{code: 486, reason: "Busy Here", why: FailBusy, reached: busy}
	}
	first := ""
	if len(rp.Members) > 0 {
		first = rp.Members[0]
	}
	return routed{code: 480, reason: "Temporarily Unavailable", why: FailUnregistered, reached: first}
}

// forwardTarget resolves a forwarding setting (config.ForwardTarget).
func (b *B2BUA) forwardTarget(t string) string {
	return config.ForwardTarget(t, b.cfg.VoicemailPilot)
}

// noAnswerDivert is the call's forward on no answer (F20): once, to the
// target of the line ringing, if it has a device and is not busy; it moves
// the call's line state there. ok is false when the call stays.
func (b *B2BUA) noAnswerDivert(c *call) func() ([]registrar.Binding, bool) {
	return func() ([]registrar.Binding, bool) {
		c.mu.Lock()
		from := c.callee
		c.mu.Unlock()
		l, _ := b.dir.Line(from)
		t := b.forwardTarget(l.ForwardNoAnswer)
		if t == "" || t == from || t == c.caller {
			return nil, false
		}
		if tr, ok := b.cfg.Trunks.For(t); ok {
			if _, line := b.dir.Line(t); !line { // an external number
				w := who{dn: c.caller}
				if c.trunk != "" {
					w.trunk = b.trunkNamed(c.trunk)
				}
				if !b.mayLeave(w, from, t) {
					return nil, false
				}
				b.lines.Ended(from, c.id)
				c.mu.Lock()
				c.callee, c.reached = t, t
				c.mu.Unlock()
				b.log.Info("call forwarded on no answer", "caller", c.caller, "from", from, "to", t, "trunk", tr.Name)
				return []registrar.Binding{trunkDevice(tr, t)}, true
			}
		}
		devices := b.reg.Bindings(t)
		if len(devices) == 0 {
			return nil, false
		}
		if _, ok := b.lines.Offer(t, c.id); !ok {
			return nil, false
		}
		b.lines.Ended(from, c.id)
		c.mu.Lock()
		c.callee, c.reached = t, t
		c.mu.Unlock()
		b.log.Info("call forwarded on no answer", "caller", c.caller, "from", from, "to", t)
		return devices, true
	}
}

// Trunks (config [[trunk]]): other SIP servers, reached without
// registration. A number is called through the trunk whose prefix it has;
// a request from a trunk's address is a call from outside.

// trunkDevice is the "device" a call through trunk t rings: the trunk's
// address, with the number as user part.
func trunkDevice(t config.Trunk, number string) registrar.Binding {
	a, _ := config.ParseAddress(t.Address) // checked on load
	hostport := net.JoinHostPort(a.IP(), a.Port)
	return registrar.Binding{DN: number, Contact: "sip:" + number + "@" + hostport, Source: hostport, Transport: a.Via()}
}

// trunkAt returns the trunk a request comes from: its transport and
// source address are the trunk's.
func (b *B2BUA) trunkAt(transport, source string) (config.Trunk, bool) {
	return b.cfg.Trunks.At(transport, source)
}

// mayLeave reports whether a call of w may go out through a trunk to the
// external number: a trunk's caller only when its trunk allows hairpin,
// and the line whose dialing or forwarding sends it out (payer) only when
// its profile's dial_out allows the number (F32). A refusal is logged.
func (b *B2BUA) mayLeave(w who, payer, number string) bool {
	if w.trunk != nil && !w.trunk.Hairpin {
		b.log.Info("call refused: trunk to trunk (hairpin off)", "trunk", w.trunk.Name, "caller", w.dn, "to", number)
		return false
	}
	if payer != "" && (b.cfg.DialOut == nil || !b.cfg.DialOut(payer, number)) {
		b.log.Info("call refused: dial-out not allowed by the line's profile", "dn", payer, "caller", w.dn, "to", number)
		return false
	}
	return true
}

// trunkNamed returns the trunk called name (nil if it is gone).
func (b *B2BUA) trunkNamed(name string) *config.Trunk {
	for _, t := range b.cfg.Trunks {
		if t.Name == name {
			return &t
		}
	}
	return &config.Trunk{Name: name} // removed since: no hairpin
}
