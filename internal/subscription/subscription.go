// Package subscription is callbackd's SIP event framework (RFC 6665),
// generic over the event package: the notifier side (a SUBSCRIBE accepted,
// its dialog, the NOTIFYs, refresh, unsubscribe and expiry) and the
// subscriber side (a SUBSCRIBE sent, refreshed and ended; the NOTIFYs of
// its dialog handed to the package). Every subscription is stored
// (store.Subscription) before it is confirmed, and Restore carries them on
// after a restart.
//
// # How an event package plugs in
//
// Notifier side: implement Package and Register it. A SUBSCRIBE whose
// Event header names the package's Event() reaches Authorize, which proves
// who asks (digest, a From check: the package's own rules) and answers a
// refusal itself (401, 403, 404 ...) returning false, or names the
// resource subscribed to (and opaque Data kept with the subscription)
// returning true (Grant.Owner, who it proved the subscriber is, bounds
// how many one holds: Limits.PerOwner). The layer then answers 200 with
// the granted Expires and sends the first NOTIFY with State(info): the
// package's full state of the resource. When the resource changes, the package calls
// Layer.Changed(event, resource, partial): every subscription to it gets
// one NOTIFY, its body from partial(info) (nil partial: full state, from
// State; partial returning false: nothing for that subscription). Notify
// does the same for one subscription, End ends one with a final NOTIFY.
// Info.Version counts the NOTIFYs sent before (RFC 4235's version). A
// package that implements Ender is told when a subscription ends (expiry,
// unsubscribe, a NOTIFY answered 481 or unanswered, End).
//
// Subscriber side: implement Watcher and Register it, then Subscribe with
// a Spec. The NOTIFYs of that subscription reach Notified (after the 200
// to them is sent); Ended is called once the subscription is over for
// good (refused, terminated by the notifier with no retry, Unsubscribe).
// The layer refreshes before expiry, and re-subscribes when the notifier
// ends it with reason deactivated or timeout (at once) or a retry-after
// (then), or when its refresh is answered 481 (RFC 6665 4.1.3).
//
// Routing: internal/sipserver hands every SUBSCRIBE to Handle, and every
// in-dialog NOTIFY for which Owns reports true (the others stay the
// B2BUA's).
package subscription

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/callbackd/callbackd/internal/sipmsg"
	"github.com/callbackd/callbackd/internal/store"
)

// Body is a NOTIFY's body and its Content-Type.
type Body struct {
	Type string
	Data []byte
}

// Info is what a package sees of one subscription.
type Info struct {
	ID       string
	Event    string // the event package
	Resource string // what Authorize named, or the Spec's Target (subscriber)
	Data     []byte // the package's own, from Grant or Spec
	// Subscriber is the From of the SUBSCRIBE (notifier side); the
	// notifier's address (subscriber side).
	Peer string
	// Version is the number of NOTIFYs sent before this one (notifier
	// side): 0 for the first.
	Version int
}

// Grant is what a package answers to a SUBSCRIBE it accepts.
type Grant struct {
	Resource string
	Data     []byte
	// Owner is who the package proved the subscriber is (a line): at most
	// Limits.PerOwner live subscriptions each (0: no limit); "": not
	// counted.
	Owner string
}

// Package is an event package as notifier (RFC 6665 7.2).
type Package interface {
	// Event is the event type token of the Event header ("dialog").
	Event() string
	// Authorize answers a new SUBSCRIBE (out of a dialog): false when it
	// refused it (it has answered on tx); true with the resource it names.
	Authorize(req *sip.Request, tx sip.ServerTransaction) (Grant, bool)
	// State is the full state of the resource, for the subscription s.
	State(s Info) Body
}

// Ender is a Package or Watcher told when a subscription ends.
type Ender interface {
	Ended(s Info, reason string)
}

// Watcher is an event package as subscriber (RFC 6665 4.1).
type Watcher interface {
	Event() string
	// Notified is given each NOTIFY of the subscription: its
	// Subscription-State ("active", "pending", "terminated") and body.
	Notified(s Info, state string, body Body)
	Ended(s Info, reason string)
}

// Spec is a subscription to make (subscriber side).
type Spec struct {
	Event     string
	Target    string // the Request-URI of the first SUBSCRIBE
	From, To  string // URIs: who subscribes, and the resource's address
	Dest      string // ip:port the SUBSCRIBE is sent to
	Transport string // UDP or TCP
	Expires   time.Duration
	Accept    string // Accept header, "" for none
	Data      []byte // the watcher's own, given back in Info
}

// Limits bound the duration of subscriptions we grant (RFC 6665 4.2.1.1)
// and how many one owner may hold (each is a stored row and a NOTIFY per
// change).
type Limits struct {
	Min, Max, Default time.Duration
	PerOwner          int
}

// DefaultLimits: a minute at least (423 below), an hour at most and when
// the SUBSCRIBE says nothing (RFC 4235 6: 3600 s for dialog); 200 per
// owner (a phone with a busy lamp field of 100 keys, twice).
var DefaultLimits = Limits{Min: time.Minute, Max: time.Hour, Default: time.Hour, PerOwner: 200}

// notifyTimeout is how long a NOTIFY or SUBSCRIBE we send may go
// unanswered: a non-INVITE transaction's Timer F (RFC 3261 17.1.2.2).
var notifyTimeout = 64 * sip.T1

// maxQueue bounds the NOTIFYs waiting for one subscription: beyond it
// the waiting ones collapse into one full-state NOTIFY.
const maxQueue = 32

const (
	roleNotifier   = "notifier"
	roleSubscriber = "subscriber"
)

// record is a subscription as stored (JSON in store.Subscription).
type record struct {
	ID       string
	Role     string
	Event    string
	EventID  string `json:",omitempty"` // the Event header's id parameter
	Resource string
	Data     []byte `json:",omitempty"`

	// The dialog (RFC 3261 12).
	CallID     string
	LocalTag   string
	RemoteTag  string `json:",omitempty"`
	Local      string // our URI: To of the SUBSCRIBE (notifier), From (subscriber)
	Remote     string
	Target     string   // the peer's Contact
	Routes     []string `json:",omitempty"` // route set, in the order we send it
	Dest       string
	Transport  string
	LocalCSeq  uint32
	RemoteCSeq uint32 `json:",omitempty"`

	Expires time.Time
	Sent    int    `json:",omitempty"` // NOTIFYs sent (notifier)
	Owner   string `json:",omitempty"` // Grant.Owner (notifier)

	// Subscriber: what a new SUBSCRIBE is made of.
	RequestURI string        `json:",omitempty"`
	Period     time.Duration `json:",omitempty"`
	Accept     string        `json:",omitempty"`
}

// sub is one live subscription.
type sub struct {
	mu      sync.Mutex
	rec     record
	timer   *time.Timer // expiry (notifier), refresh or retry (subscriber)
	queue   []job       // NOTIFYs to send, in order (notifier)
	running bool        // a goroutine sends the queue
	ended   bool
	fetch   bool // a SUBSCRIBE with Expires 0: one NOTIFY, never stored
	retries int  // failed attempts in a row (subscriber)
	gen     int  // counts armed timers: a stale one does nothing
}

// job is one NOTIFY to send: partial (nil: full state) and, for the
// last one, the reason it terminates the subscription.
type job struct {
	partial   func(Info) (Body, bool)
	terminate string // "": active; else the terminated reason
	why       string // told to the package when it differs from terminate
}

// Layer is the subscriptions of the server, both sides.
type Layer struct {
	Log    *slog.Logger
	Limits Limits
	// Acting reports whether this instance may send now; nil: always. A
	// cluster's active whose lease ended sends no NOTIFY or SUBSCRIBE (the
	// new active restores the subscriptions and sends them: no NOTIFY
	// twice, F35).
	Acting func() bool

	client *sipgo.Client
	msg    *sipmsg.Builder
	store  store.Store

	mu       sync.Mutex
	pkgs     map[string]Package
	watchers map[string]Watcher
	byID     map[string]*sub
	byDialog map[string]*sub // dialogKey(Call-ID, our tag)
	owned    map[string]int  // Grant.Owner -> live subscriptions
	closed   bool

	ctx    context.Context // ended by Close: the requests in flight give up
	cancel context.CancelFunc
	wg     sync.WaitGroup // the goroutines sending (spawn)
}

// New builds the layer sending through client, its requests built by msg.
func New(client *sipgo.Client, msg *sipmsg.Builder, st store.Store, log *slog.Logger) *Layer {
	l := &Layer{Log: log, Limits: DefaultLimits, client: client, msg: msg, store: st,
		pkgs: map[string]Package{}, watchers: map[string]Watcher{},
		byID: map[string]*sub{}, byDialog: map[string]*sub{}, owned: map[string]int{}}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	return l
}

func (l *Layer) acting() bool { return l.Acting == nil || l.Acting() }

// spawn runs f on a goroutine Close waits for; once closed it runs
// nothing and reports false.
func (l *Layer) spawn(f func()) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.wg.Add(1)
	go func() { defer l.wg.Done(); f() }()
	return true
}

// Register adds an event package: a Package (notifier), a Watcher
// (subscriber), or a value that is both. Register before Restore.
func (l *Layer) Register(p any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n, ok := p.(Package); ok {
		l.pkgs[n.Event()] = n
	}
	if w, ok := p.(Watcher); ok {
		l.watchers[w.Event()] = w
	}
}

// Events lists the event packages served, for Allow-Events (RFC 6665 8.2.2).
func (l *Layer) Events() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for e := range l.pkgs {
		out = append(out, e)
	}
	sort.Strings(out)
	return out
}

func dialogKey(callID, tag string) string { return callID + "\x00" + tag }

func (r *record) info() Info {
	return Info{ID: r.ID, Event: r.Event, Resource: r.Resource, Data: r.Data, Peer: r.Remote, Version: r.Sent}
}

// persist stores the record (the caller holds s.mu or owns s alone).
func (l *Layer) persist(r *record) error {
	if l.isClosed() {
		return errors.New("subscription layer closed")
	}
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return l.store.PutSubscription(ctx, store.Subscription{ID: r.ID, Data: data})
}

func (l *Layer) forget(id string) {
	if l.isClosed() {
		return // goes with the restart: Restore meets it again
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.store.DeleteSubscription(ctx, id); err != nil {
		l.Log.Warn("subscription not deleted from the store", "id", id, "error", err)
	}
}

func (l *Layer) add(s *sub) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, had := l.byID[s.rec.ID]; !had && s.rec.Owner != "" {
		l.owned[s.rec.Owner]++
	}
	l.byID[s.rec.ID] = s
	l.byDialog[dialogKey(s.rec.CallID, s.rec.LocalTag)] = s
}

func (l *Layer) remove(s *sub) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byID[s.rec.ID] == s {
		delete(l.byID, s.rec.ID)
		if o := s.rec.Owner; o != "" {
			if l.owned[o]--; l.owned[o] <= 0 {
				delete(l.owned, o)
			}
		}
	}
	if k := dialogKey(s.rec.CallID, s.rec.LocalTag); l.byDialog[k] == s {
		delete(l.byDialog, k)
	}
}

// Owns reports whether an in-dialog request belongs to one of our
// subscriptions (its Call-ID and To tag).
func (l *Layer) Owns(req *sip.Request) bool {
	return l.find(req) != nil
}

func (l *Layer) find(req *sip.Request) *sub {
	to, cid := req.To(), req.CallID()
	if to == nil || cid == nil {
		return nil
	}
	tag, _ := to.Params.Get("tag")
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.byDialog[dialogKey(cid.Value(), tag)]
}

// Handle answers a SUBSCRIBE (new or in a dialog) or a NOTIFY of one of
// our subscriber dialogs.
func (l *Layer) Handle(req *sip.Request, tx sip.ServerTransaction) {
	switch {
	case req.Method == sip.NOTIFY:
		l.notified(req, tx)
	case req.To().Params.Has("tag"):
		l.refreshed(req, tx)
	default:
		l.subscribed(req, tx)
	}
}

// Close stops the timers and the requests in flight, and waits for the
// goroutines sending them; the stored subscriptions stay for Restore.
// Close it before the store.
func (l *Layer) Close() {
	l.mu.Lock()
	l.closed = true
	subs := make([]*sub, 0, len(l.byID))
	for _, s := range l.byID {
		subs = append(subs, s)
	}
	l.mu.Unlock()
	for _, s := range subs {
		s.mu.Lock()
		if s.timer != nil {
			s.timer.Stop()
		}
		s.mu.Unlock()
	}
	l.cancel()
	l.wg.Wait()
}

func (l *Layer) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

// Restore loads the stored subscriptions: a notifier's continue (a
// NOTIFY with the full state, the CSeq carried on; an expired one ends
// with terminated;reason=timeout), a subscriber's are refreshed in their
// dialog (or made again).
func (l *Layer) Restore(ctx context.Context) error {
	rows, err := l.store.Subscriptions(ctx)
	if err != nil {
		return fmt.Errorf("load subscriptions: %w", err)
	}
	for _, row := range rows {
		var r record
		if err := json.Unmarshal(row.Data, &r); err != nil || r.ID != row.ID {
			l.Log.Warn("stored subscription unreadable: dropped", "id", row.ID, "error", err)
			l.forget(row.ID)
			continue
		}
		s := &sub{rec: r}
		l.mu.Lock()
		_, served := l.pkgs[r.Event]
		_, watched := l.watchers[r.Event]
		l.mu.Unlock()
		switch {
		case r.Role == roleNotifier && served:
			l.add(s)
			if time.Now().After(r.Expires) {
				l.enqueue(s, job{terminate: "timeout"})
				continue
			}
			s.mu.Lock()
			l.armExpiry(s)
			s.mu.Unlock()
			l.enqueue(s, job{})
		case r.Role == roleSubscriber && watched:
			l.add(s)
			fresh := r.RemoteTag == ""
			l.spawn(func() { l.sendSubscribe(s, fresh) })
		default:
			l.Log.Warn("stored subscription of an event package not served: dropped", "id", r.ID, "event", r.Event, "role", r.Role)
			l.forget(r.ID)
		}
	}
	return nil
}

// Subscriptions lists the live subscriptions of an event package (either
// side).
func (l *Layer) Subscriptions(event string) []Info {
	l.mu.Lock()
	subs := make([]*sub, 0, len(l.byID))
	for _, s := range l.byID {
		subs = append(subs, s)
	}
	l.mu.Unlock()
	var out []Info
	for _, s := range subs {
		s.mu.Lock()
		if s.rec.Event == event && !s.ended {
			out = append(out, s.rec.info())
		}
		s.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// newID names a subscription.
func newID() string { return sip.GenerateTagN(20) }

// jitter spreads refreshes and retries (RFC 6665 4.1.2.2 asks subscribers
// not to refresh in lockstep).
func jitter(d time.Duration) time.Duration {
	return d - time.Duration(rand.Int64N(int64(d)/10+1))
}

// eventType is the event type of an Event header value and its id
// parameter (RFC 6665 8.2.1: "dialog;id=7" -> "dialog", "7").
func eventType(v string) (event, id string) {
	parts := strings.Split(v, ";")
	event = strings.TrimSpace(parts[0])
	for _, p := range parts[1:] {
		k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(strings.TrimSpace(k), "id") {
			id = strings.TrimSpace(val)
		}
	}
	return event, id
}

// headers is a request or a response.
type headers interface{ GetHeader(name string) sip.Header }

func headerValue(m headers, name string) (string, bool) {
	h := m.GetHeader(name)
	if h == nil {
		return "", false
	}
	return strings.TrimSpace(h.Value()), true
}

// expiresOf reads an Expires header: its seconds, whether there is one,
// and whether it is valid (RFC 3261 20.19: a delta-seconds).
func expiresOf(m headers) (secs int, present, ok bool) {
	v, present := headerValue(m, "Expires")
	if !present {
		return 0, false, true
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		return 0, true, false
	}
	return int(min(n, 1<<31-1)), true, true
}

// State is a Subscription-State header (RFC 6665 8.2.3).
type State struct {
	Value      string // active, pending, terminated
	Reason     string
	Expires    int // -1 when absent
	RetryAfter int // -1 when absent
}

// ParseState reads a Subscription-State value; ok false when it is not one.
func ParseState(v string) (State, bool) {
	st := State{Expires: -1, RetryAfter: -1}
	parts := strings.Split(v, ";")
	st.Value = strings.ToLower(strings.TrimSpace(parts[0]))
	if st.Value == "" || strings.ContainsAny(st.Value, " \t,=") {
		return st, false
	}
	for _, p := range parts[1:] {
		k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
		k, val = strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(val)
		switch k {
		case "reason":
			st.Reason = strings.ToLower(val)
		case "expires", "retry-after":
			n, err := strconv.ParseUint(val, 10, 32)
			if err != nil {
				return st, false
			}
			if k == "expires" {
				st.Expires = int(min(n, 1<<31-1))
			} else {
				st.RetryAfter = int(min(n, 1<<31-1))
			}
		}
	}
	return st, true
}
