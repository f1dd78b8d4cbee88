package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ErrWAVFormat is returned for RIFF files that are not WAVE, are damaged,
// or hold audio other than 8 kHz mono 16-bit linear PCM.
var ErrWAVFormat = errors.New("media: unsupported WAV")

// maxWAV bounds what ReadWAV reads: about 68 minutes at 16 KB/s.
const maxWAV = 64 << 20

const (
	wavFormatPCM        = 1
	wavFormatExtensible = 0xfffe
)

// ReadWAV reads a whole 8 kHz mono 16-bit PCM WAV file (at most 64 MiB).
func ReadWAV(r io.Reader) ([]int16, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxWAV+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxWAV {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrWAVFormat, maxWAV)
	}
	return DecodeWAV(b)
}

// DecodeWAV parses a RIFF WAVE file (Microsoft "Multimedia Programming
// Interface and Data Specifications 1.0", 1991) holding 8 kHz mono 16-bit
// little-endian PCM. Chunks other than "fmt " and "data" (LIST, fact,
// cue, ...) are skipped, honouring the pad byte after odd-sized chunks.
func DecodeWAV(b []byte) ([]int16, error) {
	if len(b) < 12 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return nil, fmt.Errorf("%w: not a RIFF WAVE file", ErrWAVFormat)
	}
	var (
		haveFmt bool
		data    []byte
	)
	rest := b[12:]
	for len(rest) >= 8 && data == nil {
		id := string(rest[0:4])
		size := int64(binary.LittleEndian.Uint32(rest[4:8]))
		rest = rest[8:]
		if size > int64(len(rest)) {
			if id != "data" {
				return nil, fmt.Errorf("%w: chunk %q of %d bytes truncated to %d", ErrWAVFormat, id, size, len(rest))
			}
			// Streamed writers leave the data size at 0xffffffff or
			// too large; take what is there.
			size = int64(len(rest))
		}
		body := rest[:size]
		switch id {
		case "fmt ":
			if err := checkFmt(body); err != nil {
				return nil, err
			}
			haveFmt = true
		case "data":
			if !haveFmt {
				return nil, fmt.Errorf("%w: data chunk before fmt chunk", ErrWAVFormat)
			}
			data = body
		}
		rest = rest[size:]
		if size%2 == 1 && len(rest) > 0 {
			rest = rest[1:]
		}
	}
	if !haveFmt {
		return nil, fmt.Errorf("%w: no fmt chunk", ErrWAVFormat)
	}
	if data == nil {
		return nil, fmt.Errorf("%w: no data chunk", ErrWAVFormat)
	}
	out := make([]int16, len(data)/2)
	for i := range out {
		out[i] = int16(binary.LittleEndian.Uint16(data[2*i:]))
	}
	return out, nil
}

func checkFmt(f []byte) error {
	if len(f) < 16 {
		return fmt.Errorf("%w: fmt chunk of %d bytes", ErrWAVFormat, len(f))
	}
	format := binary.LittleEndian.Uint16(f[0:2])
	channels := binary.LittleEndian.Uint16(f[2:4])
	rate := binary.LittleEndian.Uint32(f[4:8])
	bits := binary.LittleEndian.Uint16(f[14:16])
	if format == wavFormatExtensible {
		// WAVEFORMATEXTENSIBLE: the real format is the first two bytes of
		// the SubFormat GUID at offset 24.
		if len(f) < 40 {
			return fmt.Errorf("%w: short WAVE_FORMAT_EXTENSIBLE fmt chunk", ErrWAVFormat)
		}
		format = binary.LittleEndian.Uint16(f[24:26])
	}
	switch {
	case format != wavFormatPCM:
		return fmt.Errorf("%w: format tag %d, want 1 (PCM)", ErrWAVFormat, format)
	case channels != 1:
		return fmt.Errorf("%w: %d channels, want mono", ErrWAVFormat, channels)
	case rate != SampleRate:
		return fmt.Errorf("%w: %d Hz, want %d Hz", ErrWAVFormat, rate, SampleRate)
	case bits != 16:
		return fmt.Errorf("%w: %d bits per sample, want 16", ErrWAVFormat, bits)
	}
	return nil
}

// WriteWAV writes samples as an 8 kHz mono 16-bit PCM WAV file.
func WriteWAV(w io.Writer, samples []int16) error {
	_, err := w.Write(EncodeWAV(samples))
	return err
}

// EncodeWAV returns samples as an 8 kHz mono 16-bit PCM WAV file.
func EncodeWAV(samples []int16) []byte {
	var b bytes.Buffer
	n := uint32(2 * len(samples))
	b.Grow(44 + int(n))
	le := binary.LittleEndian
	b.WriteString("RIFF")
	_ = binary.Write(&b, le, 36+n)
	b.WriteString("WAVEfmt ")
	_ = binary.Write(&b, le, uint32(16))
	_ = binary.Write(&b, le, uint16(wavFormatPCM))
	_ = binary.Write(&b, le, uint16(1))            // channels
	_ = binary.Write(&b, le, uint32(SampleRate))   // sample rate
	_ = binary.Write(&b, le, uint32(SampleRate*2)) // byte rate
	_ = binary.Write(&b, le, uint16(2))            // block align
	_ = binary.Write(&b, le, uint16(16))           // bits per sample
	b.WriteString("data")
	_ = binary.Write(&b, le, n)
	_ = binary.Write(&b, le, samples)
	return b.Bytes()
}
