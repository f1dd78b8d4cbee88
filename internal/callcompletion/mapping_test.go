package callcompletion

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/callbackd/callbackd/internal/engine"
)

// link joins two engines, A's server (the agent) and B's server (the
// monitor), by the RFC 6910 mapping only: every ToPeer goes through
// AgentRequest or Notify, the wire form, and back through Notified or the
// monitor's reading of it, as the SIP side will.
type link struct {
	t          *testing.T
	now        time.Time
	agent, mon *engine.Engine
	accepted   bool  // the agent saw queued or a 2xx
	subRef     int64 // the monitor's number for the subscription
	agentRef   int64 // the agent's request ID
	wire       []string
	agentActs  []engine.Action
}

func newLink(t *testing.T) *link {
	p := engine.Params{Enabled: true, CCNREnabled: true}
	l := &link{t: t, now: time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC), agent: engine.New(p), mon: engine.New(p)}
	l.toAgent(engine.LineConfig{Line: engine.Line{DN: "1001", Name: "1001"}})
	l.toAgent(engine.LineConfig{Line: engine.Line{DN: "2001", Peer: "pbx-b", PeerCC: true}})
	l.toMonitor(engine.LineConfig{Line: engine.Line{DN: "2001", Name: "2001"}})
	return l
}

func (l *link) toAgent(ev engine.Event) {
	acts := l.agent.Step(l.now, ev)
	l.agentActs = append(l.agentActs, acts...)
	for _, a := range acts {
		tp, ok := a.(engine.ToPeer)
		if !ok {
			continue
		}
		r, ok := AgentRequest(tp.Msg)
		if !ok {
			l.t.Fatalf("the agent's engine sent %v, which the agent does not send", tp.Msg)
		}
		l.agentRef = tp.Msg.Ref
		m := engine.PeerMessage{Peer: "pbx-a", Ref: l.subRef}
		switch {
		case r.Method == "SUBSCRIBE" && !r.Unsubscribe:
			l.wire = append(l.wire, "SUBSCRIBE m="+string(r.M))
			l.subRef++
			m = engine.PeerMessage{Peer: "pbx-a", Type: engine.MsgRequest, Ref: l.subRef, A: tp.Msg.A, B: tp.Msg.B, Kind: KindOf(r.M, engine.CCBS)}
		case r.Method == "SUBSCRIBE":
			l.wire = append(l.wire, "SUBSCRIBE Expires: 0")
			m.Type = engine.MsgCancel
		default:
			pidf, err := ParsePIDF(BuildPIDF("sip:"+tp.Msg.A+"@a", r.Open))
			if err != nil {
				l.t.Fatal(err)
			}
			l.wire = append(l.wire, fmt.Sprintf("PUBLISH open=%v", pidf.Open))
			m.Type = engine.MsgResume
			if !pidf.Open {
				m.Type = engine.MsgSuspend
			}
		}
		l.toMonitor(engine.FromPeer{Msg: m})
	}
}

func (l *link) toMonitor(ev engine.Event) {
	for _, a := range l.mon.Step(l.now, ev) {
		tp, ok := a.(engine.ToPeer)
		if !ok {
			continue
		}
		n, ok := Notify(tp.Msg, "sip:2001@b")
		if !ok {
			l.t.Fatalf("the monitor's engine sent %v, which the monitor does not send", tp.Msg)
		}
		if n.Terminated {
			l.wire = append(l.wire, "NOTIFY terminated;reason="+n.Reason)
		} else {
			body, err := ParseBody(n.Body.Bytes())
			if err != nil {
				l.t.Fatal(err)
			}
			n.Body = body
			l.wire = append(l.wire, "NOTIFY "+string(body.State))
		}
		m := Notified("pbx-b", l.agentRef, n, l.accepted)
		l.accepted = l.accepted || m.Type == engine.MsgAccept
		l.toAgent(engine.FromPeer{Msg: m})
	}
}

func (l *link) expectWire(want ...string) {
	l.t.Helper()
	if got := strings.Join(l.wire, " | "); got != strings.Join(want, " | ") {
		l.t.Fatalf("on the wire: %s\nwant:        %s", got, strings.Join(want, " | "))
	}
	l.wire = nil
}

func (l *link) agentDid(want string) {
	l.t.Helper()
	var all []string
	for i, a := range l.agentActs {
		all = append(all, a.String())
		if strings.Contains(a.String(), want) {
			l.agentActs = l.agentActs[i+1:] // what follows may be expected next
			return
		}
	}
	l.t.Fatalf("the agent's engine did not %q; it did:\n%s", want, strings.Join(all, "\n"))
}

// F3 and B1 through the mapping: CCBS across servers, A busy when B gets
// free suspends (F17), A free again resumes, B available once more, A
// cancels.
func TestF3_MappingJoinsTwoEngines(t *testing.T) {
	l := newLink(t)
	l.toMonitor(engine.LineStatus{DN: "2001", Registered: true, OffHook: true, Full: true})
	l.toAgent(engine.LineStatus{DN: "1001", Registered: true})
	l.toAgent(engine.CallUpdate{From: "1001", To: "2001", Outcome: engine.Busy, Peer: "pbx-b", PeerCC: true})
	l.toAgent(engine.KeyPress{DN: "1001", Key: engine.KeyCallBack, State: engine.RingOut})
	l.expectWire("SUBSCRIBE m=BS", "NOTIFY queued")
	l.agentDid("CCBS active via pbx-b")

	// F17 across servers: A is busy when B gets free.
	l.toAgent(engine.LineStatus{DN: "1001", Registered: true, OffHook: true, Full: true})
	l.toMonitor(engine.LineStatus{DN: "2001", Registered: true})
	l.expectWire("NOTIFY ready", "PUBLISH open=false")
	l.agentDid("suspended via pbx-b")

	l.toAgent(engine.LineStatus{DN: "1001", Registered: true})
	l.expectWire("PUBLISH open=true", "NOTIFY ready")
	l.agentDid("1001: alert")

	l.toAgent(engine.KeyPress{DN: "1001", Key: engine.KeyCancel, State: engine.OnHook})
	l.expectWire("SUBSCRIBE Expires: 0")
	if n := len(l.mon.Requests()); n != 0 {
		t.Fatalf("the monitor keeps %d requests after the cancel", n)
	}
}

// F8 across servers: the monitor refuses (B unknown there) and A hears
// "cannot be activated".
func TestF3_MappingRefused(t *testing.T) {
	l := newLink(t)
	l.toAgent(engine.LineConfig{Line: engine.Line{DN: "2002", Peer: "pbx-b", PeerCC: true}})
	l.toAgent(engine.CallUpdate{From: "1001", To: "2002", Outcome: engine.NoAnswer, Peer: "pbx-b", PeerCC: true})
	l.toAgent(engine.KeyPress{DN: "1001", Key: engine.KeyCallBack, State: engine.RingOut})
	l.expectWire("SUBSCRIBE m=NR", "NOTIFY terminated;reason=rejected")
	l.agentDid("rejected")
	l.agentDid("cannot be activated")
}

func TestB1_SubscribeAnswered(t *testing.T) {
	cases := []struct {
		code    int
		initial bool
		want    engine.MsgType
	}{
		{200, true, engine.MsgAccept}, {202, true, engine.MsgAccept},
		{489, true, engine.MsgReject}, {405, true, engine.MsgReject}, {480, true, engine.MsgReject},
		{481, false, engine.MsgEnd}, {200, false, ""}, {180, true, ""},
	}
	for _, c := range cases {
		m, ok := Answered("pbx-b", 3, c.code, c.initial)
		if (c.want == "") == ok || (ok && (m.Type != c.want || m.Ref != 3 || m.Peer != "pbx-b")) {
			t.Errorf("Answered(%d, initial=%v) = %v, %v; want %q", c.code, c.initial, m, ok, c.want)
		}
	}
	for _, k := range []engine.Kind{engine.CCBS, engine.CCNR, engine.CCNL} {
		if got := KindOf(ServiceOf(k), ""); got != k {
			t.Errorf("kind %s -> m=%s -> %s", k, ServiceOf(k), got)
		}
	}
	if got := KindOf(ParseService("xx"), engine.CCNR); got != engine.CCNR {
		t.Errorf("unknown m: %s, want the fallback", got)
	}
}
