package dialogevent

import (
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"github.com/callbackd/callbackd/internal/config"
	"github.com/callbackd/callbackd/internal/dialoginfo"
	"github.com/callbackd/callbackd/internal/sipmsg"
	"github.com/callbackd/callbackd/internal/subscription"
)

// Watcher watches numbers of trunks marked monitor = "dialog" (B6):
// their dialog state on the other server (a SUBSCRIBE there, RFC 4235),
// told to Status as a line's: registered while the subscription stands,
// off hook while a call of theirs is past ringing.
type Watcher struct {
	Domain string
	Log    *slog.Logger
	Trunks config.Trunks
	// Status is told each change of a watched number's state.
	Status func(dn string, registered, offHook bool)
	// Lost is told a watched number whose watch the other server ended
	// for good: its state cannot be learned any more.
	Lost func(dn string)

	layer       *subscription.Layer
	unsubscribe func(id string) // the layer's Unsubscribe (a test's own)

	mu    sync.Mutex
	byDN  map[string]string // number -> subscription ID
	views map[string]*dialoginfo.View
	last  map[string]bool // number -> off hook, once a NOTIFY told
	bad   map[string]bool // subscriptions whose bad body is logged already
}

// watched is what a watcher's subscription keeps (subscription.Info.Data).
type watched struct {
	DN string `json:"dn"`
}

// NewWatcher watches through layer; Register it there.
func NewWatcher(layer *subscription.Layer) *Watcher {
	w := &Watcher{layer: layer, Log: slog.New(slog.DiscardHandler),
		byDN: map[string]string{}, views: map[string]*dialoginfo.View{}, bad: map[string]bool{}, last: map[string]bool{}}
	if layer != nil {
		w.unsubscribe = func(id string) { layer.Unsubscribe(id) }
	}
	return w
}

func (w *Watcher) Event() string { return Event }

// Monitors reports whether number is called through a trunk whose dialog
// state we may watch.
func (w *Watcher) Monitors(number string) bool {
	t, ok := w.Trunks.For(number)
	return ok && t.Monitor == config.MonitorDialog
}

// Watch subscribes to number's dialog state on its trunk; watched
// already (a subscription restored after a restart), it tells Status the
// state known so far.
func (w *Watcher) Watch(number string) {
	t, ok := w.Trunks.For(number)
	if !ok || t.Monitor != config.MonitorDialog {
		return
	}
	w.mu.Lock()
	_, on := w.byDN[number]
	offHook, known := w.last[number]
	w.mu.Unlock()
	if on {
		if known && w.Status != nil {
			w.Status(number, true, offHook)
		}
		return
	}
	a, err := config.ParseAddress(t.Address)
	if err != nil {
		w.Log.Warn("trunk address not usable to watch a number", "trunk", t.Name, "error", err)
		return
	}
	target := "sip:" + number + "@" + a.HostPort()
	data, _ := json.Marshal(watched{DN: number})
	id, err := w.layer.Subscribe(subscription.Spec{
		Event: Event, Target: target, To: target, From: "sip:" + sipmsg.ServiceUser + "@" + w.Domain,
		Dest: a.HostPort(), Transport: a.Via(), Expires: time.Hour, Accept: dialoginfo.ContentType, Data: data,
	})
	if err != nil {
		w.Log.Error("cannot watch a number of a trunk", "number", number, "trunk", t.Name, "error", err)
		return
	}
	w.mu.Lock()
	w.byDN[number] = id
	w.views[id] = &dialoginfo.View{}
	w.mu.Unlock()
	w.Log.Info("watching a number's dialog state", "number", number, "trunk", t.Name, "id", id)
}

// Credentials are those of the watched number's trunk, for the other
// server's digest challenge to our SUBSCRIBE (subscription.Credentialed).
func (w *Watcher) Credentials(i subscription.Info) (user, password string, ok bool) {
	var d watched
	if json.Unmarshal(i.Data, &d) != nil {
		return "", "", false
	}
	t, found := w.Trunks.For(d.DN)
	if !found || t.Username == "" {
		return "", "", false
	}
	return t.Username, t.Password, true
}

// Unwatch ends the subscription to number's dialog state.
func (w *Watcher) Unwatch(number string) {
	w.mu.Lock()
	id, on := w.byDN[number]
	delete(w.byDN, number)
	delete(w.views, id)
	delete(w.bad, id)
	delete(w.last, number)
	w.mu.Unlock()
	if on {
		w.unsubscribe(id)
	}
}

// Restore takes back the subscriptions the layer restored (call after
// subscription.Layer.Restore, before anything is watched).
func (w *Watcher) Restore() {
	for _, i := range w.layer.Subscriptions(Event) {
		var d watched
		if json.Unmarshal(i.Data, &d) != nil || d.DN == "" {
			continue // one we serve
		}
		w.mu.Lock()
		w.byDN[d.DN] = i.ID
		w.views[i.ID] = &dialoginfo.View{}
		w.mu.Unlock()
	}
}

// Prune ends the restored subscriptions of numbers nobody watches any
// more (their call back ended while the server was down): call once the
// Call Back requests are restored, with whether each number is watched.
func (w *Watcher) Prune(watched func(number string) bool) {
	w.mu.Lock()
	var gone []string
	for dn := range w.byDN {
		if !watched(dn) {
			gone = append(gone, dn)
		}
	}
	w.mu.Unlock()
	for _, dn := range gone {
		w.Log.Info("watch of a number no call back needs ended", "number", dn)
		w.Unwatch(dn)
	}
}

// Notified reads a NOTIFY's dialog-info and tells Status the number's
// state. A body that is not dialog-info is logged once per subscription
// and changes nothing.
func (w *Watcher) Notified(i subscription.Info, state string, b subscription.Body) {
	var d watched
	json.Unmarshal(i.Data, &d)
	if len(b.Data) == 0 {
		return // RFC 6665 4.1.3: a NOTIFY may carry no state
	}
	doc, err := dialoginfo.Parse(b.Data)
	w.mu.Lock()
	v := w.views[i.ID]
	if v == nil {
		v = &dialoginfo.View{}
		w.views[i.ID] = v
	}
	if err != nil {
		first := !w.bad[i.ID]
		w.bad[i.ID] = true
		w.mu.Unlock()
		if first {
			w.Log.Info("dialog state of a watched number unreadable: ignored", "number", d.DN, "error", err)
		}
		return
	}
	applied := v.Apply(doc)
	offHook := v.OffHook()
	if applied && d.DN != "" {
		w.last[d.DN] = offHook
	}
	w.mu.Unlock()
	if applied && w.Status != nil && d.DN != "" {
		w.Log.Debug("watched number's dialog state", "number", d.DN, "off_hook", offHook, "subscription", state)
		w.Status(d.DN, true, offHook)
	}
}

// Ended: the other server ended the subscription for good (refused it,
// or terminated it with no retry): the number's state is not known any
// more; it counts as not registered, never as free, and is Lost.
func (w *Watcher) Ended(i subscription.Info, reason string) {
	var d watched
	json.Unmarshal(i.Data, &d)
	w.mu.Lock()
	if w.byDN[d.DN] == i.ID {
		delete(w.byDN, d.DN)
		delete(w.last, d.DN)
	}
	delete(w.views, i.ID)
	delete(w.bad, i.ID)
	w.mu.Unlock()
	if reason == "unsubscribed" {
		return
	}
	w.Log.Info("watched number's dialog state no longer known", "number", d.DN, "reason", reason)
	if w.Status != nil && d.DN != "" {
		w.Status(d.DN, false, false)
	}
	if w.Lost != nil && d.DN != "" {
		w.Lost(d.DN)
	}
}
