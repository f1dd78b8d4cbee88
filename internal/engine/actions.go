package engine

import (
	"fmt"
	"strings"
	"time"

	"github.com/callbackd/callbackd/internal/screen"
)

// Action is an output of Step, to be carried out in order.
type Action interface {
	isAction()
	String() string
}

// ShowScreen shows a screen on the line DN (A). Kind screen.None closes it.
type ShowScreen struct {
	DN     string
	Screen screen.Screen
}

// Alert plays the Call Back audio alert on DN (Cisco's "twinkle", F12).
// About is the line that became available: B, or the target of B's
// forwarding (F20).
type Alert struct{ DN, About string }

// Reorder plays reorder (fast busy) tone to DN (F24: B was removed).
type Reorder struct{ DN string }

// Offer: A's call to B failed in a way a call back can follow; tell A in
// Form (the announcement "press 5 for a call back", the busy tone, or only
// the lit CallBack softkey, F28).
type Offer struct {
	A, B string
	Kind Kind
	Form OfferForm
}

// PlaceCall places the call back call From (A) -> To.
type PlaceCall struct {
	ID       int64 // the request this completes (mark the INVITE, Alert-Info recall)
	From, To string
	Peer     string // To is behind this peer (F3)
	// OverrideForwarding: do not apply To's forwarding (F21: a call placed
	// from the notification screen while T3 runs).
	OverrideForwarding bool
	HoldFirst          bool // put A's current call on hold first (F14)
	OnRecall           bool // connect A's answered recall leg to To (F29)
}

// Recall: automatic recall (UCware, F29): call A (ring for Ring), and report
// RecallAnswered when A answers. B's number is dialed after that.
type Recall struct {
	ID   int64
	A, B string
	Ring time.Duration
	// Again: a restart rings A again for the rest of the wait (F29, B3),
	// not a new notification.
	Again bool
}

// StartTimer arms (or re-arms) a timer for an absolute deadline.
type StartTimer struct {
	Timer TimerID
	At    time.Time
}

// CancelTimer disarms a timer.
type CancelTimer struct{ Timer TimerID }

// Watch: send LineStatus for DN from now on (F38). Unwatch: no longer needed.
type Watch struct{ DN string }
type Unwatch struct{ DN string }

// Persist stores the full request record (upsert by ID).
type Persist struct{ Request Request }

// Delete removes a stored request.
type Delete struct {
	ID     int64
	Reason Reason
}

// ToPeer sends a call completion message to a peer server.
type ToPeer struct{ Msg PeerMessage }

// Admit: terminating side, answer to PeerCall: deliver the call completion
// call to B, overriding B's forwarding or not (F21).
type Admit struct {
	Peer               string
	Ref                int64
	To                 string
	OverrideForwarding bool
}

func (ShowScreen) isAction()  {}
func (Alert) isAction()       {}
func (Reorder) isAction()     {}
func (Offer) isAction()       {}
func (PlaceCall) isAction()   {}
func (Recall) isAction()      {}
func (StartTimer) isAction()  {}
func (CancelTimer) isAction() {}
func (Watch) isAction()       {}
func (Unwatch) isAction()     {}
func (Persist) isAction()     {}
func (Delete) isAction()      {}
func (ToPeer) isAction()      {}
func (Admit) isAction()       {}

func (a ShowScreen) String() string {
	if a.Screen.Kind == screen.None {
		return a.DN + ": screen closed"
	}
	return fmt.Sprintf("%s: screen %q", a.DN, strings.ReplaceAll(a.Screen.Text("en"), "\n", " | "))
}
func (a Alert) String() string   { return a.DN + ": alert" }
func (a Reorder) String() string { return a.DN + ": reorder tone" }
func (a Offer) String() string {
	s := fmt.Sprintf("%s: offer %s on %s", a.A, a.Kind, a.B)
	if a.Form != OfferSoftkey {
		s += " (" + a.Form.String() + ")"
	}
	return s
}
func (a PlaceCall) String() string {
	s := fmt.Sprintf("%s: call %s", a.From, a.To)
	if a.Peer != "" {
		s += " via " + a.Peer
	}
	var f []string
	if a.OnRecall {
		f = append(f, "on recall")
	}
	if a.OverrideForwarding {
		f = append(f, "override forwarding")
	}
	if a.HoldFirst {
		f = append(f, "hold first")
	}
	if len(f) > 0 {
		s += " (" + strings.Join(f, ", ") + ")"
	}
	return s + fmt.Sprintf(" #%d", a.ID)
}
func (a Recall) String() string {
	return fmt.Sprintf("%s: recall, ring %s, then call %s #%d", a.A, a.Ring, a.B, a.ID)
}
func (a StartTimer) String() string {
	return fmt.Sprintf("timer %s at %s", a.Timer, a.At.Format(time.RFC3339))
}
func (a CancelTimer) String() string { return "cancel timer " + a.Timer.String() }
func (a Watch) String() string       { return "watch " + a.DN }
func (a Unwatch) String() string     { return "unwatch " + a.DN }
func (a Persist) String() string {
	r := a.Request
	s := "persist " + r.String()
	if r.Forward != "" {
		s += " fwd=" + r.Forward
	}
	if r.PeerB != "" {
		s += " via " + r.PeerB
	}
	if r.PeerA != "" {
		s += fmt.Sprintf(" for %s#%d", r.PeerA, r.PeerRef)
	}
	if r.Recall {
		s += " auto-recall"
	}
	var seen []string
	if r.Seen {
		seen = append(seen, r.B)
	}
	if r.SeenForward {
		seen = append(seen, r.Forward)
	}
	if len(seen) > 0 {
		s += " seen=" + strings.Join(seen, ",")
	}
	return s
}
func (a Delete) String() string { return fmt.Sprintf("delete #%d %s", a.ID, a.Reason) }
func (a ToPeer) String() string { return "to peer " + a.Msg.String() }
func (a Admit) String() string {
	s := fmt.Sprintf("admit %s#%d to %s", a.Peer, a.Ref, a.To)
	if a.OverrideForwarding {
		s += " (override forwarding)"
	}
	return s
}
