package registrar

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callbackd/callbackd/internal/auth"
	"github.com/callbackd/callbackd/internal/config"
	"github.com/callbackd/callbackd/internal/directory"
	"github.com/callbackd/callbackd/internal/linestate"
	"github.com/callbackd/callbackd/internal/store/sqlite"
)

// TestB3_LoadWhileCounted: the stored registrations are loaded while the
// metrics sampler already counts bindings (as at a start): no unlocked
// map write (a start with 100k of them died of "concurrent map iteration
// and map write"), and every binding is there afterwards.
func TestB3_LoadWhileCounted(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "r.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const n = 3000
	var lines []config.Line
	for i := range n {
		dn := fmt.Sprint(10000 + i)
		lines = append(lines, config.Line{DN: dn, Kind: config.KindPhone, MaxDevices: 1})
		if err := st.PutRegistration(ctx, Binding{DN: dn, Contact: "sip:" + dn + "@127.0.0.1:5070", Source: "127.0.0.1:5070",
			Transport: "UDP", CallID: "c" + dn, CSeq: 1, Expires: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	tr := linestate.New(slog.New(slog.DiscardHandler))
	r := New(config.Default().SIP, directory.New(lines), auth.New("test"), st, tr, slog.New(slog.DiscardHandler))
	var stop atomic.Bool
	counted := make(chan struct{})
	go func() {
		defer close(counted)
		for !stop.Load() {
			r.Count()
		}
	}()
	err = r.Load(ctx)
	stop.Store(true)
	<-counted
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Count(); got != n {
		t.Errorf("Count after Load = %d, want %d", got, n)
	}
}
