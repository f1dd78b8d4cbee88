package api

import (
	"encoding/json"
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
