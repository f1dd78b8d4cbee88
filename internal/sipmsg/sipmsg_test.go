package sipmsg

import (
	"testing"

	"github.com/emiago/sipgo/sip"
)

// TestRequestInDialog: a request in a dialog carries its Call-ID, tags,
// CSeq and remote target (RFC 3261 12.2.1.1), our Via with rport, a
// Contact on INVITE, and leaves from the listening UDP socket.
func TestRequestInDialog(t *testing.T) {
	b := NewBuilder(map[string]Local{"UDP": {Host: "192.0.2.1", Port: 5060}, "TCP": {Host: "192.0.2.1", Port: 5061}})
	d, err := NewDialog(sip.Uri{Scheme: "sip", User: "1001", Host: "example.com"}, "Alice",
		sip.Uri{Scheme: "sip", User: "1002", Host: "example.com"}, "sip:1002@198.51.100.7:5062", "198.51.100.7:5062", "udp")
	if err != nil {
		t.Fatal(err)
	}
	d.RemoteTag = "theirs"
	req := b.Request(d, sip.INVITE, d.CSeq.Add(1))
	switch {
	case req.Recipient.String() != "sip:1002@198.51.100.7:5062":
		t.Errorf("Request-URI %s, want the remote target", req.Recipient.String())
	case req.CallID().Value() != d.CallID || req.CSeq().SeqNo != 2:
		t.Errorf("Call-ID %s CSeq %d", req.CallID().Value(), req.CSeq().SeqNo)
	case tagOf(req.From().Params) != d.LocalTag || tagOf(req.To().Params) != "theirs" || req.From().DisplayName != "Alice":
		t.Errorf("From %s To %s", req.From().Value(), req.To().Value())
	case req.Contact() == nil || req.Contact().Address.User != "1001" || req.Contact().Address.Port != 5060:
		t.Errorf("Contact %v, want ours for 1001", req.Contact())
	case req.Via().Host != "192.0.2.1" || req.Via().Port != 5060 || !req.Via().Params.Has("rport"):
		t.Errorf("Via %s", req.Via().Value())
	case req.Destination() != "198.51.100.7:5062" || req.Transport() != "UDP" || req.Laddr.Port != 5060:
		t.Errorf("sent to %s over %s from %v", req.Destination(), req.Transport(), req.Laddr)
	}
	if c := b.Contact("1001", "TCP"); c.Address.Port != 5061 || c.Address.UriParams.GetOr("transport", "") != "tcp" {
		t.Errorf("TCP Contact %s", c.Value())
	}

	ack := b.Ack(d, req, []byte("v=0\r\n"), sip.NewHeader("Content-Type", "application/sdp"))
	if ack.CSeq().SeqNo != 2 || ack.CSeq().MethodName != sip.ACK || string(ack.Body()) != "v=0\r\n" || ack.Contact() != nil {
		t.Errorf("ACK (RFC 3261 13.2.2.4: the INVITE's CSeq number):\n%s", ack)
	}
	cancel := Cancel(req)
	if cancel.CSeq().SeqNo != 2 || cancel.CSeq().MethodName != sip.CANCEL || branch(cancel) != branch(req) ||
		cancel.Destination() != req.Destination() {
		t.Errorf("CANCEL (RFC 3261 9.1: same branch and CSeq number):\n%s", cancel)
	}
}

func tagOf(p sip.HeaderParams) string { t, _ := p.Get("tag"); return t }

func branch(req *sip.Request) string { b, _ := req.Via().Params.Get("branch"); return b }
