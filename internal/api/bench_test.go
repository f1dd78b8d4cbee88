package api

import (
	"testing"
)

// Cost of the console's requests through HTTP on loopback, with a real
// server behind: reading a line's screen, and a key press (Exit: through the
// engine's loop and back). go test ./internal/api -run '^$' -bench .
func BenchmarkGetScreen(b *testing.B) {
	f := start(b)
	for b.Loop() {
		if r := f.do("GET", "/api/v1/lines/1001/screen", "", ""); r.status != 200 {
			b.Fatal(r.status)
		}
	}
}

func BenchmarkPressKey(b *testing.B) {
	f := start(b)
	for b.Loop() {
		if r := f.do("POST", "/api/v1/lines/1001/keys", "1001:pw1001", `{"key":"Exit"}`); r.status != 200 {
			b.Fatal(r.status, r.body)
		}
	}
}
