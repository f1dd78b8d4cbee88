package app

import (
	"github.com/callbackd/callbackd/internal/config"
	"github.com/callbackd/callbackd/internal/engine"
	"github.com/callbackd/callbackd/internal/events"
	"github.com/callbackd/callbackd/internal/linestate"
	"github.com/callbackd/callbackd/internal/metrics"
	"github.com/callbackd/callbackd/internal/screen"
	"github.com/callbackd/callbackd/internal/store"
	"github.com/callbackd/callbackd/internal/throttle"
)

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

func (a *App) Screen(dn string) (screen.Screen, bool)      { return a.Callback.Screen(dn) }
func (a *App) Press(dn, key string) (screen.Screen, error) { return a.Callback.Press(dn, key) }
func (a *App) Activate(caller, callee string) screen.Screen {
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
