package callcompletion

import (
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/callbackd/callbackd/internal/config"
	"github.com/callbackd/callbackd/internal/engine"
	"github.com/callbackd/callbackd/internal/siptest"
	"github.com/callbackd/callbackd/internal/subscription"
)

// fakeEngine accepts every request unless reject, and records the rest.
type fakeEngine struct {
	mu      sync.Mutex
	reject  bool
	events  []string
	monitor *Monitor
}

func (e *fakeEngine) Do(ev engine.Event, _ ...string) []engine.Action {
	fp := ev.(engine.FromPeer)
	t := engine.MsgAccept
	if e.reject {
		t = engine.MsgReject
	}
	e.record("do " + fp.Msg.String())
	a := engine.ToPeer{Msg: engine.PeerMessage{Peer: fp.Msg.Peer, Type: t, Ref: fp.Msg.Ref}}
	e.monitor.Send(a.Msg) // the executor's Peers.Send, within the step
	return []engine.Action{a}
}
func (e *fakeEngine) Submit(ev engine.Event) { e.record("submit " + ev.(engine.FromPeer).Msg.String()) }
func (e *fakeEngine) PeerCall(peer string, ref int64, b string) engine.Admit {
	return engine.Admit{Peer: peer, Ref: ref, To: b, OverrideForwarding: true}
}
func (e *fakeEngine) record(s string) {
	e.mu.Lock()
	e.events = append(e.events, s)
	e.mu.Unlock()
}

// fakeEvents is the subscription layer: it keeps the granted
// subscriptions and counts the NOTIFYs asked for.
type fakeEvents struct {
	mu      sync.Mutex
	subs    []subscription.Info
	changed int
	ended   []string
}

func (f *fakeEvents) Changed(event, resource string, _ func(subscription.Info) (subscription.Body, bool)) {
	f.mu.Lock()
	f.changed++
	f.mu.Unlock()
}
func (f *fakeEvents) End(id, reason string) bool {
	f.mu.Lock()
	f.ended = append(f.ended, id+" "+reason)
	f.mu.Unlock()
	return true
}
func (f *fakeEvents) Subscriptions(string) []subscription.Info {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]subscription.Info(nil), f.subs...)
}

func newMonitorWith(t *testing.T) (*Monitor, *fakeEngine, *fakeEvents) {
	trunks := config.Trunks{{Name: "pbx-a", Address: "udp:127.0.0.2:5060", CallCompletion: true},
		{Name: "plain", Address: "udp:127.0.0.4:5060"}}
	m := NewMonitor(trunks, func(dn string) bool { return dn == "2001" }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	e, ev := &fakeEngine{}, &fakeEvents{}
	e.monitor = m
	m.Engine, m.Events = e, ev
	return m, e, ev
}

func subscribeReq(t *testing.T, from, ruri, source string) (*sip.Request, *siptest.Tx) {
	t.Helper()
	raw := "SUBSCRIBE " + ruri + " SIP/2.0\r\nVia: SIP/2.0/UDP " + source + ";branch=z9hG4bK" + newETag() + "\r\n" +
		"From: <sip:" + from + "@127.0.0.2>;tag=9\r\nTo: <" + ruri + ">\r\nCall-ID: " + newETag() + "\r\nCSeq: 1 SUBSCRIBE\r\n" +
		"Max-Forwards: 70\r\nEvent: call-completion\r\nContact: <sip:" + from + "@" + source + ">\r\nContent-Length: 0\r\n\r\n"
	msg, err := sip.ParseMessage([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	req := msg.(*sip.Request)
	req.SetSource(source)
	return req, siptest.NewTx(req)
}

// refused checks that m answers a SUBSCRIBE with code and grants nothing.
func refused(t *testing.T, m *Monitor, name, from, ruri, source string, code int) {
	t.Helper()
	req, tx := subscribeReq(t, from, ruri, source)
	if _, ok := m.Authorize(req, tx); ok || tx.Result().Code() != code {
		t.Errorf("%s: granted %v, answered %d; want %d", name, ok, tx.Result().Code(), code)
	}
}

// B1, F3: only the failed call's caller, from a trunk that speaks call
// completion, may subscribe; the queue is bounded.
func TestB1_MonitorAuthorize(t *testing.T) {
	m, e, _ := newMonitorWith(t)
	m.MaxQueue = 1
	m.CallFailed("pbx-a", "1001", "2001", engine.CCBS)
	m.CallFailed("pbx-a", "1002", "2001", engine.CCNR)
	cases := []struct {
		name, from, ruri, source string
		code                     int
	}{
		{"not a trunk", "1001", "sip:2001@127.0.0.3", "127.0.0.9:5060", 403},
		{"trunk without call completion", "1001", "sip:2001@127.0.0.3", "127.0.0.4:5060", 403},
		{"not the failed call's caller", "1003", "sip:2001@127.0.0.3", "127.0.0.2:5060", 403},
		{"callee not a line", "1001", "sip:2002@127.0.0.3", "127.0.0.2:5060", 404},
	}
	for _, c := range cases {
		refused(t, m, c.name, c.from, c.ruri, c.source, c.code)
	}
	req, tx := subscribeReq(t, "1001", "sip:2001@127.0.0.3;m=NR", "127.0.0.2:5060")
	g, ok := m.Authorize(req, tx)
	if !ok || !strings.HasPrefix(g.Resource, "cc:") {
		t.Fatalf("the caller's SUBSCRIBE: granted %v %+v, answered %v", ok, g, tx.Result().Codes())
	}
	if got := strings.Join(e.events, "; "); !strings.Contains(got, "request") || !strings.Contains(got, "1001->2001 CCNR") {
		t.Fatalf("engine saw %q, want a CCNR request (m=NR wins over the failure's kind)", got)
	}
	// The queue for 2001 holds one: the second caller is refused 480.
	req, tx = subscribeReq(t, "1002", "sip:2001@127.0.0.3", "127.0.0.2:5060")
	if _, ok := m.Authorize(req, tx); ok || tx.Result().Code() != 480 {
		t.Fatalf("queue full: granted %v, answered %v; want 480", ok, tx.Result().Codes())
	}
	// The same caller again (its server restarted): the same request.
	req, tx = subscribeReq(t, "1001", "sip:2001@127.0.0.3", "127.0.0.2:5060")
	if g2, ok := m.Authorize(req, tx); !ok || g2.Resource != g.Resource {
		t.Fatalf("re-subscribe: %v %+v, want the same resource %s", ok, g2, g.Resource)
	}
}

// B1: at most 3 NOTIFYs per subscription in 10 s (the first included);
// the rest wait for the window.
func TestB1_MonitorNotifyRate(t *testing.T) {
	m, _, ev := newMonitorWith(t)
	m.CallFailed("pbx-a", "1001", "2001", engine.CCBS)
	req, tx := subscribeReq(t, "1001", "sip:2001@127.0.0.3", "127.0.0.2:5060")
	g, ok := m.Authorize(req, tx)
	if !ok {
		t.Fatal("not granted")
	}
	ev.subs = []subscription.Info{{ID: "s1", Event: EventPackage, Resource: g.Resource, Data: g.Data}}
	ref := refOf("pbx-a", "1001", "2001")
	for i := 0; i < 5; i++ {
		m.Send(engine.PeerMessage{Peer: "pbx-a", Type: engine.MsgAvailable, Ref: ref})
		m.Send(engine.PeerMessage{Peer: "pbx-a", Type: engine.MsgAccept, Ref: ref})
	}
	if ev.changed != notifyBurst-1 {
		t.Fatalf("%d NOTIFYs asked after the first, want %d", ev.changed, notifyBurst-1)
	}
	if body := string(m.State(ev.subs[0]).Data); !strings.Contains(body, "cc-state: queued") || !strings.Contains(body, "cc-URI: sip:2001@127.0.0.3") {
		t.Fatalf("state %q", body)
	}
	// The engine ends the request (its lifetime): the subscription ends,
	// reason noresource (no re-subscribe, RFC 6665 s4.1.3).
	m.Send(engine.PeerMessage{Peer: "pbx-a", Type: engine.MsgEnd, Ref: ref})
	if len(ev.ended) != 1 || ev.ended[0] != "s1 noresource" {
		t.Fatalf("ended %v", ev.ended)
	}
}

// B1, B7: with Phones, a line's own phone (not a trunk) is the agent: it
// proves it is the line (Prove, the digest), its From must be that line
// and the failed call's caller; a trunk without call completion stays
// refused without a challenge.
func TestB1_B7_MonitorPhoneAuthorize(t *testing.T) {
	m, e, _ := newMonitorWith(t)
	m.Phones = true
	proven := "" // "": no credentials (Prove answers 401 itself)
	m.Prove = func(req *sip.Request, tx sip.ServerTransaction) (string, bool) {
		if proven == "" {
			tx.Respond(sip.NewResponseFromRequest(req, 401, "Unauthorized", nil))
			return "", false
		}
		return proven, true
	}
	m.CallFailed(PhonePeer("1001"), "1001", "2001", engine.CCBS)
	m.CallFailed(PhonePeer("1003"), "1004", "2001", engine.CCBS) // a line's peer is that line only
	const cc, phone = "sip:2001@127.0.0.3", "127.0.0.9:5060"
	refused(t, m, "no credentials", "1001", cc, phone, 401)
	proven = "1001"
	refused(t, m, "From another line", "1003", cc, phone, 403)
	refused(t, m, "trunk without call completion", "1001", cc, "127.0.0.4:5060", 403)
	proven = "1003"
	refused(t, m, "proven, no failed call", "1003", cc, phone, 403)
	proven = "1001"
	req, tx := subscribeReq(t, "1001", "sip:2001@127.0.0.3", "127.0.0.9:5060")
	if _, ok := m.Authorize(req, tx); !ok {
		t.Fatalf("the line's phone: answered %v", tx.Result().Codes())
	}
	if got := strings.Join(e.events, "; "); !strings.Contains(got, "1001->2001 CCBS") || !strings.Contains(got, "line:1001") {
		t.Fatalf("engine saw %q, want a request of peer line:1001", got)
	}
	m.Phones = false
	refused(t, m, "Phones off", "1001", "sip:2001@127.0.0.3", "127.0.0.9:5060", 403)
}
