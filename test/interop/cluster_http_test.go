package interop

import (
	"strings"
	"testing"

	"github.com/callbackd/callbackd/internal/store/postgres/pgtest"
)

// TestF35_F37_ClusterStandbyServesHTTP: every instance answers a
// monitoring system, each saying what it is (F37): the active /healthz
// "ok", /readyz 200, callbackd_cluster_active 1, status "active": true;
// the standby /healthz 200 "standby", /readyz 503, callbackd_cluster_active
// 0 with the lease's epoch, status "active": false with the cluster, and
// any other API request, a write above all, 503 naming the active. After
// a kill -9 of the active and its return (a handover back) they swap
// twice.
func TestF35_F37_ClusterStandbyServesHTTP(t *testing.T) {
	pg := pgtest.Start(t)
	url := pg.NewDB(t)
	port := freePort(t)
	s1 := clusterNode(t, "127.0.0.2", port, "a", 1, url)
	s1.waitActive(t, 0)
	s2 := clusterNode(t, "127.0.0.3", port, "b", 2, url)
	s2.cbWaitLog(t, 0, `msg="cluster: standby`)
	checkActiveHTTP(t, s1, "a", 1)
	checkStandbyHTTP(t, s2, "b", "a", 1)

	mark2 := s2.cbMark()
	s1.kill9()
	s2.waitActive(t, mark2)
	checkActiveHTTP(t, s2, "b", 2)

	mark1, mark2 := s1.cbMark(), s2.cbMark()
	s1.launch() // a standby first, then active again by handover
	s1.cbWaitLog(t, mark1, `msg="cluster: standby`)
	s2.cbWaitLog(t, mark2, `msg="cluster: restarting as a standby"`)
	s1.waitActive(t, mark1)
	s2.cbWaitLog(t, mark2, `msg="cluster: standby`)
	checkActiveHTTP(t, s1, "a", 3)
	checkStandbyHTTP(t, s2, "b", "a", 3)
}

// checkActiveHTTP: s, named name, answers HTTP as the active of the
// lease's epoch.
func checkActiveHTTP(t *testing.T, s *server, name string, epoch int) {
	t.Helper()
	if code, body := s.api(t, "GET", "/healthz", ""); code != 200 || body != "ok\n" {
		t.Errorf("%s, active: /healthz %d %q", name, code, body)
	}
	if code, body := s.api(t, "GET", "/readyz", ""); code != 200 || body != "ok\n" {
		t.Errorf("%s, active: /readyz %d %q", name, code, body)
	}
	if a, e := metric(t, s, "callbackd_cluster_active"), metric(t, s, "callbackd_cluster_epoch"); a != 1 || int(e) != epoch {
		t.Errorf("%s, active: callbackd_cluster_active %v, callbackd_cluster_epoch %v; want 1 and %d", name, a, e, epoch)
	}
	if code, body := s.api(t, "GET", "/api/v1/status", ""); code != 200 || !strings.Contains(body, `"active": true,`) ||
		!strings.Contains(body, `"active": "`+name+`",`) || !strings.Contains(body, `"registrations":`) {
		t.Errorf("%s, active: status %d %s", name, code, body)
	}
	if code, body := s.api(t, "GET", "/api/v1/callbacks", ""); code != 200 {
		t.Errorf("%s, active: GET /api/v1/callbacks %d %s", name, code, body)
	}
}

// checkStandbyHTTP: s, named name, answers HTTP as a standby of active at
// the lease's epoch.
func checkStandbyHTTP(t *testing.T, s *server, name, active string, epoch int) {
	t.Helper()
	if code, body := s.api(t, "GET", "/healthz", ""); code != 200 || body != "standby\n" {
		t.Errorf("%s, standby: /healthz %d %q, want 200 \"standby\"", name, code, body)
	}
	if code, body := s.api(t, "GET", "/readyz", ""); code != 503 || body != "standby\n" {
		t.Errorf("%s, standby: /readyz %d %q, want 503 \"standby\"", name, code, body)
	}
	text := metricsText(t, s)
	if a, e := metric(t, s, "callbackd_cluster_active"), metric(t, s, "callbackd_cluster_epoch"); a != 0 || int(e) != epoch ||
		!strings.Contains(text, "callbackd_cluster_active 0\n") || !strings.Contains(text, "process_resident_memory_bytes") {
		t.Errorf("%s, standby: callbackd_cluster_active %v, callbackd_cluster_epoch %v; want 0 and %d\n%s", name, a, e, epoch, text)
	}
	if code, body := s.api(t, "GET", "/api/v1/status", ""); code != 200 || !strings.Contains(body, `"active": false,`) ||
		!strings.Contains(body, `"name": "`+name+`",`) || !strings.Contains(body, `"active": "`+active+`",`) ||
		!strings.Contains(body, `"members": [`) {
		t.Errorf("%s, standby: status %d %s", name, code, body)
	}
	for _, req := range [][3]string{
		{"POST", "/api/v1/callbacks", `{"caller": "1001", "callee": "1002"}`},
		{"PUT", "/api/v1/params", `{"t3": "30s"}`},
		{"GET", "/api/v1/callbacks", ""},
	} {
		if code, body := s.api(t, req[0], req[1], req[2]); code != 503 || !strings.Contains(body, `"code": "standby"`) ||
			!strings.Contains(body, "the active is "+active+" (SIP udp:127.0.0.") {
			t.Errorf("%s, standby: %s %s: %d %s, want 503 naming %s", name, req[0], req[1], code, body, active)
		}
	}
}

// TestF35_B3_F37_ClusterOfThree: priorities 1, 2, 3 on 127.0.0.2, .3, .4
// with A's request activated on the first. kill -9 of the first: the
// second takes over with the request, not the third; kill -9 of the
// second: the third does, and B registering there notifies A, once. The
// first started again takes the lease back at a quiet moment by a
// handover; it notifies nobody again and Dial through it completes the
// request.
func TestF35_B3_F37_ClusterOfThree(t *testing.T) {
	c := newCluster(t, nil, 3)
	s1, s2, s3 := c.s1, c.s2, c.s3

	mark2, mark3 := s2.cbMark(), s3.cbMark()
	s1.kill9()
	servesWithRequest(t, s2, mark2, "the first's SIGKILL")
	if log := s3.cbLogSince(mark3); strings.Contains(log, `msg="cluster: taking the lease"`) {
		t.Errorf("the third took the lease while the second was live:\n%s", log)
	}
	if code := optionsStatus(t, s3.Host, s3.SIPPort); code != 503 {
		t.Errorf("the third answers OPTIONS %d while the second is active, want 503", code)
	}
	checkStandbyHTTP(t, s3, "c", "b", 2)

	mark3 = s3.cbMark()
	s2.kill9()
	servesWithRequest(t, s3, mark3, "the second's SIGKILL")
	c.notifiesOnce(t, s3)

	// The first comes back: a standby, then the third hands over to it
	// (no call in progress) and starts again as a standby.
	mark1, mark3 := s1.cbMark(), s3.cbMark()
	s1.launch()
	s3.cbWaitLog(t, mark3, `msg="cluster: restarting as a standby"`)
	s1.waitActive(t, mark1)
	s3.cbWaitLog(t, mark3, `msg="cluster: standby`)
	if took := s1.cbWaitLog(t, mark1, `msg="cluster: taking the lease" cluster=a epoch=4 previous=c reason=handover`); took == "" {
		t.Errorf("the first took the lease back otherwise")
	}
	if n := metric(t, s1, "callbackd_callback_notifications_total"); n != 0 {
		t.Errorf("after the handover A was notified again (%v)", n)
	}
	checkActiveHTTP(t, s1, "a", 4)
	checkStandbyHTTP(t, s3, "c", "a", 4)
	// F37: three members, the second not live; four grants.
	if code, body := s1.api(t, "GET", "/api/v1/status", ""); code != 200 || strings.Count(body, `"priority"`) != 3 ||
		strings.Count(body, `"reason": "lease expired"`) != 2 || !strings.Contains(body, `"takeovers_total": 4`) {
		t.Errorf("status after the takeovers: %d %s", code, body)
	}
	mark1 = s1.cbMark()
	s1.cbDial(t, c.pa1, c.pb)
	s1.cbWaitLog(t, mark1, `msg="call back ended" id=1 reason=completed`)
}
