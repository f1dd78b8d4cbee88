package sipserver

import (
	"context"
	"log/slog"
)

// sipgoLog routes the SIP library's own logging into ours, with one change:
// a datagram that does not parse is the sender's problem, not the server's,
// so it is logged at info level (once, by the transport), where the library
// says error; a flood of garbage must not look like a failing server.
type sipgoLog struct{ slog.Handler }

func (h sipgoLog) Handle(ctx context.Context, r slog.Record) error {
	if r.Level == slog.LevelError && r.Message == "failed to parse" {
		r.Level = slog.LevelInfo
		r.Message = "malformed SIP message dropped"
		if !h.Handler.Enabled(ctx, r.Level) {
			return nil
		}
	}
	return h.Handler.Handle(ctx, r)
}

func (h sipgoLog) WithAttrs(as []slog.Attr) slog.Handler { return sipgoLog{h.Handler.WithAttrs(as)} }
func (h sipgoLog) WithGroup(g string) slog.Handler       { return sipgoLog{h.Handler.WithGroup(g)} }
