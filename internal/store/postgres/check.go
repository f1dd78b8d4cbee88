package postgres

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"strings"

	"github.com/jackc/pgx/v5"
)

// CheckWritable says whether the server could keep its store in the
// database at rawURL, creating nothing that stays: it connects, and in a
// transaction it rolls back creates a table, writes a row, and writes to
// each of the store's tables that exist already (the privileges an
// upgrade's migration and the server's writes need).
func CheckWritable(rawURL string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*connectTimeout)
	defer cancel()
	cfg, err := pgx.ParseConfig(rawURL)
	if err != nil {
		return fmt.Errorf("store: the url is not a valid PostgreSQL URL: %v", redact(err, rawURL))
	}
	cfg.ConnectTimeout = connectTimeout
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return reason(rawURL, err)
	}
	defer c.Close(context.Background())
	tx, err := c.Begin(ctx)
	if err != nil {
		return reason(rawURL, err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, `CREATE TABLE callbackd_probe (x INT); INSERT INTO callbackd_probe VALUES (1)`); err != nil {
		return reason(rawURL, err)
	}
	for _, t := range []string{"registrations", "requests", "calls", "lines", "settings", "subscriptions", "meta", "cluster_lease", "cluster_members"} {
		var ok bool
		err := tx.QueryRow(ctx, `SELECT to_regclass($1) IS NULL OR has_table_privilege($1, 'INSERT, UPDATE, DELETE')`, t).Scan(&ok)
		if err != nil {
			return reason(rawURL, err)
		}
		if !ok {
			return fmt.Errorf("store: cannot use %s: no privilege to write table %s", Redacted(rawURL), t)
		}
	}
	return nil
}

// Backup copies the database at rawURL into the new file dest with
// pg_dump (plain SQL, one consistent snapshot, safe while servers use
// it; psql restores it). The password goes to pg_dump in its environment
// (PGPASSWORD), never on its command line, where ps would show it.
func Backup(rawURL, dest string) error {
	if _, err := os.Stat(dest); err == nil {
		return fmt.Errorf("backup: %s exists; give a new file", dest)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("backup: %s: %w", dest, err)
	}
	pgDump, err := exec.LookPath("pg_dump")
	if err != nil {
		return errors.New("backup: pg_dump not found (Debian: postgresql-client)")
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return errors.New("backup: the store url is not a valid URL")
	}
	env := os.Environ()
	if u.User != nil {
		if pw, ok := u.User.Password(); ok {
			env = append(env, "PGPASSWORD="+pw)
			u.User = url.User(u.User.Username())
		}
	}
	cmd := exec.Command(pgDump, "--no-owner", "--file", dest, "--dbname", u.String())
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		os.Remove(dest)
		return fmt.Errorf("backup of %s: %v: %s", Redacted(rawURL), err, strings.TrimSpace(redact(errors.New(string(out)), rawURL)))
	}
	return nil
}
