package interop

import (
	"fmt"
	"strings"
	"testing"
)

// The RFC 6910 monitor role (B1, F3) against one server: SIPp plays a
// remote server's call completion agent, from the address of a trunk with
// call_completion = true.

// ccMonitorServer starts a server whose trunk "pbx-a" is SIPp at port pt.
func ccMonitorServer(t *testing.T, pt int, extra string) *server {
	t.Helper()
	return startServer(t, fmt.Sprintf(`[callback]
alert_ring = "0s"
[[trunk]]
name = "pbx-a"
address = "udp:127.0.0.1:%d"
prefixes = ["5"]
call_completion = true
`, pt)+extra+demoLines)
}

// TestB1_MonitorCCBSAcrossTrunk: 1002 is busy with 1004; the agent's
// caller 5001 calls 1002: 486 with Call-Info m=BS; the agent subscribes
// (NOTIFY queued), suspends by PUBLISH closed (F17 across servers), finds
// a stale ETag refused 412, resumes by PUBLISH open. 1002 hangs up: NOTIFY
// ready; the CC call (the cc-URI with m=BS) reaches 1002's other phone and
// completes the request, which ends the subscription (F3, F21).
func TestB1_MonitorCCBSAcrossTrunk(t *testing.T) {
	need(t, "sipp")
	ports := callPorts(t, 4)
	pt, pb, pb2, pd := ports[0], ports[1], ports[2], ports[3]
	s := ccMonitorServer(t, pt, "")
	s.registerAll(t, dev{"1002", pb}, dev{"1004", pd})
	mark := s.cbMark()
	bBusy, c := s.cbBusyBUntil(t, pb, "1004", pd)
	s.register(t, "1002", pb2)
	b2 := s.cbStart(t, "1002's other phone answers the CC call", "uas.xml", pb2, true, "-m", "1")

	agent := s.cbStart(t, "the remote agent", "cc_agent.xml", pt, false, "-m", "1", "-aa", "-s", "1002", "-set", "caller", "5001")
	s.cbWaitLog(t, mark, `msg="call completion request queued" trunk=pbx-a caller=5001 callee=1002 kind=CCBS`)
	s.cbWaitLog(t, mark, `action="persist #1 5001->1002 CCBS suspended for pbx-a#`)
	s.cbWaitLog(t, mark, `action="persist #1 5001->1002 CCBS active for pbx-a#`)
	c.hangUp(t, pd)
	bBusy.pass(t)
	agent.pass(t)
	b2.pass(t)
	s.cbWaitLog(t, mark, `msg="call back ended" id=1 reason=completed`)

	fail := agent.messages()
	var failed string
	for _, m := range fail {
		if m.Received && strings.HasPrefix(m.StartLine(), "SIP/2.0 486") {
			failed = m.Header("Call-Info")
		}
	}
	if want := fmt.Sprintf("<sip:1002@127.0.0.1:%d>;purpose=call-completion;m=BS", s.SIPPort); failed != want {
		t.Errorf("486's Call-Info %q, want %q", failed, want)
	}
	notifies := agent.received("NOTIFY")
	var states []string
	for _, n := range notifies {
		states = append(states, strings.SplitN(n.Header("Subscription-State"), ";", 2)[0]+" "+strings.TrimSpace(n.Body()))
	}
	got := strings.Join(states, " | ")
	if len(notifies) != 3 || !strings.HasPrefix(states[0], "active cc-state: queued") ||
		!strings.HasPrefix(states[1], "active cc-state: ready") || !strings.HasPrefix(states[2], "terminated") {
		t.Fatalf("NOTIFYs: %s\nwant queued, ready, terminated", got)
	}
	inv := b2.received("INVITE")
	if len(inv) != 1 || !strings.Contains(inv[0].Header("From"), "sip:5001@") {
		t.Fatalf("1002's other phone got %d INVITEs, want the CC call from 5001", len(inv))
	}
}
