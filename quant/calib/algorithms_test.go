package calib

import (
	"math"
	"math/rand/v2"
	"testing"
)

func statsOf(vals []float32) *TensorStats {
	s := newTensorStats("t", 1)
	s.ObserveValues(vals)
	return s
}

func uniform(n int, lo, hi float64, seed uint64) []float32 {
	r := rand.New(rand.NewPCG(seed, 7))
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(lo + (hi-lo)*r.Float64())
	}
	return v
}

func laplace(n int, b float64, seed uint64) []float32 {
	r := rand.New(rand.NewPCG(seed, 9))
	v := make([]float32, n)
	for i := range v {
		u := r.Float64() - 0.5
		v[i] = float32(-b * math.Copysign(math.Log(1-2*math.Abs(u)), u))
	}
	return v
}

func mustRange(t *testing.T, s *TensorStats, a Algorithm, p Params) Range {
	t.Helper()
	r, err := ComputeRange(s, a, p)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestMinMax(t *testing.T) {
	s := statsOf([]float32{-3, 0.5, 2})
	r := mustRange(t, s, MinMax, Params{})
	if r.Amax != 3 || r.Min != -3 || r.Max != 2 || math.Abs(r.Scale()-3.0/127) > 1e-15 {
		t.Fatalf("%+v", r)
	}
}

// For a uniform distribution clipping hardly pays: entropy and minmax land
// on (within two bins of) the maximum; MSE trades a sliver of clipping for a
// finer step, so it may stop just short of it (the optimum for 127 levels is
// within a fraction of a percent).
func TestUniformKeepsTheMaximum(t *testing.T) {
	s := statsOf(uniform(200000, 0, 1, 1))
	for _, a := range []Algorithm{Entropy2, MSE, MinMax} {
		r := mustRange(t, s, a, Params{})
		tol := 2 * s.Hist.Width
		if a == MSE {
			tol = 0.01 * s.AbsMax()
		}
		if math.Abs(r.Amax-s.AbsMax()) > tol {
			t.Errorf("%s: amax %g, max %g", a, r.Amax, s.AbsMax())
		}
	}
}

func TestPercentileOfUniform(t *testing.T) {
	s := statsOf(uniform(1000000, -1, 1, 2))
	r := mustRange(t, s, Percentile, Params{Percentile: 99})
	if math.Abs(r.Amax-0.99) > 3*s.Hist.Width {
		t.Errorf("99th percentile of |U(-1,1)| = %g, want 0.99", r.Amax)
	}
	r = mustRange(t, s, Legacy, Params{Quantile: 0.5, RegressionCutoff: 1})
	if math.Abs(r.Amax-0.5) > 3*s.Hist.Width {
		t.Errorf("legacy median %g", r.Amax)
	}
	r = mustRange(t, s, Legacy, Params{Quantile: 1, RegressionCutoff: 0.25})
	if math.Abs(r.Amax-0.25) > 1e-3 {
		t.Errorf("legacy cutoff %g", r.Amax)
	}
	if _, err := ComputeRange(s, Percentile, Params{Percentile: 120}); err == nil {
		t.Error("percentile 120 accepted")
	}
}

// Heavy tails are clipped: entropy and MSE thresholds fall well below the
// maximum, and clipping there really lowers the quantization error.
func TestLaplaceIsClipped(t *testing.T) {
	v := laplace(400000, 1, 3)
	s := statsOf(v)
	for _, a := range []Algorithm{Entropy2, MSE, Percentile} {
		r := mustRange(t, s, a, Params{})
		if r.Amax >= 0.8*s.AbsMax() || r.Amax < 3 {
			t.Errorf("%s: amax %g for max %g (b=1)", a, r.Amax, s.AbsMax())
		}
		if a != Percentile && mse(v, r.Amax) >= mse(v, s.AbsMax()) {
			t.Errorf("%s: clipping at %g does not lower the error", a, r.Amax)
		}
		if r.Saturation <= 0 || r.Saturation > 0.01 || r.SQNR < 20 {
			t.Errorf("%s: saturation %g sqnr %g", a, r.Saturation, r.SQNR)
		}
	}
}

func mse(v []float32, amax float64) float64 {
	e := 0.0
	for _, x := range v {
		s := amax / 127
		q := math.Max(-127, math.Min(127, math.RoundToEven(float64(x)/s))) * s
		e += (q - float64(x)) * (q - float64(x))
	}
	return e / float64(len(v))
}

func TestAllZeroTensorFallsBack(t *testing.T) {
	s := statsOf(make([]float32, 100))
	r := mustRange(t, s, Entropy2, Params{})
	if r.Amax != 1 || r.Fallback == "" {
		t.Fatalf("%+v", r)
	}
	s = statsOf([]float32{float32(math.NaN())})
	if r := mustRange(t, s, MinMax, Params{FallbackAmax: 2}); r.Amax != 2 || r.Fallback == "" {
		t.Fatalf("%+v", r)
	}
}

// klReference computes the entropy calibrator's divergence for one
// candidate straight from the definition, with explicit P and Q arrays.
func klReference(bins []float64, i int) float64 {
	p := make([]float64, i)
	copy(p, bins[:i])
	for _, c := range bins[i:] {
		p[i-1] += c
	}
	q := make([]float64, i)
	for level := 0; level < 128; level++ {
		var mass float64
		var members []int
		for j := 0; j < i; j++ {
			if j*128/i == level {
				mass += bins[j]
				if bins[j] != 0 {
					members = append(members, j)
				}
			}
		}
		for _, j := range members {
			q[j] = mass / float64(len(members))
		}
	}
	var sp, sq float64
	for j := range p {
		sp += p[j]
		sq += q[j]
	}
	kl := 0.0
	for j := range p {
		if p[j] == 0 {
			continue
		}
		if q[j] == 0 {
			return math.Inf(1)
		}
		kl += p[j] / sp * math.Log((p[j]/sp)/(q[j]/sq))
	}
	return kl
}

func TestEntropyMatchesDefinition(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	for trial := 0; trial < 3; trial++ {
		n := 300 + trial*57
		bins := make([]float64, n)
		for j := range bins {
			if r.IntN(5) > 0 { // some empty bins
				bins[j] = math.Floor(1000 * math.Exp(-float64(j)/60) * r.Float64())
			}
		}
		bins[n-1] = 3
		bins[1] = bins[0] // the zero-bin rule is then a no-op
		h := &Histogram{Width: 0.01, Counts: bins}
		best, bestKL := n, math.Inf(1)
		for i := 128; i <= n; i++ {
			if kl := klReference(bins, i); kl <= bestKL {
				best, bestKL = i, kl
			}
		}
		if got, want := entropyAmax(h, true, -1), h.Edge(best); math.Abs(got-want) > 1e-12 {
			t.Errorf("trial %d: amax %g, definition gives %g (bin %d)", trial, got, want, best)
		}
	}
}

func TestParseAlgorithm(t *testing.T) {
	for _, s := range []string{"entropy2", "EntropyCalibration2", "minmax", "percentile", "mse", "legacy"} {
		if _, err := ParseAlgorithm(s); err != nil {
			t.Error(err)
		}
	}
	if _, err := ParseAlgorithm("magic"); err == nil {
		t.Error("magic accepted")
	}
}

// A threshold at the observed maximum clips nothing, even when the last bin
// reaches past it.
func TestMinMaxHasNoSaturation(t *testing.T) {
	s := statsOf(append(uniform(10000, 0, 1, 8), 2.5))
	s.ObserveValues([]float32{3.1})
	r := mustRange(t, s, MinMax, Params{})
	if r.Saturation != 0 {
		t.Errorf("saturation %g at amax = max", r.Saturation)
	}
}

// A dominant non-zero value (normalized MNIST's background) must not pull
// the entropy threshold down onto itself: with the published search the
// threshold lands on the spike and clips every other value; kiln's bound on
// clipping keeps it near the top, as TensorRT's own MNIST cache does.
func TestEntropySpikeDoesNotClipTheRest(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	v := make([]float32, 0, 200000)
	for i := 0; i < 200000; i++ {
		switch u := r.Float64(); {
		case u < 0.8:
			v = append(v, -0.4242) // background
		case u < 0.9:
			v = append(v, 2.8215) // full-ink pixels
		default:
			v = append(v, float32(-0.4242+3.2457*r.Float64())) // anti-aliased edges
		}
	}
	s := statsOf(v)
	published, err := ComputeRange(s, Entropy2, Params{EntropyMaxClip: -1})
	if err != nil {
		t.Fatal(err)
	}
	guarded := mustRange(t, s, Entropy2, Params{})
	if published.Amax > 1 {
		t.Logf("published search did not fail on this data (amax %g)", published.Amax)
	}
	if guarded.Amax < 2.7 || guarded.Saturation > 1e-3 {
		t.Errorf("guarded entropy amax %g, saturation %g", guarded.Amax, guarded.Saturation)
	}
}
