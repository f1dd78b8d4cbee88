// Package postgres is the shared store backend ([store] driver "postgres",
// [store] url): store.Store in one PostgreSQL database, which several
// callbackd instances may share (one active: internal/cluster). Its schema
// is versioned (migrate.go), applied at start.
//
// A write returns once PostgreSQL has committed it (synchronous_commit on,
// the server's default: the commit is in the server's WAL on disk), which
// is the "persisted before it is confirmed" promise. PostgreSQL groups
// concurrent commits itself, so writes are sent as they come, each its own
// transaction, over a connection pool.
//
// Fencing: once an instance is the cluster's active (SetEpoch), each write
// first takes a share lock on the lease row, checking that the lease is
// still this instance's epoch and unexpired (by the database's clock).
// A stale active's write then fails with ErrFenced, and a takeover (an
// UPDATE of that row) waits for the writes in flight, so no write of an
// old epoch commits after a new epoch begins.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/callbackd/callbackd/internal/store"
)

// Backend is PostgreSQL at a URL ([store] url).
type Backend struct{ URL string }

// Open connects, applies the schema's migrations and proves a write.
func (b Backend) Open() (store.Store, error) {
	s, err := Open(context.Background(), b.URL)
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return s, nil
}
func (b Backend) Backup(dest string) error { return Backup(b.URL, dest) }
func (b Backend) CheckWritable() error     { return CheckWritable(b.URL) }

var _ store.Store = (*Store)(nil)

// ErrFenced is a write refused because this instance no longer holds the
// cluster's lease (its epoch has passed or its lease expired).
var ErrFenced = errors.New("store: this instance is no longer the active one (lease lost); write refused")

// connectTimeout bounds each connection attempt.
const connectTimeout = 10 * time.Second

// Store is the PostgreSQL store.
type Store struct {
	pool  *pgxpool.Pool
	url   string       // for error messages only, through redact
	epoch atomic.Int64 // >0: writes are fenced by this lease epoch
	close sync.Once
}

// Open connects to rawURL, applies the migrations and records the start
// time, refusing a database it cannot write to with one line that says
// why (the URL's password never in it).
func Open(ctx context.Context, rawURL string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(rawURL)
	if err != nil {
		return nil, fmt.Errorf("store: the url is not a valid PostgreSQL URL: %v", redact(err, rawURL))
	}
	cfg.ConnConfig.ConnectTimeout = connectTimeout
	if cfg.MaxConns < 8 {
		cfg.MaxConns = 8
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, reason(rawURL, err)
	}
	s := &Store{pool: pool, url: rawURL}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, reason(rawURL, err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO meta (name, value) VALUES ('started', $1)
		ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value`, time.Now().UTC().Format(time.RFC3339)); err != nil {
		pool.Close()
		return nil, reason(rawURL, err)
	}
	return s, nil
}

// Pool is the store's connection pool, which the cluster's election
// shares.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// SetEpoch fences every later write by the cluster lease's epoch e
// (0: unfenced, a single instance).
func (s *Store) SetEpoch(e int64) { s.epoch.Store(e) }

// exec runs one write, in a transaction fenced by the lease when this
// instance is a cluster's active.
func (s *Store) exec(ctx context.Context, query string, args ...any) error {
	e := s.epoch.Load()
	if e == 0 {
		_, err := s.pool.Exec(ctx, query, args...)
		return err
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var got int64
		err := tx.QueryRow(ctx, `SELECT epoch FROM cluster_lease
			WHERE id = 1 AND epoch = $1 AND expires_at > clock_timestamp() FOR SHARE`, e).Scan(&got)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrFenced
		}
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, query, args...)
		return err
	})
}

// table is one of the keyed JSON tables (a key column and data): the
// records other packages own, stored without knowing their fields. A new
// one is one more table here, one migration, and three one-line methods.
type table struct{ put, del, all string }

func keyed(name, key string) table {
	return table{
		put: "INSERT INTO " + name + " (" + key + ", data) VALUES ($1, $2) ON CONFLICT (" + key + ") DO UPDATE SET data = EXCLUDED.data",
		del: "DELETE FROM " + name + " WHERE " + key + " = $1",
		all: "SELECT " + key + ", data FROM " + name + " ORDER BY " + key,
	}
}

var (
	requests = keyed("requests", "id")
	calls    = keyed("calls", "id")
	settings = keyed("settings", "name")
	subs     = keyed("subscriptions", "id")
)

// rowsOf reads a keyed table whole, in key order.
func rowsOf[K any, R any](ctx context.Context, s *Store, t table, row func(K, []byte) R) ([]R, error) {
	rows, err := s.pool.Query(ctx, t.all)
	if err != nil {
		return nil, err
	}
	var out []R
	var k K
	var data []byte
	_, err = pgx.ForEachRow(rows, []any{&k, &data}, func() error {
		out = append(out, row(k, data))
		return nil
	})
	return out, err
}

// PutRegistration inserts or replaces a binding.
func (s *Store) PutRegistration(ctx context.Context, r store.Registration) error {
	return s.exec(ctx, `INSERT INTO registrations (dn, contact, source, transport, call_id, cseq, user_agent, expires)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (dn, contact) DO UPDATE SET source = EXCLUDED.source, transport = EXCLUDED.transport,
			call_id = EXCLUDED.call_id, cseq = EXCLUDED.cseq, user_agent = EXCLUDED.user_agent, expires = EXCLUDED.expires`,
		r.DN, r.Contact, r.Source, r.Transport, r.CallID, int64(r.CSeq), r.UserAgent, r.Expires.UnixMilli())
}

// DeleteRegistration removes one binding; removing a missing one is no error.
func (s *Store) DeleteRegistration(ctx context.Context, dn, contact string) error {
	return s.exec(ctx, `DELETE FROM registrations WHERE dn = $1 AND contact = $2`, dn, contact)
}

// Registrations returns every stored binding, expired ones included.
func (s *Store) Registrations(ctx context.Context) ([]store.Registration, error) {
	rows, err := s.pool.Query(ctx, `SELECT dn, contact, source, transport, call_id, cseq, user_agent, expires
		FROM registrations ORDER BY dn, contact`)
	if err != nil {
		return nil, err
	}
	var out []store.Registration
	var r store.Registration
	var cseq, exp int64
	_, err = pgx.ForEachRow(rows, []any{&r.DN, &r.Contact, &r.Source, &r.Transport, &r.CallID, &cseq, &r.UserAgent, &exp}, func() error {
		r.CSeq, r.Expires = uint32(cseq), time.UnixMilli(exp)
		out = append(out, r)
		return nil
	})
	return out, err
}

// PutRequest inserts or replaces a Call Back request.
func (s *Store) PutRequest(ctx context.Context, r store.Request) error {
	if r.ID <= 0 {
		return errors.New("store: request without id")
	}
	return s.exec(ctx, requests.put, r.ID, r.Data)
}

// DeleteRequest removes a Call Back request.
func (s *Store) DeleteRequest(ctx context.Context, id int64) error {
	return s.exec(ctx, requests.del, id)
}

// Requests returns every stored Call Back request in id order.
func (s *Store) Requests(ctx context.Context) ([]store.Request, error) {
	return rowsOf(ctx, s, requests, func(id int64, d []byte) store.Request { return store.Request{ID: id, Data: d} })
}

// PutCall stores an answered call.
func (s *Store) PutCall(ctx context.Context, c store.Call) error {
	return s.exec(ctx, calls.put, c.ID, c.Data)
}

// DeleteCall forgets an ended call.
func (s *Store) DeleteCall(ctx context.Context, id string) error {
	return s.exec(ctx, calls.del, id)
}

// Calls returns every stored call.
func (s *Store) Calls(ctx context.Context) ([]store.Call, error) {
	return rowsOf(ctx, s, calls, func(id string, d []byte) store.Call { return store.Call{ID: id, Data: d} })
}

// PutSubscription stores a subscription (RFC 6665), either side.
func (s *Store) PutSubscription(ctx context.Context, sub store.Subscription) error {
	if sub.ID == "" {
		return errors.New("store: subscription without id")
	}
	return s.exec(ctx, subs.put, sub.ID, sub.Data)
}

// DeleteSubscription forgets a subscription.
func (s *Store) DeleteSubscription(ctx context.Context, id string) error {
	return s.exec(ctx, subs.del, id)
}

// Subscriptions returns every stored subscription in ID order.
func (s *Store) Subscriptions(ctx context.Context) ([]store.Subscription, error) {
	return rowsOf(ctx, s, subs, func(id string, d []byte) store.Subscription { return store.Subscription{ID: id, Data: d} })
}

// PutLine stores an API change of a line (or its deletion).
func (s *Store) PutLine(ctx context.Context, l store.Line) error {
	if l.DN == "" {
		return errors.New("store: line without dn")
	}
	if l.Data == nil {
		l.Data = []byte{}
	}
	return s.exec(ctx, `INSERT INTO lines (dn, data, deleted) VALUES ($1, $2, $3)
		ON CONFLICT (dn) DO UPDATE SET data = EXCLUDED.data, deleted = EXCLUDED.deleted`, l.DN, l.Data, l.Deleted)
}

// Lines returns every stored line change in DN order.
func (s *Store) Lines(ctx context.Context) ([]store.Line, error) {
	rows, err := s.pool.Query(ctx, `SELECT dn, data, deleted FROM lines ORDER BY dn`)
	if err != nil {
		return nil, err
	}
	var out []store.Line
	var l store.Line
	_, err = pgx.ForEachRow(rows, []any{&l.DN, &l.Data, &l.Deleted}, func() error {
		out = append(out, store.Line{DN: l.DN, Data: append([]byte(nil), l.Data...), Deleted: l.Deleted})
		return nil
	})
	return out, err
}

// PutSetting stores a named setting.
func (s *Store) PutSetting(ctx context.Context, name string, data []byte) error {
	return s.exec(ctx, settings.put, name, data)
}

// DeleteSetting forgets a named setting.
func (s *Store) DeleteSetting(ctx context.Context, name string) error {
	return s.exec(ctx, settings.del, name)
}

// Settings returns every stored setting.
func (s *Store) Settings(ctx context.Context) (map[string][]byte, error) {
	type kv struct {
		k string
		v []byte
	}
	all, err := rowsOf(ctx, s, settings, func(k string, d []byte) kv { return kv{k, d} })
	out := make(map[string][]byte, len(all))
	for _, e := range all {
		out[e.k] = e.v
	}
	return out, err
}

// Close closes the pool (each write had returned once committed). A
// second Close does nothing.
func (s *Store) Close() error {
	s.close.Do(s.pool.Close)
	return nil
}

// redact removes the URL's password from an error's text (a driver's
// message may quote the connection string) and puts it on one line
// (pgx lists each address it tried on a line of its own).
func redact(err error, rawURL string) string {
	msg := strings.ReplaceAll(strings.ReplaceAll(err.Error(), "\n\t", "; "), "\n", " ")
	if u, perr := url.Parse(rawURL); perr == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok && pw != "" {
			msg = strings.ReplaceAll(msg, pw, "xxxxx")
		}
	}
	return msg
}

// Redacted is the URL as it may be shown: its password replaced.
func Redacted(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "<invalid url>"
	}
	return u.Redacted()
}

// reason words an error met connecting or writing as one line that names
// the database (password hidden) and the server's reason.
func reason(rawURL string, err error) error {
	return fmt.Errorf("store: cannot use %s: %s", Redacted(rawURL), redact(err, rawURL))
}
