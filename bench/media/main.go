// Command media measures how many concurrent announcement streams one
// process sends on time: N streams play the English busy announcement in a
// loop over loopback UDP for a fixed time, and the command reports late
// packets (sent more than -late after their slot on the 20 ms schedule)
// and the CPU used (getrusage), so that "X streams on C cores before
// packets are late" can be stated.
//
// With -mode relay it measures relayed calls instead: N calls, each with
// two phones streaming 20 ms PCMU to each other through one media.Relay
// (the server staying in the media path), reporting packets relayed each
// way, lost and late arrivals, and the CPU per relayed packet and call.
//
//	go run ./bench/media -n 100,500,1000,2000 -d 10s
//	go run ./bench/media -mode relay -n 100,250,500,1000 -d 10s
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/callbackd/callbackd/internal/media"
)

func main() {
	var (
		counts = flag.String("n", "100,500,1000,2000", "comma-separated numbers of concurrent streams, run one after the other")
		dur    = flag.Duration("d", 10*time.Second, "how long each run lasts")
		late   = flag.Duration("late", media.DefaultLateAfter, "lateness from which a packet counts as late")
		sinks  = flag.Int("sinks", 4, "receiving sockets (each read by one goroutine)")
		codec  = flag.String("codec", "PCMU", "PCMU or PCMA")
		mode   = flag.String("mode", "streams", "streams (announcements sent) or relay (calls relayed; -n counts calls)")
		sends  = flag.Int("senders", 4, "relay mode: goroutines sending the phones' streams")
		direct = flag.Bool("direct", false, "relay mode: phones send to each other without the relay (the load's own cost)")
	)
	flag.Parse()
	if *dur <= 0 || *dur > 10*time.Minute || *sinks < 1 || *sinks > 64 {
		fmt.Fprintln(os.Stderr, "media: -d must be in (0, 10m], -sinks in [1, 64]")
		os.Exit(2)
	}
	if *mode != "streams" && *mode != "relay" {
		fmt.Fprintln(os.Stderr, "media: -mode must be streams or relay")
		os.Exit(2)
	}
	if *sends < 1 || *sends > 64 {
		fmt.Fprintln(os.Stderr, "media: -senders must be in [1, 64]")
		os.Exit(2)
	}
	c := media.PCMU
	if strings.EqualFold(*codec, "PCMA") {
		c = media.PCMA
	}
	prompt, err := media.Prompt("en", media.PromptBusyOffer)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if *mode == "relay" {
		relayMain(*counts, relayConfig{dur: *dur, late: *late, senders: *sends, direct: *direct, codec: c, prompt: prompt})
		return
	}
	fmt.Printf("cores=%d GOMAXPROCS=%d duration=%v late>%v codec=%s\n", runtime.NumCPU(), runtime.GOMAXPROCS(0), *dur, *late, c.Name)
	fmt.Printf("%7s %10s %10s %9s %8s %9s %9s %8s\n", "streams", "packets", "received", "late", "late%", "maxlate", "cpu", "cpu%")
	for _, f := range strings.Split(*counts, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 20000 {
			fmt.Fprintf(os.Stderr, "media: bad stream count %q (1-20000)\n", f)
			os.Exit(2)
		}
		if err := run(n, *dur, *late, *sinks, c, prompt); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}

// relayMain runs relay mode once per call count. Each call holds four
// sockets, hence the lower cap than for streams.
func relayMain(counts string, cfg relayConfig) {
	relayHeader(cfg)
	for _, f := range strings.Split(counts, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 4000 {
			fmt.Fprintf(os.Stderr, "media: bad call count %q (1-4000)\n", f)
			os.Exit(2)
		}
		cfg.calls = n
		res, err := runRelay(cfg)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		res.print(cfg.direct)
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func run(n int, dur, late time.Duration, nsinks int, c media.Codec, prompt []int16) error {
	var received atomic.Uint64
	var sinks []*net.UDPConn
	var readers sync.WaitGroup
	for range nsinks {
		s, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return err
		}
		_ = s.SetReadBuffer(4 << 20)
		sinks = append(sinks, s)
		readers.Go(func() {
			buf := make([]byte, 1500)
			for {
				if _, _, err := s.ReadFromUDPAddrPort(buf); err != nil {
					return
				}
				received.Add(1)
			}
		})
	}
	conns := make([]*net.UDPConn, n)
	streams := make([]*media.Stream, n)
	for i := range n {
		conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return err
		}
		conns[i] = conn
		pk := media.Packetizer{Codec: c, SSRC: rand.Uint32(), Seq: uint16(rand.Uint32()), Timestamp: rand.Uint32()}
		// Each stream starts at a random point of the prompt and loops it.
		src := media.NewSamples(prompt, true)
		skip := make([]int16, media.FrameSamples)
		for range rand.IntN(len(prompt) / media.FrameSamples) {
			src.Frame(skip)
		}
		streams[i] = media.NewStream(conn, sinks[i%nsinks].LocalAddr(), pk, src)
		streams[i].LateAfter = late
	}

	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	cpu0, wall0 := cpuTime(), time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for _, s := range streams {
		wg.Go(func() {
			// Calls do not start in step: spread the starts over a frame.
			select {
			case <-time.After(time.Duration(rand.Int64N(int64(20 * time.Millisecond)))):
			case <-ctx.Done():
				return
			}
			if err := s.Run(ctx); err != nil && err != context.DeadlineExceeded {
				errs <- err
			}
		})
	}
	wg.Wait()
	cpu, wall := cpuTime()-cpu0, time.Since(wall0)
	close(errs)
	for _, c := range conns {
		c.Close()
	}
	for _, s := range sinks {
		s.Close()
	}
	readers.Wait()
	for err := range errs {
		return err
	}

	var packets, lateN uint64
	var maxLate time.Duration
	for _, s := range streams {
		st := s.Stats()
		packets += st.Packets
		lateN += st.Late
		maxLate = max(maxLate, st.MaxLate)
	}
	fmt.Printf("%7d %10d %10d %9d %7.3f%% %9v %9v %7.1f%%\n", n, packets, received.Load(), lateN,
		100*float64(lateN)/float64(max(packets, 1)), maxLate.Round(time.Microsecond), cpu.Round(time.Millisecond),
		100*float64(cpu)/float64(wall))
	return nil
}
