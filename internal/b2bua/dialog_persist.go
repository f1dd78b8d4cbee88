package b2bua

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"

	"github.com/emiago/sipgo/sip"

	"github.com/callbackd/callbackd/internal/media/endpoint"
	"github.com/callbackd/callbackd/internal/sipmsg"
	"github.com/callbackd/callbackd/internal/store"
)

// An answered call is stored (both dialogs, as the B2BUA sees them) so that
// after a crash or kill -9 a restart still relays its BYE and still counts
// it on its lines: a line that was busy stays busy until its call really
// ends (Call Back's CCBS depends on that). Calls still ringing are not
// stored: their transactions die with the process.

type savedLeg struct {
	CallID    string `json:"call_id"`
	LocalTag  string `json:"local_tag"`
	RemoteTag string `json:"remote_tag"`
	Local     string `json:"local"`
	LocalName string `json:"local_name,omitempty"`
	Remote    string `json:"remote"`
	Target    string `json:"target"`
	Dest      string `json:"dest"`
	Transport string `json:"transport"`
	CSeq      uint32 `json:"cseq"`
}

type savedCall struct {
	Caller string      `json:"caller"`
	Trunk  string      `json:"trunk,omitempty"` // the caller is an outsider through this trunk
	Callee string      `json:"callee"`
	A      savedLeg    `json:"a"`
	B      savedLeg    `json:"b"`
	Relay  *savedRelay `json:"relay,omitempty"`
}

// savedRelay is the media of a call the server relays (a recall): its two
// sockets are bound again on restore, so the phones' RTP flows on.
type savedRelay struct {
	A       string `json:"a"`        // our socket facing A, ip:port
	B       string `json:"b"`        // our socket facing B
	ARemote string `json:"a_remote"` // where A's media goes
	BRemote string `json:"b_remote"`
}

func saveLeg(l *leg) savedLeg {
	return savedLeg{
		CallID: l.CallID, LocalTag: l.LocalTag, RemoteTag: l.RemoteTag,
		Local: l.Local.String(), LocalName: l.LocalName, Remote: l.Remote.String(), Target: l.Target.String(),
		Dest: l.Dest, Transport: l.Transport, CSeq: l.CSeq.Load(),
	}
}

func loadLeg(c *call, name string, s savedLeg) (*leg, error) {
	l := &leg{call: c, name: name, Dialog: &sipmsg.Dialog{CallID: s.CallID, LocalTag: s.LocalTag, RemoteTag: s.RemoteTag,
		LocalName: s.LocalName, Dest: s.Dest, Transport: s.Transport}}
	for _, u := range []struct {
		text string
		uri  *sip.Uri
	}{{s.Local, &l.Local}, {s.Remote, &l.Remote}, {s.Target, &l.Target}} {
		if err := sip.ParseUri(u.text, u.uri); err != nil {
			return nil, fmt.Errorf("leg %s: %q: %w", name, u.text, err)
		}
	}
	// Requests we send after a restart must not reuse a CSeq we may have
	// used after the record was written (12.2.1.1: CSeq increases).
	l.CSeq.Store(s.CSeq + 100)
	return l, nil
}

// save stores an answered call; it returns once stored.
func (b *B2BUA) save(c *call) {
	if b.Store == nil {
		return
	}
	c.mu.Lock()
	rec := savedCall{Caller: c.caller, Trunk: c.trunk, Callee: c.callee, A: saveLeg(c.a), B: saveLeg(c.b)}
	if r := c.relay; r != nil {
		ra, rb := r.Remotes()
		la, lb := r.Locals()
		rec.Relay = &savedRelay{A: la, B: lb, ARemote: ra.String(), BRemote: rb.String()}
	}
	c.mu.Unlock()
	data, err := json.Marshal(rec)
	if err == nil {
		err = b.Store.PutCall(context.Background(), store.Call{ID: c.id, Data: data})
	}
	if err != nil {
		b.log.Error("call not stored", "call", c.id, "error", err)
	}
}

// restoreRelay binds a relayed call's sockets again and relays on.
func (b *B2BUA) restoreRelay(c *call, s *savedRelay) error {
	var eps [2]*endpoint.Endpoint
	for i, side := range []struct{ local, remote, party string }{{s.A, s.ARemote, c.caller}, {s.B, s.BRemote, c.callee}} {
		local, err := netip.ParseAddrPort(side.local)
		var remote netip.AddrPort
		if err == nil {
			remote, err = netip.ParseAddrPort(side.remote)
		}
		if err == nil {
			eps[i], err = b.ports().Rebind(local, remote, side.party)
		}
		if err != nil {
			if i == 1 {
				eps[0].Close()
			}
			return err
		}
	}
	c.eps = eps[:]
	c.relay = endpoint.StartRelay(eps[0], eps[1])
	return nil
}

// forget removes an ended call from the store.
func (b *B2BUA) forget(c *call) {
	if b.Store == nil {
		return
	}
	if err := b.Store.DeleteCall(context.Background(), c.id); err != nil {
		b.log.Error("ended call not removed from the store", "call", c.id, "error", err)
	}
}

// Restore brings back the calls stored before a restart: both lines count
// them again and their in-dialog requests are relayed. Once SIP is served,
// Audit asks each party whether it still has the call.
func (b *B2BUA) Restore(ctx context.Context) (int, error) {
	if b.Store == nil {
		return 0, nil
	}
	recs, err := b.Store.Calls(ctx)
	if err != nil {
		return 0, fmt.Errorf("b2bua: load calls: %w", err)
	}
	var restored []*call
	for _, r := range recs {
		var rec savedCall
		c := &call{id: r.ID}
		err := json.Unmarshal(r.Data, &rec)
		if err == nil {
			c.caller, c.trunk, c.callee = rec.Caller, rec.Trunk, rec.Callee
			c.a, err = loadLeg(c, "A", rec.A)
		}
		if err == nil {
			c.b, err = loadLeg(c, "B", rec.B)
		}
		if err != nil {
			b.log.Error("stored call unreadable, dropped", "call", r.ID, "error", err)
			if err := b.Store.DeleteCall(ctx, r.ID); err != nil {
				return 0, err
			}
			continue
		}
		if rec.Relay != nil {
			if err := b.restoreRelay(c, rec.Relay); err != nil {
				// The signalling is restored all the same: the call can
				// still be hung up properly, only its audio is lost.
				b.log.Error("relayed call's media not restored", "call", r.ID, "error", err)
			}
		}
		b.addLeg(c.a)
		b.addLeg(c.b)
		if c.trunk == "" {
			b.lines.Connected(c.caller, c.id, true)
		}
		b.lines.Connected(c.callee, c.id, false)
		restored = append(restored, c)
	}
	b.restored = restored
	b.log.Info("calls restored", "calls", len(restored))
	return len(restored), nil
}

// Audit asks both parties of every restored call, with an in-dialog
// OPTIONS (RFC 3261 11), whether they still have it: a party that hung up
// while the server was down answers 481, and the call is ended.
func (b *B2BUA) Audit() {
	for _, c := range b.restored {
		go b.audit(c)
	}
	b.restored = nil
}

// audit asks both parties of a restored call whether they still have it.
func (b *B2BUA) audit(c *call) {
	for _, l := range []*leg{c.a, c.b} {
		ctx, cancel := context.WithTimeout(context.Background(), 64*sip.T1)
		res, err := b.client.Do(ctx, b.request(l, sip.OPTIONS, l.CSeq.Add(1)), noBuild)
		cancel()
		if err != nil || res == nil || res.StatusCode == 481 || res.StatusCode == 408 { // nil: see fireAndForget
			b.log.Info("restored call gone on one side, ending it", "call", c.id, "leg", l.name)
			b.hangup(c)
			return
		}
	}
}
