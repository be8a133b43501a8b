package calib

import (
	"math"

	"github.com/kilnml/kiln/ir"
)

// TensorStats is everything calibration keeps about one tensor: a histogram
// of |x|, the signed extremes and counts. Its size does not depend on how
// much data was seen.
type TensorStats struct {
	Name      string
	DType     ir.DType
	Hist      *Histogram
	Min, Max  float64 // finite values only; +Inf/-Inf before any value
	Count     int64   // finite values
	NonFinite int64   // NaN and ±Inf values (never binned)
	// Zeros counts the exact zeros among Count (they are also in the
	// histogram's bin 0): ReLU outputs are half zeros, which a format
	// choice must not mistake for tiny values.
	Zeros int64
}

func newTensorStats(name string, dt ir.DType) *TensorStats {
	return &TensorStats{Name: name, DType: dt, Hist: &Histogram{}, Min: math.Inf(1), Max: math.Inf(-1)}
}

// AbsMax returns max(|Min|, |Max|), 0 when nothing finite was seen.
func (s *TensorStats) AbsMax() float64 {
	if s.Count == 0 {
		return 0
	}
	return math.Max(math.Abs(s.Min), math.Abs(s.Max))
}

// Observe adds the values of a float tensor.
func (s *TensorStats) Observe(t *ir.Tensor) {
	var vals []float32
	if t.DType == ir.Float32 {
		vals = t.F32()
	} else {
		f := t.Float64s()
		vals = make([]float32, len(f))
		for i, v := range f {
			vals[i] = float32(v)
		}
	}
	s.ObserveValues(vals)
}

// ObserveValues adds raw float32 values.
func (s *TensorStats) ObserveValues(vals []float32) {
	absMax := 0.0
	for _, v := range vals {
		f := float64(v)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			s.NonFinite++
			continue
		}
		s.Count++
		if f == 0 {
			s.Zeros++
		}
		s.Min = math.Min(s.Min, f)
		s.Max = math.Max(s.Max, f)
		absMax = math.Max(absMax, math.Abs(f))
	}
	s.Hist.AddAbs(vals, absMax)
}

// emptyLike returns stats with no counts but the same histogram width and
// length, so that workers bin like the first batch did.
func (s *TensorStats) emptyLike() *TensorStats {
	e := newTensorStats(s.Name, s.DType)
	e.Hist.Width = s.Hist.Width
	if s.Hist.Counts != nil {
		e.Hist.Counts = make([]float64, len(s.Hist.Counts))
	}
	return e
}

// Merge adds o into s; it reports false when histogram merging had to
// approximate (see Histogram.Merge).
func (s *TensorStats) Merge(o *TensorStats) bool {
	s.Min = math.Min(s.Min, o.Min)
	s.Max = math.Max(s.Max, o.Max)
	s.Count += o.Count
	s.NonFinite += o.NonFinite
	s.Zeros += o.Zeros
	return s.Hist.Merge(o.Hist)
}
