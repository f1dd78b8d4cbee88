package interop

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Two callbackd servers joined by trunks that speak call completion (RFC
// 6910): X has lines 1001-1004 and reaches numbers 2xxx through Y; Y has
// lines 2001 and 2002 and reaches 1xxx through X. Both on loopback, each
// the other's trunk at its SIP address.

const yLines = `
[[line]]
dn = "2001"
name = "2001"
password = "demo2001"
[[line]]
dn = "2002"
name = "2002"
password = "demo2002"
`

// ccTrunkTo is a [[trunk]] to the other server at port, with call
// completion, taking numbers that start with prefix.
func ccTrunkTo(name string, port int, prefix string) string {
	return fmt.Sprintf("[[trunk]]\nname = %q\naddress = \"udp:127.0.0.1:%d\"\nprefixes = [%q]\ncall_completion = true\n", name, port, prefix)
}

// twoServers starts Y, then X with its trunk to Y, then points Y's trunk
// at X (Y restarts with its configuration rewritten).
func twoServers(t *testing.T) (x, y *server) {
	t.Helper()
	return twoServersCC(t, true, "", "")
}

// twoServersCC is twoServers; without cc, Y's trunk to X is a plain one
// (no call_completion): Y's failed calls carry no Call-Info. xExtra and
// yExtra go into X's and Y's configuration, in their [callback] table
// (keys) or after it (tables).
func twoServersCC(t *testing.T, cc bool, xExtra, yExtra string) (x, y *server) {
	t.Helper()
	const unknown = 9 // Y's trunk port until X's is known
	yTrunk := ccTrunkTo("srv-x", unknown, "1")
	if !cc {
		yTrunk = strings.Replace(yTrunk, "call_completion = true\n", "", 1)
	}
	y = startServer(t, "[callback]\nalert_ring = \"0s\"\nannounce = false\n"+yExtra+yTrunk+yLines)
	x = startServer(t, "[callback]\nalert_ring = \"0s\"\nannounce = false\n"+xExtra+ccTrunkTo("srv-y", y.SIPPort, "2")+
		"[[profile]]\nname = \"default\"\ndial_out = \"all\"\n"+demoLines)
	y.stop()
	cfg, err := os.ReadFile(y.Config)
	if err != nil {
		t.Fatal(err)
	}
	cfg = []byte(strings.Replace(string(cfg), fmt.Sprintf("127.0.0.1:%d\"", unknown), fmt.Sprintf("127.0.0.1:%d\"", x.SIPPort), 1))
	if err := os.WriteFile(y.Config, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	y.start()
	return x, y
}

// busyOn makes line dn of s busy: its device on pd answers a call from
// line c (on pc) until caller.hangUp(t, pc).
func busyOn(t *testing.T, s *server, dn string, pd int, c string, pc int) (b, caller *cbPhone) {
	t.Helper()
	mark := s.cbMark()
	b = s.cbStart(t, dn+" (busy with "+c+")", "uas.xml", pd, true, "-m", "1")
	caller = s.cbStart(t, c+" calls "+dn, "web_uac_hangup_on_info.xml", pc, false, "-m", "1", "-s", dn, "-set", "caller", c)
	s.cbWaitLog(t, mark, `msg="line state" dn=`+dn+` from=\S+ to=busy calls=1 `)
	return b, caller
}

// busyAcross starts the two servers (Y's trunk with call completion or
// not), registers 1001 on X (port pa) and 2001 (pb), 2002 (pc) on Y, and makes 2001
// busy with 2002 (on pc) until c.hangUp(t, pc); b is 2001's phone.
func busyAcross(t *testing.T, cc bool) (x, y *server, pa, pb, pc int, b, c *cbPhone) {
	t.Helper()
	need(t, "sipp")
	ports := callPorts(t, 3)
	pa, pb, pc = ports[0], ports[1], ports[2]
	x, y = twoServersCC(t, cc, "", "")
	x.register(t, "1001", pa)
	y.registerAll(t, dev{"2001", pb}, dev{"2002", pc})
	b, c = busyOn(t, y, "2001", pb, "2002", pc)
	return x, y, pa, pb, pc, b, c
}

// dialAcross: 2001 (busy with 2002 on pc) hangs up, X's request 1
// (1001's on 2001) turns available, and 1001 dials *39 (Dial) from pa
// while 2001's phone on pb waits for the call back. It returns that
// phone and 1001's, both done.
func dialAcross(t *testing.T, x, y *server, xm, pa, pb, pc int, b, c *cbPhone) (b2, a *cbPhone) {
	t.Helper()
	c.hangUp(t, pc)
	b.pass(t)
	x.cbWaitLog(t, xm, `action="persist #1 1001->2001 CCBS available via srv-y"`)
	b2 = y.cbStart(t, "2001 answers the call back", "cb_uas_callback.xml", pb, true, "-m", "1")
	a = x.cbRun(t, "1001 presses Dial (*39)", "uac.xml", pa, "-s", "*39", "-set", "caller", "1001", "-d", "300")
	b2.pass(t)
	return b2, a
}

// TestF3_B1_CCBSBetweenTwoServers: 1001 on X calls 2001 on Y, busy: 486
// (Y's Call-Info m=BS reaches X). 1001 dials *39: X subscribes at Y (F3,
// B1), Y queues it, X's request turns active on Y's NOTIFY queued. 2001
// hangs up: Y's NOTIFY ready makes X's request available (1001 alerted);
// 1001 dials *39 again (Dial): the CC call goes through the trunk with
// m=BS and rings 2001 with 1001's identity; both servers end the request
// as completed.
func TestF3_B1_CCBSBetweenTwoServers(t *testing.T) {
	x, y, pa, pb, pc, b, c := busyAcross(t, true)

	x.cbRun(t, "1001 calls 2001 behind Y", "uac_busy.xml", pa, "-s", "2001", "-set", "caller", "1001")
	xm, ym := x.cbMark(), y.cbMark()
	got, _ := x.cbCode(t, "1001", pa, "*39")
	if !strings.HasPrefix(got, "603 ") {
		t.Fatalf("1001 dials *39: %q, want 603", got)
	}
	y.cbWaitLog(t, ym, `msg="call completion request queued" trunk=srv-x caller=1001 callee=2001 kind=CCBS`)
	x.cbWaitLog(t, xm, `action="persist #1 1001->2001 CCBS active via srv-y"`)

	b2, a := dialAcross(t, x, y, xm, pa, pb, pc, b, c)
	invs := b2.received("INVITE")
	if len(invs) != 1 || !strings.Contains(invs[0].Header("From"), "sip:1001@") {
		t.Fatalf("2001's device got %d INVITEs (From %q), want the call back from 1001", len(invs), firstHeader(invs, "From"))
	}
	if got, _ := a.final(t); got != "200 OK" {
		t.Errorf("1001's Dial: final response %q, want 200 OK", got)
	}
	x.cbWaitLog(t, xm, `msg="call back ended" id=1 reason=completed`)
	y.cbWaitLog(t, ym, `msg="call back ended" id=1 reason=completed`)
}

// activateAcross: 1001 on x calls 2001 on y, which fails with scenario
// (uac_busy.xml or uac_unavailable.xml), dials *39, and the request is
// active on both servers. It returns the log marks from before *39.
func activateAcross(t *testing.T, x, y *server, pa int, scenario, kind string) (xm, ym int) {
	t.Helper()
	x.cbRun(t, "1001 calls 2001 behind Y", scenario, pa, "-s", "2001", "-set", "caller", "1001")
	xm, ym = x.cbMark(), y.cbMark()
	if got, _ := x.cbCode(t, "1001", pa, "*39"); !strings.HasPrefix(got, "603 ") {
		t.Fatalf("1001 dials *39: %q, want 603", got)
	}
	y.cbWaitLog(t, ym, `msg="call completion request queued" trunk=srv-x caller=1001 callee=2001 kind=`+kind)
	x.cbWaitLog(t, xm, `action="persist #1 1001->2001 `+kind+` active via srv-y"`)
	return xm, ym
}

// TestF17_SuspendResumeBetweenTwoServers: 1001 (on X) is in a call with
// 1003 when 2001 (on Y) hangs up: X suspends its request and PUBLISHes
// closed, Y suspends its own (F17 across servers); 1001 hangs up: X
// resumes and PUBLISHes open, Y finds 2001 free and NOTIFYs ready, and X's
// request turns available.
func TestF17_SuspendResumeBetweenTwoServers(t *testing.T) {
	need(t, "sipp")
	ports := callPorts(t, 4)
	pa, pb, pc, p3 := ports[0], ports[1], ports[2], ports[3]
	x, y := twoServers(t)
	x.registerAll(t, dev{"1001", pa}, dev{"1003", p3})
	y.registerAll(t, dev{"2001", pb}, dev{"2002", pc})
	b, c := busyOn(t, y, "2001", pb, "2002", pc)
	xm, ym := activateAcross(t, x, y, pa, "uac_busy.xml", "CCBS")

	aBusy, a3 := busyOn(t, x, "1001", pa, "1003", p3)
	c.hangUp(t, pc)
	b.pass(t)
	x.cbWaitLog(t, xm, `action="persist #1 1001->2001 CCBS suspended via srv-y"`)
	y.cbWaitLog(t, ym, `action="persist #1 1001->2001 CCBS suspended for srv-x#`)

	a3.hangUp(t, p3)
	aBusy.pass(t)
	y.cbWaitLog(t, ym, `action="persist #1 1001->2001 CCBS active for srv-x#`)
	x.cbWaitLog(t, xm, `action="persist #1 1001->2001 CCBS available via srv-y"`)
}

// TestF8_CancelAcross: 1001 cancels with #39: X unsubscribes (Expires: 0)
// and Y ends its request.
func TestF8_CancelAcross(t *testing.T) {
	x, y, pa, _, pc, b, c := busyAcross(t, true)
	xm, ym := activateAcross(t, x, y, pa, "uac_busy.xml", "CCBS")

	if got, _ := x.cbCode(t, "1001", pa, "#39"); !strings.HasPrefix(got, "603 ") {
		t.Fatalf("1001 dials #39: %q, want 603", got)
	}
	x.cbWaitLog(t, xm, `msg="call back ended" id=1 reason=cancelled`)
	y.cbWaitLog(t, ym, `msg="subscription ended by the subscriber"`)
	y.cbWaitLog(t, ym, `msg="call back ended" id=1 reason=cancelled`)
	c.hangUp(t, pc)
	b.pass(t)
}

// TestF8_TrunkWithoutCallCompletion: Y's trunk to X does not speak call
// completion: 2001's busy answer carries no Call-Info, and *39 on X
// answers "cannot be activated", the reason logged.
func TestF8_TrunkWithoutCallCompletion(t *testing.T) {
	x, y, pa, _, pc, b, c := busyAcross(t, false)
	xm := x.cbMark()
	r := x.cbRun(t, "1001 calls 2001", "uac_busy.xml", pa, "-s", "2001", "-set", "caller", "1001")
	if _, res := r.final(t); res.Header("Call-Info") != "" {
		t.Errorf("486 through a plain trunk carries Call-Info %q", res.Header("Call-Info"))
	}
	got, _ := x.cbCode(t, "1001", pa, "*39")
	expectStatus(t, "*39 on a callee behind a plain trunk", got, "603 CallBack Cannot Be Activated")
	x.cbWaitLog(t, xm, `msg="call completion not offered by the trunk: call back cannot be activated" trunk=srv-y`)
	if log := y.Log(); strings.Contains(log, "SUBSCRIBE") && strings.Contains(log, "subscription accepted") {
		t.Error("Y accepted a subscription over a plain trunk")
	}
	c.hangUp(t, pc)
	b.pass(t)
}

// TestB3_CCNLBetweenServersSurvivesKill9: 2001 (on Y) is not logged in;
// 1001 (on X) activates (CCNL across). Y is killed with SIGKILL and
// restarted, then X: both requests and the subscription come back (B3).
// 2001 logs in: Y NOTIFYs ready in the restored subscription, and X's
// restored request turns available; 1001's Dial reaches 2001 (killAcross).
func TestB3_CCNLBetweenServersSurvivesKill9(t *testing.T) {
	killAcross(t, func(x, y *server, login func()) {
		y.kill9()
		y.restart()
		x.kill9()
		x.restart()
		login()
	})
}

// TestF3_CCNRBetweenTwoServers: 2001 (on Y) rings unanswered: Y's 480 No
// Answer carries m=NR; 1001 (on X) activates CCNR across. 2001 is idle,
// but CCNR waits for its next call to end: only when 2001's call with 2002
// ends does Y NOTIFY ready and X's request turn available.
func TestF3_CCNRBetweenTwoServers(t *testing.T) {
	need(t, "sipp")
	ports := callPorts(t, 3)
	pa, pb, pc := ports[0], ports[1], ports[2]
	x, y := twoServersCC(t, true, "", "[calls]\nno_answer_timeout = \"2s\"\n")
	x.register(t, "1001", pa)
	y.registerAll(t, dev{"2001", pb}, dev{"2002", pc})
	ring := y.cbStart(t, "2001 rings, nobody answers", "uas_ring.xml", pb, true, "-m", "1")
	xm, _ := activateAcross(t, x, y, pa, "uac_no_answer.xml", "CCNR")
	ring.pass(t)

	b, c := busyOn(t, y, "2001", pb, "2002", pc)
	if strings.Contains(x.cbLogSince(xm), "CCNR available") {
		t.Fatal("X's CCNR request turned available before 2001's next call ended")
	}
	c.hangUp(t, pc)
	b.pass(t)
	x.cbWaitLog(t, xm, `action="persist #1 1001->2001 CCNR available via srv-y"`)
}

// TestF21_ForwardingOverriddenAcrossWithinT3: after 1001 (on X) activated
// on busy 2001 (on Y), 2001 forwards all its calls to 2002 (*212002). 2001
// frees, X's request is available, and 1001's Dial within T3 reaches 2001
// itself, not 2002: Y admits the CC call past the forwarding (F21).
func TestF21_ForwardingOverriddenAcrossWithinT3(t *testing.T) {
	x, y, pa, pb, pc, b, c := busyAcross(t, true)
	pf := callPorts(t, 1)[0]
	xm, _ := activateAcross(t, x, y, pa, "uac_busy.xml", "CCBS")
	got, _ := y.cbCode(t, "2001", pf, "*212002")
	expectStatus(t, "2001 forwards all to 2002", got, "603 Forward All To 2002")

	b2, a := dialAcross(t, x, y, xm, pa, pb, pc, b, c)
	if invs := b2.received("INVITE"); len(invs) != 1 || !strings.Contains(invs[0].Header("To"), "sip:2001@") {
		t.Fatalf("2001's phone got %d INVITEs, want the call back to 2001 itself", len(invs))
	}
	if got, _ := a.final(t); got != "200 OK" {
		t.Errorf("1001's Dial: final response %q, want 200 OK", got)
	}
}

// twoCallers is the setup of twoCallersAcross.
type twoCallers struct {
	x, y           *server
	xm, ym         int // log marks from before 1001's *39
	pa, p3, pb, pc int // 1001's, 1003's, 2001's and 2002's ports
	b, c           *cbPhone
}

// twoCallersAcross starts X and Y (xKeys, yKeys in their [callback]),
// makes 2001 (on Y) busy with 2002 until w.c.hangUp(t, w.pc) (w.b is
// 2001's phone), and has 1001 then 1003 (on X) call 2001 and activate:
// both requests active.
func twoCallersAcross(t *testing.T, xKeys, yKeys string) (w twoCallers) {
	t.Helper()
	need(t, "sipp")
	ports := callPorts(t, 4)
	w.pa, w.p3, w.pb, w.pc = ports[0], ports[1], ports[2], ports[3]
	w.x, w.y = twoServersCC(t, true, xKeys, yKeys)
	w.x.registerAll(t, dev{"1001", w.pa}, dev{"1003", w.p3})
	w.y.registerAll(t, dev{"2001", w.pb}, dev{"2002", w.pc})
	w.b, w.c = busyOn(t, w.y, "2001", w.pb, "2002", w.pc)
	w.xm, w.ym = activateAcross(t, w.x, w.y, w.pa, "uac_busy.xml", "CCBS")
	w.x.cbRun(t, "1003 calls 2001 behind Y", "uac_busy.xml", w.p3, "-s", "2001", "-set", "caller", "1003")
	if got, _ := w.x.cbCode(t, "1003", w.p3, "*39"); !strings.HasPrefix(got, "603 ") {
		t.Fatalf("1003 dials *39: %q, want 603", got)
	}
	w.x.cbWaitLog(t, w.xm, `action="persist #2 1003->2001 CCBS active via srv-y"`)
	return w
}

// TestF16_F18_TwoCallersFIFOAcrossT3: 1001 and 1003 (on X) both activate
// on busy 2001 (on Y, policy fifo). 2001 frees: Y serves the first, so only
// 1001's request turns available on X. 1001 does not dial: X's T3 (3 s)
// ends it and X unsubscribes; Y serves the next: 1003's request turns
// available (F16, F18 across servers).
func TestF16_F18_TwoCallersFIFOAcrossT3(t *testing.T) {
	w := twoCallersAcross(t, "t3 = \"3s\"\n", "policy = \"fifo\"\n")
	x, xm, pc, b, c := w.x, w.xm, w.pc, w.b, w.c

	c.hangUp(t, pc)
	b.pass(t)
	x.cbWaitLog(t, xm, `action="persist #1 1001->2001 CCBS available via srv-y"`)
	if strings.Contains(x.cbLogSince(xm), "#2 1003->2001 CCBS available") {
		t.Fatal("fifo: 1003's request turned available together with 1001's")
	}
	x.cbWaitLog(t, xm, `msg="call back ended" id=1 reason=t3`)
	x.cbWaitLog(t, xm, `action="persist #2 1003->2001 CCBS available via srv-y"`)
}

// TestF19_LifetimeEndsAcross: Y's request lifetime (1 minute) runs out
// while 2001 stays logged out: Y ends the subscription (NOTIFY
// terminated;reason=noresource: no re-subscribe, RFC 6665 s4.1.3) and X
// ends 1001's request as ended by the peer. Takes a minute.
func TestF19_LifetimeEndsAcross(t *testing.T) {
	need(t, "sipp")
	pa := callPorts(t, 1)[0]
	x, y := twoServersCC(t, true, "", "lifetime = \"1m\"\n")
	x.register(t, "1001", pa)
	xm, ym := activateAcross(t, x, y, pa, "uac_unavailable.xml", "CCNL")
	waitLogWithin(t, y, ym, `msg="call back ended" id=1 reason=expired`, 90*time.Second)
	x.cbWaitLog(t, xm, `msg="call completion subscription ended" peer=srv-y caller=1001 callee=2001 reason=terminated;noresource`)
	x.cbWaitLog(t, xm, `msg="call back ended" id=1 reason=peer-ended`)
	if n := strings.Count(y.cbLogSince(ym), "call completion request queued"); n != 1 {
		t.Errorf("Y queued %d requests, want 1 (no re-subscribe after noresource)", n)
	}
}

// waitLogWithin is cbWaitLog with its own deadline (a timer of a minute).
func waitLogWithin(t *testing.T, s *server, mark int, re string, d time.Duration) {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(d)
	for !rx.MatchString(s.cbLogSince(mark)) {
		if time.Now().After(deadline) {
			t.Fatalf("no server log line matching %q within %v", re, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestF16_TwoCallersNotifyAllAcross: 1001 and 1003 (on X) both activate
// on busy 2001 (on Y, policy notify-all, the default). 2001 frees: Y
// NOTIFYs ready in both subscriptions at once, so both requests turn
// available on X. 1003 dials first (Dial, *39) and reaches 2001: its
// request completes on both servers; 1001's is not completed by it (F16
// across servers).
func TestF16_TwoCallersNotifyAllAcross(t *testing.T) {
	w := twoCallersAcross(t, "", "")
	x, y, xm, ym, p3, pb, pc, b, c := w.x, w.y, w.xm, w.ym, w.p3, w.pb, w.pc, w.b, w.c

	c.hangUp(t, pc)
	b.pass(t)
	x.cbWaitLog(t, xm, `action="persist #1 1001->2001 CCBS available via srv-y"`)
	x.cbWaitLog(t, xm, `action="persist #2 1003->2001 CCBS available via srv-y"`)

	b2 := y.cbStart(t, "2001 answers the call back", "uas.xml", pb, true, "-m", "1")
	x.cbRun(t, "1003 presses Dial (*39)", "uac.xml", p3, "-s", "*39", "-set", "caller", "1003", "-d", "300")
	b2.pass(t)
	if invs := b2.received("INVITE"); len(invs) != 1 || !strings.Contains(invs[0].Header("From"), "sip:1003@") {
		t.Fatalf("2001's device got %d INVITEs (From %q), want the call back from 1003", len(invs), firstHeader(invs, "From"))
	}
	x.cbWaitLog(t, xm, `msg="call back ended" id=2 reason=completed`)
	y.cbWaitLog(t, ym, `msg="call back ended" id=2 reason=completed`)
	if strings.Contains(x.cbLogSince(xm), `msg="call back ended" id=1 reason=completed`) {
		t.Fatal("1001's request completed by 1003's call back")
	}
}

// TestF21_F18_ForwardingAppliesAcrossAfterT3: 1001 (on X, T3 3 s)
// activates on busy 2001 (on Y), which then forwards all to 2002. 2001
// frees, X's request is available, 1001 lets T3 run out: X ends the
// request and unsubscribes, Y ends its own. 1001 then calls 2001 by hand:
// an ordinary call, and Y's forwarding applies, 2002 rings (F21: after T3
// B's forwarding applies; F18).
func TestF21_F18_ForwardingAppliesAcrossAfterT3(t *testing.T) {
	need(t, "sipp")
	ports := callPorts(t, 4)
	pa, pb, pc, pf := ports[0], ports[1], ports[2], ports[3]
	x, y := twoServersCC(t, true, "t3 = \"3s\"\n", "")
	x.register(t, "1001", pa)
	y.registerAll(t, dev{"2001", pb}, dev{"2002", pc})
	b, c := busyOn(t, y, "2001", pb, "2002", pc)
	xm, ym := activateAcross(t, x, y, pa, "uac_busy.xml", "CCBS")
	got, _ := y.cbCode(t, "2001", pf, "*212002")
	expectStatus(t, "2001 forwards all to 2002", got, "603 Forward All To 2002")

	c.hangUp(t, pc)
	b.pass(t)
	x.cbWaitLog(t, xm, `action="persist #1 1001->2001 CCBS available via srv-y"`)
	x.cbWaitLog(t, xm, `msg="call back ended" id=1 reason=t3`)
	y.cbWaitLog(t, ym, `msg="call back ended" id=1 reason=cancelled`)

	fwd := y.cbStart(t, "2002 gets 2001's forwarded call", "uas.xml", pc, true, "-m", "1")
	x.cbRun(t, "1001 calls 2001 by hand", "uac.xml", pa, "-s", "2001", "-set", "caller", "1001", "-d", "300")
	fwd.pass(t)
	if invs := fwd.received("INVITE"); len(invs) != 1 || !strings.Contains(invs[0].Header("From"), "sip:1001@") {
		t.Fatalf("2002's phone got %d INVITEs (From %q), want 1001's call forwarded from 2001", len(invs), firstHeader(invs, "From"))
	}
}

// TestB3_KillMonitorServerOnly: 1001 (on X) activates CCNL on 2001 (on
// Y, not logged in). Only Y is killed with SIGKILL and restarted: its
// request and X's subscription come back from its store; X noticed
// nothing. 2001 logs in: Y NOTIFYs ready in the restored subscription, X's
// request turns available, and 1001's Dial reaches 2001 (B3).
func TestB3_KillMonitorServerOnly(t *testing.T) {
	killAcross(t, func(x, y *server, login func()) { y.kill9(); y.restart(); login() })
}

// TestB3_KillAgentServerOnly: as TestB3_KillMonitorServerOnly, but only X
// (the agent, A's server) is killed and restarted: X's request and its
// subscription at Y come back from its store, and Y's NOTIFY ready reaches
// the restored subscription (B3).
func TestB3_KillAgentServerOnly(t *testing.T) {
	killAcross(t, func(x, y *server, login func()) { x.kill9(); x.restart(); login() })
}

// TestB3_AgentServerDownWhenReady: only X (the agent) is killed, and 2001
// logs in while X is down: Y's NOTIFY ready goes unanswered, and Y sends
// it again (RFC 3261 17.1.2.2, Timer E) until X, restarted, answers it in
// its restored subscription: X's request turns available (B3).
func TestB3_AgentServerDownWhenReady(t *testing.T) {
	killAcross(t, func(x, y *server, login func()) {
		x.kill9()
		ym := y.cbMark()
		login()
		y.cbWaitLog(t, ym, `action="persist #1 1001->2001 CCNL available for srv-x#`) // the NOTIFY goes out now
		x.restart()
	})
}

// killAcross: 1001 (on X) activates CCNL on 2001 (on Y, not logged in);
// kill kills and restarts servers and logs 2001 in (login) in its order;
// X's request turns available and 1001's Dial reaches 2001; both servers
// end the request as completed.
func killAcross(t *testing.T, kill func(x, y *server, login func())) {
	t.Helper()
	need(t, "sipp")
	ports := callPorts(t, 2)
	pa, pb := ports[0], ports[1]
	x, y := twoServers(t)
	x.register(t, "1001", pa)
	activateAcross(t, x, y, pa, "uac_unavailable.xml", "CCNL")

	xm, ym := x.cbMark(), y.cbMark()
	kill(x, y, func() { y.register(t, "2001", pb) })
	x.cbWaitLog(t, xm, `action="persist #1 1001->2001 CCNL available via srv-y"`)
	b2 := y.cbStart(t, "2001 answers the call back", "cb_uas_callback.xml", pb, true, "-m", "1")
	x.cbRun(t, "1001 presses Dial (*39)", "uac.xml", pa, "-s", "*39", "-set", "caller", "1001", "-d", "300")
	b2.pass(t)
	if invs := b2.received("INVITE"); len(invs) != 1 || !strings.Contains(invs[0].Header("From"), "sip:1001@") {
		t.Fatalf("2001's device got %d INVITEs, want the call back from 1001", len(invs))
	}
	x.cbWaitLog(t, xm, `msg="call back ended" id=1 reason=completed`)
	y.cbWaitLog(t, ym, `msg="call back ended" id=1 reason=completed`)
}

// TestF8_B1_CancelFromCalleeSide: 1001 (on X) activates on busy 2001 (on
// Y); Y's operator cancels Y's request through the API (DELETE
// /api/v1/callbacks/1). Y ends it and NOTIFYs terminated (RFC 6665 s4.1.3
// noresource: re-subscribing is pointless); X ends its own request, and
// 1001's screen says it is deactivated. Neither server's API lists it any
// more, and after a restart of both nothing comes back.
func TestF8_B1_CancelFromCalleeSide(t *testing.T) {
	x, y, pa, _, pc, b, c := busyAcross(t, true)
	xm, ym := activateAcross(t, x, y, pa, "uac_busy.xml", "CCBS")
	if code, body := y.api(t, "GET", "/api/v1/callbacks/1", ""); code != 200 || !strings.Contains(body, `"1001"`) {
		t.Fatalf("Y's API before the cancel: %d %s, want request 1 for 1001", code, body)
	}

	if code, body := y.api(t, "DELETE", "/api/v1/callbacks/1", ""); code != 204 {
		t.Fatalf("DELETE on Y: %d %s, want 204", code, body)
	}
	y.cbWaitLog(t, ym, `msg="call back ended" id=1 reason=cancelled`)
	x.cbWaitLog(t, xm, `msg="call completion subscription ended" peer=srv-y caller=1001 callee=2001 reason=terminated;noresource`)
	x.cbWaitLog(t, xm, `msg="call back ended" id=1 reason=peer-ended`)
	if got := x.screenKind(t, "1001"); got != "Deactivated" {
		t.Errorf("1001's screen on X: %q, want Deactivated", got)
	}
	noCallbacks := func(when string) {
		t.Helper()
		for name, s := range map[string]*server{"X": x, "Y": y} {
			if code, body := s.api(t, "GET", "/api/v1/callbacks", ""); code != 200 || strings.Contains(body, `"id"`) {
				t.Errorf("%s's API %s: %d %s, want no request", name, when, code, body)
			}
		}
	}
	noCallbacks("after the cancel")
	if n := strings.Count(y.cbLogSince(ym), "call completion request queued"); n != 1 {
		t.Errorf("Y queued %d requests, want 1 (no re-subscribe after noresource)", n)
	}
	c.hangUp(t, pc)
	b.pass(t)

	x.stop()
	y.stop()
	x.start()
	y.start()
	noCallbacks("after a restart of both")
}
