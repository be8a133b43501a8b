package builder

import (
	"fmt"
	"math"
	"sort"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/quant/calib"
)

// Per-tensor format choice for --fp8, the way NVIDIA's Transformer Engine
// reasons about it: with a per-tensor scale s = amax/format_max the largest
// value lands on the format's largest, and what is left to decide is how
// much of the tensor falls below the format's normal range (subnormals keep
// fewer mantissa bits; below half the smallest subnormal a value flushes to
// zero). E4M3 (3 mantissa bits, about 15.8 octaves of normals) is the
// default; E5M2 (2 bits, 29.8 octaves) when the tensor's mass spans more
// than E4M3 covers; FP16 when even E5M2 would lose too much.

// FP8Format describes one candidate format.
type FP8Format struct {
	DType     ir.DType
	Name      string
	Max       float64 // largest finite value
	MinNormal float64
	MinSub    float64 // smallest subnormal
	Mantissa  int
	Scaled    bool // a per-tensor scale maps amax onto Max (FP16 runs unscaled)
}

var (
	E4M3 = FP8Format{ir.Float8E4M3FN, "E4M3", 448, 0x1p-6, 0x1p-9, 3, true}
	E5M2 = FP8Format{ir.Float8E5M2, "E5M2", 57344, 0x1p-14, 0x1p-16, 2, true}
	FP16 = FP8Format{ir.Float16, "FP16", 65504, 0x1p-14, 0x1p-24, 10, false}
)

// Octaves is the width of the format's normal range, log2(Max/MinNormal).
func (f FP8Format) Octaves() float64 { return math.Log2(f.Max / f.MinNormal) }

// OctaveHist counts |x| by binary exponent: Counts[e] holds values in
// [2^(e-1), 2^e) (math.Frexp's exponent); exact zeros apart (they are
// exact in every format).
type OctaveHist struct {
	Counts map[int]float64
	Zeros  float64
	Total  float64 // every finite value, zeros included
	Amax   float64
}

// Observe adds finite values.
func (h *OctaveHist) Observe(vals []float32) {
	if h.Counts == nil {
		h.Counts = map[int]float64{}
	}
	for _, v := range vals {
		a := math.Abs(float64(v))
		if math.IsNaN(a) || math.IsInf(a, 0) {
			continue
		}
		h.Total++
		if a == 0 {
			h.Zeros++
			continue
		}
		_, e := math.Frexp(a)
		h.Counts[e]++
		h.Amax = math.Max(h.Amax, a)
	}
}

// OctavesFromHistogram converts calibration's linear |x| histogram: each
// bin's count goes to the octave of its centre, except bin 0 (from 0 to one
// bin width w), whose nonzero values are taken as uniform on [0, w), as
// they are for any density that is smooth at 0: half in [w/2, w), a
// quarter in [w/4, w/2), and so on. Exact zeros (TensorStats.Zeros: half of
// a ReLU output) are taken out of bin 0 first: zero is exact in every
// format, and spread as tiny values they would push post-ReLU tensors out
// of E4M3 for nothing. A tensor whose
// bulk lies below w, e.g. one spanning more than about 20 octaves, is seen
// narrower than it is: collect an OctaveHist with Observe where that
// matters (gradients).
func OctavesFromHistogram(s *calib.TensorStats) *OctaveHist {
	h := &OctaveHist{Counts: map[int]float64{}, Amax: s.AbsMax()}
	hist := s.Hist
	zeros := float64(s.Zeros)
	if hist == nil {
		return h
	}
	if hist.Width == 0 {
		h.Zeros, h.Total = hist.Zeros, hist.Zeros
		return h
	}
	for i, c := range hist.Counts {
		if c == 0 {
			continue
		}
		h.Total += c
		if i == 0 {
			z := math.Min(zeros, c)
			h.Zeros += z
			c -= z
			_, e := math.Frexp(hist.Width) // w in [2^(e-1), 2^e)
			left := c
			for k := 0; k < 40; k++ {
				part := c / math.Ldexp(1, k+1)
				if k == 39 {
					part = left
				}
				h.Counts[e-k] += part
				left -= part
			}
			continue
		}
		_, e := math.Frexp((float64(i) + 0.5) * hist.Width)
		h.Counts[e] += c
	}
	return h
}

// below returns the share of values with 0 < |x| < t (log-uniform inside an
// octave).
func (h *OctaveHist) below(t float64) float64 {
	if h.Total == 0 || t <= 0 {
		return 0
	}
	_, et := math.Frexp(t) // t in [2^(et-1), 2^et)
	n := 0.0
	for e, c := range h.Counts {
		switch {
		case e < et:
			n += c
		case e == et:
			lo := math.Ldexp(1, e-1)
			n += c * math.Log2(t/lo)
		}
	}
	return n / h.Total
}

// above returns the share of values with |x| > t (log-uniform inside an
// octave).
func (h *OctaveHist) above(t float64) float64 {
	if h.Total == 0 || t >= h.Amax {
		return 0
	}
	_, et := math.Frexp(t)
	n := 0.0
	for e, c := range h.Counts {
		switch {
		case e > et:
			n += c
		case e == et:
			hi := math.Ldexp(1, e)
			n += c * math.Log2(hi/t)
		}
	}
	return n / h.Total
}

// Quantile returns the |x| below which a share p of the nonzero values lie.
func (h *OctaveHist) Quantile(p float64) float64 {
	es := make([]int, 0, len(h.Counts))
	nz := 0.0
	for e, c := range h.Counts {
		es = append(es, e)
		nz += c
	}
	sort.Ints(es)
	acc := 0.0
	for _, e := range es {
		c := h.Counts[e]
		if acc+c >= p*nz && c > 0 {
			f := (p*nz - acc) / c
			return math.Ldexp(1, e-1) * math.Exp2(f)
		}
		acc += c
	}
	return h.Amax
}

// FormatShares is what a tensor would suffer in one format.
type FormatShares struct {
	Format    string
	Subnormal float64 // share of values below the normal range (fewer mantissa bits)
	Flushed   float64 // share that rounds to zero
	Saturated float64 // share beyond the scaled maximum
}

// FP8Choice is the decision for one tensor.
type FP8Choice struct {
	Tensor string
	Format FP8Format
	Amax   float64 // the range the scale is computed from
	Scale  float64 // amax / Format.Max (1 for FP16)
	// RangeOctaves: log2(amax / the 1% quantile of nonzero |x|), the span
	// the bulk of the tensor needs.
	RangeOctaves float64
	Shares       []FormatShares // E4M3, E5M2, FP16
	Reason       string
}

// FP8FormatOptions tunes ChooseFP8Format.
type FP8FormatOptions struct {
	// MaxSubnormal is the share of values allowed below a format's normal
	// range (default 0.01).
	MaxSubnormal float64
	// MaxFlushed is the share allowed to flush to zero (default 0.001).
	MaxFlushed float64
	// AllowE5M2 lets activations use E5M2 (an engine whose kernels take only
	// E4M3 activations chooses between E4M3 and FP16).
	AllowE5M2 bool
}

func (o FP8FormatOptions) withDefaults() FP8FormatOptions {
	if o.MaxSubnormal == 0 {
		o.MaxSubnormal = 0.01
	}
	if o.MaxFlushed == 0 {
		o.MaxFlushed = 0.001
	}
	return o
}

func sharesOf(h *OctaveHist, f FP8Format, amax float64) FormatShares {
	s := 1.0
	if f.Scaled {
		s = amax / f.Max
	}
	return FormatShares{Format: f.Name, Subnormal: h.below(f.MinNormal * s), Flushed: h.below(f.MinSub * s / 2),
		Saturated: h.above(math.Min(amax, f.Max*s))}
}

// ChooseFP8Format picks the format of one tensor whose per-tensor scale
// comes from amax (0: the observed maximum): the narrowest of E4M3, E5M2
// (when allowed) and FP16 whose subnormal and flush shares stay within the
// options' bounds, with the reason in words.
func ChooseFP8Format(name string, h *OctaveHist, amax float64, opt FP8FormatOptions) FP8Choice {
	opt = opt.withDefaults()
	if amax <= 0 {
		amax = h.Amax
	}
	c := FP8Choice{Tensor: name, Amax: amax}
	if amax <= 0 || h.Total == h.Zeros {
		c.Format, c.Scale = E4M3, 1
		c.Reason = "E4M3: the tensor is all zeros in calibration"
		return c
	}
	if q := h.Quantile(0.01); q > 0 {
		c.RangeOctaves = math.Log2(amax / q)
	}
	cands := []FP8Format{E4M3}
	if opt.AllowE5M2 {
		cands = append(cands, E5M2)
	}
	for _, f := range []FP8Format{E4M3, E5M2, FP16} {
		c.Shares = append(c.Shares, sharesOf(h, f, amax))
	}
	sat := c.Shares[0].Saturated
	pct := func(x float64) string { return fmt.Sprintf("%.2f%%", 100*x) }
	for _, f := range cands {
		sh := sharesOf(h, f, amax)
		if sh.Subnormal <= opt.MaxSubnormal && sh.Flushed <= opt.MaxFlushed {
			c.Format, c.Scale = f, amax/f.Max
			c.Reason = fmt.Sprintf("%s: 99%% of nonzero values span %.1f octaves, within its %.1f (%s subnormal, %s flush to zero, %s saturate at amax %.4g)",
				f.Name, c.RangeOctaves, f.Octaves(), pct(sh.Subnormal), pct(sh.Flushed), pct(sat), amax)
			if f == E5M2 {
				e4 := c.Shares[0]
				c.Reason += fmt.Sprintf("; E4M3 would put %s below its normals and flush %s", pct(e4.Subnormal), pct(e4.Flushed))
			}
			return c
		}
	}
	last := sharesOf(h, cands[len(cands)-1], amax)
	c.Format, c.Scale = FP16, 1
	c.Reason = fmt.Sprintf("FP16: 99%% of nonzero values span %.1f octaves; %s would put %s below its normals and flush %s (bounds %s, %s)",
		c.RangeOctaves, cands[len(cands)-1].Name, pct(last.Subnormal), pct(last.Flushed), pct(opt.MaxSubnormal), pct(opt.MaxFlushed))
	if fs := c.Shares[2]; amax > FP16.Max {
		c.Reason += fmt.Sprintf("; note: %s of values exceed FP16's maximum", pct(fs.Saturated))
	}
	return c
}

// ChooseFP8Formats decides every tensor of calibration statistics (in graph
// order), with amax from the calibrator's ranges where given. The builder
// hook: after calibration in quantize(), --fp8 keeps E4M3 Q/DQ for tensors
// chosen E4M3, skips the layers reading FP16-chosen tensors (they then run
// in FP16 with --fp16 semantics), and writes Reason into the report.
func ChooseFP8Formats(stats *calib.Stats, amax map[string]float64, opt FP8FormatOptions) []FP8Choice {
	var out []FP8Choice
	for _, name := range stats.Order {
		ts := stats.Tensors[name]
		if ts == nil {
			continue
		}
		out = append(out, ChooseFP8Format(name, OctavesFromHistogram(ts), amax[name], opt))
	}
	return out
}
