// Package pgtest starts a private PostgreSQL server for tests: initdb into
// a temporary folder, postgres on a free loopback port (and its socket in
// that folder), as the "postgres" user when the tests run as root (the
// server refuses to run as root), one database per test, the server
// stopped by its pid at the end. A missing PostgreSQL fails the test; it
// never skips (.ci/run installs Debian's postgresql).
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// startDeadline bounds initdb plus the server's start.
const startDeadline = 60 * time.Second

// Server is one running PostgreSQL.
type Server struct {
	Dir  string // the temporary folder: data/ and the socket
	Port int
	cmd  *exec.Cmd
	exit chan struct{} // closed when the server process has ended
	dbs  atomic.Int64
	once sync.Once
}

// Start starts a private server, stopped when tb ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s, err := start()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Stop)
	return s
}

var (
	shared    *Server
	sharedErr error
	sharedMu  sync.Mutex
)

// Main runs a package's tests (from its TestMain) and stops the server
// they shared, if one was started (DB): one server for all the tests of
// a package, started by the first that needs it.
func Main(m *testing.M) int {
	code := m.Run()
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared != nil {
		shared.Stop()
	}
	return code
}

// DB gives the URL of a new, empty database on the package's shared
// server (the package's TestMain calls Main).
func DB(tb testing.TB) string {
	tb.Helper()
	sharedMu.Lock()
	if shared == nil && sharedErr == nil {
		shared, sharedErr = start()
	}
	s, err := shared, sharedErr
	sharedMu.Unlock()
	if err != nil {
		tb.Fatal(err)
	}
	return s.NewDB(tb)
}

// URL is the address of database db on s.
func (s *Server) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.Port, db)
}

// NewDB creates an empty database and gives its URL.
func (s *Server) NewDB(tb testing.TB) string {
	tb.Helper()
	name := fmt.Sprintf("t%d", s.dbs.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatal(err)
	}
	return s.URL(name)
}

// Pid is the postmaster's process id (tests freeze or kill it).
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// Stop ends the server (SIGINT: PostgreSQL's fast shutdown), waits for
// it (SIGKILL after 10 s) and removes its folder.
func (s *Server) Stop() {
	s.once.Do(func() {
		s.cmd.Process.Signal(syscall.SIGCONT) // a test may have frozen it
		s.cmd.Process.Signal(os.Interrupt)
		select {
		case <-s.exit:
		case <-time.After(10 * time.Second):
			s.cmd.Process.Kill()
			<-s.exit
		}
		os.RemoveAll(s.Dir)
	})
}

// Bin finds a PostgreSQL program: on PATH, else in Debian's
// /usr/lib/postgresql/<version>/bin (not on PATH there).
func Bin(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + name)
	if len(found) == 0 {
		return "", fmt.Errorf("pgtest: %s not found (install Debian's postgresql: .ci/run)", name)
	}
	return found[len(found)-1], nil
}

func start() (*Server, error) {
	initdb, err := Bin("initdb")
	if err != nil {
		return nil, err
	}
	postgres, err := Bin("postgres")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, err
	}
	cred, err := credential(dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), startDeadline)
	defer cancel()
	data := filepath.Join(dir, "data")
	init := exec.CommandContext(ctx, initdb, "-D", data, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8", "--locale", "C")
	init.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := init.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("pgtest: initdb: %v\n%s", err, out)
	}
	port, err := freePort()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	// fsync off: a test server's data need not survive a power loss, and
	// each commit's fsync would cost the shared machine's disk.
	cmd := exec.Command(postgres, "-D", data, "-p", strconv.Itoa(port), "-k", dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=200",
		"-c", "shared_buffers=16MB", "-c", "log_min_messages=warning")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	logf, err := os.Create(filepath.Join(dir, "postgres.log"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if cred != nil {
		os.Chown(logf.Name(), int(cred.Uid), int(cred.Gid))
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("pgtest: start postgres: %w", err)
	}
	s := &Server{Dir: dir, Port: port, cmd: cmd, exit: make(chan struct{})}
	go func() { cmd.Wait(); logf.Close(); close(s.exit) }()
	if err := s.waitReady(ctx); err != nil {
		log, _ := os.ReadFile(logf.Name())
		s.Stop()
		return nil, fmt.Errorf("pgtest: %v\n%s", err, log)
	}
	return s, nil
}

// waitReady waits until the server accepts a connection, it exits, or
// ctx ends.
func (s *Server) waitReady(ctx context.Context) error {
	for {
		c, err := pgx.Connect(ctx, s.URL("postgres"))
		if err == nil {
			c.Close(ctx)
			return nil
		}
		select {
		case <-s.exit:
			return errors.New("postgres exited at start")
		case <-ctx.Done():
			return fmt.Errorf("postgres not ready within %v: %v", startDeadline, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// credential is who runs initdb and postgres: the "postgres" user when
// we are root (folder dir given to it), else ourselves (nil).
func credential(dir string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("pgtest: running as root needs the postgres user (Debian's postgresql package): %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
