package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/callbackd/callbackd/internal/media"
	"github.com/pelletier/go-toml/v2"
)

func TestDefault(t *testing.T) {
	c := Default()
	if c.Source != EmbeddedName {
		t.Errorf("Source = %q, want %q", c.Source, EmbeddedName)
	}
	want := SIP{
		Listen:         []string{"udp:127.0.0.1:5060", "tcp:127.0.0.1:5060"},
		Realm:          "callbackd",
		Domain:         "127.0.0.1",
		MinExpires:     60,
		MaxExpires:     3600,
		DefaultExpires: 3600,
		UserAgent:      "callbackd",
		// B7: SHA-256 offered beside MD5 (RFC 8760); no trust in source addresses.
		DigestAlgorithms: []string{"MD5"},

		TCPIdleTimeout:    120,
		TCPMaxConnections: 2048,
		TCPMaxPerSource:   128,
		MaxTransactions:   150000,
		OverloadDelay:     Duration{50 * time.Millisecond},
	}
	if !reflect.DeepEqual(c.SIP, want) {
		t.Errorf("SIP = %+v, want %+v", c.SIP, want)
	}
	if c.HTTP.Listen != "127.0.0.1:8080" {
		t.Errorf("HTTP.Listen = %q", c.HTTP.Listen)
	}
	if c.Store != (Store{Driver: "sqlite", Path: "data/callbackd.db"}) {
		t.Errorf("Store = %+v", c.Store)
	}
	if c.Calls != (Calls{NoAnswerTimeout: Duration{30 * time.Second}}) {
		t.Errorf("Calls = %+v, want a 30s no_answer_timeout and no voicemail_pilot", c.Calls)
	}
	if c.Media != (Media{RTPPortMin: 16384, RTPPortMax: 32767}) {
		t.Errorf("Media = %+v", c.Media)
	}
	if a := c.Media.Addr(c.SIP); a != "127.0.0.1" {
		t.Errorf("Media.Addr = %q, want the first listener's 127.0.0.1", a)
	}
	wantCB := Callback{
		Enabled:      true,
		CCNR:         true,
		Policy:       PolicyNotifyAll,
		OfferWindow:  Duration{30 * time.Second},
		T1:           Duration{20 * time.Second},
		T3:           Duration{20 * time.Second},
		Lifetime:     Duration{60 * time.Minute},
		LifetimeCCNR: Duration{180 * time.Minute},
		WaitTime:     Duration{20 * time.Second},
		AlertRing:    Duration{4 * time.Second},
		AlertFile:    "callback_alert",
		Announce:     true,
		BusyTone:     false,
		ActivateCode: "*39",
		CancelCode:   "#39",
	}
	if c.Callback != wantCB {
		t.Errorf("Callback = %+v, want %+v", c.Callback, wantCB)
	}
	if c.Log != (Log{Level: "info", Format: "text"}) {
		t.Errorf("Log = %+v", c.Log)
	}
	locales := map[string]string{"1001": "en", "1002": "en", "1003": "de", "1004": "zh"}
	if len(c.Lines) != len(locales) {
		t.Fatalf("%d demo lines, want %d", len(c.Lines), len(locales))
	}
	for dn, loc := range locales {
		l, ok := c.Line(dn)
		if !ok {
			t.Fatalf("Line(%q) not found", dn)
		}
		if l.Locale != loc || l.Password != "demo"+dn || l.BusyTrigger != 1 || l.MaxDevices != 4 || l.Notification != NotifyScreen ||
			l.Kind != KindPhone || l.Members != nil || l.ForwardAll != "" || l.ForwardBusy != "" || l.ForwardNoAnswer != "" || l.DND {
			t.Errorf("Line(%q) = %+v", dn, l)
		}
	}
	if _, ok := c.Line("9999"); ok {
		t.Error("Line(9999) found")
	}

	// Each call gets its own copy.
	c.SIP.Listen[0] = "changed"
	c.Lines[0].DN = "changed"
	c.Lines[1].Members = append(c.Lines[1].Members, "changed")
	if d := Default(); d.SIP.Listen[0] == "changed" || d.Lines[0].DN == "changed" || d.Lines[1].Members != nil {
		t.Error("Default shares state between calls")
	}
}

// clone copies the members of route points too: a copy changed in place
// leaves the original alone.
func TestCloneCopiesMembers(t *testing.T) {
	c := &Config{SIP: SIP{Listen: []string{"udp:127.0.0.1:5060"}}, Lines: []Line{
		{DN: "300", Kind: KindRoutePoint, Members: []string{"1001", "1002"}},
		{DN: "1001", Kind: KindPhone},
	}}
	n := c.clone()
	if !reflect.DeepEqual(n, c) {
		t.Fatalf("clone = %+v, want %+v", n, c)
	}
	n.Lines[0].Members[0] = "9999"
	n.SIP.Listen[0] = "changed"
	if c.Lines[0].Members[0] != "1001" || c.SIP.Listen[0] != "udp:127.0.0.1:5060" {
		t.Errorf("the clone shares slices with the original: %+v", c)
	}
	if n.Lines[1].Members != nil {
		t.Errorf("no members cloned to %#v, want nil", n.Lines[1].Members)
	}
}

func TestParseEmptyGivesDefaultsWithoutLines(t *testing.T) {
	for _, doc := range []string{"", "# nothing\n", "\xef\xbb\xbf"} {
		c, err := Parse("site.toml", []byte(doc))
		if err != nil {
			t.Fatalf("Parse(%q): %v", doc, err)
		}
		want := Default()
		want.Lines = nil
		want.Source = "site.toml"
		if !reflect.DeepEqual(c, want) {
			t.Errorf("Parse(%q) = %+v\nwant %+v", doc, c, want)
		}
	}
}

func TestParseAppliesDefaultsToMissingKeys(t *testing.T) {
	doc := `
[sip]
realm = "example"
listen = ["tcp:[::1]:5070"]

[[line]]
dn = "2001"
password = "pw"
`
	c, err := Parse("site.toml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	d := Default()
	if c.SIP.Realm != "example" || !reflect.DeepEqual(c.SIP.Listen, []string{"tcp:[::1]:5070"}) {
		t.Errorf("SIP = %+v", c.SIP)
	}
	if c.SIP.Domain != d.SIP.Domain || c.SIP.MinExpires != d.SIP.MinExpires || !reflect.DeepEqual(c.HTTP, d.HTTP) || c.Calls != d.Calls || c.Media != d.Media || c.Callback != d.Callback {
		t.Errorf("defaults not applied: %+v", c)
	}
	want := []Line{{DN: "2001", Password: "pw", Locale: "en", BusyTrigger: 1, MaxDevices: 4, Notification: "notify", Kind: "phone"}}
	if !reflect.DeepEqual(c.Lines, want) {
		t.Errorf("Lines = %+v, want %+v", c.Lines, want)
	}
}

// line is a valid [[line]] table to build error cases from.
const line1001 = "[[line]]\ndn = \"1001\"\npassword = \"pw\"\n"

var errorCases = []struct {
	name, doc, want string
}{
	// TOML itself.
	{"syntax", "[sip\nrealm = \"x\"\n", "site.toml:1:5: expected ']' to close table name"},
	{"duplicate key", "[sip]\nrealm = \"a\"\nrealm = \"b\"\n", "site.toml:3:1: key realm is already defined"},
	{"unknown key", "[sip]\nrealm = \"a\"\nlisen = []\n", `site.toml:3: unknown key "sip.lisen"`},
	{"unknown table", "\n[sipp]\nrealm = \"a\"\n", `site.toml:2: unknown key "sipp"`},
	{"unknown line key", line1001 + "pasword = \"x\"\n", `site.toml:4: unknown key "line.pasword"`},
	{"wrong type int", "[sip]\nmin_expires = \"60\"\n", "site.toml:2:15: sip.min_expires: wrong type: want integer, got string"},
	{"wrong type string", "[[line]]\ndn = 1001\n", "site.toml:2:6: line.dn: wrong type: want string, got integer"},
	{"wrong type array", "[sip]\nlisten = \"udp:127.0.0.1:5060\"\n", "site.toml:2:10: sip.listen: wrong type: want array of strings, got string"},
	{"wrong type table", "sip = 1\n", "site.toml:1:7: sip: wrong type: want table, got integer"},
	{"wrong type duration", "[calls]\nno_answer_timeout = 30\n", `site.toml:2:21: calls.no_answer_timeout: wrong type: want string such as "30s", got integer`},
	{"int overflow", "[sip]\nmin_expires = 99999999999999999999\n", "site.toml:2:15: decimal number is too large to fit in a 64-bit signed integer"},

	// sip
	{"listen empty", "[sip]\nlisten = []\n", `site.toml:2: sip.listen is empty: want at least one "udp:HOST:PORT", "tcp:HOST:PORT" or "tls:HOST:PORT"`},
	{"listen bad ip", "[sip]\nlisten = [\"udp:999.1.1.1:5060\"]\n", `site.toml:2: sip.listen "udp:999.1.1.1:5060": bad address: host "999.1.1.1": want an IP address or localhost`},
	{"listen host name", "[sip]\nlisten = [\"udp:example.com:5060\"]\n", `site.toml:2: sip.listen "udp:example.com:5060": bad address: host "example.com": want an IP address or localhost`},
	{"listen transport", "[sip]\nlisten = [\"sctp:127.0.0.1:5061\"]\n", `site.toml:2: sip.listen "sctp:127.0.0.1:5061": bad address: transport "sctp": want udp, tcp or tls`},
	{"tls no cert", "[sip]\nlisten = [\"tls:127.0.0.1:5061\"]\n", `site.toml:2: sip.listen has a tls: listener but sip.tls_cert is empty: want the certificate's PEM file`},
	{"tls no key", "[sip]\nlisten = [\"tls:127.0.0.1:5061\"]\ntls_cert = \"c.pem\"\n", `site.toml:2: sip.listen has a tls: listener but sip.tls_key is empty: want the private key's PEM file`},
	{"tls missing files", "[sip]\nlisten = [\"tls:127.0.0.1:5061\"]\ntls_cert = \"/nonexistent/c.pem\"\ntls_key = \"/nonexistent/k.pem\"\n", `site.toml:3: sip.tls_cert "/nonexistent/c.pem" / sip.tls_key "/nonexistent/k.pem": open /nonexistent/c.pem: no such file or directory`},
	{"max transactions small", "[sip]\nmax_transactions = 99\n", `site.toml:2: sip.max_transactions 99: want 100-1048576`},
	{"overload delay long", "[sip]\noverload_delay = \"3s\"\n", `site.toml:2: sip.overload_delay "3s": want 0s (off) to 2s`},
	{"overload delay negative", "[sip]\noverload_delay = \"-1ms\"\n", `site.toml:2: sip.overload_delay "-1ms": want 0s (off) to 2s`},
	{"overload delay not a duration", "[sip]\noverload_delay = \"50\"\n", `site.toml:2: sip.overload_delay "50": not a duration such as "30s" or "2m"`},
	{"tcp idle zero", "[sip]\ntcp_idle_timeout = 0\n", `site.toml:2: sip.tcp_idle_timeout 0: want 1-3600 seconds`},
	{"tcp max zero", "[sip]\ntcp_max_connections = 0\n", `site.toml:2: sip.tcp_max_connections 0: want 1-1048576`},
	{"tcp per source above max", "[sip]\ntcp_max_connections = 10\ntcp_max_per_source = 11\n", `site.toml:3: sip.tcp_max_per_source 11: above tcp_max_connections 10`},
	{"listen no transport", "[sip]\nlisten = [\"127.0.0.1\"]\n", `site.toml:2: sip.listen "127.0.0.1": bad address: want TRANSPORT:HOST:PORT`},
	{"listen port 0", "[sip]\nlisten = [\"udp:127.0.0.1:0\"]\n", `site.toml:2: sip.listen "udp:127.0.0.1:0": bad address: port "0": want 1-65535`},
	{"listen port big", "[sip]\nlisten = [\"udp:127.0.0.1:65536\"]\n", `site.toml:2: sip.listen "udp:127.0.0.1:65536": bad address: port "65536": want 1-65535`},
	{"listen port sign", "[sip]\nlisten = [\"udp:127.0.0.1:+5060\"]\n", `site.toml:2: sip.listen "udp:127.0.0.1:+5060": bad address: port "+5060": want 1-65535`},
	{"listen no port", "[sip]\nlisten = [\"udp:127.0.0.1\"]\n", `site.toml:2: sip.listen "udp:127.0.0.1": bad address: want HOST:PORT`},
	{"listen second line", "[sip]\nlisten = [\n  \"udp:127.0.0.1:5060\",\n  \"tcp:1.2.3:5060\",\n]\n", `site.toml:4: sip.listen "tcp:1.2.3:5060": bad address: host "1.2.3": want an IP address or localhost`},
	{"listen duplicate", "[sip]\nlisten = [\n  \"udp:127.0.0.1:5060\",\n  \"udp:127.0.0.1:5060\",\n]\n", `site.toml:4: duplicate sip.listen "udp:127.0.0.1:5060" (first at line 3)`},
	{"realm empty", "[sip]\nrealm = \"\"\n", "site.toml:2: sip.realm must not be empty"},
	{"realm quote", "[sip]\nrealm = 'a\"b'\n", `site.toml:2: sip.realm "a\"b": must not contain quotes, backslashes or control characters`},
	{"domain", "[sip]\ndomain = \"example.com:5060\"\n", `site.toml:2: sip.domain "example.com:5060": want an IP address or a host name (no port)`},
	{"domain empty", "[sip]\ndomain = \"\"\n", `site.toml:2: sip.domain "": want an IP address or a host name (no port)`},
	{"user agent empty", "[sip]\nuser_agent = \"\"\n", "site.toml:2: sip.user_agent must not be empty"},
	{"user agent newline", "[sip]\nuser_agent = \"a\\r\\nX: y\"\n", `site.toml:2: sip.user_agent "a\r\nX: y": must not contain control characters`},
	{"min expires 0", "[sip]\nmin_expires = 0\n", "site.toml:2: sip.min_expires 0: want 1-86400 seconds"},
	{"max expires big", "[sip]\nmax_expires = 86401\n", "site.toml:2: sip.max_expires 86401: want 1-86400 seconds"},
	{"default expires negative", "[sip]\ndefault_expires = -1\n", "site.toml:2: sip.default_expires -1: want 1-86400 seconds"},
	{"min above max", "[sip]\nmin_expires = 600\nmax_expires = 300\n", "site.toml:2: sip.min_expires 600: above max_expires 300"},
	{"default below min", "[sip]\ndefault_expires = 30\n", "site.toml:2: sip.default_expires 30: want between min_expires 60 and max_expires 3600"},
	{"default above max", "[sip]\nmax_expires = 600\n", "site.toml:1: sip.default_expires 3600: want between min_expires 60 and max_expires 600"},

	// http, store, calls, log
	{"http listen", "[http]\nlisten = \"8080\"\n", `site.toml:2: http.listen "8080": bad address: want HOST:PORT`},
	{"http listen any host", "[http]\nlisten = \":8080\"\n", `site.toml:2: http.listen ":8080": bad address: host "": want an IP address or localhost`},
	{"http listen port", "[http]\nlisten = \"127.0.0.1:http\"\n", `site.toml:2: http.listen "127.0.0.1:http": bad address: port "http": want 1-65535`},
	{"B7 http hosts scheme", "[http]\nhosts = [\"http://pbx.example.com\"]\n", `site.toml:2: http.hosts "http://pbx.example.com": want HOST or HOST:PORT (a name or an IP address, IPv6 in brackets), or "*"`},
	{"B7 http hosts port", "[http]\nhosts = [\"pbx.example.com:0\"]\n", `site.toml:2: http.hosts "pbx.example.com:0": port "0": want 1-65535`},
	{"B7 http hosts bare v6", "[http]\nhosts = [\"::1\"]\n", `site.toml:2: http.hosts "::1": want HOST or HOST:PORT (a name or an IP address, IPv6 in brackets), or "*"`},
	{"B7 http origin path", "[http]\nallowed_origins = [\"https://pbx.example.com/admin\"]\n", `site.toml:2: http.allowed_origins "https://pbx.example.com/admin": want an origin such as "https://pbx.example.com" or "http://10.0.0.5:8080" (scheme and host in lower case, no path)`},
	{"B7 http origin no scheme", "[http]\nallowed_origins = [\"pbx.example.com\"]\n", `site.toml:2: http.allowed_origins "pbx.example.com": want an origin such as "https://pbx.example.com" or "http://10.0.0.5:8080" (scheme and host in lower case, no path)`},
	{"B7 http debug listen", "[http]\ndebug_listen = \"6060\"\n", `site.toml:2: http.debug_listen "6060": bad address: want HOST:PORT`},
	{"B7 http debug listen same", "[http]\ndebug_listen = \"127.0.0.1:8080\"\n", `site.toml:2: http.debug_listen "127.0.0.1:8080": must differ from http.listen (the debug endpoints are not served on the main listener)`},
	{"B7 http streams", "[http]\nmax_event_streams = 0\nmax_event_streams_per_source = 0\n", "site.toml:2: http.max_event_streams 0: want 1-100000\nsite.toml:3: http.max_event_streams_per_source 0: want 1 to http.max_event_streams (0)"},
	{"B7 http streams per source", "[http]\nmax_event_streams_per_source = 101\n", "site.toml:2: http.max_event_streams_per_source 101: want 1 to http.max_event_streams (100)"},
	{"F35 store postgres without url", "[store]\ndriver = \"postgres\"\n", `site.toml:2: store.driver "postgres" needs store.url ("postgres://user:password@host:5432/callbackd")`},
	{"F35 store url not postgres", "[store]\ndriver = \"postgres\"\nurl = \"mysql://u:secret@h/db\"\n", `site.toml:3: store.url: want "postgres://user:password@host:5432/database"`},
	{"F35 cluster needs postgres", "[cluster]\nname = \"a\"\n", `site.toml:2: cluster.name: a cluster shares its store: it needs store.driver "postgres"`},
	{"F35 cluster priority", "[store]\ndriver = \"postgres\"\nurl = \"postgres://h/db\"\n[cluster]\nname = \"a\"\npriority = -1\n", `site.toml:6: cluster.priority -1: want 0-1000 (lower is preferred)`},
	{"F35 cluster lease", "[cluster]\nlease = \"500ms\"\n", `site.toml:2: cluster.lease "500ms": want 1s to 1m`},
	{"store unknown", "[store]\ndriver = \"mysql\"\n", `site.toml:2: unknown store.driver "mysql" (want "sqlite" or "postgres")`},
	{"store path", "[store]\npath = \"\"\n", "site.toml:2: store.path must not be empty"},
	{"timeout not duration", "[calls]\nno_answer_timeout = \"30\"\n", `site.toml:2: calls.no_answer_timeout "30": not a duration such as "30s" or "2m"`},
	{"timeout short", "[calls]\nno_answer_timeout = \"999ms\"\n", `site.toml:2: calls.no_answer_timeout "999ms": want 1s to 10m`},
	{"timeout long", "[calls]\nno_answer_timeout = \"10m1s\"\n", `site.toml:2: calls.no_answer_timeout "10m1s": want 1s to 10m`},

	// media
	{"media unknown key", "[media]\nport = 4000\n", `site.toml:2: unknown key "media.port"`},
	{"media wrong type address", "[media]\naddress = 127\n", "site.toml:2:11: media.address: wrong type: want string, got integer"},
	{"media wrong type port", "[media]\nrtp_port_min = \"16384\"\n", "site.toml:2:16: media.rtp_port_min: wrong type: want integer, got string"},
	{"media wrong type rtp_latch", "[media]\nrtp_latch = \"yes\"\n", "site.toml:2:13: media.rtp_latch: wrong type: want boolean, got string"},
	{"media address host name", "[media]\naddress = \"pbx.example.com\"\n", `site.toml:2: media.address "pbx.example.com": want an IP address (no host name, no port)`},
	{"media address localhost", "[media]\naddress = \"localhost\"\n", `site.toml:2: media.address "localhost": want an IP address (no host name, no port)`},
	{"media address port", "[media]\naddress = \"192.0.2.10:4000\"\n", `site.toml:2: media.address "192.0.2.10:4000": want an IP address (no host name, no port)`},
	{"media address brackets", "[media]\naddress = \"[::1]\"\n", `site.toml:2: media.address "[::1]": want an IP address (no host name, no port)`},
	{"media address any v4", "[media]\naddress = \"0.0.0.0\"\n", `site.toml:2: media.address "0.0.0.0": must not be unspecified (0.0.0.0 or ::): it goes into SDP, where it means hold`},
	{"media address any v6", "[media]\naddress = \"::\"\n", `site.toml:2: media.address "::": must not be unspecified (0.0.0.0 or ::): it goes into SDP, where it means hold`},
	{"media address zone", "[media]\naddress = \"fe80::1%eth0\"\n", `site.toml:2: media.address "fe80::1%eth0": must not have a zone: it goes into SDP, where a zone means nothing to the phone`},
	{"media default from any v4", "[sip]\nlisten = [\"udp:0.0.0.0:5060\"]\n", `site.toml:2: media.address is empty and the first sip.listen "udp:0.0.0.0:5060" has no address for SDP: set media.address to this host's IP address`},
	{"media default from any v6", "[sip]\nlisten = [\n  \"tcp:[::]:5060\",\n  \"udp:127.0.0.1:5060\",\n]\n", `site.toml:3: media.address is empty and the first sip.listen "tcp:[::]:5060" has no address for SDP: set media.address to this host's IP address`},
	{"media default from zone", "[sip]\nlisten = [\"udp:[fe80::1%eth0]:5060\"]\n", `site.toml:2: media.address is empty and the first sip.listen "udp:[fe80::1%eth0]:5060" has no address for SDP: set media.address to this host's IP address`},
	{"media default empty address written", "[sip]\nlisten = [\"udp:0.0.0.0:5060\"]\n[media]\naddress = \"\"\n", `site.toml:4: media.address is empty and the first sip.listen "udp:0.0.0.0:5060" has no address for SDP: set media.address to this host's IP address`},
	{"rtp port min low", "[media]\nrtp_port_min = 1023\n", "site.toml:2: media.rtp_port_min 1023: want 1024-65535"},
	{"rtp port min 0", "[media]\nrtp_port_min = 0\n", "site.toml:2: media.rtp_port_min 0: want 1024-65535"},
	{"rtp port max high", "[media]\nrtp_port_max = 65536\n", "site.toml:2: media.rtp_port_max 65536: want 1024-65535"},
	{"rtp ports both bad", "[media]\nrtp_port_min = -1\nrtp_port_max = 70000\n", "site.toml:2: media.rtp_port_min -1: want 1024-65535\nsite.toml:3: media.rtp_port_max 70000: want 1024-65535"},
	{"rtp ports equal", "[media]\nrtp_port_min = 20000\nrtp_port_max = 20000\n", "site.toml:3: media.rtp_port_min 20000 is not below rtp_port_max 20000: the range needs at least 2 ports"},
	{"rtp ports reversed", "[media]\nrtp_port_max = 20000\nrtp_port_min = 20001\n", "site.toml:3: media.rtp_port_min 20001 is not below rtp_port_max 20000: the range needs at least 2 ports"},
	{"rtp port max below default min", "\n[media]\nrtp_port_max = 10000\n", "site.toml:3: media.rtp_port_min 16384 is not below rtp_port_max 10000: the range needs at least 2 ports"},
	{"rtp port min above default max", "[media]\nrtp_port_min = 40000\n", "site.toml:2: media.rtp_port_min 40000 is not below rtp_port_max 32767: the range needs at least 2 ports"},

	// callback
	{"callback wrong type bool", "[callback]\nenabled = \"yes\"\n", "site.toml:2:11: callback.enabled: wrong type: want boolean, got string"},
	{"callback wrong type ccnr", "[callback]\nccnr = 1\n", "site.toml:2:8: callback.ccnr: wrong type: want boolean, got integer"},
	{"callback wrong type duration", "[callback]\nt1 = 20\n", `site.toml:2:6: callback.t1: wrong type: want string such as "30s", got integer`},
	{"callback wrong type code", "[callback]\nactivate_code = 39\n", "site.toml:2:17: callback.activate_code: wrong type: want string, got integer"},
	{"callback unknown key", "[callback]\nt2 = \"20s\"\n", `site.toml:2: unknown key "callback.t2"`},
	{"callback wrong type busy tone", "[callback]\nbusy_tone = 1\n", "site.toml:2:13: callback.busy_tone: wrong type: want boolean, got integer"},
	{"callback wrong type alert file", "[callback]\nalert_file = true\n", "site.toml:2:14: callback.alert_file: wrong type: want string, got boolean"},
	{"alert file unknown prompt", "[callback]\nalert_file = \"callback_alrt\"\n", `site.toml:2: callback.alert_file "callback_alrt": want a built-in prompt (busy_offer, noanswer_offer, loggedout_offer, activated, connecting, not_possible, callback_alert) or the path of a WAV file (a path has a / or a ., as in ./alert.wav)`},
	{"alert file empty", "[callback]\nalert_file = \"\"\n", `site.toml:2: callback.alert_file "": want a built-in prompt (busy_offer, noanswer_offer, loggedout_offer, activated, connecting, not_possible, callback_alert) or the path of a WAV file (a path has a / or a ., as in ./alert.wav)`},
	{"alert file prompt case", "[callback]\nalert_file = \"Callback_Alert\"\n", `site.toml:2: callback.alert_file "Callback_Alert": want a built-in prompt (busy_offer, noanswer_offer, loggedout_offer, activated, connecting, not_possible, callback_alert) or the path of a WAV file (a path has a / or a ., as in ./alert.wav)`},
	{"alert file missing", "[callback]\nalert_file = \"testdata/missing.wav\"\n", `site.toml:2: callback.alert_file "testdata/missing.wav": no such file or directory`},
	{"alert file directory", "[callback]\nalert_file = \".\"\n", `site.toml:2: callback.alert_file ".": not a regular file`},
	{"alert file not wav", "[callback]\nalert_file = \"default.toml\"\n", `site.toml:2: callback.alert_file "default.toml": unsupported WAV: not a RIFF WAVE file (want 8 kHz mono 16-bit PCM)`},
	{"callback policy", "[callback]\npolicy = \"lifo\"\n", `site.toml:2: callback.policy "lifo": want notify-all or fifo`},
	{"callback policy case", "[callback]\npolicy = \"FIFO\"\n", `site.toml:2: callback.policy "FIFO": want notify-all or fifo`},
	{"callback policy empty", "[callback]\npolicy = \"\"\n", `site.toml:2: callback.policy "": want notify-all or fifo`},
	{"offer window not duration", "[callback]\noffer_window = \"30\"\n", `site.toml:2: callback.offer_window "30": not a duration such as "30s" or "2m"`},
	{"offer window short", "[callback]\noffer_window = \"999ms\"\n", `site.toml:2: callback.offer_window "999ms": want 1s to 10m`},
	{"offer window long", "[callback]\noffer_window = \"10m1s\"\n", `site.toml:2: callback.offer_window "10m1s": want 1s to 10m`},
	{"t1 not duration", "[callback]\nt1 = \"\"\n", `site.toml:2: callback.t1 "": not a duration such as "30s" or "2m"`},
	{"t1 short", "[callback]\nt1 = \"0s\"\n", `site.toml:2: callback.t1 "0s": want 1s to 10m`},
	{"t1 long", "[callback]\nt1 = \"11m\"\n", `site.toml:2: callback.t1 "11m": want 1s to 10m`},
	{"t3 not duration", "[callback]\nt3 = \"20 s\"\n", `site.toml:2: callback.t3 "20 s": not a duration such as "30s" or "2m"`},
	{"t3 short", "[callback]\nt3 = \"-20s\"\n", `site.toml:2: callback.t3 "-20s": want 1s to 10m`},
	{"t3 long", "[callback]\nt3 = \"1h\"\n", `site.toml:2: callback.t3 "1h": want 1s to 10m`},
	{"lifetime not duration", "[callback]\nlifetime = \"60\"\n", `site.toml:2: callback.lifetime "60": not a duration such as "30s" or "2m"`},
	{"lifetime short", "[callback]\nlifetime = \"59s\"\n", `site.toml:2: callback.lifetime "59s": want 1m to 48h`},
	{"lifetime long", "[callback]\nlifetime = \"48h0m1s\"\n", `site.toml:2: callback.lifetime "48h0m1s": want 1m to 48h`},
	{"lifetime ccnr not duration", "[callback]\nlifetime_ccnr = \"3d\"\n", `site.toml:2: callback.lifetime_ccnr "3d": not a duration such as "30s" or "2m"`},
	{"lifetime ccnr short", "[callback]\nlifetime_ccnr = \"0s\"\n", `site.toml:2: callback.lifetime_ccnr "0s": want 1m to 48h`},
	{"lifetime ccnr long", "[callback]\nlifetime_ccnr = \"49h\"\n", `site.toml:2: callback.lifetime_ccnr "49h": want 1m to 48h`},
	{"alert ring not duration", "[callback]\nalert_ring = \"4\"\n", `site.toml:2: callback.alert_ring "4": not a duration such as "30s" or "2m"`},
	{"alert ring negative", "[callback]\nalert_ring = \"-1s\"\n", `site.toml:2: callback.alert_ring "-1s": want 0s to 60s`},
	{"alert ring long", "[callback]\nalert_ring = \"61s\"\n", `site.toml:2: callback.alert_ring "61s": want 0s to 60s`},
	{"activate code digits", "[callback]\nactivate_code = \"39\"\n", `site.toml:2: callback.activate_code "39": want 2-8 characters of 0-9, * and #, starting with * or #`},
	{"activate code short", "[callback]\nactivate_code = \"*\"\n", `site.toml:2: callback.activate_code "*": want 2-8 characters of 0-9, * and #, starting with * or #`},
	{"activate code long", "[callback]\nactivate_code = \"*12345678\"\n", `site.toml:2: callback.activate_code "*12345678": want 2-8 characters of 0-9, * and #, starting with * or #`},
	{"activate code letter", "[callback]\nactivate_code = \"*3A\"\n", `site.toml:2: callback.activate_code "*3A": want 2-8 characters of 0-9, * and #, starting with * or #`},
	{"activate code empty", "[callback]\nactivate_code = \"\"\n", `site.toml:2: callback.activate_code "": want 2-8 characters of 0-9, * and #, starting with * or #`},
	{"cancel code plus", "[callback]\ncancel_code = \"+39\"\n", `site.toml:2: callback.cancel_code "+39": want 2-8 characters of 0-9, * and #, starting with * or #`},
	{"cancel code space", "[callback]\ncancel_code = \"# 39\"\n", `site.toml:2: callback.cancel_code "# 39": want 2-8 characters of 0-9, * and #, starting with * or #`},
	{"cancel code non-ascii digit", "[callback]\ncancel_code = \"#٣٩\"\n", `site.toml:2: callback.cancel_code "#٣٩": want 2-8 characters of 0-9, * and #, starting with * or #`},
	{"codes equal at cancel", "[callback]\ncancel_code = \"*39\"\n", `site.toml:2: callback.activate_code and callback.cancel_code are both "*39": they must differ`},
	{"codes equal at activate", "[callback]\nactivate_code = \"#39\"\n", `site.toml:2: callback.activate_code and callback.cancel_code are both "#39": they must differ`},
	{"codes equal later line", "[callback]\ncancel_code = \"*5\"\nactivate_code = \"*5\"\n", `site.toml:3: callback.activate_code and callback.cancel_code are both "*5": they must differ`},
	{"cancel prefix of activate", "[callback]\nactivate_code = \"*39\"\ncancel_code = \"*3\"\n", `site.toml:3: callback.activate_code "*39" and callback.cancel_code "*3": neither may be a prefix of the other`},
	{"activate prefix of cancel", "[callback]\ncancel_code = \"*391\"\n", `site.toml:2: callback.activate_code "*39" and callback.cancel_code "*391": neither may be a prefix of the other`},
	{"codes both bad", "[callback]\nactivate_code = \"1\"\ncancel_code = \"1\"\n", "site.toml:2: callback.activate_code \"1\": want 2-8 characters of 0-9, * and #, starting with * or #\n" +
		`site.toml:3: callback.cancel_code "1": want 2-8 characters of 0-9, * and #, starting with * or #`},
	{"activate code prefix of a line code", "[callback]\nactivate_code = \"*2\"\n", `site.toml:2: callback.activate_code "*2" and the line feature code "*21": neither may be a prefix of the other`},
	{"activate code a line code", "[callback]\nactivate_code = \"*78\"\n", `site.toml:2: callback.activate_code "*78" and the line feature code "*78": neither may be a prefix of the other`},
	{"activate code after a line code", "[callback]\nactivate_code = \"*615\"\n", `site.toml:2: callback.activate_code "*615" and the line feature code "*61": neither may be a prefix of the other`},
	{"cancel code a line code", "[callback]\ncancel_code = \"#67\"\n", `site.toml:2: callback.cancel_code "#67" and the line feature code "#67": neither may be a prefix of the other`},
	{"cancel code prefix of a line code", "[callback]\ncancel_code = \"*7\"\n", `site.toml:2: callback.cancel_code "*7" and the line feature code "*78": neither may be a prefix of the other`},
	{"callback codes no section line", "callback.activate_code = \"#39\"\n", `site.toml:1: callback.activate_code and callback.cancel_code are both "#39": they must differ`},

	{"log level", "[log]\nlevel = \"trace\"\n", `site.toml:2: log.level "trace": want debug, info, warn or error`},
	{"log format", "[log]\nformat = \"xml\"\n", `site.toml:2: log.format "xml": want text or json`},

	// B7, F32
	{"digest algorithm unknown", "[sip]\ndigest_algorithms = [\"SHA-512\"]\n", `site.toml:2: sip.digest_algorithms ["SHA-512"]: want "SHA-256" and/or "MD5", each once`},
	{"digest algorithm twice", "[sip]\ndigest_algorithms = [\"MD5\", \"MD5\"]\n", `site.toml:2: sip.digest_algorithms ["MD5" "MD5"]: want "SHA-256" and/or "MD5", each once`},
	{"digest algorithms empty", "[sip]\ndigest_algorithms = []\n", `site.toml:2: sip.digest_algorithms is empty: want ["MD5", "SHA-256"], or one of them`},
	{"trunk name reserved", "[[trunk]]\nname = \"line:1001\"\naddress = \"udp:127.0.0.1:5070\"\n", `site.toml:2: trunk "line:1001": names starting with "line:" are reserved`},
	{"dial out word", "[[profile]]\nname = \"p\"\ndial_out = \"some\"\n", `site.toml:3: profile "p": dial_out: want "none", "all" or an array of digit prefixes such as ["0", "00"]`},
	{"dial out prefix", "[[profile]]\nname = \"p\"\ndial_out = [\"0\", \"+49\"]\n", `site.toml:3: profile "p": dial_out: want "none", "all" or an array of digit prefixes such as ["0", "00"]`},
	{"dial out type", "[[profile]]\nname = \"p\"\ndial_out = 1\n", `site.toml:3: profile "p": dial_out: want "none", "all" or an array of digit prefixes such as ["0", "00"]`},
	{"forward out not allowed", "[[trunk]]\nname = \"t\"\naddress = \"udp:127.0.0.1:5070\"\nprefixes = [\"0\"]\n" + line1001 + "forward_all = \"0301234\"\n",
		`site.toml:8: line "1001": forward_all "0301234" is an external number its profile "default" may not dial out to (profile dial_out)`},

	{"trunk username without password", "[[trunk]]\nname = \"pbx\"\naddress = \"udp:127.0.0.1:5070\"\nmonitor = \"dialog\"\nusername = \"cb\"\n",
		`site.toml:5: trunk "pbx": username and password go together: give both or neither`},
	{"trunk password without username", "[[trunk]]\nname = \"pbx\"\naddress = \"udp:127.0.0.1:5070\"\npassword = \"x\"\n",
		`site.toml:4: trunk "pbx": username and password go together: give both or neither`},

	// lines
	{"password missing", "\n[[line]]\ndn = \"1001\"\n", `site.toml:2: line "1001": password is required`},
	{"password empty", "[[line]]\ndn = \"1001\"\npassword = \"\"\n", `site.toml:3: line "1001": password is required`},
	{"locale", line1001 + "locale = \"fr\"\n", `site.toml:4: line "1001": locale "fr": want en, de, zh, ko`},
	{"locale empty", line1001 + "locale = \"\"\n", `site.toml:4: line "1001": locale "": want en, de, zh, ko`},
	{"busy trigger 0", line1001 + "busy_trigger = 0\n", `site.toml:4: line "1001": busy_trigger 0: want 1-100`},
	{"busy trigger 101", line1001 + "busy_trigger = 101\n", `site.toml:4: line "1001": busy_trigger 101: want 1-100`},
	{"max devices 0", line1001 + "max_devices = 0\n", `site.toml:4: line "1001": max_devices 0: want 1-100`},
	{"max devices 101", line1001 + "max_devices = 101\n", `site.toml:4: line "1001": max_devices 101: want 1-100`},
	{"notification", line1001 + "notification = \"ring\"\n", `site.toml:4: line "1001": notification "ring": want notify or auto-recall`},
	{"notification case", line1001 + "notification = \"Auto-Recall\"\n", `site.toml:4: line "1001": notification "Auto-Recall": want notify or auto-recall`},
	{"notification underscore", line1001 + "notification = \"auto_recall\"\n", `site.toml:4: line "1001": notification "auto_recall": want notify or auto-recall`},
	{"notification empty", line1001 + "notification = \"\"\n", `site.toml:4: line "1001": notification "": want notify or auto-recall`},
	{"notification wrong type", line1001 + "notification = true\n", "site.toml:4:16: line.notification: wrong type: want string, got boolean"},
	{"duplicate dn", "\n" + line1001 + "\n" + line1001, `site.toml:7: duplicate dn "1001" (first at line 3)`},
	{"duplicate dn inline", "line = [\n  {dn = \"1001\", password = \"a\"},\n  {dn = \"1001\", password = \"b\"},\n]\n", `site.toml:3: duplicate dn "1001" (first at line 2)`},
	{"dn missing", "[[line]]\npassword = \"pw\"\n", `site.toml:1: line #1: dn is required`},

	// kind, members, forwarding, voicemail pilot
	{"kind", line1001 + "kind = \"hunt\"\n", `site.toml:4: line "1001": kind "hunt": want phone, route-point or voicemail`},
	{"kind case", line1001 + "kind = \"Route-Point\"\n", `site.toml:4: line "1001": kind "Route-Point": want phone, route-point or voicemail`},
	{"kind underscore", line1001 + "kind = \"route_point\"\n", `site.toml:4: line "1001": kind "route_point": want phone, route-point or voicemail`},
	{"kind empty", line1001 + "kind = \"\"\n", `site.toml:4: line "1001": kind "": want phone, route-point or voicemail`},
	{"kind wrong type", line1001 + "kind = 1\n", "site.toml:4:8: line.kind: wrong type: want string, got integer"},
	{"members of a phone", line1001 + "members = [\"1002\"]\n", `site.toml:4: line "1001": members: only a route-point has members`},
	{"members of a voicemail", line1001 + "kind = \"voicemail\"\nmembers = [\"1002\"]\n", `site.toml:5: line "1001": members: only a route-point has members`},
	{"members wrong type", rp300 + "members = \"1001\"\n", "site.toml:4:11: line.members: wrong type: want array of strings, got string"},
	{"route point without members", rp300, `site.toml:1: line "300": a route-point needs members (the lines it hands calls to)`},
	{"route point empty members", rp300 + "members = []\n", `site.toml:4: line "300": a route-point needs members (the lines it hands calls to)`},
	{"member not a line", line1001 + rp300 + "members = [\"1001\", \"1002\"]\n", `site.toml:7: line "300": member "1002" is not a line`},
	{"member a route point", line1001 + rp300 + "members = [\"1001\"]\n" + "[[line]]\ndn = \"301\"\nkind = \"route-point\"\nmembers = [\"300\"]\n",
		`site.toml:11: line "301": member "300" is a route-point, want a phone line`},
	{"member a voicemail", vm500 + rp300 + "members = [\"500\"]\n", `site.toml:8: line "300": member "500" is a voicemail, want a phone line`},
	{"member itself", rp300 + "members = [\"300\"]\n", `site.toml:4: line "300": member "300": want the DN of another line`},
	{"member not digits", line1001 + rp300 + "members = [\"1001\", \"*21\"]\n", `site.toml:7: line "300": member "*21": want the DN of another line`},
	{"member empty", line1001 + rp300 + "members = [\"\"]\n", `site.toml:7: line "300": member "": want the DN of another line`},
	{"member too long", rp300 + "members = [\"1234567890123456\"]\n", `site.toml:4: line "300": member "1234567890123456": want the DN of another line`},
	{"forward all to itself", line1001 + "forward_all = \"1001\"\n", `site.toml:4: line "1001": forward_all: a line cannot forward to itself`},
	{"forward busy to itself", line1001 + "forward_busy = \"1001\"\n", `site.toml:4: line "1001": forward_busy: a line cannot forward to itself`},
	{"forward no answer to itself", line1001 + "forward_no_answer = \"1001\"\n", `site.toml:4: line "1001": forward_no_answer: a line cannot forward to itself`},
	{"forward not digits", line1001 + "forward_all = \"*21\"\n", `site.toml:4: line "1001": forward_all "*21": want a DN or "voicemail"`},
	{"forward voicemail case", line1001 + "forward_busy = \"Voicemail\"\n", `site.toml:4: line "1001": forward_busy "Voicemail": want a DN or "voicemail"`},
	{"forward plus", line1001 + "forward_no_answer = \"+4930\"\n", `site.toml:4: line "1001": forward_no_answer "+4930": want a DN or "voicemail"`},
	{"forward too long", line1001 + "forward_all = \"1234567890123456\"\n", `site.toml:4: line "1001": forward_all "1234567890123456": want a DN or "voicemail"`},
	{"forward all not a line", line1001 + "forward_all = \"1002\"\n", `site.toml:4: line "1001": forward_all "1002" is not a line nor a number of a trunk`},
	{"forward busy not a line", line1001 + "forward_busy = \"1002\"\n", `site.toml:4: line "1001": forward_busy "1002" is not a line nor a number of a trunk`},
	{"forward no answer not a line", line1001 + "forward_no_answer = \"1002\"\n", `site.toml:4: line "1001": forward_no_answer "1002" is not a line nor a number of a trunk`},
	{"forward wrong type", line1001 + "forward_all = 1002\n", "site.toml:4:15: line.forward_all: wrong type: want string, got integer"},
	{"dnd wrong type", line1001 + "dnd = \"yes\"\n", "site.toml:4:7: line.dnd: wrong type: want boolean, got string"},
	{"pilot a phone", "[calls]\nvoicemail_pilot = \"1001\"\n" + line1001, `site.toml:2: calls.voicemail_pilot "1001": want the DN of a line of kind "voicemail"`},
	{"pilot a route point", "[calls]\nvoicemail_pilot = \"300\"\n" + line1001 + rp300 + "members = [\"1001\"]\n", `site.toml:2: calls.voicemail_pilot "300": want the DN of a line of kind "voicemail"`},
	{"pilot not a line", "[calls]\nvoicemail_pilot = \"500\"\n", `site.toml:2: calls.voicemail_pilot "500": want the DN of a line of kind "voicemail"`},
	{"pilot not digits", "calls.voicemail_pilot = \"voicemail\"\n" + vm500, `site.toml:1: calls.voicemail_pilot "voicemail": want the DN of a line of kind "voicemail"`},
	{"pilot wrong type", "[calls]\nvoicemail_pilot = 500\n", "site.toml:2:19: calls.voicemail_pilot: wrong type: want string, got integer"},
	{"voicemail without password", "[[line]]\ndn = \"500\"\nkind = \"voicemail\"\n", `site.toml:1: line "500": password is required`},
}

// rp300 is a route point without members, and vm500 a voicemail line, to
// build error cases from.
const (
	rp300 = "[[line]]\ndn = \"300\"\nkind = \"route-point\"\n"
	vm500 = "[[line]]\ndn = \"500\"\npassword = \"vm\"\nkind = \"voicemail\"\n"
)

func TestParseErrors(t *testing.T) {
	for _, tc := range errorCases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("site.toml", []byte(tc.doc))
			if c != nil {
				t.Errorf("got a Config along with the error: %+v", c)
			}
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			if err.Error() != tc.want {
				t.Errorf("error\n got %q\nwant %q", err, tc.want)
			}
		})
	}
}

// A directory with a route point (F27), a voicemail line as the pilot
// (F10), forwarding (F10, F20, F21) and DND (F22).
func TestRoutePointVoicemailForwarding(t *testing.T) {
	doc := `
[calls]
voicemail_pilot = "500"

[[line]]
dn = "201"
password = "pw201"
forward_busy = "voicemail"
forward_no_answer = "202"

[[line]]
dn = "202"
password = "pw202"
forward_all = "300"
dnd = true

[[line]]
dn = "300"
kind = "route-point"
members = ["202", "201"]
forward_no_answer = "voicemail"

[[line]]
dn = "500"
password = "pw500"
kind = "voicemail"
max_devices = 2
`
	c, err := Parse("site.toml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if c.Calls.VoicemailPilot != "500" {
		t.Errorf("VoicemailPilot = %q, want 500", c.Calls.VoicemailPilot)
	}
	base := Line{Locale: "en", BusyTrigger: 1, MaxDevices: 4, Notification: NotifyScreen}
	line := func(edit func(*Line)) Line { l := base; edit(&l); return l }
	want := []Line{
		line(func(l *Line) {
			l.DN, l.Password, l.Kind, l.ForwardBusy, l.ForwardNoAnswer = "201", "pw201", KindPhone, ForwardVoicemail, "202"
		}),
		line(func(l *Line) { l.DN, l.Password, l.Kind, l.ForwardAll, l.DND = "202", "pw202", KindPhone, "300", true }),
		// A route point needs no password: no device registers for it.
		line(func(l *Line) {
			l.DN, l.Kind, l.Members, l.ForwardNoAnswer = "300", KindRoutePoint, []string{"202", "201"}, ForwardVoicemail
		}),
		line(func(l *Line) { l.DN, l.Password, l.Kind, l.MaxDevices = "500", "pw500", KindVoicemail, 2 }),
	}
	if !reflect.DeepEqual(c.Lines, want) {
		t.Errorf("Lines\n got %+v\nwant %+v", c.Lines, want)
	}

	// Legal too: a forwarding loop (stopped by the server when a call
	// meets it, 482), a forward to "voicemail" without a pilot (off), a
	// forward to a route point or a voicemail line by its DN, and a route
	// point with a password.
	for name, doc := range map[string]string{
		"loop": line1001 + "forward_all = \"1002\"\n[[line]]\ndn = \"1002\"\npassword = \"pw\"\nforward_busy = \"1003\"\n" +
			"[[line]]\ndn = \"1003\"\npassword = \"pw\"\nforward_no_answer = \"1001\"\n",
		"voicemail without pilot": line1001 + "forward_all = \"voicemail\"\n",
		"to a route point":        line1001 + rp300 + "members = [\"1001\"]\n[[line]]\ndn = \"1002\"\npassword = \"pw\"\nforward_busy = \"300\"\n",
		"to a voicemail line":     line1001 + "forward_no_answer = \"500\"\n" + vm500,
		"route point password":    line1001 + rp300 + "members = [\"1001\"]\npassword = \"x\"\n",
		"dnd false":               line1001 + "dnd = false\n",
		"kind phone written":      line1001 + "kind = \"phone\"\n",
		"pilot inline":            "calls.voicemail_pilot = \"500\"\nline = [{dn = \"500\", password = \"vm\", kind = \"voicemail\"}]\n",
	} {
		if _, err := Parse("site.toml", []byte(doc)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestCallbackSection(t *testing.T) {
	doc := `
[callback]
enabled = false
ccnr = false
policy = "fifo"
offer_window = "1s"
t1 = "10m"
t3 = "1m30s"
lifetime = "1m"
lifetime_ccnr = "48h"
external = true
wait_time = "2m"
alert_ring = "0s"
alert_file = "connecting"
announce = false
busy_tone = true
activate_code = "*5"
cancel_code = "#*5"
`
	c, err := Parse("site.toml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	want := Callback{
		Policy:       PolicyFIFO,
		OfferWindow:  Duration{time.Second},
		T1:           Duration{10 * time.Minute},
		T3:           Duration{90 * time.Second},
		Lifetime:     Duration{time.Minute},
		LifetimeCCNR: Duration{48 * time.Hour},
		External:     true,
		WaitTime:     Duration{2 * time.Minute},
		AlertFile:    "connecting",
		BusyTone:     true,
		ActivateCode: "*5",
		CancelCode:   "#*5",
	}
	if c.Callback != want {
		t.Errorf("Callback = %+v, want %+v", c.Callback, want)
	}

	// Keys left out keep their defaults; a dotted key needs no header.
	c, err = Parse("site.toml", []byte("callback.policy = \"fifo\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	want = Default().Callback
	want.Policy = PolicyFIFO
	if c.Callback != want {
		t.Errorf("Callback = %+v, want %+v", c.Callback, want)
	}

	// Feature codes at the limits.
	for _, codes := range [][2]string{
		{"*3", "#3"},
		{"*9876543", "#9876543"},
		{"**", "##"},
		{"#*", "*#"},
		{"*39", "*41"},
		{"*39", "#39#"},
	} {
		doc := fmt.Sprintf("[callback]\nactivate_code = %q\ncancel_code = %q\n", codes[0], codes[1])
		c, err := Parse("site.toml", []byte(doc))
		if err != nil {
			t.Errorf("codes %q: %v", codes, err)
		} else if c.Callback.ActivateCode != codes[0] || c.Callback.CancelCode != codes[1] {
			t.Errorf("codes %q: got %+v", codes, c.Callback)
		}
	}
}

func TestF9_DNCharacters(t *testing.T) {
	for _, tc := range []struct {
		dn, want string // want "" means valid
	}{
		{"1001", ""},
		{"0", ""},
		{"123456789012345", ""},
		{"1234567890123456", `line "1234567890123456": dn must be 1-15 digits`},
		{"10a1", `line "10a1": dn must be digits only (F9)`},
		{"*39", `line "*39": dn must be digits only (F9)`},
		{"#39", `line "#39": dn must be digits only (F9)`},
		{"10 01", `line "10 01": dn must be digits only (F9)`},
		{"+4930", `line "+4930": dn must be digits only (F9)`},
		{"١٢٣", `line "١٢٣": dn must be digits only (F9)`}, // Arabic-Indic digits are not 0-9
		{"", `line #1: dn is required`},
	} {
		doc := "[[line]]\npassword = \"pw\"\ndn = " + toml1(tc.dn) + "\n"
		c, err := Parse("site.toml", []byte(doc))
		if tc.want == "" {
			if err != nil {
				t.Errorf("dn %q: %v", tc.dn, err)
			} else if _, ok := c.Line(tc.dn); !ok {
				t.Errorf("dn %q: Line not found", tc.dn)
			}
			continue
		}
		if want := "site.toml:3: " + tc.want; err == nil || err.Error() != want {
			t.Errorf("dn %q: error %v, want %q", tc.dn, err, want)
		}
	}
}

func TestF9_NameCharacters(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"", true},
		{"1001", true},
		{"10 01", true},
		{" 42 ", true},
		{"Alice", false},
		{"*39", false},
		{"#1", false},
		{"10-01", false},
		{"10\t01", false},
	} {
		doc := line1001 + "name = " + toml1(tc.name) + "\n"
		c, err := Parse("site.toml", []byte(doc))
		if tc.ok {
			if err != nil {
				t.Errorf("name %q: %v", tc.name, err)
			} else if l, _ := c.Line("1001"); l.Name != tc.name {
				t.Errorf("name %q: got %q", tc.name, l.Name)
			}
			continue
		}
		want := fmt.Sprintf(`site.toml:4: line "1001": name %q must be digits and spaces only (F9)`, tc.name)
		if err == nil || err.Error() != want {
			t.Errorf("name %q: error %v, want %q", tc.name, err, want)
		}
	}
}

// toml1 writes s as a TOML basic string.
func toml1(s string) string {
	b, err := toml.Marshal(map[string]string{"v": s})
	if err != nil {
		panic(err)
	}
	return strings.TrimSpace(strings.TrimPrefix(string(b), "v = "))
}

func TestAllErrorsReportedSortedByLine(t *testing.T) {
	doc := `[log]
level = "loud"

[sip]
lisen = 1
min_expires = 0

[[line]]
dn = "1#"
password = "pw"
name = "Bob"

[[line]]
dn = "1002"
locale = "xx"
`
	c, err := Parse("site.toml", []byte(doc))
	if c != nil {
		t.Errorf("got a Config along with errors")
	}
	want := `site.toml:2: log.level "loud": want debug, info, warn or error
site.toml:5: unknown key "sip.lisen"
site.toml:6: sip.min_expires 0: want 1-86400 seconds
site.toml:9: line "1#": dn must be digits only (F9)
site.toml:11: line "1#": name "Bob" must be digits and spaces only (F9)
site.toml:13: line "1002": password is required
site.toml:15: line "1002": locale "xx": want en, de, zh, ko`
	if err == nil || err.Error() != want {
		t.Fatalf("error\n%v\nwant\n%s", err, want)
	}
	var e *Error
	if !errors.As(err, &e) || e.File != "site.toml" || e.Line != 2 {
		t.Errorf("errors.As = %+v", e)
	}
}

func TestRoundTrip(t *testing.T) {
	full := &Config{
		SIP: SIP{
			Listen:         []string{"udp:0.0.0.0:5070", "tcp:[::1]:5070", "udp:localhost:5080"},
			Realm:          "office",
			Domain:         "pbx.example.com",
			MinExpires:     30,
			MaxExpires:     7200,
			DefaultExpires: 600,
			UserAgent:      "callbackd/test",
			// B7
			TrustRegisteredSource: true,
			DigestAlgorithms:      []string{"MD5"},

			TCPIdleTimeout:    30,
			TCPMaxConnections: 100,
			TCPMaxPerSource:   10,
			MaxTransactions:   100,
			OverloadDelay:     Duration{20 * time.Millisecond},
		},
		HTTP: HTTP{Listen: "[::1]:9090", Hosts: []string{"pbx.example.com", "[::1]:9090", "*"}, AllowedOrigins: []string{"https://pbx.example.com"},
			DebugListen: "127.0.0.1:6060", MaxEventStreams: 50, MaxEventStreamsPerSource: 5},
		Store: Store{Driver: "sqlite", Path: "/var/lib/callbackd/cb.db"},
		Calls: Calls{NoAnswerTimeout: Duration{90 * time.Second}, VoicemailPilot: "500"},
		Media: Media{Address: "192.0.2.10", RTPPortMin: 1024, RTPPortMax: 1025},
		Callback: Callback{
			Enabled:      false,
			CCNR:         false,
			Policy:       PolicyFIFO,
			OfferWindow:  Duration{10 * time.Minute},
			T1:           Duration{time.Second},
			T3:           Duration{1500 * time.Millisecond},
			Lifetime:     Duration{48 * time.Hour},
			LifetimeCCNR: Duration{time.Minute},
			WaitTime:     Duration{20 * time.Second},
			AlertRing:    Duration{0},
			AlertFile:    "not_possible",
			BusyTone:     true,
			ActivateCode: "#*12345",
			CancelCode:   "##",
		},
		Log:     Log{Level: "debug", Format: "json"},
		Cluster: Cluster{Priority: 5, Lease: Duration{3 * time.Second}, HandoverWait: Duration{time.Minute}},
		Lines: []Line{
			{DN: "200", Name: "2 00", Password: "secret", Locale: "ko", BusyTrigger: 2, MaxDevices: 1, Notification: NotifyAutoRecall, Kind: KindPhone,
				ForwardBusy: ForwardVoicemail, ForwardNoAnswer: "300", DND: true},
			{DN: "123456789012345", Password: "p", Locale: "de", BusyTrigger: 100, MaxDevices: 100, Notification: NotifyScreen, Kind: KindPhone,
				ForwardAll: "200"},
			{DN: "300", Locale: "en", BusyTrigger: 1, MaxDevices: 4, Notification: NotifyScreen, Kind: KindRoutePoint,
				Members: []string{"200", "123456789012345"}, ForwardNoAnswer: ForwardVoicemail},
			{DN: "500", Password: "vm", Locale: "en", BusyTrigger: 10, MaxDevices: 2, Notification: NotifyScreen, Kind: KindVoicemail},
		},
	}
	for _, c := range []*Config{full, Default()} {
		b, err := toml.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Parse("rt.toml", b)
		if err != nil {
			t.Fatalf("%v\n%s", err, b)
		}
		want := *c
		want.Source = "rt.toml"
		if !reflect.DeepEqual(got, &want) {
			t.Errorf("round trip\n got %+v\nwant %+v\n%s", got, &want, b)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "site.toml")
	if err := os.WriteFile(path, []byte(line1001), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.Source != path || len(c.Lines) != 1 {
		t.Errorf("Load = %+v", c)
	}

	if err := os.WriteFile(path, []byte("[[line]]\ndn = \"x\"\npassword = \"pw\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err = Load(path)
	if want := path + `:2: line "x": dn must be digits only (F9)`; c != nil || err == nil || err.Error() != want {
		t.Errorf("Load = %v, %v; want error %q", c, err, want)
	}

	c, err = Load(filepath.Join(dir, "missing.toml"))
	if c != nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v, %v", c, err)
	}
}

// The embedded default.toml must parse as a user file too, demo lines and all.
func TestDefaultTOMLIsAValidUserFile(t *testing.T) {
	c, err := Parse("default.toml", DefaultTOML())
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Source = "default.toml"
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got %+v\nwant %+v", c, want)
	}
}

// docs/config.md must name every key the decoder accepts.
func TestDocsNameEveryKey(t *testing.T) {
	doc, err := os.ReadFile("../../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range tomlKeys(reflect.TypeFor[Config](), "") {
		if !strings.Contains(string(doc), "`"+key+"`") {
			t.Errorf("docs/config.md does not mention `%s`", key)
		}
	}
}

// The example in docs/config.md must load.
func TestDocsExampleLoads(t *testing.T) {
	doc, err := os.ReadFile("../../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "## Example")
	_, rest, ok2 := strings.Cut(rest, "```toml\n")
	example, _, ok3 := strings.Cut(rest, "```")
	if !ok || !ok2 || !ok3 {
		t.Fatal("no toml example in docs/config.md")
	}
	c, err := Parse("example.toml", []byte(example))
	if err != nil {
		t.Fatal(err)
	}
	if l, _ := c.Line("202"); l.Locale != "de" || l.MaxDevices != 2 || l.BusyTrigger != 1 || l.Notification != NotifyScreen {
		t.Errorf("line 202 = %+v", l)
	}
	if l, _ := c.Line("203"); l.Notification != NotifyAutoRecall {
		t.Errorf("line 203 = %+v", l)
	}
}

func tomlKeys(t reflect.Type, prefix string) []string {
	var keys []string
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if name == "-" {
			continue
		}
		ft := f.Type
		if ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct && ft != reflect.TypeFor[Duration]() {
			keys = append(keys, tomlKeys(ft, prefix+name+".")...)
		} else {
			keys = append(keys, prefix+name)
		}
	}
	return keys
}

func FuzzParse(f *testing.F) {
	f.Add(DefaultTOML())
	for _, tc := range errorCases {
		f.Add([]byte(tc.doc))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.toml", data)
		if (c == nil) == (err == nil) {
			t.Fatalf("Parse = %v, %v: want exactly one of them", c, err)
		}
		if err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, "fuzz.toml:") {
					t.Fatalf("error line %q does not name the file", line)
				}
			}
			return
		}
		// A config that loads must load again, unchanged, from its own TOML.
		b, err := toml.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		again, err := Parse("fuzz.toml", b)
		if err != nil {
			t.Fatalf("reparse: %v\n%s", err, b)
		}
		if !reflect.DeepEqual(c, again) {
			t.Fatalf("reparse differs\n got %+v\nwant %+v", again, c)
		}
	})
}

// The API checks parameters and lines with the file's rules; each error
// names its key.
func TestCheckCallbackAndLine(t *testing.T) {
	cb := Default().Callback
	if errs := CheckCallback(cb); len(errs) != 0 {
		t.Fatalf("defaults: %v", errs)
	}
	cb.T3 = Duration{time.Hour}
	cb.Policy = "lifo"
	cb.CancelCode = "*39"
	cb.AlertFile = "chime"
	got := map[string]string{}
	for _, e := range CheckCallback(cb) {
		got[e.Key] = e.Msg
	}
	want := map[string]string{
		"callback.t3":          `callback.t3 "1h0m0s": want 1s to 10m`,
		"callback.policy":      `callback.policy "lifo": want notify-all or fifo`,
		"callback.cancel_code": `callback.activate_code and callback.cancel_code are both "*39": they must differ`,
		"callback.alert_file":  `callback.alert_file "chime": want a built-in prompt (busy_offer, noanswer_offer, loggedout_offer, activated, connecting, not_possible, callback_alert) or the path of a WAV file (a path has a / or a ., as in ./alert.wav)`,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("CheckCallback = %v\nwant %v", got, want)
	}

	errs := CheckLine(Line{DN: "12a", Password: "", Locale: "fr", BusyTrigger: 0, MaxDevices: 1, Notification: "ring", Kind: KindPhone})
	keys := []string{}
	for _, e := range errs {
		keys = append(keys, e.Key)
	}
	if fmt.Sprint(keys) != "[dn password locale busy_trigger notification]" {
		t.Errorf("CheckLine keys = %v", keys)
	}
	for _, n := range []string{NotifyScreen, NotifyAutoRecall} {
		if errs := CheckLine(Line{DN: "1", Password: "p", Locale: "en", BusyTrigger: 1, MaxDevices: 1, Notification: n, Kind: KindPhone}); len(errs) != 0 {
			t.Errorf("CheckLine(notification %q) = %v", n, errs)
		}
	}

	// Kind, members and forwarding: CheckLine checks their form only; that
	// the lines they name exist is for the caller to check (references).
	ok := Line{DN: "300", Locale: "en", BusyTrigger: 1, MaxDevices: 1, Notification: NotifyScreen}
	for _, tc := range []struct {
		name string
		edit func(*Line)
		want string // "KEY: MSG", "" for no error
	}{
		{"route point", func(l *Line) { l.Kind, l.Members = KindRoutePoint, []string{"9998", "9999"} }, ""},
		{"forwards to unknown lines", func(l *Line) {
			l.Kind, l.Password, l.ForwardAll, l.ForwardBusy, l.ForwardNoAnswer = KindPhone, "p", "9998", ForwardVoicemail, "9999"
		}, ""},
		{"voicemail dnd", func(l *Line) { l.Kind, l.Password, l.DND = KindVoicemail, "p", true }, ""},
		{"no kind", func(l *Line) { l.Password = "p" }, `kind: line "300": kind "": want phone, route-point or voicemail`},
		{"bad kind", func(l *Line) { l.Kind, l.Password = "hunt", "p" }, `kind: line "300": kind "hunt": want phone, route-point or voicemail`},
		{"phone without password", func(l *Line) { l.Kind = KindPhone }, `password: line "300": password is required`},
		{"voicemail without password", func(l *Line) { l.Kind = KindVoicemail }, `password: line "300": password is required`},
		{"members of a phone", func(l *Line) { l.Kind, l.Password, l.Members = KindPhone, "p", []string{"1"} }, `members: line "300": members: only a route-point has members`},
		{"route point without members", func(l *Line) { l.Kind = KindRoutePoint }, `members: line "300": a route-point needs members (the lines it hands calls to)`},
		{"route point member itself", func(l *Line) { l.Kind, l.Members = KindRoutePoint, []string{"300"} }, `members: line "300": member "300": want the DN of another line`},
		{"route point member empty", func(l *Line) { l.Kind, l.Members = KindRoutePoint, []string{""} }, `members: line "300": member "": want the DN of another line`},
		{"forward to itself", func(l *Line) { l.Kind, l.Password, l.ForwardBusy = KindPhone, "p", "300" }, `forward_busy: line "300": forward_busy: a line cannot forward to itself`},
		{"forward to a code", func(l *Line) { l.Kind, l.Password, l.ForwardNoAnswer = KindPhone, "p", "*21" }, `forward_no_answer: line "300": forward_no_answer "*21": want a DN or "voicemail"`},
	} {
		l := ok
		tc.edit(&l)
		var got []string
		for _, e := range CheckLine(l) {
			got = append(got, e.Key+": "+e.Msg)
		}
		if want := []string{tc.want}; tc.want == "" && len(got) != 0 || tc.want != "" && !reflect.DeepEqual(got, want) {
			t.Errorf("%s: CheckLine = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestMediaSection(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		want      Media
		addr      string // Media.Addr
	}{
		{"defaults", "", Media{RTPPortMin: 16384, RTPPortMax: 32767}, "127.0.0.1"},
		{"address v4", "[media]\naddress = \"192.0.2.10\"\n", Media{Address: "192.0.2.10", RTPPortMin: 16384, RTPPortMax: 32767}, "192.0.2.10"},
		{"address v6", "[media]\naddress = \"2001:db8::10\"\n", Media{Address: "2001:db8::10", RTPPortMin: 16384, RTPPortMax: 32767}, "2001:db8::10"},
		{"address over any listener", "[sip]\nlisten = [\"udp:0.0.0.0:5060\"]\n[media]\naddress = \"10.0.0.5\"\n", Media{Address: "10.0.0.5", RTPPortMin: 16384, RTPPortMax: 32767}, "10.0.0.5"},
		{"from localhost", "[sip]\nlisten = [\"tcp:localhost:5070\"]\n", Media{RTPPortMin: 16384, RTPPortMax: 32767}, "127.0.0.1"},
		{"from v6 listener", "[sip]\nlisten = [\"udp:[2001:db8::1]:5060\"]\n", Media{RTPPortMin: 16384, RTPPortMax: 32767}, "2001:db8::1"},
		{"from first listener only", "[sip]\nlisten = [\"udp:192.0.2.1:5060\", \"tcp:0.0.0.0:5060\"]\n", Media{RTPPortMin: 16384, RTPPortMax: 32767}, "192.0.2.1"},
		{"lowest ports", "[media]\nrtp_port_min = 1024\nrtp_port_max = 1025\n", Media{RTPPortMin: 1024, RTPPortMax: 1025}, "127.0.0.1"},
		{"highest ports", "[media]\nrtp_port_min = 65534\nrtp_port_max = 65535\n", Media{RTPPortMin: 65534, RTPPortMax: 65535}, "127.0.0.1"},
		{"odd ends", "media.rtp_port_min = 20001\nmedia.rtp_port_max = 20003\n", Media{RTPPortMin: 20001, RTPPortMax: 20003}, "127.0.0.1"},
		{"rtp latch", "[media]\nrtp_latch = true\n", Media{RTPPortMin: 16384, RTPPortMax: 32767, RTPLatch: true}, "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("site.toml", []byte(tc.doc))
			if err != nil {
				t.Fatal(err)
			}
			if c.Media != tc.want {
				t.Errorf("Media = %+v, want %+v", c.Media, tc.want)
			}
			if a := c.Media.Addr(c.SIP); a != tc.addr {
				t.Errorf("Addr = %q, want %q", a, tc.addr)
			}
		})
	}
	// Addr of a SIP section that did not pass validation.
	for _, sip := range []SIP{{}, {Listen: []string{"udp"}}, {Listen: []string{"udp:127.0.0.1"}}} {
		if a := (Media{}).Addr(sip); a != "" {
			t.Errorf("Addr(%+v) = %q, want \"\"", sip, a)
		}
	}
}

// writeFile writes data to name in a fresh temporary directory and returns
// its path.
func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// F32: callback.alert_file may name a WAV file, which is read on load and
// by CheckCallback.
func TestAlertFileWAV(t *testing.T) {
	var good bytes.Buffer
	if err := media.WriteWAV(&good, make([]int16, 800)); err != nil {
		t.Fatal(err)
	}
	path := writeFile(t, "alert.wav", good.Bytes())
	c, err := Parse("site.toml", []byte("[callback]\nalert_file = "+toml1(path)+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Callback.AlertFile != path {
		t.Errorf("AlertFile = %q, want %q", c.Callback.AlertFile, path)
	}
	cb := Default().Callback
	cb.AlertFile = path
	if errs := CheckCallback(cb); len(errs) != 0 {
		t.Errorf("CheckCallback(%q) = %v", path, errs)
	}
	for _, name := range media.PromptNames() {
		cb.AlertFile = name
		if errs := CheckCallback(cb); len(errs) != 0 {
			t.Errorf("CheckCallback(%q) = %v", name, errs)
		}
	}

	// Header fields of EncodeWAV's 44-byte header, patched to make bad files.
	patch := func(off int, v ...byte) []byte {
		b := bytes.Clone(good.Bytes())
		copy(b[off:], v)
		return b
	}
	big := filepath.Join(t.TempDir(), "big.wav")
	if f, err := os.Create(big); err != nil {
		t.Fatal(err)
	} else {
		f.Write(good.Bytes())
		f.Truncate(10<<20 + 1) // sparse: no 10 MB written
		f.Close()
	}
	for _, tc := range []struct {
		name, path, want string
	}{
		{"stereo", writeFile(t, "stereo.wav", patch(22, 2)), "unsupported WAV: 2 channels, want mono (want 8 kHz mono 16-bit PCM)"},
		{"44.1 kHz", writeFile(t, "cd.wav", patch(24, 0x44, 0xac)), "unsupported WAV: 44100 Hz, want 8000 Hz (want 8 kHz mono 16-bit PCM)"},
		{"8 bit", writeFile(t, "8bit.wav", patch(34, 8)), "unsupported WAV: 8 bits per sample, want 16 (want 8 kHz mono 16-bit PCM)"},
		{"a-law", writeFile(t, "alaw.wav", patch(20, 6)), "unsupported WAV: format tag 6, want 1 (PCM) (want 8 kHz mono 16-bit PCM)"},
		{"no audio", writeFile(t, "empty.wav", media.EncodeWAV(nil)), "no audio (empty data chunk)"},
		{"empty file", writeFile(t, "zero.wav", nil), "unsupported WAV: not a RIFF WAVE file (want 8 kHz mono 16-bit PCM)"},
		{"too large", big, "10485761 bytes: want at most 10 MB"},
		{"missing", filepath.Join(t.TempDir(), "gone.wav"), "no such file or directory"},
		{"directory", t.TempDir(), "not a regular file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("site.toml", []byte("\n[callback]\nalert_file = "+toml1(tc.path)+"\n"))
			if want := fmt.Sprintf("site.toml:3: callback.alert_file %q: %s", tc.path, tc.want); err == nil || err.Error() != want {
				t.Errorf("error\n got %v\nwant %s", err, want)
			}
			cb := Default().Callback
			cb.AlertFile = tc.path
			errs := CheckCallback(cb)
			if want := fmt.Sprintf("callback.alert_file %q: %s", tc.path, tc.want); len(errs) != 1 || errs[0].Key != "callback.alert_file" || errs[0].Msg != want {
				t.Errorf("CheckCallback = %v, want %s", errs, want)
			}
		})
	}
}

// Lines changed through the API are stored as JSON; one stored before
// notification existed reads back with the default, and passes CheckLine.
func TestLineJSON(t *testing.T) {
	var l Line
	if err := json.Unmarshal([]byte(`{"DN":"1005","Name":"","Password":"pw","Locale":"de","BusyTrigger":1,"MaxDevices":4}`), &l); err != nil {
		t.Fatal(err)
	}
	want := Line{DN: "1005", Password: "pw", Locale: "de", BusyTrigger: 1, MaxDevices: 4, Notification: NotifyScreen, Kind: KindPhone}
	if !reflect.DeepEqual(l, want) { // kind too is defaulted
		t.Errorf("old stored line = %+v, want %+v", l, want)
	}
	if errs := CheckLine(l); len(errs) != 0 {
		t.Errorf("CheckLine = %v", errs)
	}

	want.Notification = NotifyAutoRecall
	b, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	var back Line
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, want) {
		t.Errorf("round trip %s = %+v, %v", b, back, err)
	}
	if err := json.Unmarshal([]byte(`{"DN":1}`), &back); err == nil {
		t.Error("a number as DN decoded")
	}

	// The new fields round trip; empty members read as none.
	rp := Line{DN: "300", Locale: "en", BusyTrigger: 1, MaxDevices: 4, Notification: NotifyScreen, Kind: KindRoutePoint,
		Members: []string{"1001", "1002"}, ForwardAll: "1003", ForwardBusy: ForwardVoicemail, ForwardNoAnswer: "1004", DND: true}
	b, err = json.Marshal(rp)
	if err != nil {
		t.Fatal(err)
	}
	back = Line{}
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, rp) {
		t.Errorf("round trip %s = %+v, %v", b, back, err)
	}
	for _, doc := range []string{`{"DN":"1","Members":[]}`, `{"DN":"1","Members":null}`} {
		back = Line{}
		if err := json.Unmarshal([]byte(doc), &back); err != nil || back.Members != nil || back.Kind != KindPhone {
			t.Errorf("%s = %#v, %v; want nil members, kind phone", doc, back, err)
		}
	}
}

// TestF32_DialOut: a profile's dial_out, and the default profile's (none,
// unless the file has a [[profile]] "default").
func TestF32_DialOut(t *testing.T) {
	c, err := Parse("site.toml", []byte(`[[profile]]
name = "default"
dial_out = ["0", "00"]
[[profile]]
name = "all"
dial_out = "all"
[[profile]]
name = "none"
dial_out = "none"
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range []struct {
		profile, number string
		ok              bool
	}{
		{"", "0301234", true}, {"default", "00441234", true}, {"", "1234", false},
		{"all", "1234", true}, {"none", "0301234", false},
	} {
		p, _ := c.Profile(x.profile)
		if got := p.MayDialOut(x.number); got != x.ok {
			t.Errorf("profile %q may dial %s: %v, want %v", x.profile, x.number, got, x.ok)
		}
	}
	if p, _ := Default().Profile(""); p.MayDialOut("0301234") {
		t.Error("the built-in default profile dials out")
	}
}
