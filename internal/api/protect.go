package api

import (
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// Policy is what Protect enforces on the whole HTTP listener (B7): which
// Host header values it answers and which other origins may write.
type Policy struct {
	// Hosts: "host:port", "host" (any port) or "*" (any Host); compared
	// case-insensitively. DefaultHosts gives the usual list.
	Hosts []string
	// AllowedOrigins may write besides the server's own origin, exactly as
	// a browser sends them in Origin ("https://pbx.example.com").
	AllowedOrigins []string
	// Log gets one debug line per refused request (nil: none). Refusals are
	// not warnings: a browser on a hostile page makes them, not the user.
	Log *slog.Logger
}

// Protect wraps the HTTP listener's handler (API, pages, /metrics) with the
// defences a browser needs, checked before anything else runs:
//
//   - Host allow-list, against DNS rebinding: a hostile page whose name is
//     made to resolve to this server reads it with the victim's browser,
//     and its requests carry the hostile name as Host. Another Host gets
//     421 Misdirected Request (RFC 9110 15.5.20). /healthz and /readyz are
//     exempt: they tell nothing, and load balancers probe them by address.
//   - Writes (any method but GET, HEAD, OPTIONS, TRACE) from another
//     origin are refused with 403: Origin, when sent, must be this server's
//     (its host equals Host) or an allowed one; without Origin,
//     Sec-Fetch-Site (Fetch Metadata) must be same-origin or none. Browsers
//     send at least one of them; other clients (curl) send neither and are
//     not affected. This is the defence against cross-site requests that
//     carry the victim's cached Basic credentials (which, unlike cookies,
//     have no SameSite).
//   - A write with a body must declare it application/json (415 otherwise):
//     an HTML form or a "simple" fetch cannot send that type without a
//     CORS preflight, which this server never grants.
func Protect(next http.Handler, p Policy) http.Handler {
	anyHost := false
	exact := map[string]bool{}   // "host:port"
	anyPort := map[string]bool{} // "host"
	for _, h := range p.Hosts {
		h = strings.ToLower(h)
		switch host, port, err := net.SplitHostPort(h); {
		case h == "*":
			anyHost = true
		case err == nil:
			exact[net.JoinHostPort(host, port)] = true
		default:
			anyPort[strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")] = true
		}
	}
	origins := map[string]bool{}
	for _, o := range p.AllowedOrigins {
		origins[strings.ToLower(strings.TrimSuffix(o, "/"))] = true
	}
	hostOK := func(h string) bool {
		h = strings.ToLower(h)
		if host, port, err := net.SplitHostPort(h); err == nil {
			return exact[net.JoinHostPort(host, port)] || anyPort[host]
		}
		// No port: the scheme's default (RFC 9110 7.2).
		return anyPort[strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")] || exact[net.JoinHostPort(strings.Trim(h, "[]"), "80")]
	}
	refuse := func(w http.ResponseWriter, r *http.Request, err *httpError, why string) {
		if p.Log != nil {
			p.Log.Debug("http request refused", "status", err.status, "reason", why, "source", r.RemoteAddr,
				"method", r.Method, "path", r.URL.Path, "host", r.Host, "origin", r.Header.Get("Origin"),
				"sec_fetch_site", r.Header.Get("Sec-Fetch-Site"), "credentials", r.Header.Get("Authorization") != "")
		}
		writeError(w, err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !anyHost && r.URL.Path != "/healthz" && r.URL.Path != "/readyz" && !hostOK(r.Host) {
			refuse(w, r, newError(http.StatusMisdirectedRequest, "misdirected",
				"this server does not answer for Host "+stringQuote(r.Host)+" (http.hosts)", ""), "host")
			return
		}
		if isWrite(r.Method) {
			if why := crossSite(r, origins); why != "" {
				refuse(w, r, newError(http.StatusForbidden, "cross_site",
					"writes from another site are refused ("+why+"); allowed origins are this server's and http.allowed_origins", ""), why)
				return
			}
			if hasBody(r) && !isJSON(r.Header.Get("Content-Type")) {
				refuse(w, r, unsupportedType(r), "content type")
				return
			}
			// A body (at most maxBody) comes within bodyTimeout or the
			// read fails: a client dribbling it holds nothing for long.
			http.NewResponseController(w).SetReadDeadline(time.Now().Add(bodyTimeout))
		}
		next.ServeHTTP(w, r)
	})
}

// bodyTimeout bounds the time to send a write's body.
const bodyTimeout = 30 * time.Second

// isWrite: every method that may change something (RFC 9110 9.2.1: all
// but the safe ones).
func isWrite(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return false
	}
	return true
}

// hasBody: a declared length above zero, or an unknown one (chunked).
func hasBody(r *http.Request) bool { return r.ContentLength != 0 }

// crossSite says why a write comes from another site, or "" when it may
// be served.
func crossSite(r *http.Request, origins map[string]bool) string {
	if o := r.Header.Get("Origin"); o != "" {
		if origins[strings.ToLower(o)] {
			return ""
		}
		// Same host and port as the request's Host: this server's own
		// page (the scheme may differ behind a TLS-terminating proxy).
		if u, err := url.Parse(o); err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" &&
			u.Path == "" && strings.EqualFold(u.Host, r.Host) {
			return ""
		}
		return "Origin " + o
	}
	switch s := r.Header.Get("Sec-Fetch-Site"); s {
	case "", "same-origin", "none": // none: typed by the user, a bookmark
		return ""
	default:
		return "Sec-Fetch-Site " + s
	}
}

func unsupportedType(r *http.Request) *httpError {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return newError(http.StatusUnsupportedMediaType, "unsupported_media_type", "the body must be application/json: send Content-Type: application/json", "")
	}
	return newError(http.StatusUnsupportedMediaType, "unsupported_media_type", "the body must be application/json, not "+ct, "")
}

func stringQuote(s string) string {
	if len(s) > 100 {
		s = s[:100] + "..."
	}
	return `"` + strings.Map(func(r rune) rune {
		if r < ' ' || r == '"' || r == 0x7f {
			return '?'
		}
		return r
	}, s) + `"`
}

// DefaultHosts is the Host allow-list of a listener at addr ("host:port")
// when none is configured: addr itself, localhost, 127.0.0.1 and [::1]
// with addr's port, and, for an unspecified address (0.0.0.0, [::]), the
// addresses of this machine's interfaces with the port.
func DefaultHosts(addr string) []string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil
	}
	out := []string{net.JoinHostPort(host, port), "localhost:" + port, "127.0.0.1:" + port, "[::1]:" + port}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		if addrs, err := net.InterfaceAddrs(); err == nil {
			for _, a := range addrs {
				if n, ok := a.(*net.IPNet); ok && !n.IP.IsLinkLocalUnicast() {
					out = append(out, net.JoinHostPort(n.IP.String(), port))
				}
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// streamCap bounds the open event streams, in total and per source address
// (B7: 5,000 streams held 258 MB and 10,000 goroutines).
type streamCap struct {
	mu       sync.Mutex
	max, per int
	total    int
	bySource map[string]int
}

func newStreamCap(max, per int) *streamCap {
	if max <= 0 {
		max = 100
	}
	if per <= 0 || per > max {
		per = min(10, max)
	}
	return &streamCap{max: max, per: per, bySource: map[string]int{}}
}

// acquire takes a slot for a stream from source ("host:port"); false: over
// a cap.
func (c *streamCap) acquire(source string) bool {
	src := hostOf(source)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.total >= c.max || c.bySource[src] >= c.per {
		return false
	}
	c.total++
	c.bySource[src]++
	return true
}

func (c *streamCap) release(source string) {
	src := hostOf(source)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.total--
	if c.bySource[src]--; c.bySource[src] <= 0 {
		delete(c.bySource, src)
	}
}

// hostOf is the address of a "host:port" peer (the port changes with every
// connection).
func hostOf(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}
