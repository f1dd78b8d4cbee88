package b2bua

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/callbackd/callbackd/internal/config"
	"github.com/callbackd/callbackd/internal/directory"
	"github.com/callbackd/callbackd/internal/linestate"
	"github.com/callbackd/callbackd/internal/registrar"
	"github.com/callbackd/callbackd/internal/siptest"
	"github.com/callbackd/callbackd/internal/store"
)

// The harness of the dialog layer's and the server-as-a-phone's unit tests:
// a B2BUA sending through a real sipgo client to fake UDP phones, its
// requests handed in with siptest.Tx, and an in-memory store of calls.

// phone is a fake SIP device on a UDP socket: it records each request it
// gets and answers it with what answer returns (nothing for nil).
type phone struct {
	t      *testing.T
	conn   *net.UDPConn
	reqs   chan *sip.Request
	answer func(p *phone, req *sip.Request) []*sip.Response
}

func newPhone(t *testing.T, answer func(p *phone, req *sip.Request) []*sip.Response) *phone {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	p := &phone{t: t, conn: conn, reqs: make(chan *sip.Request, 64), answer: answer}
	t.Cleanup(func() { conn.Close() })
	go p.serve()
	return p
}

func (p *phone) addr() string { return p.conn.LocalAddr().String() }

func (p *phone) serve() {
	buf := make([]byte, 65535)
	parser := sip.NewParser()
	for {
		n, from, err := p.conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		msg, err := parser.ParseSIP(append([]byte(nil), buf[:n]...))
		req, ok := msg.(*sip.Request)
		if err != nil || !ok {
			continue
		}
		select {
		case p.reqs <- req:
		default:
		}
		if p.answer == nil || req.IsAck() {
			continue
		}
		for _, res := range p.answer(p, req) {
			if _, err := p.conn.WriteToUDP([]byte(res.String()), from); err != nil {
				return
			}
		}
	}
}

// strayAgain hands b the phone's 2xx res again, as sipgo does with a
// retransmission no transaction matches any more. Not sent on the wire:
// this harness's client has no listening socket, and the ephemeral one the
// INVITE left from may be closed by then (the server sends from its
// listener; the interop tests carry retransmissions over the wire).
func (p *phone) strayAgain(b *B2BUA, res *sip.Response) {
	again := res.Clone()
	again.SetSource(p.addr())
	again.SetTransport("UDP")
	b.HandleStrayResponse(again)
}

// next waits for the next request of method to reach the phone.
func (p *phone) next(method sip.RequestMethod) *sip.Request {
	p.t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case req := <-p.reqs:
			if req.Method == method {
				return req
			}
		case <-timeout:
			p.t.Fatalf("phone %s: no %s within 5 s", p.addr(), method)
			return nil
		}
	}
}

// reply is a response of the phone to req; a 2xx to an INVITE carries
// the phone's tag and Contact, and body as SDP when given.
func (p *phone) reply(req *sip.Request, code int, body string) *sip.Response {
	res := sip.NewResponseFromRequest(req, code, "R", nil)
	if code >= 200 && code < 300 && req.IsInvite() {
		res.To().Params.Remove("tag")
		res.To().Params.Add("tag", "phone-"+p.addr())
		res.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "dev", Host: "127.0.0.1", Port: p.conn.LocalAddr().(*net.UDPAddr).Port}})
	}
	if body != "" {
		res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		res.SetBody([]byte(body))
	}
	return res
}

// answering answers method with code (and body as SDP), every other
// request 200.
func answering(method sip.RequestMethod, code int, body string) func(p *phone, req *sip.Request) []*sip.Response {
	return func(p *phone, req *sip.Request) []*sip.Response {
		if req.Method == method {
			return []*sip.Response{p.reply(req, code, body)}
		}
		return okToAll(p, req)
	}
}

// ringsUntilCancel answers an INVITE 180 and its CANCEL 200 (and leaves the
// INVITE to its transaction's 487).
func ringsUntilCancel(p *phone, req *sip.Request) []*sip.Response {
	switch req.Method {
	case sip.INVITE:
		return []*sip.Response{p.reply(req, 180, "")}
	case sip.CANCEL:
		return []*sip.Response{p.reply(req, 200, "")}
	}
	return nil
}

// okToAll answers every request 200.
func okToAll(p *phone, req *sip.Request) []*sip.Response {
	return []*sip.Response{p.reply(req, 200, "")}
}

// memStore keeps calls and registrations in memory; the other methods of
// store.Store are not used by these tests.
type memStore struct {
	store.Store
	mu    sync.Mutex
	calls map[string][]byte
	regs  []store.Registration
}

func (m *memStore) PutCall(_ context.Context, c store.Call) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls[c.ID] = c.Data
	return nil
}

func (m *memStore) DeleteCall(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.calls, id)
	return nil
}

func (m *memStore) Calls(context.Context) ([]store.Call, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []store.Call
	for id, d := range m.calls {
		out = append(out, store.Call{ID: id, Data: d})
	}
	return out, nil
}

func (m *memStore) stored() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.calls)
}

func (m *memStore) Registrations(context.Context) ([]store.Registration, error) { return m.regs, nil }

// testB2BUA is a B2BUA for lines 1001-1003, sending from 127.0.0.1, with
// a device of line dn registered at phones[dn].
func testB2BUA(t *testing.T, phones map[string]*phone) (*B2BUA, *memStore) {
	t.Helper()
	var b *B2BUA // responses come once it is set: they answer its requests
	ua, err := sipgo.NewUA(sipgo.WithUserAgentTransactionLayerOptions(
		sip.WithTransactionLayerUnhandledResponseHandler(func(res *sip.Response) { b.HandleStrayResponse(res) })))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ua.Close() })
	client, err := sipgo.NewClient(ua)
	if err != nil {
		t.Fatal(err)
	}
	st := &memStore{calls: map[string][]byte{}}
	var lines []config.Line
	for _, dn := range []string{"1001", "1002", "1003"} {
		lines = append(lines, config.Line{DN: dn, Name: "Line " + dn, Kind: config.KindPhone, BusyTrigger: 1})
		if p := phones[dn]; p != nil {
			st.regs = append(st.regs, store.Registration{DN: dn, Contact: "sip:" + dn + "@" + p.addr(), Source: p.addr(),
				Transport: "UDP", Expires: time.Now().Add(time.Hour)})
		}
	}
	log := slog.New(slog.DiscardHandler)
	dir := directory.New(lines)
	tracker := linestate.New(log)
	for _, l := range lines {
		tracker.SetLine(l.DN, l.BusyTrigger)
	}
	reg := registrar.New(config.SIP{}, dir, nil, st, tracker, log)
	if err := reg.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	b = New(Config{Domain: "test.invalid", NoAnswerTimeout: 3 * time.Second, MediaIP: netip.MustParseAddr("127.0.0.1")},
		client, dir, reg, tracker, nil, map[string]Local{"UDP": {Host: "127.0.0.1"}}, log)
	b.Store = st
	return b, st
}

// inDialog hands an in-dialog request to b on a fake transaction and
// returns what b answered.
func inDialog(b *B2BUA, req *sip.Request) siptest.Result {
	tx := siptest.NewTx(req)
	b.HandleInDialog(req, tx)
	return tx.Result()
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
