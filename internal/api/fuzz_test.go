package api

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
)

// FuzzWrites sends arbitrary bodies to the writes that parse JSON: the
// answer is always a JSON document, never a 5xx, and a refused write leaves
// the parameters and lines as they were.
//
//	go test ./internal/api -run '^$' -fuzz FuzzWrites -fuzztime 60s
func FuzzWrites(f *testing.F) {
	for _, s := range []string{
		`{"t3":"30s"}`, `{"t3":20}`, `{"policy":"fifo","ccnr":false}`, `{"dn":"1009","password":"x"}`,
		`{"key":"CallBack"}`, `{"caller":"1001","callee":"1002"}`, `{"level":"debug"}`, `[]`, `null`, `{`, "",
		`{"name":"` + "\xff" + `"}`, `{"busy_trigger":1e400}`, `{"t3":"9223372036854775807ns"}`,
	} {
		f.Add(s)
	}
	fx := start(f)
	paths := []struct{ method, path string }{
		{"PUT", "/api/v1/params"}, {"POST", "/api/v1/lines"}, {"PUT", "/api/v1/lines/1002"},
		{"POST", "/api/v1/lines/1001/keys"}, {"POST", "/api/v1/callbacks"}, {"PUT", "/api/v1/log"},
	}
	f.Fuzz(func(t *testing.T, body string) {
		fx.t = t
		for _, p := range paths {
			before := fx.snapshot()
			r := fx.do(p.method, p.path, "admin", body)
			if r.status >= 500 {
				t.Fatalf("%s %s %q: %d %s", p.method, p.path, body, r.status, r.body)
			}
			if !json.Valid([]byte(r.body)) {
				t.Fatalf("%s %s %q: not JSON: %s", p.method, p.path, body, r.body)
			}
			if r.status >= 400 && fx.snapshot() != before {
				t.Fatalf("%s %s %q: refused (%d) but changed state", p.method, p.path, body, r.status)
			}
		}
	})
}

// FuzzReads puts arbitrary text in the path parameters and query values of
// the reads (a line's DN, a request id, ?since= of the history, ?line= of
// the registrations, a locale), as the admin and as a line: the answer is
// always JSON and never a 5xx, and a read changes nothing.
//
//	go test ./internal/api -run '^$' -fuzz FuzzReads -fuzztime 60s
func FuzzReads(f *testing.F) {
	for _, s := range []string{
		"1001", "", "2026-11-23T09:12:03Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:60Z", "-1", "..",
		"%00", "1001/screen", "\xff", "de", "zh-Hant", strings.Repeat("9", 100),
	} {
		f.Add(s)
	}
	fx := start(f)
	f.Fuzz(func(t *testing.T, v string) {
		fx.t = t
		seg, q := url.PathEscape(v), url.QueryEscape(v)
		paths := []string{
			"/api/v1/lines/" + seg, "/api/v1/lines/" + seg + "/screen", "/api/v1/callbacks/" + seg,
			"/api/v1/history?since=" + q, "/api/v1/registrations?line=" + q, "/api/v1/callbacks?line=" + q,
			"/api/v1/ui/" + seg, "/api/v1/lines?dn=" + q,
		}
		before := fx.snapshot()
		for _, p := range paths {
			for _, who := range []string{"admin", "1001:pw1001"} {
				r := fx.do("GET", p, who, "")
				if r.status >= 500 {
					t.Fatalf("GET %s as %s: %d %s", p, who, r.status, r.body)
				}
				if !json.Valid([]byte(r.body)) {
					t.Fatalf("GET %s as %s: not JSON: %s", p, who, r.body)
				}
			}
		}
		if fx.snapshot() != before {
			t.Fatalf("reads with %q changed state", v)
		}
	})
}
