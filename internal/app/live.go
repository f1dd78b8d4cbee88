package app

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/callbackd/callbackd/internal/b2bua"
	"github.com/callbackd/callbackd/internal/config"
	"github.com/callbackd/callbackd/internal/directory"
	"github.com/callbackd/callbackd/internal/engine"
	"github.com/callbackd/callbackd/internal/events"
	"github.com/callbackd/callbackd/internal/linestate"
	"github.com/callbackd/callbackd/internal/store"
)

// Changes while running (F36): lines and service parameters changed through
// the API are applied to every part at once and stored, so that they
// outlive a restart. At start the stored changes overlay the configuration
// file (overlay), and the log says so.

// paramsSetting is the settings-table name of the service parameters.
const paramsSetting = "callback"

// overlay applies the stored API changes to cfg (lines, parameters).
func (a *App) overlay(ctx context.Context, cfg *config.Config) error {
	stored, err := a.Store.Lines(ctx)
	if err != nil {
		return fmt.Errorf("load stored lines: %w", err)
	}
	for _, sl := range stored {
		i := -1
		for j, l := range cfg.Lines {
			if l.DN == sl.DN {
				i = j
			}
		}
		if sl.Deleted {
			if i >= 0 {
				cfg.Lines = append(cfg.Lines[:i], cfg.Lines[i+1:]...)
				a.Log.Info("line removed through the API stays removed", "dn", sl.DN)
			}
			continue
		}
		var l config.Line
		if err := json.Unmarshal(sl.Data, &l); err != nil || l.DN != sl.DN || len(config.CheckLine(l)) > 0 {
			a.Log.Error("stored line unreadable, ignored", "dn", sl.DN, "error", err)
			continue
		}
		if i >= 0 {
			cfg.Lines[i] = l
		} else {
			cfg.Lines = append(cfg.Lines, l)
		}
		a.Log.Info("line from the API", "dn", l.DN)
	}
	settings, err := a.Store.Settings(ctx)
	if err != nil {
		return fmt.Errorf("load stored settings: %w", err)
	}
	if data, ok := settings[paramsSetting]; ok {
		cb := cfg.Callback
		if err := json.Unmarshal(data, &cb); err != nil || len(config.CheckCallback(cb)) > 0 {
			a.Log.Error("stored service parameters unreadable, using the configuration's", "error", err)
		} else {
			if cb != cfg.Callback {
				a.Log.Info("service parameters changed through the API are in force (DELETE /api/v1/params to return to the configuration's)")
			}
			cfg.Callback = cb
		}
	}
	return nil
}

// PutLine adds (create) or replaces (!create) a line while running. The
// caller has checked it (config.CheckLine).
func (a *App) PutLine(ctx context.Context, l config.Line, create bool) error {
	a.liveMu.Lock()
	defer a.liveMu.Unlock()
	_, exists := a.Directory.Line(l.DN)
	switch {
	case create && exists:
		return directory.ErrLineExists
	case !create && !exists:
		return directory.ErrNoLine
	}
	data, err := json.Marshal(l)
	if err != nil {
		return err
	}
	if err := a.Store.PutLine(ctx, store.Line{DN: l.DN, Data: data}); err != nil {
		return err
	}
	a.Directory.Put(l)
	a.Lines.SetLine(l.DN, l.BusyTrigger)
	a.Callback.LineChanged(l)
	a.Log.Info("line saved", "dn", l.DN, "new", create)
	return nil
}

// RemoveLine removes a line while running: its devices are unregistered,
// and the engine ends the call backs it takes part in (F24).
func (a *App) RemoveLine(ctx context.Context, dn string) error {
	a.liveMu.Lock()
	defer a.liveMu.Unlock()
	if _, ok := a.Directory.Line(dn); !ok {
		return directory.ErrNoLine
	}
	if err := a.Store.PutLine(ctx, store.Line{DN: dn, Deleted: true}); err != nil {
		return err
	}
	a.Directory.Remove(dn)
	if err := a.Registrar.DropLine(ctx, dn); err != nil {
		a.Log.Error("registrations of a removed line not dropped", "dn", dn, "error", err)
	}
	a.Callback.LineRemoved(dn)
	a.Lines.RemoveLine(dn)
	a.Log.Info("line removed", "dn", dn)
	return nil
}

// SetParams puts service parameters in force and stores them. The caller
// has checked them (config.CheckCallback).
func (a *App) SetParams(ctx context.Context, cb config.Callback) error {
	a.liveMu.Lock()
	defer a.liveMu.Unlock()
	data, err := json.Marshal(cb)
	if err != nil {
		return err
	}
	if err := a.Store.PutSetting(ctx, paramsSetting, data); err != nil {
		return err
	}
	a.apply(cb)
	return nil
}

// ResetParams returns to the configuration file's parameters.
func (a *App) ResetParams(ctx context.Context) error {
	a.liveMu.Lock()
	defer a.liveMu.Unlock()
	if err := a.Store.DeleteSetting(ctx, paramsSetting); err != nil {
		return err
	}
	a.apply(a.fileParams)
	return nil
}

// ReloadParams takes the service parameters of a configuration file read
// again (SIGHUP, F36). They are put in force unless parameters changed
// through the API are (those win until DELETE /api/v1/params); it reports
// whether they were.
func (a *App) ReloadParams(ctx context.Context, cb config.Callback) (bool, error) {
	a.liveMu.Lock()
	defer a.liveMu.Unlock()
	a.fileParams = cb
	settings, err := a.Store.Settings(ctx)
	if err != nil {
		return false, err
	}
	if _, ok := settings[paramsSetting]; ok {
		return false, nil
	}
	a.apply(cb)
	return true, nil
}

func (a *App) apply(cb config.Callback) {
	a.Callback.SetParams(cb)
	a.Log.Info("service parameters changed", "params", fmt.Sprintf("%+v", cb))
	a.Hub.Publish(events.Event{Type: "params", Data: cb})
}

// publish turns what the parts report into live events (the API's SSE).
func (a *App) publish() {
	a.Lines.Subscribe(func(c linestate.Change) {
		a.Hub.Publish(events.Event{Type: "line", DN: c.New.DN, Data: c.New})
	})
	a.Registrar.OnChange(func(dn string, _ []b2bua.Binding) {
		a.Hub.Publish(events.Event{Type: "registration", DN: dn})
	})
	a.Callback.Observe = func(act engine.Action) {
		a.Metrics.Action(act)
		switch act := act.(type) {
		case engine.ShowScreen:
			a.Hub.Publish(events.Event{Type: "screen", DN: act.DN, Data: act.Screen})
		case engine.Persist:
			a.Hub.Publish(events.Event{Type: "callback", DN: act.Request.A, Data: events.RequestEvent{Op: "update", Request: act.Request}})
		case engine.Delete:
			a.Hub.Publish(events.Event{Type: "callback", Data: events.RequestEvent{Op: "end", ID: act.ID, Reason: string(act.Reason)}})
		}
	}
}
