// Package sqlite is the embedded store backend ([store] driver "sqlite",
// the default): store.Store in one SQLite database file (pure Go, no cgo),
// its schema, its writer, the online backup (-backup) and the writable
// check (-check-config).
//
// Writes go through one writer goroutine that groups whatever is waiting into
// one transaction (group commit): each caller still waits until its own write
// is durable, which is what "persisted before it is confirmed" needs, while
// many concurrent REGISTERs cost one fsync instead of one each.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver (pure Go, no cgo)

	"github.com/callbackd/callbackd/internal/store"
)

// Backend is SQLite at a path ([store] path).
type Backend struct{ Path string }

// Open opens the database; Backup and CheckWritable act on its file.
func (b Backend) Open() (store.Store, error) {
	s, err := Open(b.Path)
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return s, nil
}
func (b Backend) Backup(dest string) error { return Backup(b.Path, dest) }
func (b Backend) CheckWritable() error     { return CheckWritable(b.Path) }

var _ store.Store = (*SQLite)(nil)

// SQLite is the embedded store.
type SQLite struct {
	db     *sql.DB
	writes chan write
	done   chan struct{}
	stop   chan struct{} // ends the checkpointer
	close  sync.Once
}

const schema = `
CREATE TABLE IF NOT EXISTS registrations (
	dn TEXT NOT NULL,
	contact TEXT NOT NULL,
	source TEXT NOT NULL,
	transport TEXT NOT NULL,
	call_id TEXT NOT NULL,
	cseq INTEGER NOT NULL,
	user_agent TEXT NOT NULL,
	expires INTEGER NOT NULL, -- unix ms
	PRIMARY KEY (dn, contact)
);
CREATE TABLE IF NOT EXISTS requests (
	id INTEGER PRIMARY KEY,
	data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS calls (
	id TEXT PRIMARY KEY,
	data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS lines (
	dn TEXT PRIMARY KEY,
	data BLOB NOT NULL,
	deleted INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS settings (
	name TEXT PRIMARY KEY,
	data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS subscriptions (
	id TEXT PRIMARY KEY,
	data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
	name TEXT PRIMARY KEY,
	value TEXT NOT NULL
);
`

// Open opens (creating if needed) the database file at path.
//
// It refuses a store it could not write to, with one line that names the
// path and the reason, instead of serving until the first REGISTER fails:
// CheckWritable first (the system's words: "permission denied"), then a
// real write, in a transaction, of the start time into the meta table.
func Open(path string) (*SQLite, error) {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, cannot("create folder", dir, err)
		}
	}
	if err := CheckWritable(path); err != nil {
		return nil, err
	}
	// WAL lets readers run beside the writer. synchronous=NORMAL: a commit
	// is in the OS before it returns, so it survives a crash or kill -9 of
	// this process; only a power loss can take the last commits (those are
	// made durable at the next WAL checkpoint). FULL would add an fsync of
	// 10-100 ms to every confirmation, which the notification path cannot
	// afford.
	//
	// wal_autocheckpoint(0): no commit ever runs a checkpoint (and its
	// fsync) inline; checkpointer does it in the background instead, so a
	// confirmation never waits for one.
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=busy_timeout(5000)&_pragma=wal_autocheckpoint(0)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(4)
	if _, err := db.Exec(schema); err != nil {
		db.Close()
		return nil, sqliteReason(path, err)
	}
	if err := writeStarted(db); err != nil {
		db.Close()
		return nil, sqliteReason(path, err)
	}
	s := &SQLite{db: db, writes: make(chan write, 1024), done: make(chan struct{}), stop: make(chan struct{})}
	go s.writer()
	go s.checkpointer()
	return s, nil
}

// writeStarted proves at start that the database takes writes: it
// records the start time, in a transaction, as every write is made.
func writeStarted(db *sql.DB) error {
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	if _, err := tx.Exec(`INSERT OR REPLACE INTO meta (name, value) VALUES ('started', ?)`,
		time.Now().UTC().Format(time.RFC3339)); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// checkpointer copies the WAL into the database file once a second (a
// PASSIVE checkpoint does not block the writer), keeping the WAL short
// while writes are few. Under steady writes it never completes (commits
// land behind it while it copies), so the WAL is never started again from
// its beginning: the writer checkpoints itself then (checkpointEvery).
func (s *SQLite) checkpointer() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			if _, err := s.db.Exec(`PRAGMA wal_checkpoint(PASSIVE)`); err != nil {
				return
			}
		}
	}
}

// maxBatch bounds one group commit so a flood of writes still commits often.
const maxBatch = 256

// checkpointEvery: after this many commits the writer copies the WAL into
// the database itself, between two commits, so the copy completes and the
// next commit starts the WAL again from its beginning (SQLite restarts
// the log only once every frame is copied, and nobody writes meanwhile).
// Without it the WAL grew by 14 MB a second at 1000 calls/s, and every
// commit got slower with it (its index is searched for each page read).
// The commits queued meanwhile wait for the copy: ~2 ms for 256 commits'
// frames (bench/load, 1000 calls/s, four times a second).
const checkpointEvery = 256

// lazyDelay bounds how long a lazy write (an ended call's removal) waits
// for a commit to ride along with.
const lazyDelay = time.Second

type write struct {
	query string
	args  []any
	res   chan error // nil: a lazy write, nobody waits for it
}

// writer commits what is waiting in one transaction. A lazy write does not
// cause a commit of its own: it goes with the next commit someone waits
// for, or after lazyDelay. At call load that halves the commits (each
// answered call is put, then deleted when it ends), and a commit, its WAL
// frames and file locks, is what a write costs.
func (s *SQLite) writer() {
	defer close(s.done)
	w := newWriterConn(s.db)
	defer w.close()
	batch := make([]write, 0, maxBatch)
	var lazySince <-chan time.Time // set while lazy writes wait
	timer := time.NewTimer(lazyDelay)
	timer.Stop()
	commits := 0 // since the last checkpoint
	for {
		fired := false
		select {
		case wr, ok := <-s.writes:
			if !ok {
				w.commit(batch) // the lazy writes still waiting
				return
			}
			batch = append(batch, wr)
		case <-lazySince:
			fired = true
		}
	fill:
		for len(batch) < maxBatch {
			select {
			case wr, ok := <-s.writes:
				if !ok {
					break fill
				}
				batch = append(batch, wr)
			default:
				break fill
			}
		}
		waited := false
		for _, wr := range batch {
			waited = waited || wr.res != nil
		}
		if !waited && len(batch) < maxBatch && !fired {
			if lazySince == nil {
				timer.Reset(lazyDelay)
				lazySince = timer.C
			}
			continue
		}
		timer.Stop()
		lazySince = nil
		err := w.commit(batch)
		for _, wr := range batch {
			if wr.res != nil {
				wr.res <- err
			}
		}
		clear(batch)
		batch = batch[:0]
		if commits++; commits >= checkpointEvery {
			commits = 0
			w.exec(`PRAGMA wal_checkpoint(PASSIVE)`) // busy with the background one: the next time
		}
	}
}

// writerConn is the writer's own connection, with its statements prepared
// once each: parsing the SQL of every write again (and of BEGIN and COMMIT)
// cost about as much as the write. The transaction is this connection's
// (BEGIN ... COMMIT on it), so no statement is prepared again per
// transaction, as database/sql's Tx.Stmt would.
type writerConn struct {
	db    *sql.DB
	conn  *sql.Conn
	stmts map[string]*sql.Stmt
}

func newWriterConn(db *sql.DB) *writerConn { return &writerConn{db: db, stmts: map[string]*sql.Stmt{}} }

func (w *writerConn) stmt(query string) (*sql.Stmt, error) {
	ctx := context.Background()
	if w.conn == nil {
		c, err := w.db.Conn(ctx)
		if err != nil {
			return nil, err
		}
		w.conn = c
	}
	if st := w.stmts[query]; st != nil {
		return st, nil
	}
	st, err := w.conn.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	w.stmts[query] = st
	return st, nil
}

func (w *writerConn) exec(query string, args ...any) error {
	st, err := w.stmt(query)
	if err == nil {
		_, err = st.Exec(args...)
	}
	return err
}

// commit runs the batch in one transaction.
func (w *writerConn) commit(batch []write) error {
	if err := w.exec("BEGIN"); err != nil {
		w.reset()
		return err
	}
	for _, wr := range batch {
		if wr.query == "" {
			continue // a barrier (flush)
		}
		if err := w.exec(wr.query, wr.args...); err != nil {
			w.exec("ROLLBACK")
			return err
		}
	}
	if err := w.exec("COMMIT"); err != nil {
		w.exec("ROLLBACK")
		return err
	}
	return nil
}

// reset drops the connection after an error that may have left it in a
// transaction; the next batch takes a fresh one.
func (w *writerConn) reset() {
	w.close()
	w.conn, w.stmts = nil, map[string]*sql.Stmt{}
}

func (w *writerConn) close() {
	for _, st := range w.stmts {
		st.Close()
	}
	if w.conn != nil {
		w.conn.Close()
	}
}

func (s *SQLite) exec(ctx context.Context, query string, args ...any) error {
	w := write{query: query, args: args, res: make(chan error, 1)}
	select {
	case s.writes <- w:
	case <-ctx.Done():
		return ctx.Err()
	}
	// Once queued the write will happen; wait for it even if ctx ends, so a
	// caller never confirms what is not stored nor drops what is.
	return <-w.res
}

// PutRegistration inserts or replaces a binding.
func (s *SQLite) PutRegistration(ctx context.Context, r store.Registration) error {
	return s.exec(ctx, `INSERT OR REPLACE INTO registrations
		(dn, contact, source, transport, call_id, cseq, user_agent, expires)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		r.DN, r.Contact, r.Source, r.Transport, r.CallID, int64(r.CSeq), r.UserAgent, r.Expires.UnixMilli())
}

// DeleteRegistration removes one binding; removing a missing one is no error.
func (s *SQLite) DeleteRegistration(ctx context.Context, dn, contact string) error {
	return s.exec(ctx, `DELETE FROM registrations WHERE dn = ? AND contact = ?`, dn, contact)
}

// Registrations returns every stored binding, expired ones included: the
// registrar decides what has expired.
func (s *SQLite) Registrations(ctx context.Context) ([]store.Registration, error) {
	// Sized first: a start with 100k registrations spent a tenth of the
	// read growing the slice.
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM registrations`).Scan(&n); err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT dn, contact, source, transport, call_id, cseq, user_agent, expires
		FROM registrations ORDER BY dn, contact`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make([]store.Registration, 0, n)
	for rows.Next() {
		var r store.Registration
		var cseq, exp int64
		if err := rows.Scan(&r.DN, &r.Contact, &r.Source, &r.Transport, &r.CallID, &cseq, &r.UserAgent, &exp); err != nil {
			return nil, err
		}
		r.CSeq = uint32(cseq)
		r.Expires = time.UnixMilli(exp)
		out = append(out, r)
	}
	return out, rows.Err()
}

// PutRequest inserts or replaces a Call Back request.
func (s *SQLite) PutRequest(ctx context.Context, r store.Request) error {
	if r.ID <= 0 {
		return errors.New("store: request without id")
	}
	return s.exec(ctx, `INSERT OR REPLACE INTO requests (id, data) VALUES (?, ?)`, r.ID, r.Data)
}

// DeleteRequest removes a Call Back request.
func (s *SQLite) DeleteRequest(ctx context.Context, id int64) error {
	return s.exec(ctx, `DELETE FROM requests WHERE id = ?`, id)
}

// Requests returns every stored Call Back request in id order.
func (s *SQLite) Requests(ctx context.Context) ([]store.Request, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, data FROM requests ORDER BY id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Request
	for rows.Next() {
		var r store.Request
		if err := rows.Scan(&r.ID, &r.Data); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// PutCall stores an answered call.
func (s *SQLite) PutCall(ctx context.Context, c store.Call) error {
	return s.exec(ctx, `INSERT OR REPLACE INTO calls (id, data) VALUES (?, ?)`, c.ID, c.Data)
}

// DeleteCall forgets an ended call. It is a lazy write: it returns at once
// and is committed with the next write (within lazyDelay). A crash in
// between leaves the ended call stored: the restart restores it and its
// audit (OPTIONS, answered 481) ends it again.
func (s *SQLite) DeleteCall(ctx context.Context, id string) error {
	select {
	case s.writes <- write{query: `DELETE FROM calls WHERE id = ?`, args: []any{id}}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Calls returns every stored call.
func (s *SQLite) Calls(ctx context.Context) ([]store.Call, error) {
	if err := s.exec(ctx, ""); err != nil { // commit the lazy deletes first
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, data FROM calls ORDER BY id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Call
	for rows.Next() {
		var c store.Call
		if err := rows.Scan(&c.ID, &c.Data); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// PutLine stores an API change of a line (or its deletion).
func (s *SQLite) PutLine(ctx context.Context, l store.Line) error {
	if l.DN == "" {
		return errors.New("store: line without dn")
	}
	if l.Data == nil {
		l.Data = []byte{}
	}
	return s.exec(ctx, `INSERT OR REPLACE INTO lines (dn, data, deleted) VALUES (?, ?, ?)`, l.DN, l.Data, l.Deleted)
}

// Lines returns every stored line change in DN order.
func (s *SQLite) Lines(ctx context.Context) ([]store.Line, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT dn, data, deleted FROM lines ORDER BY dn`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Line
	for rows.Next() {
		var l store.Line
		if err := rows.Scan(&l.DN, &l.Data, &l.Deleted); err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// PutSetting stores a named setting.
func (s *SQLite) PutSetting(ctx context.Context, name string, data []byte) error {
	return s.exec(ctx, `INSERT OR REPLACE INTO settings (name, data) VALUES (?, ?)`, name, data)
}

// DeleteSetting forgets a named setting.
func (s *SQLite) DeleteSetting(ctx context.Context, name string) error {
	return s.exec(ctx, `DELETE FROM settings WHERE name = ?`, name)
}

// Settings returns every stored setting.
func (s *SQLite) Settings(ctx context.Context) (map[string][]byte, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, data FROM settings`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string][]byte{}
	for rows.Next() {
		var name string
		var data []byte
		if err := rows.Scan(&name, &data); err != nil {
			return nil, err
		}
		out[name] = data
	}
	return out, rows.Err()
}

// PutSubscription inserts or replaces a subscription.
func (s *SQLite) PutSubscription(ctx context.Context, sub store.Subscription) error {
	if sub.ID == "" {
		return errors.New("store: subscription without id")
	}
	return s.exec(ctx, `INSERT OR REPLACE INTO subscriptions (id, data) VALUES (?, ?)`, sub.ID, sub.Data)
}

// DeleteSubscription forgets a subscription.
func (s *SQLite) DeleteSubscription(ctx context.Context, id string) error {
	return s.exec(ctx, `DELETE FROM subscriptions WHERE id = ?`, id)
}

// Subscriptions returns every stored subscription in id order.
func (s *SQLite) Subscriptions(ctx context.Context) ([]store.Subscription, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, data FROM subscriptions ORDER BY id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Subscription
	for rows.Next() {
		var sub store.Subscription
		if err := rows.Scan(&sub.ID, &sub.Data); err != nil {
			return nil, err
		}
		out = append(out, sub)
	}
	return out, rows.Err()
}

// Close finishes queued writes, checkpoints and closes the database. A
// second Close does nothing.
func (s *SQLite) Close() error {
	var err error
	s.close.Do(func() {
		close(s.stop)
		close(s.writes)
		<-s.done
		s.db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
		err = s.db.Close()
	})
	return err
}
