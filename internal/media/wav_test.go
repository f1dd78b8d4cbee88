package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestWAVRoundTrip(t *testing.T) {
	in := []int16{0, 1, -1, 32767, -32768, 1234}
	var buf bytes.Buffer
	if err := WriteWAV(&buf, in); err != nil {
		t.Fatal(err)
	}
	if buf.Len() != 44+2*len(in) {
		t.Fatalf("size %d", buf.Len())
	}
	out, err := ReadWAV(&buf)
	if err != nil || !slices.Equal(in, out) {
		t.Fatalf("round trip %v, %v", out, err)
	}
	if out, err := DecodeWAV(EncodeWAV(nil)); err != nil || len(out) != 0 {
		t.Fatalf("empty: %v %v", out, err)
	}
}

// wavFile builds a RIFF file from raw chunks.
func wavFile(chunks ...[]byte) []byte {
	body := []byte("WAVE")
	for _, c := range chunks {
		body = append(body, c...)
	}
	out := []byte("RIFF")
	out = binary.LittleEndian.AppendUint32(out, uint32(len(body)))
	return append(out, body...)
}

func chunk(id string, body []byte) []byte {
	out := append([]byte(id), binary.LittleEndian.AppendUint32(nil, uint32(len(body)))...)
	out = append(out, body...)
	if len(body)%2 == 1 {
		out = append(out, 0)
	}
	return out
}

func fmtChunk(format, channels uint16, rate uint32, bits uint16) []byte {
	le := binary.LittleEndian
	b := le.AppendUint16(nil, format)
	b = le.AppendUint16(b, channels)
	b = le.AppendUint32(b, rate)
	b = le.AppendUint32(b, rate*uint32(channels)*uint32(bits)/8)
	b = le.AppendUint16(b, channels*bits/8)
	b = le.AppendUint16(b, bits)
	return chunk("fmt ", b)
}

func TestDecodeWAV(t *testing.T) {
	pcm := chunk("data", []byte{1, 0, 2, 0, 0xff, 0xff})
	ext := func(sub uint16) []byte {
		le := binary.LittleEndian
		b := le.AppendUint16(nil, wavFormatExtensible)
		b = le.AppendUint16(b, 1)
		b = le.AppendUint32(b, 8000)
		b = le.AppendUint32(b, 16000)
		b = le.AppendUint16(b, 2)
		b = le.AppendUint16(b, 16)
		b = le.AppendUint16(b, 22) // cbSize
		b = le.AppendUint16(b, 16) // valid bits
		b = le.AppendUint32(b, 4)  // channel mask
		b = le.AppendUint16(b, sub)
		b = append(b, "\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"...)
		return chunk("fmt ", b)
	}
	tests := []struct {
		name string
		file []byte
		want []int16
		err  string
	}{
		{"plain", wavFile(fmtChunk(1, 1, 8000, 16), pcm), []int16{1, 2, -1}, ""},
		{"skips LIST and odd chunk", wavFile(chunk("LIST", []byte("INFOabc")), fmtChunk(1, 1, 8000, 16), chunk("fact", []byte{1, 2, 3, 4}), pcm), []int16{1, 2, -1}, ""},
		{"extensible PCM", wavFile(ext(1), pcm), []int16{1, 2, -1}, ""},
		{"streamed data size", func() []byte {
			f := wavFile(fmtChunk(1, 1, 8000, 16), pcm)
			copy(f[len(f)-10:], []byte{0xff, 0xff, 0xff, 0xff})
			return f
		}(), []int16{1, 2, -1}, ""},
		{"stereo", wavFile(fmtChunk(1, 2, 8000, 16), pcm), nil, "2 channels"},
		{"16 kHz", wavFile(fmtChunk(1, 1, 16000, 16), pcm), nil, "16000 Hz"},
		{"8 bit", wavFile(fmtChunk(1, 1, 8000, 8), pcm), nil, "8 bits"},
		{"mu-law", wavFile(fmtChunk(7, 1, 8000, 8), pcm), nil, "format tag 7"},
		{"extensible float", wavFile(ext(3), pcm), nil, "format tag 3"},
		{"not RIFF", []byte("RIFX....WAVE"), nil, "not a RIFF"},
		{"AVI", append([]byte("RIFF\x04\x00\x00\x00"), "AVI "...), nil, "not a RIFF"},
		{"short", []byte("RIF"), nil, "not a RIFF"},
		{"no fmt", wavFile(pcm), nil, "before fmt"},
		{"no data", wavFile(fmtChunk(1, 1, 8000, 16)), nil, "no data"},
		{"nothing", wavFile(), nil, "no fmt"},
		{"short fmt", wavFile(chunk("fmt ", []byte{1, 0, 1, 0})), nil, "fmt chunk of 4"},
		{"truncated chunk", wavFile([]byte("LIST\xff\x00\x00\x00abc")), nil, "truncated"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeWAV(tc.file)
			if tc.err != "" {
				if !errors.Is(err, ErrWAVFormat) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, %v", got, err)
			}
		})
	}
}
