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
		case 0:
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
	s, err := media.Prompt(locale, name)
	if err != nil {
		t.Fatal(err)
	}
	s = s[:len(s)-len(s)%media.FrameSamples]
	pcm := make([]byte, 2*len(s))
	for i, v := range s {
		bin.LittleEndian.PutUint16(pcm[2*i:], uint16(v))
	}
	return g711.EncodeUlaw(pcm)
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

// mediaLines: A (1001) uses the automatic recall, B and C the defaults.
const mediaLines = `
[[line]]
dn = "1001"
name = "1001"
password = "demo1001"
notification = "auto-recall"
[[line]]
dn = "1002"
name = "1002"
password = "demo1002"
[[line]]
dn = "1003"
name = "1003"
password = "demo1003"
`

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
	s.register(t, "1001", pa)
	s.register(t, "1002", pb)
	s.register(t, "1003", pc)

	// B busy with C; C hangs up when the test says so.
	mark := s.cbMark()
	bBusy := s.cbStart(t, "B (busy with C)", "uas.xml", pb, true, "-m", "1")
	c := s.cbStart(t, "C calls B", "web_uac_hangup_on_info.xml", pc, false, "-m", "1", "-s", "1002", "-set", "caller", "1003")
	s.cbBusy(t, mark, "1002")
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
	inv := recall.received("INVITE")
	if len(inv) != 1 || inv[0].Header("Alert-Info") != alertURN || !strings.Contains(inv[0].Header("From"), "sip:1002@") {
		t.Fatalf("recall INVITEs to A: %d, first Alert-Info %q From %q", len(inv), firstHeader(inv, "Alert-Info"), firstHeader(inv, "From"))
	}
	toA := sdpAddr(t, inv[0].Body())

	// B answers; both talk.
	deadline := time.Now().Add(cbWait)
	var bInv []cbMsg
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
	if m := metricsText(t, s); !strings.Contains(m, `callbackd_callback_recalls_total{result="connected"} 1`) ||
		!strings.Contains(m, `callbackd_callback_offers_total 1`) {
		t.Errorf("/metrics lacks the offer or the connected recall:\n%s", grepLines(m, "callbackd_callback_"))
	}
}

// received183 is the 183 the phone received.
func (p *cbPhone) received183(t *testing.T) cbMsg {
	t.Helper()
	for _, m := range p.messages() {
		if m.Received && strings.HasPrefix(m.Text, "SIP/2.0 183 ") {
			return m
		}
	}
	t.Fatalf("%s received no 183", p.name)
	return cbMsg{}
}

func firstHeader(ms []cbMsg, name string) string {
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
