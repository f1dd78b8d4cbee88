package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/callbackd/callbackd/internal/dialplan"
	"github.com/callbackd/callbackd/internal/media"
)

// Limits checked on load.
const (
	maxExpiresLimit = 86400 // one day; keeps expiry arithmetic far from overflow
	maxPerLine      = 100
	minFeatureCode  = 2 // characters of a callback feature code
	maxFeatureCode  = 8
	// RTP ports start above the well-known ones, which need privileges to
	// bind and belong to other services.
	minRTPPort = 1024
	maxRTPPort = 65535
	// maxSoundFile bounds a sound file such as callback.alert_file: 10 MB
	// is over ten minutes of 8 kHz 16-bit audio, far more than an alert.
	maxSoundFile = 10 << 20
)

// durationLimits holds, for every duration key (lower case), its allowed
// range and how error messages spell it.
var durationLimits = map[string]struct {
	min, max time.Duration
	text     string
}{
	"calls.no_answer_timeout": {time.Second, 10 * time.Minute, "1s to 10m"},
	"cluster.lease":           {time.Second, time.Minute, "1s to 1m"},
	"cluster.handover_wait":   {0, time.Hour, "0s to 1h"},
	"sip.overload_delay":      {0, 2 * time.Second, "0s (off) to 2s"},
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

// notifications are the values of line.notification.
var notifications = []string{NotifyScreen, NotifyAutoRecall}

type validator struct {
	name string
	pos  *positions // nil: no file
	errs *errorList
}

func (v *validator) errorf(path, format string, args ...any) {
	v.errs.add(v.name, v.pos.line(path), 0, format, args...)
	(*v.errs)[len(*v.errs)-1].Key = path
}

// CheckCallback checks service parameters changed while running (the API):
// the same rules as the [callback] table of a file, so an alert_file that
// is a path is read. Each Error's Key names the parameter ("callback.t3");
// File and Line are empty.
func CheckCallback(cb Callback) []*Error {
	var errs errorList
	v := validator{errs: &errs}
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
	v := validator{errs: &errs}
	v.lines([]Line{l})
	for _, e := range errs {
		e.Key = strings.TrimPrefix(e.Key, "line[0].")
	}
	return errs
}

func (v *validator) config(c *Config) {
	v.sip(&c.SIP)
	v.media(&c.Media, &c.SIP)

	if err := checkHostPort(c.HTTP.Listen); err != nil {
		v.errorf("http.listen", "http.listen %q: bad address: %v", c.HTTP.Listen, err)
	}
	v.http(&c.HTTP)

	switch c.Store.Driver {
	case "sqlite":
		if c.Store.Path == "" {
			v.errorf("store.path", "store.path must not be empty")
		}
	case "postgres":
		v.storeURL(c.Store.URL)
	default:
		v.errorf("store.driver", `unknown store.driver %q (want "sqlite" or "postgres")`, c.Store.Driver)
	}
	v.cluster(&c.Cluster, c.Store.Driver)

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
	v.references(c)
}

// storeURL checks [store] url for the postgres driver. Its text is never
// quoted back: it may hold a password.
func (v *validator) storeURL(raw string) {
	if raw == "" {
		v.errorf("store.driver", `store.driver "postgres" needs store.url ("postgres://user:password@host:5432/callbackd")`)
		return
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		v.errorf("store.url", `store.url: want "postgres://user:password@host:5432/database"`)
	}
}

// cluster checks [cluster]: only over a shared (postgres) store.
func (v *validator) cluster(c *Cluster, driver string) {
	if c.Name == "" {
		return
	}
	if driver != "postgres" {
		v.errorf("cluster.name", `cluster.name: a cluster shares its store: it needs store.driver "postgres"`)
	}
	if len(c.Name) > 64 || strings.ContainsFunc(c.Name, func(r rune) bool { return r <= ' ' || r > '~' }) {
		v.errorf("cluster.name", "cluster.name %q: want up to 64 printable ASCII characters, no spaces", c.Name)
	}
	if c.Priority < 0 || c.Priority > 1000 {
		v.errorf("cluster.priority", "cluster.priority %d: want 0-1000 (lower is preferred)", c.Priority)
	}
}

// profiles checks the [[profile]] tables and the lines' profile names.
func (v *validator) profiles(c *Config) {
	names := map[string]bool{}
	for i, p := range c.Profiles {
		v.tableName(fmt.Sprintf("profile[%d].name", i), "profile", i, p.Name, names)
	}
	for i, l := range c.Lines {
		if _, ok := c.Profile(l.Profile); !ok {
			v.errorf(fmt.Sprintf("line[%d].profile", i), "line %q: profile %q is not a [[profile]]", l.DN, l.Profile)
		}
	}
}

// tableName checks the name of the i-th table of a kind (profile, trunk): given,
// printable, and not taken by an earlier one (seen).
func (v *validator) tableName(path, kind string, i int, name string, seen map[string]bool) {
	switch {
	case name == "" || hasControl(name):
		v.errorf(path, "%s #%d: name is required", kind, i+1)
	case seen[name]:
		v.errorf(path, "duplicate %s name %q", kind, name)
	}
	seen[name] = true
}

// dialOut reads a profile's dial_out: "none" (or absent), "all", or an
// array of digit prefixes.
func (v *validator) dialOut(path, profile string, x any) []string {
	bad := func() []string {
		v.errorf(path, `profile %q: dial_out: want "none", "all" or an array of digit prefixes such as ["0", "00"]`, profile)
		return nil
	}
	switch d := x.(type) {
	case nil:
		return nil
	case string:
		switch d {
		case "none":
			return nil
		case "all":
			return []string{""}
		}
		return bad()
	case []any:
		out := []string{}
		for _, e := range d {
			p, ok := e.(string)
			if !ok || !dialplan.Digits(p) || len(p) > dialplan.MaxDNDigits {
				return bad()
			}
			out = append(out, p)
		}
		return out
	}
	return bad()
}

// trunks checks the [[trunk]] tables: a name, an address to send to, and
// prefixes that are digits.
func (v *validator) trunks(c *Config) {
	names := map[string]bool{}
	for i, t := range c.Trunks {
		path := fmt.Sprintf("trunk[%d]", i)
		v.tableName(path+".name", "trunk", i, t.Name, names)
		if strings.HasPrefix(t.Name, "line:") { // callcompletion.PhonePeer: a line's own phone as the agent
			v.errorf(path+".name", `trunk %q: names starting with "line:" are reserved`, t.Name)
		}
		if err := checkListen(t.Address); err != nil {
			v.errorf(path+".address", "trunk %q: address %q: %v", t.Name, t.Address, err)
		}
		for _, p := range t.Prefixes {
			if !dialplan.Digits(p) || len(p) > dialplan.MaxDNDigits {
				v.errorf(path+".prefixes", "trunk %q: prefix %q: want 1-%d digits", t.Name, p, dialplan.MaxDNDigits)
			}
		}
		if t.Monitor != "" && t.Monitor != MonitorDialog {
			v.errorf(path+".monitor", `trunk %q: monitor %q: want "dialog" or nothing`, t.Name, t.Monitor)
		}
		if (t.Username == "") != (t.Password == "") {
			key := ".password" // the one given
			if t.Password == "" {
				key = ".username"
			}
			v.errorf(path+key, "trunk %q: username and password go together: give both or neither", t.Name)
		}
	}
}

// users checks the Extension Mobility users: unique IDs, PINs, and lines
// that exist and are phones.
func (v *validator) users(c *Config) {
	kind := make(map[string]string, len(c.Lines))
	for _, l := range c.Lines {
		kind[l.DN] = l.Kind
	}
	ids := map[string]bool{}
	for i, u := range c.Users {
		path := fmt.Sprintf("user[%d]", i)
		switch {
		case !dialplan.Digits(u.ID) || len(u.ID) > dialplan.MaxDNDigits:
			v.errorf(path+".id", "user %q: id must be 1-%d digits", u.ID, dialplan.MaxDNDigits)
		case ids[u.ID]:
			v.errorf(path+".id", "duplicate user id %q", u.ID)
		}
		ids[u.ID] = true
		if !dialplan.Digits(u.PIN) || len(u.PIN) < 4 || len(u.PIN) > 8 {
			v.errorf(path+".pin", "user %q: pin must be 4-8 digits", u.ID)
		}
		if k, ok := kind[u.Line]; !ok || k != KindPhone {
			v.errorf(path+".line", "user %q: line %q: want the DN of a phone line", u.ID, u.Line)
		}
	}
}

// references checks what lines name across the directory: forwarding
// targets and route point members exist, and the voicemail pilot is a
// voicemail line. (Forwarding loops are legal to configure and stopped
// when a call meets one, as a line may also change its forwarding live.)
func (v *validator) references(c *Config) {
	v.users(c)
	v.trunks(c)
	v.profiles(c)
	kind := make(map[string]string, len(c.Lines))
	for _, l := range c.Lines {
		kind[l.DN] = l.Kind
	}
	if p := c.Calls.VoicemailPilot; p != "" && kind[p] != KindVoicemail {
		v.errorf("calls.voicemail_pilot", "calls.voicemail_pilot %q: want the DN of a line of kind %q", p, KindVoicemail)
	}
	lineKind := func(dn string) (string, bool) { k, ok := kind[dn]; return k, ok }
	external := func(number string) bool { _, ok := c.Trunks.For(number); return ok }
	for i, l := range c.Lines {
		path := "line[" + strconv.Itoa(i) + "]." // not Sprintf: 100k lines
		v.lineReferences(path, l, lineKind, external)
		for _, f := range l.Forwards() {
			if _, ok := kind[f.Target]; dialplan.IsDN(f.Target) && !ok && external(f.Target) {
				if p, found := c.Profile(l.Profile); found && !p.MayDialOut(f.Target) {
					v.errorf(path+f.Key, "line %q: %s %q is an external number its profile %q may not dial out to (profile dial_out)", l.DN, f.Key, f.Target, p.Name)
				}
			}
		}
	}
}

// LineReferences checks what a line created or changed while running (the
// API) names in the directory, with the rules Load applies across a file's
// lines: a route point's members are phone lines, forwarding targets are
// lines or numbers of a trunk ("voicemail" stands for
// calls.voicemail_pilot, which is the file's business). kind gives the kind
// of the line dn (false: no such line); external reports whether a number
// is called through a trunk. Each Error's Key names the field.
func LineReferences(l Line, kind func(dn string) (string, bool), external func(number string) bool) []*Error {
	var errs errorList
	v := validator{errs: &errs}
	v.lineReferences("", l, kind, external)
	return errs
}

// lineReferences reports under path (the line's key and a dot) what l
// names that is missing or of the wrong kind. What lines reports already
// (members and targets that are no DN, or the line itself) is not reported
// again.
func (v *validator) lineReferences(path string, l Line, kind func(dn string) (string, bool), external func(number string) bool) {
	if l.Kind == KindRoutePoint {
		for _, m := range l.Members {
			if m == l.DN || !dialplan.IsDN(m) {
				continue
			}
			if k, ok := kind(m); !ok {
				v.errorf(path+"members", "line %q: member %q is not a line", l.DN, m)
			} else if k != KindPhone {
				v.errorf(path+"members", "line %q: member %q is a %s, want a phone line", l.DN, m, k)
			}
		}
	}
	for _, f := range l.Forwards() {
		if _, ok := kind(f.Target); dialplan.IsDN(f.Target) && f.Target != l.DN && !ok && !external(f.Target) {
			v.errorf(path+f.Key, "line %q: %s %q is not a line nor a number of a trunk", l.DN, f.Key, f.Target)
		}
	}
}

func (v *validator) sip(s *SIP) {
	if len(s.Listen) == 0 {
		v.errorf("sip.listen", `sip.listen is empty: want at least one "udp:HOST:PORT", "tcp:HOST:PORT" or "tls:HOST:PORT"`)
	}
	first := map[string]int{}
	tlsAt := ""
	for i, l := range s.Listen {
		path := fmt.Sprintf("sip.listen[%d]", i)
		if strings.HasPrefix(l, "tls:") && tlsAt == "" {
			tlsAt = path
		}
		if err := checkSIPListen(l); err != nil {
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
	seen := map[string]bool{}
	for _, a := range s.DigestAlgorithms {
		if (a != "SHA-256" && a != "MD5") || seen[a] {
			v.errorf("sip.digest_algorithms", `sip.digest_algorithms %q: want "SHA-256" and/or "MD5", each once`, s.DigestAlgorithms)
			break
		}
		seen[a] = true
	}
	if len(s.DigestAlgorithms) == 0 {
		v.errorf("sip.digest_algorithms", `sip.digest_algorithms is empty: want ["MD5", "SHA-256"], or one of them`)
	}
	if !validDomain(s.Domain) {
		v.errorf("sip.domain", "sip.domain %q: want an IP address or a host name (no port)", s.Domain)
	}
	if s.UserAgent == "" {
		v.errorf("sip.user_agent", "sip.user_agent must not be empty")
	} else if hasControl(s.UserAgent) {
		v.errorf("sip.user_agent", "sip.user_agent %q: must not contain control characters", s.UserAgent)
	}

	v.tcp(s)
	v.tls(s, tlsAt)

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

// Limits of the TCP keys of [sip].
const (
	maxTCPIdleTimeout = 3600    // seconds
	maxTCPConnections = 1 << 20 // far above any open-files limit
)

// tcp checks the TCP connection limits of [sip].
func (v *validator) tcp(s *SIP) {
	if s.MaxTransactions < 100 || s.MaxTransactions > maxTCPConnections {
		v.errorf("sip.max_transactions", "sip.max_transactions %d: want 100-%d", s.MaxTransactions, maxTCPConnections)
	}
	if s.TCPIdleTimeout < 1 || s.TCPIdleTimeout > maxTCPIdleTimeout {
		v.errorf("sip.tcp_idle_timeout", "sip.tcp_idle_timeout %d: want 1-%d seconds", s.TCPIdleTimeout, maxTCPIdleTimeout)
	}
	if s.TCPMaxConnections < 1 || s.TCPMaxConnections > maxTCPConnections {
		v.errorf("sip.tcp_max_connections", "sip.tcp_max_connections %d: want 1-%d", s.TCPMaxConnections, maxTCPConnections)
	}
	if s.TCPMaxPerSource < 1 || s.TCPMaxPerSource > maxTCPConnections {
		v.errorf("sip.tcp_max_per_source", "sip.tcp_max_per_source %d: want 1-%d", s.TCPMaxPerSource, maxTCPConnections)
	} else if s.TCPMaxConnections >= 1 && s.TCPMaxPerSource > s.TCPMaxConnections {
		v.errorf("sip.tcp_max_per_source", "sip.tcp_max_per_source %d: above tcp_max_connections %d", s.TCPMaxPerSource, s.TCPMaxConnections)
	}
}

// tls checks the certificate of the tls: listeners (at is the first of
// them, "" for none): both files are required and must load as a pair, so
// a server never starts with a TLS listener it cannot serve.
func (v *validator) tls(s *SIP, at string) {
	if at == "" {
		return
	}
	switch {
	case s.TLSCert == "":
		v.errorf(at, "sip.listen has a tls: listener but sip.tls_cert is empty: want the certificate's PEM file")
	case s.TLSKey == "":
		v.errorf(at, "sip.listen has a tls: listener but sip.tls_key is empty: want the private key's PEM file")
	default:
		if _, err := tls.LoadX509KeyPair(s.TLSCert, s.TLSKey); err != nil {
			v.errorf("sip.tls_cert", "sip.tls_cert %q / sip.tls_key %q: %v", s.TLSCert, s.TLSKey, err)
		}
	}
}

// media checks [media]. Its address goes into the SDP the server sends,
// where phones take it as where to send their audio, so it must be one
// address of this host: no host name (no DNS at startup, as for sip.listen),
// and not 0.0.0.0 or ::, which SDP reads as hold (RFC 3264 section 8.4).
func (v *validator) media(m *Media, sip *SIP) {
	if m.Address != "" {
		a, err := netip.ParseAddr(m.Address)
		switch {
		case err != nil:
			v.errorf("media.address", "media.address %q: want an IP address (no host name, no port)", m.Address)
		case a.IsUnspecified():
			v.errorf("media.address", "media.address %q: must not be unspecified (0.0.0.0 or ::): it goes into SDP, where it means hold", m.Address)
		case a.Zone() != "":
			v.errorf("media.address", "media.address %q: must not have a zone: it goes into SDP, where a zone means nothing to the phone", m.Address)
		}
	} else if len(sip.Listen) > 0 && checkSIPListen(sip.Listen[0]) == nil {
		// The default is the first listener's host, which is fine for a
		// SIP socket but not for SDP when it is unspecified or zoned.
		// Point at media.address if the file has it, else at the listener.
		if a, err := netip.ParseAddr(m.Addr(*sip)); err == nil && (a.IsUnspecified() || a.Zone() != "") {
			at := "sip.listen[0]"
			if v.pos.has("media.address") {
				at = "media.address"
			}
			v.errorf(at, "media.address is empty and the first sip.listen %q has no address for SDP: set media.address to this host's IP address", sip.Listen[0])
		}
	}

	inRange := true
	for _, e := range []struct {
		key string
		val int
	}{{"rtp_port_min", m.RTPPortMin}, {"rtp_port_max", m.RTPPortMax}} {
		if e.val < minRTPPort || e.val > maxRTPPort {
			v.errorf("media."+e.key, "media.%s %d: want %d-%d", e.key, e.val, minRTPPort, maxRTPPort)
			inRange = false
		}
	}
	if inRange && m.RTPPortMin >= m.RTPPortMax {
		// As for the feature codes: point at the later of the two.
		v.errorf(v.pos.later("media.rtp_port_max", "media.rtp_port_min"), "media.rtp_port_min %d is not below rtp_port_max %d: the range needs at least 2 ports",
			m.RTPPortMin, m.RTPPortMax)
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
	v.sound("callback.alert_file", cb.AlertFile)

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
	switch {
	case a == c:
		v.errorf(v.pos.later("callback.activate_code", "callback.cancel_code"), "callback.activate_code and callback.cancel_code are both %q: they must differ", a)
	case strings.HasPrefix(a, c) || strings.HasPrefix(c, a):
		v.errorf(v.pos.later("callback.activate_code", "callback.cancel_code"), "callback.activate_code %q and callback.cancel_code %q: neither may be a prefix of the other", a, c)
	}
	// Nor may either be a prefix of a line's own feature codes, or one of
	// those of it: the call back codes are recognised first, and would
	// take the other's calls.
	for _, code := range []struct{ key, code string }{{"callback.activate_code", a}, {"callback.cancel_code", c}} {
		for _, f := range LineFeatureCodes() {
			if strings.HasPrefix(code.code, f) || strings.HasPrefix(f, code.code) {
				v.errorf(code.key, "%s %q and the line feature code %q: neither may be a prefix of the other", code.key, code.code, f)
				break
			}
		}
	}
}

// sound checks a sound setting: the name of a built-in prompt, or the path
// of a WAV file, which is read now so that a file the server cannot play is
// refused here rather than found out at the first call back. A bare word is
// a prompt name (as media.Prompt has it, names have no '/', '\' or '.'), so
// a misspelt name is not taken for a missing file.
func (v *validator) sound(key, s string) {
	names := media.PromptNames()
	switch {
	case slices.Contains(names, s):
	case !strings.ContainsAny(s, `/\.`):
		v.errorf(key, "%s %q: want a built-in prompt (%s) or the path of a WAV file (a path has a / or a ., as in ./alert.wav)",
			key, s, strings.Join(names, ", "))
	default:
		if err := checkWAVFile(s); err != nil {
			v.errorf(key, "%s %q: %v", key, s, err)
		}
	}
}

// checkWAVFile checks that path is a WAV file of at most maxSoundFile bytes
// that media can play: 8 kHz mono 16-bit PCM, with some audio.
func checkWAVFile(path string) error {
	// Stat before Open: opening a FIFO would block.
	fi, err := os.Stat(path)
	if err != nil {
		return pathError(err)
	}
	switch {
	case !fi.Mode().IsRegular():
		return errors.New("not a regular file")
	case fi.Size() > maxSoundFile:
		return fmt.Errorf("%d bytes: want at most %d MB", fi.Size(), maxSoundFile>>20)
	}
	f, err := os.Open(path)
	if err != nil {
		return pathError(err)
	}
	defer f.Close()
	samples, err := media.ReadWAV(io.LimitReader(f, maxSoundFile+1))
	switch {
	case errors.Is(err, media.ErrWAVFormat):
		return fmt.Errorf("%s (want 8 kHz mono 16-bit PCM)", strings.TrimPrefix(err.Error(), "media: "))
	case err != nil:
		return pathError(err)
	case len(samples) == 0:
		return errors.New("no audio (empty data chunk)")
	}
	return nil
}

// pathError drops the operation and path from an os error: the message
// names the file already.
func pathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
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
	first := make(map[string]int, len(lines))
	for i, l := range lines {
		path := "line[" + strconv.Itoa(i) + "]" // not Sprintf: 100k lines
		who := fmt.Sprintf("line %q", l.DN)
		if l.DN == "" {
			who = fmt.Sprintf("line #%d", i+1)
		}
		switch {
		case l.DN == "":
			v.errorf(path+".dn", "%s: dn is required", who)
		case !dialplan.Digits(l.DN):
			v.errorf(path+".dn", "%s: dn must be digits only (F9)", who)
		case len(l.DN) > dialplan.MaxDNDigits:
			v.errorf(path+".dn", "%s: dn must be 1-%d digits", who, dialplan.MaxDNDigits)
		default:
			if j, dup := first[l.DN]; dup {
				v.errorf(path+".dn", "duplicate dn %q (first at line %d)", l.DN, v.pos.line(fmt.Sprintf("line[%d].dn", j)))
			} else {
				first[l.DN] = i
			}
		}
		if !dialplan.DigitsAndSpaces(l.Name) {
			v.errorf(path+".name", "%s: name %q must be digits and spaces only (F9)", who, l.Name)
		}
		if l.Password == "" && l.Kind != KindRoutePoint { // a route point has no devices
			v.errorf(path+".password", "%s: password is required", who)
		}
		switch l.Kind {
		case KindPhone, KindVoicemail:
			if len(l.Members) > 0 {
				v.errorf(path+".members", "%s: members: only a route-point has members", who)
			}
		case KindRoutePoint:
			if len(l.Members) == 0 {
				v.errorf(path+".members", "%s: a route-point needs members (the lines it hands calls to)", who)
			}
			for _, m := range l.Members {
				if m == l.DN || !dialplan.IsDN(m) {
					v.errorf(path+".members", "%s: member %q: want the DN of another line", who, m)
				}
			}
		default:
			v.errorf(path+".kind", "%s: kind %q: want %s, %s or %s", who, l.Kind, KindPhone, KindRoutePoint, KindVoicemail)
		}
		for _, f := range l.Forwards() {
			switch {
			case f.Target == "" || f.Target == ForwardVoicemail:
			case f.Target == l.DN:
				v.errorf(path+"."+f.Key, "%s: %s: a line cannot forward to itself", who, f.Key)
			case !dialplan.IsDN(f.Target):
				v.errorf(path+"."+f.Key, "%s: %s %q: want a DN or %q", who, f.Key, f.Target, ForwardVoicemail)
			}
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
		if !slices.Contains(notifications, l.Notification) {
			v.errorf(path+".notification", "%s: notification %q: want %s", who, l.Notification, strings.Join(notifications, " or "))
		}
	}
}

// checkSIPListen checks a sip.listen entry: "TRANSPORT:HOST:PORT", with
// transport udp, tcp or tls.
func checkSIPListen(s string) error {
	return checkAddress(s, "udp", "tcp", "tls")
}

// checkListen checks a trunk's address "TRANSPORT:HOST:PORT", with
// transport udp or tcp.
func checkListen(s string) error {
	return checkAddress(s, "udp", "tcp")
}

// checkAddress checks "TRANSPORT:HOST:PORT" with one of transports (two
// or three of them).
func checkAddress(s string, transports ...string) error {
	a, err := ParseAddress(s)
	switch {
	case errors.Is(err, errNoTransport):
		return err
	case !slices.Contains(transports, a.Transport):
		last := len(transports) - 1
		return fmt.Errorf("transport %q: want %s or %s", a.Transport, strings.Join(transports[:last], ", "), transports[last])
	case err != nil:
		return err
	}
	return checkHost(a.Host, a.Port)
}

// checkHostPort checks "HOST:PORT" where HOST is an IP literal or localhost,
// so that the server binds exactly where it is told (no DNS at startup).
func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("want HOST:PORT")
	}
	return checkHost(host, port)
}

// checkHost checks the host and port of checkHostPort.
func checkHost(host, port string) error {
	if _, err := netip.ParseAddr(host); err != nil && host != "localhost" {
		return fmt.Errorf("host %q: want an IP address or localhost", host)
	}
	if !validPort(port) {
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

// validPort reports whether s is a port number 1-65535 in decimal digits
// (no sign).
func validPort(s string) bool {
	n, err := strconv.ParseUint(s, 10, 16)
	return err == nil && n >= 1
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

// http checks the [http] keys of B7: the Host allow-list, the allowed
// origins, the debug listener and the event stream caps.
func (v *validator) http(h *HTTP) {
	for _, host := range h.Hosts {
		if host == "*" {
			continue
		}
		name, port := host, ""
		if hn, p, err := net.SplitHostPort(host); err == nil {
			name, port = hn, p
		} else if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") {
			name = "" // a bare IPv6 address: write it in brackets
		} else {
			name = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
		}
		if !validDomain(name) || strings.ContainsAny(host, "/@") {
			v.errorf("http.hosts", "http.hosts %q: want HOST or HOST:PORT (a name or an IP address, IPv6 in brackets), or \"*\"", host)
		} else if port != "" && !validPort(port) {
			v.errorf("http.hosts", "http.hosts %q: port %q: want 1-65535", host, port)
		}
	}
	for _, o := range h.AllowedOrigins {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || o != strings.ToLower(o) {
			v.errorf("http.allowed_origins", "http.allowed_origins %q: want an origin such as \"https://pbx.example.com\" or \"http://10.0.0.5:8080\" (scheme and host in lower case, no path)", o)
		}
	}
	if h.DebugListen != "" {
		if err := checkHostPort(h.DebugListen); err != nil {
			v.errorf("http.debug_listen", "http.debug_listen %q: bad address: %v", h.DebugListen, err)
		} else if h.DebugListen == h.Listen {
			v.errorf("http.debug_listen", "http.debug_listen %q: must differ from http.listen (the debug endpoints are not served on the main listener)", h.DebugListen)
		}
	}
	if h.MaxEventStreams < 1 || h.MaxEventStreams > 100000 {
		v.errorf("http.max_event_streams", "http.max_event_streams %d: want 1-100000", h.MaxEventStreams)
	}
	if h.MaxEventStreamsPerSource < 1 || h.MaxEventStreamsPerSource > h.MaxEventStreams {
		v.errorf("http.max_event_streams_per_source", "http.max_event_streams_per_source %d: want 1 to http.max_event_streams (%d)", h.MaxEventStreamsPerSource, h.MaxEventStreams)
	}
}
