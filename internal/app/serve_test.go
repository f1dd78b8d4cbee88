package app

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/callbackd/callbackd/internal/config"
	"github.com/callbackd/callbackd/internal/store/sqlite"
)

// TestStopWhileStarting: a server stopped at any moment of its start,
// the restore of stored requests included, stops cleanly (Run returns
// nil), so a quick stop is not reported as a fault.
func TestStopWhileStarting(t *testing.T) {
	for i := range 20 {
		cfg := config.Default()
		cfg.SIP.Listen = []string{"udp:127.0.0.1:0"}
		st, err := sqlite.Open(filepath.Join(t.TempDir(), "callbackd.db"))
		if err != nil {
			t.Fatal(err)
		}
		srv, err := New(cfg, st, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		served := make(chan error, 1)
		go func() { served <- srv.Run(ctx) }()
		if i%2 == 1 {
			<-srv.serving
		}
		cancel()
		if err := <-served; err != nil {
			t.Fatalf("run %d: Run: %v", i, err)
		}
		st.Close()
	}
}
