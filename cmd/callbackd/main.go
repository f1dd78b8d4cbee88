// Command callbackd is a SIP server for call completion (Call Back): a
// registrar and B2BUA for SIP phones, on which CCBS/CCNR/CCNL are built.
//
//	go run ./cmd/callbackd                 # embedded defaults, demo lines 1001-1004
//	go run ./cmd/callbackd -config my.toml # your configuration
//	callbackd -check-config -config my.toml  # check it (and the store, TLS files): ok or the problems
//	callbackd -backup copy.db -config my.toml # copy the store while the server runs
//
// Running it for real (systemd, firewall, backups): docs/deployment.md.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"expvar"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/callbackd/callbackd/internal/api"
	"github.com/callbackd/callbackd/internal/app"
	"github.com/callbackd/callbackd/internal/cluster"
	"github.com/callbackd/callbackd/internal/config"
	"github.com/callbackd/callbackd/internal/events"
	"github.com/callbackd/callbackd/internal/web"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "callbackd:", err)
		os.Exit(1)
	}
}

// startGCPercent is the collector's pace (GOGC) while starting.
const startGCPercent = 400

func run() error {
	configPath := flag.String("config", "", "TOML configuration file (default: the embedded defaults with demo lines 1001-1004)")
	printDefaults := flag.Bool("print-default-config", false, "print the embedded default configuration and exit")
	checkConfig := flag.Bool("check-config", false, "check the configuration (-config, or the embedded defaults) as startup would, its TLS files and that the store path is writable; print \"ok\" or the problems and exit 0 or 1, binding nothing")
	backup := flag.String("backup", "", "copy the store (the -config's [store] path) into this new file, safely while the server runs, and exit")
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (flags start with -; see -help)", flag.Arg(0))
	}
	if *printDefaults {
		_, err := os.Stdout.Write(config.DefaultTOML())
		return err
	}
	if *backup != "" {
		cfg := config.Default()
		if *configPath != "" {
			var err error
			if cfg, err = config.Load(*configPath); err != nil {
				return err
			}
		}
		be, err := app.StoreBackend(cfg.Store)
		if err != nil {
			return err
		}
		if err := be.Backup(*backup); err != nil {
			return err
		}
		fmt.Printf("backup of %s written to %s\n", app.StoreName(cfg.Store), *backup)
		return nil
	}
	if *checkConfig {
		if err := check(*configPath); err != nil {
			return err
		}
		fmt.Println("ok")
		return nil
	}

	// The start (config, registrations, requests) makes much short-lived
	// garbage: collect it less often until serving, then as configured
	// (a start with 100k requests spent an eighth of its CPU in the GC).
	// The memory limit still holds meanwhile.
	gcPercent := debug.SetGCPercent(startGCPercent)
	cfg := config.Default()
	if *configPath != "" {
		var err error
		if cfg, err = config.Load(*configPath); err != nil {
			return err
		}
	}
	level := new(slog.LevelVar)
	alarms := newLogger(cfg.Log, level)
	log := slog.New(alarms)
	raiseFileLimit(log)
	memLimit := setMemoryLimit()

	be, err := app.StoreBackend(cfg.Store)
	if err != nil {
		return err
	}
	st, err := be.Open()
	if err != nil {
		return err
	}
	defer st.Close()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// One HTTP listener for the whole run: a standby's handler until this
	// instance is elected, then the server's (F35, F37).
	httpLn, err := net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		return fmt.Errorf("http listen %s: %w", cfg.HTTP.Listen, err)
	}
	hosts := cfg.HTTP.Hosts
	if len(hosts) == 0 {
		hosts = api.DefaultHosts(httpLn.Addr().String())
	}
	policy := api.Policy{Hosts: hosts, AllowedOrigins: cfg.HTTP.AllowedOrigins, Log: log}
	var handler swappable
	hs := newHTTPServer(api.Protect(&handler, policy))
	go func() {
		if err := hs.Serve(httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server", "error", err)
		}
	}()
	defer hs.Close()
	started := time.Now()

	var el *cluster.Elector
	if cfg.Cluster.Name != "" {
		if el, err = app.NewElector(cfg, st, log); err != nil {
			return err
		}
		handler.set(api.Standby(api.StandbyDeps{Status: el.Status, Log: log, Started: started}))
		log.Info("HTTP listening (standby)", "addr", httpLn.Addr().String(), "hosts", hosts)
		// A standby until elected; then the restart path, below.
		if el, err = app.JoinCluster(ctx, cfg, st, el, log); el == nil {
			return err
		}
		defer func() {
			stop()
			<-el.Done() // the lease released for the next instance
		}()
	}
	srv, err := app.New(cfg, st, log)
	if err != nil {
		return err
	}
	srv.Cluster = el
	alarms.SetHub(srv.Hub)
	token := cfg.HTTP.Token
	if token == "" {
		token = randomToken()
		log.Info("API admin token", "token", token, "hint", "set http.token to keep one across restarts")
	}
	rest := api.New(api.Deps{Server: srv, Log: log, Token: token, Level: level, Alarms: alarms, OpenAPI: api.OpenAPI(), Started: started,
		MaxStreams: cfg.HTTP.MaxEventStreams, MaxStreamsPerSource: cfg.HTTP.MaxEventStreamsPerSource})
	if *configPath == "" {
		printDemo(cfg)
	}

	handler.set(httpHandler(srv, rest))
	log.Info("HTTP listening", "addr", httpLn.Addr().String(), "hosts", hosts)
	if cfg.HTTP.DebugListen != "" {
		dbgLn, err := net.Listen("tcp", cfg.HTTP.DebugListen)
		if err != nil {
			return fmt.Errorf("http debug_listen %s: %w", cfg.HTTP.DebugListen, err)
		}
		dbg := newHTTPServer(api.Protect(debugHandler(), api.Policy{Hosts: api.DefaultHosts(dbgLn.Addr().String()), Log: log}))
		go func() {
			if err := dbg.Serve(dbgLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("http debug server", "error", err)
			}
		}()
		defer dbg.Close()
		log.Info("HTTP debug listening", "addr", dbgLn.Addr().String(), "paths", "/debug/pprof/, /debug/vars")
	}
	log.Info("callbackd started", "config", cfg.Source, "lines", len(cfg.Lines), "store", app.StoreName(cfg.Store),
		"memory_limit_mb", memLimit>>20)

	go func() {
		// A restore with many stored requests leaves its garbage (decoded
		// JSON, the rows) in the heap: give it back once serving.
		srv.WaitServing(ctx)
		debug.SetGCPercent(gcPercent)
		debug.FreeOSMemory()
	}()
	go returnMemory(ctx)
	go governProcs(ctx, log)
	go srv.RunSampler(ctx)
	if *configPath != "" {
		go reloadOnHangup(ctx, *configPath, srv, level, log)
	}
	err = srv.Run(ctx)
	if errors.Is(err, app.ErrNotActive) {
		// Acting no more (the gate closed at once); start again, in place,
		// as a standby: nothing of this term's state lives on.
		log.Warn("cluster: restarting as a standby", "why", err.Error())
		st.Close()
		return syscall.Exec("/proc/self/exe", os.Args, os.Environ())
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	hs.Shutdown(shutdown)
	log.Info("callbackd stopped")
	return err
}

// check is -check-config: the configuration's own validation (the same
// rules and file:line messages as at startup, TLS files included), then
// whether the store could be written. It opens no listener and creates
// nothing: it can run beside a live server, e.g. before a restart.
func check(path string) error {
	cfg := config.Default()
	if path != "" {
		var err error
		if cfg, err = config.Load(path); err != nil {
			return err
		}
	}
	be, err := app.StoreBackend(cfg.Store)
	if err != nil {
		return err
	}
	if err := be.CheckWritable(); err != nil {
		key := "path"
		if cfg.Store.Driver == "postgres" {
			key = "url"
		}
		return fmt.Errorf("%s: [store] %s: %w", cfg.Source, key, err)
	}
	return nil
}

// returnMemory gives the memory of a burst back to the system. A flood
// leaves its SIP transactions alive for their timers (32 s, RFC 3261
// 17.2.1); once they end, an idle server allocates too little to reach the
// next collection, which the runtime sets at twice the heap it found live
// at the last one (the flood's): the dead transactions stay, their pages
// with them, until the runtime's forced collection two minutes later. So
// every 10 s, when no collection ran for that long and the heap holds more
// than 64 MB, collect and return what is free.
func returnMemory(ctx context.Context) {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		if time.Since(time.Unix(0, int64(m.LastGC))) >= 10*time.Second && m.HeapSys-m.HeapReleased > 64<<20 {
			debug.FreeOSMemory()
		}
	}
}

// newLogger makes the log handler: its level is level (switched live
// through the API, F36), and it keeps the recent warnings and errors as
// alarms (F37).
func newLogger(c config.Log, level *slog.LevelVar) *events.Alarms {
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.Level)); err != nil {
		l = slog.LevelInfo
	}
	level.Set(l)
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(os.Stderr, opts)
	if c.Format == "json" {
		h = slog.NewJSONHandler(os.Stderr, opts)
	}
	return events.NewAlarms(h, 100, nil)
}

// raiseFileLimit raises the soft limit on open files to the hard one:
// every SIP TCP connection takes a descriptor, and the common soft limit
// (1024) is reached by a modest flood. The SIP server keeps its connection
// cap below the limit (sip.tcp_max_connections). (Go's runtime does the
// same at start on Linux since Go 1.19; this says so in the log when it
// was needed and does not depend on it.)
func raiseFileLimit(log *slog.Logger) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil || r.Cur >= r.Max {
		return
	}
	was := r.Cur
	r.Cur = r.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		log.Warn("open-files limit not raised", "soft", was, "hard", r.Max, "error", err.Error())
		return
	}
	log.Debug("open-files limit raised", "from", was, "to", r.Max)
}

func randomToken() string {
	b := make([]byte, 18)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func printDemo(cfg *config.Config) {
	fmt.Println("callbackd: running with the embedded defaults. Demo lines (register your phones with these):")
	fmt.Printf("  %-6s %-10s %-7s %s\n", "DN", "password", "locale", "username@domain")
	for _, l := range cfg.Lines {
		fmt.Printf("  %-6s %-10s %-7s %s@%s\n", l.DN, l.Password, l.Locale, l.DN, cfg.SIP.Domain)
	}
	fmt.Printf("  SIP server: %v, digest realm %q\n", cfg.SIP.Listen, cfg.SIP.Realm)
}

func httpHandler(srv *app.App, rest *api.API) http.Handler {
	mux := http.NewServeMux()
	rest.Register(mux)
	mux.Handle("/", web.Handler()) // the phone console and the admin page
	mux.Handle("GET /metrics", srv.Metrics.Handler())
	health := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := srv.Healthy(); err != nil { // SIP not (fully) served
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, err)
			return
		}
		fmt.Fprintln(w, "ok")
	}
	// The same here; a cluster's standby tells them apart (api.Standby).
	mux.HandleFunc("GET /healthz", health)
	mux.HandleFunc("GET /readyz", health)
	return mux
}

// swappable is the HTTP listener's handler, set once a standby's and
// then the server's; until set, 503.
type swappable struct{ h atomic.Pointer[http.Handler] }

func (s *swappable) set(h http.Handler) { s.h.Store(&h) }

func (s *swappable) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := s.h.Load()
	if h == nil {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "starting", http.StatusServiceUnavailable)
		return
	}
	(*h).ServeHTTP(w, r)
}

// newHTTPServer: slow or idle clients do not hold connections for ever.
// No ReadTimeout or WriteTimeout: either would end the event streams,
// long-lived by design (they are capped instead); api.Protect bounds the
// time to send a body.
func newHTTPServer(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
}

// debugHandler serves profiling and memory statistics for operators and
// load runs, on http.debug_listen only (B7: they show the heap and the
// command line, and a profile costs CPU; nothing on the main listener).
func debugHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	mux.Handle("GET /debug/vars", expvar.Handler()) // memstats, for load runs
	return mux
}

// reloadOnHangup reads the configuration file again on SIGHUP (F36) and
// applies what can change while running: the log level and the [callback]
// service parameters. A file with errors changes nothing; the errors are
// logged. Other changes (listeners, lines, store) need a restart; lines
// change live through the API.
func reloadOnHangup(ctx context.Context, path string, srv *app.App, level *slog.LevelVar, log *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		}
		cfg, err := config.Load(path)
		if err != nil {
			log.Error("configuration not reloaded, nothing changed", "file", path, "error", err.Error())
			continue
		}
		var l slog.Level
		l.UnmarshalText([]byte(cfg.Log.Level))
		level.Set(l)
		applied, err := srv.ReloadParams(ctx, cfg.Callback)
		switch {
		case err != nil:
			log.Error("configuration reload: parameters not applied", "error", err)
		case applied:
			log.Info("configuration reloaded", "file", path, "log_level", cfg.Log.Level)
		default:
			log.Info("configuration reloaded; its [callback] parameters wait: parameters set through the API are in force (DELETE /api/v1/params to use the file's)", "file", path, "log_level", cfg.Log.Level)
		}
	}
}
