// Package screen holds the Call Back screens that a phone shows to the caller
// (user A): their kinds, the softkeys each offers, and their text in the
// line's locale (F34). The engine decides WHICH screen (a typed Screen value);
// this package says what it reads like. It imports nothing of the engine.
//
// The texts are not code: they are message catalogues, one file per locale
// (locales/active.en.toml, .de, .zh, .ko), embedded in the binary and loaded
// with go-i18n at init (catalog.go). Besides the screens they hold the softkey
// labels (Label), the texts of the web phone console and admin page (UI) and
// each locale's way of writing the time (TimeLayout, F12). A message missing
// in a locale falls back to English.
//
// The English wording is the seeds' (seed 002, Cisco Call Back; the error
// messages of seeds 000/001, printed in English there). zh and ko use the
// words of seeds 000 and 001 and keep the one screen sentence those seeds
// give in their language (the DND-Reject notification, F22) exactly; de is
// ours. Each catalogue file says, per message, whether the sentence is a
// seed's or ours.
package screen

import (
	"time"
)

// Kind is which screen to show.
type Kind int

const (
	None             Kind = iota // close the screen (Exit pressed, device reset: F25)
	Activated                    // F4 "CallBack is activated on <DN>"
	Available                    // F12/F13 "<DN> has become available", Time, Dial
	AvailableDND                 // F22 B cycled the hook while in DND-Reject: no Dial
	AvailableEnded               // F18 T3 expired: B was available, call back ended
	Replace                      // F6 "already active on xxxx. Press OK to activate on yyyy"
	ReplaceAvailable             // F26 as Replace, and says xxxx was already available
	NotActive                    // F7 "CallBack is not active"
	CannotActivate               // F8/F9/F10 "CallBack cannot be activated for xxxx."
	KeyNotActive                 // F2 "Key Not Active"
	Deactivated                  // Cancel pressed, or the far end ended the request
	Expired                      // F19 lifetime over: the request was deleted
	Completed                    // F14/F29 the call back call is placed: the request ended

	numKinds // number of kinds; keep last
)

var kindNames = [...]string{
	None: "None", Activated: "Activated", Available: "Available", AvailableDND: "AvailableDND",
	AvailableEnded: "AvailableEnded", Replace: "Replace", ReplaceAvailable: "ReplaceAvailable",
	NotActive: "NotActive", CannotActivate: "CannotActivate", KeyNotActive: "KeyNotActive",
	Deactivated: "Deactivated", Expired: "Expired", Completed: "Completed",
}

func (k Kind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "Kind(?)"
}

// Softkeys of the Call Back screens (seed 002 names them), as Keys returns
// them; Label gives their label in a locale.
const (
	KeyCallBack = "CallBack" // the key that asks for, or shows, the call back (F2)
	KeyDial     = "Dial"
	KeyCancel   = "Cancel"
	KeyExit     = "Exit"
	KeyOK       = "OK"
)

// Keys returns the softkeys the screen offers, in display order.
func (k Kind) Keys() []string {
	switch k {
	case Activated, AvailableDND:
		return []string{KeyCancel, KeyExit}
	case Available:
		return []string{KeyDial, KeyCancel, KeyExit}
	case Replace, ReplaceAvailable:
		return []string{KeyOK, KeyExit}
	case None:
		return nil
	default: // every screen has a way out (KeyNotActive, CannotActivate too)
		return []string{KeyExit}
	}
}

// Screen is one screen for A's line.
type Screen struct {
	Kind  Kind
	DN    string    // the party the screen is about (B); yyyy of the Replace screens
	OldDN string    // xxxx of the Replace screens: the request already active
	At    time.Time // when DN became available (F12 "Time HH:MM MM/DD/YYYY"); render it in A's zone
}

// Text renders the screen in locale ("en", "de", "zh", "ko"; "zh-CN" and
// "ko_KR" match too, see Normalize; any other is English). A sentence missing
// in a locale falls back to English. Lines are separated by "\n". A kind
// that is not one of the constants renders as "".
func (s Screen) Text(locale string) string {
	c := lookup(locale)
	if s.Kind < 0 || s.Kind >= numKinds {
		return ""
	}
	t := c.screens[s.Kind]
	var buf [64]byte
	var tm []byte
	if t.usesTime || t.tmpl != nil {
		tm = s.At.AppendFormat(buf[:0], c.layout)
	}
	return t.fill(s.DN, s.OldDN, tm)
}
