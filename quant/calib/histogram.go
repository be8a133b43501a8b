package calib

import (
	"math"
)

// DefaultBins is the bin count the first batch spreads max|x| over (TensorRT's 2048).
const DefaultBins = 2048

// MaxBins bounds a histogram's length; beyond it bins are merged pairwise.
const MaxBins = DefaultBins * 64

// Histogram counts |x| in bins [i·Width, (i+1)·Width). Counts are float64 so
// that merged and rebinned counts stay exact (integers below 2^53).
type Histogram struct {
	Width  float64
	Counts []float64
	// Zeros holds exact zeros seen before the width was known; they join bin 0
	// as soon as it exists.
	Zeros float64
}

// Total returns the number of values binned (including pending zeros).
func (h *Histogram) Total() float64 {
	t := h.Zeros
	for _, c := range h.Counts {
		t += c
	}
	return t
}

// Edge returns the right edge of bin i-1, i.e. i·Width.
func (h *Histogram) Edge(i int) float64 { return float64(i) * h.Width }

// Max returns the right edge of the last non-empty bin.
func (h *Histogram) Max() float64 {
	for i := len(h.Counts) - 1; i >= 0; i-- {
		if h.Counts[i] > 0 {
			return h.Edge(i + 1)
		}
	}
	return 0
}

// AddAbs adds |v| for finite values; absMax must be the largest finite |v|.
func (h *Histogram) AddAbs(vals []float32, absMax float64) {
	if h.Width == 0 {
		if absMax == 0 {
			for _, v := range vals {
				if v == 0 {
					h.Zeros++
				}
			}
			return
		}
		h.Width = absMax / DefaultBins
		h.Counts = make([]float64, DefaultBins)
		h.Counts[0] += h.Zeros
		h.Zeros = 0
	}
	if need := int(math.Ceil(absMax / h.Width)); need > len(h.Counts) {
		h.grow(need)
	}
	last := len(h.Counts) - 1
	inv := 1 / h.Width
	for _, v := range vals {
		a := math.Abs(float64(v))
		if math.IsNaN(a) || math.IsInf(a, 0) {
			continue
		}
		i := int(a * inv)
		if i > last {
			i = last
		}
		h.Counts[i]++
	}
}

// grow extends the histogram to at least n bins at the same width, merging
// pairs of bins (doubling the width) while that would exceed MaxBins.
func (h *Histogram) grow(n int) {
	for n > MaxBins {
		h.coarsen()
		n = (n + 1) / 2
	}
	if n > len(h.Counts) {
		h.Counts = append(h.Counts, make([]float64, n-len(h.Counts))...)
	}
}

// coarsen merges bins pairwise, doubling the width.
func (h *Histogram) coarsen() {
	m := (len(h.Counts) + 1) / 2
	out := make([]float64, m)
	for i, c := range h.Counts {
		out[i/2] += c
	}
	h.Counts = out
	h.Width *= 2
}

// Clone deep-copies the histogram.
func (h *Histogram) Clone() *Histogram {
	c := *h
	c.Counts = append([]float64(nil), h.Counts...)
	return &c
}

// Merge adds o into h. Equal widths add bin by bin (exact). Widths differing
// by a power of two coarsen the finer side first (exact). Other widths, which
// arise only for tensors that were all zero in the first batch, move each of
// o's bins to the bin of h containing its centre (approximate; reported by
// the collector).
func (h *Histogram) Merge(o *Histogram) (exact bool) {
	exact = true
	if o.Width == 0 {
		if h.Width == 0 {
			h.Zeros += o.Zeros
		} else {
			h.Counts[0] += o.Zeros
		}
		return true
	}
	if h.Width == 0 {
		z := h.Zeros
		*h = *o.Clone()
		h.Counts[0] += z
		return true
	}
	o = o.Clone()
	for ratio := h.Width / o.Width; ratio > 1 && isPow2(ratio); ratio /= 2 {
		o.coarsen()
	}
	for ratio := o.Width / h.Width; ratio > 1 && isPow2(ratio); ratio /= 2 {
		h.coarsen()
	}
	if h.Width == o.Width {
		if len(o.Counts) > len(h.Counts) {
			h.grow(len(o.Counts))
		}
		for i, c := range o.Counts {
			h.Counts[i] += c
		}
		h.Counts[0] += o.Zeros
		return true
	}
	// Different, non power-of-two widths: rebin onto the coarser width.
	if o.Width > h.Width {
		merged := o.Clone()
		merged.Merge(h)
		*h = *merged
		return false
	}
	for i, c := range o.Counts {
		if c == 0 {
			continue
		}
		centre := (float64(i) + 0.5) * o.Width
		j := int(centre / h.Width)
		if j >= len(h.Counts) {
			h.grow(j + 1)
			j = min(j, len(h.Counts)-1)
		}
		h.Counts[j] += c
	}
	h.Counts[0] += o.Zeros
	return false
}

func isPow2(r float64) bool {
	f, _ := math.Frexp(r)
	return f == 0.5
}
