package interop

// Issue 18 "Show": a browser walk of every way a call back request ends,
// the console's screen checked after each (F14, F18, F19, F25, F29, B4).
// The real callbackd with short timers (t3 6 s, lifetime 1 min: the least
// the configuration allows), SIPp playing the phones, and Debian's chromium
// driven by test/browser/ends.mjs at the web phone consoles of A (1001, en)
// and L (1004, zh). The callee B (1002) is made unavailable and available
// through the API (DND-Reject on and off, F22), so each round is quick:
//
//   - L asks for a call back on 1003 (not registered) at the start; a
//     minute later its console says, in Chinese, that it expired (F19);
//   - completed by Dial on the console: "Calling 1002 / CallBack has ended";
//   - completed by `*39` from A's phone (Dial on a phone without softkeys);
//   - T3 over (F18): "has become available ... CallBack has ended", no Dial;
//   - cancelled from the phone (`#39`): "deactivated";
//   - A's device reset (F25): no screen;
//   - completed by the automatic recall (F29): A's phone rings, answers, B
//     is called: "Calling 1002".
//
// After each, the console shows exactly the screen's softkeys (Exit: a way
// out; never a Dial for a request that is gone) and a screenshot is taken:
// test-output/browser-ends/ at the repository root (logged).

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/callbackd/callbackd/internal/screen"
)

// screenRE is the regexp of screen sc in locale, its time (if any) left
// open: the console must show exactly that text.
func screenRE(sc screen.Screen, locale string) string {
	sc.At = time.Date(2001, 12, 13, 14, 15, 0, 0, time.Local)
	text := sc.Text(locale)
	stamp := sc.At.Format(screen.TimeLayout(locale))
	return "^" + strings.ReplaceAll(regexp.QuoteMeta(text), regexp.QuoteMeta(stamp), `[0-9:./ -]+`) + "$"
}

type endsWalk struct {
	t      *testing.T
	s      *server
	script *browserScript
}

// do sends one command to ends.mjs and waits for its OK.
func (w *endsWalk) do(cmd map[string]any, d time.Duration) string {
	w.t.Helper()
	b, _ := json.Marshal(cmd)
	if _, err := w.script.stdin.Write(append(b, '\n')); err != nil {
		w.t.Fatalf("ends.mjs: %v", err)
	}
	return w.script.expect(w.t, fmt.Sprintf("OK %s", cmd["op"]), d)
}

// expect: the console of dn shows sc (in locale) with keys.
func (w *endsWalk) expect(dn, name string, sc screen.Screen, locale string, timeout time.Duration) {
	w.t.Helper()
	kind, text := sc.Kind.String(), screenRE(sc, locale)
	if sc.Kind == screen.None {
		text = "^$"
	}
	keys := sc.Kind.Keys()
	if keys == nil {
		keys = []string{}
	}
	w.do(map[string]any{"op": "wait", "dn": dn, "name": name, "kind": kind, "text": text, "keys": keys,
		"timeout": timeout.Milliseconds()}, timeout+browserStep)
	w.t.Logf("%s: %s shows %s", name, dn, kind)
}

// dnd turns DND-Reject of line dn on or off through the API (F22): B is
// unavailable, then available.
func (w *endsWalk) dnd(dn string, on bool) {
	w.t.Helper()
	if code, body := w.s.api(w.t, "PUT", "/api/v1/lines/"+dn, fmt.Sprintf(`{"dnd":%t}`, on)); code != 200 {
		w.t.Fatalf("DND %t on %s: %d %s", on, dn, code, body)
	}
}

// activate asks for a call back of caller on callee through the API (`*39<DN>`).
func (w *endsWalk) activate(caller, callee string) {
	w.t.Helper()
	code, body := w.s.api(w.t, "POST", "/api/v1/callbacks", fmt.Sprintf(`{"caller":%q,"callee":%q}`, caller, callee))
	if code != 201 {
		w.t.Fatalf("activate %s on %s: %d %s", caller, callee, code, body)
	}
}

func TestBrowser_F14_F18_F19_F25_F29_ScreenAfterEveryEnd(t *testing.T) {
	need(t, "sipp")
	chromium, root, out := browserSetup(t, "browser-ends")
	t.Logf("screenshots: %s", out)

	const a, b, l, c = "1001", "1002", "1004", "1003"
	ports := callPorts(t, 4)
	pa, pa2, pb, pl := ports[0], ports[1], ports[2], ports[3]
	s := startServer(t, "[callback]\nalert_ring = \"0s\"\nannounce = false\nt3 = \"6s\"\nlifetime = \"1m\"\nwait_time = \"5s\"\n"+browserLines)
	s.register(t, a, pa)
	s.register(t, a, pa2)
	s.register(t, b, pb)
	s.register(t, l, pl) // an unregistered caller has no call back (F25)
	// A's phone on pa: takes the screens (MESSAGE) and answers every call
	// (the console's Dial rings A first; the automatic recall). pa2 is the
	// device A dials feature codes from.
	phoneA := s.cbStartFor(t, "A's phone", "web_phone.xml", pa, true, 4*time.Minute, "-m", "200")
	_ = phoneA

	script := startBrowserScriptFile(t, root, "ends.mjs", []string{
		"CALLBACKD_URL=http://" + s.HTTP, "OUT_DIR=" + out, "CHROMIUM=" + chromium,
		fmt.Sprintf("STEP_TIMEOUT=%d", browserStep.Milliseconds()),
		fmt.Sprintf("GO_TIMEOUT=%d", (3 * time.Minute).Milliseconds()),
	})
	w := &endsWalk{t: t, s: s, script: script}
	script.expect(t, "READY", browserReady)
	w.do(map[string]any{"op": "open", "dn": a, "password": "demo" + a}, browserReady)
	w.do(map[string]any{"op": "open", "dn": l, "password": "demo" + l}, browserReady)

	// L (zh) on 1003, not registered: it runs out its lifetime meanwhile.
	lifetimeFrom := time.Now()
	w.activate(l, c)
	w.expect(l, "lifetime-activated", screen.Screen{Kind: screen.Activated, DN: c}, "zh", browserStep)

	activated := screen.Screen{Kind: screen.Activated, DN: b}
	available := screen.Screen{Kind: screen.Available, DN: b}
	round := func(name string) {
		t.Helper()
		w.dnd(b, true)
		w.activate(a, b)
		w.expect(a, name+"-activated", activated, "en", browserStep)
	}
	free := func(name string) {
		t.Helper()
		w.dnd(b, false)
		w.expect(a, name+"-available", available, "en", browserStep)
	}
	completed := screen.Screen{Kind: screen.Completed, DN: b}

	// 1. Completed by Dial on the console: the server rings A's phone,
	// then B's, which answers and hangs up.
	round("dial")
	free("dial")
	mark := s.cbMark()
	callB := s.cbStartFor(t, "B answers Dial", "uas_hangs_up.xml", pb, true, time.Minute, "-m", "1", "-d", "500")
	w.do(map[string]any{"op": "press", "dn": a, "key": "Dial"}, browserStep)
	w.expect(a, "dial-completed", completed, "en", browserStep)
	callB.pass(t)
	s.cbWaitLog(t, mark, `msg="call back ended" id=2 reason=completed`)

	// 2. Completed by `*39` from A's phone (Dial: the screen said so).
	round("star39")
	free("star39")
	mark = s.cbMark()
	s.cbDial(t, pa2, pb)
	w.expect(a, "star39-completed", completed, "en", browserStep)
	s.cbWaitLog(t, mark, `msg="call back ended" id=3 reason=completed`)

	// 3. T3 over (F18): B was available, the call back ended, no Dial.
	round("t3")
	free("t3")
	w.expect(a, "t3-ended", screen.Screen{Kind: screen.AvailableEnded, DN: b}, "en", 6*time.Second+browserStep)
	s.cbWaitLog(t, mark, `msg="call back ended" id=4 reason=t3`)

	// 4. Cancelled from the phone: #39.
	round("cancel")
	got, _ := s.cbCode(t, a, pa2, "#39")
	expectStatus(t, "A dials #39", got, "603 CallBack Cancelled")
	w.expect(a, "cancel-deactivated", screen.Screen{Kind: screen.Deactivated, DN: b}, "en", browserStep)

	// 5. A's device resets (registers again with a new Call-ID, F25): the
	// request is cancelled and the console shows no screen.
	round("reset")
	mark = s.cbMark()
	s.register(t, a, pa2)
	s.cbWaitLog(t, mark, `msg="call back ended" id=6 reason=reset`)
	w.expect(a, "reset-no-screen", screen.Screen{Kind: screen.None}, "en", browserStep)

	// 6. Completed by the automatic recall (F29): A's phone rings and
	// answers, then B is called and answers.
	if code, body := s.api(t, "PUT", "/api/v1/lines/"+a, `{"notification":"auto-recall"}`); code != 200 {
		t.Fatalf("A to auto-recall: %d %s", code, body)
	}
	round("recall")
	mark = s.cbMark()
	callB = s.cbStartFor(t, "B answers the recall", "uas_hangs_up.xml", pb, true, time.Minute, "-m", "1", "-d", "500")
	w.dnd(b, false)
	w.expect(a, "recall-completed", completed, "en", browserStep)
	callB.pass(t)
	s.cbWaitLog(t, mark, `msg="call back ended" id=7 reason=completed`)

	// 7. L's request outlived its lifetime (F19): L is told, in Chinese.
	left := time.Minute - time.Since(lifetimeFrom)
	w.expect(l, "lifetime-expired", screen.Screen{Kind: screen.Expired, DN: c}, "zh", max(left, 0)+browserStep)
	s.cbWaitLog(t, 0, `msg="call back ended" id=1 reason=expired`)

	w.do(map[string]any{"op": "quit"}, browserStep)
	select {
	case <-script.done:
	case <-time.After(browserStep):
		t.Fatal("ends.mjs did not exit after quit")
	}
	if script.err != nil {
		t.Fatalf("ends.mjs: %v", script.err)
	}
	shots, _ := filepath.Glob(filepath.Join(out, "*.png"))
	if len(shots) < 16 {
		t.Errorf("screenshots: %d in %s, want one per check", len(shots), out)
	}
}
