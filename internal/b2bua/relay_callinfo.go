package b2bua

import (
	"github.com/emiago/sipgo/sip"

	"github.com/callbackd/callbackd/internal/callcompletion"
	"github.com/callbackd/callbackd/internal/config"
)

// callCompletionInfo is the Call-Info that the responses of a failed call
// carry when its caller came in through a trunk that speaks call
// completion (trunk.call_completion), or is a line whose phone speaks it
// (sip.call_completion_phones; RFC 6910 s7.1, s11.1): the cc-URI, our
// own address for the dialed number, where that server's or phone's agent
// subscribes, and the service the failure offers. None otherwise.
func (b *B2BUA) callCompletionInfo(trunk, dialed, transport string, why Outcome) []sip.Header {
	_, toLine := b.dir.Line(dialed) // a callee behind a trunk is the other server's to offer
	speaks := trunk == "" && b.cfg.CallCompletionPhones && toLine
	for _, t := range b.cfg.Trunks {
		speaks = speaks || (t.Name == trunk && t.CallCompletion)
	}
	var m callcompletion.Service
	switch why {
	case FailBusy, FailDND:
		m = callcompletion.BS
	case FailNoAnswer:
		m = callcompletion.NR
	case FailUnregistered:
		m = callcompletion.NL
	}
	if !speaks || m == "" {
		return nil
	}
	uri := b.msg.Contact(dialed, transport).Address
	uri.UriParams = nil // the address, not the transport we answered on
	ci := callcompletion.CallInfo{URI: uri.String(), M: m}
	return []sip.Header{sip.NewHeader("Call-Info", ci.String())}
}

// callInfoOf is callCompletionInfo for call c.
func (b *B2BUA) callInfoOf(c *call, why Outcome) []sip.Header {
	c.mu.Lock()
	trunk, dialed, transport := c.trunk, c.dialed, c.a.Transport
	if dialed == "" {
		dialed = c.callee
	}
	c.mu.Unlock()
	return b.callCompletionInfo(trunk, dialed, transport, why)
}

// markCCCall marks a line's call to callee through a trunk with
// call_completion as the CC call of its request there, when it is one
// (CCCallTo): the m parameter in the Request-URI (RFC 6910 s10), which
// the other server's monitor recognizes.
func (b *B2BUA) markCCCall(d *Binding, t config.Trunk, caller, callee string) {
	if !t.CallCompletion || b.CCCallTo == nil {
		return
	}
	if m := b.CCCallTo(t.Name, caller, callee); m != "" {
		d.Contact += ";m=" + m
	}
}
