package sipserver

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/callbackd/callbackd/internal/config"
	"github.com/callbackd/callbackd/internal/siptest"
)

// TestOverloadQuantile: the signal is the p90 of what was added to the
// runtime's histogram since the last look, as the bucket's lower bound.
func TestOverloadQuantile(t *testing.T) {
	buckets := []float64{0, 0.001, 0.010, 0.050, 0.100, 1}
	for _, tc := range []struct {
		name        string
		counts, old []uint64
		want        time.Duration
	}{
		{"nothing ran", []uint64{5, 5, 0, 0, 0}, []uint64{5, 5, 0, 0, 0}, 0},
		{"all fast", []uint64{90, 10, 0, 0, 0}, nil, 0},
		{"a tenth slow is not p90", []uint64{91, 0, 0, 9, 0}, nil, 0},
		{"p90 in the 50 ms bucket", []uint64{80, 5, 0, 15, 0}, nil, 50 * time.Millisecond},
		{"only the new counts", []uint64{1000, 0, 0, 20, 0}, []uint64{10, 0, 0, 20, 0}, 0},
		{"new slow ones", []uint64{100, 0, 0, 20, 30}, []uint64{100, 0, 0, 0, 0}, 100 * time.Millisecond},
	} {
		if got := quantile(buckets, tc.counts, tc.old, 0.9); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	// The runtime's first bucket starts at -Inf, its last ends at +Inf.
	inf := []float64{-1 / zero(), 0.001, 1 / zero()}
	if got := quantile(inf, []uint64{10, 0}, nil, 0.9); got != 0 {
		t.Errorf("-Inf bucket: %v", got)
	}
}

func zero() float64 { return 0 }

// TestOverloadHysteresis: refusing starts after overloadEnter windows in
// a row at the threshold, grows by refuseUp per window at it, holds
// between half of it and it, and shrinks by refuseDown per window under
// half; the episode ends at 0.
func TestOverloadHysteresis(t *testing.T) {
	o := newOverload(50 * time.Millisecond)
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	steps := func(d time.Duration, n int) (changes []int) {
		for range n {
			changes = append(changes, o.step(d))
		}
		return changes
	}
	share := func() int32 { return o.share.Load() }
	steps(ms(49), 20)
	if share() != 0 {
		t.Fatalf("under the threshold: share %d", share())
	}
	// Hiccups (fewer than overloadEnter windows in a row) start nothing.
	for range 5 {
		steps(ms(80), overloadEnter-1)
		o.step(ms(1))
	}
	if share() != 0 {
		t.Fatalf("after hiccups: share %d", share())
	}
	if got := steps(ms(50), overloadEnter); got[overloadEnter-1] != 1 || share() != refuseUp {
		t.Fatalf("%d windows at the threshold: %v, share %d", overloadEnter, got, share())
	}
	steps(ms(60), 3)
	if share() != 4*refuseUp {
		t.Fatalf("3 windows more: share %d", share())
	}
	steps(ms(30), 50) // between half and the threshold: holds
	if share() != 4*refuseUp {
		t.Fatalf("between half and the threshold: share %d", share())
	}
	steps(ms(500), 20)
	if share() != 1000 {
		t.Fatalf("long at the threshold: share %d, want all", share())
	}
	n := 1000/refuseDown - 1
	if got := steps(ms(10), n); slices.Contains(got, -1) || share() != refuseDown {
		t.Fatalf("%d windows under half: %v, share %d", n, got, share())
	}
	if got := o.step(ms(10)); got != -1 || share() != 0 {
		t.Fatalf("episode end: %d, share %d", got, share())
	}
	if got := steps(ms(500), overloadEnter); got[overloadEnter-1] != 1 {
		t.Fatalf("second episode: %v", got)
	}
}

// TestOverloadRefusesTheShare: with a share of half, about half the new
// INVITEs are refused, and a request sent again gets the same answer.
func TestOverloadRefusesTheShare(t *testing.T) {
	srv := newTestServer(t, "udp:127.0.0.1:0")
	t.Cleanup(srv.Close)
	srv.overload.share.Store(500)
	refused := 0
	for i := range 2000 {
		req := testRequest(t, "INVITE", "s"+strconv.Itoa(i), "")
		tx := siptest.NewTx(req)
		srv.Handle(req, tx)
		if tx.Result().Code() == 503 {
			refused++
		}
	}
	if refused < 800 || refused > 1200 { // 9 standard deviations
		t.Fatalf("%d of 2000 refused with a share of a half", refused)
	}
	// Every transmission of one request gets the same answer.
	for i := range 50 {
		var codes []int
		for range 3 {
			req := testRequest(t, "INVITE", "r"+strconv.Itoa(i), "")
			tx := siptest.NewTx(req)
			srv.Handle(req, tx)
			codes = append(codes, tx.Result().Code())
		}
		if codes[0] != codes[1] || codes[1] != codes[2] {
			t.Fatalf("one INVITE sent 3 times: %v", codes)
		}
	}
}

// TestOverloadForcedByFile: the test knob drives the real loop: all new
// work refused while its file exists, then less and less, then none.
func TestOverloadForcedByFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "overloaded")
	t.Setenv(overloadForceEnv, file)
	o := newOverload(50 * time.Millisecond)
	lim := newConnLimits(time.Minute, 10, 10, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { o.run(ctx, nil, lim); close(done) }()
	defer func() { cancel(); <-done }()
	until := func(want bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for (o.share.Load() == 1000) != want {
			if time.Now().After(deadline) {
				t.Fatalf("refusing all did not become %v within 10s", want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	until(true)
	if n := counted(t, o.episodes, ""); n != 1 {
		t.Errorf("episodes: %v", n)
	}
	os.Remove(file)
	until(false) // refusing less, then nothing (refuseDown per window)
	deadline := time.Now().Add(10 * time.Second)
	for o.share.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("still refusing %d per mille 10s after the knob", o.share.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestOverloadRefusesNewWorkOnly: while overloaded, a new INVITE and a
// new REGISTER get 503 with a Retry-After of 2-9 s and their transaction
// ends; requests in a dialog, a refresh of a binding, OPTIONS and MESSAGE
// reach their handlers.
func TestOverloadRefusesNewWorkOnly(t *testing.T) {
	srv := newTestServerWith(t, func(c *config.Config) { c.SIP.OverloadDelay = config.Duration{Duration: 50 * time.Millisecond} },
		"udp:127.0.0.1:0")
	t.Cleanup(srv.Close)
	srv.h.Refreshes = func(req *sip.Request) bool { return req.CallID().Value() == "known" }
	srv.h.InDialog = srv.h.Invite
	srv.overload.share.Store(1000)
	for _, tc := range []struct {
		method, callID, toTag string
		want                  int
	}{
		{"INVITE", "c1", "", 503},
		{"REGISTER", "c2", "", 503},
		{"INVITE", "c3", "b", 404}, // re-INVITE: to the handler
		{"BYE", "c4", "b", 404},
		{"REGISTER", "known", "", 404},
		{"OPTIONS", "c5", "", 200},
	} {
		req := testRequest(t, tc.method, tc.callID, tc.toTag)
		tx := siptest.NewTx(req)
		srv.Handle(req, tx)
		r := tx.Result()
		if r.Code() != tc.want {
			t.Errorf("%s Call-ID %s tag %q: %v, want %d", tc.method, tc.callID, tc.toTag, r.Codes(), tc.want)
			continue
		}
		if tc.want != 503 {
			continue
		}
		ra, err := strconv.Atoi(r.Final.GetHeader("Retry-After").Value())
		if err != nil || ra < retryAfterMin || ra > retryAfterMax {
			t.Errorf("%s: Retry-After %q", tc.method, r.Final.GetHeader("Retry-After").Value())
		}
		if tc.method == "REGISTER" && tx.Err() == nil {
			t.Errorf("%s: transaction not ended after the 503 (stateless)", tc.method)
		}
	}
	for m, want := range map[string]float64{"INVITE": 1, "REGISTER": 1} {
		if got := counted(t, srv.overload.rejected, m); got != want {
			t.Errorf("rejected{%s} = %v, want %v", m, got, want)
		}
	}
	// Back to normal: the same new INVITE reaches its handler.
	srv.overload.share.Store(0)
	req := testRequest(t, "INVITE", "c6", "")
	tx := siptest.NewTx(req)
	srv.Handle(req, tx)
	if r := tx.Result(); r.Code() != 404 {
		t.Errorf("INVITE after the episode: %v", r.Codes())
	}
}

func testRequest(t *testing.T, method, callID, toTag string) *sip.Request {
	t.Helper()
	to := "<sip:1002@127.0.0.1>"
	if toTag != "" {
		to += ";tag=" + toTag
	}
	msg := fmt.Sprintf("%s sip:1002@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK-%s-%s\r\n"+
		"From: <sip:1001@127.0.0.1>;tag=a\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: 1 %s\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
		method, method, callID, to, callID, method)
	m, err := sip.ParseMessage([]byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	return m.(*sip.Request)
}

// counted is the value of counter c (of its series whose one label is
// label, when label is not "").
func counted(t *testing.T, c prometheus.Collector, label string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if label == "" || len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == label {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
