// Package dialogevent is the dialog event package (RFC 4235) on the
// subscription layer (internal/subscription): served for our lines, so
// that phones light busy lamp fields and camp on (Server), and consumed
// from another server for the lines that live there (Watcher, B6).
package dialogevent

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/callbackd/callbackd/internal/auth"
	"github.com/callbackd/callbackd/internal/config"
	"github.com/callbackd/callbackd/internal/dialoginfo"
	"github.com/callbackd/callbackd/internal/linestate"
	"github.com/callbackd/callbackd/internal/sipmsg"
	"github.com/callbackd/callbackd/internal/subscription"
)

// Event is the package's name in the Event header.
const Event = "dialog"

// Server serves Event: dialog for our lines (RFC 4235 3).
type Server struct {
	Domain string
	Log    *slog.Logger
	// Line looks a line up (the directory); Profile its permissions.
	Line    func(dn string) (config.Line, bool)
	Profile func(name string) (config.Profile, bool)
	// Password and Home are the digest's (as for REGISTER).
	Password func(dn string) (string, bool)
	Home     func(dn, source string) bool

	auth  *auth.Authenticator
	lines *linestate.Tracker
	layer *subscription.Layer
}

// grant is what a dialog subscription keeps (subscription.Info.Data).
type grant struct {
	Watcher  string `json:"w"`
	Identity bool   `json:"id,omitempty"` // the remote party may be shown
}

// NewServer serves the line state of lines to the subscribers layer
// accepts; call Register on the layer, then Follow.
func NewServer(layer *subscription.Layer, lines *linestate.Tracker, a *auth.Authenticator) *Server {
	return &Server{layer: layer, lines: lines, auth: a, Log: slog.New(slog.DiscardHandler)}
}

// Follow sends a partial NOTIFY for each change of a call of a line to
// that line's subscribers: one notification per change.
func (s *Server) Follow() {
	s.lines.SubscribeCalls(s.callChanged)
}

func (s *Server) Event() string { return Event }

// Authorize proves the subscriber is a line (digest, 401 as for
// REGISTER: unknown and known lines get the same answers), that the
// resource is a line of ours (404), and that its profile lets it watch
// (403; a line may always watch itself).
func (s *Server) Authorize(req *sip.Request, tx sip.ServerTransaction) (subscription.Grant, bool) {
	if acc := req.GetHeaders("Accept"); len(acc) > 0 && !accepts(acc) {
		// RFC 6665 4.2.1.1 / RFC 3261 21.4.7: we only write dialog-info.
		sipmsg.Respond(tx, req, 406, "Not Acceptable", s.Log, sip.NewHeader("Accept", dialoginfo.ContentType))
		return subscription.Grant{}, false
	}
	d, ok := s.auth.Prove(tx, req, s.Password, s.Home, s.Log)
	if !ok {
		return subscription.Grant{}, false
	}
	watcher, dn := d.User, req.Recipient.User
	target, ok := s.Line(dn)
	if !ok || target.Kind == config.KindRoutePoint {
		sipmsg.Respond(tx, req, 404, "Not Found", s.Log)
		return subscription.Grant{}, false
	}
	g := grant{Watcher: watcher, Identity: true}
	if watcher != dn {
		w, _ := s.Line(watcher)
		p, _ := s.Profile(w.Profile)
		if p.WatchLines == config.WatchNone || p.WatchLines == "" {
			s.Log.Debug("dialog subscription refused: the line's profile does not allow watching lines", "watcher", watcher, "line", dn)
			sipmsg.Respond(tx, req, 403, "Forbidden", s.Log)
			return subscription.Grant{}, false
		}
		g.Identity = p.WatchLines == config.WatchIdentity
	}
	data, _ := json.Marshal(g)
	return subscription.Grant{Resource: dn, Data: data, Owner: watcher}, true
}

func accepts(hs []sip.Header) bool {
	for _, h := range hs {
		for _, v := range strings.Split(h.Value(), ",") {
			v, _, _ = strings.Cut(strings.TrimSpace(v), ";")
			if strings.EqualFold(v, dialoginfo.ContentType) || v == "*/*" || strings.EqualFold(v, "application/*") {
				return true
			}
		}
	}
	return false
}

// State is the full state of the line: each of its calls (RFC 4235 4.1).
func (s *Server) State(i subscription.Info) subscription.Body {
	doc := dialoginfo.Info{Version: uint64(i.Version), State: dialoginfo.Full, Entity: s.aor(i.Resource)}
	g := grantOf(i)
	for _, c := range s.lines.Calls(i.Resource) {
		doc.Dialogs = append(doc.Dialogs, s.dialog(c, g))
	}
	return body(doc)
}

func grantOf(i subscription.Info) grant {
	var g grant
	json.Unmarshal(i.Data, &g)
	return g
}

func body(doc dialoginfo.Info) subscription.Body {
	return subscription.Body{Type: dialoginfo.ContentType, Data: doc.Marshal()}
}

// callChanged (linestate's lock held: quick) queues one partial NOTIFY
// per subscriber of the line.
func (s *Server) callChanged(c linestate.CallChange) {
	s.layer.Changed(Event, c.DN, func(i subscription.Info) (subscription.Body, bool) {
		doc := dialoginfo.Info{Version: uint64(i.Version), State: dialoginfo.Partial, Entity: s.aor(c.DN),
			Dialogs: []dialoginfo.Dialog{s.dialog(c, grantOf(i))}}
		return body(doc), true
	})
}

// dialog is one call of a line as RFC 4235 shows it: an id that does not
// reveal the Call-ID, the direction, the state, and the remote party
// when the subscriber may see it.
func (s *Server) dialog(c linestate.CallChange, g grant) dialoginfo.Dialog {
	sum := sha256.Sum256([]byte(c.DN + "\x00" + c.CallID))
	d := dialoginfo.Dialog{ID: hex.EncodeToString(sum[:8]), Direction: dialoginfo.Recipient,
		Local: &dialoginfo.Party{Identity: &dialoginfo.Identity{URI: s.aor(c.DN)}}}
	if c.Outgoing {
		d.Direction = dialoginfo.Initiator
	}
	switch c.Phase {
	case linestate.PhaseRinging:
		d.State.Value = dialoginfo.Early
	case linestate.PhaseDialing:
		d.State.Value = dialoginfo.Trying
	case linestate.PhaseConnected:
		d.State.Value = dialoginfo.Confirmed
	default:
		d.State.Value = dialoginfo.Terminated
	}
	if g.Identity && c.Remote != "" {
		id := &dialoginfo.Identity{URI: s.aor(c.Remote)}
		if l, ok := s.Line(c.Remote); ok {
			id.Display = l.Name
		}
		d.Remote = &dialoginfo.Party{Identity: id}
	}
	return d
}

func (s *Server) aor(dn string) string { return "sip:" + dn + "@" + s.Domain }
