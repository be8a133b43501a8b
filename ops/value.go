package ops

import (
	"strconv"

	"github.com/kilnml/kiln/ir"
)

// Symbolic values (InferCtx.Value / OutValue) are ir.Shapes whose elements
// are the elements of a small integer tensor. ir.Dim cannot hold a known
// negative number (Value < 0 with no Param means "unknown"), yet shape
// tensors carry -1 (Reshape's "infer this dim"), and Slice ends carry
// INT64_MIN, so a known negative value v is written as the Dim
// {Value: v, Param: "<v>"}: it prints as the number, compares equal to
// itself, and reads as "not a known size" to code that only knows Dim.Known.

// MaxValueLen bounds the tensors whose values inference tracks element by
// element: shape-like vectors are short.
const MaxValueLen = 64

// ValueDim encodes a known integer value as a Dim.
func ValueDim(v int64) ir.Dim {
	if v >= 0 {
		return ir.D(v)
	}
	return ir.Dim{Value: v, Param: strconv.FormatInt(v, 10)}
}

// DimValue decodes a Dim written by ValueDim: ok is false for symbols and unknowns.
func DimValue(d ir.Dim) (v int64, ok bool) {
	if d.Known() {
		return d.Value, true
	}
	if d.Value < 0 && d.Param != "" && d.Param == strconv.FormatInt(d.Value, 10) {
		return d.Value, true
	}
	return 0, false
}

// ValueOf turns a small integer tensor into a value (nil when it is not one).
func ValueOf(t *ir.Tensor) ir.Shape {
	if t == nil || !(t.DType.IsInteger() || t.DType == ir.Bool) || t.Rank() > 1 || t.Len() > MaxValueLen || t.Check() != nil {
		return nil
	}
	out := make(ir.Shape, t.Len())
	for i := range out {
		out[i] = ValueDim(t.Int64At(int64(i)))
	}
	return out
}

// ValueInts returns the numbers of a value when every element is known.
func ValueInts(v ir.Shape) ([]int64, bool) {
	out := make([]int64, len(v))
	for i, d := range v {
		x, ok := DimValue(d)
		if !ok {
			return nil, false
		}
		out[i] = x
	}
	return out, true
}

// InputValue returns the (possibly symbolic) value of input i: from Const
// when known at build time, else from Value. ok is false when neither is known.
func (c *InferCtx) InputValue(i int) (ir.Shape, bool) {
	if i < len(c.Const) && c.Const[i] != nil {
		if v := ValueOf(c.Const[i]); v != nil {
			return v, true
		}
	}
	if i < len(c.Value) && c.Value[i] != nil {
		return c.Value[i], true
	}
	return nil, false
}

// InputInts returns the integer elements of input i when all are known
// (from Const, or from a Value with no symbols).
func (c *InferCtx) InputInts(i int) ([]int64, bool) {
	if i < len(c.Const) && c.Const[i] != nil && (c.Const[i].DType.IsInteger() || c.Const[i].DType == ir.Bool) {
		if c.Const[i].Check() != nil {
			return nil, false
		}
		return c.Const[i].Int64s(), true
	}
	if v, ok := c.InputValue(i); ok {
		return ValueInts(v)
	}
	return nil, false
}
