package api

import (
	"context"
	"encoding/json"
	"net/url"
	"testing"
	"time"

	"github.com/callbackd/callbackd/internal/metrics"
)

// TestF37_History: GET /api/v1/history serves the sampler's ring to the
// admin only (a wrong Bearer token gets a Bearer challenge, no Basic login
// box), oldest first, in UTC, and ?since= gives only what is new.
func TestF37_History(t *testing.T) {
	f := start(t)
	m := f.srv.Metrics
	t0 := time.Date(2026, 12, 4, 11, 0, 0, 0, time.FixedZone("CET", 3600))
	ctx, cancel := context.WithCancel(context.Background())
	ticks := make(chan time.Time)
	done := make(chan struct{})
	go func() { m.RunSampler(ctx, t0, ticks); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	// sampled waits until the sampler has recorded n samples.
	sampled := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); len(m.History().Since(time.Time{})) < n; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d samples within 5 s, want %d", len(m.History().Since(time.Time{})), n)
			}
		}
	}
	sampled(1)
	m.CallResult("busy")
	ticks <- t0.Add(metrics.HistoryInterval)
	sampled(2)
	m.CallResult("answered")
	ticks <- t0.Add(2 * metrics.HistoryInterval)
	sampled(3)

	type body struct {
		Interval string
		Size     int
		Samples  []metrics.Sample
	}
	get := func(query string) body {
		t.Helper()
		r := f.do("GET", "/api/v1/history"+query, "admin", "")
		if r.status != 200 {
			t.Fatalf("GET /history%s: %d %s", query, r.status, r.body)
		}
		var b body
		if err := json.Unmarshal([]byte(r.body), &b); err != nil {
			t.Fatalf("GET /history%s: %v\n%s", query, err, r.body)
		}
		return b
	}
	b := get("")
	if b.Interval != "10s" || b.Size != 360 {
		t.Errorf("interval %q size %d, want 10s and 360", b.Interval, b.Size)
	}
	if len(b.Samples) != 3 {
		t.Fatalf("%d samples, want 3: %+v", len(b.Samples), b.Samples)
	}
	for i, s := range b.Samples {
		if want := t0.Add(time.Duration(i) * metrics.HistoryInterval); !s.Time.Equal(want) || s.Time.Location() != time.UTC {
			t.Errorf("sample %d at %v, want %v in UTC", i, s.Time, want.UTC())
		}
		if s.Calls != int64(i) {
			t.Errorf("sample %d: calls %d, want %d", i, s.Calls, i)
		}
	}
	since := b.Samples[0].Time.Format(time.RFC3339Nano)
	if nb := get("?since=" + url.QueryEscape(since)); len(nb.Samples) != 2 || nb.Samples[0].Calls != 1 {
		t.Errorf("?since=%s: %+v, want the last 2 samples", since, nb.Samples)
	}

	for _, c := range []struct {
		auth, query string
		status      int
		challenge   string
	}{
		{"", "", 401, "Basic"},
		{"bad", "", 401, "Bearer"},
		{"1001:pw1001", "", 403, ""},
		{"admin", "?since=yesterday", 400, ""},
	} {
		r := f.do("GET", "/api/v1/history"+c.query, c.auth, "")
		if r.status != c.status {
			t.Errorf("auth %q %s: %d, want %d", c.auth, c.query, r.status, c.status)
		}
		if got := r.header.Get("WWW-Authenticate"); c.challenge != "" && (len(got) < len(c.challenge) || got[:len(c.challenge)] != c.challenge) {
			t.Errorf("auth %q: WWW-Authenticate %q, want a %s challenge", c.auth, got, c.challenge)
		}
		if c.status == 400 {
			if e := r.errorOf(); e.Code != "wrong_type" || e.Field != "since" {
				t.Errorf("bad since: %+v, want wrong_type on since", e)
			}
		}
	}
}
