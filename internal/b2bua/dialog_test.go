package b2bua

import (
	"context"
	"encoding/json"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/callbackd/callbackd/internal/siptest"
)

func TestMain(m *testing.M) {
	// Short timers: an unacknowledged 2xx is given up after 64*T1 = 1.28 s.
	sip.SetTimers(20*time.Millisecond, 80*time.Millisecond, 100*time.Millisecond)
	// INVITE transactions end at their 2xx, as sipserver.New sets them:
	// 2xx retransmissions reach HandleStrayResponse (testB2BUA).
	sip.Timer_L, sip.Timer_M = 0, 0
	os.Exit(m.Run())
}

// restoredCall stores the answered call 1001 -> 1002 between phones a and
// b, as saved before a restart, and restores it.
func restoredCall(t *testing.T, b *B2BUA, st *memStore, pa, pb *phone) {
	t.Helper()
	rec := savedCall{Caller: "1001", Callee: "1002",
		A: savedLeg{CallID: "a-call", LocalTag: "srv-a", RemoteTag: "ph-a", Local: "sip:1002@test.invalid",
			Remote: "sip:1001@test.invalid", Target: "sip:1001@" + pa.addr(), Dest: pa.addr(), Transport: "UDP", CSeq: 1},
		B: savedLeg{CallID: "b-call", LocalTag: "srv-b", RemoteTag: "ph-b", Local: "sip:1001@test.invalid",
			Remote: "sip:1002@test.invalid", Target: "sip:1002@" + pb.addr(), Dest: pb.addr(), Transport: "UDP", CSeq: 1}}
	data, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	st.calls["a-call"] = data
	n, err := b.Restore(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("Restore = %d, %v; want 1 call", n, err)
	}
	if b.Calls() != 1 {
		t.Fatalf("Calls = %d after Restore, want 1", b.Calls())
	}
	for _, dn := range []string{"1001", "1002"} {
		if s, _ := b.lines.Get(dn); s.Calls != 1 {
			t.Fatalf("line %s counts %d calls after Restore, want 1", dn, s.Calls)
		}
	}
}

// restoredPair is a B2BUA with the call of restoredCall between phones
// answering as aAnswer and bAnswer.
func restoredPair(t *testing.T, aAnswer, bAnswer func(*phone, *sip.Request) []*sip.Response) (*B2BUA, *memStore, *phone, *phone) {
	t.Helper()
	pa, pb := newPhone(t, aAnswer), newPhone(t, bAnswer)
	b, st := testB2BUA(t, nil)
	restoredCall(t, b, st, pa, pb)
	return b, st, pa, pb
}

// fromA is an in-dialog request of phone A in the restored call.
func fromA(pa *phone, method sip.RequestMethod, cseq uint32, body string) *sip.Request {
	req := sip.NewRequest(method, sip.Uri{Scheme: "sip", User: "1002", Host: "127.0.0.1"})
	via := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "UDP", Host: "127.0.0.1", Port: 5999, Params: sip.NewParams()}
	via.Params.Add("branch", sip.GenerateBranch())
	req.AppendHeader(via)
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "1001", Host: "test.invalid"}, Params: sip.NewParams()}
	from.Params.Add("tag", "ph-a")
	req.AppendHeader(from)
	to := &sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: "1002", Host: "test.invalid"}, Params: sip.NewParams()}
	to.Params.Add("tag", "srv-a")
	req.AppendHeader(to)
	cid := sip.CallIDHeader("a-call")
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: cseq, MethodName: method})
	if body != "" {
		req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	req.SetBody([]byte(body))
	req.SetSource(pa.addr())
	req.SetTransport("UDP")
	return req
}

// TestB3_RestoredCallBye: a call restored after a restart counts on both
// lines; A's BYE is answered 200 and relayed to B in B's dialog, with a
// CSeq above any used before the restart (RFC 3261 12.2.1.1); the call is
// forgotten, in memory and in the store.
func TestB3_RestoredCallBye(t *testing.T) {
	b, st, pa, pb := restoredPair(t, nil, okToAll)

	if got := inDialog(b, fromA(pa, sip.BYE, 2, "")).Code(); got != 200 {
		t.Fatalf("A's BYE answered %d, want 200", got)
	}
	out := pb.next(sip.BYE)
	if out.CallID().Value() != "b-call" || tagOf(out.To().Params) != "ph-b" || tagOf(out.From().Params) != "srv-b" {
		t.Errorf("BYE to B not in B's dialog:\n%s", out)
	}
	if out.CSeq().SeqNo <= 101 {
		t.Errorf("BYE to B has CSeq %d, want above 101 (saved 1, +100 after a restart)", out.CSeq().SeqNo)
	}
	if b.Calls() != 0 || st.stored() != 0 {
		t.Errorf("after BYE: %d calls, %d stored; want none", b.Calls(), st.stored())
	}
	for _, dn := range []string{"1001", "1002"} {
		if s, _ := b.lines.Get(dn); s.Calls != 0 {
			t.Errorf("line %s counts %d calls after BYE, want 0", dn, s.Calls)
		}
	}

	// The dialog is gone: a request in it gets 481 (RFC 3261 12.2.2).
	if got := inDialog(b, fromA(pa, sip.BYE, 3, "")).Code(); got != 481 {
		t.Errorf("BYE in an ended call answered %d, want 481", got)
	}
}

// TestB3_AuditEndsGoneCall: after a restart, a party that answers the audit's
// OPTIONS with 481 no longer has the call: BYE to both, the call ends.
func TestB3_AuditEndsGoneCall(t *testing.T) {
	b, st, pa, pb := restoredPair(t, answering(sip.OPTIONS, 481, ""), okToAll)
	b.Audit()
	pa.next(sip.OPTIONS)
	pb.next(sip.BYE)
	waitFor(t, "the call to end", func() bool { return b.Calls() == 0 && st.stored() == 0 })
}

const (
	offerSDP  = "v=0\r\no=a 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=sendonly\r\n"
	answerSDP = "v=0\r\no=b 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\na=recvonly\r\n"
)

// TestReinviteRelayedAndAcked: A's re-INVITE (hold) goes to B with its
// offer; B's 2xx comes back to A with the answer and is retransmitted over
// UDP until A's ACK (RFC 3261 13.3.1.4), which is passed on to B with the
// CSeq of our INVITE to B (13.2.2.4).
func TestReinviteRelayedAndAcked(t *testing.T) {
	b, _, pa, pb := restoredPair(t, nil, answering(sip.INVITE, 200, answerSDP))

	inv := fromA(pa, sip.INVITE, 2, offerSDP)
	tx := siptest.NewTx(inv)
	b.HandleInDialog(inv, tx)
	out := pb.next(sip.INVITE)
	if string(out.Body()) != offerSDP || out.CallID().Value() != "b-call" {
		t.Fatalf("re-INVITE to B:\n%s\nwant A's offer in B's dialog", out)
	}
	r := tx.Result()
	if r.Code() != 200 || string(r.Final.Body()) != answerSDP {
		t.Fatalf("A's re-INVITE answered %d with %q, want 200 with B's answer", r.Code(), r.Final.Body())
	}
	// Retransmitted while not acknowledged (T1 is 20 ms here).
	waitFor(t, "a retransmission of the 2xx", func() bool { return len(tx.Result().Responses) >= 3 })

	b.HandleAck(fromA(pa, sip.ACK, 2, ""), siptest.NewTx(nil))
	ack := pb.next(sip.ACK)
	if ack.CSeq().SeqNo != out.CSeq().SeqNo || ack.CallID().Value() != "b-call" {
		t.Errorf("ACK to B has CSeq %d in %s, want %d in b-call", ack.CSeq().SeqNo, ack.CallID().Value(), out.CSeq().SeqNo)
	}
	n := len(tx.Result().Responses)
	time.Sleep(200 * time.Millisecond)
	if m := len(tx.Result().Responses); m != n {
		t.Errorf("the 2xx was sent %d more times after the ACK, want none", m-n)
	}
	if b.Calls() != 1 {
		t.Errorf("Calls = %d after the re-INVITE, want 1", b.Calls())
	}
}

// TestReinviteNeverAcked: without A's ACK for 64*T1 the session is ended
// with BYE on both sides (RFC 3261 13.3.1.4).
func TestReinviteNeverAcked(t *testing.T) {
	b, _, pa, pb := restoredPair(t, okToAll, answering(sip.INVITE, 200, answerSDP))
	inv := fromA(pa, sip.INVITE, 2, offerSDP)
	b.HandleInDialog(inv, siptest.NewTx(inv))
	pb.next(sip.INVITE)
	pb.next(sip.BYE)
	pa.next(sip.BYE)
	waitFor(t, "the call to end", func() bool { return b.Calls() == 0 })
}

// TestInDialogRelayLost: a request B answers 481 (it lost the dialog) is
// answered 481 to A, and the call is ended (RFC 3261 12.2.1.2).
func TestInDialogRelayLost(t *testing.T) {
	b, st, pa, _ := restoredPair(t, okToAll, answering(sip.INFO, 481, ""))
	if got := inDialog(b, fromA(pa, sip.INFO, 2, "")).Code(); got != 481 {
		t.Fatalf("INFO answered %d, want B's 481", got)
	}
	pa.next(sip.BYE)
	waitFor(t, "the call to end", func() bool { return b.Calls() == 0 && st.stored() == 0 })
}

// TestCancelWhileRinging: A's CANCEL while B's device rings is passed on
// after B's provisional response (RFC 3261 9.1) and the call is forgotten,
// on both lines.
func TestCancelWhileRinging(t *testing.T) {
	pa := newPhone(t, nil)
	pb := newPhone(t, ringsUntilCancel)
	b, _ := testB2BUA(t, map[string]*phone{"1002": pb})
	inv := fromA(pa, sip.INVITE, 1, offerSDP)
	inv.To().Params.Remove("tag")
	tx := siptest.NewTx(inv)
	c := b.callFrom(inv, "1001", "1002", nil)
	if _, ok := b.lines.Offer("1002", c.id); !ok {
		t.Fatal("line 1002 busy")
	}
	r := &ringing{b: b, c: c, req: inv, tx: tx, callerName: "Line 1001", responses: make(chan forkResponse)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.run(b.reg.Bindings("1002"), time.Now())
	}()
	fork := pb.next(sip.INVITE)
	for res := range tx.Sent() {
		if res.StatusCode == 180 {
			break
		}
	}
	tx.Cancel(sip.NewRequest(sip.CANCEL, inv.Recipient))
	cancel := pb.next(sip.CANCEL)
	if cancel.CallID().Value() != fork.CallID().Value() || branchOf(cancel) != branchOf(fork) {
		t.Errorf("CANCEL does not match the INVITE to B (RFC 3261 9.1):\n%s", cancel)
	}
	canceled(t, b, tx, done)
}

// canceled checks what A's CANCEL left once done is closed: A's INVITE
// ended 487 (RFC 3261 9.2), no call, neither line counting one.
func canceled(t *testing.T, b *B2BUA, tx *siptest.Tx, done <-chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the call did not end after CANCEL")
	}
	if got := tx.Result().Code(); got != 487 {
		t.Errorf("A's INVITE ended %d, want 487", got)
	}
	if b.Calls() != 0 {
		t.Errorf("Calls = %d after CANCEL, want 0", b.Calls())
	}
	for _, dn := range []string{"1001", "1002"} {
		if s, _ := b.lines.Get(dn); s.Calls != 0 {
			t.Errorf("line %s counts %d calls after CANCEL, want 0", dn, s.Calls)
		}
	}
}

func branchOf(req *sip.Request) string {
	br, _ := req.Via().Params.Get("branch")
	return br
}

// TestReinviteRetransmitted2xxAckedAgain: B's 2xx to a relayed re-INVITE,
// retransmitted after we ACKed it (our ACK lost), gets the same ACK again
// (RFC 3261 13.2.2.4), though the INVITE's transaction ended at the first
// 2xx: the ACK is kept by the INVITE's branch (sendAck).
func TestReinviteRetransmitted2xxAckedAgain(t *testing.T) {
	var ok atomic.Pointer[sip.Response]
	b, _, pa, pb := restoredPair(t, nil, func(p *phone, req *sip.Request) []*sip.Response {
		if req.IsInvite() {
			res := p.reply(req, 200, answerSDP)
			ok.Store(res)
			return []*sip.Response{res}
		}
		return nil
	})
	reinviteAnswered(t, b, pa, pb)
	b.HandleAck(fromA(pa, sip.ACK, 2, ""), siptest.NewTx(nil))
	first := pb.next(sip.ACK)
	pb.strayAgain(b, ok.Load())
	again := pb.next(sip.ACK)
	for _, h := range []string{"Via", "CSeq", "Call-ID", "To", "From"} {
		if a, b := first.GetHeader(h), again.GetHeader(h); a == nil || b == nil || a.Value() != b.Value() {
			t.Errorf("%s of the ACK sent again %v, want %v", h, b, a)
		}
	}
}

// TestAckLostThenBye: A's ACK for our 2xx is lost and A hangs up: the BYE
// ends the call, and 64*T1 later nothing ends it again (no BYE to either
// side, which at load came back as a burst for calls long gone).
func TestAckLostThenBye(t *testing.T) {
	b, _, pa, pb := restoredPair(t, okToAll, okToAll)
	reinviteAnswered(t, b, pa, pb)
	bye := fromA(pa, sip.BYE, 3, "")
	if r := inDialog(b, bye); r.Code() != 200 {
		t.Fatalf("A's BYE answered %d, want 200", r.Code())
	}
	pb.next(sip.BYE) // relayed
	waitFor(t, "the call to end", func() bool { return b.Calls() == 0 })
	// 64*T1 is 1.28 s here: wait past it for a BYE that must not come.
	select {
	case req := <-pa.reqs:
		t.Errorf("A got %s after its own BYE, want nothing", req.Method)
	case req := <-pb.reqs:
		t.Errorf("B got %s after the relayed BYE, want nothing", req.Method)
	case <-time.After(64*sip.T1 + 300*time.Millisecond):
	}
}

// TestAckBeforeNextRequestOnTheOtherSide: A acknowledges our 2xx and at
// once hangs up, or sends its next re-INVITE (hold, then resume); that
// request is handled before the ACK (sipgo gives each request its own
// goroutine). B must still get the ACK first (RFC 3261 13.2.2.4), then the
// request, not one in a dialog it has not confirmed (a strict UAS, SIPp,
// drops the call).
func TestAckBeforeNextRequestOnTheOtherSide(t *testing.T) {
	for _, next := range []struct {
		method sip.RequestMethod
		body   string
	}{{sip.BYE, ""}, {sip.INVITE, offerSDP}} {
		t.Run(string(next.method), func(t *testing.T) {
			b, _, pa, pb := restoredPair(t, okToAll, okToAll)
			reinviteAnswered(t, b, pa, pb)
			req := fromA(pa, next.method, 3, next.body)
			done := make(chan int, 1)
			go func() { done <- inDialog(b, req).Code() }()
			waitFor(t, "the request to wait for the ACK", func() bool {
				c := b.findLeg(req.CallID().Value()).call
				c.mu.Lock()
				defer c.mu.Unlock()
				return c.a.ackGate != nil
			})
			b.HandleAck(fromA(pa, sip.ACK, 2, ""), siptest.NewTx(nil))
			for _, want := range []sip.RequestMethod{sip.ACK, next.method} {
				select {
				case got := <-pb.reqs:
					if got.Method != want {
						t.Fatalf("B got %s, want %s (the ACK first)", got.Method, want)
					}
				case <-time.After(5 * time.Second):
					t.Fatalf("B got no %s within 5 s", want)
				}
			}
			if code := <-done; code != 200 {
				t.Errorf("A's %s answered %d, want 200", next.method, code)
			}
		})
	}
}

// reinviteAnswered relays A's re-INVITE (CSeq 2, an offer) to B and
// checks that A got B's 200.
func reinviteAnswered(t *testing.T, b *B2BUA, pa, pb *phone) {
	t.Helper()
	inv := fromA(pa, sip.INVITE, 2, offerSDP)
	tx := siptest.NewTx(inv)
	b.HandleInDialog(inv, tx)
	pb.next(sip.INVITE)
	if r := tx.Result(); r.Code() != 200 {
		t.Fatalf("A's re-INVITE answered %d, want 200", r.Code())
	}
}
