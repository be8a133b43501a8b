package calib

import (
	"fmt"
	"math"
	"runtime"
	"sync"
)

// Algorithm names a way to pick a range from a tensor's statistics.
type Algorithm string

const (
	// Entropy2 minimizes the KL divergence between the |x| distribution and
	// its 128-level quantization, as TensorRT's EntropyCalibrator2.
	Entropy2 Algorithm = "entropy2"
	// MinMax uses the largest |x| seen (and keeps min/max for asymmetric uint8).
	MinMax Algorithm = "minmax"
	// Percentile uses a percentile of |x| (default 99.99).
	Percentile Algorithm = "percentile"
	// MSE minimizes the expected squared quantization error.
	MSE Algorithm = "mse"
	// Legacy is kiln's reading of TensorRT's legacy calibrator (see Params).
	Legacy Algorithm = "legacy"
)

// Algorithms lists every algorithm.
var Algorithms = []Algorithm{Entropy2, MinMax, Percentile, MSE, Legacy}

// ParseAlgorithm accepts kiln's names and TensorRT's cache names.
func ParseAlgorithm(s string) (Algorithm, error) {
	switch s {
	case "entropy2", "entropy", "EntropyCalibration2", "kl":
		return Entropy2, nil
	case "minmax", "MinMaxCalibration", "max":
		return MinMax, nil
	case "percentile", "PercentileCalibration":
		return Percentile, nil
	case "mse", "MSECalibration":
		return MSE, nil
	case "legacy", "LegacyCalibration":
		return Legacy, nil
	}
	return "", fmt.Errorf("unknown calibrator %q (want entropy2, minmax, percentile, mse or legacy)", s)
}

// Params are the algorithms' knobs. The zero value means the defaults.
type Params struct {
	// Percentile of |x| for Percentile, in percent (default 99.99).
	Percentile float64
	// Quantile (0..1) and RegressionCutoff (0..1) for Legacy. TensorRT does
	// not publish its legacy algorithm; kiln takes amax =
	// min(quantile of |x|, RegressionCutoff × max|x|). Defaults 0.9999 and 1.
	Quantile, RegressionCutoff float64
	// KeepZeroBin disables the entropy calibrator's treatment of bin 0 (by
	// default bin 0 is given the count of bin 1 before the search, as
	// NVIDIA's pytorch-quantization does, so that the spike of exact zeros
	// after a ReLU does not drag the threshold down).
	KeepZeroBin bool
	// FallbackAmax is used for tensors with no non-zero finite value, where
	// TensorRT fails calibration (default 1).
	FallbackAmax float64
	// EntropyMaxClip bounds the share of values the entropy calibrator may
	// saturate (default 1e-3; negative: no bound, the published algorithm).
	// Without it, a tensor dominated by one value that is not zero — the
	// background of normalized MNIST, −0.424, is 80% of the input — makes
	// the KL search stop just above that spike and clip every other value
	// (15% of the pixels): the divergence has no notion of how far mass
	// moves. TensorRT does not do that on this data: the MNIST cache made by
	// TensorRT 8.0 in ../shared/calib-caches has the input at amax 2.75
	// (max 2.82). kiln therefore searches only thresholds that clip at most
	// this share; on heavy-tailed activations, where entropy calibration
	// helps, the KL optimum clips far less (about 1e-4 for a Laplace), so the
	// bound does not bind there.
	EntropyMaxClip float64
}

func (p Params) withDefaults() Params {
	if p.Percentile == 0 {
		p.Percentile = 99.99
	}
	if p.Quantile == 0 {
		p.Quantile = 0.9999
	}
	if p.RegressionCutoff == 0 {
		p.RegressionCutoff = 1
	}
	if p.FallbackAmax == 0 {
		p.FallbackAmax = 1
	}
	if p.EntropyMaxClip == 0 {
		p.EntropyMaxClip = 1e-3
	}
	return p
}

// Range is the calibrated range of one tensor.
type Range struct {
	Name       string
	Amax       float64 // symmetric threshold: scale = Amax/127
	Min, Max   float64 // observed signed extremes (asymmetric uint8 uses these)
	Fallback   string  // why a fallback amax was used, "" otherwise
	Saturation float64 // share of values with |x| above Amax (from the histogram)
	SQNR       float64 // estimated int8 SQNR in dB (from the histogram)
}

// Scale returns the int8 scale TensorRT stores: amax/127.
func (r Range) Scale() float64 { return r.Amax / 127 }

// ComputeRange applies an algorithm to one tensor's statistics.
func ComputeRange(ts *TensorStats, algo Algorithm, p Params) (Range, error) {
	p = p.withDefaults()
	r := Range{Name: ts.Name, Min: ts.Min, Max: ts.Max}
	if ts.Count == 0 {
		r.Min, r.Max = 0, 0
	}
	h := ts.Hist
	if ts.AbsMax() == 0 || h.Width == 0 {
		r.Amax = p.FallbackAmax
		r.Fallback = fmt.Sprintf("no non-zero finite value seen; amax set to %g", p.FallbackAmax)
		return r, nil
	}
	switch algo {
	case MinMax:
		r.Amax = ts.AbsMax()
	case Entropy2:
		r.Amax = entropyAmax(h, !p.KeepZeroBin, p.EntropyMaxClip)
	case Percentile:
		if p.Percentile <= 0 || p.Percentile > 100 {
			return r, fmt.Errorf("percentile %g is outside (0, 100]", p.Percentile)
		}
		r.Amax = percentileAmax(h, p.Percentile/100)
	case MSE:
		r.Amax = mseAmax(h)
	case Legacy:
		if p.Quantile <= 0 || p.Quantile > 1 || p.RegressionCutoff <= 0 || p.RegressionCutoff > 1 {
			return r, fmt.Errorf("legacy calibrator: quantile %g and regression cutoff %g must be in (0, 1]", p.Quantile, p.RegressionCutoff)
		}
		r.Amax = math.Min(percentileAmax(h, p.Quantile), p.RegressionCutoff*ts.AbsMax())
	default:
		return r, fmt.Errorf("unknown calibration algorithm %q", algo)
	}
	// A threshold past the largest value only wastes levels.
	r.Amax = math.Min(r.Amax, ts.AbsMax())
	r.Saturation, r.SQNR = histQuality(h, r.Amax, ts.AbsMax())
	return r, nil
}

// ComputeRanges applies an algorithm to every tensor, in graph order, using
// all cores.
func ComputeRanges(s *Stats, algo Algorithm, p Params) ([]Range, error) {
	out := make([]Range, len(s.Order))
	errs := make([]error, len(s.Order))
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for i, name := range s.Order {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int, ts *TensorStats) {
			defer func() { <-sem; wg.Done() }()
			out[i], errs[i] = ComputeRange(ts, algo, p)
		}(i, s.Tensors[name])
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// percentileAmax returns the right edge of the first bin at which the
// cumulative share of values reaches q.
func percentileAmax(h *Histogram, q float64) float64 {
	total := h.Total()
	acc := h.Zeros
	for i, c := range h.Counts {
		acc += c
		if acc >= q*total {
			return h.Edge(i + 1)
		}
	}
	return h.Edge(len(h.Counts))
}

// searchBins caps the bins the O(n²) searches look at: longer histograms are
// coarsened (pairwise merges) first.
const searchBins = 8192

func capped(h *Histogram) *Histogram {
	if len(h.Counts) <= searchBins {
		return h
	}
	c := h.Clone()
	for len(c.Counts) > searchBins {
		c.coarsen()
	}
	return c
}

// quantErr is the squared error of symmetric 8-bit fake quantization of a
// non-negative value c with threshold t.
func quantErr(c, t float64) float64 {
	s := t / 127
	q := math.Min(math.RoundToEven(c/s), 127) * s
	return (q - c) * (q - c)
}

// mseAmax tries thresholds at bin edges from 128 bins on and keeps the one
// whose expected squared error over the histogram (values at bin centres)
// is smallest; ties go to the larger threshold.
func mseAmax(h *Histogram) float64 {
	h = capped(h)
	n := len(h.Counts)
	start := min(128, n)
	stride := max(1, (n-start)/1024)
	best, bestErr := h.Edge(n), math.Inf(1)
	for i := start; i <= n; i += stride {
		t := h.Edge(i)
		e := 0.0
		for b, c := range h.Counts {
			if c != 0 {
				e += c * quantErr((float64(b)+0.5)*h.Width, t)
			}
		}
		if e <= bestErr {
			best, bestErr = t, e
		}
	}
	return best
}

// histQuality estimates, for threshold t, the share of values above t and
// the SQNR of 8-bit symmetric quantization, treating every value as its bin
// centre (never beyond the observed maximum absMax: the last bin may reach
// past it, and a threshold at the maximum clips nothing).
func histQuality(h *Histogram, t, absMax float64) (saturation, sqnr float64) {
	var total, above, sig, noise float64
	for b, c := range h.Counts {
		if c == 0 {
			continue
		}
		x := math.Min((float64(b)+0.5)*h.Width, absMax)
		total += c
		if x > t {
			above += c
		}
		sig += c * x * x
		noise += c * quantErr(x, t)
	}
	total += h.Zeros
	if total == 0 {
		return 0, math.Inf(1)
	}
	if noise == 0 {
		return above / total, math.Inf(1)
	}
	return above / total, 10 * math.Log10(sig/noise)
}
