package interop

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callbackd/callbackd/internal/store/postgres/pgtest"
)

// startDispatcher runs Kamailio (bench/cluster/kamailio.cfg) on
// 127.0.0.1 in front of the instances, stopped by pid at the end, and
// returns once it answers. The returned server stands for the service
// address: the phones' SIPp runs go there.
func startDispatcher(t *testing.T, instances ...*server) *server {
	t.Helper()
	kam := need(t, "kamailio")
	cfg, err := filepath.Abs("../../bench/cluster/kamailio.cfg")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var list strings.Builder
	for _, s := range instances {
		fmt.Fprintf(&list, "1 sip:%s:%d 0 0\n", s.Host, s.SIPPort)
	}
	lf := filepath.Join(dir, "dispatcher.list")
	if err := os.WriteFile(lf, []byte(list.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	front := &server{t: t, Host: "127.0.0.1", SIPPort: freePort(t)}
	cmd := exec.Command(kam, "-DD", "-E", "-f", cfg, "-l", fmt.Sprintf("udp:127.0.0.1:%d", front.SIPPort),
		"-A", fmt.Sprintf("DS_LIST=%q", lf), "-m", "64", "-M", "8", "-w", dir)
	logf, err := os.Create(filepath.Join(dir, "kamailio.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("kamailio log:\n%s", cbTail(string(b), 4000))
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for optionsStatus(t, front.Host, front.SIPPort) == 0 {
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("kamailio does not answer\n%s", b)
		}
	}
	return front
}

// extraLines are lines 2001.. (password demo2001, ...): the callers of
// the dispatcher test, one request each.
func extraLines(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "[[line]]\ndn = \"%d\"\npassword = \"demo%d\"\n", 2000+i, 2000+i)
	}
	return b.String()
}

// activateThrough makes line dn (its device on port) register, call 1002
// (not registered: 480) and dial *39, all through front; it reports
// whether the server confirmed the request (603 CallBack Activated). A
// failure (an instance gone mid-way) is no error: the request is simply
// not confirmed.
func activateThrough(t *testing.T, front *server, dn string, port int) bool {
	t.Helper()
	if r := front.sipp(t, "register.xml", 5*time.Second, "-s", dn, "-au", dn, "-ap", "demo"+dn,
		"-set", "expires", "300", "-p", strconv.Itoa(port), "-m", "1"); r.Code != 0 {
		return false
	}
	if r := front.sipp(t, "uac_unavailable.xml", 5*time.Second, "-s", "1002", "-set", "caller", dn,
		"-p", strconv.Itoa(port), "-m", "1"); r.Code != 0 {
		return false
	}
	p := front.cbStartFor(t, dn+" dials *39", "cb_uac_code.xml", port, false, 5*time.Second,
		"-m", "1", "-s", "*39", "-set", "caller", dn)
	<-p.done
	return p.cmd.ProcessState.ExitCode() == 0 && strings.Contains(p.trace(), "SIP/2.0 603 CallBack Activated")
}

// availableShown matches the log line of an Available screen sent to a
// caller about 1002 (the engine's action, logged at debug).
var availableShown = regexp.MustCompile(`action="(\d+): screen \\"1002 has become available`)

// registerRetrying registers line dn from port through front, trying
// again up to 20 times, a quarter second apart, as a phone does after a
// 503 or no answer.
func registerRetrying(t *testing.T, front *server, dn string, port int) bool {
	for try := 0; try < 20; try++ {
		if r := front.sipp(t, "register.xml", 5*time.Second, "-s", dn, "-au", dn, "-ap", "demo"+dn,
			"-set", "expires", "300", "-p", strconv.Itoa(port), "-m", "1"); r.Code == 0 {
			return true
		}
		time.Sleep(250 * time.Millisecond)
	}
	return false
}

// percentile of sorted durations (nearest rank).
func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	i := int(p*float64(len(d))+0.5) - 1
	return d[max(0, min(i, len(d)-1))]
}

// TestF35_B3_ClusterBehindDispatcher: two instances behind Kamailio's
// dispatcher; SIPp phones keep creating Call Back requests through it
// while the active is killed (SIGKILL) and started again, N times
// (CLUSTER_TAKEOVERS, 2 by default; bench/cluster/run.sh runs 20). Each
// time the standby serves through the dispatcher, and the killed one,
// better placed, takes the lease back by a handover. At the end no
// confirmed request is missing, and B registering notifies each caller
// once. It prints the figures.
func TestF35_B3_ClusterBehindDispatcher(t *testing.T) {
	need(t, "sipp")
	rounds := 2
	if v := os.Getenv("CLUSTER_TAKEOVERS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			t.Fatalf("CLUSTER_TAKEOVERS=%q: want 1-100", v)
		}
		rounds = n
	}
	maxLines := 20*rounds + 10 // bounds the requests created
	url := pgtest.Start(t).NewDB(t)
	port := freePort(t)
	tables := extraLines(maxLines)
	s1 := clusterNodeWith(t, "127.0.0.2", port, "a", 1, url, tables)
	s1.waitActive(t, 0)
	s2 := clusterNodeWith(t, "127.0.0.3", port, "b", 2, url, tables)
	s2.cbWaitLog(t, 0, `msg="cluster: standby`)
	front := startDispatcher(t, s1, s2)
	untilServes(t, front, 10*time.Second)

	// The phones: one request after another, as long as the rounds run.
	var mu sync.Mutex
	var confirmed []string
	tried := 0
	stop := make(chan struct{})
	done := make(chan struct{})
	ports := callPorts(t, maxLines)
	// A phone whose attempt fails (503 while no instance is marked up,
	// 408 when the dead active had it) tries again, as a user would, up
	// to 5 times, a quarter second apart (Retry-After is 1 s).
	go func() {
		defer close(done)
		for i := 1; i <= maxLines; i++ {
			dn := strconv.Itoa(2000 + i)
			for try := 0; try < 5; try++ {
				select {
				case <-stop:
					return
				default:
				}
				ok := activateThrough(t, front, dn, ports[i-1])
				mu.Lock()
				tried++
				if ok {
					confirmed = append(confirmed, dn)
				}
				mu.Unlock()
				if ok {
					break
				}
				time.Sleep(250 * time.Millisecond)
			}
		}
	}()
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(confirmed) }

	var serve []time.Duration
	var bRegistered chan bool
	for r := 0; r < rounds; r++ {
		// Some requests confirmed by this active before it dies.
		for n := count(); count() < n+3; {
			select {
			case <-done:
				t.Fatalf("the phones stopped (%d lines used)", maxLines)
			case <-time.After(20 * time.Millisecond):
			}
		}
		last := r == rounds-1
		if last { // B becomes available during the last takeover: no new request after
			close(stop)
			<-done
		}
		mark1, mark2 := s1.cbMark(), s2.cbMark()
		s1.kill9()
		if last {
			bRegistered = make(chan bool, 1)
			go func() { bRegistered <- registerRetrying(t, front, "1002", callPorts(t, 1)[0]) }()
		}
		serve = append(serve, untilServes(t, front, 15*time.Second))
		s2.waitActive(t, mark2)
		s1.launch() // a standby, then active again by handover (priority 1)
		s2.cbWaitLog(t, mark2, `msg="cluster: restarting as a standby"`)
		s1.waitActive(t, mark1)
		s2.cbWaitLog(t, mark2, `msg="cluster: standby`)
	}
	if !<-bRegistered {
		t.Fatal("B could not register through the dispatcher during the takeover")
	}
	untilServes(t, front, 15*time.Second)

	// Every confirmed request is stored, on the active (s1).
	code, body := s1.api(t, "GET", "/api/v1/callbacks", "")
	if code != 200 {
		t.Fatalf("GET /api/v1/callbacks: %d %s", code, body)
	}
	var stored []struct {
		Caller   string `json:"caller"`
		Callee   string `json:"callee"`
		Notified string `json:"notified"`
	}
	if err := json.Unmarshal([]byte(body), &stored); err != nil {
		t.Fatal(err)
	}
	var callers []string
	for _, r := range stored {
		callers = append(callers, r.Caller)
	}
	var missing []string
	for _, dn := range confirmed {
		if !slices.Contains(callers, dn) {
			missing = append(missing, dn)
		}
	}

	// B registered during the last takeover: every caller is told once
	// (notify-all), by whichever instance was active then. The screens
	// shown, from both instances' logs (kept across their restarts).
	deadline := time.Now().Add(cbWait)
	for {
		code, body := s1.api(t, "GET", "/api/v1/callbacks", "")
		if code == 200 && strings.Count(body, `"notified"`) == len(stored) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	shown := map[string]int{}
	for _, s := range []*server{s1, s2} {
		for _, m := range availableShown.FindAllStringSubmatch(s.Log(), -1) {
			shown[m[1]]++
		}
	}
	notified, twice := 0, 0
	for _, dn := range callers {
		notified += min(shown[dn], 1)
		twice += max(shown[dn]-1, 0)
	}

	slices.Sort(serve)
	fmt.Printf("takeovers by kill -9: %d (each followed by a handover back): serves through the dispatcher after p50 %d ms, max %d ms\n",
		rounds, percentile(serve, 0.5).Milliseconds(), serve[len(serve)-1].Milliseconds())
	fmt.Printf("requests: %d attempts, %d confirmed, %d stored, %d confirmed missing\n", tried, len(confirmed), len(stored), len(missing))
	fmt.Printf("notifications when B registered during the last takeover: %d of %d requests, %d twice\n", notified, len(stored), twice)
	if len(missing) > 0 {
		t.Errorf("confirmed requests missing after the takeovers: %v", missing)
	}
	if notified != len(stored) || twice > 0 {
		t.Errorf("%d of %d requests notified, %d twice; want each once: %v", notified, len(stored), twice, shown)
	}
	if len(confirmed) < rounds {
		t.Errorf("only %d requests confirmed in %d rounds", len(confirmed), rounds)
	}
}
