// Package metrics exposes the server's state and counters in the
// Prometheus text format at /metrics (docs/features.md F37: registered
// lines, open requests, notifications sent). Counters are fed by observers
// the other parts call; gauges are read from them when scraped.
package metrics

import (
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/callbackd/callbackd/internal/engine"
	"github.com/callbackd/callbackd/internal/screen"
)

// Sources are read at each scrape.
type Sources struct {
	Registrations func() int            // registered devices
	ActiveCalls   func() int            // calls ringing or connected
	LineStates    func() map[string]int // lines by state (idle, busy, ...)
	OpenRequests  func() int            // open Call Back requests
	TimersPending func() int            // Call Back timers armed
	RequestStates func() map[string]int // open Call Back requests by state
}

// Metrics holds the registry and the counters.
type Metrics struct {
	reg     *prometheus.Registry
	calls   *prometheus.CounterVec
	screens *prometheus.CounterVec
	ended   *prometheus.CounterVec
	alerts  prometheus.Counter
	stored  prometheus.Counter

	presses       *prometheus.CounterVec
	activations   prometheus.Counter
	offers        prometheus.Counter
	notifications prometheus.Counter
	notified      atomic.Int64 // notifications, for the API's status and the history
	callsTotal    atomic.Int64 // calls, all outcomes, for the history
	failuresTotal atomic.Int64 // failures, all reasons, for the history
	failures      *prometheus.CounterVec
	connects      *prometheus.CounterVec
	sip           *prometheus.CounterVec
	sipCounters   sipCounters // sip's children, looked up once
	rtpSent       prometheus.Counter
	rtpLate       prometheus.Counter
	rtpForeign    prometheus.Counter
	authFailures  *prometheus.CounterVec
	authBlocked   *prometheus.CounterVec

	src        Sources
	history    *History
	collectors []prometheus.Collector // everything registered, for Names
}

// New registers every metric, with the Go runtime and process collectors.
func New(src Sources) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), src: src, history: NewHistory(HistorySize)}
	m.Register(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	counter := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
		m.Register(c)
		return c
	}
	counterVec := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
		m.Register(c)
		return c
	}
	m.calls = counterVec("callbackd_calls_total",
		"Calls between lines by how their setup ended (answered, busy, no-answer, unregistered, other).", "outcome")
	m.screens = counterVec("callbackd_callback_screens_total",
		"Call Back screens shown, by screen (Activated, Available, NotActive, ...).", "screen")
	m.ended = counterVec("callbackd_callback_ended_total",
		"Call Back requests ended, by reason (completed, cancelled, expired, t3, reset, ...).", "reason")
	m.alerts = counter("callbackd_callback_alerts_total",
		"Call Back audio alerts (recall rings) sent to callers.")
	m.stored = counter("callbackd_callback_writes_total",
		"Call Back request records written to the store.")
	m.presses = counterVec("callbackd_callback_key_presses_total",
		"Call Back key presses (softkeys, feature codes, the offer's 5, the API) by key and by what the engine decided (activated, shown, cannot activate, key not active, dialed, ...).", "key", "result")
	m.activations = counter("callbackd_callback_activations_total",
		"Call Back requests made by a key press (F4; with a peer server, before it accepts, F3).")
	m.offers = counter("callbackd_callback_offers_total",
		"Failed calls on which a call back was offered (F28: the announcement, or the CallBack key).")
	m.notifications = counter("callbackd_callback_notifications_total",
		"Callers told that the line they wait for is available: the alert with its screen (F12), the automatic recall's ring (F29; not its ring again after a restart), B in DND-Reject cycling the hook (F22).")
	m.failures = counterVec("callbackd_callback_failures_total",
		"Call Back failures by reason: activations refused (cannot-activate, key-not-active) and requests that ended without a call (t1, t3, expired, no-answer, reset, removed, ...).", "reason")
	m.connects = counterVec("callbackd_callback_recalls_total",
		"Call back calls the server placed itself (Dial on the console or API, and the automatic recall: ring the caller, then the callee), by result (connected, failed).", "result")
	m.sip = counterVec("callbackd_sip_messages_total",
		"SIP messages by direction (in, out) and kind (the request method, or the response status code).", "direction", "kind")
	m.rtpSent = counter("callbackd_rtp_packets_sent_total",
		"RTP packets the server's own streams sent (announcements, tones, prompts), counted when a stream ends.")
	m.rtpLate = counter("callbackd_rtp_packets_late_total",
		"Of those, packets sent more than 5 ms after their slot on the 20 ms schedule: the server is short of CPU for its media.")
	m.rtpForeign = counter("callbackd_rtp_foreign_packets_total",
		"RTP packets dropped because they came from another source than the phone's (its SDP address, or its first source with media.rtp_latch): key presses or audio from a third party.")
	m.authFailures = counterVec("callbackd_auth_failures_total",
		"Failed authentications (B7) by kind (sip, http, pin) and reason.", "kind", "reason")
	m.authBlocked = counterVec("callbackd_auth_throttled_total",
		"Requests refused unchecked because their source or account had too many failed authentications (B7), by kind.", "kind")
	gauge := func(name, help string, f func() int) {
		if f != nil {
			m.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return float64(f()) }))
		}
	}
	gauge("callbackd_registrations", "Registered devices.", src.Registrations)
	gauge("callbackd_calls_active", "Calls ringing or connected.", src.ActiveCalls)
	gauge("callbackd_callback_requests_open", "Open Call Back requests.", src.OpenRequests)
	gauge("callbackd_callback_timers_pending", "Call Back timers armed.", src.TimersPending)
	if src.LineStates != nil {
		m.Register(byLabel{src.LineStates, lineStatesDesc})
	}
	if src.RequestStates != nil {
		m.Register(byLabel{src.RequestStates, requestStatesDesc})
	}
	return m
}

// Register adds metrics another part owns (the SIP transport's counters).
func (m *Metrics) Register(cs ...prometheus.Collector) {
	m.reg.MustRegister(cs...)
	m.collectors = append(m.collectors, cs...)
}

// descParts reads a metric's name and label names from its Desc, whose
// String() is `Desc{fqName: "NAME", help: ..., variableLabels: {a,b}}`
// (client_golang offers no accessor).
var descParts = regexp.MustCompile(`^Desc\{fqName: "([^"]+)", .*variableLabels: \{([^}]*)\}\}$`)

// Names maps the name of every metric registered to its label names:
// also label vectors that have no series yet, which a scrape does not
// show. The Grafana dashboard's test checks its queries against it.
func (m *Metrics) Names() map[string][]string {
	out := map[string][]string{}
	ch := make(chan *prometheus.Desc, 64)
	go func() {
		for _, c := range m.collectors {
			c.Describe(ch)
		}
		close(ch)
	}()
	for d := range ch {
		if sub := descParts.FindStringSubmatch(d.String()); sub != nil {
			var labels []string
			for _, l := range strings.Split(sub[2], ",") {
				if l = strings.TrimSuffix(strings.TrimPrefix(l, "c("), ")"); l != "" {
					labels = append(labels, l)
				}
			}
			out[sub[1]] = labels
		}
	}
	// What the Go and process collectors gather beyond what they describe.
	if fams, err := m.reg.Gather(); err == nil {
		for _, f := range fams {
			if _, ok := out[f.GetName()]; ok {
				continue
			}
			var labels []string
			for _, mt := range f.GetMetric() {
				for _, lp := range mt.GetLabel() {
					if !slices.Contains(labels, lp.GetName()) {
						labels = append(labels, lp.GetName())
					}
				}
			}
			out[f.GetName()] = labels
		}
	}
	return out
}

// Handler serves /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// CallResult counts the end of a call's setup.
func (m *Metrics) CallResult(outcome string) {
	m.calls.WithLabelValues(outcome).Inc()
	m.callsTotal.Add(1)
}

// failure counts a Call Back failure by reason.
func (m *Metrics) failure(reason string) {
	m.failures.WithLabelValues(reason).Inc()
	m.failuresTotal.Add(1)
}

// Action counts what the Call Back engine decided, from its typed
// decisions: a screen is what a phone shows, and the same screen comes
// again when A asks for it (F13), so only the screens counter reads them.
func (m *Metrics) Action(a engine.Action) {
	switch a := a.(type) {
	case engine.ShowScreen:
		m.screens.WithLabelValues(a.Screen.Kind.String()).Inc()
		if a.Screen.Kind == screen.AvailableDND { // F22: this screen is the decision's only form
			m.notify()
		}
	case engine.Pressed:
		m.presses.WithLabelValues(a.Key.String(), a.Result.String()).Inc()
		switch a.Result {
		case engine.Activated:
			m.activations.Inc()
		case engine.CannotActivate:
			m.failure("cannot-activate")
		case engine.KeyInactive:
			m.failure("key-not-active")
		}
	case engine.Alert: // F12: always with the availability screen
		m.alerts.Inc()
		m.notify()
	case engine.Recall: // F29
		if !a.Again {
			m.notify()
		}
	case engine.Offer:
		m.offers.Inc()
	case engine.Delete:
		m.ended.WithLabelValues(string(a.Reason)).Inc()
		switch a.Reason {
		case engine.EndCompleted, engine.EndCancelled, engine.EndReplaced:
		default:
			m.failure(string(a.Reason))
		}
	case engine.Persist:
		m.stored.Inc()
	}
}

func (m *Metrics) notify() {
	m.notifications.Inc()
	m.notified.Add(1)
}

// Notifications returns how many callers were told a line is available.
func (m *Metrics) Notifications() int64 { return m.notified.Load() }

// Recall counts a call the server placed itself (Connect), by result.
func (m *Metrics) Recall(result string) { m.connects.WithLabelValues(result).Inc() }

// RTPStream counts what one of the server's RTP streams sent.
func (m *Metrics) RTPStream(packets, late uint64) {
	m.rtpSent.Add(float64(packets))
	m.rtpLate.Add(float64(late))
}

// RTPForeign counts an RTP packet dropped as from a foreign source.
func (m *Metrics) RTPForeign() { m.rtpForeign.Inc() }

// SIPMessage counts a SIP message read ("in") or written ("out"); kind is
// its method or status code.
func (m *Metrics) SIPMessage(direction, kind string) { m.sipCounters.get(m.sip, direction, kind).Inc() }

// sipCounters keeps the children of the SIP message counter by direction
// and kind: every message is counted (about 24 per relayed call), and
// WithLabelValues hashes both labels and locks the vector each time. The
// kinds are a few dozen (methods, status codes, "other").
type sipCounters struct {
	mu      sync.RWMutex
	in, out map[string]prometheus.Counter
}

func (c *sipCounters) get(vec *prometheus.CounterVec, direction, kind string) prometheus.Counter {
	c.mu.RLock()
	byKind := c.in
	if direction != "in" {
		byKind = c.out
	}
	counter, ok := byKind[kind] // a nil map reads as empty
	c.mu.RUnlock()
	if ok {
		return counter
	}
	counter = vec.WithLabelValues(direction, kind)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.in == nil {
		c.in, c.out = map[string]prometheus.Counter{}, map[string]prometheus.Counter{}
	}
	if direction == "in" {
		c.in[kind] = counter
	} else if direction == "out" {
		c.out[kind] = counter
	}
	return counter
}

// AuthFailure counts a failed authentication (B7).
func (m *Metrics) AuthFailure(kind, reason string) {
	m.authFailures.WithLabelValues(kind, reason).Inc()
}

// AuthThrottled counts a request refused because of earlier failures (B7).
func (m *Metrics) AuthThrottled(kind string) { m.authBlocked.WithLabelValues(kind).Inc() }

// byLabel is a gauge vector computed at scrape time.
type byLabel struct {
	f    func() map[string]int
	desc *prometheus.Desc
}

var (
	lineStatesDesc    = prometheus.NewDesc("callbackd_lines", "Lines by aggregated state (idle, ringing, busy, unregistered).", []string{"state"}, nil)
	requestStatesDesc = prometheus.NewDesc("callbackd_callback_requests", "Open Call Back requests by state (activating, active, suspended, available).", []string{"state"}, nil)
)

func (l byLabel) Describe(ch chan<- *prometheus.Desc) { ch <- l.desc }

func (l byLabel) Collect(ch chan<- prometheus.Metric) {
	for state, n := range l.f() {
		ch <- prometheus.MustNewConstMetric(l.desc, prometheus.GaugeValue, float64(n), state)
	}
}
