// Package app is callbackd's composition root: it builds the parts (the
// directory, line state, authentication, registrar, B2BUA, Call Back
// service, metrics, live events, the failed-authentication guard), wires
// what each reports to the parts that act on it, hands the SIP front
// (internal/sipserver) its handlers, and runs them in order (Run). It
// also owns what changes while running (live.go: lines and service
// parameters through the API, the live events), a line's own feature
// codes (features.go), the store backend chosen from [store] driver
// (store.go), and answers what the HTTP API asks (internal/api Server).
package app

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/callbackd/callbackd/internal/auth"
	"github.com/callbackd/callbackd/internal/b2bua"
	"github.com/callbackd/callbackd/internal/callback"
	"github.com/callbackd/callbackd/internal/callcompletion"
	"github.com/callbackd/callbackd/internal/cluster"
	"github.com/callbackd/callbackd/internal/config"
	"github.com/callbackd/callbackd/internal/dialogevent"
	"github.com/callbackd/callbackd/internal/directory"
	"github.com/callbackd/callbackd/internal/engine"
	"github.com/callbackd/callbackd/internal/events"
	"github.com/callbackd/callbackd/internal/linestate"
	"github.com/callbackd/callbackd/internal/media"
	"github.com/callbackd/callbackd/internal/metrics"
	"github.com/callbackd/callbackd/internal/registrar"
	"github.com/callbackd/callbackd/internal/screen"
	"github.com/callbackd/callbackd/internal/sipmsg"
	"github.com/callbackd/callbackd/internal/sipserver"
	"github.com/callbackd/callbackd/internal/store"
	"github.com/callbackd/callbackd/internal/subscription"
	"github.com/callbackd/callbackd/internal/throttle"
)

// App is the running server: its parts, built and wired by New.
type App struct {
	Config    *config.Config // without Lines: the Directory has them
	Log       *slog.Logger
	Store     store.Store
	SIP       *sipserver.Server // listeners and request routing
	Directory *directory.Directory
	Lines     *linestate.Tracker
	Registrar *registrar.Registrar
	B2BUA     *b2bua.B2BUA
	Callback  *callback.Service
	Metrics   *metrics.Metrics
	Hub       *events.Hub // live events (the API's server-sent events)
	// Subscriptions is SUBSCRIBE/NOTIFY (RFC 6665), both sides, for the
	// event packages registered on it.
	Subscriptions *subscription.Layer
	// CallCompletion is the RFC 6910 monitor; nil when no trunk speaks it.
	CallCompletion *callcompletion.Monitor
	CCAgent        *callcompletion.Agent // with CallCompletion
	Dialogs        *dialogevent.Server   // Event: dialog for our lines (RFC 4235)
	Watcher        *dialogevent.Watcher  // Event: dialog of callees on other servers (B6)
	// Guard throttles failed authentications (B7), shared by SIP digest,
	// HTTP Basic and the mobility PIN.
	Guard *throttle.Guard
	// Cluster is this instance's term as a cluster's active (cluster.go),
	// set before Run; nil: a single instance.
	Cluster *cluster.Elector

	liveMu     sync.Mutex      // serialises changes while running (live.go)
	fileParams config.Callback // the configuration file's parameters
	serving    chan struct{}   // closed once SIP is served and the requests restored
}

// New binds the SIP listeners and builds every part over the store st,
// the stored API changes overlaid on cfg. Nothing is served until Run.
func New(cfg *config.Config, st store.Store, log *slog.Logger) (*App, error) {
	a := &App{Config: cfg, Log: log, Store: st, serving: make(chan struct{}), Hub: events.NewHub(), fileParams: cfg.Callback,
		Guard: throttle.NewGuard(throttle.Default, log)}
	if err := a.overlay(context.Background(), cfg); err != nil {
		return nil, err
	}
	sip, err := sipserver.New(cfg.SIP, log)
	if err != nil {
		return nil, err
	}
	a.SIP = sip

	a.Directory = directory.New(cfg.Lines)
	a.Lines = linestate.New(log)
	for _, l := range cfg.Lines {
		a.Lines.SetLine(l.DN, l.BusyTrigger)
	}
	au := auth.New(cfg.SIP.Realm, cfg.SIP.DigestAlgorithms...)
	au.Guard = a.Guard // digest failures throttled (B7, docs/security.md)
	a.Registrar = registrar.New(cfg.SIP, a.Directory, au, st, a.Lines, log)
	mediaIP, _ := netip.ParseAddr(cfg.Media.Addr(cfg.SIP))
	a.B2BUA = b2bua.New(b2bua.Config{
		Domain: cfg.SIP.Domain, NoAnswerTimeout: cfg.Calls.NoAnswerTimeout.Duration, UserAgent: cfg.SIP.UserAgent,
		MediaIP: mediaIP, RTPPortMin: cfg.Media.RTPPortMin, RTPPortMax: cfg.Media.RTPPortMax, RTPLatch: cfg.Media.RTPLatch,
		VoicemailPilot: cfg.Calls.VoicemailPilot, Trunks: cfg.Trunks,
		TrustRegisteredSource: cfg.SIP.TrustRegisteredSource,
		CallCompletionPhones:  cfg.SIP.CallCompletionPhones,
		DialOut:               func(dn, number string) bool { return a.mayDialOut(dn, number) },
	}, sip.Client(), a.Directory, a.Registrar, a.Lines, au, sip.Local(), log)
	a.B2BUA.Store = st
	ph := phones{B2BUA: a.B2BUA, acting: a.acting}
	a.Callback = callback.New(cfg.Callback, st, a.Directory, a.Lines, &ph, log)
	a.Callback.VoicemailPilot = cfg.Calls.VoicemailPilot
	a.Callback.Profile = a.Profile // a's Config: not the file's, whose lines are dropped below
	a.Registrar.OnReset = a.Callback.DeviceReset
	a.Metrics = metrics.New(metrics.Sources{
		Registrations: a.Registrar.Count,
		ActiveCalls:   a.B2BUA.Calls,
		LineStates: func() map[string]int {
			n := map[string]int{}
			for _, l := range a.Lines.All() {
				n[string(l.State)]++
			}
			return n
		},
		OpenRequests:  func() int { open, _ := a.Callback.Counts(); return open },
		TimersPending: func() int { _, timers := a.Callback.Counts(); return timers },
		RequestStates: a.Callback.RequestStates,
	})
	ph.m = a.Metrics
	a.Guard.Observe(a.Metrics.AuthFailure, a.Metrics.AuthThrottled)
	a.Metrics.Register(sip.Collectors()...)
	a.publish()

	// What the B2BUA reports, to the parts that act on it: the call
	// results and offers to Call Back (never for a trunk caller with an
	// internal number), the feature codes to Call Back or the line's own.
	a.B2BUA.OnResult = func(r b2bua.Result) {
		a.Metrics.CallResult(string(r.Outcome))
		a.callFailed(r)
		if a.impersonates(r) {
			return
		}
		a.Callback.CallResult(r)
	}
	a.B2BUA.IsFeature = func(dialed string) bool { return a.Callback.IsFeature(dialed) || isLineFeature(dialed) }
	a.B2BUA.OnFeature = func(caller, dialed string, from b2bua.Origin) b2bua.Feature {
		if a.Callback.IsFeature(dialed) {
			return a.Callback.Feature(caller, dialed)
		}
		return a.lineFeature(caller, dialed, from)
	}
	a.B2BUA.OfferCallBack = func(r b2bua.Result) b2bua.Offer {
		a.Metrics.CallResult(string(r.Outcome))
		a.callFailed(r)
		if a.impersonates(r) {
			return b2bua.Offer{}
		}
		return a.Callback.Offered(r)
	}
	a.B2BUA.OfferKey = a.Callback.OfferKey
	a.B2BUA.RecallAnswered = a.Callback.RecallAnswered
	a.B2BUA.AlertSound = a.Callback.AlertSound
	a.B2BUA.OnMediaStats = func(st media.StreamStats) { a.Metrics.RTPStream(st.Packets, st.Late) }
	a.B2BUA.OnForeignRTP = a.Metrics.RTPForeign

	a.Subscriptions = subscription.New(sip.Client(), sipmsg.NewBuilder(sip.Local()), st, log)
	a.Subscriptions.Acting = a.acting
	a.CallCompletion = a.callCompletion(cfg, au)
	a.Subscriptions.Limits = subscription.Limits{Min: time.Duration(cfg.SIP.MinExpires) * time.Second,
		Max: time.Duration(cfg.SIP.MaxExpires) * time.Second, Default: time.Duration(cfg.SIP.DefaultExpires) * time.Second,
		PerOwner: subscription.DefaultLimits.PerOwner}
	a.Dialogs = dialogevent.NewServer(a.Subscriptions, a.Lines, au)
	a.Dialogs.Domain, a.Dialogs.Log = cfg.SIP.Domain, log
	a.Dialogs.Line, a.Dialogs.Profile = a.Directory.Line, a.Profile
	a.Dialogs.Password, a.Dialogs.Home = a.Directory.Password, a.Registrar.HomeOf
	a.Subscriptions.Register(a.Dialogs)
	a.Dialogs.Follow()
	// B6: callees on a trunk marked monitor = "dialog" are watched there.
	a.Watcher = dialogevent.NewWatcher(a.Subscriptions)
	a.Watcher.Domain, a.Watcher.Log, a.Watcher.Trunks = cfg.SIP.Domain, log, cfg.Trunks
	a.Watcher.Status, a.Watcher.Lost = a.Callback.RemoteStatus, a.Callback.RemoteLost
	a.Subscriptions.Register(a.Watcher)
	a.Callback.Remote = a.Watcher

	sip.Route(sipserver.Handlers{
		Register:       a.Registrar.HandleRegister,
		Invite:         a.B2BUA.HandleInvite,
		Ack:            a.B2BUA.HandleAck,
		InDialog:       a.B2BUA.HandleInDialog,
		IsLine:         func(user string) bool { _, ok := a.Directory.Line(user); return ok },
		RegisteredFrom: a.Registrar.RegisteredFrom,
		Counted:        a.Metrics.SIPMessage,
		Refreshes:      a.refreshes,
		Serving:        a.acting,
		StrayResponse:  a.B2BUA.HandleStrayResponse,
		Events:         a.Subscriptions.Handle,
		IsSubscription: a.Subscriptions.Owns,
		Publish:        a.publishHandler(),
	})
	a.warnDialOut()
	// From here the directory holds the lines (the API changes them
	// there): a's copy of the configuration drops its own, which with 100k
	// lines is ~24 MB of a start's heap (issue 14).
	c := *cfg
	c.Lines = nil
	a.Config = &c
	return a, nil
}

// refreshes reports whether REGISTER req refreshes a binding of its line
// (the same Call-ID: RFC 3261 10.2.4), which overload control lets
// through. Asked only while overloaded.
func (a *App) refreshes(req *sip.Request) bool {
	to, id := req.To(), req.CallID()
	if to == nil || id == nil {
		return false
	}
	for _, b := range a.Registrar.Bindings(to.Address.User) {
		if b.CallID == id.Value() {
			return true
		}
	}
	return false
}

// Run restores registrations, serves SIP, then restores the Call Back
// requests, and serves until ctx ends. The requests come back once SIP is
// served because restoring them may already notify callers (their B became
// free while the server was down); a feature code dialed meanwhile waits.
//
// Stopped at any moment, its start included, it returns nil: an error then
// is a restore seeing ctx end ("load requests: context canceled"), not a
// fault.
func (a *App) Run(ctx context.Context) error {
	var err error
	if a.Cluster != nil {
		err = a.runActive(ctx)
	} else {
		err = a.run(ctx)
	}
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func (a *App) run(ctx context.Context) error {
	// The stored requests are read and decoded while the registrations
	// load: the two reads take a core each (issue 14: a start with 100k).
	a.Callback.Preload(ctx)
	if err := a.Registrar.Load(ctx); err != nil {
		return err
	}
	if _, err := a.B2BUA.Restore(ctx); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	// Every goroutine below ends with ctx or its listener: cancel and close
	// first, then wait.
	defer func() {
		cancel()
		a.Subscriptions.Close()
		a.SIP.Close()
		wg.Wait()
	}()
	wg.Add(1)
	go func() { defer wg.Done(); a.Registrar.Run(ctx) }()
	a.SIP.Start(ctx)
	a.B2BUA.Audit()
	if err := a.Subscriptions.Restore(ctx); err != nil {
		return err
	}
	if a.CallCompletion != nil {
		a.CallCompletion.Restore()
	}
	a.Watcher.Restore()
	ready := make(chan error, 1)
	wg.Add(1)
	go func() { defer wg.Done(); a.Callback.Run(ctx, ready) }()
	select {
	case err := <-ready:
		if err != nil {
			return err
		}
		a.Watcher.Prune(a.Callback.Watching) // B6: watches whose call back ended while down
		close(a.serving)
	case <-ctx.Done():
		return nil
	}
	<-ctx.Done()
	return nil
}

// Healthy reports why SIP is not fully served, or nil: before the service
// is up (starting) and once a listener has stopped. /healthz says it.
func (a *App) Healthy() error {
	select {
	case <-a.serving:
	default:
		return errors.New("SIP not served yet (starting)")
	}
	return a.SIP.Healthy()
}

// WaitServing returns once SIP is served and the stored Call Back requests
// are restored, or ctx ends.
func (a *App) WaitServing(ctx context.Context) {
	select {
	case <-a.serving:
	case <-ctx.Done():
	}
}

// RunSampler keeps the last hour of the server's counters for the admin
// page's charts (GET /api/v1/history) until ctx ends.
func (a *App) RunSampler(ctx context.Context) {
	t := time.NewTicker(metrics.HistoryInterval)
	defer t.Stop()
	a.Metrics.RunSampler(ctx, time.Now(), t.C)
}

// phones is the B2BUA as the Call Back service sees it, with the calls the
// server places itself counted.
type phones struct {
	*b2bua.B2BUA
	m      *metrics.Metrics
	acting func() bool // this instance acts now (cluster.go)
}

func (p phones) Connect(caller, callee string) error {
	if !p.acting() {
		return ErrNotActive
	}
	err := p.B2BUA.Connect(caller, callee)
	if err != nil {
		p.m.Recall("failed")
	} else {
		p.m.Recall("connected")
	}
	return err
}

func (p phones) Recall(id int64, caller, callee string, ring time.Duration) error {
	if !p.acting() {
		return ErrNotActive
	}
	err := p.B2BUA.Recall(id, caller, callee, ring)
	if err != nil {
		p.m.Recall("failed")
	} else {
		p.m.Recall("connected")
	}
	return err
}

// impersonates reports whether r is a call from outside (through a trunk)
// whose caller number is one of our lines' DNs: Call Back must not take it
// for that line (B7: trunk callers are outsiders whatever their From), so
// it is not told about it.
func (a *App) impersonates(r b2bua.Result) bool {
	if r.CallerTrunk == "" {
		return false
	}
	if _, ok := a.Directory.Line(r.Caller); !ok {
		return false
	}
	a.Log.Info("call from a trunk with an internal number as caller: no call back", "trunk", r.CallerTrunk, "caller", r.Caller)
	return true
}

// warnDialOut says at start when trunks are configured but no line may
// call out through them (F32: dial_out is "none" unless a profile says
// otherwise), which after an upgrade looks like a broken trunk.
func (a *App) warnDialOut() {
	if len(a.Config.Trunks) == 0 {
		return
	}
	for _, l := range a.Config.Lines {
		if p, ok := a.Config.Profile(l.Profile); ok && len(p.DialOut) > 0 {
			return
		}
	}
	a.Log.Warn("trunks are configured but no line's profile allows dialing out (profile dial_out, docs/config.md): lines cannot call or forward to external numbers")
}

// What the HTTP API asks of the server (internal/api Server), answered by
// the part that knows. PutLine, RemoveLine and the parameters' changes
// are in live.go.

func (a *App) AllLines() []config.Line                    { return a.Directory.Lines() }
func (a *App) Line(dn string) (config.Line, bool)         { return a.Directory.Line(dn) }
func (a *App) Password(dn string) (string, bool)          { return a.Directory.Password(dn) }
func (a *App) Profile(name string) (config.Profile, bool) { return a.Config.Profile(name) }
func (a *App) LineState(dn string) (linestate.Snapshot, bool) {
	return a.Lines.Get(dn)
}

// External reports whether number is called through a trunk.
func (a *App) External(number string) bool {
	_, ok := a.Config.Trunks.For(number)
	return ok
}

func (a *App) Registrations() []store.Registration { return a.Registrar.All() }
func (a *App) RegistrationCount() int              { return a.Registrar.Count() }
func (a *App) ActiveCalls() int                    { return a.B2BUA.Calls() }

func (a *App) Screen(dn string) (screen.Screen, bool) { return a.Callback.Screen(dn) }
func (a *App) Press(dn, key string) (engine.Pressed, screen.Screen, error) {
	return a.Callback.Press(dn, key)
}
func (a *App) PressOn(id int64, dn, key string) (engine.Pressed, screen.Screen, error) {
	return a.Callback.PressOn(id, dn, key)
}
func (a *App) Activate(caller, callee string) (engine.Pressed, screen.Screen) {
	return a.Callback.Activate(caller, callee)
}
func (a *App) Requests() []engine.Request        { return a.Callback.Requests() }
func (a *App) RequestCounts() (open, timers int) { return a.Callback.Counts() }
func (a *App) Params() config.Callback           { return a.Callback.Params() }

func (a *App) Notifications() int64       { return a.Metrics.Notifications() }
func (a *App) History() *metrics.History  { return a.Metrics.History() }
func (a *App) AuthGuard() *throttle.Guard { return a.Guard }
func (a *App) Watch(filter func(events.Event) bool) *events.Watcher {
	return a.Hub.Watch(filter)
}

// SIPTrace reports whether SIP messages are logged; SetSIPTrace switches
// it (F36, F37).
func (a *App) SIPTrace() bool      { return a.SIP.SIPTrace() }
func (a *App) SetSIPTrace(on bool) { a.SIP.SetSIPTrace(on) }
