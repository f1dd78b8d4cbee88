package sipmsg

import (
	"sync"
	"time"
)

// Recent maps keys of transactions that ended to the bytes of a message
// to send again when their peer retransmits (RFC 3261 17.2.2, RFC 6026 7:
// a final response for a retransmitted request, an ACK for a
// retransmitted 2xx), each for its time to live, at most max of them: the
// oldest go first, as a retransmission that late comes after its sender's
// own timeout (Timer B/F, 64*T1). It holds bytes only, not the parsed
// messages and callbacks a live transaction holds.
type Recent struct {
	max int

	mu    sync.Mutex
	byKey map[string]recentEntry
	order []recentAt // in the order of Put, so of expiry (one time to live per table)
	head  int        // order[:head] are gone
}

type recentEntry struct {
	msg   []byte
	until int64 // unix ns
}

type recentAt struct {
	key   string
	until int64
}

// NewRecent returns a table of at most max entries.
func NewRecent(max int) *Recent {
	return &Recent{max: max, byKey: map[string]recentEntry{}}
}

// Put records msg for key until now+ttl.
func (r *Recent) Put(key string, msg []byte, now time.Time, ttl time.Duration) {
	until := now.Add(ttl).UnixNano()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expire(now.UnixNano())
	for len(r.byKey) >= r.max && r.head < len(r.order) {
		r.drop(r.order[r.head])
		r.head++
	}
	r.byKey[key] = recentEntry{msg: msg, until: until}
	r.order = append(r.order, recentAt{key: key, until: until})
}

// Get returns the message recorded for key, or nil.
func (r *Recent) Get(key string, now time.Time) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.byKey[key]
	if !ok || e.until <= now.UnixNano() {
		return nil
	}
	return e.msg
}

// Len is how many are recorded.
func (r *Recent) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.byKey)
}

// expire forgets the entries due by now (r.mu held).
func (r *Recent) expire(now int64) {
	for r.head < len(r.order) && r.order[r.head].until <= now {
		r.drop(r.order[r.head])
		r.head++
	}
	if r.head > 1024 && r.head*2 > len(r.order) { // reuse the front of the queue
		n := copy(r.order, r.order[r.head:])
		clear(r.order[n:])
		r.order, r.head = r.order[:n], 0
	}
}

// drop forgets at's entry unless its key was recorded again since.
func (r *Recent) drop(at recentAt) {
	if e, ok := r.byKey[at.key]; ok && e.until == at.until {
		delete(r.byKey, at.key)
	}
}
