package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/callbackd/callbackd/internal/cluster"
	"github.com/callbackd/callbackd/internal/config"
	"github.com/callbackd/callbackd/internal/sipserver"
	"github.com/callbackd/callbackd/internal/store"
	"github.com/callbackd/callbackd/internal/store/postgres"
)

// ErrNotActive ends Run when this instance stops being the cluster's
// active one (lease lost, handed over): the process starts again as a
// standby (cmd/callbackd), so nothing of the ended term lives on.
var ErrNotActive = errors.New("no longer the cluster's active instance")

// NewElector builds this instance's elector for [cluster] over the
// shared store st; JoinCluster runs it.
func NewElector(cfg *config.Config, st store.Store, log *slog.Logger) (*cluster.Elector, error) {
	pg, ok := st.(*postgres.Store)
	if !ok {
		return nil, errors.New(`[cluster] needs store.driver "postgres"`)
	}
	return cluster.New(pg.Pool(), cluster.Config{Name: cfg.Cluster.Name, Priority: cfg.Cluster.Priority,
		SIP: strings.Join(cfg.SIP.Listen, " "), Lease: cfg.Cluster.Lease.Duration, HandoverWait: cfg.Cluster.HandoverWait.Duration}, log), nil
}

// JoinCluster takes part in the election with el (NewElector over st)
// and serves SIP as a standby, every request answered 503 (OPTIONS too: a
// dispatcher marks this instance down), until this instance is the
// active one, or ctx ends (nil, nil). It then fences the store's writes
// by the term's epoch and returns the elector, still renewing the lease
// until ctx ends: the caller builds the App (New) and runs it, which is
// the restart path (registrations, answered calls and requests loaded,
// timers re-armed from their stored deadlines).
func JoinCluster(ctx context.Context, cfg *config.Config, st store.Store, el *cluster.Elector, log *slog.Logger) (*cluster.Elector, error) {
	pg := st.(*postgres.Store) // NewElector checked
	go el.Run(ctx)
	sip, err := sipserver.New(cfg.SIP, log)
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	sip.Route(sipserver.Handlers{Serving: func() bool { return false }})
	sip.Start(sctx)
	log.Info("cluster: standby (SIP answered 503 until active)", "name", cfg.Cluster.Name, "priority", cfg.Cluster.Priority)
	select {
	case <-el.Became():
	case <-ctx.Done():
	}
	cancel()
	sip.Close()
	if ctx.Err() != nil {
		return nil, nil
	}
	pg.SetEpoch(el.Epoch())
	return el, nil
}

// ClusterStatus is the cluster's state for the status API and the admin
// page (F37); nil for a single instance.
func (a *App) ClusterStatus(ctx context.Context) (*cluster.Status, error) {
	if a.Cluster == nil {
		return nil, nil
	}
	st, err := a.Cluster.Status(ctx)
	return &st, err
}

// acting reports whether this instance acts now: always alone, while its
// lease holds in a cluster.
func (a *App) acting() bool { return a.Cluster == nil || a.Cluster.Acting() }

// runActive runs the server for the term of a.Cluster: until ctx ends
// (nil) or the term does (ErrNotActive, with why).
func (a *App) runActive(ctx context.Context) error {
	a.Cluster.SetQuiet(func() bool { return a.B2BUA.Calls() == 0 })
	a.Metrics.Register(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "callbackd_cluster_active",
			Help: "1 while this instance is the cluster's active one and its lease holds (F35)."},
			func() float64 {
				if a.Cluster.Acting() {
					return 1
				}
				return 0
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "callbackd_cluster_epoch",
			Help: "The lease's epoch of this instance's term: one more at every takeover (F37)."},
			func() float64 { return float64(a.Cluster.Epoch()) }))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-a.Cluster.Lost():
			cancel()
		case <-ctx.Done():
		}
	}()
	err := a.run(ctx)
	select {
	case <-a.Cluster.Lost():
		return fmt.Errorf("%w: %s", ErrNotActive, a.Cluster.Why())
	default:
	}
	return err
}

// The Call Back service's actions toward phones (screens, alerts,
// recalls, calls placed) happen only while this instance acts: an
// active frozen past its lease and continued must not notify anyone a
// second time (the new active does).
func (p phones) SendText(dn, text string) int {
	if !p.acting() {
		return 0
	}
	return p.B2BUA.SendText(dn, text)
}

func (p phones) Alert(dn, about string, ring time.Duration) {
	if p.acting() {
		p.B2BUA.Alert(dn, about, ring)
	}
}

func (p phones) Hold(dn string) int {
	if !p.acting() {
		return 0
	}
	return p.B2BUA.Hold(dn)
}
