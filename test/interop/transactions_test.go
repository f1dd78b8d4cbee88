package interop

import (
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestB7_RetransmissionAnsweredAgain: through the real binary, a request
// retransmitted after its final response (the sender missed it) gets the
// same response again, byte for byte, though the server's transaction
// ended at that response and kept only its bytes (RFC 3261 17.2.2); the
// count of those answered from the kept bytes is on /metrics.
func TestB7_RetransmissionAnsweredAgain(t *testing.T) {
	s := startServer(t, demoLines)
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dst := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: s.SIPPort}
	me := c.LocalAddr().String()
	exchange := func(req string) string {
		t.Helper()
		if _, err := c.WriteTo([]byte(req), dst); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4096)
		for deadline := time.Now().Add(5 * time.Second); ; {
			c.SetReadDeadline(deadline)
			n, _, err := c.ReadFrom(buf)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("no final response to\n%s", req)
			}
			if err != nil {
				t.Fatal(err)
			}
			if r := string(buf[:n]); !strings.HasPrefix(r, "SIP/2.0 1") {
				return r
			}
		}
	}
	request := func(method, branch, toTag string) string {
		to := "<sip:1002@127.0.0.1>"
		if toTag != "" {
			to += ";tag=" + toTag
		}
		return fmt.Sprintf("%s sip:1002@127.0.0.1:%d SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK%s;rport\r\n"+
			"From: <sip:1001@127.0.0.1>;tag=r1\r\nTo: %s\r\nCall-ID: retrans-%s\r\nCSeq: 7 %s\r\nMax-Forwards: 70\r\n"+
			"Contact: <sip:1001@%s>\r\nContent-Length: 0\r\n\r\n", method, s.SIPPort, me, branch, to, branch, method, me)
	}
	for _, r := range []struct{ method, toTag, want string }{
		{"OPTIONS", "", "SIP/2.0 200"},  // out of a dialog: the server's capabilities
		{"BYE", "gone", "SIP/2.0 481"},  // a dialog the server does not know
		{"INFO", "gone", "SIP/2.0 481"}, // same, another method
	} {
		req := request(r.method, "rt"+r.method, r.toTag)
		first := exchange(req)
		if !strings.HasPrefix(first, r.want) {
			t.Fatalf("%s: got %q, want %s", r.method, first, r.want)
		}
		if again := exchange(req); again != first {
			t.Errorf("%s retransmitted: got\n%q\nwant the first answer again\n%q", r.method, again, first)
		}
	}
	// Counted when answered from the kept bytes; one that came before
	// sipgo's transaction ended (a moment after the response left) was
	// answered by it, with the same bytes: how many is the box's timing.
	if m := metricsText(t, s); !regexp.MustCompile(`(?m)^callbackd_sip_retransmissions_answered_total [0-3]$`).MatchString(m) {
		t.Errorf("/metrics has no count of retransmissions answered (0-3):\n%s", grepLines(m, "callbackd_sip_"))
	}
}
