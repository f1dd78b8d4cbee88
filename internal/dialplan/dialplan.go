// Package dialplan holds the rules of F9 on numbers, written once: a DN
// (the number of a line) is 1-15 digits 0-9, and no number or name that
// reaches a screen or a call back holds '#', '*' or letters, which phones
// use for feature codes. Config, the engine, the B2BUA and the web pages
// all ask here; it imports nothing of callbackd.
package dialplan

import "strings"

// MaxDNDigits is the longest DN: an E.164 number has at most 15 digits.
const MaxDNDigits = 15

// maxExternalDigits bounds a number from outside (a trunk's caller): an
// E.164 number with room for a national or international prefix.
const maxExternalDigits = 20

// Digits reports whether s holds only 0-9 ("" included: the caller says
// whether empty is allowed).
func Digits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// DigitsAndSpaces reports whether s holds only 0-9 and spaces (F9 for the
// name of a line, and for every name with strict names).
func DigitsAndSpaces(s string) bool {
	return strings.Trim(s, "0123456789 ") == ""
}

// IsDN reports whether s has the form of a DN: 1-15 digits 0-9 (F9).
func IsDN(s string) bool {
	return s != "" && len(s) <= MaxDNDigits && Digits(s)
}

// IsNumber reports whether a caller's or callee's number can be called
// back (F9): digits 0-9 and spaces, at least one digit, and a leading '+'
// of an E.164 number from a trunk; '#' and '*' make a call back
// impossible.
func IsNumber(s string) bool {
	s = strings.TrimPrefix(s, "+")
	return DigitsAndSpaces(s) && strings.ContainsAny(s, "0123456789")
}

// IsExternal reports whether s is what a trunk may send as its caller's
// number: 1-20 digits, with a leading '+' of an E.164 number.
func IsExternal(s string) bool {
	s = strings.TrimPrefix(s, "+")
	return s != "" && len(s) <= maxExternalDigits && Digits(s)
}
