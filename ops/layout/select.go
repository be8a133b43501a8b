package layout

import (
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

func init() {
	ops.Register(&ops.Op{Type: "OneHot", MinOpset: 9, Run: oneHot, Infer: oneHotInfer})
	ops.Register(&ops.Op{Type: "NonZero", MinOpset: 9, Run: nonZero, Infer: nonZeroInfer})
	ops.Register(&ops.Op{Type: "Compress", MinOpset: 9, Run: compress, Infer: compressInfer})
	ops.Register(&ops.Op{Type: "Trilu", MinOpset: 14, Run: trilu, Infer: ops.SameAsInput(0)})
	ops.Register(&ops.Op{Type: "ReverseSequence", MinOpset: 10, Run: reverseSequence, Infer: ops.SameAsInput(0)})
}

// oneHotAxis normalizes OneHot's axis against the output rank r+1.
func oneHotAxis(e attrGetter, r int) (int, error) {
	a := e.Int("axis", -1)
	ax, err := ops.NormAxis(a, r+1)
	if err != nil {
		return 0, e.Errorf("%v", err)
	}
	return ax, nil
}

func oneHot(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	idx, err := input(c, in, 0, "indices")
	if err != nil {
		return nil, err
	}
	dt, err := input(c, in, 1, "depth")
	if err != nil {
		return nil, err
	}
	vals, err := input(c, in, 2, "values")
	if err != nil {
		return nil, err
	}
	if dt.Len() != 1 || !(dt.DType.IsInteger() || dt.DType.IsFloat()) {
		return nil, c.Errorf("depth must be a numeric scalar, got %s%v", dt.DType, dt.Dims)
	}
	if vals.Len() != 2 {
		return nil, c.Errorf("values must hold [off, on], has shape %v", vals.Dims)
	}
	if !(idx.DType.IsInteger() || idx.DType.IsFloat()) {
		return nil, c.Errorf("indices are %s, want a numeric type", idx.DType)
	}
	depth := dt.Int64At(0)
	if depth < 1 {
		return nil, c.Errorf("depth %d must be positive", depth)
	}
	axis, err := oneHotAxis(c, idx.Rank())
	if err != nil {
		return nil, err
	}
	dims := append(append(append([]int64{}, idx.Dims[:axis]...), depth), idx.Dims[axis:]...)
	out, err := newOut(c, vals.DType, dims)
	if err != nil {
		return nil, err
	}
	fill(out, vals) // values[0] is "off"
	inner := prod(idx.Dims[axis:])
	for i := int64(0); i < idx.Len(); i++ {
		v := idx.Int64At(i)
		if v < 0 && c.Opset >= 11 { // negative indices count from the end since opset 11
			v += depth
		}
		if v < 0 || v >= depth {
			continue // out of range: all off
		}
		o, j := i/inner, i%inner
		copyElem(out, (o*depth+v)*inner+j, vals, 1)
	}
	return []*ir.Tensor{out}, nil
}

func oneHotInfer(c *ops.InferCtx) error {
	vt, err := c.Input(2)
	if err != nil {
		return err
	}
	c.Out[0] = &ir.Type{DType: vt.DType}
	it, ok := ranked(c, 0)
	if !ok {
		return nil
	}
	axis, err := oneHotAxis(c, len(it.Shape))
	if err != nil {
		return err
	}
	depth := ir.Unknown()
	if d := c.Const[1:]; len(d) > 0 && d[0] != nil && d[0].Len() == 1 && (d[0].DType.IsFloat() || d[0].DType.IsInteger()) {
		if v := d[0].Int64At(0); v >= 1 {
			depth = ir.D(v)
		}
	} else if v, ok := c.InputValue(1); ok && len(v) == 1 {
		depth = v[0]
	}
	s := append(append(append(ir.Shape{}, it.Shape[:axis]...), depth), it.Shape[axis:]...)
	c.Out[0] = ir.TensorType(vt.DType, s)
	return nil
}

func nonZero(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	x, err := input(c, in, 0, "X")
	if err != nil {
		return nil, err
	}
	var hits []int64
	for i := int64(0); i < x.Len(); i++ {
		if !isZero(x, i) {
			hits = append(hits, i)
		}
	}
	r := int64(x.Rank())
	nnz := int64(len(hits))
	out, err := newOut(c, ir.Int64, []int64{r, nnz})
	if err != nil {
		return nil, err
	}
	o := out.I64()
	st := ops.Strides(x.Dims)
	for j, flat := range hits {
		for k := int64(0); k < r; k++ {
			o[k*nnz+int64(j)] = flat / st[k]
			flat %= st[k]
		}
	}
	return []*ir.Tensor{out}, nil
}

func nonZeroInfer(c *ops.InferCtx) error {
	t, err := c.Input(0)
	if err != nil {
		return err
	}
	r := ir.Unknown()
	if t.HasShape {
		r = ir.D(int64(len(t.Shape)))
	}
	c.Out[0] = ir.TensorType(ir.Int64, ir.Shape{r, ir.Unknown()})
	return nil
}

func compress(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	x, err := input(c, in, 0, "input")
	if err != nil {
		return nil, err
	}
	cond, err := input(c, in, 1, "condition")
	if err != nil {
		return nil, err
	}
	if cond.DType != ir.Bool || cond.Rank() != 1 {
		return nil, c.Errorf("condition must be a 1-D bool tensor, got %s%v", cond.DType, cond.Dims)
	}
	src := x
	axis := 0
	if c.Has("axis") {
		if axis, err = ops.NormAxis(c.Int("axis", 0), x.Rank()); err != nil {
			return nil, c.Errorf("%v", err)
		}
	} else {
		src = view(x, []int64{x.Len()})
	}
	dim := src.Dims[axis]
	var keep []int64
	for i := int64(0); i < cond.Len(); i++ {
		if cond.Data[i] != 0 {
			if i >= dim {
				return nil, c.Errorf("condition has %d entries and selects index %d, but the axis has size %d", cond.Len(), i, dim)
			}
			keep = append(keep, i)
		}
	}
	dims := append([]int64{}, src.Dims...)
	dims[axis] = int64(len(keep))
	out, err := newOut(c, x.DType, dims)
	if err != nil {
		return nil, err
	}
	outer, tail := prod(src.Dims[:axis]), prod(src.Dims[axis+1:])
	for o := int64(0); o < outer; o++ {
		for j, k := range keep {
			copyRun(out, (o*int64(len(keep))+int64(j))*tail, src, (o*dim+k)*tail, tail)
		}
	}
	return []*ir.Tensor{out}, nil
}

func compressInfer(c *ops.InferCtx) error {
	t, err := c.Input(0)
	if err != nil {
		return err
	}
	if !c.Has("axis") {
		c.Out[0] = ir.TensorType(t.DType, ir.Shape{ir.Unknown()})
		return nil
	}
	c.Out[0] = &ir.Type{DType: t.DType}
	if !t.HasShape {
		return nil
	}
	axis, err := ops.NormAxis(c.Int("axis", 0), len(t.Shape))
	if err != nil {
		return c.Errorf("%v", err)
	}
	s := append(ir.Shape{}, t.Shape...)
	s[axis] = ir.Unknown()
	c.Out[0] = ir.TensorType(t.DType, s)
	return nil
}

func trilu(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	x, err := input(c, in, 0, "input")
	if err != nil {
		return nil, err
	}
	if x.Rank() < 2 {
		return nil, c.Errorf("input must have rank 2 or more, has shape %v", x.Dims)
	}
	k := int64(0)
	if kt := opt(in, 1); kt != nil {
		if k, err = scalarInt(c, kt, "k"); err != nil {
			return nil, err
		}
	}
	upper := c.Int("upper", 1) != 0
	out, err := newOut(c, x.DType, x.Dims)
	if err != nil {
		return nil, err
	}
	r := x.Rank()
	rows, cols := x.Dims[r-2], x.Dims[r-1]
	mats := prod(x.Dims[:r-2])
	for m := int64(0); m < mats; m++ {
		for i := int64(0); i < rows; i++ {
			// Keep j-i >= k (upper) or j-i <= k (lower): one run per row.
			lo, hi := int64(0), cols
			if upper {
				lo = max(0, min(cols, i+k))
			} else {
				hi = max(0, min(cols, i+k+1))
			}
			base := (m*rows + i) * cols
			copyRun(out, base+lo, x, base+lo, hi-lo)
		}
	}
	return []*ir.Tensor{out}, nil
}

func reverseSequence(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	x, err := input(c, in, 0, "input")
	if err != nil {
		return nil, err
	}
	lt, err := input(c, in, 1, "sequence_lens")
	if err != nil {
		return nil, err
	}
	lens, err := intsOf(c, lt, "sequence_lens")
	if err != nil {
		return nil, err
	}
	ba, ta := c.Int("batch_axis", 1), c.Int("time_axis", 0)
	if x.Rank() < 2 || ba == ta || ba < 0 || ba > 1 || ta < 0 || ta > 1 {
		return nil, c.Errorf("input %v with batch_axis %d and time_axis %d: need rank >= 2 and axes {0, 1}", x.Dims, ba, ta)
	}
	if int64(len(lens)) != x.Dims[ba] {
		return nil, c.Errorf("sequence_lens has %d entries for a batch of %d", len(lens), x.Dims[ba])
	}
	steps := x.Dims[ta]
	for _, l := range lens {
		if l < 0 || l > steps {
			return nil, c.Errorf("sequence length %d is outside [0, %d]", l, steps)
		}
	}
	out, err := newOut(c, x.DType, x.Dims)
	if err != nil {
		return nil, err
	}
	st := ops.Strides(x.Dims)
	tail := st[1] // elements per (axis0, axis1) pair
	for b := int64(0); b < x.Dims[ba]; b++ {
		for t := int64(0); t < steps; t++ {
			src := t
			if t < lens[b] {
				src = lens[b] - 1 - t
			}
			copyRun(out, b*st[ba]+t*st[ta], x, b*st[ba]+src*st[ta], tail)
		}
	}
	return []*ir.Tensor{out}, nil
}
