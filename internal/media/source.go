package media

// Source yields audio in 20 ms frames. Frame fills dst (normally
// FrameSamples long) and reports false, leaving dst untouched, once the
// source is exhausted. Generator, Samples and Sequence are Sources.
type Source interface {
	Frame(dst []int16) bool
}

// Samples plays a fixed buffer such as a prompt, once or in a loop. The
// last frame of a single pass is padded with silence.
type Samples struct {
	s    []int16
	pos  int
	loop bool
}

// NewSamples returns a Source over s. s is only read, so a prompt shared
// by many streams needs no copy.
func NewSamples(s []int16, loop bool) *Samples { return &Samples{s: s, loop: loop} }

// Frame implements Source.
func (p *Samples) Frame(dst []int16) bool {
	if len(p.s) == 0 || (!p.loop && p.pos >= len(p.s)) {
		return false
	}
	i := 0
	// Bounded: each pass copies at least one sample or ends the frame.
	for i < len(dst) {
		n := copy(dst[i:], p.s[p.pos:])
		i += n
		p.pos += n
		if p.pos < len(p.s) {
			continue
		}
		if !p.loop {
			clear(dst[i:])
			break
		}
		p.pos = 0
	}
	return true
}

// Rewind restarts from the first sample.
func (p *Samples) Rewind() { p.pos = 0 }

// sequence plays sources one after the other.
type sequence struct {
	srcs []Source
}

// Sequence plays each source until it is exhausted, then the next: a
// prompt followed by a repeating tone, for instance. A frame never mixes
// two sources.
func Sequence(srcs ...Source) Source { return &sequence{srcs: srcs} }

func (q *sequence) Frame(dst []int16) bool {
	for len(q.srcs) > 0 {
		if q.srcs[0] != nil && q.srcs[0].Frame(dst) {
			return true
		}
		q.srcs = q.srcs[1:]
	}
	return false
}

// Silence returns a Source of n silent frames.
func Silence(frames int) Source { return NewSamples(make([]int16, frames*FrameSamples), false) }
