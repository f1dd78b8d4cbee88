package app

import (
	"github.com/emiago/sipgo"

	"github.com/callbackd/callbackd/internal/b2bua"
	"github.com/callbackd/callbackd/internal/callcompletion"
	"github.com/callbackd/callbackd/internal/config"
	"github.com/callbackd/callbackd/internal/engine"
)

// callCompletion builds the RFC 6910 monitor when a trunk speaks call
// completion (trunk.call_completion) and wires it: the call-completion
// event package on the subscription layer, the engine's peer messages
// (the one executor's Peers), the CC calls the B2BUA receives. nil when no
// trunk speaks it.
func (a *App) callCompletion(cfg *config.Config) *callcompletion.Monitor {
	speaks := false
	for _, t := range cfg.Trunks {
		speaks = speaks || t.CallCompletion
	}
	if !speaks {
		return nil
	}
	m := callcompletion.NewMonitor(cfg.Trunks, func(dn string) bool { _, ok := a.Directory.Line(dn); return ok }, a.Log)
	m.Engine, m.Events = a.Callback, a.Subscriptions
	a.Subscriptions.Register(m)
	a.Callback.Peers = callcompletion.Peers{Monitor: m}
	a.B2BUA.OnCCCall = m.CCCall
	return m
}

// publishHandler is the PUBLISH handler: the monitor's, or none (405).
func (a *App) publishHandler() sipgo.RequestHandler {
	if a.CallCompletion == nil {
		return nil
	}
	return a.CallCompletion.Pubs.Handle
}

// callFailed tells the monitor of a trunk caller's failed call: only that
// caller may then subscribe for the callee (RFC 6910 s7.2).
func (a *App) callFailed(r b2bua.Result) {
	if a.CallCompletion == nil || r.CallerTrunk == "" {
		return
	}
	kinds := map[b2bua.Outcome]engine.Kind{b2bua.FailBusy: engine.CCBS, b2bua.FailDND: engine.CCBS,
		b2bua.FailNoAnswer: engine.CCNR, b2bua.FailUnregistered: engine.CCNL}
	if k, ok := kinds[r.Outcome]; ok {
		a.CallCompletion.CallFailed(r.CallerTrunk, r.Caller, r.Callee, k)
	}
}
