package engine

import (
	"fmt"
	"time"
)

// Kind of call completion.
type Kind string

const (
	CCBS Kind = "CCBS" // B was busy (or in DND-Reject, F22)
	CCNR Kind = "CCNR" // B did not answer (F1)
	CCNL Kind = "CCNL" // B was not logged in / not registered (F11)
)

// State of a request; see the package doc.
type State string

const (
	Activating State = "activating"
	Active     State = "active"
	Suspended  State = "suspended"
	Available  State = "available"
)

// Request is the stored record of one call back. The engine rebuilds all its
// state from these (Restore). Times are absolute.
type Request struct {
	ID      int64     `json:"id"` // engine-owned counter; Restore continues after the highest
	A       string    `json:"a"`  // caller (originating side)
	B       string    `json:"b"`  // callee (terminating side)
	Kind    Kind      `json:"kind"`
	State   State     `json:"state"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`         // lifetime deadline (F19)
	T1      time.Time `json:"t1,omitzero"`     // while activating: the peer must accept by then (F19)
	T3      time.Time `json:"t3,omitzero"`     // while available: A must dial by then (F18); WaitTime when Recall
	Notice  time.Time `json:"notice,omitzero"` // when A was told B is available (F12 "Time", F26)
	// NoticeDN is the line that became available: B, or Forward (F20).
	NoticeDN string `json:"notice_dn,omitempty"`
	// Seen: B was seen not available since monitoring started (F11); the
	// next time B is available, A is notified. SeenForward: the same for
	// Forward.
	Seen        bool `json:"seen,omitempty"`
	SeenForward bool `json:"seen_forward,omitempty"`
	// Forward is where B's forwarding took A's failed call (F20); A is also
	// notified when it becomes available and the call back may go there.
	Forward string `json:"forward,omitempty"`
	// PeerB: B is behind this peer server; we are the originating side (F3).
	PeerB string `json:"peer_b,omitempty"`
	// PeerA, PeerRef: A is behind this peer, whose request ID is PeerRef; we
	// are the terminating side and monitor B for it.
	PeerA   string `json:"peer_a,omitempty"`
	PeerRef int64  `json:"peer_ref,omitempty"`
	// Recall: automatic recall (UCware, F29): ring A, then connect to B.
	Recall bool `json:"recall,omitempty"`
}

func (r *Request) String() string {
	return fmt.Sprintf("#%d %s->%s %s %s", r.ID, r.A, r.B, r.Kind, r.State)
}

// local reports whether A is ours (we show screens to A).
func (r *Request) local() bool { return r.PeerA == "" }

// TimerKind names the engine's timers.
type TimerKind string

const (
	TimerT1       TimerKind = "t1"
	TimerT3       TimerKind = "t3"
	TimerWait     TimerKind = "wait" // CC_WAIT_TIME of an automatic recall
	TimerLifetime TimerKind = "lifetime"
)

// TimerID identifies one timer of one request.
type TimerID struct {
	Kind TimerKind
	Req  int64
}

func (t TimerID) String() string { return fmt.Sprintf("%s#%d", t.Kind, t.Req) }

// Reason a request was deleted.
type Reason string

const (
	EndCompleted Reason = "completed"  // A pressed Dial / answered the recall
	EndCancelled Reason = "cancelled"  // A pressed Cancel (#39), or the peer cancelled
	EndReplaced  Reason = "replaced"   // A pressed OK on the F6 screen
	EndReset     Reason = "reset"      // A's device reset or unregistered (F25)
	EndMobility  Reason = "mobility"   // Extension Mobility login/logout on A (F23)
	EndRemoved   Reason = "removed"    // A's line removed from the system
	EndT1        Reason = "t1"         // not confirmed in time (F19)
	EndT3        Reason = "t3"         // A did not dial in time (F18)
	EndNoAnswer  Reason = "no-answer"  // A did not answer the automatic recall (F29)
	EndExpired   Reason = "expired"    // lifetime over (F19)
	EndRejected  Reason = "rejected"   // the peer refused it
	EndPeer      Reason = "peer-ended" // the peer ended it (its lifetime, B removed)
	EndInvalid   Reason = "invalid"    // a stored record Restore cannot use
	EndNoMonitor Reason = "no-monitor" // B's state cannot be learned any more (B6)
)
