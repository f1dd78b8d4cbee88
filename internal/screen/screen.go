// Package screen holds the Call Back screens that a phone shows to the caller
// (user A): their kinds, the softkeys each offers, and their text in the
// line's locale. The engine decides WHICH screen (a typed Screen value); this
// package says what it reads like. It imports nothing of the engine.
//
// The wording is the seeds' (seed 002, Cisco Call Back, English; the error
// messages of seeds 000/001 are printed in English there too). Sentences the
// seeds do not give are marked as ours in catalog.go.
package screen

import (
	"strings"
	"time"
)

// Kind is which screen to show.
type Kind int

const (
	None             Kind = iota // close the screen (Exit pressed)
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
)

var kindNames = [...]string{
	None: "None", Activated: "Activated", Available: "Available", AvailableDND: "AvailableDND",
	AvailableEnded: "AvailableEnded", Replace: "Replace", ReplaceAvailable: "ReplaceAvailable",
	NotActive: "NotActive", CannotActivate: "CannotActivate", KeyNotActive: "KeyNotActive",
	Deactivated: "Deactivated", Expired: "Expired",
}

func (k Kind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "Kind(?)"
}

// Softkeys of the Call Back screens (seed 002 names them).
const (
	KeyDial   = "Dial"
	KeyCancel = "Cancel"
	KeyExit   = "Exit"
	KeyOK     = "OK"
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
	case None, KeyNotActive, CannotActivate:
		return nil
	default:
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
// "ko_KR" match too). A sentence missing in a locale falls back to English.
// Lines are separated by "\n".
func (s Screen) Text(locale string) string {
	c := lookup(locale)
	tmpl, ok := c.text[s.Kind]
	if !ok {
		c = catalog["en"]
		tmpl = c.text[s.Kind]
	}
	return strings.NewReplacer(
		"{dn}", s.DN,
		"{old}", s.OldDN,
		"{time}", s.At.Format(c.timeLayout),
	).Replace(tmpl)
}

func lookup(locale string) *locale {
	l := strings.ToLower(locale)
	if i := strings.IndexAny(l, "-_"); i >= 0 {
		l = l[:i]
	}
	if c, ok := catalog[l]; ok {
		return c
	}
	return catalog["en"]
}

// Locales lists the locales that have a catalogue, sorted.
func Locales() []string { return []string{"de", "en", "ko", "zh"} }
