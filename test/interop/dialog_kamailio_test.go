package interop

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/callbackd/callbackd/test/sipptrace"
)

// Beside another server (B6): Kamailio from Debian, with its presence
// modules, is the PBX whose users' dialog state callbackd watches
// (test/interop/kamailio/dialog.cfg). SIPp phones register there.

// kamailio is a running Kamailio, started by the test and stopped by pid.
type kamailio struct {
	Port int
	cmd  *exec.Cmd
	out  bytes.Buffer
}

// startKamailio runs Kamailio with the repository's dialog.cfg on a free
// loopback port, its db_text tables (presence, pua) in a temp folder, and
// returns once it listens; args are more of its options (-A defines).
func startKamailio(t *testing.T, args ...string) *kamailio {
	t.Helper()
	bin := need(t, "kamailio")
	for _, m := range []string{"presence.so", "presence_dialoginfo.so", "pua.so", "pua_dialoginfo.so"} {
		if _, err := os.Stat(filepath.Join("/usr/lib/x86_64-linux-gnu/kamailio/modules", m)); err != nil {
			t.Fatalf("Kamailio module %s missing: apt-get install kamailio-presence-modules (.ci/run)", m)
		}
	}
	dir := t.TempDir()
	db := filepath.Join(dir, "db")
	if err := os.Mkdir(db, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"version", "presentity", "active_watchers", "watchers", "xcap", "pua"} {
		b, err := os.ReadFile(filepath.Join("/usr/share/kamailio/dbtext/kamailio", table))
		if err != nil {
			t.Fatalf("Kamailio's db_text schema: %v", err)
		}
		if err := os.WriteFile(filepath.Join(db, table), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := filepath.Abs("kamailio/dialog.cfg")
	if err != nil {
		t.Fatal(err)
	}
	k := &kamailio{Port: freePort(t)}
	k.cmd = exec.Command(bin, append([]string{"-DD", "-E", "-f", cfg, "-l", fmt.Sprintf("udp:127.0.0.1:%d", k.Port),
		"-A", `DBURL="text://` + db + `"`, "-A", fmt.Sprintf(`PRES="sip:127.0.0.1:%d"`, k.Port), "-m", "64", "-M", "8", "-w", dir}, args...)...)
	k.cmd.Stdout, k.cmd.Stderr = &k.out, &k.out
	k.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its children go with it
	if err := k.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { k.cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		syscall.Kill(-k.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			syscall.Kill(-k.cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		if t.Failed() {
			t.Logf("kamailio log:\n%s", lastChars(k.out.String(), 6000))
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for !portBound("udp", k.Port) {
		select {
		case <-done:
			t.Fatalf("kamailio exited: %s", k.out.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("kamailio does not listen after 10 s: %s", k.out.String())
		}
	}
	return k
}

// sipp is a SIPp runner aimed at Kamailio instead of callbackd.
func (k *kamailio) sipp(t *testing.T) *server {
	return &server{t: t, SIPPort: k.Port}
}

// monitorTrunk is the [[trunk]] to Kamailio: its numbers 2xxx, watched
// through the dialog event package; the lines may call them.
func monitorTrunk(k *kamailio) string { return monitorTrunkWith(k, "") }

// monitorTrunkWith is monitorTrunk with more trunk keys (TOML lines).
func monitorTrunkWith(k *kamailio, keys string) string {
	return fmt.Sprintf("[[trunk]]\nname = \"pbx\"\naddress = \"udp:127.0.0.1:%d\"\nprefixes = [\"2\"]\nmonitor = \"dialog\"\n%s"+
		"[[profile]]\nname = \"default\"\ndial_out = \"all\"\n", k.Port, keys)
}

// TestB6_F11_KamailioCalleeBusyThenFree: line 1001 calls 2001, a user of
// Kamailio busy in a call with 2002 there: 486 through the trunk. 1001
// activates (*39); callbackd subscribes to 2001's dialog state on
// Kamailio. 2002 hangs up: within a second 1001 sees "2001 has become
// available" and its phone rings with the recall alert (F11, F12); Dial
// (*39 again) rings 2001 through the trunk with 1001's identity.
func TestB6_F11_KamailioCalleeBusyThenFree(t *testing.T) {
	kc := kamCallBack(t, "4000", "")
	s, kp, pa, pb := kc.s, kc.kp, kc.pa, kc.pb
	s.cbWaitLog(t, kc.mark, `action="persist #1 1001->2001 CCBS active seen=2001"`)
	s.cbWaitLog(t, kc.mark, `msg="watching a number's dialog state" number=2001 trunk=pbx`)
	kc.told(t, kc.freed(t).At)
	s.cbWaitLog(t, kc.mark, `msg="watched number's dialog state" number=2001 off_hook=false`)

	// Dial: 2001 rings through Kamailio with 1001's identity.
	mark := s.cbMark()
	bAgain := kp.cbStart(t, "2001 answers the call back", "cb_uas_callback.xml", pb, true, "-m", "1")
	dial := s.cbRun(t, "1001 presses Dial (*39)", "uac.xml", pa, "-s", "*39", "-set", "caller", "1001", "-d", "300")
	bAgain.pass(t)
	invs := bAgain.received("INVITE")
	if len(invs) != 1 || !strings.Contains(invs[0].Header("From"), "sip:1001@") || !strings.Contains(invs[0].Header("To"), "sip:2001@") {
		t.Fatalf("2001 got INVITEs %v, want one from sip:1001@ to sip:2001@", invs)
	}
	if st, _ := dial.final(t); st != "200 OK" {
		t.Errorf("1001's Dial call: final response %q, want 200 OK", st)
	}
	s.cbWaitLog(t, mark, `msg="call back ended" id=1 reason=completed`)
	if regexp.MustCompile(`level=ERROR`).MatchString(s.Log()) {
		t.Error("the server logged an error")
	}
}

// sentRequest is the first request of method a SIPp run sent.
func sentRequest(t *testing.T, trace, method string) sipptrace.Message {
	t.Helper()
	for _, m := range sipptrace.Parse(trace) {
		if !m.Received && m.IsRequest(method) {
			return m
		}
	}
	t.Fatalf("no %s sent", method)
	return sipptrace.Message{}
}

// kamBusy makes 2001 busy at Kamailio: 2002 calls it there (both
// registered from pb and pc), 2001 answers; 2002 hangs up after holdMs.
// It returns once 2001 is in the call, with 2001's phone and the channel
// 2002's run ends on.
func kamBusy(t *testing.T, kp *server, pb, pc int, holdMs string) (*sippDevice, chan sippRun) {
	t.Helper()
	for dn, port := range map[string]int{"2001": pb, "2002": pc} {
		mustPass(t, "register "+dn+" at Kamailio", kp.sippPlay(t, "dialog_kam_register.xml", port, "-s", dn))
	}
	b := kp.sippDevice(t, "2001", "uas.xml", pb)
	done := make(chan sippRun, 1)
	go func() {
		done <- kp.sippPlay(t, "dialog_kam_uac.xml", pc, "-s", "2001", "-set", "caller", "2002", "-d", holdMs)
	}()
	b.waitReceived(t, "ACK", 1)
	return b, done
}

// kamCase is a call back of 1001 on 2001, a user of Kamailio busy in a
// call with 2002 there: 1001 (registered from pa, with a display on pd
// that takes its screens) called 2001, got 486 through the trunk, dialed
// *39 and is activated; callbackd watches 2001. 2002 hangs up after hold.
type kamCase struct {
	k       *kamailio
	kp, s   *server
	pa, pb  int
	display *cbPhone
	b       *sippDevice  // 2001's phone in the call with 2002
	c       chan sippRun // 2002's run, once it hung up
	mark    int          // the server's log before *39
}

func kamCallBack(t *testing.T, hold string, lines string) *kamCase {
	t.Helper()
	kc := kamActivated(t, hold, lines, "")
	// Kamailio's NOTIFY: 2001 in a confirmed call.
	kc.s.cbWaitLog(t, kc.mark, `msg="watched number's dialog state" number=2001 off_hook=true`)
	return kc
}

// kamActivated is kamCallBack up to the activation, with more trunk keys
// (TOML lines) and more Kamailio options.
func kamActivated(t *testing.T, hold, lines, trunkKeys string, kamArgs ...string) *kamCase {
	t.Helper()
	need(t, "sipp")
	kc := &kamCase{k: startKamailio(t, kamArgs...)}
	kc.kp = kc.k.sipp(t)
	ports := callPorts(t, 4)
	pd, pc := ports[1], ports[3]
	kc.pa, kc.pb = ports[0], ports[2]
	kc.s = startServer(t, cbConfig("", monitorTrunkWith(kc.k, trunkKeys)+lines))
	kc.s.register(t, "1001", kc.pa)
	kc.s.register(t, "1001", pd)
	kc.display = kc.s.cbStart(t, "A's display", "display.xml", pd, true, "-m", "3")
	kc.b, kc.c = kamBusy(t, kc.kp, kc.pb, pc, hold)

	kc.s.cbRun(t, "1001 calls busy 2001", "uac_busy.xml", kc.pa, "-s", "2001", "-set", "caller", "1001").pass(t)
	kc.mark = kc.s.cbMark()
	got, _ := kc.s.cbCode(t, "1001", kc.pa, "*39")
	expectStatus(t, "1001 dials *39 after 2001 was busy", got, "603 CallBack Activated")
	kc.display.expectScreen(t, 1, activatedScreen("2001"))
	return kc
}

// freed waits for 2002's hang-up and returns its BYE.
func (kc *kamCase) freed(t *testing.T) sipptrace.Message {
	t.Helper()
	c := <-kc.c
	mustPass(t, "2002 calls 2001 and hangs up", c)
	mustPass(t, "2001 answers, gets BYE", kc.b.wait(t))
	return sentRequest(t, c.Trace, "BYE")
}

// told checks that 1001's display shows 2001 available within a second
// of since, and rings with the recall alert.
func (kc *kamCase) told(t *testing.T, since time.Time) {
	t.Helper()
	avail := kc.display.expectAvailable(t, 2, "2001")
	if lag := avail.At.Sub(since); lag < -50*time.Millisecond || lag > time.Second {
		t.Errorf("1001's availability screen came %v after 2001 became free, want within 1 s", lag)
	}
	kc.display.mustAlert(t, "2001")
	kc.display.pass(t)
}

// TestB6_F29_KamailioAutoRecall: as TestB6_F11_KamailioCalleeBusyThenFree
// with 1001 on the automatic recall (F29): once 2002 hangs up, the server
// rings 1001, and when 1001 answers it calls 2001 through the trunk, with
// 1001's identity, and connects the two.
func TestB6_F29_KamailioAutoRecall(t *testing.T) {
	need(t, "sipp")
	k := startKamailio(t)
	kp := k.sipp(t)
	ports := callPorts(t, 3)
	pa, pb, pc := ports[0], ports[1], ports[2]
	s := startServer(t, "[callback]\nannounce = false\n"+monitorTrunk(k)+demoLinesWith("1001", "notification = \"auto-recall\"\n"))
	rtpA, rtpB := newRTPPeer(t, 0xA), newRTPPeer(t, 0xB)
	s.register(t, "1001", pa)
	b, cDone := kamBusy(t, kp, pb, pc, "3000")

	s.cbRun(t, "1001 calls busy 2001", "uac_busy.xml", pa, "-s", "2001", "-set", "caller", "1001").pass(t)
	mark := s.cbMark()
	got, _ := s.cbCode(t, "1001", pa, "*39")
	expectStatus(t, "1001 dials *39 after 2001 was busy", got, "603 CallBack Activated")
	s.cbWaitLog(t, mark, `action="persist #1 1001->2001 CCBS active auto-recall`)
	recall := s.cbStart(t, "1001 takes the recall", "media_uas_recall.xml", pa, true, "-m", "2", "-key", "rtpport", fmt.Sprint(rtpA.port()))

	mustPass(t, "2002 calls 2001 and hangs up", <-cDone)
	mustPass(t, "2001 answers, gets BYE", b.wait(t))
	bAns := kp.cbStart(t, "2001 answers the recall's call", "media_uas_hangs_up.xml", pb, true, "-m", "1", "-d", "1000",
		"-key", "rtpport", fmt.Sprint(rtpB.port()))
	bAns.pass(t)
	recall.pass(t)
	invs := bAns.received("INVITE")
	if len(invs) != 1 || !strings.Contains(invs[0].Header("From"), "sip:1001@") {
		t.Fatalf("2001 got INVITEs %v, want one from sip:1001@", invs)
	}
	s.cbWaitLog(t, mark, `msg="recall connected" caller=1001 callee=2001`)
}

// TestB6_B3_KamailioWatchSurvivesKill9: 1001 has a call back on 2001,
// busy at Kamailio; callbackd is killed (SIGKILL) and started again: its
// stored subscription to 2001's dialog state is refreshed in its dialog
// (Kamailio keeps one watcher), the request comes back, and when 2002
// hangs up 1001 is told within a second.
func TestB6_B3_KamailioWatchSurvivesKill9(t *testing.T) {
	kc := kamCallBack(t, "6000", "")
	s := kc.s
	s.kill9()
	mark := s.cbMark()
	s.restart()
	s.cbWaitLog(t, mark, `msg="call back requests restored" requests=1`)
	s.cbWaitLog(t, mark, `msg="watched number's dialog state" number=2001 off_hook=true`)
	if strings.Contains(s.cbLogSince(mark), `msg="watching a number's dialog state"`) {
		t.Error("a new subscription was made after the restart; want the stored one refreshed")
	}
	kc.told(t, kc.freed(t).At)
}

// TestB6_F17_KamailioCalleeFreeWhileCallerBusy: 2001 (at Kamailio) becomes
// free while 1001 is in a call of its own: 1001 is not alerted, the
// request is suspended (F17); when 1001's call ends, monitoring resumes,
// 2001 being free, and 1001 is told.
func TestB6_F17_KamailioCalleeFreeWhileCallerBusy(t *testing.T) {
	kc := kamCallBack(t, "8000", "")
	s, p2 := kc.s, onePort(t)
	s.register(t, "1002", p2)

	// 1001 busy: it calls 1002 for 10 s (past 2002's hang-up).
	mark := s.cbMark()
	other := s.cbStart(t, "1002 answers 1001", "uas.xml", p2, true, "-m", "1")
	call := s.cbStart(t, "1001 calls 1002", "uac.xml", kc.pa, false, "-m", "1", "-s", "1002", "-set", "caller", "1001", "-d", "10000")
	s.cbWaitLog(t, mark, `msg="line state" dn=1001 from=\S+ to=busy calls=1 `)

	kc.freed(t)
	s.cbWaitLog(t, mark, `action="persist #1 1001->2001 CCBS suspended`)
	if strings.Contains(s.cbLogSince(mark), `action="1001: alert"`) {
		t.Fatal("1001 was alerted while in a call (F17)")
	}
	call.pass(t)
	other.pass(t)
	kc.told(t, call.sent(t, "BYE").At)
}
