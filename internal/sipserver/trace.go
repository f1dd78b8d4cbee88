package sipserver

import (
	"bytes"
	"sync/atomic"

	"github.com/emiago/sipgo/sip"
)

// tracer sees every SIP message the transports read or write (sipgo's
// debug hook): it counts them (Handlers.Counted, the metrics), and logs
// them while the SIP trace is on (F36, F37; switched through the API).
type tracer struct {
	on atomic.Bool
	s  atomic.Pointer[Server]
}

// The hook is global in sipgo; the last server made owns it.
var sipTrace tracer

func (t *tracer) SIPTraceRead(transport, laddr, raddr string, msg []byte) {
	t.see("in", transport, laddr, raddr, msg)
}

func (t *tracer) SIPTraceWrite(transport, laddr, raddr string, msg []byte) {
	t.see("out", transport, laddr, raddr, msg)
}

func (t *tracer) see(dir, transport, laddr, raddr string, msg []byte) {
	s := t.s.Load()
	if s == nil {
		return
	}
	if kind := messageKind(msg); kind != "" && s.h.Counted != nil {
		s.h.Counted(dir, kind)
	}
	if t.on.Load() {
		s.Log.Info("sip trace", "direction", dir, "transport", transport, "local", laddr, "remote", raddr, "message", string(msg))
	}
}

// messageKind is a request's method or a response's status code, from the
// start line; "" for what is neither (keep-alives, garbage).
func messageKind(msg []byte) string {
	i := bytes.IndexByte(msg[:min(len(msg), 64)], ' ')
	if i <= 0 {
		return ""
	}
	line := msg[:i]
	if string(line) == "SIP/2.0" {
		rest := msg[len(line)+1:]
		if len(rest) >= 3 && rest[0] >= '1' && rest[0] <= '6' && rest[1] >= '0' && rest[1] <= '9' && rest[2] >= '0' && rest[2] <= '9' {
			return string(rest[:3])
		}
		return ""
	}
	for _, m := range []sip.RequestMethod{sip.INVITE, sip.ACK, sip.BYE, sip.CANCEL, sip.REGISTER, sip.OPTIONS, sip.MESSAGE, sip.INFO, sip.UPDATE, sip.NOTIFY, sip.SUBSCRIBE, sip.PUBLISH, sip.REFER, sip.PRACK} {
		if string(line) == string(m) {
			return string(m)
		}
	}
	return "other"
}

// SetSIPTrace switches the logging of every SIP message on or off.
func (s *Server) SetSIPTrace(on bool) { sipTrace.on.Store(on) }

// SIPTrace reports whether SIP messages are logged.
func (s *Server) SIPTrace() bool { return sipTrace.on.Load() }
