package dialogevent

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/callbackd/callbackd/internal/dialoginfo"
	"github.com/callbackd/callbackd/internal/subscription"
)

// B6, F11: what a watched number's NOTIFYs tell the engine: off hook
// while a call is past ringing, free once its dialogs are terminated; a
// body that is not dialog-info changes nothing and is logged once; the
// other server ending the subscription makes the state unknown (never
// free) and the number lost.
func TestB6_F11_WatcherStatus(t *testing.T) {
	var logs bytes.Buffer
	w := NewWatcher(nil)
	w.Log = slog.New(slog.NewTextHandler(&logs, nil))
	type status struct {
		dn                string
		registered, offHk bool
	}
	var got []status
	w.Status = func(dn string, registered, offHook bool) { got = append(got, status{dn, registered, offHook}) }
	var lost []string
	w.Lost = func(dn string) { lost = append(lost, dn) }
	info := subscription.Info{ID: "s1", Event: Event, Data: []byte(`{"dn":"2001"}`)}
	doc := func(version uint64, state string) subscription.Body {
		i := dialoginfo.Info{Version: version, State: dialoginfo.Full, Entity: "sip:2001@pbx",
			Dialogs: []dialoginfo.Dialog{{ID: "d1", State: dialoginfo.State{Value: state}}}}
		return subscription.Body{Type: dialoginfo.ContentType, Data: i.Marshal()}
	}
	w.Notified(info, "active", subscription.Body{}) // no state yet: nothing
	w.Notified(info, "active", doc(0, dialoginfo.Early))
	w.Notified(info, "active", doc(1, dialoginfo.Confirmed))
	for range 2 {
		w.Notified(info, "active", subscription.Body{Type: "text/plain", Data: []byte("garbage")})
	}
	w.Notified(info, "active", doc(2, dialoginfo.Terminated))
	w.Ended(info, "refused 403")
	want := []status{{"2001", true, false}, {"2001", true, true}, {"2001", true, false}, {"2001", false, false}}
	if len(got) != len(want) {
		t.Fatalf("status %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("status %d: %v, want %v", i, got[i], want[i])
		}
	}
	if len(lost) != 1 || lost[0] != "2001" {
		t.Errorf("lost %v, want 2001 once", lost)
	}
	if n := strings.Count(logs.String(), "unreadable"); n != 1 {
		t.Errorf("the bad body logged %d times, want once:\n%s", n, logs.String())
	}
}

// Prune ends the watches no call back needs (ended while the server was
// down), and keeps the others.
func TestB6_WatcherPrune(t *testing.T) {
	w := NewWatcher(nil)
	w.byDN["2001"], w.byDN["2002"] = "s1", "s2"
	var ended []string
	w.unsubscribe = func(id string) { ended = append(ended, id) }
	w.Prune(func(dn string) bool { return dn == "2002" })
	if len(ended) != 1 || ended[0] != "s1" || w.byDN["2002"] != "s2" || len(w.byDN) != 1 {
		t.Errorf("ended %v, left %v", ended, w.byDN)
	}
}
