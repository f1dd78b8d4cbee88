package engine

import "fmt"

// The engine's decisions in typed form, for the adapters that answer the
// side an event came from: a feature code's INVITE (603 and its reason
// phrase, or the call routed), the API (201, 200, 409), the offer's prompt
// after 5. They read these, never the screen: the screen is what the phone
// shows, and says the same in words.

// Pressed is what a key press came to for the line that pressed it: one
// per KeyPress, the last action of its step (after the screens, the alert
// of a B found available at once, the PlaceCall).
type Pressed struct {
	DN     string
	Key    Key
	Result KeyResult
	Why    Refusal // Result CannotActivate: why
	// State of DN's request once the step is done; "" when it has none.
	// Activated with State Available: B was available at once, A was
	// notified in the same step (alert, availability screen).
	State State
}

// Confirmed reports whether the press leaves A told that its request is
// activated and monitoring B ("CallBack is activated on B"): made now or
// shown again, and B not found available in the same step. The API
// answers it 201.
func (p Pressed) Confirmed() bool {
	return (p.Result == Activated || p.Result == Shown) && (p.State == Active || p.State == Suspended)
}

// KeyResult is what a key press did.
type KeyResult int

const (
	// KeyInactive: the key does nothing now ("Key Not Active"): pressed in
	// the wrong call state or too early (F2), on a line without the key
	// (F33), with Call Back off, OK without the F6 question, Dial with no
	// available request, no call back possible on that call (F10, F30).
	KeyInactive    KeyResult = iota
	NotActive                // no request to show or cancel (F7, F13)
	CannotActivate           // no call back on that call (F8, F9, F10, F27); Why says why
	Activated                // a request was made (State: active, suspended, available, activating: B's server must accept, F3)
	Shown                    // A's open request is shown again (F13, F26; activating: nothing to show yet)
	AskReplace               // F5, F6: A has another request; the replace question is shown
	Dialed                   // the call back call is placed (the step's PlaceCall)
	BRemoved                 // F24: B was removed; reorder tone, no call
	Cancelled                // Cancel ended A's request
	Closed                   // Exit: the screen is closed (F6: the request stays)
	// NotAvailable: Dial on a named request (KeyPress.Request, the API's
	// /callbacks/{id}/dial) that is not available (yet): nothing happens,
	// A's screen stays.
	NotAvailable
)

var keyResultNames = [...]string{"key not active", "not active", "cannot activate", "activated", "shown",
	"ask replace", "dialed", "b removed", "cancelled", "closed", "not available"}

func (r KeyResult) String() string { return nameOf(r, keyResultNames[:], "KeyResult") }

// Refusal says why a call back cannot be activated on a call.
type Refusal int

const (
	NotRefused       Refusal = iota
	BadCharacters            // F9: a number or name with '#' or '*' (StrictNames: not digits and spaces)
	UnknownDN                // F8: B is no line of this server nor behind a peer
	NoCallCompletion         // F8: B's peer server has no call completion route (F3)
	ToVoicemail              // F10: B is a voicemail pilot, or the call ended at one
	ForwardsAll              // F10: B forwards all its calls
	NoLineReached            // F27: the route point handed the call to no phone line of this server
	OwnLine                  // A called itself
)

var refusalNames = [...]string{"", "bad characters", "unknown dn", "no call completion", "voicemail",
	"forwards all", "no line reached", "own line"}

func (r Refusal) String() string { return nameOf(r, refusalNames[:], "Refusal") }

// OfferForm is how a call back is offered on A's failed call (F28).
type OfferForm int

const (
	// OfferSoftkey: no announcement (Params.Announce off): the call fails
	// as usual; the lit CallBack softkey or `*39` asks for it.
	OfferSoftkey OfferForm = iota
	// OfferBusy: the announcement "... is busy. Press 5 to be called
	// back." (CCBS, and CCNR when a call is there to announce on).
	OfferBusy
	// OfferLoggedOut: the announcement "... is not logged in. Press 5 ..."
	// (CCNL).
	OfferLoggedOut
	// OfferBusyTone: UCware CC_BUSY_TONE, the busy tone instead of the
	// announcement; 5 still asks.
	OfferBusyTone
)

var offerFormNames = [...]string{"softkey", "announce busy", "announce logged out", "busy tone"}

func (f OfferForm) String() string { return nameOf(f, offerFormNames[:], "OfferForm") }

// offerForm: the form of an offer of kind k under the parameters.
func (p Params) offerForm(k Kind) OfferForm {
	switch {
	case !p.Announce:
		return OfferSoftkey
	case p.BusyTone:
		return OfferBusyTone
	case k == CCNL:
		return OfferLoggedOut
	}
	return OfferBusy
}

func (Pressed) isAction() {}

func (p Pressed) String() string {
	s := fmt.Sprintf("%s: %s key: %s", p.DN, p.Key, p.Result)
	if p.Result == CannotActivate {
		s += " (" + p.Why.String() + ")"
	}
	if p.State != "" {
		s += ", request " + string(p.State)
	}
	return s
}

// nameOf is v's name in names, or Type(v) for a value out of range.
func nameOf[T ~int](v T, names []string, typ string) string {
	if v >= 0 && int(v) < len(names) {
		return names[v]
	}
	return fmt.Sprintf("%s(%d)", typ, int(v))
}
