package quant

import (
	"fmt"
	"math"
	"strings"

	"github.com/kilnml/kiln/ir"
)

// PerTensor is the Axis of parameters with a single scale for the whole tensor.
const PerTensor = -1

// Params describes how one tensor is quantized: q = saturate(round(x/S) + Z),
// x ≈ (q − Z)·S. The same type serves explicit (Q/DQ) and calibrated
// quantization, every target type and every granularity:
//
//   - per-tensor: Axis == PerTensor, one scale;
//   - per-channel: Axis >= 0, BlockSize == 0, one scale per index of that axis
//     (len(Scale) == dims[Axis]);
//   - blocked: Axis >= 0, BlockSize > 0: the scales form a tensor of x's rank
//     whose Axis dimension is ceil(dims[Axis]/BlockSize) and whose other
//     dimensions equal x's (ONNX's blocked QuantizeLinear layout), row-major.
//
// Axis is always non-negative here: callers holding an ONNX axis (which may be
// negative) normalize it with the tensor's rank first.
type Params struct {
	// DType is the quantized type: an integer type (int8, uint8, int16,
	// uint16, int32, int4, uint4, int2, uint2) or a float type (the four
	// float8 formats, float4e2m1, float16, bfloat16).
	DType ir.DType
	// Scale holds the positive, finite float32 scales.
	Scale []float32
	// ZeroPoint is nil (all zero) or has one entry per scale, inside the
	// type's range. Float types take no zero point: it must be absent or 0.
	ZeroPoint []int32
	// Axis is PerTensor or the quantized axis (see the type's doc).
	Axis int
	// BlockSize > 0 makes the quantization blocked along Axis.
	BlockSize int
	// Narrow drops the lowest code of an integer type: int8 uses
	// [-127, 127] instead of [-128, 127], uint8 [1, 255]. Integer types only.
	Narrow bool
	// Saturate selects ONNX's saturate=1 for float8 targets: values beyond
	// the largest finite value become ±max instead of ±Inf or NaN. The
	// constructors set it (ONNX's default); integer types always saturate,
	// float16 and bfloat16 overflow to ±Inf as IEEE rounding does, and
	// float4e2m1 (which has no Inf or NaN) always saturates.
	Saturate bool
}

// IntRange returns the codes an integer type may take, with the lowest code
// dropped when narrow is set (int8: [-128,127] or [-127,127]; uint8: [0,255]
// or [1,255]). It fails for types that are not quantization integer types.
func IntRange(dt ir.DType, narrow bool) (lo, hi int64, err error) {
	f, ok := formatOf(dt)
	if !ok || f.float {
		return 0, 0, fmt.Errorf("quant: %s is not an integer quantization type", dt)
	}
	lo, hi = f.lo, f.hi
	if narrow {
		lo++
	}
	return lo, hi, nil
}

// Range returns the integer codes p may produce (see IntRange).
func (p *Params) Range() (lo, hi int64, err error) { return IntRange(p.DType, p.Narrow) }

// Zero returns the zero point of scale group g (0 when ZeroPoint is nil).
func (p *Params) Zero(g int) int32 {
	if p.ZeroPoint == nil {
		return 0
	}
	return p.ZeroPoint[g]
}

// Validate checks the parameters on their own (scales, zero points, axis,
// block size, flags). ScaleDims also checks them against a tensor's dims.
func (p *Params) Validate() error {
	f, ok := formatOf(p.DType)
	if !ok {
		return fmt.Errorf("quant: cannot quantize to %s (supported: %s)", p.DType, supportedNames())
	}
	if len(p.Scale) == 0 {
		return fmt.Errorf("quant: %s parameters have no scale", p.DType)
	}
	for i, s := range p.Scale {
		if !(s > 0) || math.IsInf(float64(s), 0) {
			return fmt.Errorf("quant: scale[%d] = %v: scales must be positive and finite", i, s)
		}
	}
	if p.ZeroPoint != nil && len(p.ZeroPoint) != len(p.Scale) {
		return fmt.Errorf("quant: %d zero points for %d scales", len(p.ZeroPoint), len(p.Scale))
	}
	if f.float {
		if p.Narrow {
			return fmt.Errorf("quant: narrow range applies to integer types, not %s", p.DType)
		}
		for i, z := range p.ZeroPoint {
			if z != 0 {
				return fmt.Errorf("quant: zero_point[%d] = %d: %s takes no zero point (it must be 0)", i, z, p.DType)
			}
		}
	} else {
		lo, hi, _ := p.Range()
		for i, z := range p.ZeroPoint {
			if int64(z) < lo || int64(z) > hi {
				return fmt.Errorf("quant: zero_point[%d] = %d is outside %s's range [%d, %d]", i, z, p.DType, lo, hi)
			}
		}
	}
	switch {
	case p.BlockSize < 0:
		return fmt.Errorf("quant: negative block size %d", p.BlockSize)
	case p.Axis == PerTensor:
		if len(p.Scale) != 1 || p.BlockSize != 0 {
			return fmt.Errorf("quant: per-tensor parameters need exactly one scale and no block size, have %d scales, block size %d",
				len(p.Scale), p.BlockSize)
		}
	case p.Axis < 0:
		return fmt.Errorf("quant: axis %d: use PerTensor (-1) or a non-negative axis (normalize ONNX's negative axes with the rank)", p.Axis)
	}
	return nil
}

// ScaleDims validates p and returns the dims of the scale (and zero point)
// tensor for a tensor of the given dims, as ONNX lays them out: [] for
// per-tensor, [dims[Axis]] for per-channel, dims with dims[Axis] replaced by
// ceil(dims[Axis]/BlockSize) for blocked.
func (p *Params) ScaleDims(dims []int64) ([]int64, error) {
	l, err := p.layoutFor(dims)
	if err != nil {
		return nil, err
	}
	return l.scaleDims, nil
}

// Clone returns a deep copy.
func (p *Params) Clone() *Params {
	c := *p
	c.Scale = append([]float32(nil), p.Scale...)
	if p.ZeroPoint != nil {
		c.ZeroPoint = append([]int32(nil), p.ZeroPoint...)
	}
	return &c
}

// String is a short human-readable form, e.g.
// "int8 narrow per-tensor scale=0.0078740 zp=0".
func (p *Params) String() string {
	var b strings.Builder
	b.WriteString(p.DType.String())
	if p.Narrow {
		b.WriteString(" narrow")
	}
	switch {
	case p.Axis == PerTensor:
		b.WriteString(" per-tensor")
	case p.BlockSize > 0:
		fmt.Fprintf(&b, " blocked(axis=%d, block=%d)", p.Axis, p.BlockSize)
	default:
		fmt.Fprintf(&b, " per-channel(axis=%d)", p.Axis)
	}
	if len(p.Scale) == 1 {
		fmt.Fprintf(&b, " scale=%.7g zp=%d", p.Scale[0], p.Zero(0))
	} else {
		fmt.Fprintf(&b, " %d scales", len(p.Scale))
	}
	return b.String()
}
