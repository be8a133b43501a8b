package arith

import (
	"math"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

// Clip, PRelu and Where: elementwise ops whose extra operands are tensors
// rather than attributes (or, for Clip before opset 11, attributes).

func init() {
	ops.Register(&ops.Op{Type: "Clip", MinOpset: 6, Run: clip, Infer: inferClip})
	ops.Register(&ops.Op{Type: "PRelu", MinOpset: 7, Run: prelu, Infer: inferPRelu})
	ops.Register(&ops.Op{Type: "Where", MinOpset: 9, Run: where, Infer: inferWhere})
}

// clip limits x to [min, max], applying min first, so that min > max gives
// max everywhere (as the spec says). NaN stays NaN.
func clip(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	if err := inputs(c, in, 1, 3); err != nil {
		return nil, err
	}
	x := in[0]
	k := kindOf(x.DType)
	if k&kNumeric == 0 {
		return nil, c.Errorf("does not accept %s input", x.DType)
	}
	if c.Opset < 11 {
		if k != kFloat {
			return nil, c.Errorf("does not accept %s input before opset 11", x.DType)
		}
		if len(in) > 1 {
			return nil, c.Errorf("takes min and max as attributes before opset 11, not as inputs")
		}
		lo := float64(c.Float("min", -math.MaxFloat32))
		hi := float64(c.Float("max", math.MaxFloat32))
		return []*ir.Tensor{clipTo(x, &lo, &hi)}, nil
	}
	if c.Has("min") || c.Has("max") {
		return nil, c.Errorf("takes min and max as inputs from opset 11, not as attributes")
	}
	for i := 1; i < len(in); i++ {
		if in[i] == nil {
			continue
		}
		if in[i].DType != x.DType {
			return nil, c.Errorf("input %d is %s but the input is %s", i, in[i].DType, x.DType)
		}
		if in[i].Len() != 1 {
			return nil, c.Errorf("input %d must be a scalar, got dims %v", i, in[i].Dims)
		}
	}
	switch k {
	case kFloat:
		return []*ir.Tensor{clipInputs[float64](x, in)}, nil
	case kSigned:
		return []*ir.Tensor{clipInputs[int64](x, in)}, nil
	default:
		return []*ir.Tensor{clipInputs[uint64](x, in)}, nil
	}
}

func clipInputs[T num](x *ir.Tensor, in []*ir.Tensor) *ir.Tensor {
	var bound [2]*T
	for i := 1; i < len(in); i++ {
		if in[i] != nil {
			bound[i-1] = &load[T](in[i])[0]
		}
	}
	return clipTo(x, bound[0], bound[1])
}

func clipTo[T num](x *ir.Tensor, lo, hi *T) *ir.Tensor {
	v := load[T](x)
	for i, e := range v {
		if lo != nil && e < *lo {
			e = *lo
		}
		if hi != nil && e > *hi {
			e = *hi
		}
		v[i] = e
	}
	return store(x.DType, x.Dims, v)
}

func inferClip(c *ops.InferCtx) error {
	if err := c.CheckSameDType(0, 1, 2); err != nil {
		return err
	}
	if err := ops.SameAsInput(0)(c); err != nil {
		return err
	}
	foldValues(c, clip)
	return nil
}

// prelu is x < 0 ? slope*x : x with slope broadcast to x's shape (only in
// that direction: the output has x's shape).
func prelu(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	if err := inputs(c, in, 2, 2); err != nil {
		return nil, err
	}
	x, s := in[0], in[1]
	if x.DType != s.DType {
		return nil, c.Errorf("slope is %s but the input is %s", s.DType, x.DType)
	}
	dims, err := ops.BroadcastDims(x.Dims, s.Dims)
	if err != nil || !equalDims(dims, x.Dims) {
		return nil, c.Errorf("slope of dims %v does not broadcast to the input's %v", s.Dims, x.Dims)
	}
	var out *ir.Tensor
	switch kindOf(x.DType) {
	case kFloat:
		out = apply2(preluOf[float64], x, s, dims, x.DType)
	case kSigned:
		out = apply2(preluOf[int64], x, s, dims, x.DType)
	case kUnsigned:
		out = x.Clone() // never negative
	default:
		return nil, c.Errorf("does not accept %s input", x.DType)
	}
	return []*ir.Tensor{out}, nil
}

func preluOf[T num](x, slope T) T {
	if x < 0 {
		return slope * x
	}
	return x
}

func inferPRelu(c *ops.InferCtx) error {
	if err := c.CheckSameDType(0, 1); err != nil {
		return err
	}
	return ops.SameAsInput(0)(c)
}

// where picks x where the condition is true, else y, all three broadcast
// together. It copies elements bit for bit, so any dtype works.
func where(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	if err := inputs(c, in, 3, 3); err != nil {
		return nil, err
	}
	cond, x, y := in[0], in[1], in[2]
	if cond.DType != ir.Bool {
		return nil, c.Errorf("condition must be bool, got %s", cond.DType)
	}
	if x.DType != y.DType {
		return nil, c.Errorf("inputs X and Y have different dtypes %s and %s", x.DType, y.DType)
	}
	dims, err := broadcast(c, cond.Dims, x.Dims, y.Dims)
	if err != nil {
		return nil, err
	}
	out := ir.NewTensor(x.DType, dims)
	walk(dims, [][]int64{cond.Dims, x.Dims, y.Dims}, func(o int64, idx []int64) {
		if cond.Data[idx[0]] != 0 {
			copyElem(out, o, x, idx[1])
		} else {
			copyElem(out, o, y, idx[2])
		}
	})
	return []*ir.Tensor{out}, nil
}

// copyElem copies element si of src to element di of dst (same dtype).
func copyElem(dst *ir.Tensor, di int64, src *ir.Tensor, si int64) {
	switch dt := dst.DType; {
	case dt == ir.String:
		dst.Strings[di] = append([]byte(nil), src.Strings[si]...)
	case dt == ir.Float4E2M1:
		dst.SetFloat64At(di, src.Float64At(si)) // exact: the format has no NaN
	case dt.IsSubByte():
		dst.SetInt64At(di, src.Int64At(si))
	default:
		sz := int64(dt.Bits() / 8)
		copy(dst.Data[di*sz:(di+1)*sz], src.Data[si*sz:(si+1)*sz])
	}
}

func inferWhere(c *ops.InferCtx) error {
	if len(c.In) != 3 {
		return c.Errorf("takes 3 inputs, got %d", len(c.In))
	}
	if t := c.In[0]; t != nil && t.DType != ir.Bool && t.DType != ir.Undefined {
		return c.Errorf("condition must be bool, got %s", t.DType)
	}
	if err := c.CheckSameDType(1, 2); err != nil {
		return err
	}
	if err := ops.BroadcastInfer(ir.Undefined, 1, 0, 2)(c); err != nil {
		return err
	}
	whereValue(c)
	return nil
}
