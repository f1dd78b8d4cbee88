// Package engine is the Call Back engine (the seeds' "Call Back Handler"): a
// pure, deterministic state machine that decides everything about call
// completion (CCBS busy, CCNR no reply, CCNL not logged in) and does nothing
// itself. Like etcd's raft it "leaves network and disk IO to the user": no
// goroutines, no clock, no network, no disk. Time comes in with every event.
//
// # Use
//
//	e := engine.New(engine.DefaultParams())
//	// at start: tell it the directory, then give it the stored requests
//	e.Step(now, engine.LineConfig{Line: engine.Line{DN: "1001"}})
//	e.Step(now, engine.LineStatus{DN: "1001", Registered: true})
//	acts := e.Restore(now, stored)
//	// then, for every event of the SIP server, API or a timer:
//	acts = e.Step(now, ev)
//
// Step is the only way state changes; it returns the actions to carry out,
// IN ORDER. The caller (one goroutine, or under a lock) executes them:
//
//   - Persist / Delete: write the request record to the store (upsert by ID)
//     or remove it. A Persist comes before the screen that tells A the request
//     is active, so an accepted request is stored before it is confirmed (B3).
//   - StartTimer / CancelTimer: arm a timer for an ABSOLUTE deadline, keyed by
//     TimerID (a new StartTimer with the same ID replaces the old one); when it
//     expires, Step(now, TimerFired{ID}). Fires of timers the engine no longer
//     wants are ignored, so races are harmless.
//   - Watch / Unwatch: only lines involved in a call back are watched (F38).
//     For a watched line the engine needs LineStatus events; after a Watch,
//     send the line's current status, as a next event once the step's
//     actions are carried out (never a Step inside another's actions).
//     Sending status of every line is fine too.
//   - ShowScreen, Alert, Reorder, Offer: the phone side (SIP MESSAGE, console,
//     tones, announcement "press 5 for call back"). ShowScreen carries a typed
//     screen.Screen; render it with Screen.Text(locale of the line); Kind
//     None closes the screen (nothing to send to a phone). Alert says which
//     line became available (B, or F20's forward target); Offer says its
//     form (OfferForm: the softkey only, the announcement for busy or logged
//     out, the busy tone; Params.Announce, BusyTone). Every Delete of a
//     request of a local A is followed in the same step by A's ShowScreen
//     saying how it ended (Completed, AvailableEnded, Expired, Deactivated,
//     CannotActivate; None after a reset, F25), except a replaced one, whose
//     successor's screen follows: no screen outlives its request.
//   - PlaceCall: the call back call A -> To (hold A's call first if asked,
//     override To's forwarding if asked, connect the answered recall leg if
//     OnRecall; mark it as a recall: Alert-Info urn:alert:service:recall:callback).
//     How depends on where A's call is, which the caller of Step knows (the
//     INVITE that dialed `*39`, a console, the answered recall).
//   - Pressed: what a KeyPress came to for the line that pressed (KeyResult:
//     activated, the F6 question, dialed, cancelled, cannot activate and
//     why, ...; and A's request state after the step): one per KeyPress,
//     the step's last action. Adapters answer from it (a feature code's
//     603 reason phrase, the API's 201/200/409, the offer's prompt after
//     5), never from the screen, which is what the phone shows.
//   - Recall: UCware automatic recall (F29): ring A for Ring, report
//     RecallAnswered when A answers (the engine then sends PlaceCall), give
//     up by yourself after Ring.
//   - ToPeer: call completion message to a peer server (F3, F17), see
//     PeerMessage; messages from peers come back as FromPeer. Admit answers
//     PeerCall on the terminating side (F21: override B's forwarding or not).
//
// Events: LineConfig carries a line's whole configuration (send the full
// Line on every change); LineStatus its presence (aggregated over devices,
// see internal/linestate). Report Registered=false only when the line really
// lost its registration: for A it cancels the request (F25). Events other
// than LineStatus (config, removal, reset, mobility, calls, keys) are wanted
// for every line, watched or not. Report every call A makes with CallUpdate
// (at least ringing and how it failed): the CallBack key and `*39` act on A's
// last call. After a KeyPress in RingOut that activated a request, clear A's
// failed call as usual. Unmonitorable says that a watched callee of
// another server can no longer be watched (B6): its requests end.
//
// # Model
//
// A Request is one call back of caller A on callee B, stored as JSON. A has at
// most one (F5), B may have many. States:
//
//	activating  B is behind a peer; waiting for its accept (T1 runs)
//	active      monitoring B (and the forward target of F20)
//	suspended   B became free while A was busy (F17); waiting for A
//	available   A was notified (alert + screen, or recall ringing); T3 runs
//
// Ended requests are deleted (Delete carries the reason). The CallBack key
// dialed as a feature code (KeyPress.Code, `*39`) does what the screen
// shown says: OK while the F6 question is shown, Dial while A's request is
// available (T3 runs), else the CallBack key (testdata/star39.txt). B "becomes
// available" (F11) when its line is registered, has no call off hook and is
// not in DND-Reject, after having been otherwise since the request started
// watching it: on hook after busy, the end of an off-hook/on-hook cycle from
// idle (the end of B's next call), registration after being logged out,
// DND-Reject switched off. CCBS and CCNL start "seen not available"; CCNR
// starts waiting for B's next cycle.
//
// Timers (Params): T1 request protection, T3 recall, Lifetime, and WaitTime
// for the automatic recall (timer kinds t1, t3, lifetime, wait). All deadlines are stored in the request; Restore
// re-arms them and fires the ones that passed while the server was down.
package engine
