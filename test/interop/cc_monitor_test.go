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

// busyMonitor starts the monitor's server (its trunk is SIPp at pt) and
// makes 1002 busy with 1004 (on pd) until c.hangUp(t, pd).
func busyMonitor(t *testing.T) (s *server, pt, pd, mark int, bBusy, c *cbPhone) {
	t.Helper()
	need(t, "sipp")
	ports := callPorts(t, 3)
	pt, pb, pd := ports[0], ports[1], ports[2]
	s = ccMonitorServer(t, pt, "")
	s.registerAll(t, dev{"1002", pb}, dev{"1004", pd})
	mark = s.cbMark()
	bBusy, c = s.cbBusyBUntil(t, pb, "1004", pd)
	return s, pt, pd, mark, bBusy, c
}

// TestB1_MonitorRefuses: from the trunk, a SUBSCRIBE of a caller whose
// call did not fail there is 403, an unknown event package 489 (SUBSCRIBE
// and PUBLISH), a PUBLISH for no request 404; from an address that is no
// trunk, even the failed call's caller is 403. Nothing is stored.
func TestB1_MonitorRefuses(t *testing.T) {
	need(t, "sipp")
	ports := callPorts(t, 2)
	pt, px := ports[0], ports[1]
	s := ccMonitorServer(t, pt, "")
	for _, from := range []struct {
		name        string
		port        int
		publishCode string
	}{{"the trunk", pt, "404"}, {"not a trunk", px, "403"}} {
		r := s.cbRun(t, from.name+": refused requests", "cc_refused.xml", from.port, "-s", "1002")
		var codes []string
		for _, m := range r.messages() {
			if m.Received {
				codes = append(codes, strings.Fields(m.StartLine())[1]+" "+strings.Fields(m.Header("CSeq"))[1])
			}
		}
		want := "403 SUBSCRIBE, 489 SUBSCRIBE, 489 PUBLISH, " + from.publishCode + " PUBLISH"
		if got := strings.Join(codes, ", "); got != want {
			t.Errorf("%s: answers %s, want %s", from.name, got, want)
		}
	}
	if log := s.Log(); strings.Contains(log, "persist #") || strings.Contains(log, "subscription accepted") {
		t.Fatalf("a refused request stored something:\n%s", log)
	}
}

// TestB1_MonitorCancelAndQueueFull: a subscriber's Expires: 0 cancels its
// request (the final NOTIFY terminated); 17 callers of the trunk fail on
// busy 1002 and subscribe: 16 are queued, the 17th is refused 480.
func TestB1_MonitorCancelAndQueueFull(t *testing.T) {
	s, pt, pd, mark, bBusy, c := busyMonitor(t)

	s.cbRun(t, "5999 subscribes and cancels", "cc_cancel.xml", pt, "-m", "1", "-s", "1002", "-set", "caller", "5999")
	s.cbWaitLog(t, mark, `msg="call back ended" id=1 reason=cancelled`)

	q := s.cbRun(t, "17 callers subscribe", "cc_queue.xml", pt, "-m", "17", "-l", "1", "-r", "50", "-s", "1002")
	var ok, full int
	for _, m := range q.messages() {
		switch {
		case !m.Received || !strings.HasSuffix(m.Header("CSeq"), "SUBSCRIBE"):
		case strings.HasPrefix(m.StartLine(), "SIP/2.0 200"):
			ok++
		case strings.HasPrefix(m.StartLine(), "SIP/2.0 480"):
			full++
		}
	}
	if ok != 16 || full != 1 {
		t.Fatalf("SUBSCRIBEs: %d accepted, %d refused 480; want 16 and 1", ok, full)
	}
	c.hangUp(t, pd)
	bBusy.pass(t)
}

// TestB1_MonitorSubscriptionExpires: a subscriber that does not refresh
// gets NOTIFY terminated;reason=timeout when its subscription expires,
// and the request it held ends (cancelled: the agent is gone).
func TestB1_MonitorSubscriptionExpires(t *testing.T) {
	s, pt, pd, mark, bBusy, c := busyMonitor(t)
	s.cbRun(t, "5998 subscribes for 2 s", "cc_expire.xml", pt, "-s", "1002", "-set", "caller", "5998")
	s.cbWaitLog(t, mark, `msg="call completion subscription ended" trunk=pbx-a caller=5998 callee=1002 reason=timeout`)
	s.cbWaitLog(t, mark, `msg="call back ended" id=1 reason=cancelled`)
	c.hangUp(t, pd)
	bBusy.pass(t)
}
