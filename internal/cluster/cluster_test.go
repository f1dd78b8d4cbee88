package cluster

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/callbackd/callbackd/internal/store"
	"github.com/callbackd/callbackd/internal/store/postgres"
	"github.com/callbackd/callbackd/internal/store/postgres/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// lease is the tests' lease where its expiry is the subject: short, so
// they wait little. longLease is where it is not: a shared, loaded box
// may stall a test's rounds for a second, which must not end a term.
const (
	lease     = time.Second
	longLease = time.Minute
)

// wait bounds waiting for what takes about a lease, on a loaded box.
const wait = 15 * time.Second

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// cluster opens one store per instance on a fresh database (each
// instance its own pool, as separate processes would).
func newCluster(t *testing.T, lease time.Duration) func(name string, prio int) (*Elector, *postgres.Store) {
	url := pgtest.DB(t)
	return func(name string, prio int) (*Elector, *postgres.Store) {
		st, err := postgres.Open(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return New(st.Pool(), Config{Name: name, Priority: prio, Lease: lease, HandoverWait: time.Hour}, quietLog), st
	}
}

// tickUntil ticks the electors every 50 ms until cond holds, failing
// after the deadline.
func tickUntil(t *testing.T, d time.Duration, cond func() bool, es ...*Elector) {
	t.Helper()
	end := time.Now().Add(d)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("not within %v", d)
		}
		for _, e := range es {
			e.Tick(context.Background())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func actives(es ...*Elector) (n int) {
	for _, e := range es {
		if e.Acting() {
			n++
		}
	}
	return n
}

// Three contenders: one active; when it dies (stops renewing) the best
// live standby takes over within the bound, and the dead one had stopped
// acting before (never two actives); its stale writes are fenced.
func TestF35_B3_ElectionExpiryAndFencing(t *testing.T) {
	// 3 s: b and c must stay live (heartbeats within a lease) through
	// a loaded moment for the order to be b's.
	const lease = 3 * time.Second
	join := newCluster(t, lease)
	a, sa := join("a", 1)
	b, _ := join("b", 2)
	c, _ := join("c", 3)
	ctx := context.Background()
	for _, e := range []*Elector{a, b, c} {
		e.Tick(ctx)
	}
	if !a.Acting() || actives(a, b, c) != 1 || a.Epoch() != 1 {
		t.Fatalf("acting a=%v b=%v c=%v, epoch %d", a.Acting(), b.Acting(), c.Acting(), a.Epoch())
	}
	sa.SetEpoch(a.Epoch())
	if err := sa.PutRequest(ctx, store.Request{ID: 1, Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}

	// a stops renewing (killed, frozen, cut off): b takes over, c stays.
	died := time.Now()
	overlap := false
	tickUntil(t, wait, func() bool {
		// b and c first: one of them acting, then a still acting, is
		// an overlap (the other order is not: a's term may end between).
		if others := b.Acting() || c.Acting(); others && a.Acting() {
			overlap = true
		}
		return b.Acting()
	}, c, b)
	took := time.Since(died)
	if overlap || a.Acting() || c.Acting() || b.Epoch() != 2 {
		t.Fatalf("overlap %v, a %v, c %v, b's epoch %d", overlap, a.Acting(), c.Acting(), b.Epoch())
	}
	// A figure, not asserted: the box may be loaded (the bound is the
	// lease + a round; the interop tests and bench/cluster measure it).
	t.Logf("takeover %v after the active's last renewal (lease %v)", took, lease)
	if err := sa.PutRequest(ctx, store.Request{ID: 2, Data: []byte(`{}`)}); !errors.Is(err, postgres.ErrFenced) {
		t.Fatalf("stale active's write: %v, want ErrFenced", err)
	}
	// a, continued, renews no more: its term has ended for good.
	a.Tick(ctx)
	termEnded(t, a)
}

// termEnded checks that e acts no more and said so (Lost).
func termEnded(t *testing.T, e *Elector) {
	t.Helper()
	if e.Acting() {
		t.Fatalf("%s still acts", e.c.Name)
	}
	select {
	case <-e.Lost():
	default:
		t.Fatalf("%s's Lost not closed", e.c.Name)
	}
}

// A better instance joining asks for the lease; the active hands over at
// a quiet moment only, releasing the lease: no wait for its expiry.
func TestF35_B3_F37_PriorityHandoverAtQuietMoment(t *testing.T) {
	join := newCluster(t, longLease)
	b, _ := join("b", 2)
	ctx := context.Background()
	b.Tick(ctx)
	if !b.Acting() {
		t.Fatal("b alone not active")
	}
	busy := true
	b.SetQuiet(func() bool { return !busy })
	a, _ := join("a", 1)
	for range 3 {
		a.Tick(ctx)
		b.Tick(ctx)
	}
	if !b.Acting() || a.Acting() {
		t.Fatalf("handover during a call: a %v, b %v", a.Acting(), b.Acting())
	}
	busy = false
	start := time.Now()
	b.Tick(ctx)
	if b.Acting() {
		t.Fatal("b still active when quiet")
	}
	a.Tick(ctx)
	if !a.Acting() {
		t.Fatalf("a not active after the handover (%v)", time.Since(start))
	}
	st, err := a.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Active != "a" || len(st.Members) != 2 || st.Members[0].Name != "a" || !st.Members[0].Active || st.Members[1].Active ||
		st.Total != 2 || st.Takeovers[0].Reason != "handover" || st.Takeovers[1].Reason != "first" {
		t.Fatalf("F37 status %+v", st)
	}
	var reason, previous string
	if err := a.db.QueryRow(ctx, `SELECT reason, previous FROM cluster_takeovers WHERE epoch = $1`, a.Epoch()).Scan(&reason, &previous); err != nil {
		t.Fatal(err)
	}
	if reason != "handover" || previous != "b" || b.Why() != "handed over to a" {
		t.Fatalf("takeover %q from %q; b: %q", reason, previous, b.Why())
	}
}

// A handover asked for by an instance that then dies is forgotten: the
// active keeps the lease, quiet or not, and another may ask.
func TestF35_B3_HandoverRequestOfADeadInstanceForgotten(t *testing.T) {
	join := newCluster(t, longLease)
	b, _ := join("b", 2)
	ctx := context.Background()
	b.Tick(ctx)
	b.SetQuiet(func() bool { return false })
	a, _ := join("a", 1)
	a.Tick(ctx) // asks, then dies: its last heartbeat long ago
	if _, err := b.db.Exec(ctx, `UPDATE cluster_members SET seen_at = clock_timestamp() - interval '1 hour' WHERE name = 'a'`); err != nil {
		t.Fatal(err)
	}
	b.Tick(ctx)
	b.SetQuiet(func() bool { return true })
	b.Tick(ctx)
	if !b.Acting() {
		t.Fatalf("b handed over to a dead instance: %s", b.Why())
	}
	var to string
	if err := b.db.QueryRow(ctx, `SELECT handover_to FROM cluster_lease`).Scan(&to); err != nil || to != "" {
		t.Fatalf("handover_to %q (%v), want it forgotten", to, err)
	}
}

// An active cut from its database stops acting within its lease, on its
// own clock, and a standby takes over.
func TestF35_B3_DatabaseCutStopsTheActive(t *testing.T) {
	join := newCluster(t, lease)
	a, sa := join("a", 1)
	b, _ := join("b", 2)
	ctx := context.Background()
	a.Tick(ctx)
	b.Tick(ctx)
	sa.Pool().Close() // a's connections gone: its rounds fail
	tickUntil(t, wait, func() bool { return b.Acting() }, a, b)
	termEnded(t, a)
}

// A frozen active (its clock moved past its term, as after SIGSTOP and
// SIGCONT) acts no more, before its renewal loop runs.
func TestF35_B3_FrozenActiveDoesNotAct(t *testing.T) {
	join := newCluster(t, lease)
	a, _ := join("a", 1)
	a.Tick(context.Background())
	if !a.Acting() {
		t.Fatal("a not active")
	}
	a.now = func() time.Time { return time.Now().Add(lease) }
	if a.Acting() {
		t.Fatal("a acts after its term")
	}
}
