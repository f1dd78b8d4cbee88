package sqlite

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callbackd/callbackd/internal/store"
	"github.com/callbackd/callbackd/internal/store/storetest"
)

// The backend-neutral suite, through store.Store.
func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		return Backend{Path: filepath.Join(t.TempDir(), "db", "test.db")}.Open
	})
}

func BenchmarkPutRegistrationParallel(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "b.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	b.SetParallelism(16)
	var n int64
	var mu sync.Mutex
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			mu.Lock()
			n++
			i := n
			mu.Unlock()
			r := store.Registration{DN: "1001", Contact: "sip:x@127.0.0.1:" + time.Duration(i).String(), Expires: time.Now()}
			if err := s.PutRegistration(ctx, r); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// A file that is not a database is refused at open with one line that
// says so, not at the first write.
func TestOpenRefusesNotADatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "test.db")
	if err := os.WriteFile(path, bytes.Repeat([]byte("not a database "), 512), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path)
	if err == nil {
		s.Close()
		t.Fatal("opened a file that is not a database")
	}
	if !strings.Contains(err.Error(), "not a SQLite database") || !strings.Contains(err.Error(), path) {
		t.Errorf("error %q, want the path and 'not a SQLite database'", err)
	}
}

// The start write is kept: the meta table records the start.
func TestOpenWritesStartTime(t *testing.T) {
	path := filepath.Join(t.TempDir(), "test.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var v string
	if err := s.db.QueryRow(`SELECT value FROM meta WHERE name = 'started'`).Scan(&v); err != nil {
		t.Fatal(err)
	}
	if _, err := time.Parse(time.RFC3339, v); err != nil {
		t.Errorf("started = %q: %v", v, err)
	}
}

// CheckWritable creates nothing: a missing folder is judged by the
// nearest existing one and stays missing.
func TestCheckWritableCreatesNothing(t *testing.T) {
	dir := t.TempDir()
	if err := CheckWritable(filepath.Join(dir, "a", "b", "test.db")); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("left %v behind", ents)
	}
	f := filepath.Join(dir, "file")
	os.WriteFile(f, nil, 0o600)
	if err := CheckWritable(filepath.Join(f, "test.db")); err == nil || !strings.Contains(err.Error(), f) {
		t.Errorf("a file as the folder: %v", err)
	}
}

// Backup copies what is committed, the WAL's part included, while the
// store stays open and writing; it refuses an existing destination and a
// missing source.
func TestBackupWhileOpen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "live.db")
	ctx := context.Background()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := 0; i < 50; i++ {
		r := store.Registration{DN: "1001", Contact: fmt.Sprintf("sip:1001@127.0.0.1:%d", 5000+i), Source: "127.0.0.1:5070", Transport: "UDP", CallID: "c", CSeq: 1, Expires: time.Now().Add(time.Hour)}
		if err := s.PutRegistration(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	dest := filepath.Join(dir, "copy.db")
	if err := Backup(path, dest); err != nil {
		t.Fatal(err)
	}
	if err := s.PutRegistration(ctx, store.Registration{DN: "1002", Contact: "sip:x", Expires: time.Now()}); err != nil {
		t.Fatalf("the store after a backup: %v", err)
	}
	c, err := Open(dest)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	regs, err := c.Registrations(ctx)
	if err != nil || len(regs) != 50 {
		t.Errorf("backup holds %d registrations (%v), want 50", len(regs), err)
	}
	if err := Backup(path, dest); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("backup over an existing file: %v", err)
	}
	if err := Backup(filepath.Join(dir, "none.db"), filepath.Join(dir, "x.db")); err == nil {
		t.Error("backup of a missing database succeeded")
	}
	if _, err := os.Stat(filepath.Join(dir, "none.db")); err == nil {
		t.Error("backup created the missing database")
	}
}

// BenchmarkCallPutDelete is the store's share of the call load: each
// answered call is put (a ~700-byte record) and deleted when it ends, with
// 1000 calls stored at any time (2000 calls/s of 500 ms), by one writer
// after the other (moderate load: a commit per write) or 16 at once (the
// B2BUA at high load: group commits).
func BenchmarkCallPutDelete(b *testing.B) {
	const live = 1000
	for _, writers := range []int{1, 16} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			s, err := Open(filepath.Join(b.TempDir(), "b.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ctx := context.Background()
			data := bytes.Repeat([]byte("x"), 700)
			var n atomic.Int64
			// step ends the call in ring[i], if any, and puts a new one there.
			step := func(ring []string, i int) bool {
				if ring[i] != "" {
					if err := s.DeleteCall(ctx, ring[i]); err != nil {
						b.Error(err)
						return false
					}
				}
				ring[i] = fmt.Sprintf("call-%d@127.0.0.1", n.Add(1))
				if err := s.PutCall(ctx, store.Call{ID: ring[i], Data: data}); err != nil {
					b.Error(err)
					return false
				}
				return true
			}
			b.ReportAllocs()
			if writers == 1 {
				ring := make([]string, live)
				for i := range b.N {
					if !step(ring, i%live) {
						return
					}
				}
				return
			}
			b.SetParallelism(writers) // per GOMAXPROCS: at least 16 writers
			b.RunParallel(func(pb *testing.PB) {
				ring := make([]string, live/writers) // this writer's calls still up
				for i := 0; pb.Next() && step(ring, i); i = (i + 1) % len(ring) {
				}
			})
		})
	}
}

// Under steady writes the WAL is started again from its beginning (the
// writer checkpoints every checkpointEvery commits), so its file stops
// growing: before, it grew by every commit for as long as the load lasted
// (14 MB a second at 1000 calls/s), and each commit got slower with it.
func TestWALBoundedUnderSteadyWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "test.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	data := bytes.Repeat([]byte("x"), 700)
	write := func(from, to int) {
		for i := from; i < to; i++ {
			id := fmt.Sprintf("call-%d", i)
			if err := s.PutCall(ctx, store.Call{ID: id, Data: data}); err != nil {
				t.Fatal(err)
			}
			if i >= 100 { // about 100 calls up at any time, as under load
				if err := s.DeleteCall(ctx, fmt.Sprintf("call-%d", i-100)); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	walSize := func() int64 {
		fi, err := os.Stat(path + "-wal")
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	write(0, checkpointEvery/2)
	half := walSize() // what half of checkpointEvery's commits write
	write(checkpointEvery/2, 8*checkpointEvery)
	if got := walSize(); got > 4*half {
		t.Fatalf("WAL %d bytes after %d commits; %d after %d: it keeps growing", got, 8*checkpointEvery, half, checkpointEvery/2)
	}
}
