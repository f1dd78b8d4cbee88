package screen

import (
	"maps"
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

// F34: zh and ko keep the seeds' DND-Reject sentence exactly (as the first
// line); every other screen is in the locale too, not English.
func TestTextLocales(t *testing.T) {
	dnd := Screen{Kind: AvailableDND, DN: "1002"}
	for loc, want := range map[string]string{
		"zh":    "用户 1002 现在有空，但现在处于“DND-拒绝”状态", // seed 000
		"zh_CN": "用户 1002 现在有空，但现在处于“DND-拒绝”状态",
		"ko-KR": "현재 사용자 1002를 DND-R에서 사용할 수 있음", // seed 001
	} {
		if got, _, _ := strings.Cut(dnd.Text(loc), "\n"); got != want {
			t.Errorf("%s: %q, want %q", loc, got, want)
		}
	}
	na := Screen{Kind: NotActive}
	for loc, want := range map[string]string{
		"zh_CN": "回呼未启用。按“退出”关闭此屏幕。",
		"ko":    "콜백이 활성 상태가 아닙니다. 이 화면을 종료하려면 [종료]를 누르십시오.",
		"de":    "Rückruf ist nicht aktiv. Beenden drücken, um diese Anzeige zu verlassen.",
		"fr":    na.Text("en"),
		"":      na.Text("en"),
	} {
		if got := na.Text(loc); got != want {
			t.Errorf("%q: %q, want %q", loc, got, want)
		}
	}
	// F12: the time in the locale's format.
	av := Screen{Kind: Available, DN: "1002", At: at}
	for loc, want := range map[string]string{
		"en": "1002 has become available\nTime 09:05 03/19/2024\n",
		"de": "1002 ist jetzt erreichbar\nZeit 09:05 19.03.2024\n",
		"zh": "1002 现在有空\n时间 2024/03/19 09:05\n",
		"ko": "1002을(를) 사용할 수 있게 되었습니다\n시간 2024.03.19 09:05\n",
	} {
		if got := av.Text(loc); !strings.HasPrefix(got, want) {
			t.Errorf("%s: %q, want prefix %q", loc, got, want)
		}
	}
}

// Every locale's catalogue knows every kind, and only real kinds render.
func TestCatalogComplete(t *testing.T) {
	for k := None; k <= Expired; k++ {
		if k.String() == "Kind(?)" {
			t.Errorf("kind %d has no name", k)
		}
		for _, loc := range Locales() {
			if c := catalogues[loc]; c.screens[k] == nil {
				t.Errorf("%s misses %v", loc, k)
			}
		}
	}
	for _, k := range []Kind{-1, numKinds, 99} {
		if got := (Screen{Kind: k, DN: "1"}).Text("en"); got != "" {
			t.Errorf("Kind(%d): %q", k, got)
		}
	}
	if got := slices.Sorted(maps.Keys(catalogues)); !slices.Equal(got, Locales()) {
		t.Errorf("Locales() = %v, catalogues are %v", Locales(), got)
	}
	if !slices.Equal(Locales(), []string{"de", "en", "ko", "zh"}) {
		t.Errorf("Locales() = %v", Locales())
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

// TestF2_EveryScreenHasAWayOut (issue 18): every screen the console can show
// offers Exit ("Key Not Active" had no key at all); None is no screen.
func TestF2_EveryScreenHasAWayOut(t *testing.T) {
	if k := None.Keys(); len(k) != 0 {
		t.Errorf("None offers %v", k)
	}
	for k := None + 1; k < numKinds; k++ {
		if !slices.Contains(k.Keys(), KeyExit) {
			t.Errorf("%v offers %v: no Exit", k, k.Keys())
		}
		for _, loc := range Locales() {
			if (Screen{Kind: k, DN: "1002"}).Text(loc) == "" {
				t.Errorf("%v has no text in %s", k, loc)
			}
		}
	}
}
