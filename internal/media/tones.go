package media

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// ToneKind names a call progress tone.
type ToneKind string

// Tone kinds. Reorder (the North American "fast busy") and congestion are
// kept apart because some plans distinguish them; where a country has only
// one, both map to it.
const (
	ToneDial          ToneKind = "dial"
	ToneBusy          ToneKind = "busy"
	ToneRingback      ToneKind = "ringback"
	ToneReorder       ToneKind = "reorder"
	ToneCongestion    ToneKind = "congestion"
	ToneCallbackAlert ToneKind = "callback_alert"
)

// ErrUnknownTone is returned for a country or kind without a plan.
var ErrUnknownTone = errors.New("media: unknown tone")

// Segment is one step of a cadence: the frequencies sounding together, or
// silence when Freqs is empty.
type Segment struct {
	Freqs    []float64 // Hz
	Duration time.Duration
}

// Plan is a tone: cadence segments played in order, then again from the
// start when Repeat is set.
type Plan struct {
	Country string
	Kind    ToneKind
	// Level is the level of each frequency component in dBm0.
	Level    float64
	Segments []Segment
	Repeat   bool
}

// Cycle is the duration of one pass over the segments.
func (p Plan) Cycle() time.Duration {
	var d time.Duration
	for _, s := range p.Segments {
		d += s.Duration
	}
	return d
}

func on(d time.Duration, f ...float64) Segment { return Segment{Freqs: f, Duration: d} }
func off(d time.Duration) Segment              { return Segment{Duration: d} }

const ms = time.Millisecond

// The chime played as the Call Back alert (F32 "Callback Audio Notification
// File Name"): a descending major third, E5 then C5, the "ding-dong" of a
// doorbell, so it cannot be mistaken for any E.180 call progress tone.
var callbackAlert = []Segment{on(250*ms, 659.25), on(400*ms, 523.25), off(600 * ms)}

// tonePlans holds the national values of ITU-T E.180 Supplement 2
// ("Various tones used in national networks", the annex to ITU Operational
// Bulletin 781), listed as frequencies in Hz and on/off cadences in
// seconds.
var tonePlans = map[string]map[ToneKind][]Segment{
	// United States: dial 350+440 continuous; ringing 440+480 2.0-4.0;
	// busy 480+620 0.5-0.5; congestion (reorder) 480+620 0.25-0.25.
	"US": {
		ToneDial:       {on(time.Second, 350, 440)},
		ToneRingback:   {on(2*time.Second, 440, 480), off(4 * time.Second)},
		ToneBusy:       {on(500*ms, 480, 620), off(500 * ms)},
		ToneReorder:    {on(250*ms, 480, 620), off(250 * ms)},
		ToneCongestion: {on(250*ms, 480, 620), off(250 * ms)},
	},
	// Germany: dial 425 continuous; ringing 425 1.0-4.0; busy 425
	// 0.48-0.48; congestion 425 0.24-0.24 (no separate reorder tone).
	"DE": {
		ToneDial:       {on(time.Second, 425)},
		ToneRingback:   {on(time.Second, 425), off(4 * time.Second)},
		ToneBusy:       {on(480*ms, 425), off(480 * ms)},
		ToneReorder:    {on(240*ms, 425), off(240 * ms)},
		ToneCongestion: {on(240*ms, 425), off(240 * ms)},
	},
	// China: dial 450 continuous; ringing 450 1.0-4.0; busy 450 0.35-0.35;
	// congestion 450 0.7-0.7 (no separate reorder tone).
	"CN": {
		ToneDial:       {on(time.Second, 450)},
		ToneRingback:   {on(time.Second, 450), off(4 * time.Second)},
		ToneBusy:       {on(350*ms, 450), off(350 * ms)},
		ToneReorder:    {on(700*ms, 450), off(700 * ms)},
		ToneCongestion: {on(700*ms, 450), off(700 * ms)},
	},
	// Korea (Rep. of): dial 350+440 continuous; ringing 440+480 1.0-2.0;
	// busy 480+620 0.5-0.5; congestion (reorder) 480+620 0.3-0.2.
	"KR": {
		ToneDial:       {on(time.Second, 350, 440)},
		ToneRingback:   {on(time.Second, 440, 480), off(2 * time.Second)},
		ToneBusy:       {on(500*ms, 480, 620), off(500 * ms)},
		ToneReorder:    {on(300*ms, 480, 620), off(200 * ms)},
		ToneCongestion: {on(300*ms, 480, 620), off(200 * ms)},
	},
}

// Countries lists the ISO 3166 codes with a tone plan.
func Countries() []string {
	out := make([]string, 0, len(tonePlans))
	for c := range tonePlans {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

// ToneKinds lists every tone kind each country provides.
func ToneKinds() []ToneKind {
	return []ToneKind{ToneDial, ToneBusy, ToneRingback, ToneReorder, ToneCongestion, ToneCallbackAlert}
}

// Tone returns the plan of kind for an ISO 3166 country code (case
// insensitive). Every plan repeats; the Call Back alert is the same chime
// in every country.
func Tone(country string, kind ToneKind) (Plan, error) {
	cc := strings.ToUpper(strings.TrimSpace(country))
	plans, ok := tonePlans[cc]
	if !ok {
		return Plan{}, fmt.Errorf("%w: country %q", ErrUnknownTone, country)
	}
	segs, ok := plans[kind]
	if kind == ToneCallbackAlert {
		segs, ok = callbackAlert, true
	}
	if !ok {
		return Plan{}, fmt.Errorf("%w: %q in %s", ErrUnknownTone, kind, cc)
	}
	// Each component at -13 dBm0 for a single frequency and -16 dBm0 for a
	// pair, so the sum stays near -13 dBm0 (ITU-T Q.35 range).
	level := -13.0
	for _, s := range segs {
		if len(s.Freqs) > 1 {
			level = -16
		}
	}
	return Plan{Country: cc, Kind: kind, Level: level, Segments: segs, Repeat: true}, nil
}

// dBm0 reference: a full-scale linear16 sine is +3.17 dBm0 in G.711
// (ITU-T G.711 table 5/6), so 0 dBm0 peaks at 32767 * 10^(-3.17/20).
const zeroDBm0Peak = 22786.0

// Generator renders a Plan as linear16 samples at 8 kHz. It is
// deterministic and phase continuous across frames: oscillator phases are
// carried from one call to the next, so frame boundaries do not click.
type Generator struct {
	plan  Plan
	amp   float64
	seg   int // current segment
	pos   int // samples already played in the current segment
	phase []float64
	done  bool
}

// NewGenerator returns a generator positioned at the start of p.
func NewGenerator(p Plan) *Generator {
	n := 0
	for _, s := range p.Segments {
		n = max(n, len(s.Freqs))
	}
	return &Generator{
		plan:  p,
		amp:   zeroDBm0Peak * math.Pow(10, p.Level/20),
		phase: make([]float64, n),
		done:  len(p.Segments) == 0,
	}
}

// Frame implements Source. A repeating plan never ends; a non-repeating
// one pads its last frame with silence and then reports false.
func (g *Generator) Frame(dst []int16) bool {
	if g.done {
		return false
	}
	const twoPi = 2 * math.Pi
	i := 0
	// Bounded: every pass either fills samples or advances a segment, and
	// a plan has finitely many segments; a plan whose segments all last 0
	// ends through the loop guard.
	for guard := 0; i < len(dst) && guard <= len(dst)+2*len(g.plan.Segments); guard++ {
		s := g.plan.Segments[g.seg]
		n := int(s.Duration / (time.Second / SampleRate))
		if g.pos >= n {
			g.pos = 0
			g.seg++
			if g.seg == len(g.plan.Segments) {
				g.seg = 0
				if !g.plan.Repeat {
					g.done = true
					break
				}
			}
			continue
		}
		take := min(n-g.pos, len(dst)-i)
		if len(s.Freqs) == 0 {
			clear(dst[i : i+take])
		} else {
			for j := i; j < i+take; j++ {
				var v float64
				for k, f := range s.Freqs {
					v += math.Sin(g.phase[k])
					g.phase[k] += twoPi * f / SampleRate
					if g.phase[k] >= twoPi {
						g.phase[k] -= twoPi
					}
				}
				dst[j] = int16(math.Round(v * g.amp))
			}
		}
		i += take
		g.pos += take
	}
	if i == 0 && g.done {
		return false
	}
	clear(dst[i:])
	return true
}

// Reset rewinds the generator to the start of its plan.
func (g *Generator) Reset() {
	g.seg, g.pos, g.done = 0, 0, len(g.plan.Segments) == 0
	clear(g.phase)
}
