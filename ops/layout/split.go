package layout

import (
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

func init() {
	ops.Register(&ops.Op{Type: "Split", MinOpset: 2, Run: split, Infer: splitInfer})
}

// splitParts returns the number of parts and, when given, the explicit
// sizes (attribute before opset 13, input 1 from 13).
func splitParts(e attrGetter, opset int64, nOut int, explicit []int64) (int, error) {
	if opset >= 18 && e.Has("num_outputs") {
		n := e.Int("num_outputs", 0)
		if explicit != nil {
			return 0, e.Errorf("split and num_outputs cannot both be given")
		}
		if n < 1 || n != int64(nOut) {
			return 0, e.Errorf("num_outputs is %d but the node has %d outputs", n, nOut)
		}
	}
	if explicit != nil && len(explicit) != nOut {
		return 0, e.Errorf("split %v has %d entries for %d outputs", explicit, len(explicit), nOut)
	}
	if nOut < 1 {
		return 0, e.Errorf("needs at least one output")
	}
	return nOut, nil
}

// splitSizes resolves part sizes along an axis of size dim.
func splitSizes(e attrGetter, opset int64, n int, explicit []int64, dim int64) ([]int64, error) {
	if explicit != nil {
		sum := int64(0)
		for _, s := range explicit {
			if s < 0 {
				return nil, e.Errorf("split %v has a negative size", explicit)
			}
			if s > dim {
				return nil, e.Errorf("split %v has a part larger than the axis (size %d)", explicit, dim)
			}
			sum += s
		}
		if sum != dim {
			return nil, e.Errorf("split %v sums to %d, but the axis has size %d", explicit, sum, dim)
		}
		return explicit, nil
	}
	sizes := make([]int64, n)
	if opset < 18 {
		if dim%int64(n) != 0 {
			return nil, e.Errorf("axis of size %d cannot be split into %d equal parts", dim, n)
		}
		for i := range sizes {
			sizes[i] = dim / int64(n)
		}
		return sizes, nil
	}
	// Opset 18: parts of ceil(dim/n), the last one smaller.
	chunk := (dim + int64(n) - 1) / int64(n)
	left := dim
	for i := range sizes {
		sizes[i] = min(chunk, left)
		left -= sizes[i]
	}
	return sizes, nil
}

func split(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	x, err := input(c, in, 0, "input")
	if err != nil {
		return nil, err
	}
	axis, err := ops.NormAxis(c.Int("axis", 0), x.Rank())
	if err != nil {
		return nil, c.Errorf("%v", err)
	}
	var explicit []int64
	if c.Opset < 13 {
		explicit = c.Ints("split", nil)
	} else if t := opt(in, 1); t != nil {
		if explicit, err = intsOf(c, t, "split"); err != nil {
			return nil, err
		}
	}
	n, err := splitParts(c, c.Opset, c.NumOutputs(), explicit)
	if err != nil {
		return nil, err
	}
	sizes, err := splitSizes(c, c.Opset, n, explicit, x.Dims[axis])
	if err != nil {
		return nil, err
	}
	outer := prod(x.Dims[:axis])
	tail := prod(x.Dims[axis+1:])
	rowIn := x.Dims[axis] * tail
	outs := make([]*ir.Tensor, n)
	off := int64(0)
	for i, s := range sizes {
		dims := append([]int64{}, x.Dims...)
		dims[axis] = s
		if outs[i], err = newOut(c, x.DType, dims); err != nil {
			return nil, err
		}
		row := s * tail
		for o := int64(0); o < outer; o++ {
			copyRun(outs[i], o*row, x, o*rowIn+off, row)
		}
		off += row
	}
	return outs, nil
}

func splitInfer(c *ops.InferCtx) error {
	t, err := c.Input(0)
	if err != nil {
		return err
	}
	var explicit []int64
	explicitKnown := true
	if c.Opset < 13 {
		explicit = c.Ints("split", nil)
	} else if hasInput(c.Node, 1) {
		explicit, explicitKnown = c.InputInts(1)
	}
	n, err := splitParts(c, c.Opset, len(c.Out), explicit)
	if err != nil {
		return err
	}
	for k := range c.Out {
		c.Out[k] = &ir.Type{DType: t.DType}
	}
	if !t.HasShape {
		return nil
	}
	axis, err := ops.NormAxis(c.Int("axis", 0), len(t.Shape))
	if err != nil {
		return c.Errorf("%v", err)
	}
	var sizes []int64
	d := t.Shape[axis]
	switch {
	case !explicitKnown:
	case d.Known():
		if sizes, err = splitSizes(c, c.Opset, n, explicit, d.Value); err != nil {
			return err
		}
	case explicit != nil:
		for _, x := range explicit {
			if x < 0 {
				return c.Errorf("split %v has a negative size", explicit)
			}
		}
		sizes = explicit
	}
	iv, haveValue := c.InputValue(0)
	off := int64(0)
	for k := range c.Out {
		s := append(ir.Shape{}, t.Shape...)
		s[axis] = ir.Unknown()
		if sizes != nil {
			s[axis] = ir.D(sizes[k])
			if haveValue && len(s) == 1 && off >= 0 && sizes[k] <= int64(len(iv))-off {
				c.OutValue[k] = append(ir.Shape{}, iv[off:off+sizes[k]]...)
			}
			off += sizes[k]
		} else if n == 1 {
			s[axis] = d
		}
		c.Out[k] = ir.TensorType(t.DType, s)
	}
	return nil
}
