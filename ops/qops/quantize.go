package qops

import (
	"math"

	"github.com/kilnml/kiln/floatx"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

func init() {
	ops.Register(&ops.Op{Type: "QuantizeLinear", MinOpset: 10, Run: quantizeLinear, Infer: quantizeInfer})
	ops.Register(&ops.Op{Type: "DequantizeLinear", MinOpset: 10, Run: dequantizeLinear, Infer: dequantizeInfer})
}

// quantOutputs are the types QuantizeLinear may produce (and DequantizeLinear read, with int32).
func isQuantType(d ir.DType) bool { return isQuantInt(d) || isFloat8(d) || d == ir.Float4E2M1 }

func isScaleType(d ir.DType) bool {
	switch d {
	case ir.Float32, ir.Float16, ir.BFloat16, ir.Float8E8M0, ir.Int32:
		return true
	}
	return false
}

// quantizeType is the output type: the zero point's, else output_dtype
// (opset 21+), else uint8; output_dtype must agree with the zero point.
func quantizeType(a attrReader, opset int64, zp ir.DType) (ir.DType, error) {
	out := ir.Undefined
	if opset >= 21 {
		out = ir.DType(a.Int("output_dtype", 0))
	}
	if zp != ir.Undefined {
		if out != ir.Undefined && out != zp {
			return 0, a.Errorf("output_dtype %v differs from the zero point's type %v", out, zp)
		}
		out = zp
	}
	if out == ir.Undefined {
		out = ir.Uint8
	}
	if !isQuantType(out) {
		return 0, a.Errorf("cannot quantize to %v", out)
	}
	return out, nil
}

// QuantizeLinear: y = saturate(round_half_even(x / scale) + zero_point).
// The division is done in the precision attribute's type when given
// (opset 23+), else in the scale's type. Float8 and float4 outputs round
// the quotient plus the zero point to nearest even, float8 following the
// saturate attribute; as in ONNX's reference, a zero float8 zero point is
// not added (-0 stays -0) while float4's always is (-0 becomes +0). A zero scale makes the quotient +-Inf,
// which saturates, or NaN (0/0), which gives the zero point; NaN input also
// gives the zero point (float8 outputs keep NaN as NaN).
func quantizeLinear(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	x, err := input(c, in, 0, "x")
	if err != nil {
		return nil, err
	}
	scale, err := input(c, in, 1, "y_scale")
	if err != nil {
		return nil, err
	}
	zp, err := optional(c, in, 2, "y_zero_point")
	if err != nil {
		return nil, err
	}
	switch x.DType {
	case ir.Float32, ir.Float16, ir.BFloat16, ir.Int32:
	default:
		return nil, c.Errorf("x is %v, want float32, float16, bfloat16 or int32", x.DType)
	}
	if !isScaleType(scale.DType) {
		return nil, c.Errorf("y_scale is %v, want float32, float16, bfloat16, float8e8m0 or int32", scale.DType)
	}
	zpType := ir.Undefined
	if zp != nil {
		zpType = zp.DType
	}
	outType, err := quantizeType(c, c.Opset, zpType)
	if err != nil {
		return nil, err
	}
	l, err := newQLayout(c, x, scale, zp)
	if err != nil {
		return nil, err
	}
	prec := scale.DType
	if c.Opset >= 23 && c.Has("precision") {
		prec = ir.DType(c.Int("precision", 0))
		if prec != ir.Float32 && prec != ir.Float16 && prec != ir.BFloat16 && prec != ir.Float64 {
			return nil, c.Errorf("precision %v: want a float type", prec)
		}
	}
	ar := arithFor(prec)
	sat := true
	if c.Opset >= 19 {
		sat = c.Int("saturate", 1) != 0
	}
	y, err := newOut(c, outType, x.Dims)
	if err != nil {
		return nil, err
	}
	lo, hi := outType.IntRange()
	n := x.Len()
	for i := int64(0); i < n; i++ {
		k := l.index(i)
		q := ar.div(ar.round(x.Float64At(i)), ar.round(scale.Float64At(k)))
		var z float64
		if zp != nil {
			z = zp.Float64At(k)
		}
		switch {
		case isQuantInt(outType):
			// round first, then add: round(q)+zp, not round(q+zp) (ties differ for odd zp)
			zi := int64(z)
			y.SetInt64At(i, roundSat(math.RoundToEven(q)+float64(zi), lo, hi, zi))
		case isFloat8(outType):
			if z != 0 {
				q += z
			}
			y.U8()[i] = floatx.F64ToF8(q, ir.F8Format(outType), sat)
		default: // float4e2m1: ONNX's reference always adds the zero point, in float32 (so -0 becomes +0)
			q = float64(float32(q + z))
			setNibble(y, i, floatx.F64ToF4E2M1(q))
		}
	}
	return []*ir.Tensor{y}, nil
}

func quantizeInfer(c *ops.InferCtx) error {
	x, err := c.Input(0)
	if err != nil {
		return err
	}
	zp := ir.Undefined
	if t := inType(c, 2); t != nil {
		zp = t.DType
	}
	out, err := quantizeType(c, c.Opset, zp)
	if err != nil {
		return err
	}
	c.Out[0] = sameShapeAs(x, out)
	return nil
}

// dequantizeType is output_dtype (opset 23+) when given, else the scale's type.
func dequantizeType(a attrReader, opset int64, scale ir.DType) (ir.DType, error) {
	out := scale
	if opset >= 23 {
		if d := ir.DType(a.Int("output_dtype", 0)); d != ir.Undefined {
			out = d
		}
	}
	if out != ir.Float32 && out != ir.Float16 && out != ir.BFloat16 {
		return 0, a.Errorf("output type %v: want float32, float16 or bfloat16", out)
	}
	return out, nil
}

// DequantizeLinear: y = (x - zero_point) * scale. x - zero_point is exact
// (then rounded to float32 when it needs more than 24 bits, which only
// int32 input can), the product is a float32 product rounded once more to
// the output type, as ONNX's reference computes it for every scale type.
func dequantizeLinear(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	x, err := input(c, in, 0, "x")
	if err != nil {
		return nil, err
	}
	scale, err := input(c, in, 1, "x_scale")
	if err != nil {
		return nil, err
	}
	zp, err := optional(c, in, 2, "x_zero_point")
	if err != nil {
		return nil, err
	}
	if !isQuantType(x.DType) && x.DType != ir.Int32 {
		return nil, c.Errorf("x is %v, not a quantized type", x.DType)
	}
	if zp != nil && zp.DType != x.DType {
		return nil, c.Errorf("zero point is %v but x is %v", zp.DType, x.DType)
	}
	if !isScaleType(scale.DType) {
		return nil, c.Errorf("x_scale is %v, want float32, float16, bfloat16 or float8e8m0", scale.DType)
	}
	outType, err := dequantizeType(c, c.Opset, scale.DType)
	if err != nil {
		return nil, err
	}
	l, err := newQLayout(c, x, scale, zp)
	if err != nil {
		return nil, err
	}
	y, err := newOut(c, outType, x.Dims)
	if err != nil {
		return nil, err
	}
	cv := &converter{to: outType, sat: true}
	intX := !x.DType.IsFloat()
	n := x.Len()
	for i := int64(0); i < n; i++ {
		k := l.index(i)
		var d float32
		if intX {
			v := x.Int64At(i)
			if zp != nil {
				v -= zp.Int64At(k)
			}
			d = float32(v)
		} else {
			d = float32(x.Float64At(i))
			if zp != nil {
				d -= float32(zp.Float64At(k))
			}
		}
		cv.float(y, i, float64(d*float32(scale.Float64At(k))))
	}
	return []*ir.Tensor{y}, nil
}

func dequantizeInfer(c *ops.InferCtx) error {
	x, err := c.Input(0)
	if err != nil {
		return err
	}
	s, err := c.Input(1)
	if err != nil {
		return err
	}
	out, err := dequantizeType(c, c.Opset, s.DType)
	if err != nil {
		return err
	}
	c.Out[0] = sameShapeAs(x, out)
	return nil
}
