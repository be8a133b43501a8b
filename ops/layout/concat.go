package layout

import (
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

func init() {
	ops.Register(&ops.Op{Type: "Concat", MinOpset: 4, Run: concat, Infer: concatInfer})
}

func concat(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	if len(in) == 0 {
		return nil, c.Errorf("needs at least one input")
	}
	x0, err := input(c, in, 0, "inputs")
	if err != nil {
		return nil, err
	}
	r := x0.Rank()
	if r == 0 {
		return nil, c.Errorf("cannot concatenate scalars")
	}
	if !c.Has("axis") {
		return nil, c.Errorf("attribute axis is required")
	}
	axis, err := ops.NormAxis(c.Int("axis", 0), r)
	if err != nil {
		return nil, c.Errorf("%v", err)
	}
	dims := append([]int64{}, x0.Dims...)
	dims[axis] = 0
	for i, t := range in {
		if t == nil {
			return nil, c.Errorf("input %d is missing", i)
		}
		if t.DType != x0.DType {
			return nil, c.Errorf("input %d is %s but input 0 is %s", i, t.DType, x0.DType)
		}
		if t.Rank() != r {
			return nil, c.Errorf("input %d has shape %v, input 0 has %v: ranks differ", i, t.Dims, x0.Dims)
		}
		for k := range t.Dims {
			if k != axis && t.Dims[k] != x0.Dims[k] {
				return nil, c.Errorf("input %d has shape %v, input 0 has %v: they differ off axis %d", i, t.Dims, x0.Dims, axis)
			}
		}
		dims[axis] += t.Dims[axis]
	}
	out, err := newOut(c, x0.DType, dims)
	if err != nil {
		return nil, err
	}
	outer := prod(dims[:axis])
	tail := prod(dims[axis+1:])
	rowOut := dims[axis] * tail
	off := int64(0)
	for _, t := range in {
		row := t.Dims[axis] * tail
		for o := int64(0); o < outer; o++ {
			copyRun(out, o*rowOut+off, t, o*row, row)
		}
		off += row
	}
	return []*ir.Tensor{out}, nil
}

// mergeDim joins two dims that must be equal: a number beats a symbol,
// a symbol beats an unknown.
func mergeDim(a, b ir.Dim) (ir.Dim, bool) {
	switch {
	case a.Known() && b.Known():
		return a, a.Value == b.Value
	case a.Known():
		return a, true
	case b.Known():
		return b, true
	case a.Param != "":
		return a, true
	}
	return b, true
}

// dimAdd adds dims: numbers add, x+0 is x; anything else is unknown.
func dimAdd(a, b ir.Dim) ir.Dim {
	switch {
	case a.Known() && b.Known():
		return ir.D(a.Value + b.Value)
	case a.Known() && a.Value == 0:
		return b
	case b.Known() && b.Value == 0:
		return a
	}
	return ir.Unknown()
}

func concatInfer(c *ops.InferCtx) error {
	t0, err := c.Input(0)
	if err != nil {
		return err
	}
	if err := c.CheckSameDType(rangeIdx(len(c.In))...); err != nil {
		return err
	}
	var out ir.Shape
	axisAttr := c.Int("axis", 0)
	axis := -1
	for i := range c.In {
		t := c.In[i]
		if t == nil || !t.HasShape {
			continue
		}
		if out == nil {
			if len(t.Shape) == 0 {
				return c.Errorf("cannot concatenate scalars")
			}
			if axis, err = ops.NormAxis(axisAttr, len(t.Shape)); err != nil {
				return c.Errorf("%v", err)
			}
			out = append(ir.Shape{}, t.Shape...)
			out[axis] = ir.D(0)
		}
		if len(t.Shape) != len(out) {
			return c.Errorf("input %d has shape %v, others have rank %d", i, t.Shape, len(out))
		}
		for k, d := range t.Shape {
			if k == axis {
				continue
			}
			m, ok := mergeDim(out[k], d)
			if !ok {
				return c.Errorf("input %d has shape %v: dim %d differs from other inputs (%v)", i, t.Shape, k, out[k])
			}
			out[k] = m
		}
	}
	if out == nil {
		c.Out[0] = &ir.Type{DType: t0.DType}
		return nil
	}
	for i := range c.In {
		if t := c.In[i]; t == nil || !t.HasShape {
			out[axis] = ir.Unknown()
			break
		}
		out[axis] = dimAdd(out[axis], c.In[i].Shape[axis])
	}
	c.Out[0] = ir.TensorType(t0.DType, out)
	// Shape values: concatenating 1-D values concatenates their elements.
	// An input whose value is unknown but whose length is known contributes
	// unknown elements, so Reshape(x, Concat([batch], f(x))) keeps batch.
	if len(out) == 1 && out[0].Known() && out[0].Value <= ops.MaxValueLen {
		v := ir.Shape{}
		someKnown := false
		for i := range c.In {
			iv, ok := c.InputValue(i)
			switch {
			case ok:
				someKnown = true
			case c.In[i].Shape[0].Known():
				iv = unknownShape(int(c.In[i].Shape[0].Value))
			default:
				return nil
			}
			v = append(v, iv...)
		}
		if someKnown && int64(len(v)) == out[0].Value {
			c.OutValue[0] = v
		}
	}
	return nil
}

func rangeIdx(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}
