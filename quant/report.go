package quant

import (
	"fmt"
	"math"
)

// Report measures what quantizing one tensor under some Params costs.
// Errors are e = x − dequantize(quantize(x)), summed in float64. NaN inputs
// are counted in NaNs and left out of everything else (N included).
type Report struct {
	N    int64 // elements measured (not NaN)
	NaNs int64 // NaN inputs, excluded

	MSE         float64 // mean e², = RoundingMSE + ClippingMSE
	RoundingMSE float64 // Σe² over in-range elements / N: the error of the grid
	ClippingMSE float64 // Σe² over clipped elements / N: the error of the range
	MaxAbsError float64 // max |e|
	// SQNR is 10·log10(Σx² / Σe²) in dB: +Inf when there is no error, 0 for
	// an all-zero input that is reproduced exactly (no signal, no noise), and
	// -Inf when the input is all zero but the error is not.
	SQNR float64

	Saturated     float64 // share of elements beyond the representable range (clipped)
	FlushedToZero float64 // share of elements that are non-zero but dequantize to 0
}

// Measure quantizes x (row-major, dims) under p and reports the error.
func Measure(x []float32, dims []int64, p *Params) (Report, error) {
	var r Report
	var signal, rounding, clipping float64
	var saturated, flushed int64
	f, _ := formatOf(p.DType)
	err := each(p, dims, x, func(i, code int64, clipped bool, s float32, z int32) {
		v := x[i]
		if v != v {
			r.NaNs++
			return
		}
		r.N++
		y := f.dequantizeOne(code, s, z)
		e := float64(v) - float64(y)
		if y != y { // float8 without saturation: overflow became NaN
			e = math.Inf(1)
		}
		signal += float64(v) * float64(v)
		if clipped {
			saturated++
			clipping += e * e
		} else {
			rounding += e * e
		}
		if y == 0 && v != 0 {
			flushed++
		}
		r.MaxAbsError = math.Max(r.MaxAbsError, math.Abs(e))
	})
	if err != nil {
		return Report{}, err
	}
	if r.N == 0 {
		return r, nil
	}
	n := float64(r.N)
	r.RoundingMSE, r.ClippingMSE = rounding/n, clipping/n
	r.MSE = (rounding + clipping) / n
	r.Saturated, r.FlushedToZero = float64(saturated)/n, float64(flushed)/n
	r.SQNR = SQNR(signal, rounding+clipping)
	return r, nil
}

// SQNR returns 10·log10(signal/noise) in dB for signal and noise energies,
// with the conventions of Report.SQNR for zeros.
func SQNR(signal, noise float64) float64 {
	switch {
	case noise == 0 && signal == 0:
		return 0
	case noise == 0:
		return math.Inf(1)
	}
	return 10 * math.Log10(signal/noise)
}

func (r Report) String() string {
	return fmt.Sprintf("n=%d mse=%.4g (rounding %.4g, clipping %.4g) max|e|=%.4g sqnr=%.2fdB saturated=%.4f%% flushed=%.4f%%",
		r.N, r.MSE, r.RoundingMSE, r.ClippingMSE, r.MaxAbsError, r.SQNR, 100*r.Saturated, 100*r.FlushedToZero)
}
