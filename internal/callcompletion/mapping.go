package callcompletion

import (
	"github.com/callbackd/callbackd/internal/engine"
)

// The mapping between RFC 6910 on the wire and the engine's peer messages
// (engine.PeerMessage; the engine decides the cross-server rules). Ref is
// always the originating request's ID as the engine keeps it: on the agent
// side our own request's ID, on the monitor side the number this server
// gave the subscription (RFC 6910 carries no such reference).
//
//	agent (A's server)                      monitor (B's server)
//	ToPeer MsgRequest  -> SUBSCRIBE       -> FromPeer MsgRequest
//	FromPeer MsgAccept <- 2xx, NOTIFY queued <- ToPeer MsgAccept
//	FromPeer MsgReject <- 4xx-6xx, NOTIFY terminated <- ToPeer MsgReject
//	FromPeer MsgAvailable <- NOTIFY ready  <- ToPeer MsgAvailable
//	FromPeer MsgEnd    <- NOTIFY terminated <- ToPeer MsgEnd
//	ToPeer MsgSuspend  -> PUBLISH closed  -> FromPeer MsgSuspend
//	ToPeer MsgResume   -> PUBLISH open    -> FromPeer MsgResume
//	ToPeer MsgCancel   -> SUBSCRIBE Expires: 0 -> FromPeer MsgCancel
//	PlaceCall via peer -> INVITE cc-URI;m= -> PeerCall, answered by Admit

// ServiceOf is the m value of a request kind.
func ServiceOf(k engine.Kind) Service {
	switch k {
	case engine.CCNR:
		return NR
	case engine.CCNL:
		return NL
	}
	return BS
}

// KindOf is the request kind an m value asks for; missing or unknown m
// (RFC 6910 s11.1: the monitor chooses) gives fallback, the kind of the
// failed call the monitor remembers.
func KindOf(m Service, fallback engine.Kind) engine.Kind {
	switch m {
	case BS:
		return engine.CCBS
	case NR:
		return engine.CCNR
	case NL:
		return engine.CCNL
	}
	return fallback
}

// Notification is what a monitor's NOTIFY says (RFC 6910 s11.2, RFC 6665
// s4.1.3): the body while the subscription is active, or its end and the
// Subscription-State reason.
type Notification struct {
	Body       Body   // when not Terminated
	Terminated bool   // Subscription-State: terminated
	Reason     string // its reason: rejected, noresource (timeout: the layer's expiry)
}

// Notify is the NOTIFY the monitor sends for the engine's message m about
// the subscription whose cc-URI is uri; ok is false for messages that are
// not the monitor's to send.
func Notify(m engine.PeerMessage, uri string) (n Notification, ok bool) {
	switch m.Type {
	case engine.MsgAccept:
		return Notification{Body: Body{State: Queued, URI: uri}}, true
	case engine.MsgAvailable:
		return Notification{Body: Body{State: Ready, URI: uri}}, true
	case engine.MsgReject: // RFC 6665 s4.1.3: "rejected", re-subscribing is pointless
		return Notification{Terminated: true, Reason: "rejected"}, true
	case engine.MsgEnd:
		// The request's lifetime ran out (F19) or B is gone: "noresource",
		// not "timeout", after which an agent re-subscribes (RFC 6665
		// s4.1.3); "timeout" is the subscription's own expiry.
		return Notification{Terminated: true, Reason: "noresource"}, true
	}
	return Notification{}, false
}

// Notified is the engine's message for a NOTIFY the agent received about
// its request ref behind peer. accepted says whether the request was
// accepted already (a NOTIFY queued or a 2xx came): a subscription that
// ends before that was refused (F8), after it ended (the peer's lifetime).
func Notified(peer string, ref int64, n Notification, accepted bool) engine.PeerMessage {
	m := engine.PeerMessage{Peer: peer, Ref: ref}
	switch {
	case n.Terminated && accepted:
		m.Type = engine.MsgEnd
	case n.Terminated:
		m.Type = engine.MsgReject
	case n.Body.State == Ready:
		m.Type = engine.MsgAvailable
	default:
		m.Type = engine.MsgAccept
	}
	return m
}

// Answered is the engine's message for the final response to the agent's
// SUBSCRIBE; ok is false for a 2xx to a refresh or an unsubscribe, which
// changes nothing.
func Answered(peer string, ref int64, code int, initial bool) (m engine.PeerMessage, ok bool) {
	m = engine.PeerMessage{Peer: peer, Ref: ref}
	switch {
	case code >= 200 && code < 300 && initial:
		m.Type = engine.MsgAccept
	case code >= 300:
		// 405, 489 (the peer does not speak it), 403, 480 (queue full),
		// 404: refused; after a restart the refresh's 481 ends it too.
		m.Type = engine.MsgReject
		if !initial {
			m.Type = engine.MsgEnd
		}
	default:
		return m, false
	}
	return m, true
}

// Request is what the agent sends for the engine's message m to the peer.
type Request struct {
	Method      string // SUBSCRIBE or PUBLISH
	Unsubscribe bool   // SUBSCRIBE with Expires: 0 (RFC 6665 s4.1.2.3)
	M           Service
	Open        bool // PUBLISH: the PIDF basic status
}

// AgentRequest maps an engine message of the originating side; ok is false
// for messages that are not the agent's to send.
func AgentRequest(m engine.PeerMessage) (r Request, ok bool) {
	switch m.Type {
	case engine.MsgRequest:
		return Request{Method: "SUBSCRIBE", M: ServiceOf(m.Kind)}, true
	case engine.MsgCancel:
		return Request{Method: "SUBSCRIBE", Unsubscribe: true}, true
	case engine.MsgSuspend:
		return Request{Method: "PUBLISH"}, true
	case engine.MsgResume:
		return Request{Method: "PUBLISH", Open: true}, true
	}
	return Request{}, false
}
