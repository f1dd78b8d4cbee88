package interop

// Issue 12 ("Safe to expose"), the server's own media and the relay of a
// callee's answers (B7): a third party's RTP presses no key and is not
// relayed; a device's invalid status code or tag-less 200 never reaches
// the caller.

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callbackd/callbackd/internal/media"
)

// TestB7_CalleeInvalidStatus: B's device answers the INVITE 099, then 700.
// A gets 502 Bad Gateway (RFC 3261 21.5.3) and never a status outside
// 100-699; the device's answers are logged once; B's line is free again,
// so the next call connects. SIPp refuses to send a status outside
// 100-699, so B's device is the test's own UDP socket on the port B
// registered from.
func TestB7_CalleeInvalidStatus(t *testing.T) {
	need(t, "sipp")
	ports := callPorts(t, 2)
	pa, pb := ports[0], ports[1]
	s := startServer(t, demoLines)
	s.registerAll(t, dev{"1001", pa}, dev{"1002", pb})

	mark := s.cbMark()
	b := listenRaw(t, pb)
	a := s.cbStart(t, "A calls B", "sec_uac_bad_gateway.xml", pa, false, "-m", "1", "-s", "1002", "-set", "caller", "1001")
	inv, from, err := b.read("INVITE")
	if err != nil {
		t.Fatalf("B's device: %v", err)
	}
	if err := b.respond(inv, "099 Not A Status", from); err != nil {
		t.Fatal(err)
	}
	// The server handles datagrams concurrently: the 700 is sent once the
	// 099 has been seen, else the 700 may end the transaction first.
	logged := s.cbWaitLog(t, mark, `msg="invalid response from a device".*status=99 .*problem="status code below 100"`)
	if err := b.respond(inv, "700 Out Of Range", from); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.read("ACK"); err != nil { // the transaction's ACK of a non-2xx final (17.1.1.3)
		t.Fatalf("B's device: %v", err)
	}
	a.pass(t)
	if got, _ := a.final(t); got != "502 Bad Gateway" {
		t.Fatalf("A's call: %q, want 502 Bad Gateway", got)
	}
	for _, m := range a.messages() {
		if m.Received && (strings.HasPrefix(m.Text, "SIP/2.0 099") || strings.HasPrefix(m.Text, "SIP/2.0 700")) {
			t.Fatalf("A got the device's invalid status:\n%s", m.Text)
		}
	}
	if n := strings.Count(s.cbLogSince(mark), "invalid response from a device"); n != 1 {
		t.Errorf("%d log lines for one device's invalid responses, want 1:\n%s", n, logged)
	}
	b.conn.Close()

	// B's line is free: a call connects.
	bs := s.cbStart(t, "B answers", "uas.xml", pb, true, "-m", "1")
	s.cbRun(t, "A calls B again", "uac.xml", pa, "-s", "1002", "-set", "caller", "1001", "-d", "100")
	bs.pass(t)
}

// TestB7_InDialogInvalidStatus: in an answered call, A's INFO is relayed
// to B, whose device answers 700: A gets 502 Bad Gateway, never the 700,
// and the call goes on until A hangs up.
func TestB7_InDialogInvalidStatus(t *testing.T) {
	need(t, "sipp")
	ports := callPorts(t, 2)
	pa, pb := ports[0], ports[1]
	s := startServer(t, demoLines)
	s.registerAll(t, dev{"1001", pa}, dev{"1002", pb})

	mark := s.cbMark()
	b := listenRaw(t, pb)
	a := s.cbStart(t, "A calls B, then INFO", "sec_uac_info_bad_gateway.xml", pa, false, "-m", "1", "-s", "1002", "-set", "caller", "1001")
	inv, from, err := b.read("INVITE")
	if err == nil { // answered without SDP: nothing here looks at media
		err = b.respond(inv, "200 OK", from, fmt.Sprintf("Contact: <sip:1002@127.0.0.1:%d>", pb))
	}
	if err == nil {
		_, _, err = b.read("ACK")
	}
	var info string
	if err == nil {
		info, from, err = b.read("INFO")
	}
	if err == nil {
		err = b.respond(info, "700 Out Of Range", from)
	}
	var bye string
	if err == nil {
		bye, from, err = b.read("BYE")
	}
	if err == nil {
		err = b.respond(bye, "200 OK", from)
	}
	if err != nil {
		t.Fatalf("B's device: %v", err)
	}
	a.pass(t)
	for _, m := range a.messages() {
		if m.Received && strings.HasPrefix(m.Text, "SIP/2.0 700") {
			t.Fatalf("A got the device's 700:\n%s", m.Text)
		}
	}
	s.cbWaitLog(t, mark, `msg="invalid response from the other party" .*method=INFO status=700`)
}

// rawDevice is a phone played by the test itself over UDP, for what SIPp
// refuses to send.
type rawDevice struct{ conn *net.UDPConn }

func listenRaw(t *testing.T, port int) *rawDevice {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &rawDevice{conn: conn}
}

// read returns the next request of method (others are skipped), within
// cbWait.
func (d *rawDevice) read(method string) (string, netip.AddrPort, error) {
	buf := make([]byte, 65535)
	_ = d.conn.SetReadDeadline(time.Now().Add(cbWait))
	for { // bounded by the deadline
		n, from, err := d.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return "", from, fmt.Errorf("waiting for %s: %w", method, err)
		}
		if msg := string(buf[:n]); strings.HasPrefix(msg, method+" ") {
			return msg, from, nil
		}
	}
}

// respond answers req with a status line of the device's choosing: its
// Via, From, Call-ID and CSeq, and To with a tag (RFC 3261 8.2.6.2), then
// extra header lines, if any.
func (d *rawDevice) respond(req, status string, to netip.AddrPort, extra ...string) error {
	var b strings.Builder
	b.WriteString("SIP/2.0 " + status + "\r\n")
	head, _, _ := strings.Cut(req, "\r\n\r\n")
	for _, line := range strings.Split(head, "\r\n")[1:] {
		name, _, _ := strings.Cut(line, ":")
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "via", "v", "from", "f", "call-id", "i", "cseq":
			b.WriteString(line + "\r\n")
		case "to", "t":
			if !strings.Contains(line, "tag=") {
				line += ";tag=rawdevice"
			}
			b.WriteString(line + "\r\n")
		}
	}
	for _, h := range extra {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	_, err := d.conn.WriteToUDPAddrPort([]byte(b.String()), to)
	return err
}

// TestB7_CalleeAnswersWithoutToTag: B's device answers 200 OK without a To
// tag, which makes no dialog (RFC 3261 12.1.2). The call is not connected:
// A gets 502 Bad Gateway, B's device gets no ACK (nor BYE), and B's line
// is free for the next call.
func TestB7_CalleeAnswersWithoutToTag(t *testing.T) {
	need(t, "sipp")
	ports := callPorts(t, 2)
	pa, pb := ports[0], ports[1]
	s := startServer(t, demoLines)
	s.registerAll(t, dev{"1001", pa}, dev{"1002", pb})

	mark := s.cbMark()
	b := s.cbStart(t, "B answers 200 without a tag", "sec_uas_200_no_tag.xml", pb, true, "-m", "1")
	a := s.cbRun(t, "A calls B", "sec_uac_bad_gateway.xml", pa, "-s", "1002", "-set", "caller", "1001")
	if got, _ := a.final(t); got != "502 Bad Gateway" {
		t.Fatalf("A's call: %q, want 502 Bad Gateway", got)
	}
	s.cbWaitLog(t, mark, `msg="invalid response from a device".*status=200 .*problem="2xx without a To tag"`)
	b.pass(t) // waits 3 s for an ACK
	for _, method := range []string{"ACK", "BYE"} {
		if got := b.received(method); len(got) != 0 {
			t.Errorf("B's device got %s for its tag-less 200:\n%s", method, got[0].Text)
		}
	}
	if m := metricsText(t, s); strings.Contains(m, `callbackd_calls_total{outcome="answered"}`) {
		t.Errorf("the call counts as answered:\n%s", grepLines(m, "callbackd_calls_total"))
	}

	b = s.cbStart(t, "B answers", "uas.xml", pb, true, "-m", "1")
	s.cbRun(t, "A calls B again", "uac.xml", pa, "-s", "1002", "-set", "caller", "1001", "-d", "100")
	b.pass(t)
}

// foreignPackets reads callbackd_rtp_foreign_packets_total.
func foreignPackets(t *testing.T, s *server) int {
	t.Helper()
	m := regexp.MustCompile(`(?m)^callbackd_rtp_foreign_packets_total (\d+)`).FindStringSubmatch(metricsText(t, s))
	if m == nil {
		t.Fatal("/metrics has no callbackd_rtp_foreign_packets_total")
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// waitForeign waits until at least n foreign RTP packets are counted.
func waitForeign(t *testing.T, s *server, n int) int {
	t.Helper()
	deadline := time.Now().Add(cbWait)
	for {
		got := foreignPackets(t, s)
		if got >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("foreign RTP packets counted: %d, want at least %d", got, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// offerAddr waits for the 183 of a phone's call and returns the RTP
// address of its SDP: the server's port for the call back offer.
func offerAddr(t *testing.T, p *cbPhone) netip.AddrPort {
	t.Helper()
	deadline := time.Now().Add(cbWait)
	for {
		for _, m := range p.messages() {
			if m.Received && strings.HasPrefix(m.Text, "SIP/2.0 183 ") {
				return sdpAddr(t, m.Body())
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s received no 183 within %v", p.name, cbWait)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestB7_ForeignDTMFAndRelay (issue 12, defect 8): a third party on
// another port sends RFC 4733 "5" to the server's RTP port of a caller's
// call back offer, before the caller sends anything.
//
//  1. Only the stranger presses: nothing is activated. A hears the offer,
//     not the confirmation; the call ends with the plain 486; no request
//     is stored (API); the packets are counted and logged once.
//  2. The stranger presses first again, then A itself: A's 5 activates
//     the call back (auto-recall).
//  3. The recall connects A and B through the server's relay; the
//     stranger sends audio to both of the relay's ports, first and then
//     along with A and B: none of it reaches A or B, while A's and B's
//     audio flows both ways.
func TestB7_ForeignDTMFAndRelay(t *testing.T) {
	need(t, "sipp")
	ports := callPorts(t, 4)
	pa, pb, pb2, pc := ports[0], ports[1], ports[2], ports[3]
	s := startServer(t, mediaLines)
	rtpA, rtpB, stranger := newRTPPeer(t, 0xA), newRTPPeer(t, 0xB), newRTPPeer(t, 0xBAD)
	s.registerAll(t, dev{"1001", pa}, dev{"1002", pb}, dev{"1003", pc})
	bBusy, c := s.cbBusyBUntil(t, pb, "1003", pc)
	code, _ := media.EventCode('5')
	press := len(media.DigitEvents(code, 100*time.Millisecond, 20*time.Millisecond, 10))
	activated := pcmuPrompt(t, "en", media.PromptActivated)
	offerArgs := []string{"-m", "1", "-s", "1002", "-set", "caller", "1001", "-key", "rtpport", fmt.Sprint(rtpA.port())}
	strangerSrc := fmt.Sprintf("source=127.0.0.1:%d", stranger.port())

	// 1. The stranger's 5 only.
	mark := s.cbMark()
	a := s.cbStart(t, "A calls busy B, only a stranger presses 5", "media_uac_offer.xml", pa, false, offerArgs...)
	early := offerAddr(t, a) // packets sent before the server reads are queued for it
	stranger.digit(t, early, '5')
	stranger.digit(t, early, '5')
	waitForeign(t, s, 2*press)
	s.cbWaitLog(t, mark, `msg="RTP from a foreign source dropped" party=1001 .*`+strangerSrc)
	a.pass(t)
	if got, _ := a.final(t); got != "486 Busy Here" {
		t.Fatalf("A's call: %q, want 486 Busy Here", got)
	}
	if bytes.Contains(rtpA.heard(0, 0), activated) {
		t.Fatal("A heard the activation prompt: the stranger's 5 was taken")
	}
	if log := s.cbLogSince(mark); strings.Contains(log, "call back asked by key") || strings.Contains(log, "CCBS active") {
		t.Fatalf("the stranger's 5 asked for a call back:\n%s", grepLines(log, "time="))
	}
	if code, body := s.api(t, "GET", "/api/v1/callbacks", ""); code != 200 || strings.Contains(body, `"caller"`) {
		t.Fatalf("GET /api/v1/callbacks: %d %s, want no request", code, body)
	}

	// 2. The stranger first, then A.
	s.register(t, "1002", pb2) // B's second phone answers the recall
	b2 := s.cbStart(t, "B's second phone", "media_uas_hangs_up.xml", pb2, true, "-m", "1", "-d", "8000",
		"-key", "rtpport", fmt.Sprint(rtpB.port()))
	mark = s.cbMark()
	dropped := foreignPackets(t, s)
	a = s.cbStart(t, "A calls busy B and presses 5", "media_uac_offer.xml", pa, false, offerArgs...)
	early = offerAddr(t, a)
	stranger.digit(t, early, '5')
	waitForeign(t, s, dropped+press)
	afterKey := rtpA.mark()
	rtpA.digit(t, early, '5')
	rtpA.waitHeard(t, afterKey, activated, 15*time.Second, "the activation prompt after A's own 5")
	s.cbWaitLog(t, mark, `action="persist #1 1001->1002 CCBS active auto-recall`)
	a.pass(t)

	// 3. The recall, relayed.
	recall := s.cbStart(t, "A takes the recall", "media_uas_recall.xml", pa, true, "-m", "2",
		"-key", "rtpport", fmt.Sprint(rtpA.port()))
	mark = s.cbMark()
	c.hangUp(t, pc)
	bBusy.pass(t)
	s.cbWaitLog(t, mark, `msg="recall connected"`)
	inv := recall.received("INVITE")
	bInv := b2.received("INVITE")
	if len(inv) != 1 || len(bInv) != 1 {
		t.Fatalf("recall INVITEs: %d to A, %d to B; want 1 each", len(inv), len(bInv))
	}
	toA, toB := sdpAddr(t, inv[0].Body()), sdpAddr(t, bInv[0].Body())
	markA, markB, dropped := rtpA.mark(), rtpB.mark(), foreignPackets(t, s)
	// The stranger sends first to both of the relay's ports, then along
	// with A and B.
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); stranger.talk(toA, 10) }()
	go func() { defer wg.Done(); stranger.talk(toB, 10) }()
	wg.Wait()
	wg.Add(4)
	go func() { defer wg.Done(); stranger.talk(toA, 50) }()
	go func() { defer wg.Done(); stranger.talk(toB, 50) }()
	go func() { defer wg.Done(); rtpA.talk(toA, 50) }()
	go func() { defer wg.Done(); rtpB.talk(toB, 50) }()
	wg.Wait()
	deadline := time.Now().Add(2 * time.Second)
	for (rtpB.count(markB, 0xA) < 50 || rtpA.count(markA, 0xB) < 50) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	aToB, bToA := rtpB.count(markB, 0xA), rtpA.count(markA, 0xB)
	leakB, leakA := rtpB.count(markB, 0xBAD), rtpA.count(markA, 0xBAD)
	counted := waitForeign(t, s, dropped+110) - dropped // of 120 sent: loopback may lose a few
	t.Logf("relayed: A->B %d, B->A %d of 50; the stranger's: %d to B, %d to A, %d dropped and counted of 120",
		aToB, bToA, leakB, leakA, counted)
	if leakA != 0 || leakB != 0 {
		t.Fatalf("the stranger's audio was relayed: %d packets to B, %d to A", leakB, leakA)
	}
	if aToB < 45 || bToA < 45 {
		t.Fatalf("relayed packets A->B %d, B->A %d; want nearly all of 50 each way", aToB, bToA)
	}
	b2.pass(t)
	recall.pass(t)

	// Logged once per call leg, not per packet: the two offers and the
	// recall's two legs.
	if n := strings.Count(s.Log(), `msg="RTP from a foreign source dropped"`); n != 4 {
		t.Errorf("%d log lines for the stranger's packets, want 4 (one per leg):\n%s", n,
			grepLines(s.Log(), "time="))
	}
}

// TestB7_RTPLatchBehindNAT: with media.rtp_latch, a phone whose SDP names
// an address its packets do not come from (NAT) is heard from its first
// source, locked for the call: its 5 activates, the confirmation goes to
// where its packets come from, and a stranger sending afterwards is
// dropped.
func TestB7_RTPLatchBehindNAT(t *testing.T) {
	need(t, "sipp")
	ports := callPorts(t, 3)
	pa, pb, pc := ports[0], ports[1], ports[2]
	s := startServer(t, "[media]\nrtp_latch = true\n"+demoLines)
	// private is the address in A's SDP; nat is where A's packets really
	// come from (its NAT's mapping), and where it hears.
	private, nat, stranger := newRTPPeer(t, 0xA), newRTPPeer(t, 0xA), newRTPPeer(t, 0xBAD)
	s.registerAll(t, dev{"1001", pa}, dev{"1002", pb}, dev{"1003", pc})
	bBusy, c := s.cbBusyBUntil(t, pb, "1003", pc)
	code, _ := media.EventCode('5')
	press := len(media.DigitEvents(code, 100*time.Millisecond, 20*time.Millisecond, 10))

	mark := s.cbMark()
	a := s.cbStart(t, "A behind NAT calls busy B", "media_uac_offer.xml", pa, false, "-m", "1", "-s", "1002",
		"-set", "caller", "1001", "-key", "rtpport", fmt.Sprint(private.port()))
	early := offerAddr(t, a)
	// Before A sends, the address of its SDP is all the server knows.
	for deadline := time.Now().Add(cbWait); private.mark() == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no audio at A's SDP address before A sent anything")
		}
	}
	nat.digit(t, early, '5')
	stranger.digit(t, early, '5') // while the confirmation plays
	waitForeign(t, s, press)
	s.cbWaitLog(t, mark, fmt.Sprintf(`msg="RTP from a foreign source dropped" party=1001 .*source=127.0.0.1:%d peer=127.0.0.1:%d`,
		stranger.port(), nat.port()))
	nat.waitHeard(t, 0, pcmuPrompt(t, "en", media.PromptActivated), 15*time.Second, "the activation prompt at A's NAT address")
	s.cbWaitLog(t, mark, `action="persist #1 1001->1002 CCBS active`)
	a.pass(t)
	if got, _ := a.final(t); got != "486 Busy Here" {
		t.Fatalf("A's call: %q, want 486 Busy Here", got)
	}
	c.hangUp(t, pc)
	bBusy.pass(t)
}
