package interop

// The call features Call Back meets (issue 6), through the real binary with
// SIPp phones: voicemail (F10), forwarding before and after activation
// (F20, F21), DND-Reject on both sides (F22), a phone removed (F24), device
// resets (F25), route points (F27) and forwarding loops. Each test asserts
// what the phones get: final responses with their reason phrases and the
// screens (MESSAGE) on A's display.

import (
	"strings"
	"testing"
	"time"

	"github.com/callbackd/callbackd/test/sipptrace"
)

// featureConfig: no announcement (these are Cisco flows, A dials *39),
// no alert ring (screens only), a 1 s no-answer timer, the [calls] keys
// given and the lines.
func featureConfig(calls, lines string) string {
	return "[callback]\nannounce = false\nalert_ring = \"0s\"\n[calls]\nno_answer_timeout = \"1s\"\n" + calls + lines
}

// voicemailLine is the voicemail server's line: it registers like a phone.
const voicemailLine = `
[[line]]
dn = "8000"
password = "demo8000"
kind = "voicemail"
`

// TestF10_VoicemailFourCases: B forwards on no answer to voicemail.
// Connected to voicemail: *39 is not active. Diverted without a pilot: the
// call stays at B and A may activate against B. Voicemail busy, or failing:
// A cannot activate against B, the call belongs to the pilot.
func TestF10_VoicemailFourCases(t *testing.T) {
	need(t, "sipp")
	t.Run("connected to voicemail", func(t *testing.T) {
		ports := callPorts(t, 3)
		pa, pb, pv := ports[0], ports[1], ports[2]
		s := startServer(t, featureConfig("voicemail_pilot = \"8000\"\n", demoLines+voicemailLine))
		s.register(t, "1001", pa)
		s.register(t, "1002", pb)
		s.register(t, "8000", pv)
		got, _ := s.cbCode(t, "1002", pb, "*61") // forward no answer to voicemail
		expectStatus(t, "B dials *61", got, "603 Forward No Answer To voicemail")
		b := s.cbStart(t, "B rings", "uas_ring.xml", pb, true, "-m", "1")
		vm := s.cbStart(t, "voicemail answers", "uas.xml", pv, true, "-m", "1")
		s.cbRun(t, "A calls B, voicemail answers", "uac.xml", pa, "-s", "1002", "-set", "caller", "1001", "-d", "300")
		b.pass(t)
		vm.pass(t)
		if inv := vm.received("INVITE"); len(inv) != 1 || !strings.Contains(inv[0].Header("From"), "sip:1001@") {
			t.Fatalf("voicemail got %d INVITEs, want 1 from A", len(inv))
		}
		got, _ = s.cbCode(t, "1001", pa, "*39")
		expectStatus(t, "A dials *39 after voicemail answered", got, "603 CallBack Not Active")
	})
	t.Run("diverted without a pilot", func(t *testing.T) {
		ports := callPorts(t, 2)
		pa, pb := ports[0], ports[1]
		s := startServer(t, featureConfig("", demoLinesWith("1002", "forward_no_answer = \"voicemail\"\n")))
		s.register(t, "1001", pa)
		s.register(t, "1002", pb)
		got, _ := s.cbCode(t, "1002", pb, "*61")
		expectStatus(t, "B dials *61 with no voicemail pilot", got, "603 No Voicemail")
		b := s.cbStart(t, "B rings", "uas_ring.xml", pb, true, "-m", "1")
		s.cbRun(t, "A calls B, no answer", "uac_no_answer.xml", pa, "-s", "1002", "-set", "caller", "1001")
		b.pass(t)
		got, _ = s.cbCode(t, "1001", pa, "*39")
		expectStatus(t, "A dials *39", got, "603 CallBack Activated")
	})
	for _, c := range []struct{ name, scenario, final string }{
		{"voicemail busy", "uas_busy.xml", "486 Busy Here"},
		{"voicemail failed", "uas_error.xml", "503 Service Unavailable"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ports := callPorts(t, 3)
			pa, pb, pv := ports[0], ports[1], ports[2]
			s := startServer(t, featureConfig("voicemail_pilot = \"8000\"\n", demoLinesWith("1002", "forward_no_answer = \"voicemail\"\n")+voicemailLine))
			s.register(t, "1001", pa)
			s.register(t, "1002", pb)
			s.register(t, "8000", pv)
			b := s.cbStart(t, "B rings", "uas_ring.xml", pb, true, "-m", "1")
			vm := s.cbStart(t, c.name, c.scenario, pv, true, "-m", "1")
			a := s.cbRun(t, "A calls B", "uac_fails.xml", pa, "-s", "1002", "-set", "caller", "1001")
			b.pass(t)
			vm.pass(t)
			if got, _ := a.final(t); got != c.final {
				t.Fatalf("A's call: %q, want %q from the voicemail", got, c.final)
			}
			got, _ := s.cbCode(t, "1001", pa, "*39")
			expectStatus(t, "A dials *39", got, "603 CallBack Cannot Be Activated")
		})
	}
}

// TestF20_NoAnswerForwardBeforeActivation: B forwards on no answer to C;
// A's call rings B, then C, then fails 480; A activates (CCNR, on B with C
// captured). When C ends its next call, A is told C is available.
func TestF20_NoAnswerForwardBeforeActivation(t *testing.T) {
	need(t, "sipp")
	ports := callPorts(t, 5)
	pa, pa2, pb, pc, pd := ports[0], ports[1], ports[2], ports[3], ports[4]
	s := startServer(t, featureConfig("", demoLines))
	s.registerAll(t, dev{"1001", pa}, dev{"1001", pa2}, dev{"1002", pb}, dev{"1003", pc}, dev{"1004", pd})
	got, _ := s.cbCode(t, "1002", pb, "*611003")
	expectStatus(t, "B dials *611003", got, "603 Forward No Answer To 1003")
	display := s.cbStart(t, "A's display", "display.xml", pa2, true, "-m", "2")
	b := s.cbStart(t, "B rings", "uas_ring.xml", pb, true, "-m", "1")
	c := s.cbStart(t, "C rings", "uas_ring.xml", pc, true, "-m", "1")
	s.cbRun(t, "A calls B: B, then C, no answer", "uac_no_answer.xml", pa, "-s", "1002", "-set", "caller", "1001")
	b.pass(t)
	c.pass(t)
	if inv := c.received("INVITE"); len(inv) != 1 || !strings.Contains(inv[0].Header("From"), "sip:1001@") {
		t.Fatalf("C got %d INVITEs from A, want 1 (the forward on no answer)", len(inv))
	}
	mark := s.cbMark()
	got, _ = s.cbCode(t, "1001", pa, "*39")
	expectStatus(t, "A dials *39", got, "603 CallBack Activated")
	s.cbWaitLog(t, mark, `action="persist #1 1001->1002 CCNR active fwd=1003`)
	display.expectScreen(t, 1, activatedScreen("1002"))

	// C ends a call: available (CCNR: the end of C's next call, F11).
	cAns := s.cbStart(t, "C answers D", "uas_hangs_up.xml", pc, true, "-m", "1", "-d", "300")
	s.cbRun(t, "D calls C", "uac_callee_hangs_up.xml", pd, "-s", "1003", "-set", "caller", "1004")
	cAns.pass(t)
	display.expectAvailable(t, 2, "1003")
	display.pass(t)
}

// TestF21_ForwardAfterActivation: A waits on busy B; B (from its second
// phone) forwards all calls to C; B frees; A is told and dials: the call
// back follows B's forwarding and C's phone rings with A's number.
func TestF21_ForwardAfterActivation(t *testing.T) {
	need(t, "sipp")
	ports := callPorts(t, 5)
	pa, pb, pb2, pc, pd := ports[0], ports[1], ports[2], ports[3], ports[4]
	s := startServer(t, featureConfig("", demoLines))
	s.registerAll(t, dev{"1001", pa}, dev{"1002", pb}, dev{"1003", pc}, dev{"1004", pd})
	b, d := s.cbBusyB(t, pb, "1004", pd, true)
	s.register(t, "1002", pb2)
	s.cbActivateCCBS(t, "1001", pa)
	got, _ := s.cbCode(t, "1002", pb2, "*211003")
	expectStatus(t, "B dials *211003 on its second phone", got, "603 Forward All To 1003")
	mark := s.cbMark()
	b.pass(t)
	d.pass(t)
	s.cbWaitLog(t, mark, `CCBS available`)
	c := s.cbStart(t, "C gets the call back", "cb_uas_callback.xml", pc, true, "-m", "1")
	s.cbRun(t, "A dials *39 (Dial)", "uac.xml", pa, "-s", "*39", "-set", "caller", "1001", "-d", "300")
	c.pass(t)
	if inv := c.received("INVITE"); len(inv) != 1 || !strings.Contains(inv[0].Header("From"), "sip:1001@") {
		t.Fatalf("C got %d INVITEs, want the call back from A", len(inv))
	}
}

// TestF22_DNDRejectBothSides: B in DND-Reject (*78): A's call gets 486 at
// once and A may activate; B cycles the hook (a call of its own) still in
// DND: A is told "available but in DND-Reject"; B turns DND off (*79): A is
// told B is available. Then A in DND (*78) is still alerted.
func TestF22_DNDRejectBothSides(t *testing.T) {
	need(t, "sipp")
	ports := callPorts(t, 5)
	pa, pa2, pb, pc, pd := ports[0], ports[1], ports[2], ports[3], ports[4]
	s := startServer(t, featureConfig("", demoLines))
	s.registerAll(t, dev{"1001", pa}, dev{"1001", pa2}, dev{"1002", pb}, dev{"1003", pc}, dev{"1004", pd})
	got, _ := s.cbCode(t, "1002", pb, "*78")
	expectStatus(t, "B dials *78", got, "603 DND On")
	a := s.cbRun(t, "A calls B in DND", "uac_busy.xml", pa, "-s", "1002", "-set", "caller", "1001")
	if got, _ := a.final(t); got != "486 Busy Here" {
		t.Fatalf("A's call to B in DND: %q, want 486 Busy Here", got)
	}
	display := s.cbStart(t, "A's display", "display.xml", pa2, true, "-m", "6")
	got, _ = s.cbCode(t, "1001", pa, "*39")
	expectStatus(t, "A dials *39", got, "603 CallBack Activated")
	display.expectScreen(t, 1, activatedScreen("1002"))

	// B calls C and hangs up: a hook cycle, still in DND-Reject.
	cAns := s.cbStart(t, "C answers B", "uas.xml", pc, true, "-m", "1")
	s.cbRun(t, "B calls C", "uac.xml", pb, "-s", "1003", "-set", "caller", "1002", "-d", "200")
	cAns.pass(t)
	if m := display.waitScreen(t, 2); !strings.HasPrefix(m.Body(), "1002 is now available but in DND-Reject") || strings.Contains(m.Body(), "Dial") {
		t.Fatalf("A's screen after B's hook cycle in DND: %q, want the DND-Reject notice without Dial", m.Body())
	}
	got, _ = s.cbCode(t, "1002", pb, "*79")
	expectStatus(t, "B dials *79", got, "603 DND Off")
	display.expectAvailable(t, 3, "1002")
	got, _ = s.cbCode(t, "1001", pa, "#39")
	expectStatus(t, "A cancels", got, "603 CallBack Cancelled")

	// A in DND-Reject is still alerted (F22, A's side).
	b, d := s.cbBusyB(t, pb, "1004", pd, true)
	s.cbActivateCCBS(t, "1001", pa)
	got, _ = s.cbCode(t, "1001", pa, "*78")
	expectStatus(t, "A dials *78", got, "603 DND On")
	b.pass(t)
	d.pass(t)
	display.expectAvailable(t, 6, "1002")
	display.pass(t)
}

// TestF24_F25_RemovalAndReset: B's device resets while A waits on busy
// B (its second phone registers again with a new Call-ID, as after a
// reboot): nothing is cancelled, and A is told when B frees. B's line is
// then removed while A's screen says B is available: Dial gives reorder
// (503) and A may cancel. Last, A's own device resets after A activated:
// the call back is cancelled (no screen when the callee returns).
func TestF24_F25_RemovalAndReset(t *testing.T) {
	need(t, "sipp")
	ports := callPorts(t, 5)
	pa, pa2, pb, pb2, pd := ports[0], ports[1], ports[2], ports[3], ports[4]
	s := startServer(t, featureConfig("", demoLines))
	s.registerAll(t, dev{"1001", pa}, dev{"1001", pa2}, dev{"1002", pb}, dev{"1002", pb2}, dev{"1004", pd})

	// F25, B's device reset.
	display := s.cbStart(t, "A's display", "display.xml", pa2, true, "-m", "2")
	b, d := s.cbBusyB(t, pb, "1004", pd, true)
	s.cbActivateCCBS(t, "1001", pa)
	display.expectScreen(t, 1, activatedScreen("1002"))
	mark := s.cbMark()
	s.register(t, "1002", pb2) // B's second phone restarts
	s.cbWaitLog(t, mark, `device restarted`)
	b.pass(t)
	d.pass(t)
	display.expectAvailable(t, 2, "1002")
	display.pass(t)
	if strings.Contains(s.cbLogSince(mark), "reason=reset") {
		t.Fatal("B's device reset cancelled A's call back")
	}

	// F24: B removed while A's screen says B is available.
	if code, body := s.api(t, "DELETE", "/api/v1/lines/1002", ""); code != 204 && code != 200 {
		t.Fatalf("DELETE line 1002: %d %s", code, body)
	}
	got, _ := s.cbCode(t, "1001", pa, "*39")
	expectStatus(t, "A dials *39 (Dial) after B was removed", got, "503 Service Unavailable (CallBack)")
	got, _ = s.cbCode(t, "1001", pa, "#39")
	expectStatus(t, "A cancels", got, "603 CallBack Cancelled")

	// F25, A's device reset: A waits on 1004, which de-registered.
	mark = s.cbMark()
	mustPass(t, "1004 de-registers", s.sippPlay(t, "register.xml", pd, "-s", "1004", "-au", "1004", "-ap", "demo1004", "-set", "expires", "0"))
	s.cbWaitLog(t, mark, `msg=unregistered dn=1004`)
	s.cbRun(t, "A calls unregistered 1004", "uac_unavailable.xml", pa, "-s", "1004", "-set", "caller", "1001")
	got, _ = s.cbCode(t, "1001", pa, "*39")
	expectStatus(t, "A dials *39 on 1004", got, "603 CallBack Activated")
	mark = s.cbMark()
	s.register(t, "1001", pa) // A's phone restarts: a new Call-ID
	s.cbWaitLog(t, mark, `msg="call back ended" id=\d+ reason=reset`)
	s.register(t, "1004", pd)
	got, _ = s.cbCode(t, "1001", pa, "*39")
	expectStatus(t, "A dials *39 after its reset", got, "603 CallBack Not Active")
}

// TestF27_RoutePoint: A calls route point 2000 (members 1002, 1003), both
// busy: 486; *39 asks for the call back on the line the route point tried
// first, 1002; when 1002 frees A is told and Dial reaches 1002.
func TestF27_RoutePoint(t *testing.T) {
	need(t, "sipp")
	ports := callPorts(t, 6)
	pa, pb, pc, pd, pd2, pd3 := ports[0], ports[1], ports[2], ports[3], ports[4], ports[5]
	s := startServer(t, featureConfig("", demoLines+`
[[line]]
dn = "2000"
kind = "route-point"
members = ["1002", "1003"]
`))
	s.registerAll(t, dev{"1001", pa}, dev{"1002", pb}, dev{"1003", pc}, dev{"1004", pd}, dev{"1004", pd2}, dev{"1004", pd3})
	// 1004 keeps both members busy, from two of its phones.
	mark := s.cbMark()
	b := s.cbStart(t, "1002 busy with 1004", "uas_hangs_up.xml", pb, true, "-m", "1", "-d", cbHold)
	d1 := s.cbStart(t, "1004 calls 1002", "uac_callee_hangs_up.xml", pd2, false, "-m", "1", "-s", "1002", "-set", "caller", "1004")
	s.cbBusy(t, mark, "1002")
	mark = s.cbMark()
	c := s.cbStart(t, "1003 busy with 1004", "uas.xml", pc, true, "-m", "1")
	d2 := s.cbStart(t, "1004 calls 1003", "web_uac_hangup_on_info.xml", pd3, false, "-m", "1", "-s", "1003", "-set", "caller", "1004")
	s.cbBusy(t, mark, "1003")

	a := s.cbRun(t, "A calls the route point", "uac_busy.xml", pa, "-s", "2000", "-set", "caller", "1001")
	if got, _ := a.final(t); got != "486 Busy Here" {
		t.Fatalf("A's call to the route point: %q", got)
	}
	mark = s.cbMark()
	got, _ := s.cbCode(t, "1001", pa, "*39")
	expectStatus(t, "A dials *39", got, "603 CallBack Activated")
	s.cbWaitLog(t, mark, `action="persist #1 1001->1002 CCBS active`)
	b.pass(t)
	d1.pass(t)
	s.cbWaitLog(t, mark, `action="persist #1 1001->1002 CCBS available`)
	s.cbDial(t, pa, pb)
	d2.hangUp(t, pd3)
	c.pass(t)
}

// TestForwardingLoop: B forwards all calls to C and C to B: A's call ends
// at once with 482 Loop Detected, one INVITE in and one answer out, and
// neither phone rings.
func TestForwardingLoop(t *testing.T) {
	need(t, "sipp")
	ports := callPorts(t, 3)
	pa, pb, pc := ports[0], ports[1], ports[2]
	s := startServer(t, featureConfig("", demoLines))
	s.registerAll(t, dev{"1001", pa}, dev{"1002", pb}, dev{"1003", pc})
	for _, c := range []struct {
		dn         string
		port       int
		code, want string
	}{
		{"1002", pb, "*211003", "603 Forward All To 1003"},
		{"1003", pc, "*211002", "603 Forward All To 1002"},
	} {
		got, _ := s.cbCode(t, c.dn, c.port, c.code)
		expectStatus(t, c.dn+" dials "+c.code, got, c.want)
	}
	mark := s.cbMark()
	a := s.cbRun(t, "A calls B", "uac_fails.xml", pa, "-s", "1002", "-set", "caller", "1001")
	if got, _ := a.final(t); got != "482 Loop Detected" {
		t.Fatalf("A's call into a forwarding loop: %q, want 482 Loop Detected", got)
	}
	if n := strings.Count(s.cbLogSince(mark), "forwarding loop"); n != 1 {
		t.Fatalf("the loop was logged %d times, want once", n)
	}
	if m := metricsText(t, s); strings.Contains(m, `callbackd_sip_messages_total{direction="out",kind="INVITE"}`) {
		t.Fatalf("the loop made the server send INVITEs:\n%s", grepLines(m, `callbackd_sip_messages_total{direction="out"`))
	}
}

// TestF14_DialPutsTheOtherCallOnHold: A waits on busy B and meanwhile talks
// to C (A takes two calls, so it is not busy). B frees; A presses Dial on the console (the API's key press): C
// gets a hold re-INVITE (a=sendonly) first, then A's phone rings with the
// recall, answers, and B's phone rings with A's number.
func TestF14_DialPutsTheOtherCallOnHold(t *testing.T) {
	need(t, "sipp")
	ports := callPorts(t, 5)
	pa, pa2, pb, pc, pd := ports[0], ports[1], ports[2], ports[3], ports[4]
	// A takes two calls (busy_trigger 2): in one call it is not busy
	// (F17), so it is told when B frees while it talks to C.
	s := startServer(t, featureConfig("", demoLinesWith("1001", "busy_trigger = 2\n")))
	s.registerAll(t, dev{"1001", pa}, dev{"1001", pa2}, dev{"1002", pb}, dev{"1003", pc}, dev{"1004", pd})
	phoneA := s.cbStart(t, "A's second phone", "web_phone.xml", pa2, true, "-m", "50")
	b, d := s.cbBusyB(t, pb, "1004", pd, true)
	s.cbActivateCCBS(t, "1001", pa)

	mark := s.cbMark()
	c := s.cbStart(t, "C, A's other call", "uas_held.xml", pc, true, "-m", "1")
	a := s.cbStart(t, "A calls C", "uac.xml", pa, false, "-m", "1", "-s", "1003", "-set", "caller", "1001", "-d", "8000")
	s.cbWaitLog(t, mark, `msg="line state" dn=1003 from=\S+ to=busy`)
	b.pass(t)
	d.pass(t)
	s.cbWaitLog(t, mark, `CCBS available`)
	bCall := s.cbStart(t, "B takes the call back", "cb_uas_callback.xml", pb, true, "-m", "1")

	if code, body := s.api(t, "POST", "/api/v1/lines/1001/keys", `{"key":"Dial"}`); code != 200 {
		t.Fatalf("Dial on A's console: %d %s", code, body)
	}
	waitFor(t, "B's phone rings with the call back", func() bool { return len(bCall.received("INVITE")) > 0 })
	holds := c.received("INVITE")
	if len(holds) != 2 || !strings.Contains(holds[1].Body(), "a=sendonly") {
		t.Fatalf("C got %d INVITEs, want its call and then the hold (a=sendonly)", len(holds))
	}
	var recall sipptrace.Message
	for _, m := range phoneA.received("INVITE") {
		if m.Header("Alert-Info") == alertURN {
			recall = m
		}
	}
	if recall.Text == "" || !holds[1].At.Before(recall.At) {
		t.Fatalf("A's phone: recall INVITE %v at %s, C held at %s: want the hold first", recall.Text != "", recall.At, holds[1].At)
	}
	if from := bCall.received("INVITE")[0].Header("From"); !strings.Contains(from, "sip:1001@") {
		t.Errorf("B rings with From %q, want A", from)
	}
	a.pass(t) // A hangs up its call with C
	c.pass(t)
}

// waitFor polls cond until it holds, for at most cbWait.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(cbWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, cbWait)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestF23_ExtensionMobility: user 501 (line 1001) logs in on hot-desk
// phone 3001 (a wrong PIN first: refused). From it, calls are 1001's: the
// call to busy B and *39 make 1001's call back. Logging out cancels it;
// the phone is 3001's again. Logged in again with a new call back, the
// user logs in on another phone (3002): the call back is cancelled, and
// calls to 1001 ring the new phone.
func TestF23_ExtensionMobility(t *testing.T) {
	need(t, "sipp")
	ports := callPorts(t, 4)
	p1, p2, pb, pd := ports[0], ports[1], ports[2], ports[3]
	s := startServer(t, featureConfig("", demoLines+`
[[line]]
dn = "3001"
password = "demo3001"
[[line]]
dn = "3002"
password = "demo3002"
[[user]]
id = "501"
pin = "1234"
line = "1001"
`))
	s.registerAll(t, dev{"3001", p1}, dev{"3002", p2}, dev{"1002", pb}, dev{"1004", pd})
	got, _ := s.cbCode(t, "3001", p1, "*40501*9999")
	expectStatus(t, "login with a wrong PIN", got, "603 Login Refused")
	got, _ = s.cbCode(t, "3001", p1, "*40501*1234")
	expectStatus(t, "login on 3001", got, "603 Logged In 501")

	mark := s.cbMark()
	bBusy, c := s.cbBusyBUntil(t, pb, "1004", pd)
	s.cbRun(t, "the user calls busy B from 3001", "uac_busy.xml", p1, "-s", "1002", "-set", "caller", "3001")
	got, _ = s.cbCode(t, "3001", p1, "*39")
	expectStatus(t, "the user dials *39", got, "603 CallBack Activated")
	s.cbWaitLog(t, mark, `action="persist #1 1001->1002 CCBS active`)
	got, _ = s.cbCode(t, "3001", p1, "#40")
	expectStatus(t, "logout", got, "603 Logged Out")
	s.cbWaitLog(t, mark, `msg="call back ended" id=1 reason=mobility`)
	got, _ = s.cbCode(t, "3001", p1, "*39")
	expectStatus(t, "*39 on 3001 after the logout", got, "603 CallBack Not Active")

	got, _ = s.cbCode(t, "3001", p1, "*40501*1234")
	expectStatus(t, "login on 3001 again", got, "603 Logged In 501")
	s.cbRun(t, "the user calls busy B again", "uac_busy.xml", p1, "-s", "1002", "-set", "caller", "3001")
	got, _ = s.cbCode(t, "3001", p1, "*39")
	expectStatus(t, "the user dials *39 again", got, "603 CallBack Activated")
	got, _ = s.cbCode(t, "3002", p2, "*40501*1234")
	expectStatus(t, "login on 3002", got, "603 Logged In 501")
	s.cbWaitLog(t, mark, `msg="call back ended" id=2 reason=mobility`)

	c.hangUp(t, pd)
	bBusy.pass(t)
	phone2 := s.cbStart(t, "3002 rings for 1001", "uas.xml", p2, true, "-m", "1")
	s.cbRun(t, "B calls 1001", "uac.xml", pb, "-s", "1001", "-set", "caller", "1002", "-d", "200")
	phone2.pass(t)
	if inv := phone2.received("INVITE"); len(inv) != 1 || !strings.Contains(inv[0].Header("From"), "sip:1002@") {
		t.Fatalf("phone 3002 got %d INVITEs for 1001, want B's call", len(inv))
	}
}

// TestF33_ProfileWithoutCallBack: 1003's profile has no CallBack key. Its
// call to busy B fails 486 at once, without the offer's announcement, and
// *39 is "Key Not Active"; 1001 (the default profile) still activates.
func TestF33_ProfileWithoutCallBack(t *testing.T) {
	need(t, "sipp")
	ports := callPorts(t, 4)
	pa, pb, pc, pd := ports[0], ports[1], ports[2], ports[3]
	s := startServer(t, "[[profile]]\nname = \"no-callback\"\ncallback = false\n"+
		demoLinesWith("1003", "profile = \"no-callback\"\n"))
	s.registerAll(t, dev{"1001", pa}, dev{"1002", pb}, dev{"1003", pc}, dev{"1004", pd})
	s.cbBusyB(t, pb, "1004", pd, false)
	// uac_busy.xml takes no 183: the offer would fail the run.
	c := s.cbRun(t, "1003 calls busy B", "uac_busy.xml", pc, "-s", "1002", "-set", "caller", "1003")
	if got, _ := c.final(t); got != "486 Busy Here" {
		t.Fatalf("1003's call to busy B: %q, want 486 at once, no offer", got)
	}
	got, _ := s.cbCode(t, "1003", pc, "*39")
	expectStatus(t, "1003 dials *39", got, "603 Key Not Active")
	got, _ = s.cbCode(t, "1001", pa, "*391002")
	expectStatus(t, "1001 dials *391002", got, "603 CallBack Activated")
}
