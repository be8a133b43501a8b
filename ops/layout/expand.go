package layout

import (
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

func init() {
	ops.Register(&ops.Op{Type: "Expand", MinOpset: 8, Run: expand, Infer: expandInfer})
	ops.Register(&ops.Op{Type: "Tile", MinOpset: 6, Run: tile, Infer: tileInfer})
}

// broadcastStrides gives, for each output axis, the stride into a
// right-aligned input of dims in (0 where the input is broadcast).
func broadcastStrides(out, in []int64) []int64 {
	st := ops.Strides(in)
	full := make([]int64, len(out))
	off := len(out) - len(in)
	for i, d := range in {
		if d != 1 {
			full[off+i] = st[i]
		}
	}
	return full
}

func expand(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	x, err := input(c, in, 0, "input")
	if err != nil {
		return nil, err
	}
	st, err := input(c, in, 1, "shape")
	if err != nil {
		return nil, err
	}
	shape, err := intsOf(c, st, "shape")
	if err != nil {
		return nil, err
	}
	for _, d := range shape {
		if d < 0 {
			return nil, c.Errorf("shape %v has a negative dimension", shape)
		}
	}
	dims, err := ops.BroadcastDims(x.Dims, shape)
	if err != nil {
		return nil, c.Errorf("cannot expand %v to %v: %v", x.Dims, shape, err)
	}
	out, err := newOut(c, x.DType, dims)
	if err != nil {
		return nil, err
	}
	stridedCopy(out, x, dims, broadcastStrides(dims, x.Dims), 0)
	return []*ir.Tensor{out}, nil
}

// valueShape turns a shape value into dims, rejecting known negatives.
func valueShape(errf func(string, ...any) error, v ir.Shape) (ir.Shape, error) {
	s := make(ir.Shape, len(v))
	for i, d := range v {
		if x, ok := ops.DimValue(d); ok && x < 0 {
			return nil, errf("shape %v has a negative dimension", v)
		}
		s[i] = d
	}
	return s, nil
}

func expandInfer(c *ops.InferCtx) error {
	t, err := c.Input(0)
	if err != nil {
		return err
	}
	c.Out[0] = &ir.Type{DType: t.DType}
	v, ok := c.InputValue(1)
	if !ok {
		if st, ok := ranked(c, 1); ok && t.HasShape && len(st.Shape) == 1 && st.Shape[0].Known() {
			c.Out[0] = ir.TensorType(t.DType, unknownShape(max(len(t.Shape), int(st.Shape[0].Value))))
		}
		return nil
	}
	shape, err := valueShape(c.Errorf, v)
	if err != nil {
		return err
	}
	if !t.HasShape {
		return nil
	}
	s, err := ops.BroadcastShapes(t.Shape, shape)
	if err != nil {
		return c.Errorf("cannot expand %v to %v: %v", t.Shape, shape, err)
	}
	c.Out[0] = ir.TensorType(t.DType, s)
	return nil
}

func tile(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	x, err := input(c, in, 0, "input")
	if err != nil {
		return nil, err
	}
	rt, err := input(c, in, 1, "repeats")
	if err != nil {
		return nil, err
	}
	reps, err := intsOf(c, rt, "repeats")
	if err != nil {
		return nil, err
	}
	if len(reps) != x.Rank() {
		return nil, c.Errorf("repeats %v has %d entries for an input of rank %d", reps, len(reps), x.Rank())
	}
	// Output coordinate (rep_k, i_k) reads input i_k: a strided copy over
	// interleaved axes, stride 0 on the repeat axes.
	st := ops.Strides(x.Dims)
	var dims, strides []int64
	outDims := make([]int64, x.Rank())
	for k, d := range x.Dims {
		if reps[k] < 0 {
			return nil, c.Errorf("repeats %v has a negative entry", reps)
		}
		dims = append(dims, reps[k], d)
		strides = append(strides, 0, st[k])
		outDims[k] = d * reps[k]
		if d != 0 && reps[k] > maxElements {
			return nil, c.Errorf("repeats %v make the output too large", reps)
		}
	}
	out, err := newOut(c, x.DType, outDims)
	if err != nil {
		return nil, err
	}
	stridedCopy(out, x, dims, strides, 0)
	return []*ir.Tensor{out}, nil
}

func tileInfer(c *ops.InferCtx) error {
	t, err := c.Input(0)
	if err != nil {
		return err
	}
	c.Out[0] = &ir.Type{DType: t.DType}
	if !t.HasShape {
		return nil
	}
	v, ok := c.InputValue(1)
	if !ok {
		c.Out[0] = ir.TensorType(t.DType, unknownShape(len(t.Shape)))
		return nil
	}
	if len(v) != len(t.Shape) {
		return c.Errorf("repeats %v has %d entries for an input of rank %d", v, len(v), len(t.Shape))
	}
	s := make(ir.Shape, len(v))
	for k, d := range t.Shape {
		if x, ok := ops.DimValue(v[k]); ok && x < 0 {
			return c.Errorf("repeats %v has a negative entry", v)
		}
		s[k] = dimMul(d, v[k])
	}
	c.Out[0] = ir.TensorType(t.DType, s)
	return nil
}
