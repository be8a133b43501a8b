package accuracy

import (
	"math"
	"sort"
)

func sortFloats(s []float64) { sort.Float64s(s) }

// Acc accumulates error energies over many batches without keeping the
// values (per-layer comparison of large intermediate tensors).
type Acc struct {
	N                     int64
	Dot, NormRef, NormGot float64
	Signal, Noise         float64
	SumAbs, MaxAbs        float64
	NonFinite             int64
}

// Add accumulates one batch; ref and got have the same length.
func (a *Acc) Add(ref, got []float64) {
	for i := range min(len(ref), len(got)) {
		r, g := ref[i], got[i]
		if bad(r) || bad(g) {
			a.NonFinite++
			continue
		}
		e := g - r
		a.N++
		a.Dot += r * g
		a.NormRef += r * r
		a.NormGot += g * g
		a.Noise += e * e
		a.SumAbs += math.Abs(e)
		a.MaxAbs = math.Max(a.MaxAbs, math.Abs(e))
	}
	a.Signal = a.NormRef
}

// Cosine similarity of everything added.
func (a *Acc) Cosine() float64 { return Cosine(a.Dot, a.NormRef, a.NormGot) }

// SQNR in dB of everything added.
func (a *Acc) SQNR() float64 { return SQNRdB(a.Signal, a.Noise) }

// MeanAbs is the mean absolute error.
func (a *Acc) MeanAbs() float64 {
	if a.N == 0 {
		return 0
	}
	return a.SumAbs / float64(a.N)
}

// RelNoise is the noise-to-signal energy ratio (0 without noise).
func (a *Acc) RelNoise() float64 {
	if a.Noise == 0 {
		return 0
	}
	if a.Signal == 0 {
		return math.Inf(1)
	}
	return a.Noise / a.Signal
}
