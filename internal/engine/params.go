package engine

import "time"

// Policy says who is notified when B, with several callers waiting, becomes
// available (F16).
type Policy int

const (
	// NotifyAll: every waiting caller is alerted and the first to press Dial
	// gets B (Cisco, seed 002 "A and C call B at the same time").
	NotifyAll Policy = iota
	// FIFO: one at a time in order of activation; the next one is notified
	// when the first one ends without calling (ETSI CCBS queue, UCware).
	FIFO
)

func (p Policy) String() string {
	if p == FIFO {
		return "fifo"
	}
	return "notify-all"
}

// Params are the service parameters (F31, F32). Cisco and UCware names are in
// the comments. Zero durations mean the default; booleans have no zero
// default, so start from DefaultParams. Change them live with SetParams.
type Params struct {
	// Enabled: Cisco "Callback Enabled Flag", UCware CC_OFFER. Off: the
	// CallBack key answers "Key Not Active", nothing is offered, peers'
	// requests are rejected. Requests already open run to their end.
	Enabled bool
	// CCNREnabled: UCware CC_CCNR_ENABLED (F30). Call back on no answer
	// (ringback, reorder after the no-answer timer). Cisco always has it (F1),
	// so the default is on.
	CCNREnabled bool
	// External: UCware CC_EXTERNAL (F30). Callers that are not lines of this
	// server (from a trunk) may ask for a call back; they get the automatic
	// recall, having no screen.
	External bool
	// Policy: F16, default NotifyAll (Cisco).
	Policy Policy
	// StrictNames: F9 to the letter for names too (digits and spaces only).
	// Default: a name only must not contain '#' or '*' (the seeds' reason),
	// since display names have letters. Numbers are always digits and spaces.
	StrictNames bool
	// Announce: F28, a failed call's caller hears the offer as early media
	// ("... is busy. Press 5 to be called back."); off, it is only the
	// CallBack softkey and `*39`. BusyTone: UCware CC_BUSY_TONE, the busy
	// tone instead of the announcement (with Announce only). Both off in
	// DefaultParams; the configuration's default announces.
	Announce, BusyTone bool

	// OfferWindow: how long after a failed call, on hook, the CallBack key
	// (`*39`) still activates on it (UCware "after hanging up with *39").
	OfferWindow time.Duration
	// T1: Cisco "Call Back Request Protection T1 Timer": how long an
	// activation waits for its confirmation (the peer's accept across
	// servers, A's OK on the F6 replace screen). 20 s: the QSIG CC request
	// guard (ECMA-186 T1) and the 20000 ms request timeout of the CEF service
	// (seed 003's manual).
	T1 time.Duration
	// T3: Cisco "Callback Recall T3 Timer": how long A has, once notified, to
	// press Dial (F18, F21). 20 s: ECMA-186 T3 / ETSI T-CCBS3 (10-20 s).
	T3 time.Duration
	// Lifetime: UCware CC_TIMEOUT (60 min), the ETSI CCBS service duration
	// (45-60 min); used for CCBS and CCNL (F19).
	Lifetime time.Duration
	// LifetimeCCNR: ETSI CCNR service duration, 180 min (F19).
	LifetimeCCNR time.Duration
	// WaitTime: UCware CC_WAIT_TIME, 20 s: how long the automatic recall
	// rings A before giving up (F29).
	WaitTime time.Duration
}

// Defaults.
const (
	DefaultOfferWindow  = 30 * time.Second
	DefaultT1           = 20 * time.Second
	DefaultT3           = 20 * time.Second
	DefaultLifetime     = 60 * time.Minute
	DefaultLifetimeCCNR = 180 * time.Minute
	DefaultWaitTime     = 20 * time.Second
)

// DefaultParams: everything works without touching anything (F32).
func DefaultParams() Params {
	return Params{Enabled: true, CCNREnabled: true}.normalized()
}

func (p Params) normalized() Params {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&p.OfferWindow, DefaultOfferWindow)
	def(&p.T1, DefaultT1)
	def(&p.T3, DefaultT3)
	def(&p.Lifetime, DefaultLifetime)
	def(&p.LifetimeCCNR, DefaultLifetimeCCNR)
	def(&p.WaitTime, DefaultWaitTime)
	return p
}

func (p Params) lifetime(k Kind) time.Duration {
	if k == CCNR {
		return p.LifetimeCCNR
	}
	return p.Lifetime
}
