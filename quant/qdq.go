package quant

import (
	"fmt"
	"math"

	"github.com/kilnml/kiln/ir"
)

// QDQ holds what an ONNX QuantizeLinear / DequantizeLinear node says about
// quantization, before it is turned into Params.
type QDQ struct {
	DType     ir.DType   // the quantized type: the zero point's type, else output_dtype (Q) or x's type (DQ), else uint8
	Scale     *ir.Tensor // y_scale / x_scale: float32, float16 or bfloat16 (converted exactly to float32)
	ZeroPoint *ir.Tensor // optional; same type as the quantized tensor
	Axis      int64      // the axis attribute (ONNX default 1), may be negative
	BlockSize int64      // the block_size attribute (0: not blocked)
	Saturate  bool       // the saturate attribute (ONNX default 1), float8 only
	Rank      int        // the rank of x, to normalize a negative axis
}

// FromQDQ maps an ONNX Q/DQ node's scale, zero point and attributes to
// Params. A scale with a single element is per-tensor (as in ONNX's
// reference; ONNX Runtime accepts a scalar or [1]); otherwise a 1-D scale is
// per-axis and a scale of x's rank with BlockSize > 0 is blocked. Float-type
// zero points must be 0.
func FromQDQ(q QDQ) (*Params, error) {
	if q.Scale == nil {
		return nil, fmt.Errorf("quant: Q/DQ node without a scale")
	}
	if err := q.Scale.Check(); err != nil {
		return nil, fmt.Errorf("quant: scale: %w", err)
	}
	switch q.Scale.DType {
	case ir.Float32, ir.Float16, ir.BFloat16:
	default:
		return nil, fmt.Errorf("quant: scale %q is %s; ONNX scales are float, float16 or bfloat16", q.Scale.Name, q.Scale.DType)
	}
	dt := q.DType
	if q.ZeroPoint != nil {
		if err := q.ZeroPoint.Check(); err != nil {
			return nil, fmt.Errorf("quant: zero point: %w", err)
		}
		if dt != ir.Undefined && dt != q.ZeroPoint.DType {
			return nil, fmt.Errorf("quant: zero point %q is %s but the quantized type is %s", q.ZeroPoint.Name, q.ZeroPoint.DType, dt)
		}
		dt = q.ZeroPoint.DType
		if q.ZeroPoint.Len() != q.Scale.Len() {
			return nil, fmt.Errorf("quant: zero point %q has dims %v, scale %q has %v", q.ZeroPoint.Name, q.ZeroPoint.Dims, q.Scale.Name, q.Scale.Dims)
		}
	}
	if dt == ir.Undefined {
		dt = ir.Uint8
	}
	p := &Params{DType: dt, Scale: make([]float32, q.Scale.Len()), Saturate: q.Saturate, BlockSize: int(q.BlockSize)}
	for i := range p.Scale {
		p.Scale[i] = float32(q.Scale.Float64At(int64(i)))
	}
	if q.ZeroPoint != nil {
		if f, ok := formatOf(dt); ok && !f.float {
			p.ZeroPoint = make([]int32, len(p.Scale))
			for i := range p.ZeroPoint {
				z := q.ZeroPoint.Int64At(int64(i))
				if z < math.MinInt32 || z > math.MaxInt32 {
					return nil, fmt.Errorf("quant: zero point %q[%d] = %d does not fit int32", q.ZeroPoint.Name, i, z)
				}
				p.ZeroPoint[i] = int32(z)
			}
		} else {
			for i := int64(0); i < q.ZeroPoint.Len(); i++ {
				if v := q.ZeroPoint.Float64At(i); v != 0 {
					return nil, fmt.Errorf("quant: zero point %q[%d] = %v: %s zero points must be 0", q.ZeroPoint.Name, i, v, dt)
				}
			}
		}
	}
	switch {
	case q.Scale.Len() == 1: // as ONNX's reference: a single scale is per-tensor, whatever its shape
		p.Axis, p.BlockSize = PerTensor, 0
	case q.BlockSize == 0 && q.Scale.Rank() != 1:
		return nil, fmt.Errorf("quant: scale %q has dims %v: per-axis scales are 1-D (or set block_size)", q.Scale.Name, q.Scale.Dims)
	case q.BlockSize > 0 && q.Scale.Rank() != q.Rank:
		return nil, fmt.Errorf("quant: blocked scale %q has rank %d, x has rank %d", q.Scale.Name, q.Scale.Rank(), q.Rank)
	default:
		a := q.Axis
		if a < 0 {
			a += int64(q.Rank)
		}
		if a < 0 || a >= int64(q.Rank) {
			return nil, fmt.Errorf("quant: axis %d out of range for rank %d", q.Axis, q.Rank)
		}
		p.Axis = int(a)
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return p, nil
}

// QDQTensors returns the scale (float32) and zero point (of p.DType) tensors
// and the axis and block_size attributes that express p in an ONNX Q/DQ pair
// for a tensor of the given dims. A zero point is always written, so that it
// fixes the quantized type (zeros for float types, as ONNX requires). ONNX
// has no narrow range: a Q/DQ pair clamps to the full range, so with Narrow
// the exported model can reach the lowest code for values below
// (qmin+1−Z−0.5)·S, which p's own Quantize would have clamped.
func (p *Params) QDQTensors(dims []int64) (scale, zeroPoint *ir.Tensor, axis, blockSize int64, err error) {
	sd, err := p.ScaleDims(dims)
	if err != nil {
		return nil, nil, 0, 0, err
	}
	scale = ir.FromFloat32s(sd, p.Scale)
	zeroPoint = ir.NewTensor(p.DType, sd)
	if f, _ := formatOf(p.DType); !f.float {
		for i := range p.Scale {
			zeroPoint.SetInt64At(int64(i), int64(p.Zero(i)))
		}
	}
	axis = 1
	if p.Axis != PerTensor {
		axis = int64(p.Axis)
	}
	return scale, zeroPoint, axis, int64(p.BlockSize), nil
}
