package sipserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"regexp"
	"strings"

	"github.com/callbackd/callbackd/internal/throttle"
)

// sipgoLog routes the SIP library's own logging into ours. What a remote
// peer causes (a message that does not parse, a request without CSeq or
// Via, which sipgo answers 400 itself, a connection reset) is the sender's
// problem, not the server's: sipgo logs it at error level, once per packet.
// Here it becomes one info line per kind and source address per minute, so
// that a flood of garbage neither looks like a failing server nor fills the
// alarms (warnings and errors) or the log.
type sipgoLog struct {
	slog.Handler
	every *throttle.Every
}

func newSipgoLog(h slog.Handler) sipgoLog { return sipgoLog{h, throttle.NewEvery(logInterval)} }

// peerCaused maps the messages sipgo logs for what a peer sent to ours.
var peerCaused = map[string]string{
	"failed to parse":                                    "malformed SIP message dropped",
	"Server tx failed to handle request":                 "SIP request not handled",
	"Failed to send stateless 400 for malformed request": "400 to a malformed request not sent",
	"Client tx failed to handle response":                "malformed SIP response dropped",
	"Read error":                                         "SIP connection read error",
	"Failed to pong keep alive":                          "SIP keep-alive answer failed",
	"send '100 Trying' response failed":                  "100 Trying not sent",
}

// sourceIn finds the peer's address in what sipgo logs: "source=IP:PORT"
// in an error, or the remote end "->IP:PORT" of a socket error.
var sourceIn = regexp.MustCompile(`(?:source=|->)(\[[0-9a-fA-F:.]+\]|[0-9.]+):\d+`)

func (h sipgoLog) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn {
		return h.Handler.Handle(ctx, r)
	}
	var attrs []slog.Attr
	forget := false
	r.Attrs(func(a slog.Attr) bool {
		if err, ok := a.Value.Any().(error); ok && errors.Is(err, errForget) {
			forget = true
		}
		if a.Key == "data" { // the whole message, up to 64 KB: its start is enough
			if v := a.Value.String(); len(v) > 200 {
				a = slog.String("data", v[:200]+"...")
			}
		}
		attrs = append(attrs, a)
		return true
	})
	if forget { // our own restart of the UDP loop (udpConn), not an error
		return nil
	}
	msg, ok := peerCaused[r.Message]
	if !ok {
		return h.Handler.Handle(ctx, r)
	}
	text := r.Message
	for _, a := range attrs {
		text += " " + a.Value.String()
	}
	key := msg
	if m := sourceIn.FindStringSubmatch(text); m != nil {
		if ip, err := netip.ParseAddr(strings.Trim(m[1], "[]")); err == nil {
			key += " " + ip.String()
			attrs = append(attrs, slog.String("source_ip", ip.String()))
		}
	}
	ok, dropped := h.every.OK(key)
	if !ok {
		return nil
	}
	if dropped > 0 {
		attrs = append(attrs, slog.Int("more_since_last_log", dropped))
	}
	out := slog.NewRecord(r.Time, slog.LevelInfo, msg, r.PC)
	out.AddAttrs(attrs...)
	out.AddAttrs(slog.String("note", fmt.Sprintf("logged once per source per %v", logInterval)))
	if !h.Handler.Enabled(ctx, out.Level) {
		return nil
	}
	return h.Handler.Handle(ctx, out)
}

func (h sipgoLog) WithAttrs(as []slog.Attr) slog.Handler {
	return sipgoLog{h.Handler.WithAttrs(as), h.every}
}
func (h sipgoLog) WithGroup(g string) slog.Handler { return sipgoLog{h.Handler.WithGroup(g), h.every} }
