package app

import (
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/callbackd/callbackd/internal/auth"
	"github.com/callbackd/callbackd/internal/b2bua"
	"github.com/callbackd/callbackd/internal/callcompletion"
	"github.com/callbackd/callbackd/internal/config"
	"github.com/callbackd/callbackd/internal/engine"
	"github.com/callbackd/callbackd/internal/sipmsg"
)

// callCompletion builds the RFC 6910 monitor and agent when a trunk speaks
// call completion (trunk.call_completion) or our phones do
// (sip.call_completion_phones, proven by au's digest) and wires them: the
// call-completion event package on the subscription layer (the monitor
// as notifier, the agent as subscriber), the engine's peer messages (the
// one executor's Peers), the CC calls the B2BUA receives and places. nil
// when no trunk speaks it.
func (a *App) callCompletion(cfg *config.Config, au *auth.Authenticator) *callcompletion.Monitor {
	speaks := cfg.SIP.CallCompletionPhones
	for _, t := range cfg.Trunks {
		speaks = speaks || t.CallCompletion
	}
	if !speaks {
		return nil
	}
	m := callcompletion.NewMonitor(cfg.Trunks, func(dn string) bool { _, ok := a.Directory.Line(dn); return ok }, a.Log)
	m.Engine, m.Events = a.Callback, a.Subscriptions
	m.Phones = cfg.SIP.CallCompletionPhones
	m.Prove = func(req *sip.Request, tx sip.ServerTransaction) (string, bool) {
		d, ok := au.Prove(tx, req, a.Directory.Password, a.Registrar.HomeOf, a.Log)
		return d.User, ok
	}
	a.Subscriptions.Register(m)
	a.B2BUA.OnCCCall = m.CCCall

	g := callcompletion.NewAgent(cfg.Trunks, a.Log)
	g.Engine, g.Subs, g.Client, g.Msg, g.Domain = a.Callback, a.Subscriptions, a.SIP.Client(), sipmsg.NewBuilder(a.SIP.Local()), cfg.SIP.Domain
	g.Expires = func(k engine.Kind) time.Duration {
		if p := a.Callback.Params(); k == engine.CCNR {
			return p.LifetimeCCNR.Duration
		} else {
			return p.Lifetime.Duration
		}
	}
	a.Subscriptions.Register(g)
	a.CCAgent = g
	a.B2BUA.CCCallTo = func(trunk, caller, callee string) string { return string(g.CCCall(trunk, caller, callee)) }
	a.Callback.Peers = callcompletion.Peers{Monitor: m, Agent: g}
	return m
}

// publishHandler is the PUBLISH handler: the monitor's, or none (405).
func (a *App) publishHandler() sipgo.RequestHandler {
	if a.CallCompletion == nil {
		return nil
	}
	return a.CallCompletion.Pubs.Handle
}

// callFailed tells the monitor of a trunk caller's or a line's failed call
// (only that caller may then subscribe for the callee, RFC 6910 s7.2; a
// line only with sip.call_completion_phones), and the agent
// of a line's failed call through a trunk (its Call-Info's cc-URI).
func (a *App) callFailed(r b2bua.Result) {
	if a.CallCompletion == nil {
		return
	}
	if r.CalleeTrunk != "" && r.Outcome != b2bua.Answered {
		a.CCAgent.CallFailed(r.CalleeTrunk, r.Caller, r.Callee, r.CallInfo)
	}
	if r.CallerTrunk == "" {
		r.CallerTrunk = callcompletion.PhonePeer(r.Caller) // its phone may be the agent (Monitor.Phones)
	}
	kinds := map[b2bua.Outcome]engine.Kind{b2bua.FailBusy: engine.CCBS, b2bua.FailDND: engine.CCBS,
		b2bua.FailNoAnswer: engine.CCNR, b2bua.FailUnregistered: engine.CCNL}
	if k, ok := kinds[r.Outcome]; ok {
		a.CallCompletion.CallFailed(r.CallerTrunk, r.Caller, r.Callee, k)
	}
}
