package api

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/callbackd/callbackd/internal/cluster"
)

// TestF35_StandbyWithoutDatabase: a standby cut from the database still
// answers: alive, not ready, active 0 without an epoch, its status without
// the cluster, and a write 503 saying the active is unknown.
func TestF35_StandbyWithoutDatabase(t *testing.T) {
	h := Standby(StandbyDeps{Started: time.Now(), Instance: "cb2",
		Status: func(context.Context) (cluster.Status, error) {
			return cluster.Status{}, errors.New("connection refused")
		}})
	for _, c := range []struct {
		method, path string
		code         int
		has, hasNot  string
	}{
		{"GET", "/healthz", 200, "standby\n", ""},
		{"GET", "/readyz", 503, "standby\n", ""},
		{"GET", "/metrics", 200, "callbackd_cluster_active 0\n", "callbackd_cluster_epoch"},
		{"GET", "/api/v1/status", 200, `"active": false,`, `"cluster"`},
		{"POST", "/api/v1/callbacks", 503, "the active is unknown", ""},
		{"GET", "/admin", 503, `"code": "standby"`, ""},
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(c.method, c.path, nil))
		body, _ := io.ReadAll(w.Result().Body)
		if w.Code != c.code || !strings.Contains(string(body), c.has) || (c.hasNot != "" && strings.Contains(string(body), c.hasNot)) {
			t.Errorf("%s %s: %d %s", c.method, c.path, w.Code, body)
		}
	}
}

// TestF35_StandbyNamesTheActive: the error of a write names the active and
// where it serves SIP; the metrics carry the lease's epoch.
func TestF35_StandbyNamesTheActive(t *testing.T) {
	st := cluster.Status{Name: "b", Active: "a", Epoch: 7, Members: []cluster.Member{
		{Name: "a", Priority: 1, SIP: "udp:127.0.0.2:5060", Active: true}, {Name: "b", Priority: 2}}}
	h := Standby(StandbyDeps{Status: func(context.Context) (cluster.Status, error) { return st, nil }})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("PUT", "/api/v1/params", strings.NewReader("{}")))
	if body := w.Body.String(); w.Code != 503 || w.Header().Get("Retry-After") != "1" ||
		!strings.Contains(body, "the active is a (SIP udp:127.0.0.2:5060)") {
		t.Errorf("PUT on a standby: %d %s", w.Code, body)
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	if body := w.Body.String(); !strings.Contains(body, "callbackd_cluster_epoch 7\n") {
		t.Errorf("metrics: %s", body)
	}
}
