package sipserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/callbackd/callbackd/internal/config"
)

// udpPeer is a phone on a UDP socket of its own: it sends raw requests and
// reads the responses.
type udpPeer struct {
	t    *testing.T
	c    net.PacketConn
	dst  net.Addr
	addr string
}

func newUDPPeer(t *testing.T, srv *Server) *udpPeer {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	dst, _ := net.ResolveUDPAddr("udp", srv.Addrs()[0][len("udp:"):])
	return &udpPeer{t: t, c: c, dst: dst, addr: c.LocalAddr().String()}
}

// request is a request of method from the peer; branch and tag pick the
// transaction and the dialog (toTag "" for none).
func (p *udpPeer) request(method, user, branch, cseq, toTag string) []byte {
	to := "<sip:" + user + "@127.0.0.1>"
	if toTag != "" {
		to += ";tag=" + toTag
	}
	return []byte(method + " sip:" + user + "@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP " + p.addr + ";branch=z9hG4bK" + branch + ";rport\r\n" +
		"From: <sip:a@b>;tag=1\r\nTo: " + to + "\r\nCall-ID: c" + p.addr + "\r\nCSeq: " + cseq + " " + method +
		"\r\nMax-Forwards: 70\r\nContact: <sip:a@" + p.addr + ">\r\nContent-Length: 0\r\n\r\n")
}

func (p *udpPeer) send(b []byte) {
	if _, err := p.c.WriteTo(b, p.dst); err != nil {
		p.t.Fatal(err)
	}
}

// read returns the next response within d, "" when none came.
func (p *udpPeer) read(d time.Duration) string {
	p.c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 4096)
	n, _, err := p.c.ReadFrom(buf)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return ""
	}
	if err != nil {
		p.t.Fatal(err)
	}
	return string(buf[:n])
}

// final reads responses until a final one (2 s at most).
func (p *udpPeer) final() string {
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); {
		if r := p.read(time.Until(deadline)); r != "" && !strings.HasPrefix(r, "SIP/2.0 1") {
			return r
		}
	}
	p.t.Fatal("no final response")
	return ""
}

// TestB7_FinishedKeepsOnlyTheResponse: a transaction ends at its final
// response (a non-INVITE's, an INVITE's 2xx) and is no longer counted
// against sip.max_transactions; a retransmission of its request gets the
// same final response again, byte for byte, without reaching a handler
// (RFC 3261 17.2.2, RFC 6026 7.1). An INVITE answered with a non-2xx stays
// in sipgo's transaction: its retransmission gets the response again, its
// ACK is absorbed there (17.2.1) and ends the response's retransmissions.
func TestB7_FinishedKeepsOnlyTheResponse(t *testing.T) {
	cfg := config.Default()
	cfg.SIP.Listen = []string{"udp:127.0.0.1:0"}
	srv, err := New(cfg.SIP, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	var handled, acks atomic.Int64
	answer := func(code int, reason string) func(*sip.Request, sip.ServerTransaction) {
		return func(req *sip.Request, tx sip.ServerTransaction) {
			handled.Add(1)
			code, reason := code, reason
			if req.Recipient.User == "busy" {
				code, reason = 486, "Busy Here"
			}
			respond(tx, req, code, reason, srv.Log, sip.NewHeader("X-Handled", req.Method.String()))
		}
	}
	srv.Route(Handlers{Register: answer(200, "OK"), Invite: answer(200, "OK"), InDialog: answer(200, "OK"),
		Ack:    func(*sip.Request, sip.ServerTransaction) { acks.Add(1) },
		IsLine: func(string) bool { return false }})
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel() }()
	served := serve(ctx, srv)
	defer func() { cancel(); <-served }()
	p := newUDPPeer(t, srv)

	for _, c := range []struct{ method, branch, cseq, toTag string }{
		{"REGISTER", "r1", "1", ""},
		{"INVITE", "i1", "2", ""},
		{"BYE", "b1", "3", "x"},
	} {
		req := p.request(c.method, "1001", c.branch, c.cseq, c.toTag)
		before := handled.Load()
		p.send(req)
		first := p.final()
		if !strings.HasPrefix(first, "SIP/2.0 200") || !strings.Contains(first, "X-Handled: "+c.method) {
			t.Fatalf("%s: got %q", c.method, first)
		}
		// The response is on the wire before the transaction ends.
		for deadline := time.Now().Add(2 * time.Second); srv.txOpen.Load() != 0 && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		if n := srv.txOpen.Load(); n != 0 {
			t.Errorf("%s answered: %d transactions alive, want 0 (finished)", c.method, n)
		}
		p.send(req) // the retransmission of a sender that missed the answer
		if again := p.final(); again != first {
			t.Errorf("%s retransmitted: got\n%q\nwant the first answer\n%q", c.method, again, first)
		}
		if n := handled.Load() - before; n != 1 {
			t.Errorf("%s and its retransmission reached the handler %d times, want once", c.method, n)
		}
	}
	if n := srv.finished.Len(); n != 3 {
		t.Errorf("finished transactions recorded = %d, want 3", n)
	}
	if n := srv.finished.answered.Load(); n != 3 {
		t.Errorf("retransmissions answered = %d, want 3", n)
	}

	// A non-2xx to an INVITE: retransmitted until the ACK, which is absorbed.
	inv := p.request("INVITE", "busy", "i2", "4", "")
	p.send(inv)
	first := p.final()
	if !strings.HasPrefix(first, "SIP/2.0 486") {
		t.Fatalf("INVITE to busy: got %q", first)
	}
	p.send(inv)
	if again := p.final(); again != first {
		t.Errorf("INVITE retransmitted after 486: got %q, want the 486 again", again)
	}
	tag := strings.SplitN(strings.SplitN(first, "To: <sip:busy@127.0.0.1>;tag=", 2)[1], "\r\n", 2)[0]
	p.send(p.request("ACK", "busy", "i2", "4", tag))
	// Timer G would send the 486 again 0.5 s, then 1 s, after the last
	// one: nothing in 1.6 s means the ACK ended them.
	if r := p.read(1600 * time.Millisecond); r != "" {
		t.Errorf("after the ACK for the 486: got %q, want nothing", r)
	}
	if n := acks.Load(); n != 0 {
		t.Errorf("the ACK for the 486 reached the ACK handler %d times, want 0 (absorbed by the transaction)", n)
	}

	// An ACK for a 2xx with the INVITE's branch (RFC 2543 style, as SIPp
	// sends it), sent the moment the 200 arrives: it reaches the handler
	// every time (sipgo would drop it in its ended transaction: before the
	// fix about one in a hundred here).
	for i := range 300 {
		branch, cseq := fmt.Sprintf("r2543-%d", i), fmt.Sprint(10+i)
		p.send(p.request("INVITE", "1001", branch, cseq, ""))
		ok := p.final()
		if !strings.HasPrefix(ok, "SIP/2.0 200") {
			t.Fatalf("INVITE %d: got %q", i, ok)
		}
		tag := strings.SplitN(strings.SplitN(ok, "To: <sip:1001@127.0.0.1>;tag=", 2)[1], "\r\n", 2)[0]
		p.send(p.request("ACK", "1001", branch, cseq, tag))
		for deadline := time.Now().Add(2 * time.Second); acks.Load() != int64(i+1) && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		if n := acks.Load(); n != int64(i+1) {
			t.Fatalf("ACK %d with the INVITE's branch: %d ACKs reached the handler, want %d", i, n, i+1)
		}
	}
}
