package b2bua

import (
	"strings"
	"testing"
)

// TestHeldOffer: the hold offer is the last session description with
// every stream sendonly, no other direction left, and a higher version
// (RFC 3264 sections 8 and 8.4).
func TestHeldOffer(t *testing.T) {
	in := "v=0\r\no=alice 7 41 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\na=recvonly\r\n" +
		"m=audio 4000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n" +
		"m=video 0 RTP/AVP 96\r\na=inactive\r\n"
	out, err := heldOffer([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	if !strings.Contains(s, "o=alice 7 42 IN IP4 127.0.0.1") {
		t.Errorf("version not increased:\n%s", s)
	}
	if strings.Count(s, "a=sendonly") != 2 || strings.Contains(s, "a=sendrecv") || strings.Contains(s, "a=recvonly") || strings.Contains(s, "a=inactive") {
		t.Errorf("directions:\n%s", s)
	}
	if !strings.Contains(s, "a=rtpmap:101 telephone-event/8000") {
		t.Errorf("other attributes lost:\n%s", s)
	}
	if _, err := heldOffer([]byte("garbage")); err == nil {
		t.Error("garbage accepted")
	}
}
