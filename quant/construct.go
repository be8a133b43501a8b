package quant

import (
	"fmt"
	"math"

	"github.com/kilnml/kiln/ir"
)

// minNormal is the smallest normal float32. A computed scale below it (or a
// zero range) is replaced as described in Symmetric and Asymmetric.
const minNormal = 0x1p-126

// FromAmax returns symmetric per-tensor parameters for values in [-amax, amax].
// See Symmetric for the scale of each type and for amax == 0.
func FromAmax(dt ir.DType, amax float32, narrow bool) (*Params, error) {
	return Symmetric(dt, []float32{amax}, PerTensor, 0, narrow)
}

// FromMinMax returns asymmetric per-tensor parameters for values in [min, max]
// (see Asymmetric).
func FromMinMax(dt ir.DType, min, max float32) (*Params, error) {
	return Asymmetric(dt, []float32{min}, []float32{max}, PerTensor, 0)
}

// PerChannelFromAmax returns symmetric parameters with one scale per index of axis.
func PerChannelFromAmax(dt ir.DType, amax []float32, axis int, narrow bool) (*Params, error) {
	return Symmetric(dt, amax, axis, 0, narrow)
}

// PerChannelFromMinMax returns asymmetric parameters with one scale and zero
// point per index of axis.
func PerChannelFromMinMax(dt ir.DType, min, max []float32, axis int) (*Params, error) {
	return Asymmetric(dt, min, max, axis, 0)
}

// Symmetric returns parameters with one scale per amax (Axis and BlockSize as
// in Params; per-tensor takes one amax). The scale maps amax to the largest
// code, computed in float32:
//
//   - signed integers: S = amax/qmax with qmax = 2^(bits-1)−1 (127 for int8,
//     TensorRT's amax/127), Z = 0; narrow selects [-127,127], else [-128,127];
//   - unsigned integers: the signed grid shifted by 2^(bits-1): S = amax/127,
//     Z = 128 for uint8, codes [1,255] (narrow) or [0,255];
//   - float8 and float4: S = amax/max (448 for E4M3FN, 240 for E4M3FNUZ,
//     57344 for the E5M2 formats, 6 for E2M1), as TensorRT's FP8 scales;
//   - float16 and bfloat16: S = 1, a plain cast (their range needs no scale);
//     amax is still checked.
//
// amax must be finite and >= 0. amax == 0 (an all-zero tensor), or an amax
// so small that the scale would not be a normal float32, is treated as
// amax = 1: the scale is 1/qmax (1/127 for int8), which represents 0 exactly,
// like ONNX DynamicQuantizeLinear's rule for an empty range. (ONNX Runtime's
// quantizer uses scale 1 there; TensorRT refuses to calibrate.)
func Symmetric(dt ir.DType, amax []float32, axis, blockSize int, narrow bool) (*Params, error) {
	f, ok := formatOf(dt)
	if !ok {
		return nil, fmt.Errorf("quant: cannot quantize to %s (supported: %s)", dt, supportedNames())
	}
	p := &Params{DType: dt, Scale: make([]float32, len(amax)), Axis: axis, BlockSize: blockSize,
		Narrow: narrow, Saturate: true}
	var qmax float32
	switch {
	case dt == ir.Float16 || dt == ir.BFloat16:
		qmax = 0 // scale 1
	case f.float:
		qmax = float32(f.max)
	case f.lo < 0:
		qmax = float32(f.hi)
	default:
		half := (f.hi + 1) / 2
		qmax = float32(half - 1)
		p.ZeroPoint = make([]int32, len(amax))
		for i := range p.ZeroPoint {
			p.ZeroPoint[i] = int32(half)
		}
	}
	for i, a := range amax {
		if !(a >= 0) || math.IsInf(float64(a), 0) {
			return nil, fmt.Errorf("quant: amax[%d] = %v: amax must be finite and >= 0", i, a)
		}
		switch s := float32(a / qmax); {
		case qmax == 0:
			p.Scale[i] = 1
		case !(s >= minNormal):
			p.Scale[i] = float32(1 / qmax)
		default:
			p.Scale[i] = s
		}
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return p, nil
}

// Asymmetric returns integer parameters with a scale and zero point per
// (min, max) pair, computed in float32 exactly as ONNX DynamicQuantizeLinear
// does (and so ONNX Runtime's MinMax calibration up to its float64 rounding):
//
//	min, max = min(min, 0), max(max, 0)        // the range always contains 0
//	S = (max − min) / (qmax − qmin)            // full range: [0,255] for uint8, [-128,127] for int8
//	Z = roundHalfEven(clamp(qmin − min/S, qmin, qmax))
//
// so 0 is always exactly representable. A zero range (min == max == 0) gives
// S = 1/(qmax − qmin), as DynamicQuantizeLinear; a scale that would not be a
// normal float32 is treated the same way. Float types take no zero point and
// are rejected: use Symmetric.
func Asymmetric(dt ir.DType, min, max []float32, axis, blockSize int) (*Params, error) {
	lo, hi, err := IntRange(dt, false)
	if err != nil {
		return nil, fmt.Errorf("quant: asymmetric (min/max) quantization needs an integer type, not %s; use Symmetric", dt)
	}
	if len(min) != len(max) {
		return nil, fmt.Errorf("quant: %d minima for %d maxima", len(min), len(max))
	}
	qmin, qmax := float32(lo), float32(hi)
	p := &Params{DType: dt, Scale: make([]float32, len(min)), ZeroPoint: make([]int32, len(min)),
		Axis: axis, BlockSize: blockSize, Saturate: true}
	for i := range min {
		a, b := min[i], max[i]
		if a != a || b != b || math.IsInf(float64(a), 0) || math.IsInf(float64(b), 0) || a > b {
			return nil, fmt.Errorf("quant: range %d is [%v, %v]: min and max must be finite with min <= max", i, a, b)
		}
		a, b = float32(math.Min(float64(a), 0)), float32(math.Max(float64(b), 0))
		width := float32(b - a)
		if math.IsInf(float64(width), 0) {
			return nil, fmt.Errorf("quant: range %d is [%v, %v]: its width overflows float32", i, a, b)
		}
		s := float32(width / float32(qmax-qmin))
		if !(s >= minNormal) {
			s, a = float32(1/float32(qmax-qmin)), 0
		}
		zp := float32(qmin - float32(a/s))
		z := math.Min(math.Max(float64(zp), float64(lo)), float64(hi))
		p.Scale[i], p.ZeroPoint[i] = s, int32(math.RoundToEven(z))
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return p, nil
}
