package throttle

import (
	"log/slog"
	"net"
	"sync/atomic"
	"time"
)

// Guard is the Limiter as the server's parts use it: keyed by the source
// address (without its port: an attacker changes ports at will) and by the
// account, with the log line and the metric. One Guard is shared by SIP
// digest, HTTP Basic and the mobility PIN, so guessing a line's password
// over HTTP counts against the same account as over SIP.
type Guard struct {
	L   *Limiter
	Log *slog.Logger
	Now func() time.Time

	// onFail and onBlock count the metric (kind: sip, http, pin); set once
	// with Observe.
	obs atomic.Pointer[observers]
}

type observers struct {
	fail  func(kind, reason string)
	block func(kind string)
}

// NewGuard returns a Guard over New(cfg).
func NewGuard(cfg Config, log *slog.Logger) *Guard {
	return &Guard{L: New(cfg), Log: log, Now: time.Now}
}

// Observe sets the metric callbacks (either may be nil).
func (g *Guard) Observe(fail func(kind, reason string), block func(kind string)) {
	g.obs.Store(&observers{fail: fail, block: block})
}

func keys(source, account string) []string {
	k := []string{"src:" + host(source)}
	if account != "" {
		k = append(k, "acct:"+account)
	}
	return k
}

// host is the address of a "host:port" source, or source itself.
func host(source string) string {
	if h, _, err := net.SplitHostPort(source); err == nil {
		return h
	}
	return source
}

// Blocked reports how long a request from source for account (may be "")
// must still be refused; when it is, the refusal is counted. Check it
// before checking credentials.
func (g *Guard) Blocked(kind, source, account string) time.Duration {
	if g == nil {
		return 0
	}
	d := g.L.Blocked(g.Now(), keys(source, account)...)
	if d > 0 {
		if o := g.obs.Load(); o != nil && o.block != nil {
			o.block(kind)
		}
	}
	return d
}

// Failed counts a failed authentication and logs it, at most once per
// source and per account per interval, as one line fail2ban can match:
//
//	level=WARN msg="authentication failed" kind=sip source=192.0.2.7 account=1001 reason="wrong password" failures=6 blocked=2s
func (g *Guard) Failed(kind, source, account, reason string) {
	if g == nil {
		return
	}
	if o := g.obs.Load(); o != nil && o.fail != nil {
		o.fail(kind, reason)
	}
	for _, v := range g.L.Fail(g.Now(), keys(source, account)...) {
		if !v.Log {
			continue
		}
		g.Log.Warn("authentication failed", "kind", kind, "source", host(source), "account", account,
			"reason", reason, "key", v.Key, "failures", v.Failures, "since_last_line", v.Since,
			"blocked", v.Blocked.String(), "locked_out", v.Locked)
	}
}

// Succeeded forgets the failures of source and account.
func (g *Guard) Succeeded(source, account string) {
	if g == nil {
		return
	}
	g.L.Succeed(keys(source, account)...)
}
