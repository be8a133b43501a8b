package qops

import (
	"math"

	"github.com/kilnml/kiln/floatx"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

// maxElements caps every output a kernel allocates, so that a hostile shape
// fails with an error instead of exhausting memory.
const maxElements = 1 << 31

// newOut allocates an output tensor after checking its dims.
func newOut(c *ops.Ctx, dt ir.DType, dims []int64) (*ir.Tensor, error) {
	n, err := ir.NumElements(dims)
	if err != nil {
		return nil, c.Errorf("output shape: %v", err)
	}
	if n > maxElements {
		return nil, c.Errorf("output shape %v has %d elements, more than the limit of %d", dims, n, int64(maxElements))
	}
	if !dt.Valid() {
		return nil, c.Errorf("unknown element type %d", int32(dt))
	}
	return ir.NewTensor(dt, dims), nil
}

// input returns in[i], or an error naming the input when it is absent.
func input(c *ops.Ctx, in []*ir.Tensor, i int, what string) (*ir.Tensor, error) {
	if i >= len(in) || in[i] == nil {
		return nil, c.Errorf("required input %d (%s) is missing", i, what)
	}
	if err := in[i].Check(); err != nil {
		return nil, c.Errorf("input %d (%s): %v", i, what, err)
	}
	return in[i], nil
}

// optional returns in[i], nil when absent.
func optional(c *ops.Ctx, in []*ir.Tensor, i int, what string) (*ir.Tensor, error) {
	if i >= len(in) || in[i] == nil {
		return nil, nil
	}
	return input(c, in, i, what)
}

// inType returns the static type of input i (nil when absent or unknown).
func inType(c *ops.InferCtx, i int) *ir.Type {
	if i < len(c.In) {
		return c.In[i]
	}
	return nil
}

// sameShapeAs returns a tensor type of dtype dt with t's shape (rank unknown when t's is).
func sameShapeAs(t *ir.Type, dt ir.DType) *ir.Type {
	if t == nil || !t.HasShape {
		return &ir.Type{Kind: ir.KindTensor, DType: dt}
	}
	return ir.TensorType(dt, append(ir.Shape{}, t.Shape...))
}

// isQuantInt reports the integer types Q/DQ and the integer ops work on.
func isQuantInt(d ir.DType) bool {
	switch d {
	case ir.Int8, ir.Uint8, ir.Int16, ir.Uint16, ir.Int4, ir.Uint4, ir.Int2, ir.Uint2:
		return true
	}
	return false
}

func isFloat8(d ir.DType) bool {
	switch d {
	case ir.Float8E4M3FN, ir.Float8E4M3FNUZ, ir.Float8E5M2, ir.Float8E5M2FNUZ:
		return true
	}
	return false
}

// roundSat rounds v half to even and saturates it to [lo, hi]; NaN gives nan.
func roundSat(v float64, lo, hi, nan int64) int64 {
	r := math.RoundToEven(v)
	switch {
	case math.IsNaN(r):
		return nan
	case r <= float64(lo):
		return lo
	case r >= float64(hi):
		return hi
	}
	return int64(r)
}

// arith does float arithmetic the way a numpy array of dtype dt does it:
// float32 in float32, float16 and bfloat16 in float32 rounded back after
// every operation, float64 in float64. Scales multiply and divide in their
// own type (ONNX: "the type of the scale determines the precision").
type arith ir.DType

// round rounds v to the arithmetic's type and returns it as a float64.
func (a arith) round(v float64) float64 {
	switch ir.DType(a) {
	case ir.Float64:
		return v
	case ir.Float16:
		return float64(floatx.F16ToF32(floatx.F32ToF16(float32(v))))
	case ir.BFloat16:
		return float64(floatx.BF16ToF32(floatx.F32ToBF16(float32(v))))
	}
	return float64(float32(v))
}

// mul and div operate on values already of the arithmetic's type: the
// float32 (or float64) result of the exact operation, rounded once to the
// type, is what numpy computes.
func (a arith) mul(x, y float64) float64 { return a.round(a.op32(x * y)) }
func (a arith) div(x, y float64) float64 { return a.round(a.op32(x / y)) }

// op32 models the float32 intermediate numpy uses for half and bfloat16
// operands: x and y have at most 24 significant bits, so x*y in float64 is
// exact and float32(x*y) is the float32 product; x/y in float64 rounded to
// float32 equals the float32 quotient (double rounding is harmless when the
// wider format has more than twice the precision plus two bits).
func (a arith) op32(v float64) float64 {
	if ir.DType(a) == ir.Float64 {
		return v
	}
	return float64(float32(v))
}

// arithFor picks the arithmetic of a scale type (types without their own
// arithmetic, like float8e8m0 or int32 scales, compute in float32).
func arithFor(d ir.DType) arith {
	switch d {
	case ir.Float16, ir.BFloat16, ir.Float64:
		return arith(d)
	}
	return arith(ir.Float32)
}

// setNibble stores a raw 4-bit code (float4e2m1 has no raw setter in ir).
func setNibble(t *ir.Tensor, i int64, code uint8) {
	sh := uint(i%2) * 4
	t.Data[i/2] = t.Data[i/2]&^(0xf<<sh) | (code&0xf)<<sh
}
