package sqlite

import (
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// Backup copies the database at path into a new file dest while a server
// may be using it: VACUUM INTO reads one consistent snapshot (a read
// transaction, which in WAL mode the server's writes do not block nor
// break), the commits still in the WAL included, and writes a compact
// database with no WAL of its own. dest must not exist. The database must
// exist: a wrong path is an error, not a new empty database.
func Backup(path, dest string) error {
	if _, err := os.Stat(path); err != nil {
		return cannot("read", path, err)
	}
	if _, err := os.Stat(dest); err == nil {
		return fmt.Errorf("backup: %s exists; give a new file", dest)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return cannot("write", dest, err)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?mode=rw&_pragma=busy_timeout(5000)")
	if err != nil {
		return fmt.Errorf("backup: open %s: %w", path, err)
	}
	defer db.Close()
	if _, err := db.Exec(`VACUUM INTO ?`, dest); err != nil {
		os.Remove(dest)
		return fmt.Errorf("backup of %s into %s: %w", path, dest, err)
	}
	return nil
}
