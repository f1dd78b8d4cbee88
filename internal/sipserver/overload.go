package sipserver

import (
	"context"
	"hash/maphash"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"runtime/metrics"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
)

// Overload control: past what it can serve, the server refuses new calls
// and registrations at once with 503 and Retry-After (RFC 3261 21.5.4)
// and keeps serving the calls it has. Without it every call slows down
// together until the callers' timers fire (RFC 3261 17.1.1.2: INVITE
// retransmitted after 500 ms, 1 s, 2 s ...), each retransmission is more
// work, and the server ends serving almost none (RFC 6357 section 2, the
// collapse the issue measured: 20 % failed, 75 s to serve 30 s of load).
//
// The signal: how long work waits for a CPU before it runs (queueing
// delay). sipgo starts a goroutine for every message it reads and runs our
// handler on it, so the wait of a new goroutine before it runs is the wait
// of a message before its handler; the runtime measures it for every
// goroutine (/sched/latencies), the timers that retransmit and the B2BUA's
// relays included, at no cost to the messages. It stays near zero however
// many calls are served while the CPU keeps up, and grows as soon as it
// does not. What it replaced: open server transactions (admit's cap) count
// finished ones for 32 s (Timer J), so they measure the call rate, not
// being behind: tens of thousands at 1000 calls/s with the server fine. A
// delay measured per message would need the time of reading carried to the
// handler, which sipgo has no place for. What it cannot see: work waiting
// on something other than a CPU (a disk); the transaction cap stays as the
// bound on memory.
//
// What is refused: a share of the new work, not all of it (the loss-based
// control of RFC 7339 section 5.10, applied at the server itself). The
// share grows by refuseUp for each window (overloadWindow) whose p90 delay
// reaches sip.overload_delay, and shrinks by refuseDown for each window
// under half of it; in between it holds. So the server settles near the
// share it cannot serve, where refusing all new work until the delay has
// stayed low for a while leaves the CPU idle once the backlog is gone. An
// episode starts only after overloadEnter windows in a row at the
// threshold: a single slow window is a hiccup (a garbage collection,
// another process taking the CPU a moment), not a queue that stays (on a
// shared 2-core box at 750 calls/s, refusing all new work for a second
// after one such window turned 2 % failed calls into 13 %). The margin
// and the holding keep the share from flapping at the window's rate.

const (
	overloadWindow = 100 * time.Millisecond // one look at the delay
	overloadEnter  = 3                      // windows at the threshold in a row to start an episode
	refuseUp       = 100                    // per mille of new work refused more, per window at the threshold
	refuseDown     = 50                     // per mille refused less, per window under half of it
	retryAfterMin  = 2                      // seconds; Retry-After is drawn in [min, max]
	retryAfterMax  = 9
	// overloadForceEnv names a file: while it exists all new work is
	// refused (tests: the interop test makes the real binary overloaded
	// on demand). Only the server's own environment sets it, nothing on
	// the network.
	overloadForceEnv = "CALLBACKD_TEST_OVERLOAD"
)

// overload holds the delay measured, the state and its metrics.
type overload struct {
	threshold time.Duration // sip.overload_delay; 0: off
	force     string        // overloadForceEnv's file, or ""
	seed      maphash.Seed  // draw's

	delay      atomic.Int64 // ns: p90 wait to run over the last window
	share      atomic.Int32 // per mille of new work refused; 0: not overloaded
	behind     int          // windows in a row at the threshold (run's goroutine)
	refused    atomic.Int64 // refused in this episode
	since      time.Time    // episode start (run's goroutine)
	rejected   *prometheus.CounterVec
	episodes   prometheus.Counter
	delayGauge prometheus.GaugeFunc
	shareGauge prometheus.GaugeFunc

	sample []metrics.Sample
	prev   []uint64
}

func newOverload(threshold time.Duration) *overload {
	o := &overload{threshold: threshold, force: os.Getenv(overloadForceEnv), seed: maphash.MakeSeed()}
	o.rejected = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "callbackd_sip_overload_rejected_total",
		Help: "New requests (INVITE, REGISTER out of a dialog) answered 503 at once because the server was behind (sip.overload_delay).",
	}, []string{"method"})
	o.episodes = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "callbackd_sip_overload_episodes_total",
		Help: "Times the server started refusing new requests because it was behind (sip.overload_delay).",
	})
	o.delayGauge = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "callbackd_sip_queue_delay_seconds",
		Help: "How long the slowest tenth of goroutines waited to run over the last 100 ms (p90): the overload signal.",
	}, func() float64 { return time.Duration(o.delay.Load()).Seconds() })
	o.shareGauge = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "callbackd_sip_overload_refused_ratio",
		Help: "Share of new INVITEs and REGISTERs refused 503 now because the server is behind (0: not overloaded).",
	}, func() float64 { return float64(o.share.Load()) / 1000 })
	return o
}

func (o *overload) collectors() []prometheus.Collector {
	return []prometheus.Collector{o.rejected, o.episodes, o.delayGauge, o.shareGauge}
}

// run looks at the delay every overloadWindow until ctx ends or done is
// closed, and tells of each episode's start and end (at most once a
// minute each, whatever the flapping: lim.warn).
func (o *overload) run(ctx context.Context, done <-chan struct{}, lim *connLimits) {
	if o.threshold <= 0 {
		return
	}
	t := time.NewTicker(overloadWindow)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-done:
			return
		case <-t.C:
		}
		d := o.measure()
		o.delay.Store(int64(d))
		change := 0
		if o.forced() {
			change = o.set(1000)
		} else {
			change = o.step(d)
		}
		switch change {
		case 1:
			o.episodes.Inc()
			o.since = time.Now()
			// A warning is an alarm (internal/events): the admin page
			// shows it. /healthz stays ok: a failing health check gets a
			// server restarted or taken over, which would end the calls
			// in progress that refusing new ones is there to keep.
			lim.warn("overload", "SIP overloaded: part of the new calls and registrations answered 503 until the server catches up",
				"queue_delay", d.String(), "overload_delay", o.threshold.String())
		case -1:
			n := o.refused.Swap(0)
			if ok, _ := lim.every.OK("overload end"); ok {
				lim.log.Info("SIP overload ended", "refused", n, "lasted", time.Since(o.since).Round(time.Millisecond).String())
			}
		}
	}
}

// step moves the share refused by one window's delay d: 1 when an
// episode starts, -1 when it ends, else 0.
func (o *overload) step(d time.Duration) int {
	share := o.share.Load()
	switch {
	case d >= o.threshold:
		if o.behind++; share > 0 || o.behind >= overloadEnter {
			share = min(share+refuseUp, 1000)
		}
	case d < o.threshold/2:
		o.behind = 0
		share = max(share-refuseDown, 0)
	default: // between: hold
		o.behind = 0
	}
	return o.set(share)
}

// set makes share the per mille refused: 1 when an episode starts, -1 when
// it ends, else 0.
func (o *overload) set(share int32) int {
	switch was := o.share.Swap(share); {
	case was == 0 && share > 0:
		return 1
	case was > 0 && share == 0:
		return -1
	}
	return 0
}

// forced reports whether the test knob's file exists.
func (o *overload) forced() bool {
	if o.force == "" {
		return false
	}
	_, err := os.Stat(o.force)
	return err == nil
}

// measure returns the p90 of how long goroutines waited to run since the
// last call (0 when none ran).
func (o *overload) measure() time.Duration {
	if o.sample == nil {
		o.sample = []metrics.Sample{{Name: "/sched/latencies:seconds"}}
	}
	metrics.Read(o.sample)
	if o.sample[0].Value.Kind() != metrics.KindFloat64Histogram {
		return 0
	}
	h := o.sample[0].Value.Float64Histogram()
	d := quantile(h.Buckets, h.Counts, o.prev, 0.9)
	o.prev = append(o.prev[:0], h.Counts...)
	return d
}

// quantile returns the q quantile of the counts added to a runtime
// histogram since prev (its lower bucket bound: the wait was at least
// that), or 0 when nothing was added.
func quantile(buckets []float64, counts, prev []uint64, q float64) time.Duration {
	var all uint64
	diff := make([]uint64, len(counts))
	for i, c := range counts {
		if i < len(prev) {
			c -= prev[i]
		}
		diff[i] = c
		all += c
	}
	if all == 0 {
		return 0
	}
	want := uint64(math.Ceil(q * float64(all)))
	var seen uint64
	for i, c := range diff {
		if seen += c; seen >= want {
			b := buckets[i]
			if math.IsInf(b, -1) || b < 0 {
				return 0
			}
			if math.IsInf(b, 1) || b > float64(math.MaxInt64)/1e9 {
				return time.Duration(math.MaxInt64)
			}
			return time.Duration(b * 1e9)
		}
	}
	return 0
}

// refuse answers req 503 with Retry-After when the server is overloaded,
// req is new work it may refuse (newWork) and the draw falls in the share
// refused. A REGISTER's answer is stateless: written on the request's
// connection, the transaction ended at once, so it keeps nothing; a
// retransmission is refused again. An INVITE's goes through its
// transaction (below).
func (s *Server) refuse(req *sip.Request, tx sip.ServerTransaction) bool {
	share := s.overload.share.Load()
	if share == 0 || !s.newWork(req) || s.overload.draw(req) >= share {
		return false
	}
	s.overload.rejected.WithLabelValues(string(req.Method)).Inc()
	s.overload.refused.Add(1)
	res := sip.NewResponseFromRequest(req, 503, "Service Unavailable", nil)
	// Randomised: refused phones that all came back after the same delay
	// would bring the burst back as it was (RFC 6357 section 4).
	res.AppendHeader(sip.NewHeader("Retry-After", strconv.Itoa(retryAfterMin+rand.IntN(retryAfterMax-retryAfterMin+1))))
	if req.Method == sip.INVITE {
		// Through the transaction, which retransmits the 503 until the
		// ACK (RFC 3261 17.2.1, Timer G) and then ends (Timer H, or at
		// once over TCP): sipgo sends 100 Trying by itself when a handler
		// starts 200 ms late, which is the case here, and a caller that
		// got it no longer retransmits its INVITE, so a stateless 503 lost
		// once would leave it waiting (measured: SIPp calls open for
		// good). Counted by admit, whose cap bounds what this keeps.
		if !s.admit(req, tx) {
			return true // refused by the cap already
		}
		if err := tx.Respond(res); err != nil {
			s.Log.Debug("503 not sent", "error", err)
		}
		return true
	}
	writeOnce(tx, res, s.Log)
	return true
}

// writeOnce writes res once on the connection tx's request came in on and
// ends tx: a stateless answer (RFC 3261 8.2.7), nothing kept.
func writeOnce(tx sip.ServerTransaction, res *sip.Response, log *slog.Logger) {
	if c := txConnection(tx); c != nil {
		if err := c.WriteMsg(res); err != nil {
			log.Debug("response not sent", "code", res.StatusCode, "error", err)
		}
	} else if err := tx.Respond(res); err != nil { // tests' transactions
		log.Debug("response not sent", "code", res.StatusCode, "error", err)
	}
	tx.Terminate()
}

// draw places req in [0, 1000) by its Call-ID: a request is refused when
// its draw falls under the share. By Call-ID, not at random, so that every
// transmission of one request gets the same answer (a retransmission of a
// refused INVITE admitted set up a call its caller had given up: measured
// as hundreds of answers to dead calls), and so does a call's INVITE with
// credentials after its 407.
func (o *overload) draw(req *sip.Request) int32 {
	id := ""
	if h := req.CallID(); h != nil {
		id = h.Value()
	}
	return int32(maphash.String(o.seed, id) % 1000)
}

// newWork reports whether overload control may refuse req: a call or a
// registration that starts, out of any dialog (RFC 3261 12: no To tag).
// Everything else goes through, so that the calls in progress complete:
// in-dialog requests (ACK, BYE, re-INVITE), CANCEL (matched to its INVITE
// by sipgo before any handler), OPTIONS (a peer's keep-alive) and
// responses (never handled here). A REGISTER refreshing a binding the
// registrar holds (same line, same Call-ID: RFC 3261 10.2.4) goes through
// too: a phone told 503 on its refresh may show its line as down or fail
// over, and the refreshes of the phones already there are a small steady
// load (one per phone per half expiry), unlike new registrations, which
// come in bursts (a site's phones after a power cut) and are the ones to
// spread out.
func (s *Server) newWork(req *sip.Request) bool {
	if to := req.To(); to == nil || to.Params.Has("tag") {
		return false
	}
	switch req.Method {
	case sip.INVITE:
		return true
	case sip.REGISTER:
		return s.h.Refreshes == nil || !s.h.Refreshes(req)
	}
	return false
}
