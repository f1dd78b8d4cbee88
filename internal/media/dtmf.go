package media

import (
	"bytes"
	"errors"
	"fmt"
	"mime"
	"strconv"
	"strings"
	"time"

	"github.com/pion/rtp"
)

// Event codes of RFC 4733 section 3.2: 0-9, then *, #, A-D; 16 is flash.
const (
	EventStar  = 10
	EventPound = 11
	EventFlash = 16
)

const dtmfDigits = "0123456789*#ABCD"

// EventCode maps a DTMF character (0-9 * # A-D, case insensitive) to its
// RFC 4733 event code.
func EventCode(digit rune) (uint8, bool) {
	if digit >= 'a' && digit <= 'd' {
		digit -= 'a' - 'A'
	}
	i := strings.IndexRune(dtmfDigits, digit)
	if i < 0 {
		return 0, false
	}
	return uint8(i), true
}

// EventDigit maps an event code to its character; 16 (flash) is '!'.
func EventDigit(code uint8) (rune, bool) {
	if int(code) < len(dtmfDigits) {
		return rune(dtmfDigits[code]), true
	}
	if code == EventFlash {
		return '!', true
	}
	return 0, false
}

// ErrShortEvent is returned for a telephone-event payload under 4 bytes.
var ErrShortEvent = errors.New("media: telephone-event payload shorter than 4 bytes")

// Event is the 4-byte telephone-event payload of RFC 4733 section 2.3:
//
//	event (8) | E (1) | R (1) | volume (6) | duration (16)
type Event struct {
	Code     uint8
	End      bool
	Volume   uint8  // 0 to 63, in -dBm0 (section 2.3.4)
	Duration uint16 // in timestamp units, 8000 per second here
}

// Marshal appends the payload to b.
func (e Event) Marshal(b []byte) []byte {
	v := e.Volume & 0x3f
	if e.End {
		v |= 0x80
	}
	return append(b, e.Code, v, byte(e.Duration>>8), byte(e.Duration))
}

// DecodeEvent parses a telephone-event payload. Only the first event is
// read: RFC 4733 section 2.3 allows several 4-byte events in one payload,
// and extra bytes are ignored (section 2.5.2.2, receivers skip what they
// do not know). The reserved R bit is ignored (section 2.3.3).
func DecodeEvent(payload []byte) (Event, error) {
	if len(payload) < 4 {
		return Event{}, ErrShortEvent
	}
	return Event{
		Code:     payload[0],
		End:      payload[1]&0x80 != 0,
		Volume:   payload[1] & 0x3f,
		Duration: uint16(payload[2])<<8 | uint16(payload[3]),
	}, nil
}

// DigitEvents is the sequence of payloads a sender emits for one key press
// (RFC 4733 section 2.5.1): one packet per interval with the duration so
// far, all under the timestamp of the event start, then the final packet
// with the E bit sent three times with the same duration (section 2.5.1.4).
// duration and interval are rounded to whole samples; an interval of zero
// means 20 ms. The first packet reports one interval, so a press shorter
// than an interval yields only the three end packets. Durations beyond
// 65535 samples (8.2 s) are clipped: the long-event segmentation of section
// 2.5.1.3 is not needed for key presses.
func DigitEvents(code uint8, duration, interval time.Duration, volume uint8) []Event {
	if interval <= 0 {
		interval = FrameDuration * time.Millisecond
	}
	total := min(int(duration/(time.Second/SampleRate)), 0xffff)
	step := max(int(interval/(time.Second/SampleRate)), 1)
	var evs []Event
	for d := step; d < total; d += step {
		evs = append(evs, Event{Code: code, Volume: volume, Duration: uint16(d)})
	}
	end := Event{Code: code, End: true, Volume: volume, Duration: uint16(total)}
	return append(evs, end, end, end)
}

// Digit is one key press reported by a DTMFDecoder.
type Digit struct {
	Digit     rune   // '0'-'9', '*', '#', 'A'-'D', '!' for flash, 0 if unknown
	Code      uint8  // RFC 4733 event code
	Timestamp uint32 // RTP timestamp of the event start
	Duration  uint16 // duration known when reported
	Volume    uint8
	End       bool // reported from an end packet (the start was lost)
}

// ErrWrongPayloadType is returned by DTMFDecoder.Decode for packets that are
// not telephone-events.
var ErrWrongPayloadType = errors.New("media: packet is not a telephone-event")

// dtmfHistory is how many recent event timestamps the decoder remembers,
// so late retransmissions of an earlier press are not reported again.
const dtmfHistory = 8

// DTMFDecoder turns telephone-event RTP packets into key presses, each
// reported once, as soon as any of its packets arrives (RFC 4733 section
// 2.5.2). One event is identified by its RTP timestamp (section 2.5.1.1),
// so lost start packets, end-only events and the three end retransmissions
// need no special case. The zero value is ready; set PT.
type DTMFDecoder struct {
	PT uint8

	seen  [dtmfHistory]uint32
	n     int // entries used in seen
	next  int // ring position
	last  uint32
	lastE Event // last packet of the latest event, for segment continuation
}

// Decode reports the key press started by p, or ok false for packets of
// an event already reported.
func (d *DTMFDecoder) Decode(p *rtp.Packet) (Digit, bool, error) {
	if p.PayloadType != d.PT {
		return Digit{}, false, ErrWrongPayloadType
	}
	ev, err := DecodeEvent(p.Payload)
	if err != nil {
		return Digit{}, false, err
	}
	ts := p.Timestamp
	for i := 0; i < d.n; i++ {
		if d.seen[i] == ts {
			if ts == d.last {
				d.lastE = ev
			}
			return Digit{}, false, nil
		}
	}
	if d.n > 0 {
		// Older than the latest event (serial arithmetic, RFC 3550
		// appendix A.1): a straggler of a press already handled.
		if int32(ts-d.last) < 0 {
			return Digit{}, false, nil
		}
		// A long event goes on in a new segment with a new timestamp
		// equal to the old one plus its duration (section 2.5.1.3).
		if !d.lastE.End && d.lastE.Code == ev.Code && ts == d.last+uint32(d.lastE.Duration) {
			d.remember(ts, ev)
			return Digit{}, false, nil
		}
	}
	d.remember(ts, ev)
	r, _ := EventDigit(ev.Code)
	return Digit{Digit: r, Code: ev.Code, Timestamp: ts, Duration: ev.Duration, Volume: ev.Volume, End: ev.End}, true, nil
}

func (d *DTMFDecoder) remember(ts uint32, ev Event) {
	d.seen[d.next] = ts
	d.next = (d.next + 1) % dtmfHistory
	d.n = min(d.n+1, dtmfHistory)
	d.last, d.lastE = ts, ev
}

// ErrDTMFBody is returned for a SIP INFO body that carries no DTMF digit.
var ErrDTMFBody = errors.New("media: no DTMF in INFO body")

// InfoDigit is a key press carried in a SIP INFO request.
type InfoDigit struct {
	Digit    rune
	Duration time.Duration // zero when the body gives none
}

// ParseINFO reads a SIP INFO DTMF body. application/dtmf-relay (the de
// facto format of Cisco and most phones) has "Signal=5" and "Duration=160"
// (milliseconds) lines; application/dtmf carries just the key. Either body
// in either content type is accepted, since phones mix them up.
func ParseINFO(contentType string, body []byte) (InfoDigit, error) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return InfoDigit{}, fmt.Errorf("%w: content type %q", ErrDTMFBody, contentType)
	}
	if mt != "application/dtmf-relay" && mt != "application/dtmf" {
		return InfoDigit{}, fmt.Errorf("%w: content type %q", ErrDTMFBody, mt)
	}
	if len(body) > 1024 {
		return InfoDigit{}, fmt.Errorf("%w: body of %d bytes", ErrDTMFBody, len(body))
	}
	if bytes.IndexByte(body, '=') < 0 {
		return parseDTMFKey(strings.TrimSpace(string(body)))
	}
	var (
		out       InfoDigit
		haveSigna bool
	)
	for _, line := range strings.FieldsFunc(string(body), func(r rune) bool { return r == '\r' || r == '\n' }) {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch {
		case strings.EqualFold(k, "Signal"):
			d, err := parseDTMFKey(v)
			if err != nil {
				return InfoDigit{}, err
			}
			out.Digit = d.Digit
			haveSigna = true
		case strings.EqualFold(k, "Duration"):
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 60000 {
				return InfoDigit{}, fmt.Errorf("%w: duration %q", ErrDTMFBody, v)
			}
			out.Duration = time.Duration(n) * time.Millisecond
		}
	}
	if !haveSigna {
		return InfoDigit{}, fmt.Errorf("%w: no Signal line", ErrDTMFBody)
	}
	return out, nil
}

// parseDTMFKey accepts one key character or its event code written in
// decimal ("10" for *, "11" for #, "16" for flash), as some phones send.
func parseDTMFKey(s string) (InfoDigit, error) {
	if len(s) == 1 {
		if c, ok := EventCode(rune(s[0])); ok {
			r, _ := EventDigit(c)
			return InfoDigit{Digit: r}, nil
		}
		if s == "!" {
			return InfoDigit{Digit: '!'}, nil
		}
	}
	if n, err := strconv.Atoi(s); err == nil && n >= 0 && n <= EventFlash {
		if r, ok := EventDigit(uint8(n)); ok {
			return InfoDigit{Digit: r}, nil
		}
	}
	return InfoDigit{}, fmt.Errorf("%w: key %q", ErrDTMFBody, s)
}
