// Package siptest holds fakes of sipgo's transaction layer for the tests
// of every package that handles SIP requests (sipserver's fuzzing, the
// B2BUA's dialog layer): a handler is given a Tx instead of a real server
// transaction and the test reads back what it answered.
package siptest

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/emiago/sipgo/sip"
)

type txState int

const (
	proceeding txState = iota
	completed          // non-2xx final sent (or non-INVITE final)
	accepted           // 2xx to INVITE sent
)

// Tx is a sip.ServerTransaction that records what the handler does
// with it. It follows sipgo's ServerTx where it matters: OnTerminate and
// OnCancel return false once terminated, a CANCEL makes the transaction
// answer 487 itself after calling the OnCancel callback, and a final
// response ends the answering phase (a 2xx may be retransmitted).
type Tx struct {
	req *sip.Request

	// KeepContext makes OnTerminate report "not terminated", the way
	// sip.ServerTransactionContext expects, so that context lives until
	// the transaction ends (sipgo v1.7.2 reports the opposite and the
	// context is cancelled at once).
	KeepContext bool

	mu        sync.Mutex
	state     txState
	responses []*sip.Response // every Respond call, retransmissions included
	final     *sip.Response   // the final response, nil if none
	violation []string        // responses after the final one
	canceled  bool            // CANCEL processed: 487 sent by the transaction
	closed    bool
	err       error
	done      chan struct{}
	onCancel  sip.FnTxCancel
	onTerm    []sip.FnTxTerminate
	acks      chan *sip.Request
	sent      chan *sip.Response

	cancelReq   *sip.Request // armed CANCEL, fired at the first provisional
	cancelFired bool
	cancelWG    sync.WaitGroup
}

var _ sip.ServerTransaction = (*Tx)(nil)

// NewTx returns the transaction of req, in its proceeding state.
func NewTx(req *sip.Request) *Tx {
	return &Tx{req: req, done: make(chan struct{}), acks: make(chan *sip.Request), sent: make(chan *sip.Response, 64)}
}

// ArmCancel makes the transaction process cancel, as sipgo does for a
// matching CANCEL, once the handler sends its first provisional response.
func (tx *Tx) ArmCancel(cancel *sip.Request) {
	tx.mu.Lock()
	tx.cancelReq = cancel
	tx.mu.Unlock()
}

// Cancel processes a CANCEL now, as sipgo does for a matching one: the
// OnCancel callback, then 487 (RFC 3261 9.2). Nothing happens once a
// final response was sent.
func (tx *Tx) Cancel(cancel *sip.Request) {
	tx.mu.Lock()
	tx.cancelReq = cancel
	tx.cancelFired = true
	tx.cancelWG.Add(1)
	tx.mu.Unlock()
	tx.fireCancel()
}

// Wait waits until an armed CANCEL fired by a provisional response has
// been processed.
func (tx *Tx) Wait() { tx.cancelWG.Wait() }

// Sent delivers each response the handler sends, as it is sent (the
// first 64 of them; later ones are only recorded).
func (tx *Tx) Sent() <-chan *sip.Response { return tx.sent }

func (tx *Tx) Respond(res *sip.Response) error {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	tx.responses = append(tx.responses, res)
	select {
	case tx.sent <- res:
	default:
	}
	if tx.closed {
		return sip.ErrTransactionTerminated
	}
	switch tx.state {
	case proceeding:
		switch {
		case res.StatusCode >= 200:
			tx.final = res
			tx.state = completed
			if res.IsSuccess() && tx.req.IsInvite() {
				tx.state = accepted
			}
		case res.StatusCode > 100 && tx.cancelReq != nil && !tx.cancelFired:
			tx.cancelFired = true
			tx.cancelWG.Add(1)
			go tx.fireCancel()
		}
		return nil
	case accepted:
		if res == tx.final {
			return nil // 2xx retransmission (RFC 6026)
		}
	}
	if !tx.canceled {
		tx.violation = append(tx.violation, fmt.Sprintf("%d %s sent after final %d %s", res.StatusCode, res.Reason, tx.final.StatusCode, tx.final.Reason))
	}
	return errors.New("fake tx: final response already sent")
}

// fireCancel does what sipgo's ServerTx does for a matching CANCEL.
func (tx *Tx) fireCancel() {
	defer tx.cancelWG.Done()
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if tx.state != proceeding || tx.closed {
		return
	}
	tx.canceled = true
	tx.err = sip.ErrTransactionCanceled
	if tx.onCancel != nil {
		tx.onCancel(tx.cancelReq)
	}
	res := sip.NewResponseFromRequest(tx.req, 487, "Request Terminated", nil)
	tx.responses = append(tx.responses, res)
	tx.final = res
	tx.state = completed
}

func (tx *Tx) Acks() <-chan *sip.Request { return tx.acks }

func (tx *Tx) OnCancel(f sip.FnTxCancel) bool {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if tx.closed {
		return false
	}
	if prev := tx.onCancel; prev != nil {
		tx.onCancel = func(r *sip.Request) { prev(r); f(r) }
	} else {
		tx.onCancel = f
	}
	return !tx.canceled
}

func (tx *Tx) OnTerminate(f sip.FnTxTerminate) bool {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if tx.closed {
		return false
	}
	tx.onTerm = append(tx.onTerm, f)
	return !tx.KeepContext
}

func (tx *Tx) Terminate() {
	tx.mu.Lock()
	if tx.closed {
		tx.mu.Unlock()
		return
	}
	tx.closed = true
	if tx.err == nil {
		tx.err = sip.ErrTransactionTerminated
	}
	close(tx.done)
	fs, err := tx.onTerm, tx.err
	tx.mu.Unlock()
	for _, f := range fs {
		f("fake", err)
	}
}

func (tx *Tx) Done() <-chan struct{} { return tx.done }

func (tx *Tx) Err() error {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	return tx.err
}

// Result is a snapshot of what happened to one request.
type Result struct {
	Final     *sip.Response   // the final response, nil if none
	Responses []*sip.Response // every response sent, retransmissions included
	Violation []string        // responses sent after the final one
	Canceled  bool            // a CANCEL was processed (487 by the transaction)
}

// Result is what the handler did with the transaction so far.
func (tx *Tx) Result() Result {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	return Result{Final: tx.final, Responses: slices.Clone(tx.responses), Violation: slices.Clone(tx.violation), Canceled: tx.canceled}
}

// Code is the final response's status code, 0 if none.
func (r Result) Code() int {
	if r.Final == nil {
		return 0
	}
	return r.Final.StatusCode
}

// Codes are the status codes of every response, in order.
func (r Result) Codes() []int {
	var out []int
	for _, res := range r.Responses {
		out = append(out, res.StatusCode)
	}
	return out
}
