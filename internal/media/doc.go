// Package media is the media library of callbackd: offer/answer, G.711,
// call progress tones, announcements, RFC 4733 DTMF and RTP streaming and
// relaying. It knows nothing of SIP; the B2BUA wires it in (announcements
// with a "press 5" offer, the automatic recall, F28-F34).
//
// One file per concept:
//
//   - sdp.go: SDP offer/answer (RFC 3264 sections 5-8, RFC 4566) with
//     pion/sdp/v3. Negotiate answers an offer (PCMU/PCMA in the
//     offerer's order, RFC 4733 telephone-event, direction mirrored per
//     section 6.1, port 0 rejection per section 6, c= at session or media
//     level, RFC 2543 hold per section 8.4); Offer and ParseAnswer cover
//     the other role. ErrNoCommonCodec maps to SIP 488.
//   - g711.go: Codec, PCMU and PCMA (RFC 3551 section 4.5.14, ITU-T G.711)
//     over zaf/g711.
//   - tones.go: national call progress tones from ITU-T E.180 Supplement 2
//     (US, DE, CN, KR: dial, busy, ringback, reorder, congestion) plus the
//     Call Back alert chime, and a deterministic, phase-continuous
//     Generator of 20 ms frames.
//   - source.go: the Source interface and the Samples and Sequence sources
//     (a prompt, then a tone).
//   - dtmf.go: RFC 4733 telephone-events: payload format (section 2.3),
//     the packets of one key press (section 2.5.1), a DTMFDecoder that
//     reports each press once (section 2.5.2), and SIP INFO bodies
//     (application/dtmf-relay, application/dtmf).
//   - wav.go: RIFF/WAVE reading and writing, 8 kHz mono 16-bit PCM only.
//   - prompts.go: the embedded announcements prompts/<locale>/<name>.wav
//     (en, de, zh, ko; English fallback), made by scripts/gen-prompts.sh.
//   - rtp.go: Packetizer (RFC 3550 section 5.1, RFC 3551 marker, RFC 4733
//     event timestamps), a pure function of its state, and Stream, which
//     paces it every 20 ms on an absolute schedule over a net.PacketConn.
//   - peer.go: PeerFilter, which source a leg's RTP is accepted from: the
//     address of its SDP (symmetric RTP, RFC 4961), or its first source,
//     locked, when that address is unusable or latching is asked for.
//   - receiver.go: Receiver, which decodes G.711 and feeds telephone-events
//     to the DTMF decoder, with counters, from its peer only.
//   - relay.go: Relay, a two-socket RTP forwarder between two peers.
//
// Everything is 8 kHz, 20 ms (160 samples) per packet.
package media
