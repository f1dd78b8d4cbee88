// Package throttle slows down and then locks out password guessing (B7):
// every failed authentication (SIP digest, HTTP Basic, an Extension
// Mobility PIN) is counted against keys such as the source address and the
// account, and a key with too many recent failures is refused for a while
// that doubles with each further failure, up to a lockout.
//
// It decides only: no I/O, no goroutines, the clock is passed in. The
// caller refuses the request, counts the metric and writes the log line
// (Verdict.Log says when, so a flood gives one line per key per interval,
// the line fail2ban reads).
package throttle

import (
	"sync"
	"time"
)

// Config sets how quickly guessing is slowed.
type Config struct {
	Free     int           // failures allowed within Window before any delay
	Window   time.Duration // failures older than this are forgotten
	Base     time.Duration // the first delay after Free failures; doubles with each failure
	Lockout  time.Duration // the longest delay: a key at it is locked out
	LogEvery time.Duration // at most one log line per key per LogEvery
	MaxKeys  int           // keys remembered at most (memory bound under a flood of sources)
}

// Default is what the server uses: 5 free failures in 10 minutes, then 1 s,
// 2 s, 4 s ... up to a 15-minute lockout (reached after 15 failures).
var Default = Config{
	Free: 5, Window: 10 * time.Minute, Base: time.Second, Lockout: 15 * time.Minute,
	LogEvery: time.Minute, MaxKeys: 100_000,
}

// Verdict is what Fail decided for one key.
type Verdict struct {
	Key      string
	Failures int           // failures counted within the window, this one included
	Blocked  time.Duration // how long the key is refused from now (0: not)
	Locked   bool          // Blocked reached the lockout
	Log      bool          // write a log line for this key now (at most once per LogEvery)
	Since    int           // failures since the last log line, this one included
}

type entry struct {
	failures int
	first    time.Time // first failure of the window
	until    time.Time // refused until
	loggedAt time.Time
	sinceLog int
}

// Limiter counts failures by key. The zero value is not usable; use New.
type Limiter struct {
	cfg Config
	mu  sync.Mutex
	m   map[string]*entry
}

// New returns a Limiter with cfg (zero fields take Default's).
func New(cfg Config) *Limiter {
	d := Config{
		Free: positive(cfg.Free, Default.Free), Window: positive(cfg.Window, Default.Window),
		Base: positive(cfg.Base, Default.Base), Lockout: positive(cfg.Lockout, Default.Lockout),
		LogEvery: positive(cfg.LogEvery, Default.LogEvery), MaxKeys: positive(cfg.MaxKeys, Default.MaxKeys),
	}
	return &Limiter{cfg: d, m: make(map[string]*entry)}
}

// positive returns v if it is above zero, else def.
func positive[T int | time.Duration](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}

// Blocked reports how long the most blocked of keys is still refused at
// now (0: every key may try). A blocked attempt is refused without checking
// its credentials, so guessing during a lockout learns nothing.
func (l *Limiter) Blocked(now time.Time, keys ...string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var worst time.Duration
	for _, k := range keys {
		if e := l.m[k]; e != nil {
			if d := e.until.Sub(now); d > worst {
				worst = d
			}
		}
	}
	return worst
}

// Fail counts one failed authentication against each key and returns what
// that decided, one Verdict per key.
func (l *Limiter) Fail(now time.Time, keys ...string) []Verdict {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Verdict, 0, len(keys))
	for _, k := range keys {
		e := l.m[k]
		if e == nil {
			l.makeRoom(now)
			e = &entry{}
			l.m[k] = e
		}
		if e.failures == 0 || now.Sub(e.first) > l.cfg.Window {
			e.failures, e.first = 0, now
		}
		e.failures++
		e.sinceLog++
		v := Verdict{Key: k, Failures: e.failures}
		if over := e.failures - l.cfg.Free; over > 0 {
			d := l.cfg.Lockout
			if over <= 30 && l.cfg.Base<<(over-1) < l.cfg.Lockout {
				d = l.cfg.Base << (over - 1)
			}
			e.until = now.Add(d)
			v.Blocked, v.Locked = d, d >= l.cfg.Lockout
		}
		if e.loggedAt.IsZero() || now.Sub(e.loggedAt) >= l.cfg.LogEvery {
			v.Log, v.Since = true, e.sinceLog
			e.loggedAt, e.sinceLog = now, 0
		}
		out = append(out, v)
	}
	return out
}

// Succeed forgets the failures of keys: the right password ends the count
// for that source or account.
func (l *Limiter) Succeed(keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		delete(l.m, k)
	}
}

// Len is the number of keys remembered (for tests and metrics).
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}

// makeRoom keeps the map under MaxKeys: forget keys that are neither
// blocked nor within their window; if that is not enough (a flood from many
// sources), a tenth of the keys, those not blocked first. Go's map order is
// random, so an attacker cannot choose which keys go. Called with mu held.
func (l *Limiter) makeRoom(now time.Time) {
	if len(l.m) < l.cfg.MaxKeys {
		return
	}
	for k, e := range l.m {
		if now.After(e.until) && now.Sub(e.first) > l.cfg.Window {
			delete(l.m, k)
		}
	}
	quota := len(l.m) - l.cfg.MaxKeys + 1 + l.cfg.MaxKeys/10
	for pass := 0; pass < 2 && quota > 0; pass++ {
		for k, e := range l.m {
			if quota == 0 {
				break
			}
			if pass == 1 || now.After(e.until) {
				delete(l.m, k)
				quota--
			}
		}
	}
}
