package config

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Limits checked on load.
const (
	maxExpiresLimit = 86400 // one day; keeps expiry arithmetic far from overflow
	maxDNDigits     = 15    // E.164
	maxPerLine      = 100
	minFeatureCode  = 2 // characters of a callback feature code
	maxFeatureCode  = 8
)

// durationLimits holds, for every duration key (lower case), its allowed
// range and how error messages spell it.
var durationLimits = map[string]struct {
	min, max time.Duration
	text     string
}{
	"calls.no_answer_timeout": {time.Second, 10 * time.Minute, "1s to 10m"},
	"callback.offer_window":   {time.Second, 10 * time.Minute, "1s to 10m"},
	"callback.t1":             {time.Second, 10 * time.Minute, "1s to 10m"},
	"callback.t3":             {time.Second, 10 * time.Minute, "1s to 10m"},
	"callback.lifetime":       {time.Minute, 48 * time.Hour, "1m to 48h"},
	"callback.lifetime_ccnr":  {time.Minute, 48 * time.Hour, "1m to 48h"},
	"callback.wait_time":      {5 * time.Second, 2 * time.Minute, "5s to 2m"},
	"callback.alert_ring":     {0, 60 * time.Second, "0s to 60s"},
}

// locales that have screens and announcements.
var locales = []string{"en", "de", "zh", "ko"}

type validator struct {
	name string
	pos  positions
	errs *errorList
}

func (v *validator) errorf(path, format string, args ...any) {
	v.errs.add(v.name, v.pos.line(path), 0, format, args...)
	(*v.errs)[len(*v.errs)-1].Key = path
}

// CheckCallback checks service parameters changed while running (the API):
// the same rules as the [callback] table of a file. Each Error's Key names
// the parameter ("callback.t3"); File and Line are empty.
func CheckCallback(cb Callback) []*Error {
	var errs errorList
	v := validator{pos: positions{}, errs: &errs}
	for key, d := range map[string]Duration{
		"callback.offer_window": cb.OfferWindow, "callback.t1": cb.T1, "callback.t3": cb.T3,
		"callback.lifetime": cb.Lifetime, "callback.lifetime_ccnr": cb.LifetimeCCNR,
		"callback.wait_time": cb.WaitTime, "callback.alert_ring": cb.AlertRing,
	} {
		v.duration(key, d.String())
	}
	v.callback(&cb)
	return errs
}

// CheckLine checks a line created or changed while running (the API), with
// the rules of a [[line]] table. Each Error's Key names the field
// ("line[0].dn" becomes "dn").
func CheckLine(l Line) []*Error {
	var errs errorList
	v := validator{pos: positions{}, errs: &errs}
	v.lines([]Line{l})
	for _, e := range errs {
		e.Key = strings.TrimPrefix(e.Key, "line[0].")
	}
	return errs
}

func (v *validator) config(c *Config) {
	v.sip(&c.SIP)

	if err := checkHostPort(c.HTTP.Listen); err != nil {
		v.errorf("http.listen", "http.listen %q: bad address: %v", c.HTTP.Listen, err)
	}

	switch c.Store.Driver {
	case "sqlite":
		if c.Store.Path == "" {
			v.errorf("store.path", "store.path must not be empty")
		}
	case "postgres":
		v.errorf("store.driver", `store.driver "postgres" is not supported yet (only "sqlite")`)
	default:
		v.errorf("store.driver", `unknown store.driver %q (want "sqlite")`, c.Store.Driver)
	}

	v.callback(&c.Callback)

	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		v.errorf("log.level", "log.level %q: want debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		v.errorf("log.format", "log.format %q: want text or json", c.Log.Format)
	}

	v.lines(c.Lines)
}

func (v *validator) sip(s *SIP) {
	if len(s.Listen) == 0 {
		v.errorf("sip.listen", `sip.listen is empty: want at least one "udp:HOST:PORT" or "tcp:HOST:PORT"`)
	}
	first := map[string]int{}
	for i, l := range s.Listen {
		path := fmt.Sprintf("sip.listen[%d]", i)
		if err := checkListen(l); err != nil {
			v.errorf(path, "sip.listen %q: bad address: %v", l, err)
			continue
		}
		if j, dup := first[l]; dup {
			v.errorf(path, "duplicate sip.listen %q (first at line %d)", l, v.pos.line(fmt.Sprintf("sip.listen[%d]", j)))
			continue
		}
		first[l] = i
	}

	if s.Realm == "" {
		v.errorf("sip.realm", "sip.realm must not be empty")
	} else if strings.ContainsAny(s.Realm, `"\`) || hasControl(s.Realm) {
		// The realm goes into a quoted-string of WWW-Authenticate.
		v.errorf("sip.realm", "sip.realm %q: must not contain quotes, backslashes or control characters", s.Realm)
	}
	if !validDomain(s.Domain) {
		v.errorf("sip.domain", "sip.domain %q: want an IP address or a host name (no port)", s.Domain)
	}
	if s.UserAgent == "" {
		v.errorf("sip.user_agent", "sip.user_agent must not be empty")
	} else if hasControl(s.UserAgent) {
		v.errorf("sip.user_agent", "sip.user_agent %q: must not contain control characters", s.UserAgent)
	}

	inRange := true
	for _, e := range []struct {
		key string
		val int
	}{{"min_expires", s.MinExpires}, {"max_expires", s.MaxExpires}, {"default_expires", s.DefaultExpires}} {
		if e.val < 1 || e.val > maxExpiresLimit {
			v.errorf("sip."+e.key, "sip.%s %d: want 1-%d seconds", e.key, e.val, maxExpiresLimit)
			inRange = false
		}
	}
	switch {
	case !inRange:
	case s.MinExpires > s.MaxExpires:
		v.errorf("sip.min_expires", "sip.min_expires %d: above max_expires %d", s.MinExpires, s.MaxExpires)
	case s.DefaultExpires < s.MinExpires || s.DefaultExpires > s.MaxExpires:
		v.errorf("sip.default_expires", "sip.default_expires %d: want between min_expires %d and max_expires %d",
			s.DefaultExpires, s.MinExpires, s.MaxExpires)
	}
}

// duration parses the duration string s of key (a key of durationLimits)
// and checks its range; on error it reports and returns 0.
func (v *validator) duration(key, s string) Duration {
	lim, ok := durationLimits[key]
	if !ok {
		panic("config: no limits for duration key " + key)
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		v.errorf(key, `%s %q: not a duration such as "30s" or "2m"`, key, s)
		return Duration{}
	case d < lim.min || d > lim.max:
		v.errorf(key, "%s %q: want %s", key, s, lim.text)
	}
	return Duration{d}
}

// callback checks [callback] apart from its durations, which duration
// checked while parsing them.
func (v *validator) callback(cb *Callback) {
	switch cb.Policy {
	case PolicyNotifyAll, PolicyFIFO:
	default:
		v.errorf("callback.policy", "callback.policy %q: want %s or %s", cb.Policy, PolicyNotifyAll, PolicyFIFO)
	}

	okActivate := v.featureCode("callback.activate_code", cb.ActivateCode)
	okCancel := v.featureCode("callback.cancel_code", cb.CancelCode)
	if !okActivate || !okCancel {
		return
	}
	// The server tells the codes apart as they are dialled, and the
	// activate code may be followed by a DN ("*39<DN>"): neither may be
	// a prefix of the other. The error points at the later of the two in
	// the file, as the one most likely just changed.
	a, c := cb.ActivateCode, cb.CancelCode
	at := "callback.cancel_code"
	if v.pos["callback.activate_code"] > v.pos["callback.cancel_code"] {
		at = "callback.activate_code"
	}
	switch {
	case a == c:
		v.errorf(at, "callback.activate_code and callback.cancel_code are both %q: they must differ", a)
	case strings.HasPrefix(a, c) || strings.HasPrefix(c, a):
		v.errorf(at, "callback.activate_code %q and callback.cancel_code %q: neither may be a prefix of the other", a, c)
	}
}

// featureCode checks a feature code: 2-8 characters of 0-9, '*' and '#',
// starting with '*' or '#' (so that it never collides with a DN, which is
// digits only).
func (v *validator) featureCode(key, s string) bool {
	ok := len(s) >= minFeatureCode && len(s) <= maxFeatureCode && (s[0] == '*' || s[0] == '#')
	for _, r := range s {
		if !('0' <= r && r <= '9' || r == '*' || r == '#') {
			ok = false
		}
	}
	if !ok {
		v.errorf(key, "%s %q: want %d-%d characters of 0-9, * and #, starting with * or #",
			key, s, minFeatureCode, maxFeatureCode)
	}
	return ok
}

func (v *validator) lines(lines []Line) {
	first := map[string]int{}
	for i, l := range lines {
		path := fmt.Sprintf("line[%d]", i)
		who := fmt.Sprintf("line %q", l.DN)
		if l.DN == "" {
			who = fmt.Sprintf("line #%d", i+1)
		}
		switch {
		case l.DN == "":
			v.errorf(path+".dn", "%s: dn is required", who)
		case !digitsOnly(l.DN, false):
			v.errorf(path+".dn", "%s: dn must be digits only (F9)", who)
		case len(l.DN) > maxDNDigits:
			v.errorf(path+".dn", "%s: dn must be 1-%d digits", who, maxDNDigits)
		default:
			if j, dup := first[l.DN]; dup {
				v.errorf(path+".dn", "duplicate dn %q (first at line %d)", l.DN, v.pos.line(fmt.Sprintf("line[%d].dn", j)))
			} else {
				first[l.DN] = i
			}
		}
		if !digitsOnly(l.Name, true) {
			v.errorf(path+".name", "%s: name %q must be digits and spaces only (F9)", who, l.Name)
		}
		if l.Password == "" {
			v.errorf(path+".password", "%s: password is required", who)
		}
		if !validLocale(l.Locale) {
			v.errorf(path+".locale", "%s: locale %q: want %s", who, l.Locale, strings.Join(locales, ", "))
		}
		if l.BusyTrigger < 1 || l.BusyTrigger > maxPerLine {
			v.errorf(path+".busy_trigger", "%s: busy_trigger %d: want 1-%d", who, l.BusyTrigger, maxPerLine)
		}
		if l.MaxDevices < 1 || l.MaxDevices > maxPerLine {
			v.errorf(path+".max_devices", "%s: max_devices %d: want 1-%d", who, l.MaxDevices, maxPerLine)
		}
	}
}

// checkListen checks a SIP listen address "TRANSPORT:HOST:PORT".
func checkListen(s string) error {
	transport, hostport, ok := strings.Cut(s, ":")
	if !ok {
		return fmt.Errorf("want TRANSPORT:HOST:PORT")
	}
	if transport != "udp" && transport != "tcp" {
		return fmt.Errorf("transport %q: want udp or tcp", transport)
	}
	return checkHostPort(hostport)
}

// checkHostPort checks "HOST:PORT" where HOST is an IP literal or localhost,
// so that the server binds exactly where it is told (no DNS at startup).
func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("want HOST:PORT")
	}
	if _, err := netip.ParseAddr(host); err != nil && host != "localhost" {
		return fmt.Errorf("host %q: want an IP address or localhost", host)
	}
	if n, err := strconv.Atoi(port); err != nil || !digitsOnly(port, false) || n < 1 || n > 65535 {
		return fmt.Errorf("port %q: want 1-65535", port)
	}
	return nil
}

func validDomain(s string) bool {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Zone() == "" // a zone means nothing to another host
	}
	// RFC 1123 host name: dot-separated labels of letters, digits and
	// hyphens, 1-63 characters each, no hyphen at either end.
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(s, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// digitsOnly reports whether s holds only 0-9 (and spaces if allowed): F9
// keeps '#', '*' and letters out of names and numbers.
func digitsOnly(s string, spaces bool) bool {
	for _, r := range s {
		if !('0' <= r && r <= '9' || spaces && r == ' ') {
			return false
		}
	}
	return true
}

func validLocale(s string) bool {
	for _, l := range locales {
		if s == l {
			return true
		}
	}
	return false
}

func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return true
		}
	}
	return false
}
