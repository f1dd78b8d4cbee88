package interop

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// Two callbackd servers joined by trunks that speak call completion (RFC
// 6910): X has lines 1001-1004 and reaches numbers 2xxx through Y; Y has
// lines 2001 and 2002 and reaches 1xxx through X. Both on loopback, each
// the other's trunk at its SIP address.

const yLines = `
[[line]]
dn = "2001"
name = "2001"
password = "demo2001"
[[line]]
dn = "2002"
name = "2002"
password = "demo2002"
`

// ccTrunkTo is a [[trunk]] to the other server at port, with call
// completion, taking numbers that start with prefix.
func ccTrunkTo(name string, port int, prefix string) string {
	return fmt.Sprintf("[[trunk]]\nname = %q\naddress = \"udp:127.0.0.1:%d\"\nprefixes = [%q]\ncall_completion = true\n", name, port, prefix)
}

// twoServers starts Y, then X with its trunk to Y, then points Y's trunk
// at X (Y restarts with its configuration rewritten).
func twoServers(t *testing.T) (x, y *server) {
	t.Helper()
	const unknown = 9 // Y's trunk port until X's is known
	y = startServer(t, "[callback]\nalert_ring = \"0s\"\nannounce = false\n"+ccTrunkTo("srv-x", unknown, "1")+yLines)
	x = startServer(t, "[callback]\nalert_ring = \"0s\"\nannounce = false\n"+ccTrunkTo("srv-y", y.SIPPort, "2")+
		"[[profile]]\nname = \"default\"\ndial_out = \"all\"\n"+demoLines)
	y.stop()
	cfg, err := os.ReadFile(y.Config)
	if err != nil {
		t.Fatal(err)
	}
	cfg = []byte(strings.Replace(string(cfg), fmt.Sprintf("127.0.0.1:%d\"", unknown), fmt.Sprintf("127.0.0.1:%d\"", x.SIPPort), 1))
	if err := os.WriteFile(y.Config, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	y.start()
	return x, y
}

// busyOn makes line dn of s busy: its device on pd answers a call from
// line c (on pc) until caller.hangUp(t, pc).
func busyOn(t *testing.T, s *server, dn string, pd int, c string, pc int) (b, caller *cbPhone) {
	t.Helper()
	mark := s.cbMark()
	b = s.cbStart(t, dn+" (busy with "+c+")", "uas.xml", pd, true, "-m", "1")
	caller = s.cbStart(t, c+" calls "+dn, "web_uac_hangup_on_info.xml", pc, false, "-m", "1", "-s", dn, "-set", "caller", c)
	s.cbWaitLog(t, mark, `msg="line state" dn=`+dn+` from=\S+ to=busy calls=1 `)
	return b, caller
}

// TestF3_B1_CCBSBetweenTwoServers: 1001 on X calls 2001 on Y, busy: 486
// (Y's Call-Info m=BS reaches X). 1001 dials *39: X subscribes at Y (F3,
// B1), Y queues it, X's request turns active on Y's NOTIFY queued. 2001
// hangs up: Y's NOTIFY ready makes X's request available (1001 alerted);
// 1001 dials *39 again (Dial): the CC call goes through the trunk with
// m=BS and rings 2001 with 1001's identity; both servers end the request
// as completed.
func TestF3_B1_CCBSBetweenTwoServers(t *testing.T) {
	need(t, "sipp")
	ports := callPorts(t, 3)
	pa, pb, pc := ports[0], ports[1], ports[2]
	x, y := twoServers(t)
	x.register(t, "1001", pa)
	y.registerAll(t, dev{"2001", pb}, dev{"2002", pc})
	b, c := busyOn(t, y, "2001", pb, "2002", pc)

	x.cbRun(t, "1001 calls 2001 behind Y", "uac_busy.xml", pa, "-s", "2001", "-set", "caller", "1001")
	xm, ym := x.cbMark(), y.cbMark()
	got, _ := x.cbCode(t, "1001", pa, "*39")
	if !strings.HasPrefix(got, "603 ") {
		t.Fatalf("1001 dials *39: %q, want 603", got)
	}
	y.cbWaitLog(t, ym, `msg="call completion request queued" trunk=srv-x caller=1001 callee=2001 kind=CCBS`)
	x.cbWaitLog(t, xm, `action="persist #1 1001->2001 CCBS active via srv-y"`)

	c.hangUp(t, pc)
	b.pass(t)
	x.cbWaitLog(t, xm, `action="persist #1 1001->2001 CCBS available via srv-y"`)

	b2 := y.cbStart(t, "2001 answers the call back", "cb_uas_callback.xml", pb, true, "-m", "1")
	a := x.cbRun(t, "1001 presses Dial (*39)", "uac.xml", pa, "-s", "*39", "-set", "caller", "1001", "-d", "300")
	b2.pass(t)
	invs := b2.received("INVITE")
	if len(invs) != 1 || !strings.Contains(invs[0].Header("From"), "sip:1001@") {
		t.Fatalf("2001's device got %d INVITEs (From %q), want the call back from 1001", len(invs), firstHeader(invs, "From"))
	}
	if got, _ := a.final(t); got != "200 OK" {
		t.Errorf("1001's Dial: final response %q, want 200 OK", got)
	}
	x.cbWaitLog(t, xm, `msg="call back ended" id=1 reason=completed`)
	y.cbWaitLog(t, ym, `msg="call back ended" id=1 reason=completed`)
}
