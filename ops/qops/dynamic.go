package qops

import (
	"math"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

func init() {
	ops.Register(&ops.Op{Type: "DynamicQuantizeLinear", MinOpset: 11, Run: dynamicQuantizeLinear, Infer: dynamicQuantizeInfer})
}

// DynamicQuantizeLinear computes, in float32 as the spec's function body does:
//
//	y_scale = (max(0, max(x)) - min(0, min(x))) / 255
//	y_zero_point = round_half_even(clamp(0 - min(0, min(x)) / y_scale, 0, 255))
//	y = clamp(round_half_even(x / y_scale) + y_zero_point, 0, 255)
//
// When the range is empty (x all zeros, or x empty) the scale is 1 and the
// zero point 0, as ONNX's reference defines it, instead of dividing by zero.
// NaN elements are left out of the range and quantize to the zero point;
// +-Inf make the scale Inf (every finite element then quantizes to the zero point).
func dynamicQuantizeLinear(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	x, err := input(c, in, 0, "x")
	if err != nil {
		return nil, err
	}
	if x.DType != ir.Float32 {
		return nil, c.Errorf("x is %v, want float32", x.DType)
	}
	xs := x.F32()
	var lo, hi float32 // the range always includes 0
	for _, v := range xs {
		if v < lo {
			lo = v
		}
		if v > hi {
			hi = v
		}
	}
	scale := float32(1)
	if hi != lo {
		scale = (hi - lo) / 255
	}
	zpf := float64(float32(0) - lo/scale)
	zp := roundSat(math.Max(0, math.Min(255, zpf)), 0, 255, 0)
	y, err := newOut(c, ir.Uint8, x.Dims)
	if err != nil {
		return nil, err
	}
	ys := y.U8()
	for i, v := range xs {
		q := math.RoundToEven(float64(v / scale))
		ys[i] = uint8(roundSat(q+float64(zp), 0, 255, zp))
	}
	s := ir.NewTensor(ir.Float32, nil)
	s.F32()[0] = scale
	z := ir.NewTensor(ir.Uint8, nil)
	z.U8()[0] = uint8(zp)
	return []*ir.Tensor{y, s, z}, nil
}

func dynamicQuantizeInfer(c *ops.InferCtx) error {
	x, err := c.Input(0)
	if err != nil {
		return err
	}
	if x.DType != ir.Float32 {
		return c.Errorf("x is %v, want float32", x.DType)
	}
	c.Out[0] = sameShapeAs(x, ir.Uint8)
	if len(c.Out) > 1 {
		c.Out[1] = ir.TensorType(ir.Float32, ir.Shape{})
	}
	if len(c.Out) > 2 {
		c.Out[2] = ir.TensorType(ir.Uint8, ir.Shape{})
	}
	return nil
}
