package calib

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestHistogramGrowsAtFixedWidth(t *testing.T) {
	h := &Histogram{}
	h.AddAbs([]float32{0, 0}, 0) // zeros before any width
	h.AddAbs([]float32{-1, 0.5, 2}, 2)
	if h.Width != 2.0/DefaultBins || len(h.Counts) != DefaultBins {
		t.Fatalf("width %g bins %d", h.Width, len(h.Counts))
	}
	if h.Counts[0] != 2 || h.Total() != 5 {
		t.Fatalf("zeros not moved into bin 0: %v total %v", h.Counts[0], h.Total())
	}
	h.AddAbs([]float32{3}, 3)
	if h.Width != 2.0/DefaultBins || len(h.Counts) != 3*DefaultBins/2 {
		t.Fatalf("after growth: width %g bins %d", h.Width, len(h.Counts))
	}
	if got := h.Max(); math.Abs(got-3) > h.Width {
		t.Errorf("max %g", got)
	}
}

func TestHistogramCoarsensPastMaxBins(t *testing.T) {
	h := &Histogram{}
	h.AddAbs([]float32{1}, 1)
	h.AddAbs([]float32{1000}, 1000)
	if len(h.Counts) > MaxBins {
		t.Fatalf("%d bins", len(h.Counts))
	}
	if h.Total() != 2 || h.Max() < 1000 {
		t.Fatalf("total %g max %g", h.Total(), h.Max())
	}
	f, _ := math.Frexp(h.Width / (1.0 / DefaultBins))
	if f != 0.5 {
		t.Errorf("width %g is not a power-of-two multiple of the first width", h.Width)
	}
}

// Batches after the first may come in any order: the histogram is identical.
func TestHistogramOrderIndependentAfterFirstBatch(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	batches := make([][]float32, 20)
	for i := range batches {
		b := make([]float32, 500)
		scale := 1 + float64(i%7) // later batches exceed the first one's max
		for k := range b {
			b[k] = float32(r.NormFloat64() * scale)
		}
		batches[i] = b
	}
	build := func(order []int) *Histogram {
		h := &Histogram{}
		for _, i := range order {
			h.AddAbs(batches[i], maxAbs(batches[i]))
		}
		return h
	}
	order := []int{0}
	for i := 1; i < 20; i++ {
		order = append(order, i)
	}
	a := build(order)
	r.Shuffle(19, func(i, j int) { order[i+1], order[j+1] = order[j+1], order[i+1] })
	b := build(order)
	if a.Width != b.Width || len(a.Counts) != len(b.Counts) {
		t.Fatalf("width/len differ: %g/%d vs %g/%d", a.Width, len(a.Counts), b.Width, len(b.Counts))
	}
	for i := range a.Counts {
		if a.Counts[i] != b.Counts[i] {
			t.Fatalf("bin %d: %g vs %g", i, a.Counts[i], b.Counts[i])
		}
	}
}

func TestHistogramMerge(t *testing.T) {
	a := &Histogram{}
	a.AddAbs([]float32{1, 0.25}, 1)
	b := &Histogram{Width: a.Width, Counts: make([]float64, DefaultBins)}
	b.AddAbs([]float32{1.5, 0.25}, 1.5)
	if !a.Merge(b) {
		t.Fatal("same width merge reported approximate")
	}
	if a.Total() != 4 || a.Max() < 1.5 {
		t.Fatalf("total %g max %g", a.Total(), a.Max())
	}
	// Power-of-two width ratio: exact.
	c := a.Clone()
	c.coarsen()
	d := a.Clone()
	if !d.Merge(c) || d.Total() != 8 {
		t.Fatalf("pow2 merge: total %g", d.Total())
	}
	// Unrelated widths: approximate but mass-preserving.
	e := &Histogram{}
	e.AddAbs([]float32{0.3, 0.7}, 0.7)
	f := a.Clone()
	if f.Merge(e) {
		t.Error("unrelated widths reported exact")
	}
	if f.Total() != 6 {
		t.Fatalf("mass lost: %g", f.Total())
	}
}

func maxAbs(v []float32) float64 {
	m := 0.0
	for _, x := range v {
		m = math.Max(m, math.Abs(float64(x)))
	}
	return m
}
