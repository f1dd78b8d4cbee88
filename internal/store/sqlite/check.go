package sqlite

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// CheckWritable says whether the server could keep its database at path,
// without opening the database or creating anything that stays: the file,
// if it exists, must open for reading and writing, and its folder (or the
// nearest existing one, where the server would create it) must take new
// files, since SQLite's WAL mode writes path-wal and path-shm beside it.
// The error names the path and the system's reason ("permission denied",
// "read-only file system", "operation not permitted" for an immutable
// file), which a root user meets too when the cause is not the mode bits.
func CheckWritable(path string) error {
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return cannot("open for writing", p, err)
		}
		f.Close()
	}
	dir := filepath.Dir(path)
	for {
		st, err := os.Stat(dir)
		if err == nil {
			if !st.IsDir() {
				return fmt.Errorf("store: %s is not a folder", dir)
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return cannot("read folder", dir, err)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return cannot("read folder", dir, err)
		}
		dir = parent
	}
	f, err := os.CreateTemp(dir, ".callbackd-probe-*")
	if err != nil {
		return cannot("create files in folder", dir, err)
	}
	name := f.Name()
	f.Close()
	os.Remove(name)
	return nil
}

// cannot words an operating-system error as one line: what the store
// could not do, on which path, and why (the error without its own copy
// of the path).
func cannot(what, path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	abs, aerr := filepath.Abs(path)
	if aerr != nil {
		abs = path
	}
	return fmt.Errorf("store: cannot %s %s: %v", what, abs, err)
}

// sqliteReason turns a SQLite error met while opening or writing the
// database into one line, e.g. "read-only" for SQLITE_READONLY (8)
// rather than "attempt to write a readonly database (8)".
func sqliteReason(path string, err error) error {
	var c interface{ Code() int }
	if !errors.As(err, &c) {
		return fmt.Errorf("store %s: %w", path, err)
	}
	reason := map[int]string{
		8:  "the database is read-only (check the file, its folder and the mount)",
		13: "the disk is full",
		14: "permission denied or missing folder (unable to open the database file)",
		26: "the file is not a SQLite database",
		11: "the database file is corrupt",
		5:  "the database is locked by another process (another callbackd on the same file?)",
	}[c.Code()&0xff]
	if reason == "" {
		return fmt.Errorf("store %s: %w", path, err)
	}
	abs, aerr := filepath.Abs(path)
	if aerr != nil {
		abs = path
	}
	return fmt.Errorf("store: cannot use %s: %s", abs, reason)
}
