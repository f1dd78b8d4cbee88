package dialplan

import (
	"slices"
	"strings"
	"testing"
)

func TestRules(t *testing.T) {
	rules := map[string]func(string) bool{
		"dn": IsDN, "number": IsNumber, "external": IsExternal, "digits": Digits, "spaces": DigitsAndSpaces,
	}
	for _, c := range []struct{ s, holds string }{
		{"", "digits spaces"},
		{"1001", "dn number external digits spaces"},
		{"123456789012345", "dn number external digits spaces"},
		{"1234567890123456", "number external digits spaces"},
		{"123456789012345678901", "number digits spaces"},
		{"+4930123", "number external"},
		{"+", ""},
		{"10 01", "number spaces"},
		{" ", "spaces"},
		{"*39", ""},
		{"10#1", ""},
		{"abc", ""},
		{"١٢٣", ""}, // Arabic-Indic digits are not 0-9
	} {
		for name, rule := range rules {
			if got, want := rule(c.s), slices.Contains(strings.Fields(c.holds), name); got != want {
				t.Errorf("%s(%q) = %v, want %v", name, c.s, got, want)
			}
		}
	}
}
