package media

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
)

// ErrNoCommonCodec is returned when an offer has no audio stream we can
// accept: no PCMU/PCMA, only rejected (port 0) streams, or no media at all.
// The SIP layer answers 488 Not Acceptable Here (RFC 3261 section 13.3.1.1,
// RFC 3264 section 6).
var ErrNoCommonCodec = errors.New("media: no common codec")

// ErrMalformedSDP wraps every parse or validation failure of a session
// description; the SIP layer answers 400 (or 488 for a re-INVITE).
var ErrMalformedSDP = errors.New("media: malformed SDP")

// Direction is the media direction of RFC 3264 section 5.1 (a=sendrecv,
// a=sendonly, a=recvonly, a=inactive), always seen from the side that
// wrote it. The zero value is SendRecv, the default when no attribute is
// present (RFC 3264 section 5.1).
type Direction uint8

// Directions, from the point of view of the SDP's author.
const (
	SendRecv Direction = iota
	SendOnly
	RecvOnly
	Inactive
)

func directionOf(send, recv bool) Direction {
	switch {
	case send && recv:
		return SendRecv
	case send:
		return SendOnly
	case recv:
		return RecvOnly
	}
	return Inactive
}

// Sends reports whether the author of the SDP sends media.
func (d Direction) Sends() bool { return d == SendRecv || d == SendOnly }

// Receives reports whether the author of the SDP receives media.
func (d Direction) Receives() bool { return d == SendRecv || d == RecvOnly }

// Reverse is the same stream seen from the other end: a sendonly offer is
// a recvonly stream for the answerer (RFC 3264 section 6.1).
func (d Direction) Reverse() Direction { return directionOf(d.Receives(), d.Sends()) }

// String returns the SDP attribute name.
func (d Direction) String() string {
	switch d {
	case SendOnly:
		return "sendonly"
	case RecvOnly:
		return "recvonly"
	case Inactive:
		return "inactive"
	}
	return "sendrecv"
}

// Endpoint describes our side of a media session.
type Endpoint struct {
	// Addr is our RTP address, written in c= and m= (RFC 4566 sections
	// 5.7 and 5.14).
	Addr netip.AddrPort
	// Username, SessionID and SessionVersion fill the o= line (RFC 4566
	// section 5.2). The version must grow with every new offer or answer
	// in a dialog (RFC 3264 section 8).
	Username       string
	SessionID      uint64
	SessionVersion uint64
	// Direction is what we want; the answer is its intersection with the
	// mirror of the offer (RFC 3264 section 6.1). Zero means sendrecv.
	Direction Direction
	// Codecs we accept, in our order of preference for Offer. Empty means
	// PCMU then PCMA. Negotiate follows the offerer's order instead.
	Codecs []Codec
	// DTMFPT is the telephone-event payload type we offer (RFC 4733
	// section 7.1.1); zero means 101.
	DTMFPT uint8
	// NoDTMF leaves telephone-event out of offers and answers.
	NoDTMF bool
}

func (e Endpoint) codecs() []Codec {
	if len(e.Codecs) == 0 {
		return []Codec{PCMU, PCMA}
	}
	return e.Codecs
}

func (e Endpoint) dtmfPT() uint8 {
	if e.DTMFPT == 0 {
		return 101
	}
	return e.DTMFPT
}

func (e Endpoint) accepts(c Codec) bool {
	for _, l := range e.codecs() {
		if l.Law == c.Law {
			return true
		}
	}
	return false
}

// Session is the outcome of an offer/answer exchange for the single audio
// stream we use.
type Session struct {
	// Remote is the peer's RTP address (c= and m= port). An unspecified
	// address (c=IN IP4 0.0.0.0, the RFC 2543 hold of RFC 3264 section
	// 8.4) is kept as is, and Direction then never sends.
	Remote netip.AddrPort
	// Codec is the chosen audio codec, with the payload type to use.
	Codec Codec
	// DTMFPT is the RFC 4733 telephone-event payload type, 0 if none.
	DTMFPT uint8
	// Direction is ours: Sends means we may send RTP to Remote.
	Direction Direction
	// Ptime is the peer's a=ptime in milliseconds (RFC 4566 section 6),
	// 20 when absent.
	Ptime int
	// MediaIndex is the index of the m= line in use.
	MediaIndex int
}

// Negotiate answers an SDP offer (RFC 3264 section 6): it keeps one m= line
// per offered line in the same order (section 6), accepts the first audio
// RTP stream with PCMU or PCMA, choosing the first of those in the offer's
// order, adds telephone-event when offered, and rejects every other
// stream with port 0 (section 6).
func Negotiate(offer []byte, local Endpoint) ([]byte, Session, error) {
	var sd sdp.SessionDescription
	if err := unmarshal(&sd, offer); err != nil {
		return nil, Session{}, err
	}
	ans := baseDescription(local)
	var (
		sess     Session
		chosen   = -1
		firstErr error
	)
	for i, md := range sd.MediaDescriptions {
		am := rejected(md)
		if chosen < 0 && isAudioRTP(md) && md.MediaName.Port.Value != 0 {
			m, err := parseMedia(&sd, md)
			if err != nil {
				return nil, Session{}, err
			}
			s, err := m.answer(local)
			if err == nil {
				chosen = i
				s.MediaIndex = i
				sess = s
				am = answerMedia(local, s)
			} else if firstErr == nil {
				firstErr = err
			}
		}
		ans.MediaDescriptions = append(ans.MediaDescriptions, am)
	}
	if chosen < 0 {
		if firstErr != nil {
			return nil, Session{}, firstErr
		}
		return nil, Session{}, fmt.Errorf("%w: no usable audio stream", ErrNoCommonCodec)
	}
	out, err := ans.Marshal()
	if err != nil {
		return nil, Session{}, fmt.Errorf("media: marshal answer: %w", err)
	}
	return out, sess, nil
}

// rejected is the answer refusing an offered stream: its media type, proto
// and formats, with port 0 (RFC 3264 section 6).
func rejected(md *sdp.MediaDescription) *sdp.MediaDescription {
	return &sdp.MediaDescription{MediaName: sdp.MediaName{
		Media:   md.MediaName.Media,
		Port:    sdp.RangedPort{Value: 0},
		Protos:  md.MediaName.Protos,
		Formats: md.MediaName.Formats,
	}}
}

// RejectAll answers an SDP offer refusing every stream (RFC 3264 section
// 6), from the unspecified address (no media of ours): what the server
// answers an offer it cannot take on. An offer it cannot read gets an
// answer with no streams.
func RejectAll(offer []byte) []byte {
	ans := baseDescription(Endpoint{Username: "callbackd"})
	var sd sdp.SessionDescription
	if unmarshal(&sd, offer) == nil {
		for _, md := range sd.MediaDescriptions {
			ans.MediaDescriptions = append(ans.MediaDescriptions, rejected(md))
		}
	}
	out, err := ans.Marshal()
	if err != nil {
		panic(err) // Marshal of a description we built cannot fail.
	}
	return out
}

// Offer writes an offer for one audio stream with our codecs (PCMU, PCMA by
// default) and telephone-event 101 with events 0-15 (RFC 4733 section
// 7.1.1), ptime 20 and our direction (RFC 3264 section 5).
func Offer(local Endpoint) []byte {
	sd := baseDescription(local)
	var dtmf uint8
	if !local.NoDTMF {
		dtmf = local.dtmfPT()
	}
	md := audioMedia(local.Addr.Port(), local.codecs(), dtmf, local.Direction)
	sd.MediaDescriptions = append(sd.MediaDescriptions, md)
	out, err := sd.Marshal()
	if err != nil {
		// Marshal of a description we built cannot fail.
		panic(err)
	}
	return out
}

// ParseAnswer reads the peer's answer to an Offer of ours: the first
// accepted audio stream, the first codec of the answer we offered, and
// telephone-event if the answer kept it (RFC 3264 section 7).
func ParseAnswer(answer []byte, local Endpoint) (Session, error) {
	var sd sdp.SessionDescription
	if err := unmarshal(&sd, answer); err != nil {
		return Session{}, err
	}
	for i, md := range sd.MediaDescriptions {
		if !isAudioRTP(md) || md.MediaName.Port.Value == 0 {
			continue
		}
		m, err := parseMedia(&sd, md)
		if err != nil {
			return Session{}, err
		}
		s, err := m.answer(local)
		if err != nil {
			return Session{}, err
		}
		if local.NoDTMF {
			s.DTMFPT = 0
		}
		s.MediaIndex = i
		return s, nil
	}
	return Session{}, fmt.Errorf("%w: answer accepts no audio stream", ErrNoCommonCodec)
}

func unmarshal(sd *sdp.SessionDescription, b []byte) error {
	// pion accepts an empty body; a SIP body that should carry SDP but is
	// blank is malformed (RFC 4566 section 5: v= comes first).
	if len(bytes.TrimSpace(b)) == 0 {
		return fmt.Errorf("%w: empty session description", ErrMalformedSDP)
	}
	if err := sd.Unmarshal(b); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformedSDP, err)
	}
	return nil
}

func baseDescription(local Endpoint) *sdp.SessionDescription {
	user := local.Username
	if user == "" {
		user = "-"
	}
	network, addrType, addr := connection(local.Addr.Addr())
	return &sdp.SessionDescription{
		Version: 0,
		Origin: sdp.Origin{
			Username:       user,
			SessionID:      local.SessionID,
			SessionVersion: local.SessionVersion,
			NetworkType:    network,
			AddressType:    addrType,
			UnicastAddress: addr,
		},
		SessionName: "callbackd",
		ConnectionInformation: &sdp.ConnectionInformation{
			NetworkType: network,
			AddressType: addrType,
			Address:     &sdp.Address{Address: addr},
		},
		TimeDescriptions: []sdp.TimeDescription{{Timing: sdp.Timing{}}},
	}
}

func connection(a netip.Addr) (network, addrType, addr string) {
	if !a.IsValid() {
		a = netip.IPv4Unspecified()
	}
	a = a.Unmap()
	if a.Is4() {
		return "IN", "IP4", a.String()
	}
	return "IN", "IP6", a.WithZone("").String()
}

func answerMedia(local Endpoint, s Session) *sdp.MediaDescription {
	return audioMedia(local.Addr.Port(), []Codec{s.Codec}, s.DTMFPT, s.Direction)
}

// audioMedia is an m=audio line of ours at port: the codecs in order, then
// telephone-event dtmf with events 0-15 (none when 0), ptime 20 and the
// direction.
func audioMedia(port uint16, codecs []Codec, dtmf uint8, dir Direction) *sdp.MediaDescription {
	md := &sdp.MediaDescription{MediaName: sdp.MediaName{
		Media:  "audio",
		Port:   sdp.RangedPort{Value: int(port)},
		Protos: []string{"RTP", "AVP"},
	}}
	for _, c := range codecs {
		pt := strconv.Itoa(int(c.PT))
		md.MediaName.Formats = append(md.MediaName.Formats, pt)
		md.Attributes = append(md.Attributes, sdp.NewAttribute("rtpmap", pt+" "+c.String()))
	}
	if dtmf != 0 {
		pt := strconv.Itoa(int(dtmf))
		md.MediaName.Formats = append(md.MediaName.Formats, pt)
		md.Attributes = append(md.Attributes,
			sdp.NewAttribute("rtpmap", pt+" telephone-event/8000"),
			sdp.NewAttribute("fmtp", pt+" 0-15"))
	}
	md.Attributes = append(md.Attributes,
		sdp.NewAttribute("ptime", strconv.Itoa(FrameDuration)),
		sdp.NewPropertyAttribute(dir.String()))
	return md
}

func isAudioRTP(md *sdp.MediaDescription) bool {
	if !strings.EqualFold(md.MediaName.Media, "audio") {
		return false
	}
	// RTP/AVP (RFC 3551) and RTP/AVPF (RFC 4585, a compatible superset);
	// RTP/SAVP needs SRTP keys we do not have.
	p := strings.ToUpper(strings.Join(md.MediaName.Protos, "/"))
	return p == "RTP/AVP" || p == "RTP/AVPF"
}

// offeredMedia is one audio m= line as the remote side described it.
type offeredMedia struct {
	remote netip.AddrPort
	codecs []Codec // in the order of the m= line
	dtmfPT uint8
	dir    Direction // the remote side's view
	ptime  int
}

func parseMedia(sd *sdp.SessionDescription, md *sdp.MediaDescription) (offeredMedia, error) {
	var m offeredMedia
	// Media-level c= overrides session-level c= (RFC 4566 section 5.7).
	ci := md.ConnectionInformation
	if ci == nil {
		ci = sd.ConnectionInformation
	}
	if ci == nil || ci.Address == nil {
		return m, fmt.Errorf("%w: no c= line for audio stream", ErrMalformedSDP)
	}
	if !strings.EqualFold(ci.NetworkType, "IN") {
		return m, fmt.Errorf("%w: network type %q", ErrMalformedSDP, ci.NetworkType)
	}
	addr, err := netip.ParseAddr(ci.Address.Address)
	if err != nil {
		// RFC 4566 allows an FQDN; a pure library does no DNS.
		return m, fmt.Errorf("%w: connection address %q is not an IP address", ErrMalformedSDP, ci.Address.Address)
	}
	port := md.MediaName.Port.Value
	if port < 0 || port > 65535 {
		return m, fmt.Errorf("%w: port %d", ErrMalformedSDP, port)
	}
	m.remote = netip.AddrPortFrom(addr, uint16(port))

	m.dir = SendRecv
	if d, ok := directionAttr(sd.Attributes); ok {
		m.dir = d
	}
	if d, ok := directionAttr(md.Attributes); ok {
		m.dir = d
	}
	// RFC 2543 hold: c= 0.0.0.0 means "do not send to me" (RFC 3264 8.4).
	if addr.IsUnspecified() {
		m.dir = directionOf(m.dir.Sends(), false)
	}

	m.ptime = FrameDuration
	if v, ok := md.Attribute("ptime"); ok {
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n > 0 {
			m.ptime = n
		}
	} else if v, ok := sd.Attribute("ptime"); ok {
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n > 0 {
			m.ptime = n
		}
	}

	rtpmaps := map[uint8]string{}
	for _, a := range md.Attributes {
		if a.Key != "rtpmap" {
			continue
		}
		ptStr, enc, ok := strings.Cut(strings.TrimSpace(a.Value), " ")
		if !ok {
			return m, fmt.Errorf("%w: a=rtpmap:%s", ErrMalformedSDP, a.Value)
		}
		pt, err := parsePT(ptStr)
		if err != nil {
			return m, err
		}
		rtpmaps[pt] = strings.TrimSpace(enc)
	}
	for _, f := range md.MediaName.Formats {
		pt, err := parsePT(f)
		if err != nil {
			return m, err
		}
		enc, mapped := rtpmaps[pt]
		if !mapped {
			// Static payload types need no rtpmap (RFC 3551 section 6).
			if c, ok := CodecByPT(pt); ok {
				m.codecs = append(m.codecs, c)
			}
			continue
		}
		name, rest, _ := strings.Cut(enc, "/")
		rate, channels, _ := strings.Cut(rest, "/")
		if rate != "8000" || (channels != "" && channels != "1") {
			continue
		}
		if strings.EqualFold(name, "telephone-event") {
			// RFC 4733 section 7.1.1: the event clock must match the
			// audio clock, 8000 for G.711.
			if m.dtmfPT == 0 && pt != 0 {
				m.dtmfPT = pt
			}
			continue
		}
		if c, ok := CodecByName(name, pt); ok {
			m.codecs = append(m.codecs, c)
		}
	}
	return m, nil
}

func parsePT(s string) (uint8, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 0 || n > 127 {
		return 0, fmt.Errorf("%w: payload type %q", ErrMalformedSDP, s)
	}
	return uint8(n), nil
}

func directionAttr(attrs []sdp.Attribute) (Direction, bool) {
	for _, a := range attrs {
		switch a.Key {
		case "sendrecv":
			return SendRecv, true
		case "sendonly":
			return SendOnly, true
		case "recvonly":
			return RecvOnly, true
		case "inactive":
			return Inactive, true
		}
	}
	return 0, false
}

// answer picks the codec and our direction for the remote stream m.
func (m offeredMedia) answer(local Endpoint) (Session, error) {
	s := Session{Remote: m.remote, Ptime: m.ptime}
	found := false
	for _, c := range m.codecs {
		if local.accepts(c) {
			s.Codec = c
			found = true
			break
		}
	}
	if !found {
		return Session{}, fmt.Errorf("%w: offered formats carry no PCMU or PCMA", ErrNoCommonCodec)
	}
	if !local.NoDTMF {
		s.DTMFPT = m.dtmfPT
	}
	// We send only if the peer receives, and receive only if it sends
	// (RFC 3264 section 6.1).
	peer := m.dir.Reverse()
	s.Direction = directionOf(
		peer.Sends() && local.Direction.Sends(),
		peer.Receives() && local.Direction.Receives())
	return s, nil
}
