package layout

import (
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

func init() {
	ops.Register(&ops.Op{Type: "Transpose", MinOpset: 1, Run: transpose, Infer: transposeInfer})
}

// perm returns Transpose's permutation (reversed axes by default), checked.
func perm(e attrGetter, r int) ([]int, error) {
	p := e.Ints("perm", nil)
	out := make([]int, r)
	if p == nil {
		for i := range out {
			out[i] = r - 1 - i
		}
		return out, nil
	}
	if len(p) != r {
		return nil, e.Errorf("perm %v has %d entries for an input of rank %d", p, len(p), r)
	}
	seen := make([]bool, r)
	for i, a := range p {
		if a < 0 || a >= int64(r) || seen[a] {
			return nil, e.Errorf("perm %v is not a permutation of 0..%d", p, r-1)
		}
		seen[a] = true
		out[i] = int(a)
	}
	return out, nil
}

func transpose(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	x, err := input(c, in, 0, "data")
	if err != nil {
		return nil, err
	}
	p, err := perm(c, x.Rank())
	if err != nil {
		return nil, err
	}
	st := ops.Strides(x.Dims)
	dims := make([]int64, len(p))
	strides := make([]int64, len(p))
	for i, a := range p {
		dims[i], strides[i] = x.Dims[a], st[a]
	}
	out, err := newOut(c, x.DType, dims)
	if err != nil {
		return nil, err
	}
	stridedCopy(out, x, dims, strides, 0)
	return []*ir.Tensor{out}, nil
}

func transposeInfer(c *ops.InferCtx) error {
	t, err := c.Input(0)
	if err != nil {
		return err
	}
	if !t.HasShape {
		c.Out[0] = &ir.Type{DType: t.DType}
		if p := c.Ints("perm", nil); p != nil {
			c.Out[0] = ir.TensorType(t.DType, unknownShape(len(p)))
		}
		return nil
	}
	p, err := perm(c, len(t.Shape))
	if err != nil {
		return err
	}
	s := make(ir.Shape, len(p))
	for i, a := range p {
		s[i] = t.Shape[a]
	}
	c.Out[0] = ir.TensorType(t.DType, s)
	return nil
}
