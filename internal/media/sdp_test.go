package media

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/pion/sdp/v3"
)

var testLocal = Endpoint{
	Addr:           netip.MustParseAddrPort("127.0.0.1:40000"),
	SessionID:      42,
	SessionVersion: 1,
}

func offerSDP(media ...string) string {
	s := "v=0\r\no=alice 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\n"
	for _, m := range media {
		s += m
	}
	return s
}

func TestNegotiate(t *testing.T) {
	tests := []struct {
		name    string
		offer   string
		local   Endpoint
		wantErr error
		codec   string
		pt      uint8
		dtmf    uint8
		dir     Direction
		remote  string
		ptime   int
		index   int
		answer  []string // substrings of the answer
		nanswer []string // must not appear
	}{
		{
			name:   "PCMU only",
			offer:  offerSDP("m=audio 5004 RTP/AVP 0\r\n"),
			codec:  "PCMU",
			remote: "127.0.0.2:5004",
			answer: []string{"m=audio 40000 RTP/AVP 0\r\n", "a=rtpmap:0 PCMU/8000", "a=sendrecv", "c=IN IP4 127.0.0.1"},
		},
		{
			name:   "PCMA only",
			offer:  offerSDP("m=audio 5004 RTP/AVP 8\r\n"),
			codec:  "PCMA",
			pt:     8,
			remote: "127.0.0.2:5004",
			answer: []string{"m=audio 40000 RTP/AVP 8\r\n"},
		},
		{
			name:   "offerer prefers PCMA",
			offer:  offerSDP("m=audio 5004 RTP/AVP 18 8 0\r\na=rtpmap:18 G729/8000\r\n"),
			codec:  "PCMA",
			pt:     8,
			remote: "127.0.0.2:5004",
		},
		{
			name:   "offerer prefers PCMU",
			offer:  offerSDP("m=audio 5004 RTP/AVP 0 8\r\n"),
			codec:  "PCMU",
			remote: "127.0.0.2:5004",
		},
		{
			name:   "local accepts PCMA only",
			offer:  offerSDP("m=audio 5004 RTP/AVP 0 8\r\n"),
			local:  Endpoint{Codecs: []Codec{PCMA}},
			codec:  "PCMA",
			pt:     8,
			remote: "127.0.0.2:5004",
		},
		{
			name:   "telephone-event",
			offer:  offerSDP("m=audio 5004 RTP/AVP 0 96\r\na=rtpmap:96 telephone-event/8000\r\na=fmtp:96 0-16\r\na=ptime:30\r\n"),
			codec:  "PCMU",
			dtmf:   96,
			ptime:  30,
			remote: "127.0.0.2:5004",
			answer: []string{"RTP/AVP 0 96\r\n", "a=rtpmap:96 telephone-event/8000", "a=fmtp:96 0-15", "a=ptime:20"},
		},
		{
			name:    "telephone-event at 16 kHz is ignored",
			offer:   offerSDP("m=audio 5004 RTP/AVP 0 97\r\na=rtpmap:97 telephone-event/16000\r\n"),
			codec:   "PCMU",
			remote:  "127.0.0.2:5004",
			nanswer: []string{"telephone-event"},
		},
		{
			name:    "telephone-event refused locally",
			offer:   offerSDP("m=audio 5004 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n"),
			local:   Endpoint{NoDTMF: true},
			codec:   "PCMU",
			remote:  "127.0.0.2:5004",
			nanswer: []string{"telephone-event"},
		},
		{
			name:   "dynamic PT bound to PCMA",
			offer:  offerSDP("m=audio 5004 RTP/AVP 110\r\na=rtpmap:110 pcma/8000\r\n"),
			codec:  "PCMA",
			pt:     110,
			remote: "127.0.0.2:5004",
			answer: []string{"RTP/AVP 110\r\n", "a=rtpmap:110 PCMA/8000"},
		},
		{
			name:    "no common codec",
			offer:   offerSDP("m=audio 5004 RTP/AVP 18 9\r\na=rtpmap:18 G729/8000\r\na=rtpmap:9 G722/8000\r\n"),
			wantErr: ErrNoCommonCodec,
		},
		{
			name:    "only telephone-event",
			offer:   offerSDP("m=audio 5004 RTP/AVP 101\r\na=rtpmap:101 telephone-event/8000\r\n"),
			wantErr: ErrNoCommonCodec,
		},
		{
			name:    "no media",
			offer:   offerSDP(),
			wantErr: ErrNoCommonCodec,
		},
		{
			name:    "video only",
			offer:   offerSDP("m=video 5006 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"),
			wantErr: ErrNoCommonCodec,
		},
		{
			name:    "SRTP profile",
			offer:   offerSDP("m=audio 5004 RTP/SAVP 0\r\n"),
			wantErr: ErrNoCommonCodec,
		},
		{
			name:   "hold sendonly",
			offer:  offerSDP("m=audio 5004 RTP/AVP 0\r\na=sendonly\r\n"),
			codec:  "PCMU",
			dir:    RecvOnly,
			remote: "127.0.0.2:5004",
			answer: []string{"a=recvonly"},
		},
		{
			name:   "recvonly offer",
			offer:  offerSDP("m=audio 5004 RTP/AVP 0\r\na=recvonly\r\n"),
			codec:  "PCMU",
			dir:    SendOnly,
			remote: "127.0.0.2:5004",
			answer: []string{"a=sendonly"},
		},
		{
			name:   "inactive offer",
			offer:  offerSDP("m=audio 5004 RTP/AVP 0\r\na=inactive\r\n"),
			codec:  "PCMU",
			dir:    Inactive,
			remote: "127.0.0.2:5004",
			answer: []string{"a=inactive"},
		},
		{
			name:   "session-level direction",
			offer:  "v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\na=sendonly\r\nm=audio 5004 RTP/AVP 0\r\n",
			codec:  "PCMU",
			dir:    RecvOnly,
			remote: "127.0.0.2:5004",
		},
		{
			name:   "media direction overrides session",
			offer:  "v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\na=sendonly\r\nm=audio 5004 RTP/AVP 0\r\na=sendrecv\r\n",
			codec:  "PCMU",
			dir:    SendRecv,
			remote: "127.0.0.2:5004",
		},
		{
			name:   "local sendonly announcement against sendrecv",
			offer:  offerSDP("m=audio 5004 RTP/AVP 0\r\n"),
			local:  Endpoint{Direction: SendOnly},
			codec:  "PCMU",
			dir:    SendOnly,
			remote: "127.0.0.2:5004",
			answer: []string{"a=sendonly"},
		},
		{
			name:   "RFC 2543 hold with 0.0.0.0",
			offer:  "v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 5004 RTP/AVP 0\r\n",
			codec:  "PCMU",
			dir:    RecvOnly,
			remote: "0.0.0.0:5004",
		},
		{
			name:   "media-level c= overrides session",
			offer:  offerSDP("m=audio 5004 RTP/AVP 0\r\nc=IN IP4 127.0.0.9\r\n"),
			codec:  "PCMU",
			remote: "127.0.0.9:5004",
		},
		{
			name:   "media-level c= only, IPv6",
			offer:  "v=0\r\no=- 1 1 IN IP6 ::1\r\ns=-\r\nt=0 0\r\nm=audio 5004 RTP/AVP 8\r\nc=IN IP6 ::1\r\n",
			codec:  "PCMA",
			pt:     8,
			remote: "[::1]:5004",
		},
		{
			name:    "port 0 audio then usable audio",
			offer:   offerSDP("m=audio 0 RTP/AVP 0\r\n", "m=video 5006 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n", "m=audio 5008 RTP/AVP 8 0\r\n"),
			codec:   "PCMA",
			pt:      8,
			remote:  "127.0.0.2:5008",
			index:   2,
			answer:  []string{"m=audio 0 RTP/AVP 0\r\n", "m=video 0 RTP/AVP 96\r\n", "m=audio 40000 RTP/AVP 8\r\n"},
			nanswer: []string{"VP8"},
		},
		{
			name:    "second audio stream rejected",
			offer:   offerSDP("m=audio 5004 RTP/AVP 0\r\n", "m=audio 5006 RTP/AVP 0\r\n"),
			codec:   "PCMU",
			remote:  "127.0.0.2:5004",
			answer:  []string{"m=audio 40000 RTP/AVP 0\r\n", "m=audio 0 RTP/AVP 0\r\n"},
			nanswer: []string{},
		},
		{
			name:    "only port 0",
			offer:   offerSDP("m=audio 0 RTP/AVP 0\r\n"),
			wantErr: ErrNoCommonCodec,
		},
		{name: "malformed: garbage", offer: "hello world", wantErr: ErrMalformedSDP},
		{name: "malformed: empty", offer: "", wantErr: ErrMalformedSDP},
		{
			name:    "malformed: no c= line",
			offer:   "v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\nt=0 0\r\nm=audio 5004 RTP/AVP 0\r\n",
			wantErr: ErrMalformedSDP,
		},
		{
			name:    "malformed: FQDN connection",
			offer:   "v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 host.example\r\nt=0 0\r\nm=audio 5004 RTP/AVP 0\r\n",
			wantErr: ErrMalformedSDP,
		},
		{
			name:    "malformed: payload type",
			offer:   offerSDP("m=audio 5004 RTP/AVP 0 x\r\n"),
			wantErr: ErrMalformedSDP,
		},
		{
			name:    "malformed: rtpmap",
			offer:   offerSDP("m=audio 5004 RTP/AVP 0\r\na=rtpmap:0\r\n"),
			wantErr: ErrMalformedSDP,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			local := tc.local
			local.Addr = testLocal.Addr
			local.SessionID = testLocal.SessionID
			local.SessionVersion = testLocal.SessionVersion
			ans, sess, err := Negotiate([]byte(tc.offer), local)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				if ans != nil {
					t.Fatalf("answer on error: %q", ans)
				}
				return
			}
			if err != nil {
				t.Fatalf("Negotiate: %v", err)
			}
			if sess.Codec.Name != tc.codec || sess.Codec.PT != tc.pt {
				t.Errorf("codec = %s/%d, want %s/%d", sess.Codec.Name, sess.Codec.PT, tc.codec, tc.pt)
			}
			if sess.DTMFPT != tc.dtmf {
				t.Errorf("DTMFPT = %d, want %d", sess.DTMFPT, tc.dtmf)
			}
			if sess.Direction != tc.dir {
				t.Errorf("direction = %v, want %v", sess.Direction, tc.dir)
			}
			if got := sess.Remote.String(); got != tc.remote {
				t.Errorf("remote = %s, want %s", got, tc.remote)
			}
			wantPtime := tc.ptime
			if wantPtime == 0 {
				wantPtime = 20
			}
			if sess.Ptime != wantPtime {
				t.Errorf("ptime = %d, want %d", sess.Ptime, wantPtime)
			}
			if sess.MediaIndex != tc.index {
				t.Errorf("media index = %d, want %d", sess.MediaIndex, tc.index)
			}
			for _, s := range tc.answer {
				if !strings.Contains(string(ans), s) {
					t.Errorf("answer lacks %q:\n%s", s, ans)
				}
			}
			for _, s := range tc.nanswer {
				if strings.Contains(string(ans), s) {
					t.Errorf("answer has %q:\n%s", s, ans)
				}
			}
			// The answer must parse and keep one m= line per offered line
			// (RFC 3264 section 6).
			var in, out sdp.SessionDescription
			if err := in.UnmarshalString(tc.offer); err != nil {
				t.Fatal(err)
			}
			if err := out.Unmarshal(ans); err != nil {
				t.Fatalf("answer does not parse: %v\n%s", err, ans)
			}
			if len(in.MediaDescriptions) != len(out.MediaDescriptions) {
				t.Fatalf("answer has %d m= lines, offer %d", len(out.MediaDescriptions), len(in.MediaDescriptions))
			}
			for i := range in.MediaDescriptions {
				if in.MediaDescriptions[i].MediaName.Media != out.MediaDescriptions[i].MediaName.Media {
					t.Errorf("m= line %d: media %s, offered %s", i, out.MediaDescriptions[i].MediaName.Media, in.MediaDescriptions[i].MediaName.Media)
				}
			}
		})
	}
}

func TestOfferAnswerRoundTrip(t *testing.T) {
	a := Endpoint{Addr: netip.MustParseAddrPort("127.0.0.1:40000"), SessionID: 7, SessionVersion: 1}
	offer := Offer(a)
	for _, s := range []string{
		"m=audio 40000 RTP/AVP 0 8 101\r\n",
		"a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000",
		"a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-15",
		"a=ptime:20", "a=sendrecv", "o=- 7 1 IN IP4 127.0.0.1",
	} {
		if !strings.Contains(string(offer), s) {
			t.Errorf("offer lacks %q:\n%s", s, offer)
		}
	}
	b := Endpoint{Addr: netip.MustParseAddrPort("127.0.0.1:41000"), SessionID: 8, SessionVersion: 1, Direction: RecvOnly}
	answer, bs, err := Negotiate(offer, b)
	if err != nil {
		t.Fatal(err)
	}
	if bs.Codec.Name != "PCMU" || bs.DTMFPT != 101 || bs.Remote.Port() != 40000 || bs.Direction != RecvOnly {
		t.Fatalf("answerer session %+v", bs)
	}
	as, err := ParseAnswer(answer, a)
	if err != nil {
		t.Fatal(err)
	}
	if as.Codec.Name != "PCMU" || as.DTMFPT != 101 || as.Remote.Port() != 41000 || as.Direction != SendOnly {
		t.Fatalf("offerer session %+v", as)
	}

	// An offer limited to PCMA without DTMF.
	c := Endpoint{Addr: netip.MustParseAddrPort("[::1]:5000"), Codecs: []Codec{PCMA}, NoDTMF: true, Direction: Inactive}
	offer = Offer(c)
	if !strings.Contains(string(offer), "m=audio 5000 RTP/AVP 8\r\n") || strings.Contains(string(offer), "telephone-event") ||
		!strings.Contains(string(offer), "c=IN IP6 ::1") || !strings.Contains(string(offer), "a=inactive") {
		t.Fatalf("offer:\n%s", offer)
	}
}

func TestParseAnswerRejected(t *testing.T) {
	ans := "v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\n"
	if _, err := ParseAnswer([]byte(ans), testLocal); !errors.Is(err, ErrNoCommonCodec) {
		t.Fatalf("err = %v", err)
	}
	if _, err := ParseAnswer([]byte("nonsense"), testLocal); !errors.Is(err, ErrMalformedSDP) {
		t.Fatalf("err = %v", err)
	}
}

func TestDirection(t *testing.T) {
	for _, d := range []Direction{SendRecv, SendOnly, RecvOnly, Inactive} {
		if d.Reverse().Reverse() != d {
			t.Errorf("%v reversed twice = %v", d, d.Reverse().Reverse())
		}
		got, ok := directionAttr([]sdp.Attribute{sdp.NewPropertyAttribute(d.String())})
		if !ok || got != d {
			t.Errorf("round trip %v = %v", d, got)
		}
	}
	if SendOnly.Reverse() != RecvOnly || Inactive.Reverse() != Inactive {
		t.Error("Reverse")
	}
}

// FuzzNegotiate: an SDP offer comes from the network (a phone's INVITE);
// whatever it holds, Negotiate answers or refuses it without panicking,
// and an answer it writes is one ParseAnswer reads back.
func FuzzNegotiate(f *testing.F) {
	f.Add([]byte("v=0\r\no=a 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n"))
	f.Add([]byte("v=0\r\no=a 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 5000 RTP/AVP 96\r\nc=IN IP4 0.0.0.0\r\nm=audio 4002 RTP/AVP 8\r\na=sendonly\r\n"))
	f.Add([]byte("v=0\r\nm=audio 99999 RTP/AVP 18\r\n"))
	local := Endpoint{Addr: netip.MustParseAddrPort("127.0.0.1:20000"), SessionID: 1, SessionVersion: 1}
	f.Fuzz(func(t *testing.T, offer []byte) {
		answer, sess, err := Negotiate(offer, local)
		if err != nil {
			return
		}
		if sess.Codec.Name != "PCMA" && sess.Codec.Name != "PCMU" {
			t.Fatalf("negotiated %v", sess.Codec)
		}
		back, err := ParseAnswer(answer, local)
		if err != nil {
			t.Fatalf("our answer does not read back: %v\n%s", err, answer)
		}
		if back.Codec.Name != sess.Codec.Name {
			t.Fatalf("our answer reads back as %v, negotiated %v", back.Codec, sess.Codec)
		}
	})
}

// TestRejectAll: every offered stream is refused with port 0, keeping its
// media, proto and formats (RFC 3264 section 6); an unreadable offer gets
// an answer without streams.
func TestRejectAll(t *testing.T) {
	offer := "v=0\r\no=alice 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\n" +
		"m=audio 5004 RTP/AVP 0 8 101\r\nm=video 5006 RTP/AVP 96\r\n"
	got := string(RejectAll([]byte(offer)))
	for _, want := range []string{"m=audio 0 RTP/AVP 0 8 101\r\n", "m=video 0 RTP/AVP 96\r\n", "c=IN IP4 0.0.0.0\r\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("RejectAll = %q, want %q in it", got, want)
		}
	}
	if got := string(RejectAll([]byte("garbage"))); !strings.HasPrefix(got, "v=0\r\n") || strings.Contains(got, "m=") {
		t.Errorf("RejectAll(garbage) = %q, want a description without streams", got)
	}
}
