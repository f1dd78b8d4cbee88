package interop

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/callbackd/callbackd/test/sipptrace"
)

// The dialog event package served for our lines (RFC 4235 on RFC 6665):
// SIPp phones watch a line while calls ring, answer and end on it.

// watcher starts a SIPp phone of line watcher subscribing to line dn's
// dialog state with scenario, from port, in the background.
func (s *server) watcher(t *testing.T, scenario, watcher, dn string, port int, args ...string) *sippDevice {
	t.Helper()
	a := append([]string{"-s", dn, "-set", "watcher", watcher, "-au", watcher, "-ap", "demo" + watcher,
		"-auth_uri", fmt.Sprintf("%s@127.0.0.1:%d", dn, s.SIPPort)}, args...)
	return s.sippDevice(t, "watcher "+watcher, scenario, port, a...)
}

// waitReceived waits until the SIPp phone has received n requests of method
// (its message trace, written as they come).
func (d *sippDevice) waitReceived(t *testing.T, method string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(d.dir, "messages.log"))
		if len(notifies(string(b), method)) >= n {
			return
		}
		select {
		case <-d.done:
			t.Fatalf("%s ended before %d %s arrived\n%s", d.name, n, method, d.out.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: fewer than %d %s within 10 s\n%s", d.name, n, method, b)
		}
	}
}

// notifies returns the requests of method received in a SIPp trace, in
// order, retransmissions left out.
func notifies(trace, method string) []sipptrace.Message {
	var out []sipptrace.Message
	seen := map[string]bool{}
	for _, m := range sipptrace.Parse(trace) {
		if !m.Received || !m.IsRequest(method) || seen[m.Header("CSeq")] {
			continue
		}
		seen[m.Header("CSeq")] = true
		out = append(out, m)
	}
	return out
}

// mustContain fails unless the message has every piece.
func mustContain(t *testing.T, what string, m sipptrace.Message, pieces ...string) {
	t.Helper()
	for _, p := range pieces {
		if !strings.Contains(m.Text, p) {
			t.Errorf("%s: no %q in\n%s", what, p, m.Text)
		}
	}
}

// TestB6_DialogWatchFullThenPartial (B6 served, B5): line 1003's phone
// watches line 1002, which has two devices. 1001 calls 1002: both devices
// ring, one answers, 1001 hangs up. The watcher gets the full state
// first (no call), then one partial NOTIFY per change of the call, early,
// confirmed, terminated, versions 1, 2, 3, the line's two devices being one
// line; the remote party shown (watch_lines = "identity"); then it
// unsubscribes and gets the final NOTIFY.
func TestB6_DialogWatchFullThenPartial(t *testing.T) {
	t.Parallel()
	s := startServer(t, noOffer+demoLines+"[[profile]]\nname = \"default\"\nwatch_lines = \"identity\"\n")
	p := callPorts(t, 4) // 1002's devices 1 and 2, 1001's, the watcher's
	s.register(t, "1002", p[0])
	s.register(t, "1002", p[1])
	s.register(t, "1001", p[2])
	w := s.watcher(t, "dialog_watch.xml", "1003", "1002", p[3], "-set", "expires", "600")
	w.waitReceived(t, "NOTIFY", 1) // the full state is out before the call begins

	d1 := s.sippDevice(t, "1002/1", "uas_answer_after_ringing.xml", p[0], "-d", "300")
	d2 := s.sippDevice(t, "1002/2", "uas_ring.xml", p[1])
	a := s.sippCall(t, "uac.xml", "1001", "1002", p[2], "-d", "300")
	mustPass(t, "caller 1001", a)
	mustPass(t, "device 1002/1", d1.wait(t))
	mustPass(t, "device 1002/2", d2.wait(t))
	r := w.wait(t)
	mustPass(t, "watcher 1003", r)

	n := notifies(r.Trace, "NOTIFY")
	if len(n) != 5 {
		t.Fatalf("%d NOTIFYs, want 5 (full, early, confirmed, terminated, final)\n%s", len(n), r.Trace)
	}
	for i, m := range n[:4] {
		mustContain(t, fmt.Sprintf("NOTIFY %d", i+1), m, "Event: dialog", "Content-Type: application/dialog-info+xml",
			"Subscription-State: active;expires=", fmt.Sprintf(`version="%d"`, i), `entity="sip:1002@`)
	}
	if strings.Contains(n[0].Body(), "<dialog ") || !strings.Contains(n[0].Body(), `state="full"`) {
		t.Errorf("first NOTIFY is not the full state of an idle line:\n%s", n[0].Body())
	}
	for i, state := range []string{"early", "confirmed", "terminated"} {
		m := n[i+1]
		mustContain(t, "partial NOTIFY "+state, m, `state="partial"`, "<state>"+state+"</state>", `direction="recipient"`,
			"<identity>sip:1002@", ">sip:1001@")
		if c := strings.Count(m.Body(), "<dialog "); c != 1 {
			t.Errorf("partial NOTIFY %s has %d dialogs, want 1 (one call, two devices: B5)", state, c)
		}
	}
	if id := dialogID(n[1].Body()); id == "" || id != dialogID(n[2].Body()) || id != dialogID(n[3].Body()) {
		t.Errorf("the call's dialog id changes between NOTIFYs")
	}
	mustContain(t, "final NOTIFY", n[4], "Subscription-State: terminated")
	if strings.Contains(s.Log(), "level=ERROR") {
		t.Errorf("the server logged an error")
	}
}

func dialogID(body string) string {
	_, rest, ok := strings.Cut(body, `<dialog id="`)
	if !ok {
		return ""
	}
	id, _, _ := strings.Cut(rest, `"`)
	return id
}

// TestB6_DialogSubscribeRefused (B6, B7): a SUBSCRIBE without credentials
// gets 401, with a wrong password 403, from a line whose profile may not
// watch 403, to a DN that is no line 404; nothing is accepted.
func TestB6_DialogSubscribeRefused(t *testing.T) {
	t.Parallel()
	s := startServer(t, demoLinesWith("1004", "profile = \"desk\"\n")+"[[profile]]\nname = \"desk\"\nwatch_lines = \"none\"\n")
	for _, c := range []struct {
		name, watcher, dn, password, code string
	}{
		{"wrong password", "1003", "1002", "wrong", "403"},
		{"profile may not watch", "1004", "1002", "demo1004", "403"},
		{"no such line", "1003", "1999", "demo1003", "404"},
	} {
		r := s.watcher(t, "dialog_refused.xml", c.watcher, c.dn, onePort(t), "-ap", c.password, "-set", "expires", "60").wait(t)
		mustPass(t, c.name, r)
		expectSeq(t, c.name, r.responses(), "401 Unauthorized (SUBSCRIBE)", strings.Join(strings.Fields(c.code+" "+reason[c.code]), " ")+" (SUBSCRIBE)")
	}
	// A line may always watch itself.
	r := s.watcher(t, "dialog_refresh.xml", "1004", "1004", onePort(t), "-set", "expires", "1").wait(t)
	mustPass(t, "1004 watching itself", r)
	if n := strings.Count(s.Log(), `msg="subscription accepted"`); n != 1 {
		t.Errorf("%d subscriptions accepted, want 1 (1004's own)", n)
	}
}

var reason = map[string]string{"403": "Forbidden", "404": "Not Found"}

// TestB6_DialogExpiryAndRefresh (RFC 6665 4.1.2.2, 4.2.2): a watcher asks
// for 2 s, refreshes once in the dialog (a NOTIFY with the full state
// again), then stops refreshing: the server ends the subscription with
// terminated;reason=timeout, in the same dialog, and forgets it.
func TestB6_DialogExpiryAndRefresh(t *testing.T) {
	t.Parallel()
	s := startServer(t, demoLines)
	start := time.Now()
	r := s.watcher(t, "dialog_refresh.xml", "1003", "1002", onePort(t), "-set", "expires", "2").wait(t)
	mustPass(t, "watcher", r)
	expectSeq(t, "watcher's responses", r.responses(), "401 Unauthorized (SUBSCRIBE)", "200 OK (SUBSCRIBE)", "200 OK (SUBSCRIBE)")
	for _, m := range r.received("SIP/2.0 200") {
		if m.Header("Expires") != "2" {
			t.Errorf("200 grants Expires %q, want 2", m.Header("Expires"))
		}
	}
	n := notifies(r.Trace, "NOTIFY")
	if len(n) != 3 {
		t.Fatalf("%d NOTIFYs, want 3", len(n))
	}
	mustContain(t, "refresh NOTIFY", n[1], `state="full"`, `version="1"`, "Subscription-State: active;expires=")
	mustContain(t, "expiry NOTIFY", n[2], "Subscription-State: terminated;reason=timeout")
	if n[2].Header("From") != n[0].Header("From") || n[2].Header("Call-ID") != n[0].Header("Call-ID") {
		t.Error("the expiry NOTIFY is not in the subscription's dialog")
	}
	if time.Since(start) < 2*time.Second {
		t.Error("ended before its 2 s")
	}
	s.waitLog(`msg="subscription expired"`, 5*time.Second)
}

// TestB6_B3_DialogSubscriptionSurvivesKill9: a watcher's subscription is
// stored before its 200; the server is killed (SIGKILL) and started again:
// the subscription goes on, its next NOTIFY in the same dialog with the
// CSeq and the document's version carried on, and the watcher can still
// end it in that dialog.
func TestB6_B3_DialogSubscriptionSurvivesKill9(t *testing.T) {
	t.Parallel()
	s := startServer(t, demoLines)
	w := s.watcher(t, "dialog_restart.xml", "1003", "1002", onePort(t), "-set", "expires", "600")
	w.waitReceived(t, "NOTIFY", 1)
	s.kill9()
	s.restart()
	r := w.wait(t)
	mustPass(t, "watcher across the restart", r)
	n := notifies(r.Trace, "NOTIFY")
	if len(n) != 3 {
		t.Fatalf("%d NOTIFYs, want 3", len(n))
	}
	if n[1].Header("From") != n[0].Header("From") || n[1].Header("Call-ID") != n[0].Header("Call-ID") {
		t.Errorf("the NOTIFY after the restart is not in the subscription's dialog:\n%s\n%s", n[0].Text, n[1].Text)
	}
	first, _ := strconv.Atoi(strings.Fields(n[0].Header("CSeq"))[0])
	after, _ := strconv.Atoi(strings.Fields(n[1].Header("CSeq"))[0])
	if after != first+1 {
		t.Errorf("CSeq %d after the restart, want %d", after, first+1)
	}
	mustContain(t, "NOTIFY after the restart", n[1], `state="full"`, `version="1"`, "Subscription-State: active;expires=")
	mustContain(t, "final NOTIFY", n[2], "Subscription-State: terminated")
}
