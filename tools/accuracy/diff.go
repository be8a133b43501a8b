package accuracy

import (
	"math"
)

// Diff compares a candidate output with a reference output of the same
// size. Relative differences divide by |reference| (an element whose
// reference is 0 has relative difference 0 when equal, +Inf otherwise).
type Diff struct {
	N          int
	Ref, Got   Summary // the values of each side
	Abs, Rel   Summary // |got − ref| and |got − ref| / |ref|
	Cosine     float64 // cosine similarity of the two vectors (1 when both are zero)
	SQNR       float64 // 10·log10(Σref² / Σ(got−ref)²) in dB; +Inf when equal
	Tol        Tolerance
	Mismatches int  // elements failing the elementwise rule (whatever the check)
	Pass       bool // the check with Tol passed
	// The smallest atol that passes the check at Tol.RTol, and the smallest
	// rtol that passes at Tol.ATol.
	MinATol, MinRTol float64
	// NaNMismatch counts elements where exactly one side is NaN or the sides
	// are different infinities: they always fail.
	NaNMismatch int
}

// Compare returns the differences of got from ref under tol.
func Compare(ref, got []float64, tol Tolerance) *Diff {
	tol = tol.withDefaults()
	n := min(len(ref), len(got))
	d := &Diff{N: n, Tol: tol, Ref: Summarize(ref[:n]), Got: Summarize(got[:n])}
	abs := make([]float64, n)
	rel := make([]float64, n)
	var dot, na, nb, sig, noise float64
	for i := 0; i < n; i++ {
		r, g := ref[i], got[i]
		if bad(r) || bad(g) {
			same := (math.IsNaN(r) && math.IsNaN(g)) || r == g
			if !same {
				d.NaNMismatch++
			}
			abs[i], rel[i] = math.NaN(), math.NaN()
			continue
		}
		e := math.Abs(g - r)
		abs[i] = e
		switch {
		case e == 0:
			rel[i] = 0
		case r == 0:
			rel[i] = math.Inf(1)
		default:
			rel[i] = e / math.Abs(r)
		}
		dot += r * g
		na += r * r
		nb += g * g
		sig += r * r
		noise += e * e
	}
	d.Abs, d.Rel = Summarize(abs), Summarize(rel)
	// Summarize leaves +Inf relative differences out; count them back in as
	// the maximum so that max/quantile checks see them.
	for i, v := range rel {
		if math.IsInf(v, 1) {
			d.Rel.Max, d.Rel.ArgMax = v, i
			break
		}
	}
	d.Cosine = Cosine(dot, na, nb)
	d.SQNR = SQNRdB(sig, noise)
	for i := 0; i < n; i++ {
		if !math.IsNaN(abs[i]) && abs[i] > tol.ATol && rel[i] > tol.RTol {
			d.Mismatches++
		}
	}
	d.Mismatches += d.NaNMismatch
	d.MinATol, d.MinRTol = minTolerances(abs, rel, tol)
	d.Pass = d.NaNMismatch == 0 && d.passes(abs, rel)
	return d
}

func bad(x float64) bool { return math.IsNaN(x) || math.IsInf(x, 0) }

// stat is the check's statistic of the (finite) values.
func (d *Diff) stat(s Summary, vals []float64) float64 {
	switch d.Tol.Check {
	case Mean:
		return s.Mean
	case Median:
		return s.Median
	case Max:
		return s.Max
	case QuantileCheck:
		return quantileWithInf(vals, d.Tol.Quantile)
	}
	return math.NaN()
}

func quantileWithInf(vals []float64, q float64) float64 {
	// +Inf relative differences are real (reference 0, candidate not).
	cp := make([]float64, 0, len(vals))
	for _, v := range vals {
		if !math.IsNaN(v) {
			cp = append(cp, v)
		}
	}
	return quantileFinite(cp, q)
}

func quantileFinite(vals []float64, q float64) float64 {
	if len(vals) == 0 {
		return 0
	}
	s := append([]float64(nil), vals...)
	sortFloats(s)
	return quantileSorted(s, q)
}

func (d *Diff) passes(abs, rel []float64) bool {
	if d.N == 0 {
		return true
	}
	if d.Tol.Check == Elemwise {
		return d.Mismatches == 0
	}
	a, r := d.stat(d.Abs, abs), d.stat(d.relWithInf(), rel)
	return a <= d.Tol.ATol || r <= d.Tol.RTol
}

// relWithInf is Rel with the mean made +Inf when any relative difference is.
func (d *Diff) relWithInf() Summary {
	s := d.Rel
	if math.IsInf(s.Max, 1) {
		s.Mean = math.Inf(1)
	}
	return s
}

// minTolerances: for the elementwise check, the smallest atol making every
// element pass at the given rtol is the largest abs among elements whose
// rel exceeds rtol (and symmetrically for rtol); for the statistic checks it
// is the statistic itself unless the other side already passes (then 0).
func minTolerances(abs, rel []float64, tol Tolerance) (float64, float64) {
	if tol.Check == Elemwise {
		var ma, mr float64
		for i := range abs {
			if math.IsNaN(abs[i]) {
				continue
			}
			if rel[i] > tol.RTol {
				ma = math.Max(ma, abs[i])
			}
			if abs[i] > tol.ATol {
				mr = math.Max(mr, rel[i])
			}
		}
		return ma, mr
	}
	d := &Diff{Tol: tol, Abs: Summarize(abs), Rel: Summarize(rel)}
	for i, v := range rel {
		if math.IsInf(v, 1) {
			d.Rel.Max, d.Rel.ArgMax = v, i
			break
		}
	}
	a, r := d.stat(d.Abs, abs), d.stat(d.relWithInf(), rel)
	ma, mr := a, r
	if r <= tol.RTol {
		ma = 0
	}
	if a <= tol.ATol {
		mr = 0
	}
	return ma, mr
}

// Cosine is dot/(|a|·|b|): 1 when both vectors are zero, 0 when one is.
func Cosine(dot, na, nb float64) float64 {
	if na == 0 && nb == 0 {
		return 1
	}
	if na == 0 || nb == 0 {
		return 0
	}
	return dot / math.Sqrt(na*nb)
}

// SQNRdB is 10·log10(signal/noise) for energies: +Inf without noise.
func SQNRdB(signal, noise float64) float64 {
	if noise == 0 {
		return math.Inf(1)
	}
	if signal == 0 {
		return math.Inf(-1)
	}
	return 10 * math.Log10(signal/noise)
}
