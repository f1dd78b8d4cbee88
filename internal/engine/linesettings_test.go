package engine

import (
	"reflect"
	"testing"
	"time"
)

// A line's settings are kept apart from its DN and name (issue 14): every
// field of Line must have its place in lineSettings, or a LineConfig would
// silently lose it.
func TestLineSettingsKeepEveryField(t *testing.T) {
	lt, st := reflect.TypeOf(Line{}), reflect.TypeOf(lineSettings{})
	for i := range lt.NumField() {
		f := lt.Field(i)
		if f.Name == "DN" || f.Name == "Name" {
			continue
		}
		if g, ok := st.FieldByName(f.Name); !ok || g.Type != f.Type {
			t.Errorf("Line.%s has no lineSettings.%s of type %s", f.Name, f.Name, f.Type)
		}
	}
	if st.NumField() != lt.NumField()-2 {
		t.Errorf("lineSettings has %d fields, Line %d (DN and name apart)", st.NumField(), lt.NumField())
	}
}

// Lines with nothing set share one settings record, never written: one
// line's DND-Reject is not another's (F22).
func TestF22_PlainLinesShareSettingsUnchanged(t *testing.T) {
	now, e := time.Unix(1_800_000_000, 0), New(Params{})
	e.Step(now, LineConfig{Line: Line{DN: "1001"}})
	e.Step(now, LineConfig{Line: Line{DN: "1002", DND: true}})
	a, b := e.configured("1001"), e.configured("1002")
	if a.lineSettings != plainLine || b.lineSettings == plainLine || !b.DND || a.DND || plainLine.DND {
		t.Fatalf("1001 %+v, 1002 %+v, plain %+v", *a.lineSettings, *b.lineSettings, *plainLine)
	}
	e.Step(now, LineConfig{Line: Line{DN: "1002"}})
	if b := e.configured("1002"); b.lineSettings != plainLine {
		t.Fatalf("1002 back to nothing set: %+v", *b.lineSettings)
	}
}
