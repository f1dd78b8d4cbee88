package interop

import (
	"strings"
	"testing"
)

// kamSubAuth has Kamailio challenge every SUBSCRIBE for user callbackd
// with password kamSubPassword (test/interop/kamailio/dialog.cfg, SUBAUTH).
const kamSubPassword = "w4tch-s3cret"

var kamSubAuth = []string{"-A", "SUBAUTH", "-A", `SUBPASS="` + kamSubPassword + `"`}

// TestB6_F11_KamailioChallengedSubscribe: Kamailio challenges callbackd's
// SUBSCRIBE to 2001's dialog state (401, digest with qop=auth); the
// trunk's username and password answer it, so the watch works as without
// authentication: 2002 hangs up, 1001 is told within a second. The
// password is nowhere in callbackd's log.
func TestB6_F11_KamailioChallengedSubscribe(t *testing.T) {
	kc := kamActivated(t, "4000", "", "username = \"callbackd\"\npassword = \""+kamSubPassword+"\"\n", kamSubAuth...)
	s := kc.s
	s.cbWaitLog(t, kc.mark, `msg="SUBSCRIBE challenged: answered with the credentials of its watcher" id=\S+ code=401 user=callbackd`)
	s.cbWaitLog(t, kc.mark, `msg="watched number's dialog state" number=2001 off_hook=true`)
	kc.told(t, kc.freed(t).At)
	if strings.Contains(s.Log(), kamSubPassword) {
		t.Error("the trunk's password is in the server's log")
	}
}

// TestB6_KamailioWrongPasswordEndsWatch: with a wrong password Kamailio
// challenges the answer again; the watch ends at once (no retry loop),
// logged once, 2001 never counts as free, and 1001's request ends: its
// display says "CallBack is deactivated on 2001". 2002 hanging up
// afterwards tells 1001 nothing.
func TestB6_KamailioWrongPasswordEndsWatch(t *testing.T) {
	kc := kamActivated(t, "3000", "", "username = \"callbackd\"\npassword = \"not-the-password\"\n", kamSubAuth...)
	s := kc.s
	refused := `msg="SUBSCRIBE refused: subscription ended" id=\S+ event=dialog code=401`
	s.cbWaitLog(t, kc.mark, refused)
	s.cbWaitLog(t, kc.mark, `msg="watched number's dialog state no longer known" number=2001 reason="refused 401"`)
	s.cbWaitLog(t, kc.mark, `msg="call back ended" id=1 reason=no-monitor`)
	kc.display.expectScreen(t, 2, "CallBack is deactivated on 2001\nPress Exit to quit this screen")
	kc.freed(t)
	mark := s.cbMark()
	if n := len(kc.display.screens()); n != 2 {
		t.Errorf("1001's display got %d screens, want the activation and the end: %q", n, kc.display.screens())
	}
	if n := strings.Count(s.Log(), "SUBSCRIBE challenged: answered"); n != 1 {
		t.Errorf("the challenge was answered %d times, want once (the second is the refusal)", n)
	}
	if n := strings.Count(s.Log(), "SUBSCRIBE refused: subscription ended"); n != 1 {
		t.Errorf("the refusal was logged %d times, want once", n)
	}
	if strings.Contains(s.cbLogSince(mark), `watched number's dialog state" number=2001 off_hook=false`) {
		t.Error("2001 was taken as free without a subscription")
	}
	if strings.Contains(s.Log(), "not-the-password") {
		t.Error("the trunk's password is in the server's log")
	}
}
