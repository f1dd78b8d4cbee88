// Package endpoint is the server as a media endpoint. Where the server
// itself talks to a party (the Call Back offer, the automatic recall: the
// server acting as a phone in internal/b2bua) that leg gets an Endpoint:
// one UDP socket, SDP offer/answer (internal/media, RFC 3264), a Stream
// playing what the server says and a Receiver listening for key presses
// (RFC 4733). A recall that connects A to B relays RTP between two
// endpoints' sockets (Relay, over media.Relay); b2bua's phone_recall.go
// says why relay.
package endpoint

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/callbackd/callbackd/internal/media"
)

// Endpoint is the server's media on one call leg.
type Endpoint struct {
	conn   *net.UDPConn
	local  media.Endpoint
	sess   media.Session
	digits chan rune // key presses, RFC 4733 or SIP INFO; never blocks a sender

	report func(media.StreamStats) // Ports.OnStats, told when a stream ends

	// Who the party is (for the log), whether its RTP is latched (see
	// media.PeerFilter), and whether a foreign source was logged yet:
	// once per leg, not once per packet.
	party   string
	latch   bool
	log     *slog.Logger
	onAlien func()
	warned  atomic.Bool

	// op serialises offer/answer and starting and stopping: the recall's
	// goroutine and a re-INVITE's (reoffer) may act at once.
	op sync.Mutex

	mu     sync.Mutex
	stream *media.Stream
	cur    *played // what plays now (kept across a new offer/answer)
	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed bool
}

// Ports opens the server's endpoints: their address, RTP port range and
// what they report.
type Ports struct {
	IP       netip.Addr // the address bound and put in our SDP
	Min, Max int        // the RTP port range; 0: ports the system picks
	// Latch accepts each party's RTP from its first source, locked for
	// the call, instead of only from its SDP address (media.PeerFilter):
	// for phones behind NAT.
	Latch     bool
	Log       *slog.Logger
	OnStats   func(media.StreamStats) // told what each stream sent, when it ends
	OnForeign func()                  // told of each RTP packet from a foreign source; must not block
}

// Open binds an RTP socket from the range: an even port (RFC 3550 section
// 11), chosen at random so that parallel calls rarely try the same one.
// party is the line or number on the other end, for the log.
func (p Ports) Open(party string) (*Endpoint, error) {
	ip, lo, hi := p.IP, p.Min, p.Max
	var conn *net.UDPConn
	var err error
	if lo == 0 || hi < lo {
		conn, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
	} else {
		first := lo + lo%2
		n := (hi-first)/2 + 1
		for try := 0; try < 50; try++ {
			port := first + 2*rand.IntN(n)
			conn, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(port))))
			if err == nil {
				break
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("media: no RTP port: %w", err)
	}
	addr := conn.LocalAddr().(*net.UDPAddr).AddrPort()
	return &Endpoint{
		conn:   conn,
		local:  media.Endpoint{Addr: netip.AddrPortFrom(ip, addr.Port()), Username: "callbackd", SessionID: rand.Uint64() >> 1, SessionVersion: 1},
		digits: make(chan rune, 8),
		report: p.OnStats,
		party:  party, latch: p.Latch, log: p.Log, onAlien: p.OnForeign,
	}, nil
}

// Rebind binds the socket local again for a party whose media goes to
// remote: the endpoint of a relayed call restored after a restart, so the
// phones' RTP flows on (StartRelay).
func (p Ports) Rebind(local, remote netip.AddrPort, party string) (*Endpoint, error) {
	e := &Endpoint{digits: make(chan rune, 1), party: party, latch: p.Latch, log: p.Log, onAlien: p.OnForeign}
	e.sess.Remote = remote
	var err error
	if e.conn, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(local)); err != nil {
		return nil, err
	}
	return e, nil
}

// Digits are the party's key presses (RFC 4733, or SIP INFO through Key).
func (e *Endpoint) Digits() <-chan rune { return e.digits }

// Addr is the address of our media, as in our SDP.
func (e *Endpoint) Addr() netip.AddrPort { return e.local.Addr }

// OnlyCodec limits the codecs we offer to c (a relay does no transcoding).
func (e *Endpoint) OnlyCodec(c media.Codec) {
	e.op.Lock()
	defer e.op.Unlock()
	e.local.Codecs = []media.Codec{c}
}

// Answer answers the party's SDP offer (RFC 3264 section 6).
func (e *Endpoint) Answer(offer []byte) ([]byte, error) {
	e.op.Lock()
	defer e.op.Unlock()
	sdp, sess, err := media.Negotiate(offer, e.local)
	if err != nil {
		return nil, err
	}
	e.sess = sess
	return sdp, nil
}

// Offer is our SDP Offer (RFC 3264 section 5).
func (e *Endpoint) Offer() []byte {
	e.op.Lock()
	defer e.op.Unlock()
	return media.Offer(e.local)
}

// Accept reads the party's answer to our offer (RFC 3264 section 7).
func (e *Endpoint) Accept(answer []byte) error {
	e.op.Lock()
	defer e.op.Unlock()
	sess, err := media.ParseAnswer(answer, e.local)
	if err != nil {
		return err
	}
	e.sess = sess
	return nil
}

// Start begins sending silence to the party and listening for key presses.
// Call play to say something.
func (e *Endpoint) Start() {
	e.op.Lock()
	defer e.op.Unlock()
	e.startLocked()
}

func (e *Endpoint) startLocked() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed || e.stream != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	pk := media.Packetizer{Codec: e.sess.Codec, DTMFPT: e.sess.DTMFPT,
		SSRC: rand.Uint32(), Seq: uint16(rand.Uint32()), Timestamp: rand.Uint32()}
	stream := media.NewStream(e.conn, net.UDPAddrFromAddrPort(e.sess.Remote), pk, &played{src: silence{}})
	e.stream = stream
	rx := media.NewReceiver(e.conn, e.sess)
	// Keys only from the party's SDP address (or its first source when
	// latching): a third party's "5" must not ask a call back for it.
	rx.Source = e.filter(e.sess.Remote)
	// Latched behind NAT: what the server says goes where the party's
	// packets come from, not to the private address of its SDP.
	rx.Source.OnLatch = func(src netip.AddrPort) { stream.SetRemote(net.UDPAddrFromAddrPort(src)) }
	rx.OnDigit = func(d media.Digit) { e.Key(d.Digit) }
	e.wg.Add(2)
	go func() {
		defer e.wg.Done()
		// A write error (the party's port unreachable) ends the sending
		// only; the call's signalling decides when the leg ends.
		_ = stream.Run(ctx)
	}()
	go func() {
		defer e.wg.Done()
		_ = rx.Run(ctx)
	}()
}

// filter accepts the party's RTP from the address of its SDP (see
// media.PeerFilter); foreign packets are counted and logged once.
func (e *Endpoint) filter(sdp netip.AddrPort) *media.PeerFilter {
	f := media.NewPeerFilter(sdp, e.latch)
	f.OnForeign = func(src, peer netip.AddrPort, _ uint64) { e.foreign(src, peer) }
	return f
}

// foreign counts an RTP packet from a source other than the party's, and
// logs the first of the leg.
func (e *Endpoint) foreign(src, peer netip.AddrPort) {
	if e.onAlien != nil {
		e.onAlien()
	}
	if e.log != nil && e.warned.CompareAndSwap(false, true) {
		e.log.Warn("RTP from a foreign source dropped", "party", e.party, "local", e.local.Addr,
			"source", src, "peer", peer)
	}
}

// Key passes a Key press on without ever blocking the receiver.
func (e *Endpoint) Key(d rune) {
	select {
	case e.digits <- d:
	default:
	}
}

// Play switches what the party hears to src; the channel is closed once
// src is exhausted (silence follows).
func (e *Endpoint) Play(src media.Source) <-chan struct{} {
	p := &played{src: src, done: make(chan struct{})}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		close(p.done)
		return p.done
	}
	e.cur = p
	if e.stream != nil { // else a new offer/answer restarts it (renegotiate)
		e.stream.SetSource(p)
	}
	return p.done
}

// Renegotiate answers a new offer from the party (a re-INVITE, RFC 3264
// section 8): the stream goes on, to the new address and codec, with what
// it was playing, and the party's RTP is accepted from the new address
// (section 8.3.1: a new offer may move the media). On an error (no common
// codec) nothing changes.
func (e *Endpoint) Renegotiate(offer []byte) ([]byte, error) {
	e.op.Lock()
	defer e.op.Unlock()
	local := e.local
	local.SessionVersion++ // a new answer is a new version (section 8)
	answer, sess, err := media.Negotiate(offer, local)
	if err != nil {
		return nil, err
	}
	e.local = local
	e.stopLocked()
	e.sess = sess
	e.startLocked()
	e.mu.Lock()
	if e.cur != nil && e.stream != nil {
		e.stream.SetSource(e.cur)
	}
	e.mu.Unlock()
	return answer, nil
}

// Stop ends sending and receiving, leaving the socket open (for a relay).
func (e *Endpoint) Stop() {
	e.op.Lock()
	defer e.op.Unlock()
	e.stopLocked()
}

// Remote is where the party's media goes (its SDP address).
func (e *Endpoint) Remote() netip.AddrPort {
	e.op.Lock()
	defer e.op.Unlock()
	return e.sess.Remote
}

// Codec is the audio Codec of the party's session.
func (e *Endpoint) Codec() media.Codec {
	e.op.Lock()
	defer e.op.Unlock()
	return e.sess.Codec
}

func (e *Endpoint) stopLocked() {
	e.mu.Lock()
	cancel, stream := e.cancel, e.stream
	e.cancel, e.stream = nil, nil
	e.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	e.wg.Wait()
	if stream != nil && e.report != nil {
		e.report(stream.Stats())
	}
	// The receiver stopped by setting a deadline in the past.
	_ = e.conn.SetReadDeadline(time.Time{})
}

// Close ends the endpoint and frees its port; whoever waits for what it
// played is let go. Safe to call more than once.
func (e *Endpoint) Close() {
	e.op.Lock()
	defer e.op.Unlock()
	e.stopLocked()
	e.mu.Lock()
	e.closed = true
	cur := e.cur
	e.mu.Unlock()
	if cur != nil {
		cur.end()
	}
	e.conn.Close()
}

// played is a Source that reports its end and then plays silence, so the
// stream keeps its sequence numbers and timestamps running between
// prompts (and a NAT binding open).
type played struct {
	src  media.Source
	done chan struct{}
	once sync.Once
}

func (p *played) Frame(dst []int16) bool {
	if p.src != nil && p.src.Frame(dst) {
		return true
	}
	p.end()
	clear(dst)
	return true
}

// end reports the end of what played (once).
func (p *played) end() {
	if p.done != nil {
		p.once.Do(func() { close(p.done) })
	}
}

type silence struct{}

func (silence) Frame(dst []int16) bool { clear(dst); return true }

// Tone is a tone of the country of a locale (F34), lasting at most d.
func Tone(locale string, kind media.ToneKind, d time.Duration) media.Source {
	plan, err := media.Tone(countryOf(locale), kind)
	if err != nil {
		plan, _ = media.Tone("US", kind)
	}
	frames := int(d / (media.FrameDuration * time.Millisecond))
	return &limited{src: media.NewGenerator(plan), left: frames}
}

// countryOf maps a line's locale to the tone plan of its country.
func countryOf(locale string) string {
	switch locale {
	case "de":
		return "DE"
	case "zh":
		return "CN"
	case "ko":
		return "KR"
	}
	return "US"
}

// limited plays src for at most left frames.
type limited struct {
	src  media.Source
	left int
}

func (l *limited) Frame(dst []int16) bool {
	if l.left <= 0 {
		return false
	}
	l.left--
	return l.src.Frame(dst)
}
