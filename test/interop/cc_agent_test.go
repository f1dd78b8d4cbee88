package interop

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/callbackd/callbackd/test/sipptrace"
)

// Our RFC 6910 agent role (B1, F3) against SIPp as a remote monitor
// behind a trunk with call_completion = true (cc_remote_monitor.xml).

// ccAgentServer starts a server whose trunk "pbx-b" (numbers 2...) is
// SIPp at port pt, and SIPp there answering calls of SIPp calls.
func ccAgentServer(t *testing.T, pt, calls int) (s *server, monitor *cbPhone) {
	t.Helper()
	need(t, "sipp")
	s = startServer(t, fmt.Sprintf("[callback]\nalert_ring = \"0s\"\nannounce = false\n"+
		"[[trunk]]\nname = \"pbx-b\"\naddress = \"udp:127.0.0.1:%d\"\nprefixes = [\"2\"]\ncall_completion = true\n"+
		"[[profile]]\nname = \"default\"\ndial_out = \"all\"\n", pt)+demoLines)
	monitor = s.cbStart(t, "the remote monitor", "cc_remote_monitor.xml", pt, true, "-m", fmt.Sprint(calls), "-s", "2001")
	return s, monitor
}

// activateOnMonitor: 1001 (on pa) calls callee behind pbx-b, which fails
// 486 with Call-Info, and dials *39: our SUBSCRIBE, SIPp's NOTIFY queued,
// the request active. It returns the mark from before the call.
func activateOnMonitor(t *testing.T, s *server, pa int, callee string) int {
	t.Helper()
	mark := s.cbMark()
	s.cbRun(t, "1001 calls "+callee+" behind pbx-b", "uac_busy.xml", pa, "-s", callee, "-set", "caller", "1001")
	if got, _ := s.cbCode(t, "1001", pa, "*39"); !strings.HasPrefix(got, "603 ") {
		t.Fatalf("1001 dials *39: %q, want 603", got)
	}
	return mark
}

// waitReceived waits until SIPp p received n messages matching match.
func waitReceived(t *testing.T, p *cbPhone, what string, n int, match func(sipptrace.Message) bool) []sipptrace.Message {
	t.Helper()
	deadline := time.Now().Add(cbRunTimeout)
	for {
		var got []sipptrace.Message
		for _, m := range p.messages() {
			if m.Received && match(m) {
				got = append(got, m)
			}
		}
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("SIPp received %d of %d %s", len(got), n, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestB1_F3_F17_AgentAgainstSIPpMonitor: 1001's call to 2001 behind
// pbx-b fails 486 with SIPp's Call-Info m=BS; *39 sends our SUBSCRIBE to
// the cc-URI with m=BS; SIPp NOTIFYs queued (active). 1001 is in a call
// with 1003 when SIPp NOTIFYs ready: our request is suspended and we
// PUBLISH closed (F17); 1001 hangs up: we PUBLISH open with SIP-If-Match
// (RFC 3903). SIPp NOTIFYs ready again: 1001's request is available, its
// Dial sends the CC call to the cc-URI with m=BS, and SIPp's NOTIFY
// terminated ends the subscription.
func TestB1_F3_F17_AgentAgainstSIPpMonitor(t *testing.T) {
	ports := callPorts(t, 3)
	pt, pa, p3 := ports[0], ports[1], ports[2]
	s, monitor := ccAgentServer(t, pt, 5)
	s.registerAll(t, dev{"1001", pa}, dev{"1003", p3})
	mark := activateOnMonitor(t, s, pa, "2001")
	s.cbWaitLog(t, mark, `action="persist #1 1001->2001 CCBS active via pbx-b"`)
	sub := waitReceived(t, monitor, "SUBSCRIBE", 1, func(m sipptrace.Message) bool { return m.IsRequest("SUBSCRIBE") })[0]
	callID := sub.Header("Call-ID")
	notifyOK := func(n int) {
		waitReceived(t, monitor, "200 to NOTIFY", n, func(m sipptrace.Message) bool {
			return strings.HasPrefix(m.StartLine(), "SIP/2.0 200") && strings.HasSuffix(m.Header("CSeq"), "NOTIFY") && m.Header("Call-ID") == callID
		})
	}
	notifyOK(1)

	aBusy, a3 := busyOn(t, s, "1001", pa, "1003", p3)
	pokeCall(t, pt, callID) // NOTIFY ready while 1001 is busy
	s.cbWaitLog(t, mark, `action="persist #1 1001->2001 CCBS suspended via pbx-b"`)
	waitReceived(t, monitor, "PUBLISH closed", 1, func(m sipptrace.Message) bool {
		return m.IsRequest("PUBLISH") && strings.Contains(m.Body(), "<basic>closed</basic>")
	})
	a3.hangUp(t, p3)
	aBusy.pass(t)
	open := waitReceived(t, monitor, "PUBLISH open", 1, func(m sipptrace.Message) bool {
		return m.IsRequest("PUBLISH") && strings.Contains(m.Body(), "<basic>open</basic>")
	})[0]
	if got := open.Header("SIP-If-Match"); got != "5f1e7a" {
		t.Errorf("PUBLISH open: SIP-If-Match %q, want the entity-tag of the closed one, 5f1e7a", got)
	}
	s.cbWaitLog(t, mark, `action="persist #1 1001->2001 CCBS active via pbx-b"`)
	notifyOK(2)
	pokeCall(t, pt, callID) // NOTIFY ready, 1001 free
	s.cbWaitLog(t, mark, `action="persist #1 1001->2001 CCBS available via pbx-b"`)

	s.cbRun(t, "1001 presses Dial (*39)", "uac.xml", pa, "-s", "*39", "-set", "caller", "1001", "-d", "300")
	s.cbWaitLog(t, mark, `msg="call back ended" id=1 reason=completed`)
	notifyOK(3)
	pokeCall(t, pt, callID) // NOTIFY terminated: the CC call served
	monitor.pass(t)

	if !strings.Contains(sub.StartLine(), ";m=BS") || sub.Header("Event") != "call-completion" {
		t.Errorf("our SUBSCRIBE %q Event %q, want the cc-URI with m=BS, Event call-completion", sub.StartLine(), sub.Header("Event"))
	}
	var cc []string
	for _, m := range monitor.received("INVITE") {
		cc = append(cc, strings.Fields(m.StartLine())[1])
	}
	if want := fmt.Sprintf("sip:2001@127.0.0.1:%d;m=BS", pt); len(cc) != 2 || cc[1] != want {
		t.Fatalf("INVITEs to the monitor %v, want the failed call then the CC call to %s", cc, want)
	}
}

// TestB1_F8_AgentCancelAndRefused: #39 unsubscribes (SUBSCRIBE Expires:
// 0; SIPp's NOTIFY terminated) and our request ends cancelled; a trunk
// answering 489 to our SUBSCRIBE (callee 2009) ends the request as
// rejected: the call back cannot be activated, told to the caller's
// phones (F8).
func TestB1_F8_AgentCancelAndRefused(t *testing.T) {
	ports := callPorts(t, 3)
	pt, pa, pd := ports[0], ports[1], ports[2]
	s, monitor := ccAgentServer(t, pt, 4)
	s.registerAll(t, dev{"1001", pa}, dev{"1001", pd})
	display := s.cbStart(t, "1001's display", "display.xml", pd, true, "-m", "3")
	mark := activateOnMonitor(t, s, pa, "2001")
	s.cbWaitLog(t, mark, `action="persist #1 1001->2001 CCBS active via pbx-b"`)
	if got, _ := s.cbCode(t, "1001", pa, "#39"); !strings.HasPrefix(got, "603 ") {
		t.Fatalf("1001 dials #39: %q, want 603", got)
	}
	s.cbWaitLog(t, mark, `msg="call back ended" id=1 reason=cancelled`)
	subs := waitReceived(t, monitor, "unsubscribe", 2, func(m sipptrace.Message) bool { return m.IsRequest("SUBSCRIBE") })
	if got := subs[1].Header("Expires"); got != "0" {
		t.Errorf("#39's SUBSCRIBE: Expires %q, want 0", got)
	}

	mark = activateOnMonitor(t, s, pa, "2009")
	s.cbWaitLog(t, mark, `msg="SUBSCRIBE refused: subscription ended" id=\S+ event=call-completion code=489`)
	s.cbWaitLog(t, mark, `msg="call back ended" id=2 reason=rejected`)
	monitor.pass(t)
	display.pass(t)
	if got := display.screens(); len(got) != 3 || !strings.HasPrefix(got[2], "CallBack cannot be activated for 2009") {
		t.Fatalf("1001's screens %q, want activated, deactivated, then cannot be activated for 2009", got)
	}
}
