package interop

// Media end to end (F28, F29): SIPp plays the phones' signalling and the
// test plays their RTP, each phone's SDP pointing at one of the test's UDP
// sockets (-key rtpport). The test checks what a caller hears byte for
// byte: the announcement's RTP payloads are the PCMU encoding of the
// prompt file (encoded here with zaf/g711, independently of the server),
// and its key press is RFC 4733 telephone-event packets.

import (
	"bytes"
	bin "encoding/binary"
	"fmt"
	"math"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/zaf/g711"

	"github.com/callbackd/callbackd/internal/media"
	"github.com/callbackd/callbackd/test/sipptrace"
)

// rtpPeer is the media side of a test phone: it records the PCMU payloads
// it receives, by source SSRC, and sends audio or key presses.
type rtpPeer struct {
	conn *net.UDPConn
	ssrc uint32

	mu     sync.Mutex
	pkts   []rtp.Packet // audio received, in arrival order
	events int          // telephone-event packets received
	src    netip.AddrPort
}

func newRTPPeer(t *testing.T, ssrc uint32) *rtpPeer {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	p := &rtpPeer{conn: conn, ssrc: ssrc}
	t.Cleanup(func() { conn.Close() })
	go p.read()
	return p
}

func (p *rtpPeer) port() int { return p.conn.LocalAddr().(*net.UDPAddr).Port }

func (p *rtpPeer) read() {
	buf := make([]byte, 1500)
	for { // ends when the socket is closed at cleanup
		n, src, err := p.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		var pkt rtp.Packet
		if pkt.Unmarshal(buf[:n]) != nil {
			continue
		}
		p.mu.Lock()
		p.src = src
		switch pkt.PayloadType {
		case 0, 8: // PCMU, PCMA
			pkt.Payload = bytes.Clone(pkt.Payload)
			p.pkts = append(p.pkts, pkt)
		case 101:
			p.events++
		}
		p.mu.Unlock()
	}
}

// mark is a position in the received packets.
func (p *rtpPeer) mark() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.pkts)
}

// heard is the payload bytes received since mark from ssrc (0: any but our
// own), in sequence order as they arrived.
func (p *rtpPeer) heard(mark int, ssrc uint32) []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b []byte
	for _, pkt := range p.pkts[mark:] {
		if (ssrc == 0 && pkt.SSRC != p.ssrc) || pkt.SSRC == ssrc {
			b = append(b, pkt.Payload...)
		}
	}
	return b
}

// count is the number of audio packets from ssrc since mark.
func (p *rtpPeer) count(mark int, ssrc uint32) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, pkt := range p.pkts[mark:] {
		if pkt.SSRC == ssrc {
			n++
		}
	}
	return n
}

func (p *rtpPeer) source() netip.AddrPort {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.src
}

// waitHeard waits until the payloads since mark contain want.
func (p *rtpPeer) waitHeard(t *testing.T, mark int, want []byte, d time.Duration, what string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !bytes.Contains(p.heard(mark, 0), want) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not heard within %v (%d bytes of audio received since)", what, d, len(p.heard(mark, 0)))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// digit sends a key press as RFC 4733 events to to: start, updates and
// three end packets, 20 ms apart (section 2.5.1).
func (p *rtpPeer) digit(t *testing.T, to netip.AddrPort, d rune) {
	t.Helper()
	code, _ := media.EventCode(d)
	ts := uint32(1000)
	for i, ev := range media.DigitEvents(code, 100*time.Millisecond, 20*time.Millisecond, 10) {
		pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 101, SequenceNumber: uint16(100 + i),
			Timestamp: ts, SSRC: p.ssrc, Marker: i == 0}, Payload: ev.Marshal(nil)}
		b, _ := pkt.Marshal()
		if _, err := p.conn.WriteToUDPAddrPort(b, to); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// talk sends n frames of a 440 Hz PCMU tone to to, one every 20 ms.
func (p *rtpPeer) talk(to netip.AddrPort, n int) {
	pcm := make([]byte, 2*media.FrameSamples)
	for i := range media.FrameSamples {
		v := int16(8000 * math.Sin(2*math.Pi*440*float64(i)/media.SampleRate))
		bin.LittleEndian.PutUint16(pcm[2*i:], uint16(v))
	}
	payload := g711.EncodeUlaw(pcm)
	for i := range n {
		pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: uint16(i),
			Timestamp: uint32(i * media.FrameSamples), SSRC: p.ssrc}, Payload: payload}
		b, _ := pkt.Marshal()
		p.conn.WriteToUDPAddrPort(b, to)
		time.Sleep(20 * time.Millisecond)
	}
}

// pcmuPrompt is the PCMU encoding of a prompt's whole 20 ms frames, as a
// phone must receive it.
func pcmuPrompt(t *testing.T, locale, name string) []byte {
	t.Helper()
	return g711.EncodeUlaw(promptPCM(t, locale, name))
}

// pcmaPrompt is pcmuPrompt for PCMA.
func pcmaPrompt(t *testing.T, locale, name string) []byte {
	t.Helper()
	return g711.EncodeAlaw(promptPCM(t, locale, name))
}

// promptPCM is a prompt's whole 20 ms frames as 16-bit little-endian PCM.
func promptPCM(t *testing.T, locale, name string) []byte {
	t.Helper()
	s, err := media.Prompt(locale, name)
	if err != nil {
		t.Fatal(err)
	}
	s = s[:len(s)-len(s)%media.FrameSamples]
	pcm := make([]byte, 2*len(s))
	for i, v := range s {
		bin.LittleEndian.PutUint16(pcm[2*i:], uint16(v))
	}
	return pcm
}

// goertzel is the power of frequency f in 8 kHz samples x.
func goertzel(x []float64, f float64) float64 {
	c := 2 * math.Cos(2*math.Pi*f/media.SampleRate)
	var s1, s2 float64
	for _, v := range x {
		s1, s2 = v+c*s1-s2, s1
	}
	return s1*s1 + s2*s2 - c*s1*s2
}

// toneFrames decodes PCMU into 20 ms frames of samples.
func toneFrames(pcmu []byte) [][]float64 {
	pcm := g711.DecodeUlaw(pcmu)
	var frames [][]float64
	for off := 0; off+2*media.FrameSamples <= len(pcm); off += 2 * media.FrameSamples {
		f := make([]float64, media.FrameSamples)
		for i := range f {
			f[i] = float64(int16(bin.LittleEndian.Uint16(pcm[off+2*i:])))
		}
		frames = append(frames, f)
	}
	return frames
}

// rms is the loudness of PCMU bytes (of 32767).
func rms(pcmu []byte) float64 {
	pcm := g711.DecodeUlaw(pcmu)
	var sum float64
	for i := 0; i+1 < len(pcm); i += 2 {
		v := float64(int16(bin.LittleEndian.Uint16(pcm[i:])))
		sum += v * v
	}
	return math.Sqrt(sum / float64(len(pcm)/2))
}

// sdpAddr is the RTP address of an SDP body (c= and m=audio).
func sdpAddr(t *testing.T, body string) netip.AddrPort {
	t.Helper()
	c := regexp.MustCompile(`(?m)^c=IN IP4 (\S+)`).FindStringSubmatch(body)
	m := regexp.MustCompile(`(?m)^m=audio (\d+) `).FindStringSubmatch(body)
	if c == nil || m == nil {
		t.Fatalf("no audio address in SDP:\n%s", body)
	}
	port, _ := strconv.Atoi(m[1])
	return netip.AddrPortFrom(netip.MustParseAddr(c[1]), uint16(port))
}

// mediaLines: A (1001) uses the automatic recall, the others the defaults.
var mediaLines = demoLinesWith("1001", "notification = \"auto-recall\"\n")

// TestF28_F29_AnnouncementDTMFAutoRecall: B (1002) is busy with C. A (1001,
// auto-recall) calls B and gets 183 with the server's SDP; over RTP A hears
// the English busy offer, exactly the prompt's samples; A presses 5 (RFC
// 4733) and hears "call back is activated", then the call fails 486. C
// hangs up: A's phone rings with the recall Alert-Info and the server's
// offer; A answers and hears "... available, connecting"; B's phone rings
// with A's number and the server's offer and answers; A's and B's audio
// then flow both ways through the server; B hangs up and A gets BYE.
func TestF28_F29_AnnouncementDTMFAutoRecall(t *testing.T) {
	need(t, "sipp")
	ports := callPorts(t, 4)
	pa, pb, pb2, pc := ports[0], ports[1], ports[2], ports[3]
	s := startServer(t, "[callback]\nalert_file = \"callback_alert\"\n"+mediaLines)
	rtpA, rtpB := newRTPPeer(t, 0xA), newRTPPeer(t, 0xB)
	s.registerAll(t, dev{"1001", pa}, dev{"1002", pb}, dev{"1003", pc})

	// B busy with C; C hangs up when the test says so.
	mark := s.cbMark()
	bBusy, c := s.cbBusyBUntil(t, pb, "1003", pc)
	// B's second device, registered once busy, answers the call back.
	s.register(t, "1002", pb2)
	b2 := s.cbStart(t, "B's second phone", "media_uas_hangs_up.xml", pb2, true, "-m", "1", "-d", "3000",
		"-key", "rtpport", fmt.Sprint(rtpB.port()))

	// F28: the offer.
	busyOffer := pcmuPrompt(t, "en", media.PromptBusyOffer)
	a := s.cbStart(t, "A calls busy B", "media_uac_offer.xml", pa, false, "-m", "1", "-s", "1002", "-set", "caller", "1001",
		"-key", "rtpport", fmt.Sprint(rtpA.port()))
	rtpA.waitHeard(t, 0, busyOffer, 20*time.Second, "the busy offer announcement")
	early := sdpAddr(t, a.received183(t).Body())
	if src := rtpA.source(); src != early {
		t.Fatalf("the announcement comes from %s, the 183's SDP says %s", src, early)
	}
	heard := rtpA.heard(0, 0)
	if loud := rms(busyOffer); loud < 500 {
		t.Fatalf("the prompt is nearly silent (RMS %.0f)", loud)
	}
	t.Logf("announcement: %d ms of audio before the prompt ended, prompt %d ms, RMS %.0f",
		len(heard)/8, len(busyOffer)/8, rms(busyOffer))
	mark = s.cbMark()
	afterKey := rtpA.mark()
	rtpA.digit(t, early, '5')
	rtpA.waitHeard(t, afterKey, pcmuPrompt(t, "en", media.PromptActivated), 15*time.Second, "the activation prompt")
	s.cbWaitLog(t, mark, `action="persist #1 1001->1002 CCBS active auto-recall`)
	a.pass(t) // 486 after the confirmation
	if got, _ := a.final(t); got != "486 Busy Here" {
		t.Fatalf("A's call after the offer: %q, want 486 Busy Here", got)
	}

	// F29: B frees; the recall.
	recall := s.cbStart(t, "A takes the recall", "media_uas_recall.xml", pa, true, "-m", "2",
		"-key", "rtpport", fmt.Sprint(rtpA.port()))
	beforeRecall := rtpA.mark()
	c.hangUp(t, pc)
	bBusy.pass(t)
	rtpA.waitHeard(t, beforeRecall, pcmuPrompt(t, "en", media.PromptConnecting), 20*time.Second, "the connecting prompt")
	// F32: the alert sound (alert_file) came first.
	if recalled := rtpA.heard(beforeRecall, 0); !bytes.Contains(recalled, pcmuPrompt(t, "en", media.PromptCallbackAlert)) ||
		bytes.Index(recalled, pcmuPrompt(t, "en", media.PromptCallbackAlert)) > bytes.Index(recalled, pcmuPrompt(t, "en", media.PromptConnecting)) {
		t.Fatal("the recall did not play the alert sound (alert_file) before the connecting prompt")
	}
	inv := recall.received("INVITE")
	if len(inv) != 1 || inv[0].Header("Alert-Info") != alertURN || !strings.Contains(inv[0].Header("From"), "sip:1002@") {
		t.Fatalf("recall INVITEs to A: %d, first Alert-Info %q From %q", len(inv), firstHeader(inv, "Alert-Info"), firstHeader(inv, "From"))
	}
	toA := sdpAddr(t, inv[0].Body())

	// B answers; both talk.
	deadline := time.Now().Add(cbWait)
	var bInv []sipptrace.Message
	for bInv = b2.received("INVITE"); len(bInv) == 0 || len(b2.received("ACK")) == 0; bInv = b2.received("INVITE") {
		if time.Now().After(deadline) {
			t.Fatal("B's second phone was not called and connected")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if from := bInv[0].Header("From"); !strings.Contains(from, "sip:1001@") {
		t.Errorf("B rings with From %q, want A's number", from)
	}
	toB := sdpAddr(t, bInv[0].Body())
	markA, markB := rtpA.mark(), rtpB.mark()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); rtpA.talk(toA, 50) }()
	go func() { defer wg.Done(); rtpB.talk(toB, 50) }()
	wg.Wait()
	deadline = time.Now().Add(2 * time.Second)
	for rtpB.count(markB, 0xA) < 50 || rtpA.count(markA, 0xB) < 50 {
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	aToB, bToA := rtpB.count(markB, 0xA), rtpA.count(markA, 0xB)
	t.Logf("relayed: A->B %d packets, B->A %d packets (50 sent each way)", aToB, bToA)
	if aToB < 45 || bToA < 45 {
		t.Fatalf("relayed packets A->B %d, B->A %d; want nearly all of 50 each way", aToB, bToA)
	}
	b2.pass(t)     // B hangs up
	recall.pass(t) // A gets BYE (and its screen)
	m := metricsText(t, s)
	if !strings.Contains(m, `callbackd_callback_recalls_total{result="connected"} 1`) ||
		!strings.Contains(m, `callbackd_callback_offers_total 1`) {
		t.Errorf("/metrics lacks the offer or the connected recall:\n%s", grepLines(m, "callbackd_callback_"))
	}
	// The server's own streams (offer, recall) are counted when they end:
	// more than the 4.8 s prompt's 240 packets.
	if sent := regexp.MustCompile(`(?m)^callbackd_rtp_packets_sent_total (\d+)`).FindStringSubmatch(m); sent == nil || len(sent[1]) < 3 {
		t.Errorf("/metrics: RTP packets sent %v, want hundreds:\n%s", sent, grepLines(m, "callbackd_rtp_"))
	}
}

// received183 is the 183 the phone received.
func (p *cbPhone) received183(t *testing.T) sipptrace.Message {
	t.Helper()
	for _, m := range p.messages() {
		if m.Received && strings.HasPrefix(m.Text, "SIP/2.0 183 ") {
			return m
		}
	}
	t.Fatalf("%s received no 183", p.name)
	return sipptrace.Message{}
}

func firstHeader(ms []sipptrace.Message, name string) string {
	if len(ms) == 0 {
		return ""
	}
	return ms[0].Header(name)
}

func grepLines(text, prefix string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestF28_F31_F34_LoggedOutGermanINFOThenBusyTone: A (1003, German) calls
// 1004, which is not logged in, offering only PCMA: 183, and A hears the
// German "not available, press 5" prompt in PCMA; A presses 5 by SIP INFO
// (dtmf-relay) and hears the German confirmation; the call fails 480 and
// the CCNL request is stored. Then CC_BUSY_TONE is switched on through
// the API (F31, live): 1001 (English) calls busy B and hears the US busy
// tone (480+620 Hz, 0.5 s on, 0.5 s off) instead of the announcement, and
// 5 over RTP still asks for the call back.
func TestF28_F31_F34_LoggedOutGermanINFOThenBusyTone(t *testing.T) {
	need(t, "sipp")
	ports := callPorts(t, 4)
	pa, pb, pc, pd := ports[0], ports[1], ports[2], ports[3]
	s := startServer(t, `
[[line]]
dn = "1001"
password = "demo1001"
[[line]]
dn = "1002"
password = "demo1002"
[[line]]
dn = "1003"
password = "demo1003"
locale = "de"
[[line]]
dn = "1004"
password = "demo1004"
[[line]]
dn = "1005"
password = "demo1005"
`)
	rtp := newRTPPeer(t, 0xA)
	s.registerAll(t, dev{"1001", pa}, dev{"1002", pb}, dev{"1003", pc}, dev{"1005", pd})

	mark := s.cbMark()
	a := s.cbStart(t, "1003 calls 1004 (not logged in)", "media_uac_offer_info.xml", pc, false, "-m", "1", "-s", "1004",
		"-set", "caller", "1003", "-key", "rtpport", fmt.Sprint(rtp.port()))
	rtp.waitHeard(t, 0, pcmaPrompt(t, "de", media.PromptLoggedOutOffer), 20*time.Second, "the German offer (not logged in), PCMA")
	afterKey := rtp.mark()
	a.poke(t, pc) // A presses 5: INFO to the server
	rtp.waitHeard(t, afterKey, pcmaPrompt(t, "de", media.PromptActivated), 15*time.Second, "the German activation prompt")
	a.pass(t)
	s.cbWaitLog(t, mark, `action="persist #1 1003->1004 CCNL active`)
	if infos := a.messages(); !hasResponse(infos, "INFO", 200) {
		t.Fatal("the server did not answer A's INFO with 200")
	}

	if code, body := s.api(t, "PUT", "/api/v1/params", `{"busy_tone":true}`); code != 200 || !strings.Contains(body, `"busy_tone": true`) {
		t.Fatalf("PUT busy_tone: %d %s", code, body)
	}
	mark = s.cbMark()
	bBusy, c := s.cbBusyBUntil(t, pb, "1005", pd)
	start := rtp.mark()
	a = s.cbStart(t, "1001 calls busy B", "media_uac_offer.xml", pa, false, "-m", "1", "-s", "1002", "-set", "caller", "1001",
		"-key", "rtpport", fmt.Sprint(rtp.port()))
	deadline := time.Now().Add(cbWait)
	for rtp.count(start, rtp.peerSSRC(start)) < 200 { // 4 s of tone
		if time.Now().After(deadline) {
			t.Fatalf("busy tone: %d packets within %v", rtp.count(start, rtp.peerSSRC(start)), cbWait)
		}
		time.Sleep(20 * time.Millisecond)
	}
	frames := toneFrames(rtp.heard(start, 0))[:200]
	var on, runs []int
	run := 0
	for i, f := range frames {
		total := goertzel(f, 480) + goertzel(f, 620)
		if total > 20*(goertzel(f, 1000)+goertzel(f, 350)) && total > 1e9 {
			on = append(on, i)
			run++
		} else if run > 0 {
			runs = append(runs, run)
			run = 0
		}
	}
	t.Logf("busy tone: %d of %d frames sound 480+620 Hz, runs %v", len(on), len(frames), runs)
	if len(on) < 80 || len(on) > 120 {
		t.Fatalf("busy tone: %d of %d frames at 480+620 Hz, want about half (0.5 s on, 0.5 s off)", len(on), len(frames))
	}
	if len(runs) < 3 {
		t.Fatalf("busy tone bursts %v in 4 s, want 4", runs)
	}
	for _, r := range runs[1 : len(runs)-1] { // whole bursts only
		if r < 23 || r > 27 {
			t.Fatalf("busy tone bursts %v frames, want 25 (0.5 s)", runs)
		}
	}
	if bytes.Contains(rtp.heard(start, 0), pcmuPrompt(t, "en", media.PromptBusyOffer)[:1600]) {
		t.Fatal("the announcement played although busy_tone is on")
	}
	afterKey = rtp.mark()
	rtp.digit(t, rtp.source(), '5')
	rtp.waitHeard(t, afterKey, pcmuPrompt(t, "en", media.PromptActivated), 15*time.Second, "the activation prompt after the busy tone")
	a.pass(t)
	c.hangUp(t, pd)
	bBusy.pass(t)
}

// peerSSRC is the SSRC of the first packet received since mark (0: none).
func (p *rtpPeer) peerSSRC(mark int) uint32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.pkts) > mark {
		return p.pkts[mark].SSRC
	}
	return 0
}

// hasResponse reports whether ms has a response code to method.
func hasResponse(ms []sipptrace.Message, method string, code int) bool {
	for _, m := range ms {
		if strings.HasPrefix(m.Text, fmt.Sprintf("SIP/2.0 %d ", code)) && strings.HasSuffix(m.Header("CSeq"), " "+method) {
			return true
		}
	}
	return false
}

// TestF30_TrunkExternalCallerAndForward: a trunk (SIPp at its address)
// takes numbers starting with 0. Out: 1003 forwards all calls to 0301234,
// so A's call to 1003 goes out through the trunk. In, with CC_EXTERNAL: an
// outside caller, 0301234, reaches busy B through the trunk, hears the
// offer, presses 5 and hears the confirmation; when B frees the server
// recalls 0301234 through the trunk, and connects it to B.
func TestF30_TrunkExternalCallerAndForward(t *testing.T) {
	need(t, "sipp")
	ports := callPorts(t, 6)
	pa, pb, pb2, pc, pd, pt := ports[0], ports[1], ports[2], ports[3], ports[4], ports[5]
	s := startServer(t, fmt.Sprintf(`[callback]
external = true
alert_ring = "0s"
[[trunk]]
name = "pstn"
address = "udp:127.0.0.1:%d"
prefixes = ["0"]
[[profile]]
name = "default"
dial_out = "all"
`, pt)+demoLinesWith("1003", "forward_all = \"0301234\"\n"))
	rtpX, rtpB := newRTPPeer(t, 0xC), newRTPPeer(t, 0xB)
	s.registerAll(t, dev{"1001", pa}, dev{"1002", pb}, dev{"1003", pc}, dev{"1004", pd})

	// Out: 1003 forwards all calls to an external number; 1004 does the
	// same from its phone.
	got, _ := s.cbCode(t, "1004", pd, "*210301234")
	expectStatus(t, "1004 dials *210301234", got, "603 Forward All To 0301234")
	trunk := s.cbStart(t, "the trunk answers 0301234", "uas.xml", pt, true, "-m", "1")
	s.cbRun(t, "A calls 1003", "uac.xml", pa, "-s", "1003", "-set", "caller", "1001", "-d", "200")
	trunk.pass(t)
	inv := trunk.received("INVITE")
	if len(inv) != 1 || !strings.HasPrefix(inv[0].StartLine(), "INVITE sip:0301234@") || !strings.Contains(inv[0].Header("From"), "sip:1001@") {
		t.Fatalf("the trunk got %d INVITEs (%q), want A's call to sip:0301234@...", len(inv), firstHeader(inv, "From"))
	}

	// In: an outside caller (CC_EXTERNAL), the offer, the recall.
	mark := s.cbMark()
	bBusy, c := s.cbBusyBUntil(t, pb, "1004", pd)
	s.register(t, "1002", pb2)
	b2 := s.cbStart(t, "B's second phone", "media_uas_hangs_up.xml", pb2, true, "-m", "1", "-d", "1000",
		"-key", "rtpport", fmt.Sprint(rtpB.port()))
	x := s.cbStart(t, "0301234 calls B through the trunk", "media_uac_offer_trunk.xml", pt, false, "-m", "1", "-s", "1002",
		"-set", "caller", "0301234", "-key", "rtpport", fmt.Sprint(rtpX.port()))
	rtpX.waitHeard(t, 0, pcmuPrompt(t, "en", media.PromptBusyOffer), 20*time.Second, "the offer to the outside caller")
	afterKey := rtpX.mark()
	rtpX.digit(t, rtpX.source(), '5')
	rtpX.waitHeard(t, afterKey, pcmuPrompt(t, "en", media.PromptActivated), 15*time.Second, "the activation prompt")
	x.pass(t)
	s.cbWaitLog(t, mark, `action="persist #1 0301234->1002 CCBS active auto-recall`)

	recall := s.cbStart(t, "the trunk takes the recall", "media_uas_recall.xml", pt, true, "-m", "1",
		"-key", "rtpport", fmt.Sprint(rtpX.port()))
	beforeRecall := rtpX.mark()
	c.hangUp(t, pd)
	bBusy.pass(t)
	rtpX.waitHeard(t, beforeRecall, pcmuPrompt(t, "en", media.PromptConnecting), 20*time.Second, "the connecting prompt")
	rec := recall.received("INVITE")
	if len(rec) != 1 || !strings.HasPrefix(rec[0].StartLine(), "INVITE sip:0301234@") || rec[0].Header("Alert-Info") != alertURN {
		t.Fatalf("recall through the trunk: %d INVITEs, want one to sip:0301234@ with the recall Alert-Info", len(rec))
	}
	b2.pass(t)     // B answered, then hung up
	recall.pass(t) // the trunk got the BYE
}

// TestF25_ResetWhileTheConfirmationPlays: A presses 5 in the offer and,
// while the confirmation still plays, one of A's devices restarts
// (registers again with a new Call-ID): the call back is cancelled (F25,
// reset between pressing CallBack and the confirmation), and when B frees
// A is neither recalled nor told.
func TestF25_ResetWhileTheConfirmationPlays(t *testing.T) {
	need(t, "sipp")
	ports := callPorts(t, 4)
	pa, pa2, pb, pc := ports[0], ports[1], ports[2], ports[3]
	s := startServer(t, "[callback]\nalert_ring = \"0s\"\n"+mediaLines)
	rtpA := newRTPPeer(t, 0xA)
	s.registerAll(t, dev{"1001", pa}, dev{"1001", pa2}, dev{"1002", pb}, dev{"1003", pc})
	mark := s.cbMark()
	bBusy, c := s.cbBusyBUntil(t, pb, "1003", pc)
	a := s.cbStart(t, "A calls busy B", "media_uac_offer.xml", pa, false, "-m", "1", "-s", "1002", "-set", "caller", "1001",
		"-key", "rtpport", fmt.Sprint(rtpA.port()))
	rtpA.waitHeard(t, 0, pcmuPrompt(t, "en", media.PromptBusyOffer), 20*time.Second, "the busy offer")
	afterKey := rtpA.mark()
	rtpA.digit(t, rtpA.source(), '5')
	s.cbWaitLog(t, mark, `action="persist #1 1001->1002 CCBS active`)
	s.register(t, "1001", pa2) // A's second phone restarts
	s.cbWaitLog(t, mark, `msg="call back ended" id=1 reason=reset`)
	if bytes.Contains(rtpA.heard(afterKey, 0), pcmuPrompt(t, "en", media.PromptActivated)) {
		t.Fatal("the whole confirmation played before the reset: the test did not reset in time")
	}
	a.pass(t)
	mark = s.cbMark()
	c.hangUp(t, pc)
	bBusy.pass(t)
	s.cbWaitLog(t, mark, `msg="line state" dn=1002 from=busy to=idle`)
	if log := s.cbLogSince(mark); strings.Contains(log, "recall") || strings.Contains(log, "has become available") {
		t.Fatalf("A was recalled or told after its reset:\n%s", grepLines(log, "time="))
	}
}

// TestB3_F29_RecallRingsAgainAfterKill9: A (auto-recall) waits on busy B;
// B frees and A's phone rings with the recall; the server is killed with
// SIGKILL while it rings and restarted: A's phone rings again with the
// recall (a new INVITE), for the rest of the wait.
func TestB3_F29_RecallRingsAgainAfterKill9(t *testing.T) {
	need(t, "sipp")
	ports := callPorts(t, 4)
	pa, pa2, pb, pc := ports[0], ports[1], ports[2], ports[3]
	s := startServer(t, "[callback]\nannounce = false\nwait_time = \"20s\"\n"+mediaLines)
	s.registerAll(t, dev{"1001", pa}, dev{"1001", pa2}, dev{"1002", pb}, dev{"1003", pc})
	phone := s.cbStart(t, "A's phone", "display.xml", pa, true, "-m", "10")
	b, c := s.cbBusyB(t, pb, "1003", pc, true)
	s.cbActivateCCBS(t, "1001", pa2)
	b.pass(t)
	c.pass(t)
	recalls := func() []sipptrace.Message {
		var out []sipptrace.Message
		for _, m := range phone.received("INVITE") {
			if m.Header("Alert-Info") == alertURN {
				out = append(out, m)
			}
		}
		return out
	}
	waitFor(t, "the recall rings A", func() bool { return len(recalls()) == 1 })
	s.kill9()
	s.restart()
	waitFor(t, "the recall rings A again after the restart", func() bool { return len(recalls()) == 2 })
	r := recalls()
	if r[0].Header("Call-ID") == r[1].Header("Call-ID") || !strings.Contains(r[1].Header("From"), "sip:1002@") {
		t.Fatalf("second recall: Call-ID %q (first %q), From %q: want a new INVITE from B's number",
			r[1].Header("Call-ID"), r[0].Header("Call-ID"), r[1].Header("From"))
	}
}

// TestF29_NewOfferDuringTheRecall: A's phone, answering the automatic
// recall, makes new offers while only the server is on the line: G.729
// only is refused 488 with Warning 305 and the session stays; PCMU is
// answered 200 with PCMU by the server's media. A then hangs up before B
// is called: the recall ends there.
func TestF29_NewOfferDuringTheRecall(t *testing.T) {
	need(t, "sipp")
	ports := callPorts(t, 4)
	pa, pa2, pb, pc := ports[0], ports[1], ports[2], ports[3]
	s := startServer(t, "[callback]\nannounce = false\n"+mediaLines)
	rtpA := newRTPPeer(t, 0xA)
	s.registerAll(t, dev{"1001", pa}, dev{"1001", pa2}, dev{"1002", pb}, dev{"1003", pc})
	a := s.cbStart(t, "A takes the recall and offers again", "media_uas_recall_reoffer.xml", pa, true, "-m", "2",
		"-key", "rtpport", fmt.Sprint(rtpA.port()))
	b, c := s.cbBusyB(t, pb, "1003", pc, true)
	s.cbActivateCCBS(t, "1001", pa2)
	mark := s.cbMark()
	b.pass(t)
	c.pass(t)
	a.pass(t)
	s.cbWaitLog(t, mark, `msg="automatic recall not connected" .*error="recall: the caller hung up"`)
}
