package directory

import (
	"reflect"
	"testing"

	"github.com/callbackd/callbackd/internal/config"
)

// The compact records give back exactly the lines put in, and settings
// shared by lines are kept once and dropped with their last line.
func TestF9_LinesRoundTripAndShareSettings(t *testing.T) {
	lines := []config.Line{
		{DN: "2001", Name: "Anna", Password: "p1", Locale: "de", Notification: "screen", Kind: "phone", BusyTrigger: 2, MaxDevices: 3, Profile: "staff"},
		{DN: "2002", Password: "p2", Locale: "de", Notification: "screen", Kind: "phone", BusyTrigger: 2, MaxDevices: 3, Profile: "staff"},
		{DN: "2003", Password: "p3", Kind: "phone", ForwardAll: "2001", ForwardBusy: "voicemail", ForwardNoAnswer: "2002", DND: true},
		{DN: "600", Kind: "route-point", Members: []string{"2001", "2002"}},
	}
	d := New(lines)
	if got := d.Lines(); !reflect.DeepEqual(got, lines) {
		t.Fatalf("Lines() = %+v\nwant %+v", got, lines)
	}
	for _, l := range lines {
		if got, ok := d.Line(l.DN); !ok || !reflect.DeepEqual(got, l) {
			t.Errorf("Line(%s) = %+v, %v", l.DN, got, ok)
		}
		if pw, ok := d.Password(l.DN); !ok || pw != l.Password {
			t.Errorf("Password(%s) = %q, %v", l.DN, pw, ok)
		}
	}
	if len(d.shared) != 3 {
		t.Fatalf("%d settings kept, want 3 (2001 and 2002 share theirs)", len(d.shared))
	}
	changed := lines[2]
	changed.DND = false
	d.Put(changed)
	if got, _ := d.Line("2003"); !reflect.DeepEqual(got, changed) {
		t.Errorf("after Put: %+v", got)
	}
	if !d.Remove("600") || d.Remove("600") {
		t.Error("Remove: want true once, then false")
	}
	if _, ok := d.Line("600"); ok {
		t.Error("600 still there")
	}
	if len(d.shared) != 2 {
		t.Errorf("%d settings kept after the change and the removal, want 2", len(d.shared))
	}
}
