package screen

import (
	"strings"
	"testing"
	"time"
)

// todayEN is the English table as it was in Go code (catalog.go) before the
// catalogues moved to locales/*.toml, copied verbatim with its old {dn},
// {old}, {time} placeholders and its time layout. The catalogue must render
// byte for byte what this table rendered: the tests of internal/engine
// (testdata) and test/interop assert these sentences.
const todayENLayout = "15:04 01/02/2006"

var todayEN = map[Kind]string{
	None:             "",
	Activated:        "CallBack is activated on {dn}\nPress Cancel to deactivate\nPress Exit to quit this screen",
	Available:        "{dn} has become available\nTime {time}\nPress Dial to call\nPress Cancel to deactivate\nPress Exit to quit this screen",
	AvailableDND:     "{dn} is now available but in DND-Reject\nPress Cancel to deactivate\nPress Exit to quit this screen",
	AvailableEnded:   "{dn} has become available\nTime {time}\nCallBack has ended, dial {dn} to call\nPress Exit to quit this screen",
	Replace:          "CallBack is already active on {old}. Press OK to activate on {dn}. Press Exit to quit this screen.",
	ReplaceAvailable: "CallBack is already active on {old}. {old} has become available at {time}. Press OK to activate on {dn}. Press Exit to quit this screen.",
	NotActive:        "CallBack is not active. Press Exit to quit this screen.",
	CannotActivate:   "CallBack cannot be activated for {dn}.",
	KeyNotActive:     "Key Not Active",
	Deactivated:      "CallBack is deactivated on {dn}\nPress Exit to quit this screen",
	Expired:          "CallBack on {dn} has expired and was deleted\nPress Exit to quit this screen",
	// Added with issue 18 (not in the old Go table).
	Completed: "Calling {dn}\nCallBack has ended\nPress Exit to quit this screen",
}

// todayText is how Screen.Text rendered todayEN.
func todayText(s Screen) string {
	return strings.NewReplacer("{dn}", s.DN, "{old}", s.OldDN, "{time}", s.At.Format(todayENLayout)).Replace(todayEN[s.Kind])
}

// The English texts are byte-identical to the table they replace, for every
// kind and a spread of DNs and times (empty, with spaces, long, midnight,
// other zones).
func TestEnglishByteIdentical(t *testing.T) {
	times := []time.Time{{}, at, time.Date(1999, 12, 31, 23, 59, 59, 0, time.FixedZone("X", 5*3600+1800)), time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	dns := [][2]string{{"", ""}, {"1002", "1003"}, {"2 00", "1001"}, {"+49 30 1234567890", "99"}}
	for k := range numKinds {
		for _, tm := range times {
			for _, dn := range dns {
				s := Screen{Kind: k, DN: dn[0], OldDN: dn[1], At: tm}
				want := todayText(s)
				for _, loc := range []string{"en", "EN", "en-US", "en_GB", "fr", ""} {
					if got := s.Text(loc); got != want {
						t.Fatalf("%v %q: got\n%q\nwant\n%q", k, loc, got, want)
					}
				}
			}
		}
	}
	if len(todayEN) != int(numKinds) {
		t.Fatalf("todayEN has %d kinds, there are %d", len(todayEN), numKinds)
	}
}
