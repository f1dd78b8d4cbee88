package media

import (
	"strings"
	"testing"
	"time"
)

// dtmfAudio renders keys as tone pairs of on ms separated by off ms,
// at -10 dBm0 per tone (-16 for the low group with twist), then passes
// them through codec.
func dtmfAudio(keys string, onMs, offMs int, twist float64, c Codec) []int16 {
	var out []int16
	for _, k := range keys {
		i := strings.IndexRune(dtmfGrid, k)
		row, col := dtmfRows[i/4], dtmfCols[i%4]
		lo := NewGenerator(Plan{Level: -10 - twist, Segments: []Segment{on(time.Duration(onMs)*ms, row), off(time.Duration(offMs) * ms)}})
		hi := NewGenerator(Plan{Level: -10, Segments: []Segment{on(time.Duration(onMs)*ms, col), off(time.Duration(offMs) * ms)}})
		a := render(lo, (onMs+offMs)*8)
		b := render(hi, (onMs+offMs)*8)
		for j := range a {
			out = append(out, a[j]+b[j])
		}
	}
	return c.Decode(nil, c.Encode(nil, out))
}

func detectAll(pcm []int16) string {
	var d InbandDetector
	var s string
	for i := 0; i+FrameSamples <= len(pcm); i += FrameSamples {
		if r, ok := d.Frame(pcm[i : i+FrameSamples]); ok {
			s += string(r)
		}
	}
	return s
}

func TestInbandDetector(t *testing.T) {
	for _, c := range []Codec{PCMU, PCMA} {
		if got := detectAll(dtmfAudio(dtmfGrid, 70, 60, 0, c)); got != dtmfGrid {
			t.Errorf("%s: detected %q, want %q", c.Name, got, dtmfGrid)
		}
		if got := detectAll(dtmfAudio("55", 100, 60, 4, c)); got != "55" {
			t.Errorf("%s twist 4 dB: %q", c.Name, got)
		}
	}
	// A tone too short to be a key press (Q.24: under 40 ms may be
	// rejected; 20 ms never fills two frames).
	if got := detectAll(dtmfAudio("5", 20, 60, 0, PCMU)); got != "" {
		t.Errorf("20 ms tone detected as %q", got)
	}
	// Talk-off: no digits in the announcements or the call progress tones.
	for _, l := range wantLocales {
		for _, name := range PromptNames() {
			p, _ := Prompt(l, name)
			if got := detectAll(p); got != "" {
				t.Errorf("prompt %s/%s detected as %q", l, name, got)
			}
		}
	}
	for _, cc := range Countries() {
		for _, k := range ToneKinds() {
			p, _ := Tone(cc, k)
			if got := detectAll(render(NewGenerator(p), 8*8000)); got != "" {
				t.Errorf("tone %s %s detected as %q", cc, k, got)
			}
		}
	}
}
