// Command flood attacks a running callbackd on loopback the way issue 12
// (B7) did, bounded in rate, count and time, and samples the server's
// memory meanwhile and afterwards:
//
//	go run ./bench/flood -mode invite -target 127.0.0.1:15060 -rate 5000 -duration 20s -pid PID
//	go run ./bench/flood -mode tcp -target 127.0.0.1:15060 -conns 5000 -duration 60s -pid PID
//
// invite: unauthenticated INVITEs over UDP, each from a new source address
// (127.0.0.2-127.0.0.254, fresh ports), answers read and counted. tcp:
// connections from many source addresses, half of them idle and half
// sending a message that never ends; reports how many the server refused
// at once, closed later, and kept. With -pid, the server's RSS (and, with
// -http, its Go heap) is printed every second, during the attack and for
// -after once it ends, with the time it took to come back near its idle
// footprint. Run through bench/flood/run.sh, which also measures
// legitimate calls meanwhile.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	mode := flag.String("mode", "invite", "invite (UDP INVITE flood) or tcp (connection flood)")
	target := flag.String("target", "127.0.0.1:15060", "the server's SIP address")
	rate := flag.Int("rate", 5000, "invite: INVITEs per second")
	conns := flag.Int("conns", 5000, "tcp: connections to open")
	sources := flag.Int("sources", 200, "tcp: source addresses (127.0.0.2...) the connections come from")
	duration := flag.Duration("duration", 20*time.Second, "how long the attack lasts")
	after := flag.Duration("after", 90*time.Second, "how long to keep sampling once the attack ends")
	pid := flag.Int("pid", 0, "the server's process id (for RSS)")
	httpAddr := flag.String("http", "", "the server's debug HTTP address, http.debug_listen (for the Go heap through /debug/vars)")
	flag.Parse()
	if *duration > 5*time.Minute || *rate > 50000 || *conns > 50000 {
		fmt.Fprintln(os.Stderr, "flood: bounded runs only (duration <= 5m, rate <= 50000, conns <= 50000)")
		os.Exit(2)
	}

	s := sampler{pid: *pid, http: *httpAddr}
	idle := s.sample("idle")
	ctx, stop := context.WithTimeout(context.Background(), *duration)
	done := make(chan struct{})
	go func() {
		defer close(done)
		switch *mode {
		case "invite":
			inviteFlood(ctx, *target, *rate)
		case "tcp":
			tcpFlood(ctx, *target, *conns, *sources)
		default:
			fmt.Fprintln(os.Stderr, "flood: unknown mode", *mode)
			os.Exit(2)
		}
	}()
	t := time.NewTicker(time.Second)
	start := time.Now()
	peak := idle
	for running := true; running; {
		select {
		case <-done:
			running = false
		case <-t.C:
			peak = max(peak, s.sample(fmt.Sprintf("attack +%2.0fs", time.Since(start).Seconds())))
		}
	}
	stop()
	end := time.Now()
	back := time.Duration(-1)
	for time.Since(end) < *after {
		<-t.C
		rss := s.sample(fmt.Sprintf("after  +%2.0fs", time.Since(end).Seconds()))
		if back < 0 && idle > 0 && rss <= idle+idle/5 {
			back = time.Since(end)
		}
	}
	if *pid != 0 {
		fmt.Printf("RSS idle %d MB, peak %d MB, end %d MB; ", idle>>10, peak>>10, s.sample("end")>>10)
		if back >= 0 {
			fmt.Printf("within 20%% of idle %.0f s after the attack\n", back.Seconds())
		} else {
			fmt.Printf("not back within 20%% of idle %v after the attack\n", *after)
		}
	}
}

type sampler struct {
	pid  int
	http string
}

// sample prints and returns the RSS in kB.
func (s sampler) sample(label string) int {
	if s.pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.pid))
	if err != nil {
		fmt.Println(label, "server gone:", err)
		os.Exit(1)
	}
	rss := 0
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			rss, _ = strconv.Atoi(strings.Fields(v)[0])
		}
	}
	extra := ""
	if s.http != "" {
		if heap, goroutines := s.heap(); heap > 0 {
			extra = fmt.Sprintf(" heap %d MB, %d goroutines", heap>>20, goroutines)
		}
	}
	fmt.Printf("%s: RSS %d MB%s\n", label, rss>>10, extra)
	return rss
}

func (s sampler) heap() (int, int) {
	c := http.Client{Timeout: 2 * time.Second}
	res, err := c.Get("http://" + s.http + "/debug/vars")
	if err != nil {
		return 0, 0
	}
	defer res.Body.Close()
	var v struct {
		Memstats struct{ HeapAlloc int } `json:"memstats"`
	}
	json.NewDecoder(res.Body).Decode(&v)
	g := 0
	if res, err := c.Get("http://" + s.http + "/debug/pprof/goroutine?debug=1"); err == nil {
		var first string
		fmt.Fscanf(res.Body, "goroutine profile: total %s", &first)
		g, _ = strconv.Atoi(first)
		res.Body.Close()
	}
	return v.Memstats.HeapAlloc, g
}

// inviteFlood sends rate unauthenticated INVITEs a second until ctx ends,
// each from a new source address, and counts the answers.
func inviteFlood(ctx context.Context, target string, rate int) {
	dst, err := net.ResolveUDPAddr("udp", target)
	if err != nil {
		panic(err)
	}
	var sent, answers, errs atomic.Int64
	const workers = 8
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			start := time.Now()
			n := 0
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				due := int(time.Since(start).Seconds()*float64(rate)/workers) - n // this worker's share so far
				for range due {
					n++
					src := fmt.Sprintf("127.0.0.%d:0", 2+(w*31+n)%253)
					c, err := net.ListenPacket("udp", src)
					if err != nil {
						errs.Add(1)
						continue
					}
					call := fmt.Sprintf("flood-%d-%d-%d", w, n, time.Now().UnixNano())
					msg := invite(c.LocalAddr().String(), target, call)
					if _, err := c.WriteTo([]byte(msg), dst); err == nil {
						sent.Add(1)
					}
					// Count the first answer without waiting for it long:
					// a reader per socket would be an attacker's luxury.
					go func() {
						defer c.Close()
						c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
						buf := make([]byte, 1500)
						if _, _, err := c.ReadFrom(buf); err == nil {
							answers.Add(1)
						}
					}()
				}
			}
		}()
	}
	wg.Wait()
	time.Sleep(600 * time.Millisecond)
	fmt.Printf("INVITE flood: sent %d, answered %d, socket errors %d\n", sent.Load(), answers.Load(), errs.Load())
}

func invite(local, target, call string) string {
	sdp := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n"
	return fmt.Sprintf("INVITE sip:3001@%s SIP/2.0\r\n"+
		"Via: SIP/2.0/UDP %s;branch=z9hG4bK%s;rport\r\n"+
		"From: <sip:2001@%s>;tag=%s\r\nTo: <sip:3001@%s>\r\nCall-ID: %s\r\nCSeq: 1 INVITE\r\n"+
		"Contact: <sip:2001@%s>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s",
		target, local, call, target, call, target, call, local, len(sdp), sdp)
}

// tcpFlood opens n connections from sources addresses; even ones stay
// idle, odd ones send the start of a message and a byte every 5 s. All
// are held until ctx ends. It reports what the server did with them.
func tcpFlood(ctx context.Context, target string, n, sources int) {
	var opened, failed, refused, closedLater atomic.Int64
	var wg sync.WaitGroup
	sem := make(chan struct{}, 200) // connects in flight
	for i := range n {
		select {
		case <-ctx.Done():
		case sem <- struct{}{}:
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := net.Dialer{Timeout: 3 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, byte(1+i%sources/250), byte(2+i%sources%250))}}
			c, err := d.DialContext(ctx, "tcp", target)
			<-sem
			if err != nil {
				failed.Add(1)
				return
			}
			defer c.Close()
			opened.Add(1)
			acceptedAt := time.Now()
			if i%2 == 1 {
				fmt.Fprintf(c, "INVITE sip:3001@%s SIP/2.0\r\nVia: SIP/2.0/TCP %s;branch=z9hG4bKslow%d\r\n", target, c.LocalAddr(), i)
				go func() {
					for ctx.Err() == nil {
						time.Sleep(5 * time.Second)
						if _, err := c.Write([]byte("X")); err != nil {
							return
						}
					}
				}()
			}
			go func() { <-ctx.Done(); c.SetReadDeadline(time.Now()) }()
			_, err = c.Read(make([]byte, 1))
			switch {
			case ctx.Err() != nil:
			case time.Since(acceptedAt) < 200*time.Millisecond:
				refused.Add(1)
			default:
				closedLater.Add(1)
			}
		}()
	}
	wg.Wait()
	fmt.Printf("TCP flood: %d connections opened (%d connects failed); closed by the server at once %d, closed later (idle timeout) %d, held to the end %d\n",
		opened.Load(), failed.Load(), refused.Load(), closedLater.Load(), opened.Load()-refused.Load()-closedLater.Load())
}
