package sipserver

import (
	"time"

	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/emiago/sipgo/sip"

	"github.com/callbackd/callbackd/internal/b2bua"
	"github.com/callbackd/callbackd/internal/config"
	"github.com/callbackd/callbackd/internal/engine"
	"github.com/callbackd/callbackd/internal/events"
	"github.com/callbackd/callbackd/internal/linestate"
	"github.com/callbackd/callbackd/internal/metrics"
	"github.com/callbackd/callbackd/internal/store"
)

// Changes while running (F36): lines and service parameters changed through
// the API are applied to every part at once and stored, so that they
// outlive a restart. At start the stored changes overlay the configuration
// file (overlay), and the log says so.

// paramsSetting is the settings-table name of the service parameters.
const paramsSetting = "callback"

// ErrLineExists and ErrNoLine are the conflicts PutLine and RemoveLine report.
var (
	ErrLineExists = errors.New("line exists")
	ErrNoLine     = errors.New("no such line")
)

// overlay applies the stored API changes to cfg (lines, parameters).
func (s *Server) overlay(ctx context.Context, cfg *config.Config) error {
	stored, err := s.Store.Lines(ctx)
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
				s.Log.Info("line removed through the API stays removed", "dn", sl.DN)
			}
			continue
		}
		var l config.Line
		if err := json.Unmarshal(sl.Data, &l); err != nil || l.DN != sl.DN || len(config.CheckLine(l)) > 0 {
			s.Log.Error("stored line unreadable, ignored", "dn", sl.DN, "error", err)
			continue
		}
		if i >= 0 {
			cfg.Lines[i] = l
		} else {
			cfg.Lines = append(cfg.Lines, l)
		}
		s.Log.Info("line from the API", "dn", l.DN)
	}
	settings, err := s.Store.Settings(ctx)
	if err != nil {
		return fmt.Errorf("load stored settings: %w", err)
	}
	if data, ok := settings[paramsSetting]; ok {
		cb := cfg.Callback
		if err := json.Unmarshal(data, &cb); err != nil || len(config.CheckCallback(cb)) > 0 {
			s.Log.Error("stored service parameters unreadable, using the configuration's", "error", err)
		} else {
			if cb != cfg.Callback {
				s.Log.Info("service parameters changed through the API are in force (DELETE /api/v1/params to return to the configuration's)")
			}
			cfg.Callback = cb
		}
	}
	return nil
}

// PutLine adds (create) or replaces (!create) a line while running. The
// caller has checked it (config.CheckLine).
func (s *Server) PutLine(ctx context.Context, l config.Line, create bool) error {
	s.liveMu.Lock()
	defer s.liveMu.Unlock()
	_, exists := s.Directory.Line(l.DN)
	switch {
	case create && exists:
		return ErrLineExists
	case !create && !exists:
		return ErrNoLine
	}
	data, err := json.Marshal(l)
	if err != nil {
		return err
	}
	if err := s.Store.PutLine(ctx, store.Line{DN: l.DN, Data: data}); err != nil {
		return err
	}
	s.Directory.Put(l)
	s.Lines.SetLine(l.DN, l.BusyTrigger)
	s.Callback.LineChanged(l)
	s.Log.Info("line saved", "dn", l.DN, "new", create)
	return nil
}

// RemoveLine removes a line while running: its devices are unregistered,
// and the engine ends the call backs it takes part in (F24).
func (s *Server) RemoveLine(ctx context.Context, dn string) error {
	s.liveMu.Lock()
	defer s.liveMu.Unlock()
	if _, ok := s.Directory.Line(dn); !ok {
		return ErrNoLine
	}
	if err := s.Store.PutLine(ctx, store.Line{DN: dn, Deleted: true}); err != nil {
		return err
	}
	s.Directory.Remove(dn)
	if err := s.Registrar.DropLine(ctx, dn); err != nil {
		s.Log.Error("registrations of a removed line not dropped", "dn", dn, "error", err)
	}
	s.Callback.LineRemoved(dn)
	s.Lines.RemoveLine(dn)
	s.Log.Info("line removed", "dn", dn)
	return nil
}

// SetParams puts service parameters in force and stores them. The caller
// has checked them (config.CheckCallback).
func (s *Server) SetParams(ctx context.Context, cb config.Callback) error {
	s.liveMu.Lock()
	defer s.liveMu.Unlock()
	data, err := json.Marshal(cb)
	if err != nil {
		return err
	}
	if err := s.Store.PutSetting(ctx, paramsSetting, data); err != nil {
		return err
	}
	s.apply(cb)
	return nil
}

// ResetParams returns to the configuration file's parameters.
func (s *Server) ResetParams(ctx context.Context) error {
	s.liveMu.Lock()
	defer s.liveMu.Unlock()
	if err := s.Store.DeleteSetting(ctx, paramsSetting); err != nil {
		return err
	}
	s.apply(s.fileParams)
	return nil
}

// ReloadParams takes the service parameters of a configuration file read
// again (SIGHUP, F36). They are put in force unless parameters changed
// through the API are (those win until DELETE /api/v1/params); it reports
// whether they were.
func (s *Server) ReloadParams(ctx context.Context, cb config.Callback) (bool, error) {
	s.liveMu.Lock()
	defer s.liveMu.Unlock()
	s.fileParams = cb
	settings, err := s.Store.Settings(ctx)
	if err != nil {
		return false, err
	}
	if _, ok := settings[paramsSetting]; ok {
		return false, nil
	}
	s.apply(cb)
	return true, nil
}

func (s *Server) apply(cb config.Callback) {
	s.Callback.SetParams(cb)
	s.Log.Info("service parameters changed", "params", fmt.Sprintf("%+v", cb))
	s.Hub.Publish(events.Event{Type: "params", Data: cb})
}

// publish turns what the parts report into live events (the API's SSE).
func (s *Server) publish() {
	s.Lines.Subscribe(func(c linestate.Change) {
		s.Hub.Publish(events.Event{Type: "line", DN: c.New.DN, Data: c.New})
	})
	s.Registrar.OnChange(func(dn string, _ []b2bua.Binding) {
		s.Hub.Publish(events.Event{Type: "registration", DN: dn})
	})
	s.Callback.Observe = func(a engine.Action) {
		s.Metrics.Action(a)
		switch a := a.(type) {
		case engine.ShowScreen:
			s.Hub.Publish(events.Event{Type: "screen", DN: a.DN, Data: a.Screen})
		case engine.Persist:
			s.Hub.Publish(events.Event{Type: "callback", DN: a.Request.A, Data: RequestEvent{Op: "update", Request: a.Request}})
		case engine.Delete:
			s.Hub.Publish(events.Event{Type: "callback", Data: RequestEvent{Op: "end", ID: a.ID, Reason: string(a.Reason)}})
		}
	}
}

// RequestEvent is the data of a "callback" event.
type RequestEvent struct {
	Op      string         `json:"op"` // update (stored), end
	ID      int64          `json:"id,omitempty"`
	Reason  string         `json:"reason,omitempty"`
	Request engine.Request `json:"request,omitzero"`
}

// phones is the B2BUA as the Call Back service sees it, with the calls the
// server places itself counted.
type phones struct {
	*b2bua.B2BUA
	m *metrics.Metrics
}

func (p phones) Connect(caller, callee string) error {
	err := p.B2BUA.Connect(caller, callee)
	if err != nil {
		p.m.Recall("failed")
	} else {
		p.m.Recall("connected")
	}
	return err
}

func (p phones) Recall(id int64, caller, callee string, ring time.Duration) error {
	err := p.B2BUA.Recall(id, caller, callee, ring)
	if err != nil {
		p.m.Recall("failed")
	} else {
		p.m.Recall("connected")
	}
	return err
}

// tracer sees every SIP message the transports read or write (sipgo's
// debug hook): it counts them, and logs them while the SIP trace is on
// (F36, F37; switched through the API).
type tracer struct {
	on atomic.Bool
	s  atomic.Pointer[Server]
}

// The hook is global in sipgo; the last server made owns it.
var sipTrace tracer

func (t *tracer) SIPTraceRead(transport, laddr, raddr string, msg []byte) {
	t.see("in", transport, laddr, raddr, msg)
}

func (t *tracer) SIPTraceWrite(transport, laddr, raddr string, msg []byte) {
	t.see("out", transport, laddr, raddr, msg)
}

func (t *tracer) see(dir, transport, laddr, raddr string, msg []byte) {
	s := t.s.Load()
	if s == nil {
		return
	}
	if kind := messageKind(msg); kind != "" {
		s.Metrics.SIPMessage(dir, kind)
	}
	if t.on.Load() {
		s.Log.Info("sip trace", "direction", dir, "transport", transport, "local", laddr, "remote", raddr, "message", string(msg))
	}
}

// messageKind is a request's method or a response's status code, from the
// start line; "" for what is neither (keep-alives, garbage).
func messageKind(msg []byte) string {
	i := bytes.IndexByte(msg[:min(len(msg), 64)], ' ')
	if i <= 0 {
		return ""
	}
	line := msg[:i]
	if string(line) == "SIP/2.0" {
		rest := msg[len(line)+1:]
		if len(rest) >= 3 && rest[0] >= '1' && rest[0] <= '6' && rest[1] >= '0' && rest[1] <= '9' && rest[2] >= '0' && rest[2] <= '9' {
			return string(rest[:3])
		}
		return ""
	}
	for _, m := range []sip.RequestMethod{sip.INVITE, sip.ACK, sip.BYE, sip.CANCEL, sip.REGISTER, sip.OPTIONS, sip.MESSAGE, sip.INFO, sip.UPDATE, sip.NOTIFY, sip.SUBSCRIBE, sip.PUBLISH, sip.REFER, sip.PRACK} {
		if string(line) == string(m) {
			return string(m)
		}
	}
	return "other"
}

// SetSIPTrace switches the logging of every SIP message on or off.
func (s *Server) SetSIPTrace(on bool) { sipTrace.on.Store(on) }

// SIPTrace reports whether SIP messages are logged.
func (s *Server) SIPTrace() bool { return sipTrace.on.Load() }
