// Package bench holds the smoke test of every benchmark and load script
// of the repository: each runs for a few seconds with small counts, and its
// output must parse and be sane, so that a bench cannot rot unnoticed. The
// figures themselves are never asserted (they come from full runs on a quiet
// box, README "Measured"); only what must hold at any speed: no failed call
// at 20 calls/s, every row printed, at least one valid cycle.
//
// A part whose tool is missing (sipp, kamailio, ...) is skipped with the
// reason, unless CI is set: .ci/run installs them all, so in CI it fails.
package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// smoke is one script run: its command line from the repository root, the
// tools it needs, and the checks of its output.
type smoke struct {
	name  string
	tools []string
	env   []string // besides the ports
	args  []string
	check func(t *testing.T, out string)
}

// parallel bounds the runs at once: they mostly wait (fixed durations), but
// each starts a server and SIPp processes on a 2-core box.
const parallel = 4

func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the smoke runs take about a minute")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "callbackd")
	if out, err := exec.Command("go", "build", "-o", bin, filepath.Join(root, "cmd/callbackd")).CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	load := []string{"sipp", "python3", "curl", "ss"}
	calls := func(n int) string {
		return fmt.Sprintf(`calls: %d successful: %d refused: 0 \(0\.000%%\) failed: 0 `, n, n)
	}
	runs := []smoke{
		{name: "load calls", tools: load, env: []string{"BIN=" + bin},
			args: []string{"bench/load/run.sh", "calls", "20", "3"},
			check: func(t *testing.T, out string) {
				want(t, out, calls(60), `INVITE -> 200: p50 \d+ ms p99 \d+ ms \(60 calls\)`,
					`server CPU \d+% of one core over the 3\.5 s of load; \d+ ms over the run = [0-9.]+ ms per call; RSS at end [1-9]\d* MB`)
			}},
		{name: "load side by side", tools: append(load, "kamailio"), env: []string{"BIN=" + bin},
			args: []string{"bench/load/run.sh", "side", "20", "3"},
			check: func(t *testing.T, out string) {
				for _, server := range []string{"kamailio", "callbackd"} {
					want(t, out, `(?m)^\| 20/s \| `+server+` \| 60 \| 0 \(0\.000%\) \| 0 \(0\.000%\) \| \d+ / \d+ ms \| \d+ % of a core \| [0-9.]+ ms \| [1-9]\d* MB.* \| [0-9., ]+ \|$`)
				}
			}},
		{name: "load register", tools: load, env: []string{"BIN=" + bin, "SETTLE=1"},
			args: []string{"bench/load/run.sh", "register", "50", "100"},
			check: func(t *testing.T, out string) {
				want(t, out, `registrations: 50 successful: 50 refused: 0 \(0\.000%\) failed: 0 `,
					`after the transactions ended: [1-9]\d* MB; Go heap in use: [1-9]\d* kB`)
			}},
		{name: "load refusals", tools: load, env: []string{"BIN=" + bin},
			args: []string{"bench/load/run.sh", "refusals", "20"},
			check: func(t *testing.T, out string) { // a 503 is a refusal, ACKed (RFC 3261 17.1.1.3), not a failure
				want(t, out, `calls: 20 successful: 0 refused: 20 \(100\.000%\) failed: 0 `,
					`refusing callee: calls: 20 ACKed: 20 failed: 0 `)
			}},
		{name: "load restore", tools: load, env: []string{"BIN=" + bin},
			args: []string{"bench/load/run.sh", "restore", "1000"},
			check: func(t *testing.T, out string) {
				want(t, out, `stored 1000 requests`, `requests=1000`,
					`start to serving .* with 1000 stored requests: \d+ ms`, `RSS with 1000 open requests: [1-9]\d* MB`)
			}},
		{name: "load restarts", tools: load, env: []string{"BIN=" + bin},
			args: []string{"bench/load/run.sh", "restarts", "1000", "1", bin, bin},
			check: func(t *testing.T, out string) {
				want(t, out, `stored 1000 requests`,
					`round 1 binary 1 .*: start to serving \d+ ms, CPU \d+ ms, RSS [1-9]\d* MB`,
					`round 1 binary 2 .*: start to serving \d+ ms, CPU \d+ ms, RSS [1-9]\d* MB`)
			}},
		{name: "load offers", tools: load, env: []string{"BIN=" + bin},
			args: []string{"bench/load/run.sh", "offers", "2", "3"},
			check: func(t *testing.T, out string) {
				want(t, out, calls(6), `RTP packets sent [1-9]\d*, late`)
			}},
		{name: "load notify", tools: load,
			args: []string{"bench/load/run.sh", "notify", "100", "3", "-bin", bin, "-warmup", "1s", "-max-time", "60s",
				"-work", "{tmp}", "-sip-port", "{sip}", "-http-port", "{http}", "-base-port", "{uas}"},
			env: []string{"RATE=20"},
			check: func(t *testing.T, out string) {
				m := want(t, out, `cycles: 3 requested, \d+ run, (\d+) valid`)
				if m[0] != nil && m[0][1] == "0" {
					t.Errorf("no valid cycle")
				}
			}},
		{name: "load compare", tools: append(load, "git"),
			args: []string{"bench/load/compare.sh", "HEAD", "HEAD", "20", "3"},
			check: func(t *testing.T, out string) {
				for _, run := range []string{"A", "B", "A again"} {
					want(t, out, `(?m)^=== `+run+`: HEAD \([0-9a-f]+\)\n== callbackd: 60 calls at 20/s.*\n`+calls(60))
				}
			}},
		{name: "flood invite", tools: load, env: []string{"AFTER=2"},
			args: []string{"bench/flood/run.sh", "invite", "200", "3"},
			check: func(t *testing.T, out string) {
				want(t, out, `INVITE flood: sent [1-9]\d*, answered [1-9]\d*`, `legitimate calls: 65 made, 65 successful, 0 failed`,
					`RSS idle [1-9]\d* MB, peak [1-9]\d* MB, end [1-9]\d* MB`)
			}},
		{name: "flood tcp", tools: load, env: []string{"AFTER=2"},
			args: []string{"bench/flood/run.sh", "tcp", "50", "3"},
			check: func(t *testing.T, out string) {
				want(t, out, `TCP flood: 50 connections opened`, `legitimate calls: 65 made, 65 successful, 0 failed`)
			}},
		{name: "media streams",
			args: []string{"go", "run", "./bench/media", "-n", "10", "-d", "1s"},
			check: func(t *testing.T, out string) {
				want(t, out, `(?m)^ +10 +[1-9]\d* +[1-9]\d* +\d+ +[0-9.]+% `)
			}},
		{name: "media relay",
			args: []string{"go", "run", "./bench/media", "-mode", "relay", "-n", "5", "-d", "1s"},
			check: func(t *testing.T, out string) {
				want(t, out, `(?m)^ +5 +[1-9]\d* +[1-9]\d* +0 +[0-9.]+% `)
			}},
	}
	slots := make(chan struct{}, parallel)
	var mu sync.Mutex // ports handed out one block per run
	// From a random block: other checkouts run this test on the same box
	// (fixed blocks from 21000 collided: "address already in use").
	next := 20000 + 100*rand.IntN(200)
	for _, r := range runs {
		t.Run(r.name, func(t *testing.T) {
			for _, tool := range r.tools {
				if _, err := exec.LookPath(tool); err != nil {
					if os.Getenv("CI") != "" {
						t.Fatalf("%s is not installed (.ci/run installs it)", tool)
					}
					t.Skipf("%s is not installed (and CI is not set)", tool)
				}
			}
			t.Parallel()
			mu.Lock()
			base := freeBlock(next)
			next = base + 100
			mu.Unlock()
			slots <- struct{}{}
			defer func() { <-slots }()
			out := runScript(t, root, base, r)
			r.check(t, out)
			if t.Failed() {
				t.Logf("output:\n%s", out)
			}
		})
	}
}

// freeBlock returns the first block of 100 ports from base (wrapping
// within 20000-39999) whose ports a run binds (base, +10, +20 on UDP; +30,
// +31 on TCP) are free now.
func freeBlock(base int) int {
	for range 200 {
		if base >= 40000 {
			base = 20000
		}
		free := true
		for _, p := range []struct {
			network string
			off     int
		}{{"udp", 0}, {"udp", 10}, {"udp", 20}, {"tcp", 30}, {"tcp", 31}, {"tcp", 0}} {
			addr := fmt.Sprintf("127.0.0.1:%d", base+p.off)
			var err error
			if p.network == "udp" {
				var c net.PacketConn
				if c, err = net.ListenPacket("udp", addr); err == nil {
					c.Close()
				}
			} else {
				var l net.Listener
				if l, err = net.Listen("tcp", addr); err == nil {
					l.Close()
				}
			}
			if err != nil {
				free = false
				break
			}
		}
		if free {
			return base
		}
		base += 100
	}
	return base
}

// runScript runs r on its own ports (base..base+99) and returns its
// output; a run that fails or outlasts its bound fails the test. The run is
// a process group of its own, so a timeout stops every process it started.
func runScript(t *testing.T, root string, base int, r smoke) string {
	ports := map[string]string{
		"{sip}": strconv.Itoa(base), "{uas}": strconv.Itoa(base + 10), "{uac}": strconv.Itoa(base + 20),
		"{http}": strconv.Itoa(base + 30), "{debug}": strconv.Itoa(base + 31), "{tmp}": t.TempDir(),
	}
	args := make([]string, len(r.args))
	for i, a := range r.args {
		if v, ok := ports[a]; ok {
			a = v
		}
		args[i] = a
	}
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir = root
	// Overload control off: four smoke runs and the other packages' tests
	// share the box, and a busy moment must not fail a run with 503s.
	cmd.Env = append(os.Environ(), "OVERLOAD_DELAY=0s")
	cmd.Env = append(cmd.Env, r.env...)
	cmd.Env = append(cmd.Env, "SIP_PORT="+ports["{sip}"], "UAS_PORT="+ports["{uas}"], "UAC_PORT="+ports["{uac}"],
		"HTTP_PORT="+ports["{http}"], "DEBUG_PORT="+ports["{debug}"])
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("%v: %.1f s", args, time.Since(start).Seconds())
	if err != nil {
		t.Fatalf("%v: %v\n%s", args, err, out)
	}
	return string(out)
}

// want checks that out matches every pattern; it returns the submatches of
// each (nil for a pattern that did not match).
func want(t *testing.T, out string, patterns ...string) [][]string {
	t.Helper()
	var subs [][]string
	for _, p := range patterns {
		m := regexp.MustCompile(p).FindStringSubmatch(out)
		if m == nil {
			t.Errorf("output does not match %q", p)
		}
		subs = append(subs, m)
	}
	return subs
}
