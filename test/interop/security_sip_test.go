package interop

// B7 "Safe to expose", the SIP side of the trust model (docs/security.md):
// who may act for a line. Each test plays the attack through the real
// binary and asserts the refusal an attacker sees, that nothing stored
// changed, and that the legitimate use next to it still works. F32: the
// dial-out permission of a line's profile.
//
// The attacker is a raw UDP socket driven from Go (sipConn below), so it
// can replay headers byte for byte, send from a registered phone's port
// after SIPp released it, or from another loopback address (127.0.0.2:
// the throttle counts per source IP, and every SIPp phone is 127.0.0.1).

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/icholy/digest"

	"github.com/callbackd/callbackd/test/sipptrace"
)

// sipMsg is one SIP message as received.
type sipMsg struct{ sipptrace.Message }

// status is "407 Proxy Authentication Required" for a response.
func (m sipMsg) status() string { return strings.TrimPrefix(m.StartLine(), "SIP/2.0 ") }

func (m sipMsg) code() int {
	n, _ := strconv.Atoi(strings.Fields(m.status() + " 0")[0])
	return n
}

func parseSIP(b []byte) sipMsg { return sipMsg{sipptrace.ParseMessage(b)} }

// sipConn is a UDP socket speaking SIP to the server, as an attacker (or
// a phone) would, without a SIP stack.
type sipConn struct {
	t      *testing.T
	c      net.Conn // *net.UDPConn, or a TCP connection (tcp)
	tcp    *bufio.Reader
	s      *server
	local  string // ip:port
	n      int
	queued []sipMsg
}

// dialSIPTCP connects over TCP to s.
func dialSIPTCP(t *testing.T, s *server) *sipConn {
	t.Helper()
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.SIPPort))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &sipConn{t: t, c: c, tcp: bufio.NewReader(c), s: s, local: c.LocalAddr().String()}
}

func (c *sipConn) transport() string {
	if c.tcp != nil {
		return "TCP"
	}
	return "UDP"
}

// dialSIP binds ip:port (port 0: any) and talks to s.
func dialSIP(t *testing.T, s *server, ip string, port int) *sipConn {
	t.Helper()
	laddr := &net.UDPAddr{IP: net.ParseIP(ip), Port: port}
	raddr := &net.UDPAddr{IP: net.ParseIP("127.0.0.1"), Port: s.SIPPort}
	var c *net.UDPConn
	var err error
	for i := 0; i < 50; i++ { // a port SIPp just released may linger a moment
		if c, err = net.DialUDP("udp", laddr, raddr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("bind %s:%d: %v", ip, port, err)
	}
	t.Cleanup(func() { c.Close() })
	return &sipConn{t: t, c: c, s: s, local: c.LocalAddr().String()}
}

func (c *sipConn) send(msg string) {
	c.t.Helper()
	if _, err := c.c.Write([]byte(msg)); err != nil {
		c.t.Fatal(err)
	}
}

// recv returns the next message, or false after d.
func (c *sipConn) recv(d time.Duration) (sipMsg, bool) {
	if len(c.queued) > 0 {
		m := c.queued[0]
		c.queued = c.queued[1:]
		return m, true
	}
	c.c.SetReadDeadline(time.Now().Add(d))
	if c.tcp != nil { // a stream: the head, then Content-Length bytes (RFC 3261 18.3)
		var head strings.Builder
		for !strings.HasSuffix(head.String(), "\r\n\r\n") {
			line, err := c.tcp.ReadString('\n')
			if err != nil {
				return sipMsg{}, false
			}
			if head.Len() == 0 && strings.TrimSpace(line) == "" {
				continue // keep-alive CRLF
			}
			head.WriteString(line)
		}
		n, _ := strconv.Atoi(parseSIP([]byte(head.String())).Header("Content-Length"))
		body := make([]byte, n)
		if _, err := io.ReadFull(c.tcp, body); err != nil {
			return sipMsg{}, false
		}
		return parseSIP([]byte(head.String() + string(body))), true
	}
	buf := make([]byte, 65535)
	n, err := c.c.Read(buf)
	if err != nil {
		return sipMsg{}, false
	}
	return parseSIP(buf[:n]), true
}

// final waits for the final response to the request with callID and CSeq
// number, skipping provisional ones and anything else.
func (c *sipConn) final(callID string, cseq int) sipMsg {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		m, ok := c.recv(time.Until(deadline))
		if !ok {
			break
		}
		if !strings.HasPrefix(m.StartLine(), "SIP/2.0 ") || m.code() < 200 || m.Header("Call-ID") != callID ||
			!strings.HasPrefix(m.Header("CSeq"), strconv.Itoa(cseq)+" ") {
			continue
		}
		return m
	}
	c.t.Fatalf("no final response to Call-ID %s CSeq %d within 10s", callID, cseq)
	return sipMsg{}
}

// req is one request the client builds.
type req struct {
	method, ruri, from, to string
	callID                 string
	cseq                   int
	branch                 string
	extra                  []string // more header lines
}

func (c *sipConn) newReq(method, ruri, fromUser, toUser string) req {
	c.n++
	host := c.serverHost()
	return req{method: method, ruri: ruri, callID: fmt.Sprintf("b7-%d-%d@%s", time.Now().UnixNano(), c.n, c.local),
		from: fmt.Sprintf("<sip:%s@%s>;tag=b7tag%d", fromUser, host, c.n), to: fmt.Sprintf("<sip:%s@%s>", toUser, host), cseq: 1}
}

func (c *sipConn) serverHost() string { return fmt.Sprintf("127.0.0.1:%d", c.s.SIPPort) }

func (c *sipConn) text(r req) string {
	if r.branch == "" {
		c.n++
		r.branch = fmt.Sprintf("z9hG4bK-b7-%d-%d", time.Now().UnixNano(), c.n)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s SIP/2.0\r\n", r.method, r.ruri)
	fmt.Fprintf(&b, "Via: SIP/2.0/%s %s;branch=%s;rport\r\n", c.transport(), c.local, r.branch)
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %d %s\r\n", r.from, r.to, r.callID, r.cseq, r.method)
	fmt.Fprintf(&b, "Contact: <sip:%s;transport=%s>\r\nMax-Forwards: 70\r\n", c.local, strings.ToLower(c.transport()))
	for _, h := range r.extra {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	return b.String()
}

// ack acknowledges a non-2xx final response to INVITE r (RFC 3261 17.1.1.3).
func (c *sipConn) ack(r req, res sipMsg) {
	c.send(fmt.Sprintf("ACK %s SIP/2.0\r\nVia: %s\r\nFrom: %s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %d ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
		r.ruri, res.Header("Via"), r.from, res.Header("To"), r.callID, r.cseq))
}

// answer computes credentials for the challenge in res (header name:
// WWW-Authenticate or Proxy-Authenticate; the first of algorithm alg,
// any when ""), for request method and uri.
func answer(t *testing.T, res sipMsg, name, alg, method, uri, user, password string, nc int) string {
	t.Helper()
	for _, h := range res.Headers(name) {
		ch, err := digest.ParseChallenge(h)
		if err != nil {
			t.Fatalf("challenge %q: %v", h, err)
		}
		if alg != "" && ch.Algorithm != alg {
			continue
		}
		cred, err := digest.Digest(ch, digest.Options{Method: method, URI: uri, Username: user, Password: password, Count: nc})
		if err != nil {
			t.Fatal(err)
		}
		return cred.String()
	}
	t.Fatalf("no %s %s challenge in %q", name, alg, res.StartLine())
	return ""
}

// authed sends r, expects the challenge (401 or 407 by method), answers it
// as user/password and returns the final response and the credentials
// header it sent.
// register1002 registers line 1002 from c with its own password (a new
// registration when callID is "", else a refresh of that one at cseq) and
// fails the test, naming what, unless it gets 200. It returns the request
// and the credentials sent.
func (c *sipConn) register1002(t *testing.T, callID string, cseq int, what string) (req, string) {
	t.Helper()
	r := c.newReq("REGISTER", "sip:"+c.serverHost(), "1002", "1002")
	if callID != "" {
		r.callID, r.cseq = callID, cseq
	}
	r.extra = []string{"Expires: 300"}
	res, cred := c.authed(r, "1002", "demo1002")
	if res.code() != 200 {
		t.Fatalf("%s: %s", what, res.status())
	}
	return r, cred
}

func (c *sipConn) authed(r req, user, password string) (sipMsg, string) {
	c.t.Helper()
	name, hname, want := "Proxy-Authenticate", "Proxy-Authorization", 407
	if r.method == "REGISTER" {
		name, hname, want = "WWW-Authenticate", "Authorization", 401
	}
	c.send(c.text(r))
	ch := c.final(r.callID, r.cseq)
	if ch.code() != want {
		c.t.Fatalf("%s %s: %s, want %d", r.method, r.ruri, ch.status(), want)
	}
	if r.method == "INVITE" {
		c.ack(r, ch)
	}
	cred := answer(c.t, ch, name, "", r.method, r.ruri, user, password, 1)
	r.cseq++
	r.branch = ""
	r.extra = append(r.extra, hname+": "+cred)
	c.send(c.text(r))
	res := c.final(r.callID, r.cseq)
	if r.method == "INVITE" && res.code() >= 300 {
		c.ack(r, res)
	}
	return res, hname + ": " + cred
}

// invite places INVITE from line fromUser to number (feature code or
// number) with credentials; it returns the final response.
func (c *sipConn) invite(fromUser, number, password string) sipMsg {
	c.t.Helper()
	r := c.newReq("INVITE", fmt.Sprintf("sip:%s@%s", number, c.serverHost()), fromUser, number)
	res, _ := c.authed(r, fromUser, password)
	return res
}

// registrations returns the contacts registered for line dn (the API).
func (s *server) contactsOf(t *testing.T, dn string) []string {
	t.Helper()
	code, body := s.api(t, "GET", "/api/v1/registrations", "")
	if code != 200 {
		t.Fatalf("GET /api/v1/registrations: %d %s", code, body)
	}
	var regs []struct{ DN, Contact string }
	if err := json.Unmarshal([]byte(body), &regs); err != nil {
		t.Fatalf("registrations %s: %v", body, err)
	}
	var out []string
	for _, r := range regs {
		if r.DN == dn {
			out = append(out, r.Contact)
		}
	}
	return out
}

// forwardAll returns line dn's forward_all (the API).
func (s *server) forwardAll(t *testing.T, dn string) string {
	t.Helper()
	code, body := s.api(t, "GET", "/api/v1/lines/"+dn, "")
	if code != 200 {
		t.Fatalf("GET line %s: %d %s", dn, code, body)
	}
	var l struct {
		ForwardAll string `json:"forward_all"`
	}
	if err := json.Unmarshal([]byte(body), &l); err != nil {
		t.Fatal(err)
	}
	return l.ForwardAll
}

// withTrunk is a server config with a trunk at port pt taking numbers
// starting with 0, and lines allowed to dial out.
func withTrunk(pt int, trunkKeys string) string {
	return fmt.Sprintf(`[[trunk]]
name = "pstn"
address = "udp:127.0.0.1:%d"
prefixes = ["0"]
%s
[[profile]]
name = "default"
dial_out = "all"
`, pt, trunkKeys) + demoLines
}

// TestB7_DigestReplayRegister: a REGISTER's Authorization seen on the wire
// and replayed from another port (with the attacker's Contact) gets a fresh
// challenge, never a 200, and the attacker's contact is not stored; the
// phone itself registers again as before.
func TestB7_DigestReplayRegister(t *testing.T) {
	t.Parallel()
	s := startServer(t, noOffer+demoLines)
	phone := dialSIP(t, s, "127.0.0.1", 0)
	r, cred := phone.register1002(t, "", 1, "the phone's REGISTER")

	attacker := dialSIP(t, s, "127.0.0.1", 0)
	for _, ruri := range []string{"sip:" + phone.serverHost(), "sip:127.0.0.1"} {
		replay := attacker.newReq("REGISTER", ruri, "1002", "1002")
		replay.callID, replay.cseq = r.callID, 10 // the phone's Call-ID, a later CSeq
		replay.extra = []string{"Expires: 300", cred}
		attacker.send(attacker.text(replay))
		got := attacker.final(replay.callID, replay.cseq)
		if got.code() == 200 {
			t.Fatalf("replayed Authorization (Request-URI %s) registered the attacker: %s", ruri, got.status())
		}
		if got.code() != 401 && got.code() != 403 {
			t.Fatalf("replayed Authorization (Request-URI %s): %s, want 401 or 403", ruri, got.status())
		}
	}
	contacts := s.contactsOf(t, "1002")
	if len(contacts) != 1 || !strings.Contains(contacts[0], phone.local) {
		t.Fatalf("1002's registrations after the replay: %q, want only the phone's <sip:%s>", contacts, phone.local)
	}
	// The phone refreshes (a new challenge, its own credentials): 200.
	phone.register1002(t, r.callID, 5, "the phone's refresh")
}

// TestB7_DigestReplayInvite: the Proxy-Authorization of 1001's call to
// 1002, replayed with another Request-URI (a call out through the trunk, a
// *21 forwarding abroad), is refused (403), nothing goes out and the
// forwarding is unchanged; replayed as it was, it is a replay (407). 1001
// still calls out with its own fresh credentials.
func TestB7_DigestReplayInvite(t *testing.T) {
	t.Parallel()
	pt := callPorts(t, 1)[0]
	s := startServer(t, noOffer+withTrunk(pt, ""))
	trunk := dialSIP(t, s, "127.0.0.1", pt)
	phone := dialSIP(t, s, "127.0.0.1", 0)
	reg := phone.newReq("REGISTER", "sip:"+phone.serverHost(), "1001", "1001")
	reg.extra = []string{"Expires: 300"}
	if res, _ := phone.authed(reg, "1001", "demo1001"); res.code() != 200 {
		t.Fatalf("register 1001: %s", res.status())
	}
	// 1001 calls 1002 (not registered: 480) with credentials an attacker
	// sees on the wire.
	call := phone.newReq("INVITE", "sip:1002@"+phone.serverHost(), "1001", "1002")
	res, cred := phone.authed(call, "1001", "demo1001")
	if res.code() != 480 {
		t.Fatalf("1001 -> 1002: %s, want 480", res.status())
	}

	attacker := dialSIP(t, s, "127.0.0.1", 0)
	for _, number := range []string{"00441111111", "*2100441111111"} {
		replay := attacker.newReq("INVITE", "sip:"+number+"@"+phone.serverHost(), "1001", number)
		replay.extra = []string{cred}
		attacker.send(attacker.text(replay))
		got := attacker.final(replay.callID, replay.cseq)
		attacker.ack(replay, got)
		if got.code() != 403 && got.code() != 407 {
			t.Fatalf("credentials for sip:1002 replayed on %s: %s, want 403 or 407", number, got.status())
		}
	}
	same := attacker.newReq("INVITE", call.ruri, "1001", "1002")
	same.extra = []string{cred}
	attacker.send(attacker.text(same))
	if got := attacker.final(same.callID, same.cseq); got.code() != 407 {
		t.Fatalf("the same credentials replayed as they were: %s, want 407 (nonce-count replay)", got.status())
	}
	if fw := s.forwardAll(t, "1001"); fw != "" {
		t.Fatalf("1001's forward_all after the replay: %q", fw)
	}
	// 1001 calls out itself: the first INVITE the trunk ever sees is that
	// one, so the replays went nowhere.
	out := phone.newReq("INVITE", "sip:0302222@"+phone.serverHost(), "1001", "0302222")
	phone.send(phone.text(out))
	ch := phone.final(out.callID, out.cseq)
	phone.ack(out, ch)
	out.cseq, out.branch = 2, ""
	out.extra = []string{"Proxy-Authorization: " + answer(t, ch, "Proxy-Authenticate", "", "INVITE", out.ruri, "1001", "demo1001", 1)}
	phone.send(phone.text(out))
	inv, ok := trunk.recv(10 * time.Second)
	if !ok || !strings.HasPrefix(inv.StartLine(), "INVITE sip:0302222@") {
		t.Fatalf("the trunk's first request: %q, want 1001's call to 0302222", inv.StartLine())
	}
	// The trunk refuses it busy; the caller gets the 486.
	trunk.send(fmt.Sprintf("SIP/2.0 486 Busy Here\r\nVia: %s\r\nFrom: %s\r\nTo: %s;tag=trunk1\r\nCall-ID: %s\r\nCSeq: %s\r\nContent-Length: 0\r\n\r\n",
		strings.Join(inv.Headers("Via"), ", "), inv.Header("From"), inv.Header("To"), inv.Header("Call-ID"), inv.Header("CSeq")))
	if got := phone.final(out.callID, out.cseq); got.code() != 486 {
		t.Fatalf("1001's call out: %s, want the trunk's 486", got.status())
	}
}

// TestB7_SpoofedSourceForward: a datagram from the source address of 1001's
// registered phone (its port, once SIPp released it), dialing *21 abroad
// without credentials, is challenged (one 407, not retransmitted), and
// 1001's forwarding does not change. Over UDP even trust_registered_source
// does not trust it. With credentials the phone sets its forwarding.
func TestB7_SpoofedSourceForward(t *testing.T) {
	t.Parallel()
	for _, trust := range []bool{false, true} {
		t.Run(fmt.Sprintf("trust_registered_source=%v", trust), func(t *testing.T) {
			t.Parallel()
			p := callPorts(t, 2)
			s := startServerWith(t, fmt.Sprintf("min_expires = 1\ntrust_registered_source = %v", trust), noOffer+withTrunk(p[1], ""))
			s.register(t, "1001", p[0]) // SIPp registers from p[0] and exits
			spoof := dialSIP(t, s, "127.0.0.1", p[0])
			r := spoof.newReq("INVITE", "sip:*2100441111111@"+spoof.serverHost(), "1001", "*2100441111111")
			spoof.send(spoof.text(r))
			got := spoof.final(r.callID, r.cseq)
			if got.code() != 407 {
				t.Fatalf("spoofed *21 from 1001's source: %s, want 407", got.status())
			}
			// One response per request: no retransmission of the 407
			// (Timer G would resend it after 0.5 s and 1.5 s).
			deadline := time.Now().Add(1700 * time.Millisecond)
			for {
				m, ok := spoof.recv(time.Until(deadline))
				if !ok {
					break
				}
				if m.code() == 407 {
					t.Fatalf("the 407 was retransmitted: a spoofed source would get every copy")
				}
			}
			if fw := s.forwardAll(t, "1001"); fw != "" {
				t.Fatalf("1001's forward_all after the spoofed datagram: %q", fw)
			}
			if res := spoof.invite("1001", "*2100441111111", "demo1001"); res.status() != "603 Forward All To 00441111111" {
				t.Fatalf("the phone's own *21 with credentials: %s", res.status())
			}
		})
	}
	// Over TCP the option does what it says: the phone's own connection
	// (where it registered) dials without a challenge; a second connection
	// (another port) is challenged.
	t.Run("trust_registered_source=true over TCP", func(t *testing.T) {
		t.Parallel()
		pt := callPorts(t, 1)[0]
		s := startServerWith(t, "min_expires = 1\ntrust_registered_source = true", noOffer+withTrunk(pt, ""))
		phone := dialSIPTCP(t, s)
		reg := phone.newReq("REGISTER", "sip:"+phone.serverHost(), "1001", "1001")
		reg.extra = []string{"Expires: 300"}
		if res, _ := phone.authed(reg, "1001", "demo1001"); res.code() != 200 {
			t.Fatalf("register 1001 over TCP: %s", res.status())
		}
		other := dialSIPTCP(t, s)
		r := other.newReq("INVITE", "sip:*2100441111111@"+other.serverHost(), "1001", "*2100441111111")
		other.send(other.text(r))
		if got := other.final(r.callID, r.cseq); got.code() != 407 {
			t.Fatalf("*21 over another TCP connection: %s, want 407", got.status())
		}
		r = phone.newReq("INVITE", "sip:*210302222@"+phone.serverHost(), "1001", "*210302222")
		phone.send(phone.text(r))
		got := phone.final(r.callID, r.cseq)
		phone.ack(r, got)
		if got.status() != "603 Forward All To 0302222" {
			t.Fatalf("*21 on the phone's own TCP connection: %s, want 603 Forward All To 0302222", got.status())
		}
	})
}

// TestB7_TrunkImpersonation: an INVITE from the trunk's address whose From
// is line 1001 is an outside caller: its *21 is no feature code (404) and
// its call to an external number does not hairpin back out (403); nothing
// changes on 1001. A call from the trunk to a line is still taken (480:
// routed to 1003, which has no phone). With hairpin = true on the trunk, a
// call from it may go out through it again.
func TestB7_TrunkImpersonation(t *testing.T) {
	t.Parallel()
	t.Run("hairpin off", func(t *testing.T) {
		t.Parallel()
		pt := callPorts(t, 1)[0]
		s := startServer(t, noOffer+withTrunk(pt, ""))
		trunk := dialSIP(t, s, "127.0.0.1", pt)
		for _, c := range []struct{ number, want string }{
			{"*2100441111111", "404 Not Found"},
			{"00441111111", "403 Forbidden"},
			{"1003", "480 Temporarily Unavailable"},
		} {
			r := trunk.newReq("INVITE", "sip:"+c.number+"@"+trunk.serverHost(), "1001", c.number)
			trunk.send(trunk.text(r))
			got := trunk.final(r.callID, r.cseq)
			trunk.ack(r, got)
			if got.status() != c.want {
				t.Fatalf("from the trunk as 1001 to %s: %s, want %s", c.number, got.status(), c.want)
			}
		}
		if fw := s.forwardAll(t, "1001"); fw != "" {
			t.Fatalf("1001's forward_all after the trunk's *21: %q", fw)
		}
		s.waitLog(`msg="call refused: trunk to trunk (hairpin off)" trunk=pstn caller=1001 to=00441111111`, 5*time.Second)
	})
	t.Run("hairpin on", func(t *testing.T) {
		t.Parallel()
		pt := callPorts(t, 1)[0]
		s := startServer(t, noOffer+withTrunk(pt, "hairpin = true"))
		trunk := dialSIP(t, s, "127.0.0.1", pt)
		r := trunk.newReq("INVITE", "sip:00441111111@"+trunk.serverHost(), "0301234", "00441111111")
		trunk.send(trunk.text(r))
		// The server sends the call back out to the trunk (its B leg).
		deadline := time.Now().Add(10 * time.Second)
		for {
			m, ok := trunk.recv(time.Until(deadline))
			if !ok {
				t.Fatal("with hairpin = true the call did not go out through the trunk")
			}
			if strings.HasPrefix(m.StartLine(), "INVITE sip:00441111111@") {
				break
			}
		}
	})
}

// TestB7_BruteForceRegister: guessing 1002's password from 127.0.0.2 is
// refused (403) and, after a few tries, the right password from there is
// refused too (403, locked); the throttle writes one "authentication
// failed" line per key and interval and counts the metric. 1002's own
// phone (127.0.0.1, registered) still refreshes: a lock on the account does
// not hold against its registered source.
func TestB7_BruteForceRegister(t *testing.T) {
	t.Parallel()
	s := startServer(t, noOffer+demoLines)
	phone := dialSIP(t, s, "127.0.0.1", 0)
	reg, _ := phone.register1002(t, "", 1, "the phone's REGISTER")
	mark := s.cbMark()
	attacker := dialSIP(t, s, "127.0.0.2", 0)
	try := func(pw string) sipMsg {
		r := attacker.newReq("REGISTER", "sip:"+attacker.serverHost(), "1002", "1002")
		r.extra = []string{"Expires: 300"}
		attacker.send(attacker.text(r))
		ch := attacker.final(r.callID, r.cseq)
		r.cseq, r.extra = 2, append(r.extra, "Authorization: "+answer(t, ch, "WWW-Authenticate", "", "REGISTER", r.ruri, "1002", pw, 1))
		attacker.send(attacker.text(r))
		return attacker.final(r.callID, r.cseq)
	}
	for i := 0; i < 8; i++ {
		if got := try(fmt.Sprintf("guess%d", i)); got.status() != "403 Forbidden" {
			t.Fatalf("guess %d: %s, want 403 Forbidden", i, got.status())
		}
	}
	if got := try("demo1002"); got.status() != "403 Forbidden" {
		t.Fatalf("the right password from the locked source: %s, want 403 Forbidden", got.status())
	}
	// One log line per key for the burst (source, and account), fail2ban's.
	s.cbWaitLog(t, mark, `msg="authentication failed" kind=sip source=127.0.0.2 account=1002 reason="wrong password" key=src:127.0.0.2`)
	s.cbWaitLog(t, mark, `msg="authentication failed" kind=sip source=127.0.0.2 account=1002 reason="wrong password" key=acct:1002`)
	if n := len(regexp.MustCompile(`msg="authentication failed"[^\n]*key=src:127.0.0.2`).FindAllString(s.cbLogSince(mark), -1)); n != 1 {
		t.Errorf("%d log lines for the source's 8 failures, want 1 per interval", n)
	}
	code, body := s.api(t, "GET", "/metrics", "")
	m := regexp.MustCompile(`callbackd_auth_failures_total\{kind="sip",reason="wrong password"\} (\d+)`).FindStringSubmatch(body)
	// Failures are counted until the source is blocked (5 free, then
	// 1 s); blocked tries are counted as throttled instead.
	if n := 0; code != 200 || m == nil {
		t.Errorf("no callbackd_auth_failures_total for sip (HTTP %d)", code)
	} else if n, _ = strconv.Atoi(m[1]); n < 6 {
		t.Errorf("callbackd_auth_failures_total{kind=\"sip\"} = %d, want at least 6", n)
	}
	if !regexp.MustCompile(`callbackd_auth_throttled_total\{kind="sip"\} [1-9]`).MatchString(body) {
		t.Errorf("no callbackd_auth_throttled_total for sip")
	}
	// The phone refreshes from its registered source: 200.
	phone.register1002(t, reg.callID, 5, "the phone's refresh while its account is attacked")
}

// TestB7_BruteForcePIN: guessing user 501's Extension Mobility PIN
// (*40501*PIN) from phone 3001 is "Login Refused" a few times, then 403
// even for the right PIN (locked); another user logging in on another
// phone is not affected, and the log says it once.
func TestB7_BruteForcePIN(t *testing.T) {
	t.Parallel()
	users := `
[[line]]
dn = "3001"
password = "demo3001"
[[line]]
dn = "3002"
password = "demo3002"
[[user]]
id = "501"
pin = "4711"
line = "1001"
[[user]]
id = "502"
pin = "8150"
line = "1002"
`
	s := startServer(t, noOffer+demoLines+users)
	mark := s.cbMark()
	attacker := dialSIP(t, s, "127.0.0.2", 0)
	reg := attacker.newReq("REGISTER", "sip:"+attacker.serverHost(), "3001", "3001")
	reg.extra = []string{"Expires: 300"}
	if res, _ := attacker.authed(reg, "3001", "demo3001"); res.code() != 200 {
		t.Fatalf("register 3001: %s", res.status())
	}
	for i := 0; i < 7; i++ {
		got := attacker.invite("3001", fmt.Sprintf("*40501*%04d", i), "demo3001")
		if got.status() != "603 Login Refused" && got.status() != "403 Forbidden" {
			t.Fatalf("PIN guess %d: %s", i, got.status())
		}
	}
	if got := attacker.invite("3001", "*40501*4711", "demo3001"); got.status() != "403 Forbidden" {
		t.Fatalf("the right PIN while locked: %s, want 403 Forbidden", got.status())
	}
	s.cbWaitLog(t, mark, `msg="authentication failed" kind=pin source=127.0.0.2 account=user:501 reason="wrong PIN"`)
	// Another phone, another user: logs in.
	phone := dialSIP(t, s, "127.0.0.1", 0)
	reg2 := phone.newReq("REGISTER", "sip:"+phone.serverHost(), "3002", "3002")
	reg2.extra = []string{"Expires: 300"}
	if res, _ := phone.authed(reg2, "3002", "demo3002"); res.code() != 200 {
		t.Fatalf("register 3002: %s", res.status())
	}
	if got := phone.invite("3002", "*40502*8150", "demo3002"); got.status() != "603 Logged In 502" {
		t.Fatalf("user 502 on phone 3002: %s", got.status())
	}
}

// TestB7_SHA256Digest: by default the server offers SHA-256 first, then MD5
// (RFC 8760, two WWW-Authenticate headers), and accepts either answer.
func TestB7_SHA256Digest(t *testing.T) {
	t.Parallel()
	s := startServerWith(t, "min_expires = 1\ndigest_algorithms = [\"SHA-256\", \"MD5\"]", noOffer+demoLines)
	for _, alg := range []string{"SHA-256", "MD5"} {
		c := dialSIP(t, s, "127.0.0.1", 0)
		r := c.newReq("REGISTER", "sip:"+c.serverHost(), "1002", "1002")
		r.extra = []string{"Expires: 300"}
		c.send(c.text(r))
		ch := c.final(r.callID, r.cseq)
		hs := ch.Headers("WWW-Authenticate")
		if len(hs) != 2 || !strings.Contains(hs[0], "algorithm=SHA-256") || !strings.Contains(hs[1], "algorithm=MD5") {
			t.Fatalf("challenge headers %q, want SHA-256 then MD5", hs)
		}
		r.cseq, r.extra = 2, append(r.extra, "Authorization: "+answer(t, ch, "WWW-Authenticate", alg, "REGISTER", r.ruri, "1002", "demo1002", 1))
		c.send(c.text(r))
		if got := c.final(r.callID, r.cseq); got.code() != 200 {
			t.Fatalf("%s answer: %s", alg, got.status())
		}
	}
}

// TestF32_DialOutByProfile: a line whose profile has dial_out = "none"
// may neither call an external number (403) nor forward to one (603
// "Forward All Not Allowed"); a line of a profile allowing it does both.
// A line forwarding out on behalf of a caller needs the permission too.
func TestF32_DialOutByProfile(t *testing.T) {
	t.Parallel()
	pt := callPorts(t, 1)[0]
	cfg := fmt.Sprintf(`[[trunk]]
name = "pstn"
address = "udp:127.0.0.1:%d"
prefixes = ["0"]
[[profile]]
name = "internal"
dial_out = "none"
[[profile]]
name = "national"
dial_out = ["0"]
`, pt) + strings.Replace(strings.Replace(demoLines,
		"password = \"demo1001\"\n", "password = \"demo1001\"\nprofile = \"internal\"\n", 1),
		"password = \"demo1002\"\n", "password = \"demo1002\"\nprofile = \"national\"\n", 1)
	s := startServer(t, noOffer+cfg)
	c := dialSIP(t, s, "127.0.0.1", 0)
	for _, dn := range []string{"1001", "1002"} {
		r := c.newReq("REGISTER", "sip:"+c.serverHost(), dn, dn)
		r.extra = []string{"Expires: 300"}
		if res, _ := c.authed(r, dn, "demo"+dn); res.code() != 200 {
			t.Fatalf("register %s: %s", dn, res.status())
		}
	}
	if got := c.invite("1001", "0302222", "demo1001"); got.status() != "403 Forbidden" {
		t.Fatalf("1001 (dial_out none) calls 0302222: %s, want 403 Forbidden", got.status())
	}
	if got := c.invite("1001", "*210302222", "demo1001"); got.status() != "603 Forward All Not Allowed" {
		t.Fatalf("1001 (dial_out none) dials *210302222: %s", got.status())
	}
	if fw := s.forwardAll(t, "1001"); fw != "" {
		t.Fatalf("1001's forward_all: %q", fw)
	}
	// 1002 (national: prefix 0) forwards out; then 1001 calls 1002, and
	// the call goes out on 1002's permission (the trunk gets it).
	if got := c.invite("1002", "*210302222", "demo1002"); got.status() != "603 Forward All To 0302222" {
		t.Fatalf("1002 (dial_out [\"0\"]) dials *210302222: %s", got.status())
	}
	trunk := dialSIP(t, s, "127.0.0.1", pt)
	r := c.newReq("INVITE", "sip:1002@"+c.serverHost(), "1001", "1002")
	c.send(c.text(r))
	ch := c.final(r.callID, r.cseq)
	c.ack(r, ch)
	r.cseq, r.branch = 2, ""
	r.extra = []string{"Proxy-Authorization: " + answer(t, ch, "Proxy-Authenticate", "", "INVITE", r.ruri, "1001", "demo1001", 1)}
	c.send(c.text(r))
	if inv, ok := trunk.recv(10 * time.Second); !ok || !strings.HasPrefix(inv.StartLine(), "INVITE sip:0302222@") {
		t.Fatalf("1001's call to 1002, forwarded by 1002 to 0302222: the trunk got %q", inv.StartLine())
	}
}
