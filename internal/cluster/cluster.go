// Package cluster elects the one active instance among several callbackd
// sharing a PostgreSQL store (issue 17, F35): a lease row with an epoch,
// in the tables of internal/store/postgres's migration 2.
//
// Why a lease and not a session advisory lock alone: a frozen active
// (SIGSTOP, a stalled VM) keeps its TCP session, so its lock, forever; a
// lease ends by itself. The database's clock decides when a lease has
// ended, so the instances' clocks do not matter; each instance measures
// its own term on its monotonic clock.
//
// The bound: the active renews every Lease/4. A renewal sent at t0 that
// succeeds moves the lease's end to (the database's now) + Lease, which
// is after t0 + Lease; the active acts only until t0 + Lease - Lease/8
// (the eighth allows for clocks running at slightly different rates). So
// an active that cannot renew (hung, frozen, cut from the database) has
// stopped acting before any standby can take the lease, and a standby
// takes it within Lease/4 of its end. Writes carry the epoch as well
// (postgres.Store.SetEpoch): a stale active's write fails.
//
// Order: when the lease is free, the live instance (heartbeat within a
// Lease) with the lowest priority, then the lowest name, takes it. A
// better instance joining asks for a handover (handover_to); the active
// hands over once quiet (no call in progress) or after HandoverWait: it
// stops acting, then releases the lease.
//
// An Elector serves one term: once this instance stops acting it stays
// stopped, and the process starts again as a standby (cmd/callbackd),
// so nothing of the old term's state lives on.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Config is this instance's place in the cluster ([cluster]).
type Config struct {
	Name         string
	Priority     int // lower is preferred
	SIP          string
	Lease        time.Duration
	HandoverWait time.Duration
}

// Elector takes part in the election for one instance.
type Elector struct {
	db    *pgxpool.Pool
	c     Config
	log   *slog.Logger
	quiet atomic.Pointer[func() bool]
	now   func() time.Time // the monotonic clock (tests move it)

	mu            sync.Mutex
	epoch         int64     // >0 while this instance holds (or held) the lease
	validUntil    time.Time // acting until then, unless renewed
	stopped       bool      // the term has ended
	handoverSince time.Time // when a better instance asked for the lease
	became        chan struct{}
	lost          chan struct{}
	done          chan struct{} // Run has returned
	why           string
}

// New builds the elector; Run takes part.
func New(db *pgxpool.Pool, c Config, log *slog.Logger) *Elector {
	return &Elector{db: db, c: c, log: log.With("cluster", c.Name), now: time.Now,
		became: make(chan struct{}), lost: make(chan struct{}), done: make(chan struct{})}
}

// SetQuiet gives the test of a quiet moment for a handover (no call in
// progress); without one, every moment is quiet.
func (e *Elector) SetQuiet(f func() bool) { e.quiet.Store(&f) }

// Became is closed when this instance becomes the active one.
func (e *Elector) Became() <-chan struct{} { return e.became }

// Lost is closed when this instance, having been active, stops acting.
func (e *Elector) Lost() <-chan struct{} { return e.lost }

// Done is closed once Run has returned (the lease released).
func (e *Elector) Done() <-chan struct{} { return e.done }

// Why says why the term ended.
func (e *Elector) Why() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.why
}

// Epoch is the lease's epoch of this instance's term (0 before).
func (e *Elector) Epoch() int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.epoch
}

// Acting reports whether this instance may act now: it holds the lease
// and its term has not run out. Checked where the server acts (SIP
// served, notifications, recalls), so a frozen active that is continued
// acts no more even before its renewal loop runs.
func (e *Elector) Acting() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.epoch > 0 && !e.stopped && e.now().Before(e.validUntil)
}

func (e *Elector) renewEvery() time.Duration { return e.c.Lease / 4 }

// Run takes part until ctx ends; an active then releases the lease, so a
// standby takes over at once rather than after the lease.
func (e *Elector) Run(ctx context.Context) {
	defer close(e.done)
	t := time.NewTicker(e.renewEvery())
	defer t.Stop()
	for {
		e.Tick(ctx)
		select {
		case <-ctx.Done():
			e.stop("stopped")
			e.release()
			return
		case <-t.C:
		}
	}
}

// Tick is one round: heartbeat, then renew (active) or try to take the
// lease (standby). Bounded by a renewal period.
func (e *Elector) Tick(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, e.renewEvery())
	defer cancel()
	e.mu.Lock()
	epoch, stopped, valid := e.epoch, e.stopped, e.validUntil
	e.mu.Unlock()
	if stopped {
		return
	}
	if epoch > 0 && !e.now().Before(valid) {
		e.stop("lease not renewed in time")
		return
	}
	if _, err := e.db.Exec(ctx, `INSERT INTO cluster_members (name, priority, sip, seen_at, started_at)
		VALUES ($1, $2, $3, clock_timestamp(), clock_timestamp())
		ON CONFLICT (name) DO UPDATE SET priority = EXCLUDED.priority, sip = EXCLUDED.sip, seen_at = EXCLUDED.seen_at`,
		e.c.Name, e.c.Priority, e.c.SIP); err != nil {
		e.log.Debug("cluster heartbeat failed", "error", err)
		return
	}
	var err error
	if epoch > 0 {
		err = e.renew(ctx, epoch)
	} else {
		err = e.contend(ctx)
	}
	if err != nil && ctx.Err() == nil {
		e.log.Warn("cluster: database round failed", "error", err)
	}
}

func (e *Elector) lease() string { return fmt.Sprintf("%d milliseconds", e.c.Lease.Milliseconds()) }

// renew extends this instance's lease, and hands over when asked.
func (e *Elector) renew(ctx context.Context, epoch int64) error {
	t0 := e.now()
	var handoverTo string
	// A handover asked for by an instance no longer live is forgotten, so
	// that it neither moves the lease for nothing nor blocks another's.
	err := e.db.QueryRow(ctx, `UPDATE cluster_lease SET expires_at = clock_timestamp() + $3::interval,
			handover_to = CASE WHEN EXISTS (SELECT 1 FROM cluster_members m WHERE m.name = cluster_lease.handover_to
				AND m.seen_at > clock_timestamp() - $3::interval) THEN handover_to ELSE '' END
		WHERE id = 1 AND holder = $1 AND epoch = $2 AND expires_at > clock_timestamp()
		RETURNING handover_to`, e.c.Name, epoch, e.lease()).Scan(&handoverTo)
	if errors.Is(err, pgx.ErrNoRows) {
		e.stop("lease taken or expired")
		return nil
	}
	if err != nil {
		return err
	}
	e.mu.Lock()
	if !e.stopped {
		e.validUntil = t0.Add(e.c.Lease - e.c.Lease/8)
	}
	if handoverTo == "" {
		e.handoverSince = time.Time{}
	} else if e.handoverSince.IsZero() {
		e.handoverSince = t0
		e.log.Info("cluster: a better instance asks for the lease; handing over at a quiet moment", "to", handoverTo,
			"wait_at_most", e.c.HandoverWait)
	}
	asked := e.handoverSince
	e.mu.Unlock()
	if handoverTo == "" {
		return nil
	}
	quiet := true
	if q := e.quiet.Load(); q != nil {
		quiet = (*q)()
	}
	if quiet || e.now().Sub(asked) >= e.c.HandoverWait {
		e.stop("handed over to " + handoverTo)
		e.release()
	}
	return nil
}

// contend takes the lease if it is free and no better live instance
// would, or asks the active for it if this instance is better.
func (e *Elector) contend(ctx context.Context) error {
	var won int64 // the epoch taken
	var t0 time.Time
	err := pgx.BeginFunc(ctx, e.db, func(tx pgx.Tx) error {
		var holder, handoverTo string
		var free bool
		var holderPriority *int
		// FOR UPDATE waits for the writes in flight of the holder (they
		// hold the row FOR SHARE: postgres fencing).
		err := tx.QueryRow(ctx, `SELECT l.holder, l.expires_at < clock_timestamp(), l.handover_to, m.priority
			FROM cluster_lease l LEFT JOIN cluster_members m ON m.name = l.holder
			WHERE l.id = 1 FOR UPDATE OF l`).Scan(&holder, &free, &handoverTo, &holderPriority)
		if err != nil {
			return err
		}
		if !free {
			if holder != e.c.Name && handoverTo == "" && holderPriority != nil && better(e.c.Priority, e.c.Name, *holderPriority, holder) {
				_, err = tx.Exec(ctx, `UPDATE cluster_lease SET handover_to = $1 WHERE id = 1`, e.c.Name)
			}
			return err
		}
		var betterLive bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM cluster_members
			WHERE name <> $1 AND name <> $2 AND seen_at > clock_timestamp() - $3::interval
			AND (priority < $4 OR (priority = $4 AND name < $1)))`, e.c.Name, holder, e.lease(), e.c.Priority).Scan(&betterLive); err != nil {
			return err
		}
		if betterLive {
			return nil
		}
		t0 = e.now()
		var epoch int64
		if err := tx.QueryRow(ctx, `UPDATE cluster_lease SET holder = $1, epoch = epoch + 1, handover_to = '',
			expires_at = clock_timestamp() + $2::interval, since = clock_timestamp() WHERE id = 1 RETURNING epoch`,
			e.c.Name, e.lease()).Scan(&epoch); err != nil {
			return err
		}
		reason := "lease expired"
		if handoverTo == e.c.Name {
			reason = "handover"
		} else if holder == "" {
			reason = "first"
		}
		if _, err := tx.Exec(ctx, `INSERT INTO cluster_takeovers (epoch, holder, previous, at, reason)
			VALUES ($1, $2, $3, clock_timestamp(), $4)`, epoch, e.c.Name, holder, reason); err != nil {
			return err
		}
		won = epoch
		e.log.Info("cluster: taking the lease", "epoch", epoch, "previous", holder, "reason", reason)
		return nil
	})
	if err != nil || won == 0 {
		return err
	}
	// Committed: the term runs from before the UPDATE was sent.
	e.mu.Lock()
	e.epoch, e.validUntil = won, t0.Add(e.c.Lease-e.c.Lease/8)
	e.mu.Unlock()
	e.log.Info("cluster: this instance is active", "epoch", won)
	close(e.became)
	return nil
}

// better reports whether (p, name) is preferred over (q, other).
func better(p int, name string, q int, other string) bool {
	return p < q || p == q && name < other
}

// stop ends the term: this instance acts no more.
func (e *Elector) stop(why string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopped {
		return
	}
	e.stopped, e.why = true, why
	if e.epoch > 0 {
		e.log.Warn("cluster: this instance stops acting", "epoch", e.epoch, "why", why)
		close(e.lost)
	}
}

// release gives up the lease of this instance's term, if it still holds
// it, so that the next instance need not wait for it to expire. Called
// once stopped: nothing acts any more.
func (e *Elector) release() {
	e.mu.Lock()
	epoch := e.epoch
	e.mu.Unlock()
	if epoch == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), e.renewEvery())
	defer cancel()
	if _, err := e.db.Exec(ctx, `UPDATE cluster_lease SET expires_at = '-infinity'
		WHERE id = 1 AND holder = $1 AND epoch = $2`, e.c.Name, epoch); err != nil {
		e.log.Warn("cluster: lease not released; it expires by itself", "error", err)
	}
}
