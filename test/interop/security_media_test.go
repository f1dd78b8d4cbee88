package interop

// Issue 12 ("Safe to expose"), the server's own media and the relay of a
// callee's answers (B7): a third party's RTP presses no key and is not
// relayed; a device's invalid status code or tag-less 200 never reaches
// the caller.

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
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
// Via, From, Call-ID and CSeq, and To with a tag (RFC 3261 8.2.6.2).
func (d *rawDevice) respond(req, status string, to netip.AddrPort) error {
	var b strings.Builder
	b.WriteString("SIP/2.0 " + status + "\r\n")
	head, _, _ := strings.Cut(req, "\r\n\r\n")
	for _, line := range strings.Split(head, "\r\n")[1:] {
		name, _, _ := strings.Cut(line, ":")
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "via", "v", "from", "f", "call-id", "i", "cseq":
			b.WriteString(line + "\r\n")
		case "to", "t":
			b.WriteString(line + ";tag=rawdevice\r\n")
		}
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
