package interop

// Issue 18 on the wire: what `*39` means after "Press Dial to call" when
// another call failed meanwhile, and what A's screen says once the request
// ended. SIPp plays every phone; the real binary decides.

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

// completedScreen is the screen once the call back call is placed.
func completedScreen(to string) string {
	return "Calling " + to + "\nCallBack has ended\nPress Exit to quit this screen"
}

// lineScreen is GET /api/v1/lines/{dn}/screen: the screen's kind and keys.
func (s *server) lineScreen(t *testing.T, dn string) (kind string, keys []string) {
	t.Helper()
	code, body := s.api(t, "GET", "/api/v1/lines/"+dn+"/screen", "")
	if code != 200 {
		t.Fatalf("GET screen of %s: %d %s", dn, code, body)
	}
	var sc struct {
		Kind string   `json:"kind"`
		Keys []string `json:"keys"`
	}
	if err := json.Unmarshal([]byte(body), &sc); err != nil {
		t.Fatalf("screen of %s: %v: %s", dn, err, body)
	}
	return sc.Kind, sc.Keys
}

// TestF6_F12_F14_Star39IsDialAfterAvailability: A (1001) has a request on B
// (1002, busy with D); A calls C (1003, not registered: 480), dials *39 and
// gets the F6 question about C, which A leaves alone; B hangs up and A gets
// "1002 has become available ... Press Dial to call". A dials *39: that is
// Dial (the screen says so), not OK to the question about C: the INVITE
// becomes the call to B, B rings with A's identity, the request on B ends
// "completed", none is made on C, and A's screen says the call back ended
// (MESSAGE and API), without a Dial key.
func TestF6_F12_F14_Star39IsDialAfterAvailability(t *testing.T) {
	need(t, "sipp")
	ports := callPorts(t, 4)
	pa1, pa2, pb, pd := ports[0], ports[1], ports[2], ports[3]
	s := startServer(t, cbConfig("", ""))
	s.register(t, "1001", pa1)
	s.register(t, "1001", pa2)
	s.register(t, "1002", pb)
	s.register(t, "1004", pd)

	// Screens: activated, F6, available (+ the alert), completed.
	display := s.cbStart(t, "A's display", "display.xml", pa2, true, "-m", "5")
	b, d := s.cbBusyB(t, pb, "1004", pd, true)

	s.cbRun(t, "A calls busy B", "uac_busy.xml", pa1, "-s", "1002", "-set", "caller", "1001")
	got, act := s.cbCode(t, "1001", pa1, "*39")
	expectStatus(t, "A dials *39 after B was busy", got, "603 CallBack Activated")
	display.expectScreen(t, 1, activatedScreen("1002"))

	s.cbRun(t, "A calls C, not registered", "uac_unavailable.xml", pa1, "-s", "1003", "-set", "caller", "1001")
	got, ask := s.cbCode(t, "1001", pa1, "*39")
	expectStatus(t, "A dials *39 after the call to C failed", got, "603 CallBack Already Active")
	display.expectScreen(t, 2, "CallBack is already active on 1002. Press OK to activate on 1003. Press Exit to quit this screen.")

	b.pass(t) // B hangs up on D
	d.pass(t)
	bye := b.sent(t, "BYE")
	beforeBye(t, "the activation", act, bye)
	beforeBye(t, "the F6 question", ask, bye)
	display.expectAvailable(t, 3, "1002")
	display.mustAlert(t, "1002")
	if kind, keys := s.lineScreen(t, "1001"); kind != "Available" || strings.Join(keys, " ") != "Dial Cancel Exit" {
		t.Fatalf("A's screen after the notice: %s %v, want Available with Dial Cancel Exit", kind, keys)
	}

	// *39 now is Dial: routed to B (cbDial checks B rings with A's identity
	// and A's call is answered).
	mark := s.cbMark()
	s.cbDial(t, pa1, pb)
	s.cbWaitLog(t, mark, `msg="call back ended" id=1 reason=completed`)
	display.expectScreen(t, 4, completedScreen("1002"))
	display.pass(t)
	if l := s.cbLogSince(mark); strings.Contains(l, "reason=replaced") || strings.Contains(l, "1001->1003") {
		t.Fatalf("*39 after the availability screen replaced the request by one on C:\n%s", l)
	}
	if kind, keys := s.lineScreen(t, "1001"); kind != "Completed" || strings.Join(keys, " ") != "Exit" {
		t.Fatalf("A's screen after Dial: %s %v, want Completed with Exit only", kind, keys)
	}
	if code, body := s.api(t, "GET", "/api/v1/callbacks", ""); code != 200 || regexp.MustCompile(`"caller":\s*"1001"`).MatchString(body) {
		t.Fatalf("open requests after Dial: %d %s, want none of 1001", code, body)
	}
	// The Dial call was A's last call: *39 has nothing left to act on.
	got, _ = s.cbCode(t, "1001", pa1, "*39")
	expectStatus(t, "A dials *39 after the call back", got, "603 CallBack Not Active")
}
