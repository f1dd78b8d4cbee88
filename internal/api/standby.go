package api

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/callbackd/callbackd/internal/cluster"
)

// StandbyDeps is what a cluster's standby (F35) serves HTTP from: the
// cluster as the shared database shows it, nothing of a running server.
type StandbyDeps struct {
	Status   func(ctx context.Context) (cluster.Status, error)
	Log      *slog.Logger
	Started  time.Time
	Instance string // default host:pid, as for the active
}

// Standby is the HTTP a standby serves, so that monitoring sees every
// instance (F37): /healthz 200 "standby" (alive), /readyz 503 (a load
// balancer in front of the API picks the active), /metrics
// (callbackd_cluster_active 0 and the lease's epoch as it sees it),
// GET /api/v1/status with the cluster object; every other API request,
// writes included, 503 with an error naming the active.
func Standby(d StandbyDeps) http.Handler {
	a := New(Deps{Log: d.Log, Started: d.Started, Instance: d.Instance})
	d.Log, d.Instance = a.d.Log, a.d.Instance
	s := &standby{d: d}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), s)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "standby")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "standby") // answered to any Host (Protect): it names nobody
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	mux.HandleFunc("GET /api/v1/status", s.status)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		he := newError(http.StatusServiceUnavailable, "standby", "this instance is a standby of the cluster; "+s.activeIs(r.Context()), "")
		he.header = http.Header{"Retry-After": {"1"}}
		writeError(w, he)
	})
	return mux
}

type standby struct{ d StandbyDeps }

// read is the cluster's state, bounded: a standby cut from the database
// still answers, without it.
func (s *standby) read(ctx context.Context) (cluster.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	st, err := s.d.Status(ctx)
	if err != nil {
		s.d.Log.Debug("standby: cluster status not read", "error", err)
	}
	return st, err
}

// activeIs names the active instance and where it serves SIP.
func (s *standby) activeIs(ctx context.Context) string {
	st, err := s.read(ctx)
	if err != nil {
		return "the active is unknown (the database is not reachable from here)"
	}
	for _, m := range st.Members {
		if m.Active {
			return fmt.Sprintf("the active is %s (SIP %s)", m.Name, m.SIP)
		}
	}
	if st.Active == "" {
		return "no instance is active"
	}
	return "the active is " + st.Active
}

func (s *standby) status(w http.ResponseWriter, r *http.Request) {
	status := map[string]any{
		"instance": s.d.Instance,
		"active":   false,
		"started":  s.d.Started.UTC().Format(time.RFC3339),
		"version":  version(),
	}
	if st, err := s.read(r.Context()); err == nil {
		status["cluster"] = st
	}
	writeJSON(w, http.StatusOK, status)
}

var (
	standbyActive = prometheus.NewDesc("callbackd_cluster_active",
		"1 while this instance is the cluster's active one and its lease holds (F35).", nil, nil)
	standbyEpoch = prometheus.NewDesc("callbackd_cluster_epoch",
		"The lease's epoch: on the active its term's, on a standby the current one as the database shows it (F37).", nil, nil)
)

// Describe and Collect make the standby its own metrics: one read of the
// database per scrape; without the database, only the active gauge.
func (s *standby) Describe(ch chan<- *prometheus.Desc) { ch <- standbyActive; ch <- standbyEpoch }

func (s *standby) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(standbyActive, prometheus.GaugeValue, 0)
	if st, err := s.read(context.Background()); err == nil {
		ch <- prometheus.MustNewConstMetric(standbyEpoch, prometheus.GaugeValue, float64(st.Epoch))
	}
}
