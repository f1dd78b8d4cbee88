package media

import "math"

// The DTMF frequency grid of ITU-T Q.23: rows (low group) and columns
// (high group).
var (
	dtmfRows = [4]float64{697, 770, 852, 941}
	dtmfCols = [4]float64{1209, 1336, 1477, 1633}
)

const dtmfGrid = "123A456B789C*0#D"

// InbandDetector finds DTMF digits in decoded audio, for peers that send
// keys in-band in PCMU/PCMA instead of RFC 4733 events. It runs Goertzel
// filters at the eight Q.23 frequencies over each 20 ms frame and reports
// a digit once it has held for two frames (40 ms, the shortest tone ITU-T
// Q.24 asks receivers to accept), then not again until a frame without it.
type InbandDetector struct {
	cand     rune
	held     int
	reported bool
}

// Frame examines one frame (normally 160 samples) and returns a digit the
// first time it is confirmed.
func (d *InbandDetector) Frame(pcm []int16) (rune, bool) {
	r := detectDTMF(pcm)
	if r == 0 || r != d.cand {
		d.cand, d.held, d.reported = r, 0, false
	}
	if r == 0 {
		return 0, false
	}
	d.held++
	if d.held >= 2 && !d.reported {
		d.reported = true
		return r, true
	}
	return 0, false
}

// detectDTMF returns the digit sounding in pcm, or 0.
func detectDTMF(pcm []int16) rune {
	if len(pcm) < 80 {
		return 0
	}
	var energy float64
	for _, x := range pcm {
		energy += float64(x) * float64(x)
	}
	n := float64(len(pcm))
	// Mean power of two tones at -35 dBm0 each (a sine of peak a has mean
	// power a*a/2): quieter frames hold no key press.
	a := zeroDBm0Peak * math.Pow(10, -35.0/20)
	if energy/n < a*a {
		return 0
	}
	// A sinusoid holding energy e of the frame gives a Goertzel power of
	// about e*n/2, so share is the fraction of the frame's energy at f.
	share := func(f float64) float64 { return 2 * goertzel(pcm, f) / (n * energy) }
	best := func(fs [4]float64) (int, float64, float64) {
		bi, b, second := 0, -1.0, 0.0
		for i, f := range fs {
			s := share(f)
			if s > b {
				second, b, bi = max(second, b), s, i
			} else if s > second {
				second = s
			}
		}
		return bi, b, second
	}
	ri, rs, r2 := best(dtmfRows)
	ci, cs, c2 := best(dtmfCols)
	switch {
	case rs+cs < 0.8: // most of the energy must be in the two tones
		return 0
	case rs < 6*r2 || cs < 6*c2: // one clear frequency per group
		return 0
	case rs > 6.3*cs || cs > 6.3*rs: // twist within 8 dB (Q.24)
		return 0
	}
	return rune(dtmfGrid[ri*4+ci])
}
