package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/callbackd/callbackd/internal/engine"
	"github.com/callbackd/callbackd/internal/screen"
)

// TestF37_Exposition: what an operator's Prometheus reads at /metrics.
func TestF37_Exposition(t *testing.T) {
	m := New(Sources{
		Registrations: func() int { return 3 },
		ActiveCalls:   func() int { return 1 },
		LineStates:    func() map[string]int { return map[string]int{"idle": 2, "busy": 1} },
		OpenRequests:  func() int { return 4 },
		TimersPending: func() int { return 5 },
	})
	m.CallResult("busy")
	m.CallResult("busy")
	m.CallResult("answered")
	m.Action(engine.ShowScreen{DN: "1001", Screen: screen.Screen{Kind: screen.Available, DN: "1002"}})
	m.Action(engine.Alert{DN: "1001"})
	m.Action(engine.Delete{ID: 1, Reason: engine.EndCompleted})
	m.Action(engine.Persist{})

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		`callbackd_calls_total{outcome="busy"} 2`,
		`callbackd_calls_total{outcome="answered"} 1`,
		`callbackd_callback_screens_total{screen="Available"} 1`,
		`callbackd_callback_alerts_total 1`,
		`callbackd_callback_ended_total{reason="completed"} 1`,
		`callbackd_callback_writes_total 1`,
		`callbackd_registrations 3`,
		`callbackd_calls_active 1`,
		`callbackd_callback_requests_open 4`,
		`callbackd_callback_timers_pending 5`,
		`callbackd_lines{state="busy"} 1`,
		`callbackd_lines{state="idle"} 2`,
		`go_goroutines `,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// TestF37_CountsDecisionsNotScreens: the Call Back counters read the
// engine's typed decisions. A's request shown again (F13) shows the
// Activated or Available screen again, which is no new activation or
// notification; a restart ringing A again for an automatic recall (F29)
// is no new notification; every key press is counted by what it came to.
func TestF37_CountsDecisionsNotScreens(t *testing.T) {
	m := New(Sources{})
	m.Action(engine.Pressed{DN: "1001", Key: engine.KeyCallBack, Result: engine.Activated, State: engine.Active})
	m.Action(engine.ShowScreen{DN: "1001", Screen: screen.Screen{Kind: screen.Activated, DN: "1002"}})
	m.Action(engine.Pressed{DN: "1001", Key: engine.KeyCallBack, Result: engine.Shown, State: engine.Active})
	m.Action(engine.ShowScreen{DN: "1001", Screen: screen.Screen{Kind: screen.Activated, DN: "1002"}}) // F13
	m.Action(engine.Alert{DN: "1001", About: "1002"})
	m.Action(engine.ShowScreen{DN: "1001", Screen: screen.Screen{Kind: screen.Available, DN: "1002"}})
	m.Action(engine.ShowScreen{DN: "1001", Screen: screen.Screen{Kind: screen.Available, DN: "1002"}}) // F13
	m.Action(engine.Recall{ID: 7, A: "1003", B: "1004"})
	m.Action(engine.Recall{ID: 7, A: "1003", B: "1004", Again: true})
	m.Action(engine.ShowScreen{DN: "1005", Screen: screen.Screen{Kind: screen.AvailableDND, DN: "1006"}}) // F22
	m.Action(engine.Pressed{DN: "1007", Key: engine.KeyCallBack, Result: engine.CannotActivate, Why: engine.UnknownDN})

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		"callbackd_callback_activations_total 1\n",
		"callbackd_callback_notifications_total 3\n", // alert, recall, DND
		`callbackd_callback_screens_total{screen="Activated"} 2` + "\n",
		`callbackd_callback_key_presses_total{key="callback",result="activated"} 1` + "\n",
		`callbackd_callback_key_presses_total{key="callback",result="shown"} 1` + "\n",
		`callbackd_callback_key_presses_total{key="callback",result="cannot activate"} 1` + "\n",
		`callbackd_callback_failures_total{reason="cannot-activate"} 1` + "\n",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if n := m.Notifications(); n != 3 {
		t.Errorf("Notifications() = %d, want 3", n)
	}
}

// TestF37_SIPMessagesCounted: each SIP message read or written is counted
// by direction and kind, also when its counter was looked up before.
func TestF37_SIPMessagesCounted(t *testing.T) {
	m := New(Sources{})
	for range 3 {
		m.SIPMessage("in", "INVITE")
	}
	m.SIPMessage("out", "INVITE")
	m.SIPMessage("out", "200")
	m.SIPMessage("out", "200")
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		`callbackd_sip_messages_total{direction="in",kind="INVITE"} 3`,
		`callbackd_sip_messages_total{direction="out",kind="INVITE"} 1`,
		`callbackd_sip_messages_total{direction="out",kind="200"} 2`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// BenchmarkSIPMessage is the metrics' share of every SIP message.
func BenchmarkSIPMessage(b *testing.B) {
	m := New(Sources{})
	kinds := []string{"INVITE", "100", "180", "200", "ACK", "BYE"}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for i := 0; pb.Next(); i++ {
			m.SIPMessage("in", kinds[i%len(kinds)])
		}
	})
}
