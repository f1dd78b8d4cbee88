package b2bua

import (
	"encoding/json"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/callbackd/callbackd/internal/media"
	"github.com/callbackd/callbackd/internal/siptest"
)

// results collects what OnResult is told.
type results struct {
	mu  sync.Mutex
	got []Result
}

func (r *results) add(res Result) {
	r.mu.Lock()
	r.got = append(r.got, res)
	r.mu.Unlock()
}

func (r *results) last() Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.got) == 0 {
		return Result{}
	}
	return r.got[len(r.got)-1]
}

// TestF14_ConnectRingsAThenB: Dial (RFC 3725 Flow I) rings A with the recall
// Alert-Info and B's number, passes A's offer to B, ACKs B, then ACKs A
// with B's answer; the call is stored and counted.
func TestF14_ConnectRingsAThenB(t *testing.T) {
	pa := newPhone(t, answering(sip.INVITE, 200, offerSDP))
	pb := newPhone(t, answering(sip.INVITE, 200, answerSDP))
	b, st := testB2BUA(t, map[string]*phone{"1001": pa, "1002": pb})
	var rs results
	b.OnResult = rs.add
	if err := b.Connect("1001", "1002"); err != nil {
		t.Fatal(err)
	}
	invA := pa.next(sip.INVITE)
	if h := invA.GetHeader("Alert-Info"); h == nil || h.Value() != RecallAlertInfo || invA.From().Address.User != "1002" || len(invA.Body()) != 0 {
		t.Errorf("INVITE to A: want the recall Alert-Info, From 1002, no SDP:\n%s", invA)
	}
	invB := pb.next(sip.INVITE)
	if string(invB.Body()) != offerSDP || invB.From().Address.User != "1001" {
		t.Errorf("INVITE to B: want A's offer from 1001:\n%s", invB)
	}
	pb.next(sip.ACK)
	ackA := pa.next(sip.ACK)
	if string(ackA.Body()) != answerSDP || ackA.CSeq().SeqNo != invA.CSeq().SeqNo {
		t.Errorf("ACK to A: want B's answer with the INVITE's CSeq (RFC 3261 13.2.1):\n%s", ackA)
	}
	if b.Calls() != 1 || st.stored() != 1 {
		t.Errorf("after Connect: %d calls, %d stored; want 1, 1", b.Calls(), st.stored())
	}
	if r := rs.last(); r.Outcome != Answered || r.Caller != "1001" || r.Callee != "1002" {
		t.Errorf("result %+v, want 1001 -> 1002 answered", r)
	}
}

// TestRetransmitted2xxAckedAgain: A's 2xx, retransmitted after we ACKed
// it, gets the same ACK again (RFC 3261 13.2.2.4): same branch, CSeq and
// body (B's answer), built again from what was kept of it.
func TestRetransmitted2xxAckedAgain(t *testing.T) {
	var ok atomic.Pointer[sip.Response]
	pa := newPhone(t, func(p *phone, req *sip.Request) []*sip.Response {
		if req.IsInvite() {
			res := p.reply(req, 200, offerSDP)
			ok.Store(res)
			return []*sip.Response{res}
		}
		return okToAll(p, req)
	})
	pb := newPhone(t, answering(sip.INVITE, 200, answerSDP))
	b, _ := testB2BUA(t, map[string]*phone{"1001": pa, "1002": pb})
	if err := b.Connect("1001", "1002"); err != nil {
		t.Fatal(err)
	}
	first := pa.next(sip.ACK)
	pa.strayAgain(b, ok.Load())
	again := pa.next(sip.ACK)
	for _, h := range []string{"Via", "CSeq", "Call-ID", "To", "From", "Content-Type"} {
		if a, b := first.GetHeader(h), again.GetHeader(h); a == nil || b == nil || a.Value() != b.Value() {
			t.Errorf("%s of the ACK sent again %v, want %v", h, b, a)
		}
	}
	if string(again.Body()) != answerSDP || string(first.Body()) != answerSDP {
		t.Errorf("ACK bodies %q then %q, want B's answer", first.Body(), again.Body())
	}
}

// TestConnectCalleeBusy: when B's device is busy, A's answer is
// acknowledged refusing its streams (port 0, RFC 3264 6), A gets BYE and
// Call Back is told B was busy.
func TestConnectCalleeBusy(t *testing.T) {
	pa := newPhone(t, answering(sip.INVITE, 200, offerSDP))
	pb := newPhone(t, answering(sip.INVITE, 486, ""))
	b, st := testB2BUA(t, map[string]*phone{"1001": pa, "1002": pb})
	var rs results
	b.OnResult = rs.add
	if err := b.Connect("1001", "1002"); err == nil || !strings.Contains(err.Error(), "486") {
		t.Fatalf("Connect = %v, want B's 486", err)
	}
	ack := pa.next(sip.ACK)
	if !strings.Contains(string(ack.Body()), "m=audio 0 ") {
		t.Errorf("ACK to A does not refuse the stream:\n%s", ack)
	}
	pa.next(sip.BYE)
	if r := rs.last(); r.Outcome != FailBusy || r.Code != 486 {
		t.Errorf("result %+v, want busy 486", r)
	}
	if b.Calls() != 0 || st.stored() != 0 {
		t.Errorf("after a failed Connect: %d calls, %d stored; want none", b.Calls(), st.stored())
	}
}

// TestConnectCallerDoesNotAnswer: when A declines, B is never rung.
func TestConnectCallerDoesNotAnswer(t *testing.T) {
	pa := newPhone(t, answering(sip.INVITE, 603, ""))
	pb := newPhone(t, nil)
	b, _ := testB2BUA(t, map[string]*phone{"1001": pa, "1002": pb})
	if err := b.Connect("1001", "1002"); err == nil || !strings.Contains(err.Error(), "did not answer") {
		t.Fatalf("Connect = %v, want A's refusal", err)
	}
	select {
	case req := <-pb.reqs:
		t.Fatalf("B got %s although A did not answer", req.Method)
	case <-time.After(100 * time.Millisecond):
	}
	if b.Calls() != 0 {
		t.Errorf("Calls = %d, want 0", b.Calls())
	}
}

// TestServerLeg: while the server itself is A's other party (the offer,
// the recall before B answers), A's INFO carries a key, an unknown method
// is refused 405 with Allow, a re-INVITE in the early dialog of the offer
// gets 500 with Retry-After (RFC 3261 14.1), and BYE ends it.
func TestServerLeg(t *testing.T) {
	pa := newPhone(t, nil)
	b, _ := testB2BUA(t, nil)
	ep, err := b.newEndpoint("1001")
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	inv := fromA(pa, sip.INVITE, 1, offerSDP)
	inv.To().Params.Remove("tag")
	c := b.callFrom(inv, "1001", "1002", nil)
	c.a.LocalTag = "srv-a"
	srv := &serverSide{ep: ep, bye: make(chan struct{})}
	c.srv = srv
	handle := func(req *sip.Request) siptest.Result { return inDialog(b, req) }

	info := fromA(pa, sip.INFO, 2, "")
	info.AppendHeader(sip.NewHeader("Content-Type", "application/dtmf-relay"))
	info.SetBody([]byte("Signal=5\r\nDuration=160\r\n"))
	if got := handle(info).Code(); got != 200 {
		t.Fatalf("INFO answered %d, want 200", got)
	}
	select {
	case d := <-ep.Digits():
		if d != '5' {
			t.Errorf("key %q, want 5", d)
		}
	case <-time.After(time.Second):
		t.Error("the INFO's key was not heard")
	}
	bad := fromA(pa, sip.INFO, 3, "")
	bad.AppendHeader(sip.NewHeader("Content-Type", "text/plain"))
	bad.SetBody([]byte("5"))
	if got := handle(bad).Code(); got != 415 {
		t.Errorf("INFO text/plain answered %d, want 415", got)
	}
	if r := handle(fromA(pa, sip.UPDATE, 4, "")); r.Code() != 405 || r.Final.GetHeader("Allow") == nil {
		t.Errorf("UPDATE answered %d (Allow %v), want 405 with Allow", r.Code(), r.Final.GetHeader("Allow"))
	}
	if r := handle(fromA(pa, sip.INVITE, 5, offerSDP)); r.Code() != 500 || r.Final.GetHeader("Retry-After") == nil {
		t.Errorf("re-INVITE in the early dialog answered %d, want 500 with Retry-After", r.Code())
	}
	if got := handle(fromA(pa, sip.BYE, 6, "")).Code(); got != 200 {
		t.Fatalf("BYE answered %d, want 200", got)
	}
	select {
	case <-srv.bye:
	default:
		t.Error("BYE did not tell the server side A hung up")
	}
	b.end(c)
}

// TestSendText: a screen goes to each device of the line as a MESSAGE
// (RFC 3428) from the service user, in a dialog of its own.
func TestSendText(t *testing.T) {
	pa := newPhone(t, okToAll)
	b, _ := testB2BUA(t, map[string]*phone{"1001": pa})
	if n := b.SendText("1001", "1002 is available"); n != 1 {
		t.Fatalf("SendText = %d, want 1 device", n)
	}
	msg := pa.next(sip.MESSAGE)
	if string(msg.Body()) != "1002 is available" || msg.From().Address.User != ServiceUser ||
		!strings.HasPrefix(msg.ContentType().Value(), "text/plain") || msg.To().Address.User != "1001" {
		t.Errorf("MESSAGE:\n%s", msg)
	}
}

// TestAlert: the audio alert rings the line's device with the recall
// Alert-Info, then cancels it (after its provisional response, RFC 3261
// 9.1).
func TestAlert(t *testing.T) {
	pa := newPhone(t, ringsUntilCancel)
	b, _ := testB2BUA(t, map[string]*phone{"1001": pa})
	b.Alert("1001", "1002", 50*time.Millisecond)
	inv := pa.next(sip.INVITE)
	if h := inv.GetHeader("Alert-Info"); h == nil || h.Value() != RecallAlertInfo || len(inv.Body()) != 0 {
		t.Errorf("alert INVITE:\n%s", inv)
	}
	if c := pa.next(sip.CANCEL); c.CallID().Value() != inv.CallID().Value() {
		t.Errorf("CANCEL of another call:\n%s", c)
	}
}

// answeringMedia answers an INVITE's SDP offer as a phone would (RFC 3264
// section 6, audio to the phone's own address) and every other request 200.
func answeringMedia(p *phone, req *sip.Request) []*sip.Response {
	if req.Method != sip.INVITE {
		return okToAll(p, req)
	}
	answer, _, err := media.Negotiate(req.Body(), media.Endpoint{Addr: p.conn.LocalAddr().(*net.UDPAddr).AddrPort()})
	if err != nil {
		return []*sip.Response{p.reply(req, 488, "")}
	}
	return []*sip.Response{p.reply(req, 200, string(answer))}
}

// TestF28_OfferKeyThenCancel: a call that failed busy gets the offer as early
// media (183 with the server's SDP answer, RFC 3960); 5 pressed by SIP
// INFO asks for the call back (OfferKey); A's CANCEL ends the offer and the
// call, and the callee's line is not counted while the offer plays.
func TestF28_OfferKeyThenCancel(t *testing.T) {
	pa := newPhone(t, nil)
	b, _ := testB2BUA(t, nil)
	var offered Result
	b.OfferCallBack = func(r Result) Offer { offered = r; return Offer{Prompt: media.PromptBusyOffer} }
	keys := make(chan string, 1)
	b.OfferKey = func(caller string) string { keys <- caller; return media.PromptActivated }

	inv := fromA(pa, sip.INVITE, 1, offerSDP)
	inv.To().Params.Remove("tag")
	tx := siptest.NewTx(inv)
	c := b.callFrom(inv, "1001", "1002", nil)
	c.a.LocalTag = "srv-a" // what fromA's in-dialog requests carry
	if !b.offerable(inv, FailBusy) {
		t.Fatal("a busy call with SDP is not offerable")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.announceOffer(inv, tx, c, 486, "Busy Here", FailBusy, time.Now())
	}()
	res := <-tx.Sent()
	if res.StatusCode != 183 || !strings.Contains(string(res.Body()), "m=audio ") {
		t.Fatalf("first response %d %q, want 183 with SDP", res.StatusCode, res.Body())
	}
	if offered.Outcome != FailBusy || offered.Caller != "1001" || offered.Callee != "1002" {
		t.Errorf("OfferCallBack told %+v, want 1001 -> 1002 busy", offered)
	}
	info := fromA(pa, sip.INFO, 2, "")
	info.AppendHeader(sip.NewHeader("Content-Type", "application/dtmf-relay"))
	info.SetBody([]byte("Signal=5\r\nDuration=160\r\n"))
	if got := inDialog(b, info).Code(); got != 200 {
		t.Fatalf("INFO answered %d, want 200", got)
	}
	select {
	case who := <-keys:
		if who != "1001" {
			t.Errorf("OfferKey told %s, want 1001", who)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("5 did not reach OfferKey")
	}
	tx.Cancel(sip.NewRequest(sip.CANCEL, inv.Recipient))
	canceled(t, b, tx, done)
}

// TestF29_RecallConnects: the automatic recall rings A with the server's offer
// and the recall Alert-Info, asks where to connect (RecallAnswered), rings
// B with the codec A uses, and relays between them: the call is stored
// with its relay and counted.
func TestF29_RecallConnects(t *testing.T) {
	pa := newPhone(t, answeringMedia)
	pb := newPhone(t, answeringMedia)
	b, st := testB2BUA(t, map[string]*phone{"1001": pa, "1002": pb})
	b.RecallAnswered = func(id int64, caller string) string {
		if id != 7 || caller != "1001" {
			t.Errorf("RecallAnswered(%d, %s), want 7, 1001", id, caller)
		}
		return "1002"
	}
	var rs results
	b.OnResult = rs.add
	if err := b.Recall(7, "1001", "1002", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	invA := pa.next(sip.INVITE)
	if h := invA.GetHeader("Alert-Info"); h == nil || h.Value() != RecallAlertInfo || !strings.Contains(string(invA.Body()), "m=audio ") {
		t.Errorf("INVITE to A: want the recall Alert-Info and the server's offer:\n%s", invA)
	}
	pa.next(sip.ACK)
	invB := pb.next(sip.INVITE)
	if !strings.Contains(string(invB.Body()), "m=audio ") {
		t.Errorf("INVITE to B without the server's offer:\n%s", invB)
	}
	pb.next(sip.ACK)
	if b.Calls() != 1 || st.stored() != 1 {
		t.Fatalf("after the recall: %d calls, %d stored; want 1, 1", b.Calls(), st.stored())
	}
	st.mu.Lock()
	var rec savedCall
	for _, d := range st.calls {
		if err := json.Unmarshal(d, &rec); err != nil {
			t.Fatal(err)
		}
	}
	st.mu.Unlock()
	if rec.Relay == nil || rec.Caller != "1001" || rec.Callee != "1002" {
		t.Errorf("stored %+v, want 1001 -> 1002 with its relay", rec)
	}
	if r := rs.last(); r.Outcome != Answered {
		t.Errorf("result %+v, want answered", r)
	}
	c := b.findLeg(invA.CallID().Value()).call
	b.hangup(c)
	pa.next(sip.BYE)
	pb.next(sip.BYE)
	if b.Calls() != 0 || st.stored() != 0 {
		t.Errorf("after hangup: %d calls, %d stored; want none", b.Calls(), st.stored())
	}
}
