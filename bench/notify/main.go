// Command notify measures the Call Back notification latency on the wire:
// from the moment B's phone sends the BYE that frees B to the moment A's
// phone receives the MESSAGE "1002 has become available", with N open Call
// Back requests stored in the server and a SIPp call load running beside.
//
// It builds callbackd (unless -bin), seeds N open requests with
// bench/seedrequests, starts the server on loopback and plays every phone
// with SIPp:
//
//   - A (1001) registers twice: one port it dials from (a SIPp per call),
//     one running test/interop/sipp/display.xml for the whole run;
//   - B (1002, busy_trigger 1) runs test/interop/sipp/uas_hangs_up.xml for
//     the whole run: it answers and hangs up after -hold;
//   - C (1003) calls B once per cycle (uac_callee_hangs_up.xml);
//   - load lines 4001..4010 call 5001..5010 (bench/load/uac_load.xml ->
//     test/interop/sipp/uas.xml) at -rate calls/s during the cycles.
//
// One cycle: C calls B, B answers (B is busy: its trace shows the ACK); A
// calls B (486, uac_busy.xml); A dials *39 (603 CallBack Activated,
// uac_feature.xml); B hangs up; A's display receives "1002 has become
// available"; A dials #39 (603 CallBack Cancelled) and the display shows
// the deactivation, so the next cycle starts clean. The latency of a cycle
// is the time the display's SIPp received the MESSAGE minus the time B's
// SIPp sent the BYE, both read from SIPp message traces (same clock). A
// cycle is valid only if A's 603 CallBack Activated came before the BYE and
// the MESSAGE after it; invalid cycles are listed, not counted.
//
// SIPp stamps a sent message after sendto returns, so a SIPp descheduled
// there stamps late (up to ~2 ms seen on 2 CPUs under load; a few cycles
// then read negative). As root, a packet socket on lo (capture.go) also
// takes the kernel's timestamps of the same BYE and MESSAGE: the "on the
// wire" figures, and the order used for "the MESSAGE came after the BYE".
// -wire=false turns it off.
//
// Everything is bounded: K cycles, each step by a timeout, the whole run by
// -max-time; every process started is stopped by its pid at the end.
//
//	go run ./bench/notify -n 1000 -k 100          # or: bench/load/run.sh notify 1000 100
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/callbackd/callbackd/test/sipptrace"
)

type options struct {
	root, work, bin string
	n, k            int
	hold            time.Duration
	rate            int
	sipPort         int
	httpPort        int
	debugPort       int
	basePort        int
	warmup          time.Duration
	maxTime         time.Duration
	stepTimeout     time.Duration
	loadLines       int
	wire            bool
}

func main() {
	var o options
	flag.StringVar(&o.root, "root", ".", "repository root (holds cmd/callbackd, bench/, test/interop/sipp/)")
	flag.StringVar(&o.work, "work", "", "work folder (default: a new /tmp/callbackd-notify.*)")
	flag.StringVar(&o.bin, "bin", "", "callbackd binary (default: built into the work folder)")
	flag.IntVar(&o.n, "n", 1000, "open Call Back requests to seed (bench/seedrequests)")
	flag.IntVar(&o.k, "k", 100, "cycles to measure")
	flag.DurationVar(&o.hold, "hold", 800*time.Millisecond, "how long B talks to C before hanging up")
	flag.IntVar(&o.rate, "rate", 200, "background SIPp load in calls/s (500 ms calls); 0: none")
	flag.IntVar(&o.sipPort, "sip-port", 17060, "server SIP UDP port on 127.0.0.1")
	flag.IntVar(&o.httpPort, "http-port", 17080, "server HTTP port on 127.0.0.1")
	flag.IntVar(&o.debugPort, "debug-port", 0, "server http.debug_listen port on 127.0.0.1 (pprof: e.g. /debug/pprof/profile?seconds=10 during the cycles); 0: none")
	flag.IntVar(&o.basePort, "base-port", 17100, "first of the phones' UDP ports (base..base+5)")
	flag.DurationVar(&o.warmup, "warmup", 3*time.Second, "load running before the first cycle")
	flag.DurationVar(&o.maxTime, "max-time", 8*time.Minute, "bound of the whole run: no cycle starts after it")
	flag.DurationVar(&o.stepTimeout, "step-timeout", 10*time.Second, "bound of each wait within a cycle")
	flag.IntVar(&o.loadLines, "load-lines", 10, "load caller lines 4001.. and callee lines 5001.. (busy_trigger 100)")
	flag.BoolVar(&o.wire, "wire", true, "cross-check the SIPp traces with kernel timestamps from a packet socket on lo (needs root; skipped if not permitted)")
	flag.Parse()
	if o.k < 1 || o.k > 10000 || o.n < 0 || o.rate < 0 || o.loadLines < 1 || o.loadLines > 99 {
		fmt.Fprintln(os.Stderr, "notify: bad -k, -n, -rate or -load-lines")
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(ctx, o.maxTime+2*time.Minute) // hard bound, setup and teardown included
	b := &bench{o: o}
	code := b.run(ctx)
	cancel()
	stop()
	os.Exit(code)
}

// ---------------------------------------------------------------------------
// The run

type bench struct {
	o        options
	scen     string // test/interop/sipp
	loadScen string // bench/load
	sippDir  string
	server   *proc
	mu       sync.Mutex
	procs    []*proc

	pa1, pa2, pb, pc, pLoadUAC, pLoadUAS int

	display, bPhone *sipptrace.File
	dispCursor      int
	wire            *wireCap // nil: no cross-check
}

// cycle is the outcome of one cycle.
type cycle struct {
	n         int
	valid     bool
	why       string        // when invalid
	latency   time.Duration // BYE sent -> MESSAGE received
	activated time.Time     // A received 603 CallBack Activated
	bye       time.Time     // B sent BYE
	available time.Time     // display received the MESSAGE
	// Where A's activation spent B's -hold (a cycle is invalid when it
	// outlasts it): from B's answer (SIPp trace) to the bench starting A's
	// busy call; that call, SIPp's start included; the *39, SIPp's start
	// included; of which the server, from the INVITE with credentials to
	// the 603.
	answered                      time.Time
	toBusy, busyCall, star39, srv time.Duration
	// From the packet capture on lo, when wireOK.
	wireOK             bool
	wireBye, wireAvail time.Time
}

func (c cycle) wireLatency() time.Duration { return c.wireAvail.Sub(c.wireBye) }

func (b *bench) run(ctx context.Context) int {
	o := &b.o
	root, err := filepath.Abs(o.root)
	if err != nil {
		return b.fail(err)
	}
	o.root = root
	b.scen = filepath.Join(root, "test/interop/sipp")
	b.loadScen = filepath.Join(root, "bench/load")
	if o.work == "" {
		if o.work, err = os.MkdirTemp("", "callbackd-notify."); err != nil {
			return b.fail(err)
		}
	} else if err := os.MkdirAll(o.work, 0o755); err != nil {
		return b.fail(err)
	}
	b.sippDir = filepath.Join(o.work, "sipp")
	if err := os.MkdirAll(b.sippDir, 0o755); err != nil {
		return b.fail(err)
	}
	fmt.Printf("work dir: %s\n", o.work)
	defer b.stopAll()

	b.pa1, b.pa2, b.pb, b.pc, b.pLoadUAC, b.pLoadUAS = o.basePort, o.basePort+1, o.basePort+2, o.basePort+3, o.basePort+4, o.basePort+5
	for _, p := range []int{o.sipPort, b.pa1, b.pa2, b.pb, b.pc, b.pLoadUAC, b.pLoadUAS} {
		if err := udpFree(p); err != nil {
			return b.fail(fmt.Errorf("UDP port %d on 127.0.0.1 is taken (%v): choose -sip-port / -base-port", p, err))
		}
	}
	if _, err := exec.LookPath("sipp"); err != nil {
		return b.fail(errors.New("sipp is not installed (apt-get install sip-tester)"))
	}

	// 1. Binary, configuration, seeded requests.
	if o.bin == "" {
		o.bin = filepath.Join(o.work, "callbackd")
		if err := b.runCmd(ctx, "go build", 5*time.Minute, "go", "build", "-o", o.bin, "./cmd/callbackd"); err != nil {
			return b.fail(err)
		}
	}
	cfgPath := filepath.Join(o.work, "callbackd.toml")
	db := filepath.Join(o.work, "data", "callbackd.db")
	seedLines := filepath.Join(o.work, "lines.toml")
	if err := b.runCmd(ctx, "seedrequests", 5*time.Minute, "go", "run", "./bench/seedrequests",
		"-n", strconv.Itoa(o.n), "-db", db, "-config", seedLines); err != nil {
		return b.fail(err)
	}
	seeded, err := os.ReadFile(seedLines)
	if err != nil {
		return b.fail(err)
	}
	if err := os.WriteFile(cfgPath, append([]byte(b.config(db)), seeded...), 0o644); err != nil {
		return b.fail(err)
	}

	// 2. Server, registrations, phones, load.
	restored, err := b.startServer(ctx, cfgPath)
	if err != nil {
		return b.fail(err)
	}
	fmt.Printf("server up: %s\n", restored)
	if !strings.Contains(restored, fmt.Sprintf("requests=%d", o.n)) {
		return b.fail(fmt.Errorf("the server restored other than %d requests: %s", o.n, restored))
	}
	for _, r := range []struct {
		dn   string
		port int
	}{{"1001", b.pa1}, {"1001", b.pa2}, {"1002", b.pb}, {"1003", b.pc}} {
		if err := b.sippOnce(ctx, "register-"+r.dn+"-"+strconv.Itoa(r.port), filepath.Join(b.scen, "register.xml"), r.port, 15*time.Second,
			"-s", r.dn, "-au", r.dn, "-ap", "p"+r.dn, "-set", "expires", "3600", "-m", "1"); err != nil {
			return b.fail(err)
		}
	}
	if err := b.registerLoad(ctx); err != nil {
		return b.fail(err)
	}

	runFor := int(o.maxTime/time.Second) + 60 // SIPp -timeout of the long-running phones
	display, err := b.startSipp(ctx, "display", filepath.Join(b.scen, "display.xml"), b.pa2, true,
		"-m", strconv.Itoa(3*o.k+50), "-timeout", strconv.Itoa(runFor))
	if err != nil {
		return b.fail(err)
	}
	b.display = &sipptrace.File{Path: display.msgFile}
	bp, err := b.startSipp(ctx, "B", filepath.Join(b.scen, "uas_hangs_up.xml"), b.pb, true,
		"-m", strconv.Itoa(2*o.k+10), "-d", strconv.Itoa(int(o.hold/time.Millisecond)), "-timeout", strconv.Itoa(runFor))
	if err != nil {
		return b.fail(err)
	}
	b.bPhone = &sipptrace.File{Path: bp.msgFile}

	if o.wire {
		if w, err := startCapture(o.sipPort, b.pb, b.pa2); err != nil {
			fmt.Printf("wire cross-check off: %v\n", err)
		} else {
			b.wire = w
			defer w.close()
		}
	}

	var loadUAC *proc
	statFile := filepath.Join(b.sippDir, "load_stats.csv")
	if o.rate > 0 {
		if _, err := b.startSipp(ctx, "load-uas", filepath.Join(b.scen, "uas.xml"), b.pLoadUAS, true,
			"-timeout", strconv.Itoa(runFor+60), "-notrace"); err != nil {
			return b.fail(err)
		}
		loadUAC, err = b.startSipp(ctx, "load-uac", filepath.Join(b.loadScen, "uac_load.xml"), b.pLoadUAC, false,
			"-notrace", "-inf", filepath.Join(o.work, "calls.csv"),
			"-r", strconv.Itoa(o.rate), "-m", strconv.Itoa(o.rate*(runFor+10)), "-d", "500", "-l", strconv.Itoa(o.rate*5),
			"-timeout", strconv.Itoa(runFor+10), "-trace_stat", "-stf", statFile, "-fd", "1")
		if err != nil {
			return b.fail(err)
		}
		if !sleepCtx(ctx, o.warmup) {
			return b.fail(ctx.Err())
		}
		if loadUAC.exited() {
			return b.fail(fmt.Errorf("the SIPp load stopped before the cycles: %s", loadUAC.describe()))
		}
	}

	// 3. Cycles.
	fmt.Printf("== N=%d open requests, K=%d cycles, B hangs up after %v, load %d calls/s (500 ms calls); %d CPUs, load average %s\n",
		o.n, o.k, o.hold, o.rate, runtime.NumCPU(), loadAvg())
	deadline := time.Now().Add(o.maxTime)
	cpu0 := procCPU(b.server.cmd.Process.Pid)
	t0 := time.Now()
	var cycles []cycle
	inARow := 0 // invalid cycles in a row: 5 mean the set-up is wrong, not the server slow
	for i := 1; i <= o.k; i++ {
		if inARow >= 5 {
			fmt.Printf("stopped after %d cycles: the last %d were invalid\n", i-1, inARow)
			break
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			fmt.Printf("stopped after %d cycles: %s\n", i-1, map[bool]string{true: "interrupted", false: "-max-time reached"}[ctx.Err() != nil])
			break
		}
		c := b.cycle(ctx, i)
		cycles = append(cycles, c)
		if inARow++; c.valid {
			inARow = 0
		}
		if !c.valid {
			fmt.Printf("  cycle %d: INVALID: %s\n", i, c.why)
		} else if i%10 == 0 || i == o.k {
			w := "-"
			if c.wireOK {
				w = fmtDur(c.wireLatency())
			}
			fmt.Printf("  cycle %d: traces %s, wire %s\n", i, fmtDur(c.latency), w)
		}
	}
	t1 := time.Now()
	cpu1 := procCPU(b.server.cmd.Process.Pid)

	// 4. Load and server figures over the cycles' window, then stop.
	loadReport := "no load"
	if loadUAC != nil {
		if loadUAC.exited() {
			loadReport = "the SIPp load stopped during the cycles: " + loadUAC.describe() + "; "
		} else {
			loadReport = ""
		}
		loadUAC.signal(syscall.SIGUSR1) // SIPp: no new calls, end the running ones, write stats, exit
		loadUAC.wait(15 * time.Second)
		loadReport += loadStats(statFile, t0, t1)
	}

	b.report(cycles, t1.Sub(t0), loadReport, cpu1-cpu0)
	valid := 0
	for _, c := range cycles {
		if c.valid {
			valid++
		}
	}
	if float64(valid) < 0.9*float64(o.k) {
		fmt.Printf("FAIL: %d of %d cycles valid (< 90%%)\n", valid, o.k)
		return 1
	}
	return 0
}

func (b *bench) fail(err error) int {
	fmt.Fprintln(os.Stderr, "notify:", err)
	return 1
}

func debugListen(port int) string {
	if port == 0 {
		return ""
	}
	return fmt.Sprintf("debug_listen = \"127.0.0.1:%d\"", port)
}

func (b *bench) config(db string) string {
	o := b.o
	var s strings.Builder
	fmt.Fprintf(&s, `[sip]
listen = ["udp:127.0.0.1:%d"]
digest_algorithms = ["MD5"] # SIPp 3.6 takes the first challenge and knows MD5 only
[http]
listen = "127.0.0.1:%d"
%s
[store]
path = %q
[log]
level = "info"
[callback]
alert_ring = "0s"
announce = false # A's call to busy B gets the 486 uac_busy.xml expects, not the offer's 183 (F28)
`, o.sipPort, o.httpPort, debugListen(o.debugPort), db)
	// The load caller is a trunk (B7: every line INVITE is challenged,
	// and SIPp cannot bind digest to a Request-URI that changes per
	// injection row): load calls come from outside, callers 9<DN>.
	fmt.Fprintf(&s, "[[trunk]]\nname = \"load\"\naddress = \"udp:127.0.0.1:%d\"\nprefixes = []\n", b.pLoadUAC)
	for _, dn := range []string{"1001", "1002", "1003"} {
		fmt.Fprintf(&s, "[[line]]\ndn = %q\npassword = \"p%s\"\nbusy_trigger = 1\n", dn, dn)
	}
	for i := 1; i <= o.loadLines; i++ {
		for _, base := range []int{4000, 5000} {
			fmt.Fprintf(&s, "[[line]]\ndn = \"%d\"\npassword = \"p%d\"\nbusy_trigger = 100\n", base+i, base+i)
		}
	}
	return s.String()
}

// startServer starts callbackd and waits until it serves SIP with the
// requests restored; it returns the restore log line.
func (b *bench) startServer(ctx context.Context, cfg string) (string, error) {
	logPath := filepath.Join(b.o.work, "server.log")
	f, err := os.Create(logPath)
	if err != nil {
		return "", err
	}
	cmd := exec.Command(b.o.bin, "-config", cfg)
	cmd.Dir = b.o.work
	cmd.Stdout, cmd.Stderr = f, f
	p, err := b.start("callbackd", cmd)
	f.Close()
	if err != nil {
		return "", err
	}
	b.server = p
	var restored string
	err = pollUntil(ctx, 2*time.Minute, 20*time.Millisecond, func() (bool, error) {
		if p.exited() {
			log, _ := os.ReadFile(logPath)
			return false, fmt.Errorf("callbackd exited: %s\n%s", p.describe(), tail(string(log), 3000))
		}
		log, _ := os.ReadFile(logPath)
		if i := bytes.Index(log, []byte("call back requests restored")); i >= 0 && bytes.Contains(log, []byte(`msg="SIP listening"`)) {
			line, _, _ := strings.Cut(string(log[i:]), "\n")
			restored = line
			return true, nil
		}
		return false, nil
	})
	return restored, err
}

// registerLoad writes the load's injection files and registers the load
// lines: callers from the load UAC's port, callees from the load UAS's.
func (b *bench) registerLoad(ctx context.Context) error {
	o := b.o
	var callers, callees, calls strings.Builder
	for _, s := range []*strings.Builder{&callers, &callees, &calls} {
		s.WriteString("SEQUENTIAL\n")
	}
	for i := 1; i <= o.loadLines; i++ {
		a, z := 4000+i, 5000+i
		fmt.Fprintf(&callers, "%d;p%d;[authentication username=%d password=p%d]\n", a, a, a, a)
		fmt.Fprintf(&callees, "%d;p%d;[authentication username=%d password=p%d]\n", z, z, z, z)
		fmt.Fprintf(&calls, "9%d;%d;\n", a, z)
	}
	for name, s := range map[string]string{"callers.csv": callers.String(), "callees.csv": callees.String(), "calls.csv": calls.String()} {
		if err := os.WriteFile(filepath.Join(o.work, name), []byte(s), 0o644); err != nil {
			return err
		}
	}
	if o.rate == 0 {
		return nil
	}
	for _, r := range []struct {
		csv  string
		port int
	}{{"callers.csv", b.pLoadUAC}, {"callees.csv", b.pLoadUAS}} {
		if err := b.sippOnce(ctx, "register-"+strings.TrimSuffix(r.csv, ".csv"), filepath.Join(b.loadScen, "register_load.xml"), r.port, 30*time.Second,
			"-inf", filepath.Join(o.work, r.csv), "-m", strconv.Itoa(o.loadLines), "-r", "100"); err != nil {
			return err
		}
	}
	return nil
}

// ---------------------------------------------------------------------------
// One cycle

var availableRE = regexp.MustCompile(`^1002 has become available\nTime \d\d:\d\d \d\d/\d\d/\d{4}\nPress Dial to call\n`)

const deactivatedText = "CallBack is deactivated on 1002\n"

func (b *bench) cycle(ctx context.Context, n int) (c cycle) {
	c.n = n
	st := b.o.stepTimeout
	tag := fmt.Sprintf("c%03d", n)
	seenCalls := b.bCalls()
	dispFrom := b.dispCursor
	invalid := func(format string, a ...any) cycle {
		c.valid, c.why = false, fmt.Sprintf(format, a...)
		return c
	}
	// Whatever happens, leave the next cycle a clean start: B's call
	// ended, no request of A's left.
	defer func() {
		b.settle(ctx, tag, seenCalls)
	}()

	// C calls B; B answers: B is busy.
	cProc, err := b.startSipp(ctx, tag+"-C", filepath.Join(b.scen, "uac_callee_hangs_up.xml"), b.pc, false,
		"-m", "1", "-s", "1002", "-set", "caller", "1003", "-au", "1003", "-ap", "p1003", "-auth_uri", b.uri("1002"), "-timeout", strconv.Itoa(int((b.o.hold+3*st)/time.Second)), "-timeout_error")
	if err != nil {
		return invalid("C: %v", err)
	}
	var bCall *bCallInfo
	err = pollUntil(ctx, st, 2*time.Millisecond, func() (bool, error) {
		if err := b.bPhone.Update(); err != nil {
			return false, err
		}
		for _, ci := range bCallsOf(b.bPhone) {
			if !seenCalls[ci.callID] && ci.fromC && !ci.ack.IsZero() {
				bCall = &ci
				return true, nil
			}
		}
		if cProc.exited() {
			return false, fmt.Errorf("C's call ended before B answered: %s", cProc.describe())
		}
		return false, nil
	})
	if err != nil {
		return invalid("B did not answer C: %v", err)
	}

	// A calls B: 486. A dials *39: 603 CallBack Activated. (Unless B
	// hung up already: A's call would be answered.)
	if b.bPhone.Update(); !b.byeOf(bCall.callID).IsZero() {
		return invalid("B hung up before A called: -hold %v is too short", b.o.hold)
	}
	c.answered = bCall.ack
	busyStart := time.Now()
	c.toBusy = busyStart.Sub(c.answered)
	if err := b.sippOnce(ctx, tag+"-A-busy", filepath.Join(b.scen, "uac_busy.xml"), b.pa1, st,
		"-m", "1", "-s", "1002", "-set", "caller", "1001", "-au", "1001", "-ap", "p1001", "-auth_uri", b.uri("1002")); err != nil {
		return invalid("A's call to busy B: %v", err)
	}
	actStart := time.Now()
	c.busyCall = actStart.Sub(busyStart)
	status, at, sent, err := b.feature(ctx, tag+"-A-activate", "*39")
	if err != nil {
		return invalid("A dials *39: %v", err)
	}
	if status != "603 CallBack Activated" {
		return invalid("A dials *39: got %q, want 603 CallBack Activated", status)
	}
	c.activated, c.star39, c.srv = at, at.Sub(actStart), at.Sub(sent)

	// B hangs up; A's display is told.
	err = pollUntil(ctx, b.o.hold+st, 2*time.Millisecond, func() (bool, error) {
		if err := b.bPhone.Update(); err != nil {
			return false, err
		}
		c.bye = b.byeOf(bCall.callID)
		return !c.bye.IsZero(), nil
	})
	if err != nil {
		return invalid("B sent no BYE: %v", err)
	}
	var avail *sipptrace.Message
	err = pollUntil(ctx, st, 2*time.Millisecond, func() (bool, error) {
		if err := b.display.Update(); err != nil {
			return false, err
		}
		for i := dispFrom; i < len(b.display.Messages); i++ {
			m := b.display.Messages[i]
			if m.Received && m.IsRequest("MESSAGE") && availableRE.MatchString(m.Body()) {
				avail = &m
				b.dispCursor = i + 1
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return invalid("no \"1002 has become available\" on A's display: %v; display got %q", err, b.screensSince(dispFrom))
	}
	c.available = avail.At
	c.latency = c.available.Sub(c.bye)
	toldFirst := c.available.Before(c.bye)
	if b.wire != nil {
		c.wireBye, c.wireAvail, c.wireOK = b.wire.times(bCall.callID, avail.Header("Call-ID"), time.Second)
		if c.wireOK { // the kernel's order, not SIPp's late stamps
			toldFirst = c.wireAvail.Before(c.wireBye)
		}
	}
	switch {
	case !c.activated.Before(c.bye):
		return invalid("A's 603 CallBack Activated at %s came after B's BYE at %s: activation too slow for -hold %v "+
			"(B answered at %s; the bench started A's busy call %s later, which took %s, then the *39 %s, of which the server %s)",
			clock(c.activated), clock(c.bye), b.o.hold, clock(c.answered), fmtDur(c.toBusy), fmtDur(c.busyCall), fmtDur(c.star39), fmtDur(c.srv))
	case toldFirst:
		return invalid("A was told at %s, before B's BYE at %s", clock(c.available), clock(c.bye))
	}
	c.valid = true
	return c
}

// settle ends a cycle: C's call over, A's request cancelled (#39) and the
// deactivation shown, so the next cycle starts clean. A failure here makes
// no cycle invalid (the next one will show it) but is printed.
func (b *bench) settle(ctx context.Context, tag string, seen map[string]bool) {
	st := b.o.stepTimeout
	// B's call with C must be over (BYE sent, or never answered).
	err := pollUntil(ctx, b.o.hold+st, 5*time.Millisecond, func() (bool, error) {
		if err := b.bPhone.Update(); err != nil {
			return false, err
		}
		for _, ci := range bCallsOf(b.bPhone) {
			if !seen[ci.callID] && !ci.ack.IsZero() && ci.bye.IsZero() {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		fmt.Printf("  %s: B's call did not end: %v\n", tag, err)
	}
	b.waitProc(tag + "-C")
	from := b.dispCursor
	status, _, _, err := b.feature(ctx, tag+"-A-cancel", "#39")
	switch {
	case err != nil:
		fmt.Printf("  %s: A dials #39: %v\n", tag, err)
	case status == "603 CallBack Not Active":
		// nothing was active: the cycle failed before activation
	case status != "603 CallBack Cancelled":
		fmt.Printf("  %s: A dials #39: got %q, want 603 CallBack Cancelled\n", tag, status)
	default:
		err = pollUntil(ctx, st, 5*time.Millisecond, func() (bool, error) {
			if err := b.display.Update(); err != nil {
				return false, err
			}
			for i := from; i < len(b.display.Messages); i++ {
				if m := b.display.Messages[i]; m.Received && m.IsRequest("MESSAGE") && strings.HasPrefix(m.Body(), deactivatedText) {
					b.dispCursor = i + 1
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			fmt.Printf("  %s: no deactivation screen after #39: %v\n", tag, err)
		}
	}
	b.display.Update()
	if len(b.display.Messages) > b.dispCursor {
		b.dispCursor = len(b.display.Messages)
	}
}

// feature dials a feature code from A's dialing port and returns the final
// response's status line and when it arrived.
// feature dials code from A's first port; it returns the final response,
// when it came, and when the INVITE it answers (the one with credentials)
// was sent.
func (b *bench) feature(ctx context.Context, name, code string) (string, time.Time, time.Time, error) {
	p, err := b.startSipp(ctx, name, filepath.Join(b.scen, "uac_feature.xml"), b.pa1, false,
		"-m", "1", "-s", code, "-set", "caller", "1001", "-au", "1001", "-ap", "p1001", "-auth_uri", b.uri(code), "-timeout", strconv.Itoa(int(b.o.stepTimeout/time.Second)), "-timeout_error")
	if err != nil {
		return "", time.Time{}, time.Time{}, err
	}
	if !p.wait(b.o.stepTimeout + 5*time.Second) {
		return "", time.Time{}, time.Time{}, fmt.Errorf("%s did not end", name)
	}
	tr := &sipptrace.File{Path: p.msgFile}
	if err := tr.Update(); err != nil {
		return "", time.Time{}, time.Time{}, err
	}
	var callID string
	for _, m := range tr.Messages {
		if !m.Received && m.IsRequest("INVITE") {
			callID = m.Header("Call-ID")
			break
		}
	}
	var sent time.Time
	for _, m := range tr.Messages {
		if !m.Received && m.IsRequest("INVITE") && m.Header("Call-ID") == callID {
			sent = m.At // the last: the one with credentials
		}
		// Not a provisional response, nor the 407 every line INVITE gets
		// first (B7): the answer to the INVITE with credentials.
		if m.Received && m.Header("Call-ID") == callID && strings.HasPrefix(m.StartLine(), "SIP/2.0 ") && !strings.HasPrefix(m.StartLine(), "SIP/2.0 1") &&
			!strings.HasPrefix(m.StartLine(), "SIP/2.0 407") {
			return strings.TrimPrefix(m.StartLine(), "SIP/2.0 "), m.At, sent, nil
		}
	}
	return "", time.Time{}, time.Time{}, fmt.Errorf("no final response: %s", p.describe())
}

// bCallInfo is one call B's phone took.
type bCallInfo struct {
	callID   string
	fromC    bool
	ack, bye time.Time
}

// bCalls lists the calls of B's phone trace t.
func bCallsOf(t *sipptrace.File) []bCallInfo {
	var out []bCallInfo
	idx := map[string]int{}
	for _, m := range t.Messages {
		id := m.Header("Call-ID")
		switch {
		case m.Received && m.IsRequest("INVITE"):
			if _, ok := idx[id]; !ok {
				idx[id] = len(out)
				out = append(out, bCallInfo{callID: id, fromC: strings.Contains(m.Header("From"), "sip:1003@")})
			}
		case m.Received && m.IsRequest("ACK"):
			if i, ok := idx[id]; ok && out[i].ack.IsZero() {
				out[i].ack = m.At
			}
		case !m.Received && m.IsRequest("BYE"):
			if i, ok := idx[id]; ok && out[i].bye.IsZero() {
				out[i].bye = m.At
			}
		}
	}
	return out
}

// byeOf is when B's phone sent the BYE of call id (zero: not yet).
func (b *bench) byeOf(id string) time.Time {
	for _, ci := range bCallsOf(b.bPhone) {
		if ci.callID == id {
			return ci.bye
		}
	}
	return time.Time{}
}

func (b *bench) bCalls() map[string]bool {
	b.bPhone.Update()
	seen := map[string]bool{}
	for _, ci := range bCallsOf(b.bPhone) {
		seen[ci.callID] = true
	}
	return seen
}

func (b *bench) screensSince(from int) []string {
	var out []string
	for i := from; i < len(b.display.Messages); i++ {
		if m := b.display.Messages[i]; m.Received && m.IsRequest("MESSAGE") {
			first, _, _ := strings.Cut(m.Body(), "\n")
			out = append(out, clock(m.At)+" "+first)
		}
	}
	return out
}

// ---------------------------------------------------------------------------
// Report

func (b *bench) report(cycles []cycle, window time.Duration, load string, cpuTicks int64) {
	var lat []time.Duration
	var invalid []cycle
	for _, c := range cycles {
		if c.valid {
			lat = append(lat, c.latency)
		} else {
			invalid = append(invalid, c)
		}
	}
	// Per-cycle data for a closer look.
	var csv strings.Builder
	csv.WriteString("cycle;valid;activated;bye;available;latency_us;wire_bye;wire_available;wire_latency_us;answered;to_busy_us;busy_call_us;star39_us;server_star39_us;why\n")
	for _, c := range cycles {
		wl := ""
		if c.wireOK {
			wl = strconv.FormatInt(c.wireLatency().Microseconds(), 10)
		}
		fmt.Fprintf(&csv, "%d;%v;%s;%s;%s;%d;%s;%s;%s;%s;%d;%d;%d;%d;%s\n", c.n, c.valid, clock(c.activated), clock(c.bye), clock(c.available),
			c.latency.Microseconds(), clock(c.wireBye), clock(c.wireAvail), wl, clock(c.answered), c.toBusy.Microseconds(), c.busyCall.Microseconds(),
			c.star39.Microseconds(), c.srv.Microseconds(), strings.ReplaceAll(oneLine(c.why, 1000), ";", ","))
	}
	os.WriteFile(filepath.Join(b.o.work, "cycles.csv"), []byte(csv.String()), 0o644)

	fmt.Printf("== result: N=%d open requests, load %d calls/s\n", b.o.n, b.o.rate)
	fmt.Printf("cycles: %d requested, %d run, %d valid, %d invalid (dropped)\n", b.o.k, len(cycles), len(lat), len(invalid))
	for _, c := range invalid {
		fmt.Printf("  invalid cycle %d: %s\n", c.n, c.why)
	}
	if len(lat) > 0 {
		fmt.Printf("latency B's BYE sent -> A's display received \"1002 has become available\" (%d cycles):\n", len(lat))
		fmt.Printf("  SIPp traces: %s\n", summary(lat))
	}
	var wire, byeLag, msgLag []time.Duration
	for _, c := range cycles {
		if c.valid && c.wireOK {
			wire = append(wire, c.wireLatency())
			byeLag = append(byeLag, c.bye.Sub(c.wireBye))
			msgLag = append(msgLag, c.available.Sub(c.wireAvail))
		}
	}
	switch {
	case b.wire == nil:
		fmt.Println("  on the wire: no capture (see above)")
	case len(wire) > 0:
		fmt.Printf("  on the wire (kernel timestamps on lo, %d cycles): %s\n", len(wire), summary(wire))
		fmt.Printf("  SIPp stamp minus wire stamp: B's BYE %s; display's MESSAGE %s\n", summary(byeLag), summary(msgLag))
	default:
		fmt.Printf("  on the wire: no cycle matched in the capture (%d packets seen)\n", b.wire.packets.Load())
	}
	var toBusy, busyCall, star39, srv []time.Duration
	for _, c := range cycles {
		if !c.activated.IsZero() {
			toBusy, busyCall = append(toBusy, c.toBusy), append(busyCall, c.busyCall)
			star39, srv = append(star39, c.star39), append(srv, c.srv)
		}
	}
	if len(srv) > 0 { // what must fit in -hold: mostly the bench's own SIPp starts
		fmt.Printf("A's activation within B's -hold %v (%d cycles): B's answer -> the bench starts A's busy call %s; the busy call, SIPp's start included, %s; the *39, SIPp's start included, %s; of which the server (INVITE with credentials -> 603) %s\n",
			b.o.hold, len(srv), summary(toBusy), summary(busyCall), summary(star39), summary(srv))
	}
	fmt.Printf("SIPp load during the cycles (%.1f s): %s\n", window.Seconds(), load)
	if hz := clkTck(); hz > 0 && window > 0 {
		fmt.Printf("server CPU during the cycles: %.0f%% of one core\n", 100*float64(cpuTicks)/hz/window.Seconds())
	}
	fmt.Printf("load average at the end: %s\n", loadAvg())
	fmt.Printf("per-cycle data: %s\n", filepath.Join(b.o.work, "cycles.csv"))
}

// summary sorts ds and gives its percentiles.
func summary(ds []time.Duration) string {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return fmt.Sprintf("min %s  p50 %s  p90 %s  p99 %s  max %s  mean %s", fmtDur(ds[0]), fmtDur(pct(ds, 50)),
		fmtDur(pct(ds, 90)), fmtDur(pct(ds, 99)), fmtDur(ds[len(ds)-1]), fmtDur(sum/time.Duration(len(ds))))
}

// pct is the nearest-rank percentile of sorted durations.
func pct(sorted []time.Duration, p float64) time.Duration {
	r := int(math.Ceil(p / 100 * float64(len(sorted))))
	if r < 1 {
		r = 1
	}
	return sorted[r-1]
}

func fmtDur(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d.Microseconds())/1000) }

func clock(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format("15:04:05.000000")
}

// loadStats reads the SIPp -trace_stat file of the load and tells the
// calls made within [t0, t1] (rows every second; the rows nearest inside).
func loadStats(path string, t0, t1 time.Time) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("no stats (%v)", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var head []string
	type row struct {
		at                                        float64
		outgoing, ok, refused, failed, concurrent float64
	}
	var rows []row
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ";")
		if head == nil {
			head = fields
			continue
		}
		get := func(name string) float64 {
			for i, h := range head {
				if h == name && i < len(fields) {
					v := fields[i]
					if j := strings.LastIndexByte(v, '\t'); j >= 0 { // "date\ttime\tepoch"
						v = v[j+1:]
					}
					x, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
					return x
				}
			}
			return 0
		}
		// uac_load.xml ends a call refused 503 (overload control) as
		// successful and counts it "refused": it is neither.
		refused := get("refused(C)")
		rows = append(rows, row{get("CurrentTime"), get("OutgoingCall(C)"), get("SuccessfulCall(C)") - refused, refused, get("FailedCall(C)"), get("CurrentCall")})
	}
	from, to := -1, -1
	a, z := float64(t0.UnixMicro())/1e6, float64(t1.UnixMicro())/1e6
	for i, r := range rows {
		if r.at >= a && from < 0 {
			from = i
		}
		if r.at <= z {
			to = i
		}
	}
	if from < 0 || to <= from {
		return fmt.Sprintf("too few stats rows (%d) in the window", len(rows))
	}
	r0, r1 := rows[from], rows[to]
	secs := r1.at - r0.at
	var conc float64
	for _, r := range rows[from : to+1] {
		conc += r.concurrent
	}
	last := rows[len(rows)-1]
	return fmt.Sprintf("%.1f calls/s started, %.1f calls/s completed, %.0f refused 503 and %.0f failed in the window (%.0f concurrent on average); whole load run: %.0f successful, %.0f refused, %.0f failed",
		(r1.outgoing-r0.outgoing)/secs, (r1.ok-r0.ok)/secs, r1.refused-r0.refused, r1.failed-r0.failed, conc/float64(to-from+1), last.ok, last.refused, last.failed)
}

// ---------------------------------------------------------------------------
// Processes

type proc struct {
	name    string
	cmd     *exec.Cmd
	done    chan struct{}
	msgFile string // SIPp message trace
	errFile string
	out     *bytes.Buffer
	outMu   sync.Mutex
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *proc) wait(d time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

func (p *proc) signal(s os.Signal) {
	if !p.exited() && p.cmd.Process != nil {
		p.cmd.Process.Signal(s)
	}
}

func (p *proc) describe() string {
	if !p.exited() {
		return p.name + " still running"
	}
	s := fmt.Sprintf("%s exit %d", p.name, p.cmd.ProcessState.ExitCode())
	if p.errFile != "" {
		if e, _ := os.ReadFile(p.errFile); len(e) > 0 {
			// "The following events occurred:", then "<time>: <what>": the what.
			text := strings.TrimPrefix(strings.TrimSpace(string(e)), "The following events occurred:")
			return s + " (" + oneLine(text, 300) + ", see " + p.errFile + ")"
		}
	}
	p.outMu.Lock()
	out := p.out.String()
	p.outMu.Unlock()
	if out != "" {
		s += " (" + oneLine(tail(out, 300), 300) + ")"
	}
	return s
}

// oneLine squeezes text into one line of at most n bytes.
func oneLine(text string, n int) string {
	text = strings.Join(strings.Fields(text), " ")
	if len(text) > n {
		text = text[:n] + "..."
	}
	return text
}

type lockedWriter struct{ p *proc }

func (w lockedWriter) Write(b []byte) (int, error) {
	w.p.outMu.Lock()
	defer w.p.outMu.Unlock()
	if w.p.out.Len() > 1<<16 { // keep the start; SIPp's screen is not needed
		return len(b), nil
	}
	return w.p.out.Write(b)
}

// start starts cmd and keeps it for stopAll.
func (b *bench) start(name string, cmd *exec.Cmd) (*proc, error) {
	p := &proc{name: name, cmd: cmd, done: make(chan struct{}), out: &bytes.Buffer{}}
	if cmd.Stdout == nil {
		cmd.Stdout = lockedWriter{p}
	}
	if cmd.Stderr == nil {
		cmd.Stderr = lockedWriter{p}
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	go func() { cmd.Wait(); close(p.done) }()
	b.mu.Lock()
	b.procs = append(b.procs, p)
	b.mu.Unlock()
	return p, nil
}

// waitProc waits (bounded) for the process called name, if any.
func (b *bench) waitProc(name string) {
	b.mu.Lock()
	var p *proc
	for _, q := range b.procs {
		if q.name == name {
			p = q
		}
	}
	b.mu.Unlock()
	if p != nil && !p.wait(b.o.stepTimeout) {
		p.signal(os.Kill)
		p.wait(5 * time.Second)
	}
}

// stopAll stops every process still running, by its pid: SIPp phones and
// load first, the server last (SIGTERM, then SIGKILL).
func (b *bench) stopAll() {
	b.mu.Lock()
	procs := append([]*proc(nil), b.procs...)
	b.mu.Unlock()
	for _, p := range procs {
		if p != b.server {
			p.signal(os.Kill)
		}
	}
	for _, p := range procs {
		if p != b.server {
			p.wait(5 * time.Second)
		}
	}
	if b.server != nil {
		b.server.signal(syscall.SIGTERM)
		if !b.server.wait(10 * time.Second) {
			b.server.signal(os.Kill)
			b.server.wait(5 * time.Second)
		}
	}
}

// runCmd runs a command in the repository root, bounded.
func (b *bench) runCmd(ctx context.Context, name string, limit time.Duration, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir = b.o.root
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// uri is what a line's SIPp binds its digest answer to (-auth_uri): the
// Request-URI of its INVITE to number (B7, RFC 3261 22.4).
func (b *bench) uri(number string) string {
	return fmt.Sprintf("%s@127.0.0.1:%d", number, b.o.sipPort)
}

// startSipp starts SIPp against the server from local UDP port with a
// message trace. listen: wait until the port is bound (a phone that
// waits for requests). args must bound it (-m, -timeout).
func (b *bench) startSipp(ctx context.Context, name, scenario string, port int, listen bool, args ...string) (*proc, error) {
	msgFile := filepath.Join(b.sippDir, name+".msg")
	errFile := filepath.Join(b.sippDir, name+".err")
	all := []string{fmt.Sprintf("127.0.0.1:%d", b.o.sipPort), "-sf", scenario, "-i", "127.0.0.1", "-p", strconv.Itoa(port),
		"-nostdin", "-max_recv_loops", "1000", "-trace_err", "-error_file", errFile}
	notrace := false
	for _, a := range args {
		if a == "-notrace" {
			notrace = true
			continue
		}
		all = append(all, a)
	}
	if !notrace {
		all = append(all, "-trace_msg", "-message_file", msgFile)
	}
	cmd := exec.Command("sipp", all...)
	cmd.Dir = b.sippDir
	p, err := b.start(name, cmd)
	if err != nil {
		return nil, err
	}
	p.msgFile, p.errFile = msgFile, errFile
	if listen {
		err := pollUntil(ctx, 5*time.Second, 5*time.Millisecond, func() (bool, error) {
			if p.exited() {
				return false, fmt.Errorf("exited before listening on port %d: %s", port, p.describe())
			}
			return udpBound(port), nil
		})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	return p, nil
}

// sippOnce runs SIPp in the foreground and requires exit 0.
func (b *bench) sippOnce(ctx context.Context, name, scenario string, port int, limit time.Duration, args ...string) error {
	secs := int(limit / time.Second)
	if secs < 1 {
		secs = 1
	}
	p, err := b.startSipp(ctx, name, scenario, port, false, append(args, "-timeout", strconv.Itoa(secs), "-timeout_error")...)
	if err != nil {
		return err
	}
	if !p.wait(limit + 5*time.Second) {
		p.signal(os.Kill)
		p.wait(5 * time.Second)
		return fmt.Errorf("%s did not end within %v", name, limit)
	}
	if c := p.cmd.ProcessState.ExitCode(); c != 0 {
		return errors.New(p.describe())
	}
	return nil
}

// udpFree reports whether port can be bound on 127.0.0.1.
func udpFree(port int) error {
	c, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return err
	}
	return c.Close()
}

// udpBound reports whether a UDP socket is bound to port (Linux /proc).
func udpBound(port int) bool {
	want := fmt.Sprintf(":%04X", port)
	for _, f := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			if fields := strings.Fields(line); len(fields) > 1 && strings.HasSuffix(fields[1], want) {
				return true
			}
		}
	}
	return false
}

// procCPU is the user+system CPU of pid in clock ticks.
func procCPU(pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(data)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		s = s[i+2:]
	}
	f := strings.Fields(s) // f[0] is field 3 (state): utime is field 14, stime 15
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return u + st
}

// loadAvg is the 1, 5 and 15 minute load averages of the machine (other
// work on it competes with the server for the CPUs).
func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(data)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "?"
}

func clkTck() float64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err != nil {
		return 100
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil || v <= 0 {
		return 100
	}
	return v
}

// pollUntil calls f every `every` until it reports done or an error, for at
// most limit.
func pollUntil(ctx context.Context, limit, every time.Duration, f func() (bool, error)) error {
	deadline := time.Now().Add(limit)
	for {
		done, err := f()
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %v", limit)
		}
		if !sleepCtx(ctx, every) {
			return ctx.Err()
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
