package layout

import (
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

func init() {
	ops.Register(&ops.Op{Type: "DepthToSpace", MinOpset: 1, Run: depthToSpace, Infer: depthToSpaceInfer})
	ops.Register(&ops.Op{Type: "SpaceToDepth", MinOpset: 1, Run: spaceToDepth, Infer: spaceToDepthInfer})
}

func blocksize(e attrGetter) (int64, error) {
	b := e.Int("blocksize", 0)
	if b < 1 || b > 1<<16 {
		return 0, e.Errorf("blocksize %d must be positive and at most 65536", b)
	}
	return b, nil
}

func depthMode(e attrGetter, opset int64) (string, error) {
	if opset < 11 {
		return "DCR", nil
	}
	m := e.String("mode", "DCR")
	if m != "DCR" && m != "CRD" {
		return "", e.Errorf("mode %q is not DCR or CRD", m)
	}
	return m, nil
}

// permuted runs Reshape(x, dims6) → Transpose(perm) → Reshape(out) as one
// strided copy.
func permuted(c *ops.Ctx, x *ir.Tensor, dims6 []int64, perm []int, out []int64) ([]*ir.Tensor, error) {
	st := ops.Strides(dims6)
	dims := make([]int64, len(perm))
	strides := make([]int64, len(perm))
	for i, a := range perm {
		dims[i], strides[i] = dims6[a], st[a]
	}
	y, err := newOut(c, x.DType, out)
	if err != nil {
		return nil, err
	}
	stridedCopy(y, x, dims, strides, 0)
	return []*ir.Tensor{y}, nil
}

func depthToSpace(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	x, err := input(c, in, 0, "input")
	if err != nil {
		return nil, err
	}
	b, err := blocksize(c)
	if err != nil {
		return nil, err
	}
	mode, err := depthMode(c, c.Opset)
	if err != nil {
		return nil, err
	}
	if x.Rank() != 4 || x.Dims[1]%(b*b) != 0 {
		return nil, c.Errorf("input %v must be 4-D with channels divisible by blocksize² = %d", x.Dims, b*b)
	}
	n, ch, h, w := x.Dims[0], x.Dims[1], x.Dims[2], x.Dims[3]
	out := []int64{n, ch / (b * b), h * b, w * b}
	if mode == "DCR" {
		return permuted(c, x, []int64{n, b, b, ch / (b * b), h, w}, []int{0, 3, 4, 1, 5, 2}, out)
	}
	return permuted(c, x, []int64{n, ch / (b * b), b, b, h, w}, []int{0, 1, 4, 2, 5, 3}, out)
}

func spaceToDepth(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	x, err := input(c, in, 0, "input")
	if err != nil {
		return nil, err
	}
	b, err := blocksize(c)
	if err != nil {
		return nil, err
	}
	if x.Rank() != 4 || x.Dims[2]%b != 0 || x.Dims[3]%b != 0 {
		return nil, c.Errorf("input %v must be 4-D with height and width divisible by blocksize %d", x.Dims, b)
	}
	n, ch, h, w := x.Dims[0], x.Dims[1], x.Dims[2], x.Dims[3]
	return permuted(c, x, []int64{n, ch, h / b, b, w / b, b}, []int{0, 3, 5, 1, 2, 4}, []int64{n, ch * b * b, h / b, w / b})
}

// dimDiv divides a dim by a known factor (unknown unless it is a number).
func dimDiv(d ir.Dim, f int64) ir.Dim {
	if d.Known() && d.Value%f == 0 {
		return ir.D(d.Value / f)
	}
	return ir.Unknown()
}

func depthToSpaceInfer(c *ops.InferCtx) error {
	return spaceInfer(c, func(s ir.Shape, b int64) ir.Shape {
		return ir.Shape{s[0], dimDiv(s[1], b*b), dimMul(s[2], ir.D(b)), dimMul(s[3], ir.D(b))}
	})
}

func spaceToDepthInfer(c *ops.InferCtx) error {
	return spaceInfer(c, func(s ir.Shape, b int64) ir.Shape {
		return ir.Shape{s[0], dimMul(s[1], ir.D(b*b)), dimDiv(s[2], b), dimDiv(s[3], b)}
	})
}

func spaceInfer(c *ops.InferCtx, f func(ir.Shape, int64) ir.Shape) error {
	t, err := c.Input(0)
	if err != nil {
		return err
	}
	b, err := blocksize(c)
	if err != nil {
		return err
	}
	if _, err := depthMode(c, c.Opset); err != nil {
		return err
	}
	c.Out[0] = ir.TensorType(t.DType, unknownShape(4))
	if t.HasShape {
		if len(t.Shape) != 4 {
			return c.Errorf("input %v must be 4-D", t.Shape)
		}
		c.Out[0].Shape = f(t.Shape, b)
	}
	return nil
}
