package engine

import "fmt"

// Event is an input of Step.
type Event interface{ isEvent() }

// LineKind says what a DN is.
type LineKind int

const (
	Phone      LineKind = iota // a line with devices (phones, softphones)
	RoutePoint                 // a route point or hunt pilot that forwards to lines (F27)
	Voicemail                  // a voice-messaging pilot (F10)
)

// Line is a directory entry. All fields are configuration; presence comes
// with LineStatus.
type Line struct {
	DN   string
	Name string // display name; F9 checks it
	Kind LineKind
	// Peer: the DN is behind this peer server (a trunk); PeerCC: that trunk
	// speaks call completion (RFC 6910). Without it no call back (F3, F8).
	Peer   string
	PeerCC bool
	DND    bool // DND-Reject on (F22)
	// Forwarding targets, empty when off (F10 forward all, F20, F21).
	ForwardAll, ForwardBusy, ForwardNoAnswer string
	// AutoRecall: call backs of this caller use the automatic recall (UCware,
	// F29) instead of the notification screen.
	AutoRecall bool
	// NoCallBack: the line may not use Call Back (F33: Cisco's softkey
	// template without the CallBack key): no offer, the key is not active.
	NoCallBack bool
}

// LineConfig adds a line or replaces its configuration.
type LineConfig struct{ Line Line }

// LineRemoved: the line (B's phone) is removed from the system (F24).
type LineRemoved struct{ DN string }

// LineStatus is a line's presence, aggregated over its devices (B5). It maps
// to internal/linestate: Registered = a device is registered, OffHook = state
// busy (a call off hook, not only ringing), Full = at its busy trigger.
type LineStatus struct {
	DN         string
	Registered bool
	OffHook    bool // a call is off hook (connected, dialing, held): F11's cycle
	Full       bool // at the busy trigger: F17's "A is busy"
}

// Unmonitorable: the state of DN, a callee on another server watched for
// its callers (B6), cannot be learned any more: the other server refused
// or ended the watch for good (a wrong password, 403). Nothing would ever
// tell that DN is free, so the requests on it end, their callers told.
type Unmonitorable struct{ DN string }

// DeviceReset: a device of the line was reset or re-registered from scratch
// (F25). For A it cancels; for B it counts as not available for a moment.
type DeviceReset struct{ DN string }

// Mobility: an Extension Mobility login or logout on the line's device (F23).
type Mobility struct {
	DN    string
	Login bool
}

// Outcome of A's call, as far as it went.
type Outcome int

const (
	Proceeding   Outcome = iota // dialed, not ringing yet (F2: too early)
	Ringing                     // B alerting, A hears ringback (CCNR)
	Busy                        // busy (CCBS)
	NoAnswer                    // the no-answer timer expired, reorder tone (CCNR, F1)
	Unregistered                // B is logged out / not registered (CCNL)
	DNDReject                   // B rejected in DND, fast busy (CCBS, F22)
	Answered                    // connected (also: connected to voicemail, F10)
)

var outcomeNames = [...]string{"proceeding", "ringing", "busy", "no-answer", "unregistered", "dnd-reject", "answered"}

func (o Outcome) String() string { return nameOf(o, outcomeNames[:], "Outcome") }

// CallUpdate reports A's call From -> To: where it is or how it ended. Send
// it on every change; the last one per caller counts.
type CallUpdate struct {
	From, To         string // A and the DN A dialed
	FromName, ToName string // display names as signalled (F9)
	Outcome          Outcome
	// Reached: the DN the call ended up at when it was diverted: the line a
	// route point or hunt handed it to (F27), the target of B's forwarding
	// (F20), a voicemail pilot (F10). Empty when it stayed at To.
	Reached string
	// Peer: To is behind this peer server; PeerCC: the trunk speaks call
	// completion (F3). Overrides the directory for this call.
	Peer   string
	PeerCC bool
}

// Key is a key A pressed (softkey, or feature code: `*39`, `#39`).
type Key int

const (
	KeyCallBack Key = iota // CallBack softkey, `*39`, `*39<DN>`, DTMF 5 in the announcement
	KeyDial                // Dial on the notification screen
	KeyCancel              // Cancel, `#39`
	KeyExit                // Exit
	KeyOK                  // OK on the replace screen (F6)
)

var keyNames = [...]string{"callback", "dial", "cancel", "exit", "ok"}

func (k Key) String() string { return nameOf(k, keyNames[:], "Key") }

// CallState is A's call state when the key is pressed (F2: the CallBack key
// is live on hook, in ring out and in connected transfer).
type CallState int

const (
	OnHook            CallState = iota // idle; also `*39` dialed as a feature code
	Dialing                            // off hook, dialing, call not ringing yet
	RingOut                            // A's call rings, or A hears busy / reorder
	Connected                          // in a connected call
	ConnectedTransfer                  // consulting for a transfer (the consult call failed or rings)
)

var stateNames = [...]string{"on-hook", "dialing", "ring-out", "connected", "connected-transfer"}

func (c CallState) String() string { return nameOf(c, stateNames[:], "CallState") }

// KeyPress: A's line DN pressed Key in call state State.
type KeyPress struct {
	DN     string
	Key    Key
	State  CallState
	Target string // `*39<DN>`: ask for a call back on this DN
	// Code: pressed as a feature code (`*39` dialed), not a softkey. When B
	// is available, `*39` is Dial (GUIDE: phones without softkeys).
	Code bool
	// Request names the request a Dial or Cancel is for (the API's
	// /callbacks/{id}/dial): when it is not DN's available request,
	// nothing happens and A's screen stays (Pressed NotAvailable). For
	// Cancel (DELETE /callbacks/{id}) it may be a request kept for a
	// peer's A (B's server's operator cancels it).
	Request int64
}

// RecallAnswered: A answered the automatic recall of request ID (F29).
type RecallAnswered struct {
	ID int64
	DN string // A, for the reorder tone when the request is gone
}

// TimerFired: a timer started by StartTimer expired.
type TimerFired struct{ Timer TimerID }

// FromPeer: a call completion message from a peer server.
type FromPeer struct{ Msg PeerMessage }

// PeerCall: terminating side: the call completion call of the peer's request
// Ref has arrived for B (an INVITE marked as such, RFC 6910). The engine
// answers with Admit: override B's forwarding only while its T3 runs (F21).
type PeerCall struct {
	Peer string
	Ref  int64
	B    string // the DN called
}

// SetParams changes the parameters while running (F31, F36). Running
// deadlines stay as they are; new ones use the new values.
type SetParams struct{ Params Params }

func (LineConfig) isEvent()     {}
func (LineRemoved) isEvent()    {}
func (LineStatus) isEvent()     {}
func (DeviceReset) isEvent()    {}
func (Unmonitorable) isEvent()  {}
func (Mobility) isEvent()       {}
func (CallUpdate) isEvent()     {}
func (KeyPress) isEvent()       {}
func (RecallAnswered) isEvent() {}
func (TimerFired) isEvent()     {}
func (FromPeer) isEvent()       {}
func (PeerCall) isEvent()       {}
func (SetParams) isEvent()      {}

// MsgType of a peer message. Ref is always the ORIGINATING side's request ID.
type MsgType string

const (
	// originating (A's server) -> terminating (B's server)
	MsgRequest MsgType = "request" // please monitor B for A (A, B, Kind set)
	MsgSuspend MsgType = "suspend" // A is busy: pause monitoring (F17)
	MsgResume  MsgType = "resume"  // A is free again: monitor B again (F17)
	MsgCancel  MsgType = "cancel"  // A's side ended the request
	// terminating -> originating
	MsgAccept    MsgType = "accept"    // request accepted (stops T1)
	MsgReject    MsgType = "reject"    // request refused (B unknown, no call back)
	MsgAvailable MsgType = "available" // B became available
	MsgEnd       MsgType = "end"       // B's side ended the request (lifetime, B removed)
)

// PeerMessage is the engine's call completion message between servers; the
// wire side maps it to RFC 6910 (SUBSCRIBE/NOTIFY/PUBLISH) or a private
// protocol between callbackd instances.
type PeerMessage struct {
	Peer string // where it goes to / comes from
	Type MsgType
	Ref  int64
	A, B string // MsgRequest only
	Kind Kind   // MsgRequest only
}

func (m PeerMessage) String() string {
	s := fmt.Sprintf("%s %s ref=%d", m.Peer, m.Type, m.Ref)
	if m.Type == MsgRequest {
		s += fmt.Sprintf(" %s->%s %s", m.A, m.B, m.Kind)
	}
	return s
}
