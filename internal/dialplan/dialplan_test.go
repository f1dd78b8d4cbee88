package dialplan

import "testing"

func TestRules(t *testing.T) {
	for _, c := range []struct {
		s                       string
		dn, number, external    bool
		digits, digitsAndSpaces bool
	}{
		{"", false, false, false, true, true},
		{"1001", true, true, true, true, true},
		{"123456789012345", true, true, true, true, true},
		{"1234567890123456", false, true, true, true, true},
		{"123456789012345678901", false, true, false, true, true},
		{"+4930123", false, true, true, false, false},
		{"+", false, false, false, false, false},
		{"10 01", false, true, false, false, true},
		{" ", false, false, false, false, true},
		{"*39", false, false, false, false, false},
		{"10#1", false, false, false, false, false},
		{"abc", false, false, false, false, false},
		{"١٢٣", false, false, false, false, false}, // Arabic-Indic digits are not 0-9
	} {
		if got := IsDN(c.s); got != c.dn {
			t.Errorf("IsDN(%q) = %v", c.s, got)
		}
		if got := IsNumber(c.s); got != c.number {
			t.Errorf("IsNumber(%q) = %v", c.s, got)
		}
		if got := IsExternal(c.s); got != c.external {
			t.Errorf("IsExternal(%q) = %v", c.s, got)
		}
		if got := Digits(c.s); got != c.digits {
			t.Errorf("Digits(%q) = %v", c.s, got)
		}
		if got := DigitsAndSpaces(c.s); got != c.digitsAndSpaces {
			t.Errorf("DigitsAndSpaces(%q) = %v", c.s, got)
		}
	}
}
