package media

import (
	"strings"

	"github.com/zaf/g711"
)

// Clock rate and framing shared by every codec we speak: G.711 is sampled
// at 8 kHz (RFC 3551 section 4.5.14) and we always packetize 20 ms, the
// default packetization time of RFC 3551 section 4.5 for PCMU/PCMA.
const (
	SampleRate    = 8000
	FrameDuration = 20 // milliseconds
	FrameSamples  = SampleRate * FrameDuration / 1000
)

// Law selects the G.711 companding law.
type Law uint8

// The two G.711 laws (ITU-T G.711; RFC 3551 section 4.5.14).
const (
	LawU Law = iota + 1 // mu-law, PCMU
	LawA                // A-law, PCMA
)

// Codec is an audio codec with the RTP payload type negotiated for it. PT
// is the payload type on the wire; for PCMU and PCMA it is normally the
// static one (RFC 3551 table 4) but an offer may bind another number with
// a=rtpmap, and the answer must reuse it (RFC 3264 section 6.1).
type Codec struct {
	PT   uint8
	Name string
	Law  Law
}

// The static G.711 payload types of RFC 3551 table 4.
var (
	PCMU = Codec{PT: 0, Name: "PCMU", Law: LawU}
	PCMA = Codec{PT: 8, Name: "PCMA", Law: LawA}
)

// CodecByName returns the codec for an rtpmap encoding name (case
// insensitive per RFC 4855 section 3) with payload type pt.
func CodecByName(name string, pt uint8) (Codec, bool) {
	switch {
	case strings.EqualFold(name, "PCMU"):
		c := PCMU
		c.PT = pt
		return c, true
	case strings.EqualFold(name, "PCMA"):
		c := PCMA
		c.PT = pt
		return c, true
	}
	return Codec{}, false
}

// CodecByPT returns the codec for a static payload type (0 or 8).
func CodecByPT(pt uint8) (Codec, bool) {
	switch pt {
	case PCMU.PT:
		return PCMU, true
	case PCMA.PT:
		return PCMA, true
	}
	return Codec{}, false
}

// Encode appends the G.711 encoding of the linear16 samples to dst (one
// byte per sample) and returns the extended slice.
func (c Codec) Encode(dst []byte, pcm []int16) []byte {
	if c.Law == LawA {
		for _, s := range pcm {
			dst = append(dst, g711.EncodeAlawFrame(s))
		}
		return dst
	}
	for _, s := range pcm {
		dst = append(dst, g711.EncodeUlawFrame(s))
	}
	return dst
}

// Decode appends the linear16 decoding of a G.711 payload to dst.
func (c Codec) Decode(dst []int16, payload []byte) []int16 {
	if c.Law == LawA {
		for _, b := range payload {
			dst = append(dst, g711.DecodeAlawFrame(b))
		}
		return dst
	}
	for _, b := range payload {
		dst = append(dst, g711.DecodeUlawFrame(b))
	}
	return dst
}

// String returns the rtpmap form, e.g. "PCMU/8000".
func (c Codec) String() string { return c.Name + "/8000" }
