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

// TestMobilityAndReset (F23, F25): a login binds the user's line to the
// phone, which is then found as the phone's login and not as its own
// device; a logout removes it; an expired registration is a reset, a
// login is not.
func TestMobilityAndReset(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	phone := Binding{DN: "3001", Contact: "sip:3001@127.0.0.1:5070", Source: "127.0.0.1:5070", Transport: "UDP",
		CallID: "boot-1", CSeq: 1, Expires: now.Add(time.Hour)}
	if err := st.PutRegistration(ctx, phone); err != nil {
		t.Fatal(err)
	}
	lines := []config.Line{{DN: "1001", Kind: config.KindPhone, MaxDevices: 4}, {DN: "3001", Kind: config.KindPhone, MaxDevices: 4}}
	tr := linestate.New(slog.New(slog.DiscardHandler))
	for _, l := range lines {
		tr.SetLine(l.DN, 1)
	}
	r := New(config.Default().SIP, directory.New(lines), auth.New("test"), st, tr, slog.New(slog.DiscardHandler))
	r.now = func() time.Time { return now }
	var resets []string
	r.OnReset = func(dn string) { resets = append(resets, dn) }
	if err := r.Load(ctx); err != nil {
		t.Fatal(err)
	}

	if _, ok := r.LoginOn("3001", "UDP", phone.Source, ""); ok {
		t.Fatal("a login before anyone logged in")
	}
	dev, ok := r.DeviceOf("3001", "UDP", phone.Source, "")
	if !ok || dev.DN != "3001" {
		t.Fatalf("DeviceOf = %+v, %v; want the phone's own binding", dev, ok)
	}
	if _, ok := r.DeviceOf("1001", "UDP", phone.Source, ""); ok {
		t.Fatal("DeviceOf found the phone as a device of another line")
	}
	if err := r.Login(ctx, "1001", "501", dev); err != nil {
		t.Fatal(err)
	}
	if dn, ok := r.LoginOn("3001", "UDP", "127.0.0.1:5999", phone.Contact); !ok || dn != "1001" {
		t.Fatalf("LoginOn by the phone's Contact = %q, %v; want 1001", dn, ok)
	}
	if dn, ok := r.LoginOn("3001", "UDP", phone.Source, ""); !ok || dn != "1001" {
		t.Fatalf("LoginOn by the phone's source = %q, %v; want 1001", dn, ok)
	}
	// The login is the phone's, found through its own line: a request
	// authenticated as another line from the same address is that line.
	if _, ok := r.LoginOn("1001", "UDP", phone.Source, ""); ok {
		t.Fatal("LoginOn for another line's request from the phone's address")
	}
	if d, _ := r.DeviceOf("3001", "UDP", phone.Source, ""); d.DN != "3001" {
		t.Fatalf("DeviceOf after the login = %q, want the phone's own line", d.DN)
	}
	if bs := r.Bindings("1001"); len(bs) != 1 || bs[0].Contact != phone.Contact || bs[0].Expires != now.Add(mobilityLogin) {
		t.Fatalf("1001's bindings after the login: %+v", bs)
	}
	if s, _ := tr.Get("1001"); s.Devices != 1 {
		t.Fatalf("line state of 1001 after the login: %+v", s)
	}
	stored, _ := st.Registrations(ctx)
	if len(stored) != 2 {
		t.Fatalf("stored registrations after the login: %d, want the phone's and the login", len(stored))
	}
	if err := r.Logout(ctx, "1001", dev); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.LoginOn("3001", "UDP", phone.Source, ""); ok || len(r.Bindings("1001")) != 0 {
		t.Fatal("still logged in after the logout")
	}
	if len(resets) != 0 {
		t.Fatalf("resets reported by login and logout: %v", resets)
	}

	now = now.Add(2 * time.Hour) // the phone's registration expires
	r.expire(ctx)
	if len(resets) != 1 || resets[0] != "3001" {
		t.Fatalf("resets after the expiry: %v, want 3001", resets)
	}
}

// TestB3_LoadWhileCounted: the stored registrations are loaded while the
// metrics sampler already counts bindings (as at a start): no unlocked
// map write (a start with 100k of them died of "concurrent map iteration
// and map write"), and every binding is there afterwards.
func TestB3_LoadWhileCounted(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
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
	err := r.Load(ctx)
	stop.Store(true)
	<-counted
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Count(); got != n {
		t.Errorf("Count after Load = %d, want %d", got, n)
	}
}

// openStore is a new SQLite store in the test's folder, closed at its end.
func openStore(t *testing.T) *sqlite.SQLite {
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "r.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TestB3_LoadKeepsEachLinesBindings: the stored bindings come back per
// line (several devices, one, none), expired ones and those of a line no
// longer configured are dropped from the store, and a binding added after
// the start changes its line only.
func TestB3_LoadKeepsEachLinesBindings(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	now := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	bind := func(dn string, dev int, exp time.Duration) Binding {
		src := fmt.Sprintf("127.0.0.1:%d", 5000+dev)
		return Binding{DN: dn, Contact: "sip:" + dn + "@" + src, Source: src, Transport: "UDP",
			CallID: fmt.Sprintf("boot-%s-%d", dn, dev), CSeq: 1, Expires: now.Add(exp)}
	}
	for _, b := range []Binding{bind("1001", 1, time.Hour), bind("1001", 2, time.Hour), bind("1002", 3, time.Hour),
		bind("1002", 4, -time.Second), bind("1003", 5, time.Hour), bind("1003", 6, time.Hour), bind("9999", 7, time.Hour)} {
		if err := st.PutRegistration(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	lines := []config.Line{{DN: "1001", Kind: config.KindPhone, MaxDevices: 4}, {DN: "1002", Kind: config.KindPhone, MaxDevices: 4},
		{DN: "1003", Kind: config.KindPhone, MaxDevices: 4}, {DN: "1004", Kind: config.KindPhone, MaxDevices: 4}}
	tr := linestate.New(slog.New(slog.DiscardHandler))
	for _, l := range lines {
		tr.SetLine(l.DN, 1)
	}
	r := New(config.Default().SIP, directory.New(lines), auth.New("test"), st, tr, slog.New(slog.DiscardHandler))
	r.now = func() time.Time { return now }
	if err := r.Load(ctx); err != nil {
		t.Fatal(err)
	}
	check := func(dn string, devs ...int) {
		t.Helper()
		got := r.Bindings(dn)
		if len(got) != len(devs) {
			t.Fatalf("line %s: %d bindings %+v, want %d", dn, len(got), got, len(devs))
		}
		for i, d := range devs {
			if got[i].Source != fmt.Sprintf("127.0.0.1:%d", 5000+d) {
				t.Fatalf("line %s: binding %d from %s, want device %d", dn, i, got[i].Source, d)
			}
		}
		if s, _ := tr.Get(dn); s.Devices != len(devs) {
			t.Fatalf("line %s: line state counts %d devices, want %d", dn, s.Devices, len(devs))
		}
	}
	check("1001", 1, 2)
	check("1002", 3)
	check("1003", 5, 6)
	check("1004")
	stored, err := st.Registrations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != 5 {
		t.Fatalf("%d bindings stored after the load, want 5 (the expired one and line 9999's dropped)", len(stored))
	}
	// A login adds a binding to 1002: 1003's, next to it in memory, stay.
	if err := r.Login(ctx, "1002", "502", bind("1003", 5, time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := r.Bindings("1002"); len(got) != 2 {
		t.Fatalf("line 1002 after a login: %+v, want 2 bindings", got)
	}
	check("1003", 5, 6)
}
