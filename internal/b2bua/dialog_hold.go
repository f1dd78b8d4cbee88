package b2bua

import (
	"context"
	"fmt"

	"github.com/emiago/sipgo/sip"
	"github.com/pion/sdp/v3"
)

// Hold puts the connected calls of line dn on hold toward their other
// party (F14: Dial pressed on the console while A is in another call puts
// that call on hold first). The other party gets a re-INVITE whose offer is
// the session description last sent to it, marked a=sendonly with its
// version increased (RFC 3264 section 8.4, hold; section 8: a new version);
// its answer stays with the server (A's phone keeps its session as is).
// It returns the number of calls held, once each has answered.
func (b *B2BUA) Hold(dn string) int {
	var peers []*leg
	seen := map[*call]bool{}
	b.mu.Lock()
	for _, l := range b.legs {
		c := l.call
		if seen[c] {
			continue
		}
		seen[c] = true
		c.mu.Lock()
		switch {
		case c.a == nil || c.b == nil || c.ended:
		case c.caller == dn && c.trunk == "":
			peers = append(peers, c.b)
		case c.callee == dn:
			peers = append(peers, c.a)
		}
		c.mu.Unlock()
	}
	b.mu.Unlock()
	n := 0
	for _, l := range peers {
		if err := b.hold(l); err != nil {
			b.log.Info("hold failed", "dn", dn, "call", l.call.id, "error", err)
			continue
		}
		n++
	}
	return n
}

// hold sends the hold re-INVITE on leg l and acknowledges its answer.
func (b *B2BUA) hold(l *leg) error {
	last := l.sdp.Load()
	if last == nil {
		return fmt.Errorf("no session description sent on the leg yet")
	}
	offer, err := heldOffer(*last)
	if err != nil {
		return err
	}
	c := l.call
	if !c.startReinvite() {
		return fmt.Errorf("a re-INVITE is in progress") // RFC 3261 14.1: one at a time
	}
	defer c.endReinvite()
	req := b.request(l, sip.INVITE, l.CSeq.Add(1))
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(offer)
	ctx, cancel := context.WithTimeout(context.Background(), 64*sip.T1)
	defer cancel()
	tx, err := b.client.TransactionRequest(ctx, req, noBuild)
	if err != nil {
		return err
	}
	defer tx.Terminate()
	for {
		select {
		case res := <-tx.Responses():
			if res.StatusCode < 200 {
				continue
			}
			if !res.IsSuccess() {
				return fmt.Errorf("hold refused: %d %s", res.StatusCode, res.Reason)
			}
			l.sent(req)
			ack := b.ack(l, req, nil, nil)
			return b.sendAck(req, ack)
		case <-tx.Done():
			return fmt.Errorf("hold: no answer: %w", tx.Err())
		}
	}
}

// heldOffer is a session description with every stream a=sendonly and the
// version increased.
func heldOffer(body []byte) ([]byte, error) {
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(string(body)); err != nil {
		return nil, fmt.Errorf("hold: %w", err)
	}
	sd.Origin.SessionVersion++
	kept := sd.Attributes[:0]
	for _, a := range sd.Attributes { // a session-level direction would override
		switch a.Key {
		case "sendrecv", "sendonly", "recvonly", "inactive":
		default:
			kept = append(kept, a)
		}
	}
	sd.Attributes = kept
	for _, md := range sd.MediaDescriptions {
		kept := md.Attributes[:0]
		for _, a := range md.Attributes {
			switch a.Key {
			case "sendrecv", "sendonly", "recvonly", "inactive":
			default:
				kept = append(kept, a)
			}
		}
		md.Attributes = append(kept, sdp.NewPropertyAttribute("sendonly"))
	}
	return sd.Marshal()
}
