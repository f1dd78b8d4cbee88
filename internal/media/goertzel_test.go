package media

import "math"

// goertzel returns the power of samples at freq (Hz, 8 kHz sampling), the
// squared magnitude of the single DFT term computed by the Goertzel
// recurrence. The tone tests measure with it.
func goertzel(samples []int16, freq float64) float64 {
	coeff := 2 * math.Cos(2*math.Pi*freq/SampleRate)
	var s1, s2 float64
	for _, x := range samples {
		s0 := float64(x) + coeff*s1 - s2
		s2, s1 = s1, s0
	}
	return s1*s1 + s2*s2 - coeff*s1*s2
}
