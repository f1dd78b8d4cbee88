package callcompletion

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/callbackd/callbackd/internal/sipmsg"
	"github.com/callbackd/callbackd/internal/throttle"
)

// Subscriber names the monitored request a PUBLISH is about, as the
// engine knows it (PeerMessage's Peer and Ref on the terminating side).
type Subscriber struct {
	Peer string
	Ref  int64
}

// Publications is the monitor's event state compositor for the agent's
// PUBLISHes (RFC 3903 s6, RFC 6910 s9): the caller's presence, closed
// (busy: suspend) or open (resume), under an entity-tag. State lives in
// memory only: the suspension itself is in the engine's stored request;
// after a restart an agent's refresh gets 412 and it publishes afresh
// (RFC 3903 s4.1), as after any lost ETag.
type Publications struct {
	// Resolve finds the request the PUBLISH is about (its Request-URI, the
	// cc-URI, and its publisher, proven as the subscriber). When it
	// returns false it has answered the request itself (401, 403, 404).
	Resolve func(req *sip.Request, tx sip.ServerTransaction) (Subscriber, bool)
	// Suspend steps the engine: MsgSuspend when suspend, else MsgResume.
	// It is called under the compositor's lock (so that concurrent
	// PUBLISHes step in order): quick, and never back into Publications.
	Suspend func(s Subscriber, suspend bool)
	Log     *slog.Logger
	// MinExpires, MaxExpires and DefaultExpires bound a publication's
	// life (RFC 3903 s6 step 5: 423 below the minimum, the maximum
	// granted above it).
	MinExpires, MaxExpires, DefaultExpires time.Duration

	once *throttle.Every
	mu   sync.Mutex
	pubs map[string]*publication // by entity-tag
	of   map[Subscriber]string   // the one live entity-tag of each subscriber
}

type publication struct {
	sub    Subscriber
	closed bool
	timer  *time.Timer
}

// NewPublications returns a compositor with the RFC's usual bounds: 60 s
// minimum, one hour default and maximum.
func NewPublications(resolve func(*sip.Request, sip.ServerTransaction) (Subscriber, bool), suspend func(Subscriber, bool), log *slog.Logger) *Publications {
	return &Publications{
		Resolve: resolve, Suspend: suspend, Log: log,
		MinExpires: time.Minute, MaxExpires: time.Hour, DefaultExpires: time.Hour,
		once: throttle.NewEvery(time.Minute),
		pubs: map[string]*publication{}, of: map[Subscriber]string{},
	}
}

// Handle answers a PUBLISH (RFC 3903 s6, in its order of steps).
func (p *Publications) Handle(req *sip.Request, tx sip.ServerTransaction) {
	// Step 2: the event package. RFC 6910's own examples PUBLISH with
	// Event: presence, its text with call-completion: both are ours.
	switch eventName(req) {
	case EventPackage, "presence":
	default:
		p.refuse(tx, req, 489, "Bad Event", "unknown event package", sip.NewHeader("Allow-Events", EventPackage))
		return
	}
	// Steps 1 and 3: the resource and the publisher's authorisation.
	sub, ok := p.Resolve(req, tx)
	if !ok {
		return
	}
	expires, ok := p.expires(req, tx)
	if !ok {
		return
	}
	// Step 4: a conditional request names a live publication of its own.
	etag := ""
	if h := req.GetHeader("SIP-If-Match"); h != nil {
		etag = strings.TrimSpace(h.Value())
		p.mu.Lock()
		pub := p.pubs[etag]
		p.mu.Unlock()
		if pub == nil || pub.sub != sub {
			p.refuse(tx, req, 412, "Conditional Request Failed", "unknown or expired SIP-If-Match")
			return
		}
	} else if len(req.Body()) == 0 || expires == 0 {
		p.refuse(tx, req, 400, "Bad Request", "initial PUBLISH without a body, or removing nothing")
		return
	}
	// Step 6: the body, when there is one.
	var presence *Presence
	if len(req.Body()) > 0 {
		ct := req.ContentType()
		if ct == nil || !strings.EqualFold(strings.TrimSpace(strings.Split(ct.Value(), ";")[0]), PIDFContentType) {
			p.refuse(tx, req, 415, "Unsupported Media Type", "PUBLISH body not PIDF", sip.NewHeader("Accept", PIDFContentType))
			return
		}
		pr, err := ParsePIDF(req.Body())
		if err != nil {
			p.refuse(tx, req, 400, "Bad Request", err.Error())
			return
		}
		presence = &pr
	}
	if expires == 0 { // removal (RFC 3903 s4.5): the caller is no longer closed
		p.remove(etag)
		sipmsg.Respond(tx, req, 200, "OK", p.Log, sip.NewHeader("Expires", "0"))
		return
	}
	tag := p.apply(sub, etag, presence, expires)
	sipmsg.Respond(tx, req, 200, "OK", p.Log,
		sip.NewHeader("SIP-ETag", tag), sip.NewHeader("Expires", strconv.Itoa(int(expires/time.Second))))
}

// expires reads Expires (RFC 3903 s6 step 5); it answers 400 or 423 itself.
func (p *Publications) expires(req *sip.Request, tx sip.ServerTransaction) (time.Duration, bool) {
	h := req.GetHeader("Expires")
	if h == nil {
		return p.DefaultExpires, true
	}
	n, err := strconv.ParseUint(strings.TrimSpace(h.Value()), 10, 32)
	if err != nil {
		p.refuse(tx, req, 400, "Bad Request", "malformed Expires")
		return 0, false
	}
	d := time.Duration(n) * time.Second
	switch {
	case n == 0:
		return 0, true
	case d < p.MinExpires:
		p.refuse(tx, req, 423, "Interval Too Brief", "PUBLISH Expires below the minimum",
			sip.NewHeader("Min-Expires", strconv.Itoa(int(p.MinExpires/time.Second))))
		return 0, false
	case d > p.MaxExpires:
		return p.MaxExpires, true
	}
	return d, true
}

// apply stores the publication under a fresh entity-tag (RFC 3903 s6 step
// 7: every refresh and modification gets a new one), replacing etag or
// the subscriber's earlier publication, and steps the engine on a change.
func (p *Publications) apply(sub Subscriber, etag string, presence *Presence, expires time.Duration) string {
	tag := newETag()
	p.mu.Lock()
	if etag == "" {
		etag = p.of[sub] // an initial PUBLISH replaces the subscriber's last
	}
	was := false
	if old := p.pubs[etag]; old != nil {
		old.timer.Stop()
		was = old.closed
		delete(p.pubs, etag)
	}
	closed := was
	if presence != nil {
		closed = !presence.Open
	}
	pub := &publication{sub: sub, closed: closed}
	pub.timer = time.AfterFunc(expires, func() { p.remove(tag) })
	p.pubs[tag] = pub
	p.of[sub] = tag
	if closed != was { // under the lock: concurrent PUBLISHes step in order
		p.Suspend(sub, closed)
	}
	p.mu.Unlock()
	return tag
}

// remove ends a publication (Expires: 0, or its expiry): a closed caller
// whose publication is gone is open again (RFC 6910 s9: suspension lasts
// while the caller publishes it).
func (p *Publications) remove(etag string) {
	p.mu.Lock()
	pub := p.pubs[etag]
	if pub != nil {
		pub.timer.Stop()
		delete(p.pubs, etag)
		if p.of[pub.sub] == etag {
			delete(p.of, pub.sub)
		}
		if pub.closed {
			p.Suspend(pub.sub, false)
		}
	}
	p.mu.Unlock()
}

// Forget drops the subscriber's publication without stepping the engine:
// its request has ended.
func (p *Publications) Forget(sub Subscriber) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if etag, ok := p.of[sub]; ok {
		p.pubs[etag].timer.Stop()
		delete(p.pubs, etag)
		delete(p.of, sub)
	}
}

// Len is the number of live publications.
func (p *Publications) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.pubs)
}

func (p *Publications) refuse(tx sip.ServerTransaction, req *sip.Request, code int, reason, why string, hdrs ...sip.Header) {
	refuse(p.once, p.Log, tx, req, code, reason, why, hdrs...)
}

// refuse answers code and logs why, once a minute per source, code and
// why: what a peer sends wrong is logged once, not once per request.
func refuse(once *throttle.Every, log *slog.Logger, tx sip.ServerTransaction, req *sip.Request, code int, reason, why string, hdrs ...sip.Header) {
	src := req.Source()
	if host, _, err := sip.ParseAddr(src); err == nil {
		src = host
	}
	if ok, n := once.OK(strconv.Itoa(code) + " " + src + " " + why); ok {
		log.Info("call completion refused", "method", req.Method, "code", code, "why", why, "source_ip", src, "more_since_last_log", n)
	}
	sipmsg.Respond(tx, req, code, reason, log, hdrs...)
}

// eventName is the Event header's package, lower case, without parameters.
func eventName(req *sip.Request) string {
	h := req.GetHeader("Event")
	if h == nil {
		return ""
	}
	name, _, _ := strings.Cut(h.Value(), ";")
	return strings.ToLower(strings.TrimSpace(name))
}

func newETag() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
