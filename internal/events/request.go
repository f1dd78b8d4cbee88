package events

import "github.com/callbackd/callbackd/internal/engine"

// RequestEvent is the data of a "callback" event: a Call Back request
// stored (update) or ended.
type RequestEvent struct {
	Op      string         `json:"op"` // update (stored), end
	ID      int64          `json:"id,omitempty"`
	Reason  string         `json:"reason,omitempty"`
	Request engine.Request `json:"request,omitzero"`
}
