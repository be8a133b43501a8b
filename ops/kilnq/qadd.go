package kilnq

import (
	"fmt"
	"math"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
	"github.com/kilnml/kiln/ops/kiln"
)

// kiln.QAdd(A, B) is the residual add of a Q/DQ graph as one code-to-code
// layer: DequantizeLinear of each input, a float32 Add, an optional Relu and
// a QuantizeLinear, which is what ONNX Runtime's quantizer writes around
// every residual Add (DQ(a) + DQ(b) → [Relu] → Q). Bit for bit:
//
//	a = float32(float32(A − a_zero)·a_scale)        (DequantizeLinear)
//	b = float32(float32(B − b_zero)·b_scale)
//	s = float32(a + b); with activation "Relu": s = max(s, 0)
//	Y = saturate(round_half_even(float32(s / y_scale)) + y_zero)   (QuantizeLinear; NaN → y_zero)
//
// A and B are int8 or uint8 codes (each its own type), broadcast as numpy
// does; Y's code type is the attribute y_type (an ir.DType, int8 or uint8;
// A's type when absent). Scales are per tensor, positive and finite.
func init() {
	ops.Register(&ops.Op{Type: "QAdd", Domain: kiln.Domain, MinOpset: 1, MaxOpset: 1, Run: runQAdd, Infer: inferQAdd})
}

// QAddLayer holds kiln.QAdd's decoded attributes.
type QAddLayer struct {
	AScale, BScale, YScale float32
	AZero, BZero, YZero    int32
	Relu                   bool
	AType, BType, YType    ir.DType
}

// codeRange is the range of int8 or uint8 codes (ok false for other types).
func codeRange(dt ir.DType) (lo, hi int32, ok bool) {
	switch dt {
	case ir.Int8:
		return -128, 127, true
	case ir.Uint8:
		return 0, 255, true
	}
	return 0, 0, false
}

// ParseQAdd reads and validates a kiln.QAdd node for inputs of types a and b.
func ParseQAdd(n *ir.Node, a, b ir.DType) (*QAddLayer, error) {
	l := &QAddLayer{AType: a, BType: b}
	yt, err := n.AttrInt("y_type", int64(a))
	if err != nil {
		return nil, err
	}
	l.YType = ir.DType(yt)
	for _, f := range []struct {
		name string
		dst  *float32
	}{{"a_scale", &l.AScale}, {"b_scale", &l.BScale}, {"y_scale", &l.YScale}} {
		v, err := n.AttrFloat(f.name, 0)
		if err != nil {
			return nil, err
		}
		if !(v > 0) || math.IsInf(float64(v), 0) {
			return nil, fmt.Errorf("%s: %s %v must be positive and finite", n, f.name, v)
		}
		*f.dst = v
	}
	for _, z := range []struct {
		name string
		dt   ir.DType
		dst  *int32
	}{{"a_zero", a, &l.AZero}, {"b_zero", b, &l.BZero}, {"y_zero", l.YType, &l.YZero}} {
		lo, hi, ok := codeRange(z.dt)
		if !ok {
			return nil, fmt.Errorf("%s: %s belongs to %s codes, want int8 or uint8", n, z.name, z.dt)
		}
		v, err := n.AttrInt(z.name, 0)
		if err != nil {
			return nil, err
		}
		if v < int64(lo) || v > int64(hi) {
			return nil, fmt.Errorf("%s: %s %d outside %s's range", n, z.name, v, z.dt)
		}
		*z.dst = int32(v)
	}
	act, err := n.AttrString("activation", "")
	if err != nil {
		return nil, err
	}
	switch act {
	case "":
	case "Relu":
		l.Relu = true
	default:
		return nil, fmt.Errorf("%s: activation %q: kiln.QAdd takes Relu or none", n, act)
	}
	return l, nil
}

// dequantize is DequantizeLinear's value of a code v − zero (exact in float32).
func dequantize(v, zero int32, scale float32) float32 {
	return float32(float32(v-zero) * scale)
}

// Value is the float32 sum (after the activation) for codes a and b.
func (l *QAddLayer) Value(a, b int32) float32 {
	s := float32(dequantize(a, l.AZero, l.AScale) + dequantize(b, l.BZero, l.BScale))
	if l.Relu && s < 0 { // NaN stays NaN: QuantizeLinear gives y_zero either way
		s = 0
	}
	return s
}

// Quantize is QuantizeLinear of s to a Y code (as an int32 in its range).
func (l *QAddLayer) Quantize(s float32) int32 {
	lo, hi, _ := codeRange(l.YType)
	r := math.RoundToEven(float64(float32(s/l.YScale))) + float64(l.YZero)
	switch {
	case r != r:
		return l.YZero
	case r < float64(lo):
		return lo
	case r > float64(hi):
		return hi
	}
	return int32(r)
}

// Code is Y's code for input codes a and b.
func (l *QAddLayer) Code(a, b int32) int32 { return l.Quantize(l.Value(a, b)) }

func runQAdd(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	if len(in) != 2 || in[0] == nil || in[1] == nil {
		return nil, c.Errorf("needs two quantized inputs")
	}
	l, err := ParseQAdd(c.Node, in[0].DType, in[1].DType)
	if err != nil {
		return nil, err
	}
	dims, err := ops.BroadcastDims(in[0].Dims, in[1].Dims)
	if err != nil {
		return nil, c.Errorf("%v", err)
	}
	bc := ops.NewBroadcast(dims, in[0].Dims, in[1].Dims)
	y := ir.NewTensor(l.YType, dims)
	for i := int64(0); i < bc.NumElem; i++ {
		a := int32(in[0].Int64At(bc.Index(0, i)))
		b := int32(in[1].Int64At(bc.Index(1, i)))
		y.SetInt64At(i, int64(l.Code(a, b)))
	}
	return []*ir.Tensor{y}, nil
}

func inferQAdd(c *ops.InferCtx) error {
	a, err := c.Input(0)
	if err != nil {
		return err
	}
	b, err := c.Input(1)
	if err != nil {
		return err
	}
	l, err := ParseQAdd(c.Node, a.DType, b.DType)
	if err != nil {
		return err
	}
	if err := ops.BroadcastInfer(l.YType)(c); err != nil {
		return err
	}
	return nil
}
