package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migrations are the schema's versions, in order: migration i brings the
// schema from version i to i+1. Never edit one that has shipped; add one.
// The JSON columns are BYTEA: the records are other packages' own bytes.
var migrations = []string{
	// 1: the store's records, as in the SQLite backend.
	`CREATE TABLE registrations (
		dn TEXT NOT NULL,
		contact TEXT NOT NULL,
		source TEXT NOT NULL,
		transport TEXT NOT NULL,
		call_id TEXT NOT NULL,
		cseq BIGINT NOT NULL,
		user_agent TEXT NOT NULL,
		expires BIGINT NOT NULL, -- unix ms
		PRIMARY KEY (dn, contact)
	);
	CREATE TABLE requests (id BIGINT PRIMARY KEY, data BYTEA NOT NULL);
	CREATE TABLE calls (id TEXT PRIMARY KEY, data BYTEA NOT NULL);
	CREATE TABLE lines (dn TEXT PRIMARY KEY, data BYTEA NOT NULL, deleted BOOLEAN NOT NULL DEFAULT false);
	CREATE TABLE settings (name TEXT PRIMARY KEY, data BYTEA NOT NULL);
	CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);`,
	// 2: the cluster (internal/cluster): one lease row, whose holder is
	// the active instance until expires_at (the database's clock), epoch
	// counting the grants (fencing); and the members, each instance's
	// heartbeat and priority.
	`CREATE TABLE cluster_lease (
		id INT PRIMARY KEY CHECK (id = 1),
		holder TEXT NOT NULL DEFAULT '',
		epoch BIGINT NOT NULL DEFAULT 0,
		expires_at TIMESTAMPTZ NOT NULL DEFAULT '-infinity',
		since TIMESTAMPTZ NOT NULL DEFAULT '-infinity',
		handover_to TEXT NOT NULL DEFAULT ''
	);
	INSERT INTO cluster_lease (id) VALUES (1);
	CREATE TABLE cluster_members (
		name TEXT PRIMARY KEY,
		priority INT NOT NULL,
		sip TEXT NOT NULL DEFAULT '',
		seen_at TIMESTAMPTZ NOT NULL,
		started_at TIMESTAMPTZ NOT NULL
	);
	CREATE TABLE cluster_takeovers (
		epoch BIGINT PRIMARY KEY,
		holder TEXT NOT NULL,
		previous TEXT NOT NULL,
		at TIMESTAMPTZ NOT NULL,
		reason TEXT NOT NULL
	);`,
	// 3: SIP subscriptions (RFC 6665), either side: internal/subscription's
	// own record, as JSON.
	`CREATE TABLE subscriptions (id TEXT PRIMARY KEY, data BYTEA NOT NULL);`,
}

// migrationLock is the advisory lock key that serialises migrations of
// instances starting together (an arbitrary constant: "cbkd").
const migrationLock = 0x63626b64

// migrate brings the schema to the newest version, each migration in its
// own transaction with its version, so a crash leaves a whole version.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	for {
		done, err := migrateOne(ctx, pool)
		if err != nil || done {
			return err
		}
	}
}

// migrateOne applies the next migration, if any; done when none is left.
func migrateOne(ctx context.Context, pool *pgxpool.Pool) (done bool, err error) {
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INT NOT NULL)`); err != nil {
			return err
		}
		var v int
		if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&v); err != nil {
			return err
		}
		if v > len(migrations) {
			return fmt.Errorf("the database's schema is version %d, newer than this callbackd knows (%d)", v, len(migrations))
		}
		if v == len(migrations) {
			done = true
			return nil
		}
		if _, err := tx.Exec(ctx, migrations[v]); err != nil {
			return fmt.Errorf("schema migration %d: %w", v+1, err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM schema_version`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO schema_version VALUES ($1)`, v+1)
		return err
	})
	return done, err
}

// SchemaVersion is the database's schema version (tests).
func SchemaVersion(ctx context.Context, pool *pgxpool.Pool) (int, error) {
	var v int
	err := pool.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&v)
	return v, err
}
