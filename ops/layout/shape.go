package layout

import (
	"math"
	"math/rand"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

func init() {
	ops.Register(&ops.Op{Type: "Identity", MinOpset: 1, Run: identity, Infer: identityInfer})
	ops.Register(&ops.Op{Type: "Dropout", MinOpset: 7, Run: dropout, Infer: dropoutInfer})
	ops.Register(&ops.Op{Type: "Shape", MinOpset: 1, Run: shapeOp, Infer: shapeInfer})
	ops.Register(&ops.Op{Type: "Size", MinOpset: 1, Run: size, Infer: sizeInfer})
}

func identity(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	x, err := input(c, in, 0, "input")
	if err != nil {
		return nil, err
	}
	return []*ir.Tensor{x}, nil
}

func identityInfer(c *ops.InferCtx) error {
	t, err := c.Input(0)
	if err != nil {
		return err
	}
	c.Out[0] = t.Clone()
	if v, ok := c.InputValue(0); ok {
		c.OutValue[0] = v
	}
	return nil
}

// dropoutArgs returns the ratio and whether the op runs in training mode:
// ratio is an attribute before opset 12, an optional input after, and only
// the training_mode input (opset 12+) turns dropping on.
func dropoutArgs(c *ops.Ctx, in []*ir.Tensor) (float64, bool, error) {
	if c.Opset < 12 {
		return float64(c.Float("ratio", 0.5)), false, nil
	}
	ratio := 0.5
	if r := opt(in, 1); r != nil {
		if !r.DType.IsFloat() || r.Len() != 1 {
			return 0, false, c.Errorf("ratio must be a floating-point scalar, got %s%v", r.DType, r.Dims)
		}
		ratio = r.Float64At(0)
	}
	training := false
	if t := opt(in, 2); t != nil {
		if t.DType != ir.Bool || t.Len() != 1 {
			return 0, false, c.Errorf("training_mode must be a bool scalar, got %s%v", t.DType, t.Dims)
		}
		training = t.Int64At(0) != 0
	}
	if ratio < 0 || ratio > 1 || (training && ratio == 1) || math.IsNaN(ratio) {
		return 0, false, c.Errorf("ratio %g is outside [0, 1)", ratio)
	}
	return ratio, training, nil
}

func dropout(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	x, err := input(c, in, 0, "data")
	if err != nil {
		return nil, err
	}
	ratio, training, err := dropoutArgs(c, in)
	if err != nil {
		return nil, err
	}
	maskType := ir.Bool
	if c.Opset < 10 {
		maskType = x.DType
		if !numeric(x.DType) {
			return nil, c.Errorf("input is %s, want a numeric type", x.DType)
		}
	}
	var mask *ir.Tensor
	if wantOut(c.Node, 1) {
		if mask, err = newOut(c, maskType, x.Dims); err != nil {
			return nil, err
		}
	}
	if !training || ratio == 0 {
		if mask != nil {
			for i := int64(0); i < mask.Len(); i++ {
				mask.SetFloat64At(i, 1)
			}
		}
		return []*ir.Tensor{x, mask}, nil
	}
	if !x.DType.IsFloat() {
		return nil, c.Errorf("training-mode dropout needs a floating-point input, got %s", x.DType)
	}
	// Training mode: keep each element with probability 1-ratio and scale by
	// 1/(1-ratio). The seed attribute makes runs repeatable.
	rng := rand.New(rand.NewSource(c.Int("seed", 0)))
	y, err := newOut(c, x.DType, x.Dims)
	if err != nil {
		return nil, err
	}
	scale := 1 / (1 - ratio)
	for i := int64(0); i < x.Len(); i++ {
		keep := rng.Float64() >= ratio
		if keep {
			y.SetFloat64At(i, x.Float64At(i)*scale)
		}
		if mask != nil && keep {
			mask.SetFloat64At(i, 1)
		}
	}
	return []*ir.Tensor{y, mask}, nil
}

func dropoutInfer(c *ops.InferCtx) error {
	t, err := c.Input(0)
	if err != nil {
		return err
	}
	c.Out[0] = t.Clone()
	if len(c.Out) > 1 && wantOut(c.Node, 1) {
		m := t.Clone()
		if c.Opset >= 10 {
			m.DType = ir.Bool
		}
		c.Out[1] = m
	}
	return nil
}

// shapeRange returns Shape's [start, end) (attributes from opset 15),
// clamped to [0, r] as the spec says.
func shapeRange(e attrGetter, opset int64, r int) (int, int) {
	if opset < 15 {
		return 0, r
	}
	clamp := func(v int64) int {
		if v < 0 {
			v += int64(r)
		}
		return int(max(0, min(v, int64(r))))
	}
	start := clamp(e.Int("start", 0))
	end := r
	if e.Has("end") {
		end = clamp(e.Int("end", int64(r)))
	}
	return start, max(start, end)
}

func shapeOp(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	x, err := input(c, in, 0, "data")
	if err != nil {
		return nil, err
	}
	s, e := shapeRange(c, c.Opset, x.Rank())
	d := x.Dims[s:e]
	return []*ir.Tensor{ir.FromInt64s(ir.Int64, []int64{int64(len(d))}, d)}, nil
}

func shapeInfer(c *ops.InferCtx) error {
	t, err := c.Input(0)
	if err != nil {
		return err
	}
	if !t.HasShape {
		c.Out[0] = ir.TensorType(ir.Int64, ir.Shape{ir.Unknown()})
		return nil
	}
	s, e := shapeRange(c, c.Opset, len(t.Shape))
	v := append(ir.Shape{}, t.Shape[s:e]...)
	c.Out[0] = ir.TensorType(ir.Int64, ir.Shape{ir.D(int64(len(v)))})
	c.OutValue[0] = v
	return nil
}

func size(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	x, err := input(c, in, 0, "data")
	if err != nil {
		return nil, err
	}
	return []*ir.Tensor{ir.ScalarInt64(x.Len())}, nil
}

func sizeInfer(c *ops.InferCtx) error {
	t, err := c.Input(0)
	if err != nil {
		return err
	}
	c.Out[0] = ir.TensorType(ir.Int64, ir.Shape{})
	if t.HasShape {
		if p := dimProd(t.Shape); p.Known() || p.Param != "" {
			c.OutValue[0] = ir.Shape{p}
		}
	}
	return nil
}
