package throttle

import (
	"fmt"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

// B7: guessing slows after Free failures, doubling up to the lockout.
func TestB7_SlowsThenLocksOut(t *testing.T) {
	l := New(Config{Free: 3, Base: time.Second, Lockout: 8 * time.Second, Window: time.Hour, LogEvery: time.Minute})
	var got []time.Duration
	for i := 0; i < 7; i++ {
		v := l.Fail(t0, "src:192.0.2.1")[0]
		got = append(got, v.Blocked)
	}
	want := []time.Duration{0, 0, 0, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("delays %v, want %v", got, want)
	}
	if d := l.Blocked(t0.Add(7*time.Second), "acct:1001", "src:192.0.2.1"); d != time.Second {
		t.Fatalf("blocked %v 7 s later, want 1s", d)
	}
	if d := l.Blocked(t0.Add(9*time.Second), "src:192.0.2.1"); d != 0 {
		t.Fatalf("still blocked after the lockout: %v", d)
	}
	l.Succeed("src:192.0.2.1")
	if v := l.Fail(t0, "src:192.0.2.1")[0]; v.Failures != 1 {
		t.Fatalf("success did not reset the count: %+v", v)
	}
}

// B7: old failures are forgotten after the window.
func TestB7_WindowForgets(t *testing.T) {
	l := New(Config{Free: 2, Window: time.Minute})
	l.Fail(t0, "k")
	l.Fail(t0, "k")
	if v := l.Fail(t0.Add(2*time.Minute), "k")[0]; v.Failures != 1 || v.Blocked != 0 {
		t.Fatalf("after the window: %+v", v)
	}
}

// B7: one log line per key per interval, with the count since the last one.
func TestB7_LogOncePerInterval(t *testing.T) {
	l := New(Config{LogEvery: time.Minute})
	logs := 0
	for i := 0; i < 100; i++ {
		if l.Fail(t0.Add(time.Duration(i)*time.Second), "k")[0].Log {
			logs++
		}
	}
	if logs != 2 { // at 0 s and at 60 s
		t.Fatalf("%d log lines for 100 failures in 100 s, want 2", logs)
	}
	v := l.Fail(t0.Add(200*time.Second), "k")[0]
	if !v.Log || v.Since != 40 {
		t.Fatalf("next line: %+v, want Since 40", v)
	}
}

// B7: a flood from many sources stays bounded in memory.
func TestB7_BoundedKeys(t *testing.T) {
	l := New(Config{MaxKeys: 1000})
	for i := 0; i < 50_000; i++ {
		l.Fail(t0, fmt.Sprint("src:", i))
	}
	if n := l.Len(); n > 1000 {
		t.Fatalf("%d keys kept, bound 1000", n)
	}
}
