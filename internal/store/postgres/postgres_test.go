package postgres

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/callbackd/callbackd/internal/store"
	"github.com/callbackd/callbackd/internal/store/postgres/pgtest"
	"github.com/callbackd/callbackd/internal/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// The suite every backend passes, against a real PostgreSQL (F35).
func TestF35_PostgresStoreSuite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		b := Backend{URL: pgtest.DB(t)}
		return b.Open
	})
}

// Migrations run once, whole, and a second start (or two at once) finds
// the schema current.
func TestF35_MigrationsVersioned(t *testing.T) {
	url := pgtest.DB(t)
	ctx := context.Background()
	errs := make(chan error, 2)
	stores := make(chan *Store, 2)
	for range 2 {
		go func() {
			s, err := Open(ctx, url)
			errs <- err
			stores <- s
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		s := <-stores
		defer s.Close()
		v, err := SchemaVersion(ctx, s.Pool())
		if err != nil || v != len(migrations) {
			t.Fatalf("schema version %d (%v), want %d", v, err, len(migrations))
		}
	}
}

// leased opens a store on a new database whose lease instance "a" holds
// for a minute with epoch; closed at the end of tb.
func leased(tb testing.TB, epoch int64) *Store {
	tb.Helper()
	s, err := Open(context.Background(), pgtest.DB(tb))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	if _, err := s.Pool().Exec(context.Background(), `UPDATE cluster_lease SET holder = 'a', epoch = $1,
		expires_at = clock_timestamp() + interval '1 minute'`, epoch); err != nil {
		tb.Fatal(err)
	}
	return s
}

// A write fenced by an epoch that is not the lease's fails, and stores
// nothing; the lease's own epoch writes.
func TestF35_WritesFencedByEpoch(t *testing.T) {
	ctx := context.Background()
	s := leased(t, 7)
	s.SetEpoch(6)
	if err := s.PutRequest(ctx, store.Request{ID: 1, Data: []byte(`{}`)}); !errors.Is(err, ErrFenced) {
		t.Fatalf("stale epoch's write: %v, want ErrFenced", err)
	}
	s.SetEpoch(7)
	if err := s.PutRequest(ctx, store.Request{ID: 2, Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	// An expired lease fences its own holder too.
	if _, err := s.Pool().Exec(ctx, `UPDATE cluster_lease SET expires_at = clock_timestamp() - interval '1 second'`); err != nil {
		t.Fatal(err)
	}
	if err := s.PutRequest(ctx, store.Request{ID: 3, Data: []byte(`{}`)}); !errors.Is(err, ErrFenced) {
		t.Fatalf("expired lease's write: %v, want ErrFenced", err)
	}
	got, _ := s.Requests(ctx)
	if len(got) != 1 || got[0].ID != 2 {
		t.Fatalf("stored %+v, want request 2 only", got)
	}
}

// -check-config and a refused start name the reason, never the password.
func TestF35_CheckWritableHidesPassword(t *testing.T) {
	url := pgtest.DB(t)
	if err := CheckWritable(url); err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(url, "postgres@", "nobody:s3cret@", 1)
	err := CheckWritable(bad)
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("CheckWritable(wrong user) = %v", err)
	}
	if _, err := Open(context.Background(), bad); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("Open(wrong user) = %v", err)
	}
}

// -backup writes a pg_dump of the database, refusing an existing file.
func TestF35_Backup(t *testing.T) {
	url := pgtest.DB(t)
	s, err := Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutRequest(context.Background(), store.Request{ID: 42, Data: []byte(`{"x":1}`)}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	dest := filepath.Join(t.TempDir(), "copy.sql")
	if err := Backup(url, dest); err != nil {
		t.Fatal(err)
	}
	out, _ := os.ReadFile(dest)
	if !strings.Contains(string(out), "COPY public.requests") || !strings.Contains(string(out), "42\t") {
		t.Fatalf("backup lacks the requests:\n%.500s", out)
	}
	if err := Backup(url, dest); err == nil {
		t.Fatal("backup over an existing file accepted")
	}
}

// BenchmarkF35_PutRequest: one confirmed write (committed before it
// returns), alone and from 8 goroutines, without and with the lease's
// fencing (a transaction that first locks the lease row). Run with a
// fixed count, e.g. -bench PutRequest -benchtime 2000x.
func BenchmarkF35_PutRequest(b *testing.B) {
	ctx := context.Background()
	s := leased(b, 1)
	data := []byte(`{"id":1,"caller":"1001","callee":"1002","kind":"CCBS","state":"active"}`)
	var id atomic.Int64
	for _, epoch := range []int64{0, 1} {
		s.SetEpoch(epoch)
		name := map[int64]string{0: "unfenced", 1: "fenced"}[epoch]
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if err := s.PutRequest(ctx, store.Request{ID: id.Add(1), Data: data}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"-8", func(b *testing.B) {
			b.SetParallelism(4) // 2 cores x 4 = 8 writers
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := s.PutRequest(ctx, store.Request{ID: id.Add(1), Data: data}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
