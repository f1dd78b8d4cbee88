package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/callbackd/callbackd/internal/media"
)

// Relay mode: each call is two phones, A and B, talking through one
// media.Relay, as when the server stays in the media path of a connected
// call. The phones are only load: a few shared goroutines send every
// phone's 20 ms stream (a goroutine and timer per phone would cost more
// CPU than the relay it is meant to feed), while the relay runs exactly
// as the server runs it, two goroutines and two sockets per call.

const period = media.FrameDuration * time.Millisecond

// drain is how long the relays and phones keep running after the last
// send, for packets still on their way; anything later counts as lost.
const drain = 200 * time.Millisecond

type relayConfig struct {
	calls   int
	dur     time.Duration
	late    time.Duration
	senders int
	// direct sends each phone's stream straight to the other phone, no
	// relay: the cost of the load alone, to subtract from a relayed run.
	direct bool
	codec  media.Codec
	prompt []int16
}

// phone is one end of a call: it sends its stream from conn to `to` and
// receives the other end's stream on the same conn (symmetric RTP, which
// is what the relay expects when it latches the source address).
type phone struct {
	conn *net.UDPConn
	to   netip.AddrPort
	pk   media.Packetizer
	src  media.Source
	// offset places the phone's send slots within the frame: calls do
	// not start in step. Whole milliseconds, so a sender wakes at most
	// 20 times per frame however many phones it drives.
	offset time.Duration
	ts0    uint32 // RTP timestamp of slot 0, to find a packet's slot
	other  *phone

	// Written by the sending goroutine only, read after it ends.
	sent, sendLate uint64
	// Written by this phone's reader only, read after it ends.
	recv, late uint64
	maxLate    time.Duration
}

type relayResult struct {
	calls                int
	sent, recv           uint64
	relayedAB, relayedBA uint64 // from media.Relay's counters
	late, sendLate       uint64
	maxLate              time.Duration
	foreign, noPeer      uint64
	cpu, wall            time.Duration
}

func listenLoopback() (*net.UDPConn, error) {
	return net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
}

func runRelay(cfg relayConfig) (res relayResult, err error) {
	res.calls = cfg.calls
	var conns []*net.UDPConn
	// Every socket is closed on the way out, which also ends the readers.
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	listen := func() (*net.UDPConn, error) {
		c, err := listenLoopback()
		if err == nil {
			conns = append(conns, c)
		}
		return c, err
	}

	phones := make([]*phone, 0, 2*cfg.calls)
	relays := make([]*media.Relay, 0, cfg.calls)
	for range cfg.calls {
		var a, b phone
		for _, p := range []*phone{&a, &b} {
			if p.conn, err = listen(); err != nil {
				return res, err
			}
			p.ts0 = rand.Uint32()
			p.pk = media.Packetizer{Codec: cfg.codec, SSRC: rand.Uint32(), Seq: uint16(rand.Uint32()), Timestamp: p.ts0}
			// Start at a random point of the prompt so phones do not all
			// send the same bytes.
			src := media.NewSamples(cfg.prompt, true)
			skip := make([]int16, media.FrameSamples)
			for range rand.IntN(len(cfg.prompt) / media.FrameSamples) {
				src.Frame(skip)
			}
			p.src = src
			p.offset = time.Duration(rand.IntN(media.FrameDuration)) * time.Millisecond
		}
		a.other, b.other = &b, &a
		phones = append(phones, &a, &b)
		if cfg.direct {
			a.to, b.to = addrOf(b.conn), addrOf(a.conn)
			continue
		}
		ra, err := listen()
		if err != nil {
			return res, err
		}
		rb, err := listen()
		if err != nil {
			return res, err
		}
		r := media.NewRelay(ra, rb)
		// The addresses from SDP: without them the first packets of
		// whichever phone speaks first would be dropped (no peer yet).
		r.SetPeer(media.SideA, addrOf(a.conn), false)
		r.SetPeer(media.SideB, addrOf(b.conn), false)
		relays = append(relays, r)
		a.to, b.to = addrOf(ra), addrOf(rb)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var relayWG sync.WaitGroup
	relayErrs := make(chan error, len(relays))
	for _, r := range relays {
		relayWG.Go(func() {
			if err := r.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				relayErrs <- err
			}
		})
	}

	t0 := time.Now()
	end := t0.Add(cfg.dur)
	var readers sync.WaitGroup
	for _, p := range phones {
		readers.Go(func() { p.receive(t0, cfg.late) })
	}
	cpu0 := cpuTime()
	var senders sync.WaitGroup
	sendErrs := make(chan error, cfg.senders)
	for s := range cfg.senders {
		var mine []*phone
		for i := s; i < len(phones); i += cfg.senders {
			mine = append(mine, phones[i])
		}
		slices.SortFunc(mine, func(x, y *phone) int { return int(x.offset - y.offset) })
		senders.Go(func() {
			if err := send(mine, t0, end, cfg.late); err != nil {
				sendErrs <- err
			}
		})
	}
	senders.Wait()
	// CPU up to the last send: the relaying of the few packets still in
	// flight is left out, a fraction of a frame out of the whole run.
	res.cpu, res.wall = cpuTime()-cpu0, time.Since(t0)
	time.Sleep(drain)

	cancel()
	relayWG.Wait()
	for _, c := range conns {
		c.Close()
	}
	readers.Wait()
	close(sendErrs)
	close(relayErrs)
	for err := range sendErrs {
		return res, err
	}
	for err := range relayErrs {
		return res, err
	}

	for _, p := range phones {
		res.sent += p.sent
		res.sendLate += p.sendLate
		res.recv += p.recv
		res.late += p.late
		res.maxLate = max(res.maxLate, p.maxLate)
	}
	for _, r := range relays {
		st := r.Stats()
		res.relayedAB += st.AToB.Packets
		res.relayedBA += st.BToA.Packets
		res.foreign += st.Foreign
		res.noPeer += st.NoPeer
	}
	return res, nil
}

func addrOf(c *net.UDPConn) netip.AddrPort { return c.LocalAddr().(*net.UDPAddr).AddrPort() }

// send plays the phones' streams on the 20 ms schedule until end: slot k
// of a phone is t0 + offset + k*20ms, on an absolute schedule so a late
// wake-up does not shift the following slots. A sender that falls behind
// sends late rather than skipping, so the count sent is fixed by the
// schedule. phones is sorted by offset.
func send(phones []*phone, t0, end time.Time, lateAfter time.Duration) error {
	frame := make([]int16, media.FrameSamples)
	buf := make([]byte, 0, 1500)
	// Bounded: slots move on by 20 ms per round and stop at end.
	for k := time.Duration(0); ; k++ {
		active := false
		for _, p := range phones {
			due := t0.Add(p.offset + k*period)
			if !due.Before(end) {
				continue
			}
			active = true
			if d := time.Until(due); d > 0 {
				time.Sleep(d)
			}
			if time.Since(due) > lateAfter {
				p.sendLate++
			}
			p.src.Frame(frame)
			pkt := p.pk.Audio(buf[:0], frame)
			if _, err := p.conn.WriteToUDPAddrPort(pkt, p.to); err != nil {
				return err
			}
			p.sent++
		}
		if !active {
			return nil
		}
	}
}

// receive counts the other phone's packets arriving here and how late
// each is against its send slot, found from its RTP timestamp: slot k
// carries ts0 + k*160. It ends when the socket is closed.
func (p *phone) receive(t0 time.Time, lateAfter time.Duration) {
	from := p.other
	buf := make([]byte, 1500)
	for {
		n, err := p.conn.Read(buf)
		if err != nil {
			return
		}
		now := time.Now()
		if n < 12 {
			continue
		}
		k := (binary.BigEndian.Uint32(buf[4:8]) - from.ts0) / media.FrameSamples
		late := now.Sub(t0.Add(from.offset + time.Duration(k)*period))
		p.recv++
		if late > lateAfter {
			p.late++
		}
		p.maxLate = max(p.maxLate, late)
	}
}

func relayHeader(cfg relayConfig) {
	what := "relay"
	if cfg.direct {
		what = "direct (no relay: the phones' own cost; per-packet figures over packets sent)"
	}
	fmt.Printf("cores=%d GOMAXPROCS=%d duration=%v late>%v codec=%s mode=%s senders=%d\n",
		runtime.NumCPU(), runtime.GOMAXPROCS(0), cfg.dur, cfg.late, cfg.codec.Name, what, cfg.senders)
	fmt.Printf("%6s %9s %9s %7s %8s %9s %9s %9s %7s %8s %10s\n",
		"calls", "relayA>B", "relayB>A", "lost", "late%", "maxlate", "sendlate%", "cpu", "cpu%", "µs/pkt", "%core/call")
}

func (r relayResult) print(direct bool) {
	pkts := r.relayedAB + r.relayedBA
	if direct {
		pkts = r.sent
	}
	cpuPct := 100 * float64(r.cpu) / float64(r.wall)
	fmt.Printf("%6d %9d %9d %7d %7.3f%% %9v %8.3f%% %9v %6.1f%% %8.2f %10.4f\n", r.calls, r.relayedAB, r.relayedBA,
		int64(r.sent)-int64(r.recv), 100*float64(r.late)/float64(max(r.recv, 1)), r.maxLate.Round(time.Microsecond),
		100*float64(r.sendLate)/float64(max(r.sent, 1)), r.cpu.Round(time.Millisecond), cpuPct,
		float64(r.cpu)/float64(time.Microsecond)/float64(max(pkts, 1)), cpuPct/float64(r.calls))
	if r.foreign+r.noPeer > 0 {
		fmt.Printf("       (relay dropped %d from a foreign source, %d with no peer)\n", r.foreign, r.noPeer)
	}
}
