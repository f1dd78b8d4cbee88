// Package config loads, defaults and validates the callbackd TOML
// configuration. The embedded default.toml is the source of all defaults;
// docs/config.md is the reference for every key.
package config

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pelletier/go-toml/v2"
)

// Config is the whole server configuration.
type Config struct {
	SIP      SIP       `toml:"sip"`
	HTTP     HTTP      `toml:"http"`
	Store    Store     `toml:"store"`
	Calls    Calls     `toml:"calls"`
	Media    Media     `toml:"media"`
	Callback Callback  `toml:"callback"`
	Log      Log       `toml:"log"`
	Cluster  Cluster   `toml:"cluster"`
	Lines    []Line    `toml:"line"`    // [[line]] tables
	Users    []User    `toml:"user"`    // [[user]] tables: Extension Mobility (F23)
	Trunks   Trunks    `toml:"trunk"`   // [[trunk]] tables: other SIP servers
	Profiles []Profile `toml:"profile"` // [[profile]] tables: what lines may use (F33)
	Source   string    `toml:"-"`       // file name the config came from, or "<embedded defaults>"
}

// SIP configures the SIP listeners and the registrar.
type SIP struct {
	Listen         []string `toml:"listen"`          // "udp:127.0.0.1:5060", "tcp:127.0.0.1:5060"
	Realm          string   `toml:"realm"`           // digest realm
	Domain         string   `toml:"domain"`          // SIP domain for AOR/From of server-originated requests
	MinExpires     int      `toml:"min_expires"`     // seconds; below it REGISTER gets 423 (RFC 3261 10.3 step 7)
	MaxExpires     int      `toml:"max_expires"`     // seconds
	DefaultExpires int      `toml:"default_expires"` // seconds, when REGISTER has no expiry
	UserAgent      string   `toml:"user_agent"`
	// TrustRegisteredSource lets a request from the address of one of a
	// line's registered devices act for the line without a digest
	// challenge. Off by default: a source address is spoofable over UDP, so
	// it is honoured only for requests over TCP (docs/security.md).
	TrustRegisteredSource bool `toml:"trust_registered_source"`
	// CallCompletionPhones: our lines' phones speak RFC 6910 themselves:
	// a line's failed call carries Call-Info, and the line may subscribe
	// call-completion (digest) and make the CC call. Off: Cisco-style
	// phones, the call back by feature code and screens only.
	CallCompletionPhones bool `toml:"call_completion_phones"`
	// DigestAlgorithms are the digest algorithms offered, most preferred
	// first (RFC 8760): one challenge header each. "SHA-256", "MD5".
	DigestAlgorithms []string `toml:"digest_algorithms"`

	// TCP and TLS connections (B7): a connection that completes no message
	// (nor a keep-alive) for TCPIdleTimeout seconds is closed, and
	// connections beyond TCPMaxConnections in all, or TCPMaxPerSource from
	// one IP address, are closed as soon as accepted.
	TCPIdleTimeout    int `toml:"tcp_idle_timeout"`
	TCPMaxConnections int `toml:"tcp_max_connections"`
	TCPMaxPerSource   int `toml:"tcp_max_per_source"`
	// MaxTransactions bounds the SIP server transactions alive at once
	// (each lives up to 32 s after its answer, RFC 3261 17.2): beyond it new
	// requests get 503 at once, so that a flood cannot take all memory.
	MaxTransactions int `toml:"max_transactions"`
	// OverloadDelay is how long work may wait for a CPU (p90 over 100 ms)
	// before part of the new INVITEs and REGISTERs is answered 503 with
	// Retry-After (RFC 3261 21.5.4) until the server catches up; 0: off.
	OverloadDelay Duration `toml:"overload_delay"`
	// TLSCert and TLSKey are the PEM files of the certificate (chain) and
	// private key of the tls: listeners; required when one is configured.
	TLSCert string `toml:"tls_cert"`
	TLSKey  string `toml:"tls_key"`
}

// HTTP configures the HTTP listener (API, metrics, console, admin page).
type HTTP struct {
	Listen string `toml:"listen"` // host:port
	// Token authorises writes through the API (Authorization: Bearer TOKEN,
	// or Basic with user "admin"). Empty: a random token is made at start
	// and logged.
	Token string `toml:"token"`
	// Hosts are the Host header values served (B7, against DNS rebinding):
	// "host:port", "host" for any port, or "*" for any. Empty: the listen
	// address, localhost, 127.0.0.1 and [::1] with its port (and this
	// machine's addresses when listening on all of them).
	Hosts []string `toml:"hosts"`
	// AllowedOrigins may write from a browser besides the server's own
	// origin ("https://pbx.example.com"); every other origin is cross-site.
	AllowedOrigins []string `toml:"allowed_origins"`
	// DebugListen serves /debug/pprof and /debug/vars on a listener of their
	// own ("HOST:PORT"); empty: not served at all.
	DebugListen string `toml:"debug_listen"`
	// MaxEventStreams caps the open /api/v1/events streams, in total and
	// from one source address.
	MaxEventStreams          int `toml:"max_event_streams"`
	MaxEventStreamsPerSource int `toml:"max_event_streams_per_source"`
}

// Store selects the persistent store.
type Store struct {
	Driver string `toml:"driver"` // "sqlite" or "postgres"
	Path   string `toml:"path"`   // sqlite file, relative to the working directory
	URL    string `toml:"url"`    // postgres: postgres://user:password@host:port/db (the password never logged)
}

// Cluster makes this instance one of several sharing a PostgreSQL store,
// of which one is active (internal/cluster); no name: a single instance.
type Cluster struct {
	Name         string   `toml:"name"`          // this instance, unique in the cluster
	Priority     int      `toml:"priority"`      // lower is preferred as the active
	Lease        Duration `toml:"lease"`         // how long a lease lasts unrenewed
	HandoverWait Duration `toml:"handover_wait"` // how long a better instance waits for a quiet moment
}

// Calls holds call-control timers.
type Calls struct {
	NoAnswerTimeout Duration `toml:"no_answer_timeout"` // 1s..10m; also when forward_no_answer diverts
	// VoicemailPilot is the DN of the voicemail line (kind "voicemail") a
	// forward to "voicemail" goes to; empty: no pilot, such a forward is
	// off (F10).
	VoicemailPilot string `toml:"voicemail_pilot"`
}

// Media configures the server's own RTP media: the announcements, tones and
// alerts it plays to phones and the DTMF it hears from them.
type Media struct {
	// Address is the IP address the RTP sockets bind to and the SDP (c=)
	// carries. Empty: the host of the first sip.listen entry (see Addr).
	Address    string `toml:"address"`
	RTPPortMin int    `toml:"rtp_port_min"` // UDP ports for RTP, 1024..65535; the server takes even ones (RFC 3550 11)
	RTPPortMax int    `toml:"rtp_port_max"` // above RTPPortMin
	// RTPLatch takes a phone's RTP from the first source that sends,
	// locked for the call, instead of only from the address of its SDP:
	// for phones behind NAT. Default false (see media.PeerFilter).
	RTPLatch bool `toml:"rtp_latch"`
}

// Addr returns the IP address media binds to and puts into SDP: Address,
// or else the host of the first sip.listen entry, with "localhost" as
// 127.0.0.1 (SDP wants an address, not a name). It is "" only for a SIP
// section without a valid listen entry, which does not pass validation.
func (m Media) Addr(sip SIP) string {
	if m.Address != "" {
		return m.Address
	}
	if len(sip.Listen) == 0 {
		return ""
	}
	a, err := ParseAddress(sip.Listen[0])
	if err != nil {
		return ""
	}
	return a.IP()
}

// Callback holds the Call Back service parameters. The API reads and writes
// them as JSON under the same names as the TOML keys (docs/config.md gives
// the Cisco and UCware names of each).
type Callback struct {
	Enabled      bool     `toml:"enabled" json:"enabled"`             // Callback Enabled Flag / CC_OFFER; default true
	CCNR         bool     `toml:"ccnr" json:"ccnr"`                   // CC_CCNR_ENABLED: offer call back on no answer; default true
	External     bool     `toml:"external" json:"external"`           // CC_EXTERNAL: callers from trunks may ask too; default false
	Policy       string   `toml:"policy" json:"policy"`               // "notify-all" (Cisco: all waiting callers alerted, first to dial wins) or "fifo" (ETSI/UCware queue); default "notify-all"
	OfferWindow  Duration `toml:"offer_window" json:"offer_window"`   // how long after a failed call *39 activates on it; default 30s; 1s..10m
	T1           Duration `toml:"t1" json:"t1"`                       // Call Back Request Protection T1 Timer; default 20s; 1s..10m
	T3           Duration `toml:"t3" json:"t3"`                       // Callback Recall T3 Timer; default 20s; 1s..10m
	Lifetime     Duration `toml:"lifetime" json:"lifetime"`           // CC_TIMEOUT: open request lifetime (CCBS, CCNL); default 60m; 1m..48h
	LifetimeCCNR Duration `toml:"lifetime_ccnr" json:"lifetime_ccnr"` // CCNR request lifetime; default 180m; 1m..48h
	WaitTime     Duration `toml:"wait_time" json:"wait_time"`         // CC_WAIT_TIME: how long a recall rings the caller; default 20s; 5s..2m
	AlertRing    Duration `toml:"alert_ring" json:"alert_ring"`       // how long the audio alert rings A's phones when B is available; default 4s; 0s..60s (0: no ring, screen only)
	AlertFile    string   `toml:"alert_file" json:"alert_file"`       // Callback Audio Notification File Name (F32): a built-in prompt or a WAV file; default "callback_alert"
	Announce     bool     `toml:"announce" json:"announce"`           // answer a busy / logged-out failure with early media offering the call back (F28); default true
	BusyTone     bool     `toml:"busy_tone" json:"busy_tone"`         // CC_BUSY_TONE: a busy / logged-out failure plays the busy tone, not the offer; default false
	ActivateCode string   `toml:"activate_code" json:"activate_code"` // feature code of the CallBack key; default "*39" (also "*39<DN>")
	CancelCode   string   `toml:"cancel_code" json:"cancel_code"`     // feature code of Cancel; default "#39"
}

// Callback.Policy values.
const (
	PolicyNotifyAll = "notify-all" // every waiting caller is alerted; the first to dial wins (Cisco)
	PolicyFIFO      = "fifo"       // waiting callers are served one at a time, in order (ETSI, UCware)
)

// Log configures log/slog output.
type Log struct {
	Level  string `toml:"level"`  // debug|info|warn|error
	Format string `toml:"format"` // text|json
}

// Line is one directory entry: a number phones register for.
type Line struct {
	DN          string `toml:"dn"`           // 1-15 digits (F9)
	Name        string `toml:"name"`         // display name, digits and spaces only (F9), may be empty
	Password    string `toml:"password"`     // digest password, required
	Locale      string `toml:"locale"`       // en|de|zh|ko
	BusyTrigger int    `toml:"busy_trigger"` // calls before the line counts as busy, 1..100
	MaxDevices  int    `toml:"max_devices"`  // registered devices at once, 1..100
	// Notification is how the line, as caller, learns that a call back is
	// available: NotifyScreen or NotifyAutoRecall.
	Notification string `toml:"notification"`
	// Kind is what the DN is: KindPhone (devices register for it),
	// KindRoutePoint (a route point / hunt pilot handing its calls to
	// Members, F27) or KindVoicemail (a voicemail server registers for it).
	Kind    string   `toml:"kind"`
	Members []string `toml:"members"` // route point: the lines tried, in order
	// Call forwarding (F10, F20, F21): a DN, "voicemail" (calls.voicemail_pilot),
	// or empty for off. No answer diverts after calls.no_answer_timeout.
	ForwardAll      string `toml:"forward_all"`
	ForwardBusy     string `toml:"forward_busy"`
	ForwardNoAnswer string `toml:"forward_no_answer"`
	DND             bool   `toml:"dnd"` // DND-Reject: calls are refused busy (F22)
	// Profile names the line's [[profile]] (F33); DefaultProfile when empty.
	Profile string `toml:"profile"`
}

// User is an Extension Mobility user (F23): dialing CodeLogin followed by
// the user's ID, "*" and the PIN on any registered phone puts the user's
// line on that phone (its calls ring there, and calls from the phone are
// the line's) until CodeLogout.
type User struct {
	ID   string `toml:"id"`   // 1-15 digits
	PIN  string `toml:"pin"`  // 4-8 digits
	Line string `toml:"line"` // the user's line, a phone line
}

// Profile is what the lines naming it may use (F33: Cisco's softkey
// template, phone button template and common device configuration become
// a permission). A line without a profile has DefaultProfile, which allows
// everything unless a [[profile]] of that name says otherwise.
type Profile struct {
	Name     string `toml:"name"`
	CallBack bool   `toml:"callback"` // the CallBack key, *39 and the offer; default true
	// WatchLines is what the lines may learn of other lines' calls through
	// the dialog event package (RFC 4235: busy lamp fields, a phone's own
	// camp-on): WatchNone, WatchState (default: each call's state and
	// direction) or WatchIdentity (also who the other party is). A line
	// may always watch itself.
	WatchLines string `toml:"watch_lines"`
	// DialOut is what external numbers (numbers of a trunk) the lines may
	// call and forward to (F32, Cisco's Calling Search Space): the
	// prefixes allowed; "" allows every number; none (the default):
	// internal numbers only. TOML: dial_out = "none" | "all" | ["0", ...].
	DialOut []string `toml:"-"`
}

// MayDialOut reports whether a line of profile p may call (or forward to)
// the external number.
func (p Profile) MayDialOut(number string) bool {
	for _, pre := range p.DialOut {
		if strings.HasPrefix(number, pre) {
			return true
		}
	}
	return false
}

// DefaultProfile is the profile of a line that names none.
const DefaultProfile = "default"

// Profile.WatchLines values.
const (
	WatchNone     = "none"
	WatchState    = "state"
	WatchIdentity = "identity"
)

type fileProfile struct {
	Name       string `toml:"name"`
	CallBack   *bool  `toml:"callback"`
	WatchLines string `toml:"watch_lines"`
	DialOut    any    `toml:"dial_out"` // "none", "all" or an array of prefixes
}

// Profile returns the profile called name; ok is false when there is
// none (DefaultProfile always exists).
func (c *Config) Profile(name string) (Profile, bool) {
	if name == "" {
		name = DefaultProfile // a line naming none has the file's "default", if any
	}
	for _, p := range c.Profiles {
		if p.Name == name {
			return p, true
		}
	}
	if name == DefaultProfile {
		return Profile{Name: DefaultProfile, CallBack: true, WatchLines: WatchState}, true
	}
	return Profile{}, false
}

// Trunk is another SIP server (a PBX, a carrier's gateway) the server
// exchanges calls with, without registration: numbers starting with one
// of Prefixes are called through it (a forwarding to an external number
// too), and INVITEs from its address are calls from outside: their caller
// is the From number, offered Call Back when callback.external is on
// (F30), recalled through the trunk.
type Trunk struct {
	Name     string   `toml:"name"`
	Address  string   `toml:"address"`  // "udp:HOST:PORT" or "tcp:HOST:PORT"
	Prefixes []string `toml:"prefixes"` // digits; the longest matching prefix wins
	// Hairpin lets calls from this trunk go out through a trunk again
	// (dialed, or by a line's forwarding); off by default (toll fraud).
	Hairpin bool `toml:"hairpin"`
	// CallCompletion: the server behind the trunk speaks RFC 6910 call
	// completion, as agent and monitor: its callers' failed calls carry
	// Call-Info and may subscribe; a call back to its numbers subscribes
	// there (F3). Off by default: no call back across it.
	CallCompletion bool `toml:"call_completion"`
	// Monitor is how a call back on a number of this trunk learns that
	// the callee is free: MonitorDialog subscribes to its dialog state on
	// the other server (RFC 4235, B6); "" (default): no call back there.
	Monitor string `toml:"monitor"`
	// Username and Password answer the other server's digest challenge
	// (401/407) to our own requests there (the dialog SUBSCRIBEs of
	// Monitor); the password is never logged.
	Username string `toml:"username"`
	Password string `toml:"password"`
}

// MonitorDialog is Trunk.Monitor for the dialog event package.
const MonitorDialog = "dialog"

// Trunks are the [[trunk]] tables.
type Trunks []Trunk

// At returns the trunk a request comes from: its transport and source
// address (host:port) are the trunk's address.
func (ts Trunks) At(transport, source string) (Trunk, bool) {
	for _, t := range ts {
		a, err := ParseAddress(t.Address)
		if err == nil && net.JoinHostPort(a.IP(), a.Port) == source && strings.EqualFold(a.Via(), transport) {
			return t, true
		}
	}
	return Trunk{}, false
}

// For returns the trunk that number is called through, if any.
func (ts Trunks) For(number string) (Trunk, bool) {
	var best Trunk
	n := -1
	for _, t := range ts {
		for _, p := range t.Prefixes {
			if strings.HasPrefix(number, p) && len(p) > n {
				best, n = t, len(p)
			}
		}
	}
	return best, n >= 0
}

// Forward is one of a line's forwarding settings, by its key.
type Forward struct{ Key, Target string }

// Forwards lists the line's forwarding keys with their targets.
func (l Line) Forwards() []Forward {
	return []Forward{{"forward_all", l.ForwardAll}, {"forward_busy", l.ForwardBusy}, {"forward_no_answer", l.ForwardNoAnswer}}
}

// Line.Kind values.
const (
	KindPhone      = "phone"
	KindRoutePoint = "route-point"
	KindVoicemail  = "voicemail"
)

// ForwardVoicemail is the forwarding target that means the voicemail pilot.
const ForwardVoicemail = "voicemail"

// ForwardTarget resolves a forwarding setting to the number a call goes
// to: "voicemail" is the pilot, off ("") when there is none (F10: diverted
// without a pilot, the call stays). The B2BUA's routing and Call Back's
// engine both read forwarding through it.
func ForwardTarget(setting, voicemailPilot string) string {
	if setting == ForwardVoicemail {
		return voicemailPilot
	}
	return setting
}

// The feature codes a line's phone sets its forwarding and DND-Reject with
// (internal/app/features.go; docs/config.md): a Set code followed by
// a DN, or by nothing for voicemail, sets; an Off code and the DND codes
// are dialled alone.
const (
	CodeForwardAll         = "*21"
	CodeForwardAllOff      = "#21"
	CodeForwardBusy        = "*67"
	CodeForwardBusyOff     = "#67"
	CodeForwardNoAnswer    = "*61"
	CodeForwardNoAnswerOff = "#61"
	CodeDNDOn              = "*78"
	CodeDNDOff             = "*79"
	CodeLogin              = "*40" // Extension Mobility: *40<user ID>*<PIN>
	CodeLogout             = "#40"
)

// LineFeatureCodes lists them, for the check that Call Back's own codes do
// not shadow them (Call Back's are recognised first).
func LineFeatureCodes() []string {
	return []string{CodeForwardAll, CodeForwardAllOff, CodeForwardBusy, CodeForwardBusyOff,
		CodeForwardNoAnswer, CodeForwardNoAnswerOff, CodeDNDOn, CodeDNDOff, CodeLogin, CodeLogout}
}

// Line.Notification values.
const (
	NotifyScreen     = "notify"      // audio alert, Available screen, the caller presses Dial (Cisco)
	NotifyAutoRecall = "auto-recall" // the server rings the caller, then calls the callee and connects them (UCware)
)

// UnmarshalJSON decodes a line stored as JSON (lines changed through the
// API are). A line stored before notification or kind existed has none and
// gets the default, rather than failing CheckLine and being dropped.
func (l *Line) UnmarshalJSON(b []byte) error {
	type plain Line // without this method
	if err := json.Unmarshal(b, (*plain)(l)); err != nil {
		return err
	}
	if l.Notification == "" {
		l.Notification = DefaultNotification
	}
	if l.Kind == "" {
		l.Kind = KindPhone
	}
	if len(l.Members) == 0 {
		l.Members = nil // "Members": [] or null: none, as in a file
	}
	return nil
}

// Per-line defaults for keys a [[line]] table leaves out. TOML cannot express
// defaults for array-of-table elements, so they live here; the demo lines in
// default.toml spell them out.
const (
	DefaultLocale       = "en"
	DefaultBusyTrigger  = 1
	DefaultMaxDevices   = 4
	DefaultNotification = NotifyScreen
)

// Duration wraps time.Duration so that it reads and writes as a Go duration
// string such as "30s".
type Duration struct{ time.Duration }

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// EmbeddedName is the Source of the configuration returned by Default.
const EmbeddedName = "<embedded defaults>"

//go:embed default.toml
var defaultTOML []byte

// DefaultTOML returns the embedded default configuration file, comments
// included (for printing an example config).
func DefaultTOML() []byte { return bytes.Clone(defaultTOML) }

var defaults = sync.OnceValue(func() *Config {
	c, err := parse(EmbeddedName, defaultTOML, &Config{})
	if err != nil {
		panic("config: embedded defaults are invalid: " + err.Error())
	}
	return c
})

// Default returns the embedded defaults, demo lines included. Each call
// returns a fresh copy the caller may modify.
func Default() *Config { return defaults().clone() }

// Load reads the TOML file at path, applies the defaults for settings it
// leaves out and validates it. The file's lines replace the demo lines: a
// file without [[line]] tables has no lines.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, data)
}

// Parse is Load from bytes; name is the file name used in errors and Source.
// On error the Config is nil and the error lists every problem found, one
// "NAME:LINE: message" per line, sorted by line (see Error).
func Parse(name string, data []byte) (*Config, error) {
	base := Default()
	base.Lines = nil
	return parse(name, data, base)
}

// Line returns the line with the given DN.
func (c *Config) Line(dn string) (Line, bool) {
	for _, l := range c.Lines {
		if l.DN == dn {
			return l, true
		}
	}
	return Line{}, false
}

func (c *Config) clone() *Config {
	n := *c
	n.SIP.Listen = slices.Clone(c.SIP.Listen)
	n.HTTP.Hosts = slices.Clone(c.HTTP.Hosts)
	n.HTTP.AllowedOrigins = slices.Clone(c.HTTP.AllowedOrigins)
	n.Lines = slices.Clone(c.Lines)
	n.Users = slices.Clone(c.Users)
	n.Trunks = slices.Clone(c.Trunks)
	n.Profiles = slices.Clone(c.Profiles)
	for i := range n.Lines {
		n.Lines[i].Members = slices.Clone(n.Lines[i].Members)
	}
	return &n
}

// fileConfig is what a file decodes into. It differs from Config where a
// value left out must be told apart from a zero value, and where the decoder
// would lose the position of an error (it reports TextUnmarshaler errors
// without one, so the duration is parsed in validate).
type fileConfig struct {
	SIP      fileSIP       `toml:"sip"`
	HTTP     HTTP          `toml:"http"`
	Store    Store         `toml:"store"`
	Calls    fileCalls     `toml:"calls"`
	Media    Media         `toml:"media"`
	Callback fileCallback  `toml:"callback"`
	Log      Log           `toml:"log"`
	Cluster  fileCluster   `toml:"cluster"`
	Lines    []fileLine    `toml:"line"`
	Users    []User        `toml:"user"`
	Trunks   []Trunk       `toml:"trunk"`
	Profiles []fileProfile `toml:"profile"`
}

// fileSIP is SIP with its duration as a string (see fileConfig).
type fileSIP struct {
	SIP
	OverloadDelay string `toml:"overload_delay"`
}

type fileCalls struct {
	NoAnswerTimeout string `toml:"no_answer_timeout"`
	VoicemailPilot  string `toml:"voicemail_pilot"`
}

// fileCluster is Cluster with its durations as strings (see fileConfig).
type fileCluster struct {
	Name         string `toml:"name"`
	Priority     int    `toml:"priority"`
	Lease        string `toml:"lease"`
	HandoverWait string `toml:"handover_wait"`
}

// fileCallback is Callback with its durations as strings (see fileConfig).
type fileCallback struct {
	Enabled      bool   `toml:"enabled"`
	CCNR         bool   `toml:"ccnr"`
	External     bool   `toml:"external"`
	Policy       string `toml:"policy"`
	OfferWindow  string `toml:"offer_window"`
	T1           string `toml:"t1"`
	T3           string `toml:"t3"`
	Lifetime     string `toml:"lifetime"`
	LifetimeCCNR string `toml:"lifetime_ccnr"`
	WaitTime     string `toml:"wait_time"`
	AlertRing    string `toml:"alert_ring"`
	AlertFile    string `toml:"alert_file"`
	Announce     bool   `toml:"announce"`
	BusyTone     bool   `toml:"busy_tone"`
	ActivateCode string `toml:"activate_code"`
	CancelCode   string `toml:"cancel_code"`
}

type fileLine struct {
	DN              string   `toml:"dn"`
	Name            string   `toml:"name"`
	Password        string   `toml:"password"`
	Locale          *string  `toml:"locale"`
	BusyTrigger     *int     `toml:"busy_trigger"`
	MaxDevices      *int     `toml:"max_devices"`
	Notification    *string  `toml:"notification"`
	Kind            *string  `toml:"kind"`
	Members         []string `toml:"members"`
	ForwardAll      string   `toml:"forward_all"`
	ForwardBusy     string   `toml:"forward_busy"`
	ForwardNoAnswer string   `toml:"forward_no_answer"`
	DND             bool     `toml:"dnd"`
	Profile         string   `toml:"profile"`
}

// parse decodes data over base (whose values stand for keys the file leaves
// out) and validates the result.
func parse(name string, data []byte, base *Config) (*Config, error) {
	// Editors on Windows like to start files with a BOM, which TOML refuses.
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))

	fc := fileConfig{
		SIP:   fileSIP{SIP: base.SIP, OverloadDelay: base.SIP.OverloadDelay.String()},
		HTTP:  base.HTTP,
		Store: base.Store,
		Calls: fileCalls{NoAnswerTimeout: base.Calls.NoAnswerTimeout.String(), VoicemailPilot: base.Calls.VoicemailPilot},
		Media: base.Media,
		Callback: fileCallback{
			Enabled:      base.Callback.Enabled,
			CCNR:         base.Callback.CCNR,
			External:     base.Callback.External,
			Policy:       base.Callback.Policy,
			OfferWindow:  base.Callback.OfferWindow.String(),
			T1:           base.Callback.T1.String(),
			T3:           base.Callback.T3.String(),
			Lifetime:     base.Callback.Lifetime.String(),
			LifetimeCCNR: base.Callback.LifetimeCCNR.String(),
			WaitTime:     base.Callback.WaitTime.String(),
			AlertRing:    base.Callback.AlertRing.String(),
			AlertFile:    base.Callback.AlertFile,
			Announce:     base.Callback.Announce,
			BusyTone:     base.Callback.BusyTone,
			ActivateCode: base.Callback.ActivateCode,
			CancelCode:   base.Callback.CancelCode,
		},
		Log: base.Log,
		Cluster: fileCluster{Name: base.Cluster.Name, Priority: base.Cluster.Priority,
			Lease: base.Cluster.Lease.String(), HandoverWait: base.Cluster.HandoverWait.String()},
	}
	// Room for every [[line]] table (a header may be spelled otherwise:
	// then append grows it): go-toml appends each one through reflect, and
	// growing a slice of 100k lines cost about a fifth of the decode.
	if n := bytes.Count(data, []byte("[[line]]")); n > 0 {
		fc.Lines = make([]fileLine, 0, n)
	}
	fc.SIP.Listen = slices.Clone(base.SIP.Listen)
	fc.HTTP.Hosts = slices.Clone(base.HTTP.Hosts)
	fc.HTTP.AllowedOrigins = slices.Clone(base.HTTP.AllowedOrigins)

	var errs errorList
	err := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields().Decode(&fc)
	var strict *toml.StrictMissingError
	var derr *toml.DecodeError
	switch {
	case err == nil:
	case errors.As(err, &strict):
		// The rest of the file decoded fine: go on and report its problems too.
		for i := range strict.Errors {
			e := &strict.Errors[i]
			line, _ := e.Position()
			errs.add(name, line, 0, "unknown key %q", keyString(e.Key()))
		}
	case errors.As(err, &derr):
		line, col := derr.Position()
		return nil, errs.add(name, line, col, "%s", decodeMessage(derr)).err()
	default:
		return nil, errs.add(name, 0, 0, "%v", err).err()
	}

	pos := newPositions(data)
	c := &Config{
		SIP:    fc.SIP.SIP,
		HTTP:   fc.HTTP,
		Store:  fc.Store,
		Media:  fc.Media,
		Log:    fc.Log,
		Source: name,
	}
	v := validator{name: name, pos: pos, errs: &errs}
	c.SIP.OverloadDelay = v.duration("sip.overload_delay", fc.SIP.OverloadDelay)
	c.Calls.NoAnswerTimeout = v.duration("calls.no_answer_timeout", fc.Calls.NoAnswerTimeout)
	c.Calls.VoicemailPilot = fc.Calls.VoicemailPilot
	c.Cluster = Cluster{Name: fc.Cluster.Name, Priority: fc.Cluster.Priority,
		Lease:        v.duration("cluster.lease", fc.Cluster.Lease),
		HandoverWait: v.duration("cluster.handover_wait", fc.Cluster.HandoverWait)}
	fcb := fc.Callback
	c.Callback = Callback{
		Enabled:      fcb.Enabled,
		CCNR:         fcb.CCNR,
		External:     fcb.External,
		Policy:       fcb.Policy,
		OfferWindow:  v.duration("callback.offer_window", fcb.OfferWindow),
		T1:           v.duration("callback.t1", fcb.T1),
		T3:           v.duration("callback.t3", fcb.T3),
		Lifetime:     v.duration("callback.lifetime", fcb.Lifetime),
		LifetimeCCNR: v.duration("callback.lifetime_ccnr", fcb.LifetimeCCNR),
		WaitTime:     v.duration("callback.wait_time", fcb.WaitTime),
		AlertRing:    v.duration("callback.alert_ring", fcb.AlertRing),
		AlertFile:    fcb.AlertFile,
		Announce:     fcb.Announce,
		BusyTone:     fcb.BusyTone,
		ActivateCode: fcb.ActivateCode,
		CancelCode:   fcb.CancelCode,
	}
	if len(fc.Users) > 0 { // an empty list reads back as none
		c.Users = fc.Users
	}
	if len(fc.Trunks) > 0 {
		c.Trunks = fc.Trunks
	}
	for i, fp := range fc.Profiles {
		p := Profile{Name: fp.Name, CallBack: true, WatchLines: WatchState}
		if fp.CallBack != nil {
			p.CallBack = *fp.CallBack
		}
		switch fp.WatchLines {
		case "":
		case WatchNone, WatchState, WatchIdentity:
			p.WatchLines = fp.WatchLines
		default:
			v.errorf(fmt.Sprintf("profile[%d].watch_lines", i), `profile %q: watch_lines %q: want "none", "state" or "identity"`, fp.Name, fp.WatchLines)
		}
		p.DialOut = v.dialOut(fmt.Sprintf("profile[%d].dial_out", i), fp.Name, fp.DialOut)
		c.Profiles = append(c.Profiles, p)
	}
	if len(fc.Lines) > 0 {
		c.Lines = make([]Line, 0, len(fc.Lines))
	}
	for _, fl := range fc.Lines {
		c.Lines = append(c.Lines, lineWithDefaults(fl))
	}
	v.config(c)
	if err := errs.err(); err != nil {
		return nil, err
	}
	return c, nil
}

func lineWithDefaults(fl fileLine) Line {
	l := Line{
		DN:           fl.DN,
		Name:         fl.Name,
		Password:     fl.Password,
		Locale:       DefaultLocale,
		BusyTrigger:  DefaultBusyTrigger,
		MaxDevices:   DefaultMaxDevices,
		Notification: DefaultNotification,
		Kind:         KindPhone,
		Members:      fl.Members,
		ForwardAll:   fl.ForwardAll, ForwardBusy: fl.ForwardBusy, ForwardNoAnswer: fl.ForwardNoAnswer,
		DND: fl.DND, Profile: fl.Profile,
	}
	if len(l.Members) == 0 {
		// "members = []" (as toml.Marshal writes a line without members)
		// is no members: nil, as for a line that leaves the key out.
		l.Members = nil
	}
	if fl.Kind != nil {
		l.Kind = *fl.Kind
	}
	if fl.Locale != nil {
		l.Locale = *fl.Locale
	}
	if fl.BusyTrigger != nil {
		l.BusyTrigger = *fl.BusyTrigger
	}
	if fl.MaxDevices != nil {
		l.MaxDevices = *fl.MaxDevices
	}
	if fl.Notification != nil {
		l.Notification = *fl.Notification
	}
	return l
}
