package subscription

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/callbackd/callbackd/internal/sipmsg"
	"github.com/callbackd/callbackd/internal/store"
	"github.com/callbackd/callbackd/internal/store/sqlite"
)

// node is one SIP user agent on a loopback UDP port: a Layer over a
// SQLite store, or a bare peer whose handlers the test sets.
type node struct {
	addr   string
	ua     *sipgo.UserAgent
	srv    *sipgo.Server
	client *sipgo.Client
	pc     net.PacketConn
	layer  *Layer
	msg    *sipmsg.Builder
	st     store.Store
	done   chan struct{}
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// newNode listens on addr ("127.0.0.1:0" for a free port). With a store
// path it runs a Layer routed as sipserver routes it.
func newNode(t *testing.T, addr, storePath string, routes ...func(*node)) *node {
	t.Helper()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	n := &node{addr: pc.LocalAddr().String(), pc: pc, done: make(chan struct{})}
	if n.ua, err = sipgo.NewUA(); err != nil {
		t.Fatal(err)
	}
	if n.srv, err = sipgo.NewServer(n.ua); err != nil {
		t.Fatal(err)
	}
	if n.client, err = sipgo.NewClient(n.ua); err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(n.addr)
	var p int
	fmt.Sscan(port, &p)
	n.msg = sipmsg.NewBuilder(map[string]sipmsg.Local{"UDP": {Host: host, Port: p}})
	if storePath != "" {
		if n.st, err = sqlite.Open(storePath); err != nil {
			t.Fatal(err)
		}
		n.layer = New(n.client, n.msg, n.st, quiet)
		n.srv.OnSubscribe(n.layer.Handle)
		n.srv.OnNotify(func(req *sip.Request, tx sip.ServerTransaction) {
			if n.layer.Owns(req) {
				n.layer.Handle(req, tx)
				return
			}
			sipmsg.Respond(tx, req, 481, "Call/Transaction Does Not Exist", quiet)
		})
	}
	for _, r := range routes { // before serving: sipgo's routes are not locked
		r(n)
	}
	go func() { defer close(n.done); n.srv.ServeUDP(pc) }()
	// The socket is the transport's once a connection to it is found
	// (sipserver's waitListening).
	for i := 0; i < 100; i++ {
		if c, err := n.srv.TransportLayer().GetConnection("udp", n.addr); err == nil && c != nil {
			c.TryClose()
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Cleanup(n.close)
	return n
}

// withLimits sets a node's layer's limits before it serves.
func withLimits(lim Limits) func(*node) {
	return func(n *node) { n.layer.Limits = lim }
}

// close stops the node as a crash would: nothing sent, the store closed.
func (n *node) close() {
	if n.layer != nil {
		n.layer.Close()
	}
	n.pc.Close()
	n.ua.Close()
	<-n.done
	if n.st != nil {
		n.st.Close()
	}
}

func (n *node) uri(user string) string { return "sip:" + user + "@" + n.addr }

// pkg is a test event package, both sides: its state is a string per
// resource; what each side saw goes to channels.
type pkg struct {
	event  string
	refuse int // Authorize answers this code when set

	mu    sync.Mutex
	state map[string]string

	notes chan note   // subscriber side: each NOTIFY
	ended chan string // either side: "id reason"
	auth  chan string // notifier side: each SUBSCRIBE authorized (its From)
}

type note struct {
	info  Info
	state string
	body  string
}

func newPkg(event string) *pkg {
	return &pkg{event: event, state: map[string]string{}, notes: make(chan note, 64), ended: make(chan string, 64), auth: make(chan string, 64)}
}

func (p *pkg) Event() string { return p.event }

func (p *pkg) Authorize(req *sip.Request, tx sip.ServerTransaction) (Grant, bool) {
	if p.refuse != 0 {
		sipmsg.Respond(tx, req, p.refuse, "Forbidden", quiet)
		return Grant{}, false
	}
	p.auth <- req.From().Address.User
	return Grant{Resource: req.Recipient.User, Data: []byte(req.From().Address.User), Owner: req.From().Address.User}, true
}

func (p *pkg) State(s Info) Body {
	p.mu.Lock()
	defer p.mu.Unlock()
	return Body{Type: "text/plain", Data: []byte(fmt.Sprintf("full %s v%d", p.state[s.Resource], s.Version))}
}

func (p *pkg) set(resource, v string) {
	p.mu.Lock()
	p.state[resource] = v
	p.mu.Unlock()
}

func (p *pkg) Notified(s Info, state string, b Body) {
	p.notes <- note{info: s, state: state, body: string(b.Data)}
}

func (p *pkg) Ended(s Info, reason string) { p.ended <- s.ID + " " + reason }

func wait[T any](t *testing.T, ch chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatalf("no %s within 5 s", what)
	}
	var zero T
	return zero
}

func stored(t *testing.T, n *node) []record {
	t.Helper()
	rows, err := n.st.Subscriptions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []record
	for _, row := range rows {
		var r record
		if err := json.Unmarshal(row.Data, &r); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

func spec(event string, notifier *node, expires time.Duration) Spec {
	return Spec{Event: event, Target: notifier.uri("2001"), From: "sip:1001@127.0.0.1", To: "sip:2001@127.0.0.1",
		Dest: notifier.addr, Transport: "UDP", Expires: expires}
}

// pair is a notifier a and a subscriber b, each with the package
// "test" (resource 2001 "idle"), their stores in dir.
func pair(t *testing.T, opts ...func(*node)) (dir string, a, b *node, pa, pb *pkg) {
	dir = t.TempDir()
	a, b = newNode(t, "127.0.0.1:0", filepath.Join(dir, "a.db"), opts...), newNode(t, "127.0.0.1:0", filepath.Join(dir, "b.db"))
	pa, pb = newPkg("test"), newPkg("test")
	pa.set("2001", "idle")
	a.layer.Register(pa)
	b.layer.Register(pb)
	return dir, a, b, pa, pb
}

// The whole life of a subscription between two layers: accepted and
// stored, the first NOTIFY with full state, a partial one on a change, an
// unsubscribe with its final NOTIFY, both stores empty after.
func TestSubscribeNotifyUnsubscribe(t *testing.T) {
	_, a, b, pa, pb := pair(t)

	id, err := b.layer.Subscribe(spec("test", a, 10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if who := wait(t, pa.auth, "authorization"); who != "1001" {
		t.Errorf("authorized %q, want 1001", who)
	}
	n := wait(t, pb.notes, "first NOTIFY")
	if n.state != "active" || n.body != "full idle v0" || n.info.ID != id {
		t.Errorf("first NOTIFY %+v", n)
	}
	if got := stored(t, a); len(got) != 1 || got[0].Role != roleNotifier || got[0].Resource != "2001" {
		t.Errorf("notifier stored %+v", got)
	}

	pa.set("2001", "busy")
	a.layer.Changed("test", "2001", func(s Info) (Body, bool) {
		return Body{Type: "text/plain", Data: []byte(fmt.Sprintf("partial busy v%d", s.Version))}, true
	})
	if n := wait(t, pb.notes, "partial NOTIFY"); n.body != "partial busy v1" {
		t.Errorf("partial NOTIFY %+v", n)
	}
	a.layer.Changed("test", "other", nil) // another resource: nothing
	a.layer.Changed("test", "2001", func(Info) (Body, bool) { return Body{}, false })

	if !b.layer.Unsubscribe(id) {
		t.Fatal("unsubscribe refused")
	}
	if e := wait(t, pb.ended, "subscriber end"); e != id+" unsubscribed" {
		t.Errorf("subscriber ended %q", e)
	}
	if e := wait(t, pa.ended, "notifier end"); !strings.HasSuffix(e, " unsubscribed") {
		t.Errorf("notifier ended %q", e)
	}
	select {
	case n := <-pb.notes:
		t.Errorf("NOTIFY after unsubscribe reached the watcher: %+v", n)
	default:
	}
	if len(stored(t, a)) != 0 || len(stored(t, b)) != 0 {
		t.Errorf("stored after unsubscribe: %+v / %+v", stored(t, a), stored(t, b))
	}
}

// TestF35_NoNotifyOnceNotActing: a cluster instance whose lease ended
// sends no NOTIFY (the new active restores the subscription and sends
// it), and the subscription stays stored for it.
func TestF35_NoNotifyOnceNotActing(t *testing.T) {
	_, a, b, pa, pb := pair(t)
	var acting atomic.Bool
	acting.Store(true)
	a.layer.Acting = acting.Load
	if _, err := b.layer.Subscribe(spec("test", a, 10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	wait(t, pb.notes, "first NOTIFY")
	acting.Store(false)
	pa.set("2001", "busy")
	a.layer.Changed("test", "2001", nil)
	select {
	case n := <-pb.notes:
		t.Errorf("NOTIFY sent by an instance not acting: %+v", n)
	case <-time.After(time.Second):
	}
	if got := stored(t, a); len(got) != 1 {
		t.Errorf("notifier stored %d subscriptions, want 1 (kept for the active)", len(got))
	}
}

// An unknown event gets 489 with Allow-Events (RFC 6665 8.2.2); the
// package's refusal reaches the subscriber as the end of its subscription.
func TestRefusals(t *testing.T) {
	dir := t.TempDir()
	a, b := newNode(t, "127.0.0.1:0", filepath.Join(dir, "a.db")), newNode(t, "127.0.0.1:0", filepath.Join(dir, "b.db"))
	pa := newPkg("test")
	pa.refuse = 403
	a.layer.Register(pa)
	a.layer.Register(newPkg("dialog"))
	pb, pc := newPkg("test"), newPkg("nope")
	b.layer.Register(pb)
	b.layer.Register(pc)

	id, _ := b.layer.Subscribe(spec("nope", a, time.Hour))
	if e := wait(t, pc.ended, "end"); e != id+" refused 489" {
		t.Errorf("ended %q, want refused 489", e)
	}
	id, _ = b.layer.Subscribe(spec("test", a, time.Hour))
	if e := wait(t, pb.ended, "end"); e != id+" refused 403" {
		t.Errorf("ended %q, want refused 403", e)
	}
	if len(stored(t, a)) != 0 || len(stored(t, b)) != 0 {
		t.Error("a refused subscription is stored")
	}

	// The 489's Allow-Events, read by a bare client.
	res := do(t, b, a, subscribe("presence", ""))
	if res.StatusCode != 489 || res.GetHeader("Allow-Events") == nil || res.GetHeader("Allow-Events").Value() != "dialog, test" {
		t.Errorf("got %d %v", res.StatusCode, res.GetHeader("Allow-Events"))
	}
}

// do sends a bare out-of-dialog request from one node to another, with
// the sender's Contact.
func do(t *testing.T, from, to *node, req *sip.Request) *sip.Response {
	t.Helper()
	req.SetDestination(to.addr)
	req.SetTransport("UDP")
	var contact sip.Uri
	sip.ParseUri(from.uri("1001"), &contact)
	req.AppendHeader(&sip.ContactHeader{Address: contact})
	return send(t, from, req)
}

func send(t *testing.T, from *node, req *sip.Request) *sip.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := from.client.Do(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// subscribe is a bare SUBSCRIBE to 2001 for event, with Expires when given.
func subscribe(event, expires string) *sip.Request {
	req := sip.NewRequest(sip.SUBSCRIBE, sip.Uri{Scheme: "sip", User: "2001", Host: "127.0.0.1"})
	req.AppendHeader(sip.NewHeader("Event", event))
	if expires != "" {
		req.AppendHeader(sip.NewHeader("Expires", expires))
	}
	return req
}

// Expires below the minimum: 423 with Min-Expires, and the subscriber
// asks again with it (RFC 6665 4.1.2.1); above the maximum: lowered.
func TestIntervalTooBrief(t *testing.T) {
	dir := t.TempDir()
	a := newNode(t, "127.0.0.1:0", filepath.Join(dir, "a.db"), withLimits(Limits{Min: 2 * time.Minute, Max: 5 * time.Minute, Default: 5 * time.Minute}))
	b := newNode(t, "127.0.0.1:0", filepath.Join(dir, "b.db"))
	pa, pb := newPkg("test"), newPkg("test")
	a.layer.Register(pa)
	b.layer.Register(pb)
	b.layer.Subscribe(spec("test", a, time.Minute))
	wait(t, pb.notes, "NOTIFY")
	if got := stored(t, b); len(got) != 1 || got[0].Period != 2*time.Minute {
		t.Errorf("subscriber asks %v, want 2m", got[0].Period)
	}
	b.layer.Subscribe(spec("test", a, time.Hour))
	wait(t, pb.notes, "NOTIFY")
	for _, r := range stored(t, a) {
		if left := time.Until(r.Expires); left > 5*time.Minute {
			t.Errorf("granted %v, more than the maximum", left)
		}
	}
}

// A subscription the subscriber does not refresh expires: a final NOTIFY
// terminated;reason=timeout, forgotten on both sides (the subscriber
// asked for one second and is then stopped before it refreshes).
func TestExpiry(t *testing.T) {
	dir := t.TempDir()
	a := newNode(t, "127.0.0.1:0", filepath.Join(dir, "a.db"), withLimits(Limits{Min: time.Second, Max: time.Hour, Default: time.Hour}))
	pa := newPkg("test")
	a.layer.Register(pa)
	notifies := make(chan *sip.Request, 8)
	peer := newNode(t, "127.0.0.1:0", "", func(n *node) {
		n.srv.OnNotify(func(req *sip.Request, tx sip.ServerTransaction) {
			notifies <- req
			sipmsg.Respond(tx, req, 200, "OK", quiet)
		})
	})
	if res := do(t, peer, a, subscribe("test", "1")); res.StatusCode != 200 || res.GetHeader("Expires").Value() != "1" {
		t.Fatalf("SUBSCRIBE answered %v", res)
	}
	first := wait(t, notifies, "first NOTIFY")
	if v := first.GetHeader("Subscription-State").Value(); !strings.HasPrefix(v, "active;expires=") {
		t.Errorf("first state %q", v)
	}
	last := wait(t, notifies, "expiry NOTIFY")
	if v := last.GetHeader("Subscription-State").Value(); v != "terminated;reason=timeout" {
		t.Errorf("expiry state %q", v)
	}
	t1, _ := first.From().Params.Get("tag")
	t2, _ := last.From().Params.Get("tag")
	if last.CSeq().SeqNo != first.CSeq().SeqNo+1 || t1 != t2 || t1 == "" {
		t.Error("expiry NOTIFY not in the subscription's dialog")
	}
	if !strings.HasSuffix(wait(t, pa.ended, "end"), " timeout") {
		t.Error("package not told of the expiry")
	}
	if len(stored(t, a)) != 0 {
		t.Error("expired subscription still stored")
	}
}

// A restart of the notifier: the stored subscription goes on, its next
// NOTIFY in the same dialog with the CSeq and version carried on.
func TestRestartNotifierCarriesOn(t *testing.T) {
	dir, a, b, pa, pb := pair(t)
	id, _ := b.layer.Subscribe(spec("test", a, time.Hour))
	wait(t, pb.notes, "first NOTIFY")
	before := stored(t, a)

	a.close() // as kill -9: nothing sent
	a = newNode(t, a.addr, filepath.Join(dir, "a.db"))
	pa = newPkg("test")
	pa.set("2001", "busy")
	a.layer.Register(pa)
	if err := a.layer.Restore(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := wait(t, pb.notes, "NOTIFY after restart"); n.body != "full busy v1" || n.info.ID != id || n.state != "active" {
		t.Errorf("after restart %+v", n)
	}
	after := stored(t, a)
	if len(after) != 1 || after[0].ID != before[0].ID || after[0].CallID != before[0].CallID || after[0].LocalCSeq != before[0].LocalCSeq+1 {
		t.Errorf("stored before %+v, after %+v", before, after)
	}
	a.layer.Changed("test", "2001", nil)
	if n := wait(t, pb.notes, "NOTIFY on change"); n.body != "full busy v2" {
		t.Errorf("on change %+v", n)
	}
}

// A restart of the subscriber: its stored subscription is refreshed in
// its dialog; the notifier keeps the one subscription.
func TestRestartSubscriberRefreshes(t *testing.T) {
	dir, a, b, _, pb := pair(t)
	id, _ := b.layer.Subscribe(spec("test", a, time.Hour))
	wait(t, pb.notes, "first NOTIFY")
	before := stored(t, a)

	b.close()
	b = newNode(t, b.addr, filepath.Join(dir, "b.db"))
	pb = newPkg("test")
	b.layer.Register(pb)
	if err := b.layer.Restore(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := wait(t, pb.notes, "NOTIFY of the refresh"); n.info.ID != id || n.body != "full idle v1" {
		t.Errorf("after restart %+v", n)
	}
	if after := stored(t, a); len(after) != 1 || after[0].ID != before[0].ID {
		t.Errorf("notifier holds %+v, want the one subscription %s", after, before[0].ID)
	}
	if got := stored(t, b); len(got) != 1 || got[0].LocalCSeq != 2 {
		t.Errorf("subscriber stored %+v, want CSeq 2", got)
	}
}

// rawNotifier answers SUBSCRIBEs by the test's script.
func rawNotifier(t *testing.T) (*node, chan *sip.Request) {
	subs := make(chan *sip.Request, 8)
	peer := newNode(t, "127.0.0.1:0", "", func(n *node) {
		n.srv.OnSubscribe(func(req *sip.Request, tx sip.ServerTransaction) {
			subs <- req
			<-tx.Done() // the test answers it, on the transaction
		})
	})
	return peer, subs
}

// notifyFor sends a NOTIFY in the dialog a SUBSCRIBE asks for.
func notifyFor(t *testing.T, peer *node, sub *sip.Request, tag string, cseq uint32, state string) *sip.Response {
	t.Helper()
	d := &sipmsg.Dialog{CallID: sub.CallID().Value(), LocalTag: tag, Local: sub.To().Address, Remote: sub.From().Address,
		Target: sub.Contact().Address, Dest: sub.Source(), Transport: "UDP"}
	d.RemoteTag, _ = sub.From().Params.Get("tag")
	req := peer.msg.Request(d, sip.NOTIFY, cseq)
	req.AppendHeader(sip.NewHeader("Event", "test"))
	req.AppendHeader(sip.NewHeader("Subscription-State", state))
	req.AppendHeader(sip.NewHeader("Content-Type", "text/plain"))
	req.SetBody([]byte(state))
	return send(t, peer, req)
}

// A NOTIFY before the 200 makes the dialog (RFC 6665 4.1.2.4);
// terminated;reason=deactivated re-subscribes at once in a new dialog;
// terminated;reason=rejected ends the subscription.
func TestSubscriberFollowsState(t *testing.T) {
	b := newNode(t, "127.0.0.1:0", filepath.Join(t.TempDir(), "b.db"))
	pb := newPkg("test")
	b.layer.Register(pb)
	peer, subs := rawNotifier(t)
	id, _ := b.layer.Subscribe(spec("test", peer, time.Hour))

	first := wait(t, subs, "SUBSCRIBE")
	if first.To().Params.Has("tag") || first.GetHeader("Expires").Value() != "3600" || first.Contact() == nil {
		t.Errorf("first SUBSCRIBE %s", first)
	}
	if res := notifyFor(t, peer, first, "n1", 1, "active;expires=3600"); res.StatusCode != 200 {
		t.Fatalf("NOTIFY before the 200 answered %d", res.StatusCode)
	}
	if n := wait(t, pb.notes, "NOTIFY"); n.state != "active" || n.info.ID != id {
		t.Errorf("got %+v", n)
	}
	if res := notifyFor(t, peer, first, "fork2", 1, "active"); res.StatusCode != 481 {
		t.Errorf("NOTIFY of a second fork answered %d, want 481", res.StatusCode)
	}
	res := sip.NewResponseFromRequest(first, 200, "OK", nil)
	res.To().Params.Add("tag", "n1")
	res.AppendHeader(sip.NewHeader("Expires", "3600"))
	peer.srv.WriteResponse(res)

	if res := notifyFor(t, peer, first, "n1", 2, "terminated;reason=deactivated"); res.StatusCode != 200 {
		t.Fatalf("terminated NOTIFY answered %d", res.StatusCode)
	}
	wait(t, pb.notes, "terminated NOTIFY")
	again := wait(t, subs, "SUBSCRIBE again")
	if again.CallID().Value() == first.CallID().Value() || again.To().Params.Has("tag") {
		t.Errorf("re-subscribed in the old dialog: %s", again)
	}
	if res := notifyFor(t, peer, again, "n2", 1, "terminated;reason=rejected"); res.StatusCode != 200 {
		t.Fatalf("rejected NOTIFY answered %d", res.StatusCode)
	}
	if e := wait(t, pb.ended, "end"); e != id+" terminated;rejected" {
		t.Errorf("ended %q", e)
	}
	if len(stored(t, b)) != 0 {
		t.Error("ended subscription still stored")
	}
}

// endsOnNotify subscribes to a notifier from a bare peer whose NOTIFY
// handler is onNotify, and checks that the subscription ends with reason
// (told to the package, forgotten by the store) once poke, if any, ran.
func endsOnNotify(t *testing.T, onNotify sipgo.RequestHandler, poke func(*Layer), reason string) {
	t.Helper()
	a := newNode(t, "127.0.0.1:0", filepath.Join(t.TempDir(), "a.db"))
	pa := newPkg("test")
	a.layer.Register(pa)
	peer := newNode(t, "127.0.0.1:0", "", func(n *node) { n.srv.OnNotify(onNotify) })
	if res := do(t, peer, a, subscribe("test", "")); res.StatusCode != 200 {
		t.Fatalf("SUBSCRIBE answered %v", res)
	}
	wait(t, pa.auth, "authorization")
	if poke != nil {
		poke(a.layer)
	}
	if e := wait(t, pa.ended, "end"); !strings.HasSuffix(e, " "+reason) {
		t.Errorf("ended %q, want %s", e, reason)
	}
	if len(stored(t, a)) != 0 {
		t.Error("still stored")
	}
}

// A NOTIFY answered 481 ends the subscription (RFC 6665 4.2.2).
func TestNotify481Ends(t *testing.T) {
	codes := make(chan int, 4)
	codes <- 200
	codes <- 481
	endsOnNotify(t, func(req *sip.Request, tx sip.ServerTransaction) {
		sipmsg.Respond(tx, req, <-codes, "", quiet)
	}, func(l *Layer) {
		for len(codes) == 2 { // the first NOTIFY is being answered
			time.Sleep(5 * time.Millisecond)
		}
		l.Changed("test", "2001", nil)
	}, "gone")
}

// A NOTIFY nobody answers ends the subscription (RFC 6665 4.2.2), once
// its transaction times out (shortened here).
func TestNotifyUnansweredEnds(t *testing.T) {
	old := notifyTimeout
	notifyTimeout = 300 * time.Millisecond
	t.Cleanup(func() { notifyTimeout = old })
	endsOnNotify(t, func(*sip.Request, sip.ServerTransaction) {}, nil, "timeout") // never answers
}

// terminated with retry-after: the subscriber subscribes again then, in a
// new dialog (RFC 6665 4.1.3).
func TestSubscriberRetryAfter(t *testing.T) {
	b := newNode(t, "127.0.0.1:0", filepath.Join(t.TempDir(), "b.db"))
	pb := newPkg("test")
	b.layer.Register(pb)
	peer, subs := rawNotifier(t)
	b.layer.Subscribe(spec("test", peer, time.Hour))
	first := wait(t, subs, "SUBSCRIBE")
	notifyFor(t, peer, first, "n1", 1, "active")
	wait(t, pb.notes, "NOTIFY")
	at := time.Now()
	notifyFor(t, peer, first, "n1", 2, "terminated;reason=probation;retry-after=1")
	again := wait(t, subs, "SUBSCRIBE again")
	if waited := time.Since(at); waited < 900*time.Millisecond {
		t.Errorf("subscribed again after %v, want the 1 s retry-after", waited)
	}
	if again.CallID().Value() == first.CallID().Value() {
		t.Error("subscribed again in the old dialog")
	}
}

// An owner holds at most Limits.PerOwner subscriptions: one more is
// refused 403; once one ends, a new one is accepted.
func TestPerOwnerLimit(t *testing.T) {
	_, a, b, pa, pb := pair(t, withLimits(Limits{Min: time.Minute, Max: time.Hour, Default: time.Hour, PerOwner: 1}))
	id, _ := b.layer.Subscribe(spec("test", a, time.Hour))
	wait(t, pb.notes, "NOTIFY")
	second, _ := b.layer.Subscribe(spec("test", a, time.Hour))
	if e := wait(t, pb.ended, "refusal"); e != second+" refused 403" {
		t.Errorf("second subscription: %q, want refused 403", e)
	}
	b.layer.Unsubscribe(id)
	wait(t, pb.ended, "end")
	wait(t, pa.ended, "end at the notifier")
	b.layer.Subscribe(spec("test", a, time.Hour))
	if n := wait(t, pb.notes, "NOTIFY"); n.state != "active" {
		t.Errorf("after the first ended: %+v", n)
	}
}
