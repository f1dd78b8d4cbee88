package media

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"
)

// render plays g for n samples in 20 ms frames.
func render(g Source, n int) []int16 {
	out := make([]int16, 0, n+FrameSamples)
	frame := make([]int16, FrameSamples)
	for len(out) < n && g.Frame(frame) {
		out = append(out, frame...)
	}
	return out[:min(n, len(out))]
}

func samplesOf(d time.Duration) int { return int(d / (time.Second / SampleRate)) }

type run struct {
	on bool
	ms int
}

// cadence splits samples into 1 ms blocks, calls a block "on" when it has
// any energy (off segments are exact digital silence), and returns the
// run lengths.
func cadence(samples []int16) []run {
	var runs []run
	for i := 0; i+8 <= len(samples); i += 8 {
		var e int64
		for _, s := range samples[i : i+8] {
			e += int64(s) * int64(s)
		}
		on := e > 0
		if len(runs) > 0 && runs[len(runs)-1].on == on {
			runs[len(runs)-1].ms++
			continue
		}
		runs = append(runs, run{on, 1})
	}
	return runs
}

func expectedCadence(p Plan, cycles int) []run {
	var runs []run
	for range cycles {
		for _, s := range p.Segments {
			on := len(s.Freqs) > 0
			m := int(s.Duration / time.Millisecond)
			if len(runs) > 0 && runs[len(runs)-1].on == on {
				runs[len(runs)-1].ms += m
				continue
			}
			runs = append(runs, run{on, m})
		}
	}
	return runs
}

// probes are frequencies that must stay quiet unless planned: the whole
// call progress band plus the DTMF rows and columns.
func probes() []float64 {
	var f []float64
	for x := 300.0; x <= 1000; x += 25 {
		f = append(f, x)
	}
	return append(f, 697, 770, 852, 941, 1209, 1336, 1477, 1633, 1400, 2000)
}

func TestTonePlans(t *testing.T) {
	for _, cc := range Countries() {
		for _, kind := range ToneKinds() {
			t.Run(fmt.Sprintf("%s/%s", cc, kind), func(t *testing.T) {
				p, err := Tone(cc, kind)
				if err != nil {
					t.Fatal(err)
				}
				const cycles = 2
				n := samplesOf(p.Cycle()) * cycles
				samples := render(NewGenerator(p), n)
				if len(samples) != n {
					t.Fatalf("rendered %d samples, want %d", len(samples), n)
				}

				// Cadence: exact run lengths, 1 ms resolution.
				got, want := cadence(samples), expectedCadence(p, cycles)
				if !slices.Equal(got, want) {
					t.Fatalf("cadence %v, want %v", got, want)
				}

				// Frequencies: Goertzel over every sounding segment of
				// the first cycle.
				start := 0
				for _, s := range p.Segments {
					n := samplesOf(s.Duration)
					seg := samples[start : start+n]
					start += n
					if len(s.Freqs) == 0 {
						continue
					}
					amp := zeroDBm0Peak * math.Pow(10, p.Level/20)
					full := math.Pow(amp*float64(n)/2, 2)
					for _, f := range s.Freqs {
						if pw := goertzel(seg, f); pw < 0.9*full {
							t.Errorf("%v Hz: power %.3g, want about %.3g", f, pw, full)
						}
					}
					for _, f := range probes() {
						near := false
						for _, pf := range s.Freqs {
							near = near || math.Abs(f-pf) < 40
						}
						if near {
							continue
						}
						if pw := goertzel(seg, f); pw > 0.01*full {
							t.Errorf("unplanned %v Hz: power %.3g (%.1f%% of planned)", f, pw, 100*pw/full)
						}
					}
				}
			})
		}
	}
}

// The E.180 figures the plans must carry, spelled out once more so a typo
// in the table fails a test.
func TestToneValuesE180(t *testing.T) {
	tests := []struct {
		cc      string
		kind    ToneKind
		freqs   []float64
		onOff   [2]time.Duration
		comment string
	}{
		{"US", ToneBusy, []float64{480, 620}, [2]time.Duration{500 * ms, 500 * ms}, ""},
		{"US", ToneRingback, []float64{440, 480}, [2]time.Duration{2 * time.Second, 4 * time.Second}, ""},
		{"US", ToneReorder, []float64{480, 620}, [2]time.Duration{250 * ms, 250 * ms}, ""},
		{"DE", ToneBusy, []float64{425}, [2]time.Duration{480 * ms, 480 * ms}, ""},
		{"DE", ToneRingback, []float64{425}, [2]time.Duration{time.Second, 4 * time.Second}, ""},
		{"DE", ToneCongestion, []float64{425}, [2]time.Duration{240 * ms, 240 * ms}, ""},
		{"CN", ToneBusy, []float64{450}, [2]time.Duration{350 * ms, 350 * ms}, ""},
		{"CN", ToneRingback, []float64{450}, [2]time.Duration{time.Second, 4 * time.Second}, ""},
		{"CN", ToneCongestion, []float64{450}, [2]time.Duration{700 * ms, 700 * ms}, ""},
		{"KR", ToneBusy, []float64{480, 620}, [2]time.Duration{500 * ms, 500 * ms}, ""},
		{"KR", ToneRingback, []float64{440, 480}, [2]time.Duration{time.Second, 2 * time.Second}, ""},
		{"KR", ToneCongestion, []float64{480, 620}, [2]time.Duration{300 * ms, 200 * ms}, ""},
	}
	for _, tc := range tests {
		p, err := Tone(tc.cc, tc.kind)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Segments) != 2 || !slices.Equal(p.Segments[0].Freqs, tc.freqs) ||
			p.Segments[0].Duration != tc.onOff[0] || p.Segments[1].Duration != tc.onOff[1] || len(p.Segments[1].Freqs) != 0 {
			t.Errorf("%s %s = %+v", tc.cc, tc.kind, p.Segments)
		}
	}
}

func TestToneUnknown(t *testing.T) {
	if _, err := Tone("XX", ToneBusy); !errors.Is(err, ErrUnknownTone) {
		t.Errorf("country: %v", err)
	}
	if _, err := Tone("us", "howler"); !errors.Is(err, ErrUnknownTone) {
		t.Errorf("kind: %v", err)
	}
	if p, err := Tone(" de ", ToneBusy); err != nil || p.Country != "DE" {
		t.Errorf("case/space: %v %v", p.Country, err)
	}
}

// Rendering in 20 ms frames or in odd-sized chunks gives the same samples:
// phases and cadence positions carry over between calls.
func TestGeneratorPhaseContinuous(t *testing.T) {
	p, _ := Tone("US", ToneBusy)
	n := samplesOf(3 * time.Second)
	framed := render(NewGenerator(p), n)

	g := NewGenerator(p)
	var chunked []int16
	buf := make([]int16, 37)
	for len(chunked) < n {
		if !g.Frame(buf) {
			t.Fatal("repeating plan ended")
		}
		chunked = append(chunked, buf...)
	}
	if !slices.Equal(framed, chunked[:n]) {
		t.Fatal("frame size changes the output")
	}
	g.Reset()
	if again := render(g, n); !slices.Equal(framed, again) {
		t.Fatal("Reset does not restart the plan")
	}
	// No jumps inside a sounding segment: the largest sample step of a
	// 480+620 Hz pair is bounded by its slope.
	amp := zeroDBm0Peak * math.Pow(10, p.Level/20)
	limit := amp*2*math.Pi*(480+620)/SampleRate + 2
	for i := 1; i < samplesOf(500*ms); i++ {
		if d := math.Abs(float64(framed[i]) - float64(framed[i-1])); d > limit {
			t.Fatalf("sample %d jumps by %v (limit %v)", i, d, limit)
		}
	}
}

func TestGeneratorOnce(t *testing.T) {
	p := Plan{Level: -13, Segments: []Segment{on(30*ms, 1000)}}
	g := NewGenerator(p)
	frame := make([]int16, FrameSamples)
	if !g.Frame(frame) || frame[1] == 0 {
		t.Fatal("first frame")
	}
	if !g.Frame(frame) {
		t.Fatal("second frame")
	}
	if frame[79] == 0 || slices.ContainsFunc(frame[80:], func(s int16) bool { return s != 0 }) {
		t.Fatal("last frame must end in silence after 10 ms")
	}
	if g.Frame(frame) {
		t.Fatal("plan should be over")
	}
	if NewGenerator(Plan{}).Frame(frame) {
		t.Fatal("empty plan yields audio")
	}
}
