package screen

import (
	"slices"
	"strings"
	"testing"
	"time"
)

var at = time.Date(2024, 3, 19, 9, 5, 0, 0, time.UTC)

// The seeds' exact English sentences, DN and time filled in.
func TestTextEnglish(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    Screen
		want string
	}{
		{"F4_Activated", Screen{Kind: Activated, DN: "1002"},
			"CallBack is activated on 1002\nPress Cancel to deactivate\nPress Exit to quit this screen"},
		{"F12_Available", Screen{Kind: Available, DN: "1002", At: at},
			"1002 has become available\nTime 09:05 03/19/2024\nPress Dial to call\nPress Cancel to deactivate\nPress Exit to quit this screen"},
		{"F6_Replace", Screen{Kind: Replace, OldDN: "1002", DN: "1003"},
			"CallBack is already active on 1002. Press OK to activate on 1003. Press Exit to quit this screen."},
		{"F26_ReplaceAvailable", Screen{Kind: ReplaceAvailable, OldDN: "1002", DN: "1003", At: at},
			"CallBack is already active on 1002. 1002 has become available at 09:05 03/19/2024. Press OK to activate on 1003. Press Exit to quit this screen."},
		{"F7_NotActive", Screen{Kind: NotActive},
			"CallBack is not active. Press Exit to quit this screen."},
		{"F8_CannotActivate", Screen{Kind: CannotActivate, DN: "5555"},
			"CallBack cannot be activated for 5555."},
		{"F2_KeyNotActive", Screen{Kind: KeyNotActive}, "Key Not Active"},
		{"F22_AvailableDND", Screen{Kind: AvailableDND, DN: "1002"},
			"1002 is now available but in DND-Reject\nPress Cancel to deactivate\nPress Exit to quit this screen"},
		{"F18_AvailableEnded", Screen{Kind: AvailableEnded, DN: "1002", At: at},
			"1002 has become available\nTime 09:05 03/19/2024\nCallBack has ended, dial 1002 to call\nPress Exit to quit this screen"},
		{"F19_Expired", Screen{Kind: Expired, DN: "1002"},
			"CallBack on 1002 has expired and was deleted\nPress Exit to quit this screen"},
		{"Deactivated", Screen{Kind: Deactivated, DN: "1002"},
			"CallBack is deactivated on 1002\nPress Exit to quit this screen"},
		{"None", Screen{Kind: None}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.s.Text("en"); got != tc.want {
				t.Errorf("got\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

// F34: zh and ko have the seeds' DND-Reject sentence; everything else falls
// back to English, as the zh/ko seeds print the messages in English.
func TestTextLocales(t *testing.T) {
	dnd := Screen{Kind: AvailableDND, DN: "1002"}
	if got, want := dnd.Text("zh"), "用户 1002 现在有空，但现在处于“DND-拒绝”状态"; got != want {
		t.Errorf("zh: %q, want %q", got, want)
	}
	if got, want := dnd.Text("ko-KR"), "현재 사용자 1002를 DND-R에서 사용할 수 있음"; got != want {
		t.Errorf("ko: %q, want %q", got, want)
	}
	na := Screen{Kind: NotActive}
	for _, loc := range []string{"zh_CN", "ko", "fr", ""} {
		if got := na.Text(loc); got != na.Text("en") {
			t.Errorf("%q: %q, want the English fallback", loc, got)
		}
	}
	av := Screen{Kind: Available, DN: "1002", At: at}
	if got := av.Text("de"); !strings.Contains(got, "Zeit 09:05 19.03.2024") || !strings.HasPrefix(got, "1002 ist jetzt erreichbar") {
		t.Errorf("de: %q", got)
	}
}

// Every locale's catalogue knows only real kinds, and English knows them all.
func TestCatalogComplete(t *testing.T) {
	for k := None; k <= Expired; k++ {
		if _, ok := catalog["en"].text[k]; !ok {
			t.Errorf("en misses %v", k)
		}
		if k.String() == "Kind(?)" {
			t.Errorf("kind %d has no name", k)
		}
	}
	var got []string
	for name, c := range catalog {
		got = append(got, name)
		for k, s := range c.text {
			if k < None || k > Expired {
				t.Errorf("%s: unknown kind %d", name, k)
			}
			if strings.Contains(s, "{") && strings.Count(s, "{") != strings.Count(s, "}") {
				t.Errorf("%s %v: unbalanced placeholder in %q", name, k, s)
			}
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, Locales()) {
		t.Errorf("Locales() = %v, catalogue has %v", Locales(), got)
	}
}

// F12 has Dial; F22's DND-Reject notification has none (seeds 000/001).
func TestKeys(t *testing.T) {
	if !slices.Equal(Available.Keys(), []string{KeyDial, KeyCancel, KeyExit}) {
		t.Errorf("Available keys %v", Available.Keys())
	}
	if slices.Contains(AvailableDND.Keys(), KeyDial) {
		t.Error("F22: AvailableDND must not offer Dial")
	}
	if !slices.Equal(Replace.Keys(), []string{KeyOK, KeyExit}) {
		t.Errorf("F6 Replace keys %v", Replace.Keys())
	}
	if slices.Contains(AvailableEnded.Keys(), KeyDial) {
		t.Error("F18: after T3 the call back is gone, A dials by hand")
	}
}
