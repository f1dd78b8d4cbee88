package interop

import (
	"fmt"
	"strings"
	"testing"
)

// RFC 6910 phones of our own lines against the monitor role
// (sip.call_completion_phones): the phone is the agent.

// ccPhoneServer starts a server whose lines' phones speak call completion
// (on: phones) and makes 1002 busy with 1004 (on pd) until c.hangUp(t, pd);
// 1002's other phone (pb2) answers one call.
func ccPhoneServer(t *testing.T, phones bool) (s *server, pa, pd, mark int, bBusy, c, b2 *cbPhone) {
	t.Helper()
	need(t, "sipp")
	ports := callPorts(t, 4)
	pa, pb, pb2, pd := ports[0], ports[1], ports[2], ports[3]
	s = startServerWith(t, fmt.Sprintf("min_expires = 1\ncall_completion_phones = %t", phones), noOffer+demoLines)
	s.registerAll(t, dev{"1001", pa}, dev{"1002", pb}, dev{"1004", pd})
	mark = s.cbMark()
	bBusy, c = s.cbBusyBUntil(t, pb, "1004", pd)
	s.register(t, "1002", pb2)
	b2 = s.cbStart(t, "1002's other phone answers", "uas.xml", pb2, true, "-m", "1")
	return s, pa, pd, mark, bBusy, c, b2
}

// TestB1_B7_F17_PhoneSpeaksCallCompletion: line 1001's phone speaks RFC
// 6910. Its call to busy 1002 fails 486 with Call-Info m=BS; its
// SUBSCRIBE without credentials is 401, with 1001's credentials but From
// 1003 is 403 (B7), as itself queued; it suspends and resumes by PUBLISH
// (F17, the phone being the agent). 1002 hangs up: NOTIFY ready; the
// phone's own CC call (the cc-URI with m=BS) reaches 1002 and ends the
// subscription (F3, F21). The server's own Call Back for 1001 is not
// involved: no screen, no alert (the phone has its own).
func TestB1_B7_F17_PhoneSpeaksCallCompletion(t *testing.T) {
	s, pa, pd, mark, bBusy, c, b2 := ccPhoneServer(t, true)
	phone := s.cbStart(t, "1001's RFC 6910 phone", "cc_phone.xml", pa, false, "-m", "1", "-aa", "-s", "1002", "-set", "caller", "1001")
	s.cbWaitLog(t, mark, `msg="call completion request queued" trunk=line:1001 caller=1001 callee=1002 kind=CCBS`)
	s.cbWaitLog(t, mark, `action="persist #1 1001->1002 CCBS suspended for line:1001#`)
	s.cbWaitLog(t, mark, `action="persist #1 1001->1002 CCBS active for line:1001#`)
	c.hangUp(t, pd)
	bBusy.pass(t)
	phone.pass(t)
	b2.pass(t)
	s.cbWaitLog(t, mark, `msg="call back ended" id=1 reason=completed`)

	var failed string
	for _, m := range phone.messages() {
		if m.Received && strings.HasPrefix(m.StartLine(), "SIP/2.0 486") {
			failed = m.Header("Call-Info")
		}
	}
	if want := fmt.Sprintf("<sip:1002@127.0.0.1:%d>;purpose=call-completion;m=BS", s.SIPPort); failed != want {
		t.Errorf("486's Call-Info %q, want %q", failed, want)
	}
	var states []string
	for _, n := range phone.received("NOTIFY") {
		states = append(states, strings.SplitN(n.Header("Subscription-State"), ";", 2)[0]+" "+strings.TrimSpace(n.Body()))
	}
	if got := strings.Join(states, " | "); len(states) != 3 || !strings.HasPrefix(states[0], "active cc-state: queued") ||
		!strings.HasPrefix(states[1], "active cc-state: ready") || !strings.HasPrefix(states[2], "terminated") {
		t.Fatalf("NOTIFYs: %s\nwant queued, ready, terminated", got)
	}
	inv := b2.received("INVITE")
	if len(inv) != 1 || !strings.Contains(inv[0].Header("From"), "sip:1001@") {
		t.Fatalf("1002's other phone got %d INVITEs, want the CC call from 1001", len(inv))
	}
	if log := s.Log(); strings.Contains(log, "screen") && strings.Contains(log, "has become available") {
		t.Fatalf("the server's own Call Back alerted 1001 too:\n%s", log)
	}
}

// TestB1_PhoneCallCompletionOff: by default (Cisco-style phones) a line's
// failed call carries no Call-Info (a line's SUBSCRIBE call-completion is
// then 403 as from any address that is no trunk, TestB1_MonitorRefuses,
// or 489 when no trunk speaks it either).
func TestB1_PhoneCallCompletionOff(t *testing.T) {
	s, pa, pd, _, bBusy, c, _ := ccPhoneServer(t, false)
	r := s.cbRun(t, "1001 calls busy 1002", "uac_busy.xml", pa, "-s", "1002", "-set", "caller", "1001")
	for _, m := range r.messages() {
		if m.Received && strings.HasPrefix(m.StartLine(), "SIP/2.0 486") && m.Header("Call-Info") != "" {
			t.Errorf("486 to a line carries Call-Info %q with call_completion_phones off", m.Header("Call-Info"))
		}
	}
	c.hangUp(t, pd)
	bBusy.pass(t)
}
