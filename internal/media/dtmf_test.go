package media

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"
)

func TestEventMarshalDecode(t *testing.T) {
	e := Event{Code: 5, End: true, Volume: 10, Duration: 1280}
	b := e.Marshal(nil)
	if !slices.Equal(b, []byte{5, 0x8a, 0x05, 0x00}) {
		t.Fatalf("marshal = % x", b)
	}
	got, err := DecodeEvent(b)
	if err != nil || got != e {
		t.Fatalf("decode = %+v, %v", got, err)
	}
	// The reserved bit is ignored (RFC 4733 section 2.3.3).
	got, _ = DecodeEvent([]byte{11, 0x40 | 7, 0, 160})
	if got != (Event{Code: 11, Volume: 7, Duration: 160}) {
		t.Fatalf("R bit: %+v", got)
	}
	if _, err := DecodeEvent([]byte{1, 2, 3}); !errors.Is(err, ErrShortEvent) {
		t.Fatalf("short: %v", err)
	}
}

func TestEventCodes(t *testing.T) {
	for i, r := range "0123456789*#ABCD" {
		c, ok := EventCode(r)
		if !ok || int(c) != i {
			t.Errorf("EventCode(%q) = %d", r, c)
		}
		if back, ok := EventDigit(c); !ok || back != r {
			t.Errorf("EventDigit(%d) = %q", c, back)
		}
	}
	if c, ok := EventCode('b'); !ok || c != 13 {
		t.Error("lower case")
	}
	if _, ok := EventCode('x'); ok {
		t.Error("x accepted")
	}
	if r, ok := EventDigit(16); !ok || r != '!' {
		t.Error("flash")
	}
	if _, ok := EventDigit(17); ok {
		t.Error("17 accepted")
	}
}

func TestDigitEvents(t *testing.T) {
	evs := DigitEvents(5, 100*time.Millisecond, 20*time.Millisecond, 10)
	// 800 samples at 160 per packet: 160..640 in progress, then 3 ends.
	var durs []uint16
	for _, e := range evs {
		if e.Code != 5 || e.Volume != 10 {
			t.Fatalf("event %+v", e)
		}
		durs = append(durs, e.Duration)
	}
	if want := []uint16{160, 320, 480, 640, 800, 800, 800}; !slices.Equal(durs, want) {
		t.Fatalf("durations %v, want %v", durs, want)
	}
	for i, e := range evs {
		if e.End != (i >= 4) {
			t.Fatalf("packet %d end=%v", i, e.End)
		}
	}
	// A press shorter than an interval: only the three ends.
	if evs := DigitEvents(1, 10*time.Millisecond, 0, 0); len(evs) != 3 || !evs[0].End || evs[0].Duration != 80 {
		t.Fatalf("short press %+v", evs)
	}
	// Longer than 8 s is clipped to the 16-bit duration field.
	if evs := DigitEvents(1, 10*time.Second, 50*time.Millisecond, 0); evs[len(evs)-1].Duration != 0xffff {
		t.Fatalf("clip %+v", evs[len(evs)-1])
	}
}

// eventPackets builds the RTP packets of one press at timestamp ts.
func eventPackets(pt uint8, seq uint16, ts uint32, evs []Event) []*rtp.Packet {
	var ps []*rtp.Packet
	for i, e := range evs {
		ps = append(ps, &rtp.Packet{
			Header:  rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: seq + uint16(i), Timestamp: ts, Marker: i == 0},
			Payload: e.Marshal(nil),
		})
	}
	return ps
}

func decodeAll(t *testing.T, d *DTMFDecoder, ps []*rtp.Packet) []Digit {
	t.Helper()
	var out []Digit
	for _, p := range ps {
		dg, ok, err := d.Decode(p)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if ok {
			out = append(out, dg)
		}
	}
	return out
}

func TestDTMFDecoder(t *testing.T) {
	press := func(code uint8) []Event { return DigitEvents(code, 120*time.Millisecond, 20*time.Millisecond, 10) }
	tests := []struct {
		name string
		ps   []*rtp.Packet
		want string
		end  []bool
	}{
		{"one press", eventPackets(101, 1, 1000, press(5)), "5", []bool{false}},
		{"lost start", eventPackets(101, 3, 1000, press(5)[2:]), "5", []bool{false}},
		{"end only", eventPackets(101, 7, 1000, press(9)[len(press(9))-1:]), "9", []bool{true}},
		{
			"same key twice",
			append(eventPackets(101, 1, 1000, press(5)), eventPackets(101, 20, 5000, press(5))...),
			"55", nil,
		},
		{
			"late end retransmission of the first press",
			append(append(eventPackets(101, 1, 1000, press(1)[:2]), eventPackets(101, 20, 5000, press(2))...),
				eventPackets(101, 3, 1000, press(1)[2:])...),
			"12", nil,
		},
		{
			"reordered start after end",
			func() []*rtp.Packet {
				ps := eventPackets(101, 1, 1000, press(3))
				slices.Reverse(ps)
				return ps
			}(),
			"3", []bool{true},
		},
		{
			"long event continues in a new segment (RFC 4733 2.5.1.3)",
			append(eventPackets(101, 1, 1000, []Event{{Code: 4, Duration: 0xffff}}),
				eventPackets(101, 2, 1000+0xffff, []Event{{Code: 4, Duration: 160}, {Code: 4, End: true, Duration: 320}})...),
			"4", nil,
		},
		{
			"star pound flash",
			append(append(eventPackets(101, 1, 100, press(EventStar)), eventPackets(101, 10, 2000, press(EventPound))...),
				eventPackets(101, 20, 4000, press(EventFlash))...),
			"*#!", nil,
		},
		{
			"timestamp wrap",
			append(eventPackets(101, 1, 0xffffff00, press(7)), eventPackets(101, 10, 0x100, press(8))...),
			"78", nil,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := &DTMFDecoder{PT: 101}
			got := decodeAll(t, d, tc.ps)
			var s string
			for _, dg := range got {
				s += string(dg.Digit)
			}
			if s != tc.want {
				t.Fatalf("digits %q, want %q", s, tc.want)
			}
			for i, e := range tc.end {
				if got[i].End != e {
					t.Errorf("digit %d End=%v, want %v", i, got[i].End, e)
				}
			}
		})
	}
}

func TestDTMFDecoderErrors(t *testing.T) {
	d := &DTMFDecoder{PT: 101}
	if _, _, err := d.Decode(&rtp.Packet{Header: rtp.Header{PayloadType: 0}, Payload: make([]byte, 160)}); !errors.Is(err, ErrWrongPayloadType) {
		t.Fatalf("audio packet: %v", err)
	}
	if _, _, err := d.Decode(&rtp.Packet{Header: rtp.Header{PayloadType: 101}, Payload: []byte{1}}); !errors.Is(err, ErrShortEvent) {
		t.Fatalf("short: %v", err)
	}
	// Over the history size, old timestamps still never come back.
	var got []Digit
	for i := range 20 {
		ps := eventPackets(101, uint16(i*10), uint32(1000*(i+1)), DigitEvents(uint8(i%10), 40*time.Millisecond, 0, 0))
		got = append(got, decodeAll(t, d, ps)...)
	}
	if len(got) != 20 {
		t.Fatalf("%d digits, want 20", len(got))
	}
	if again := decodeAll(t, d, eventPackets(101, 0, 1000, DigitEvents(0, 40*time.Millisecond, 0, 0))); len(again) != 0 {
		t.Fatalf("old press reported again: %+v", again)
	}
}

func TestParseINFO(t *testing.T) {
	tests := []struct {
		ct, body string
		digit    rune
		dur      time.Duration
		err      bool
	}{
		{"application/dtmf-relay", "Signal=5\r\nDuration=160\r\n", '5', 160 * time.Millisecond, false},
		{"application/dtmf-relay", "Signal= *\nDuration= 250", '*', 250 * time.Millisecond, false},
		{"Application/DTMF-Relay; charset=utf-8", "signal=#\r\n", '#', 0, false},
		{"application/dtmf-relay", "Signal=11\r\nDuration=100\r\n", '#', 100 * time.Millisecond, false},
		{"application/dtmf-relay", "Signal=a\r\n", 'A', 0, false},
		{"application/dtmf", "5", '5', 0, false},
		{"application/dtmf", " 9\r\n", '9', 0, false},
		{"application/dtmf", "Signal=3\r\nDuration=80", '3', 80 * time.Millisecond, false},
		{"application/dtmf-relay", "Duration=160\r\n", 0, 0, true},
		{"application/dtmf-relay", "Signal=X\r\n", 0, 0, true},
		{"application/dtmf-relay", "Signal=5\r\nDuration=-3\r\n", 0, 0, true},
		{"application/dtmf-relay", "Signal=17\r\n", 0, 0, true},
		{"application/dtmf", "", 0, 0, true},
		{"application/dtmf", "55", 0, 0, true},
		{"text/plain", "Signal=5", 0, 0, true},
		{"", "5", 0, 0, true},
	}
	for _, tc := range tests {
		got, err := ParseINFO(tc.ct, []byte(tc.body))
		if tc.err {
			if !errors.Is(err, ErrDTMFBody) {
				t.Errorf("%q %q: err = %v", tc.ct, tc.body, err)
			}
			continue
		}
		if err != nil || got.Digit != tc.digit || got.Duration != tc.dur {
			t.Errorf("%q %q = %+v, %v", tc.ct, tc.body, got, err)
		}
	}
}

// FuzzDecodeEvent checks that any payload either fails cleanly or decodes
// to an event that marshals back to its first four bytes, and that the
// decoder reports at most one digit per timestamp.
func FuzzDecodeEvent(f *testing.F) {
	f.Add([]byte{5, 0x8a, 0x05, 0x00}, uint32(1000))
	f.Add([]byte{11, 0x0a, 0x00, 0xa0}, uint32(0))
	f.Add([]byte{1}, uint32(7))
	f.Add([]byte{255, 255, 255, 255, 0, 0, 0, 0}, uint32(0xffffffff))
	f.Fuzz(func(t *testing.T, payload []byte, ts uint32) {
		ev, err := DecodeEvent(payload)
		if err != nil {
			if len(payload) >= 4 {
				t.Fatalf("error on %d bytes: %v", len(payload), err)
			}
			return
		}
		if b := ev.Marshal(nil); b[0] != payload[0] || b[1] != payload[1]&0xbf || b[2] != payload[2] || b[3] != payload[3] {
			t.Fatalf("round trip % x -> % x", payload[:4], b)
		}
		d := &DTMFDecoder{PT: 101}
		p := &rtp.Packet{Header: rtp.Header{PayloadType: 101, Timestamp: ts}, Payload: payload}
		n := 0
		for range 4 {
			if _, ok, err := d.Decode(p); err != nil {
				t.Fatal(err)
			} else if ok {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("%d digits for one timestamp", n)
		}
	})
}

// FuzzParseINFO: an INFO body comes from the network (the key press
// fallback of the offer, F28): whatever it holds, ParseINFO returns a key
// of the RFC 4733 set with a sane duration, or an error, and never panics.
func FuzzParseINFO(f *testing.F) {
	f.Add("application/dtmf-relay", []byte("Signal=5\r\nDuration=160\r\n"))
	f.Add("application/dtmf", []byte("5"))
	f.Add("application/dtmf-relay", []byte("Signal= *\nDuration=-1\n"))
	f.Add("text/plain", []byte("Signal=10"))
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		d, err := ParseINFO(ct, body)
		if err != nil {
			return
		}
		if !strings.ContainsRune("0123456789*#ABCD!", d.Digit) { // '!': flash, event 16
			t.Fatalf("ParseINFO(%q, %q) = key %q, not a DTMF key", ct, body, d.Digit)
		}
		if d.Duration < 0 {
			t.Fatalf("ParseINFO(%q, %q): negative duration %v", ct, body, d.Duration)
		}
	})
}
