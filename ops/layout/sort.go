package layout

import (
	"bytes"
	"cmp"
	"math"
	"sort"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

func init() {
	ops.Register(&ops.Op{Type: "TopK", MinOpset: 1, Run: topK, Infer: topKInfer})
	ops.Register(&ops.Op{Type: "Unique", MinOpset: 11, Run: unique, Infer: uniqueInfer})
	ops.Register(&ops.Op{Type: "CumSum", MinOpset: 11, Run: cumSum, Infer: ops.SameAsInput(0)})
}

// cmpElem orders a[i] against b[j] numerically (NaN above everything and
// equal to itself, so sorting and grouping are total), strings bytewise.
func cmpElem(a *ir.Tensor, i int64, b *ir.Tensor, j int64) int {
	switch dt := a.DType; {
	case dt == ir.String:
		return bytes.Compare(a.Strings[i], b.Strings[j])
	case dt.IsFloat():
		x, y := a.Float64At(i), b.Float64At(j)
		if xn, yn := math.IsNaN(x), math.IsNaN(y); xn || yn {
			return cmp.Compare(boolInt(xn), boolInt(yn))
		}
		return cmp.Compare(x, y)
	case dt == ir.Uint64:
		return cmp.Compare(uint64(a.Int64At(i)), uint64(b.Int64At(j)))
	case dt.IsInteger() || dt == ir.Bool:
		return cmp.Compare(a.Int64At(i), b.Int64At(j))
	}
	w := int64(a.DType.Bits() / 8)
	return bytes.Compare(a.Data[i*w:(i+1)*w], b.Data[j*w:(j+1)*w])
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func topK(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	x, err := input(c, in, 0, "X")
	if err != nil {
		return nil, err
	}
	var k int64
	if c.Opset < 10 {
		k = c.Int("k", -1)
	} else {
		kt, err := input(c, in, 1, "K")
		if err != nil {
			return nil, err
		}
		if k, err = scalarInt(c, kt, "K"); err != nil {
			return nil, err
		}
	}
	if x.Rank() == 0 {
		return nil, c.Errorf("input must have rank 1 or more")
	}
	axis, err := ops.NormAxis(c.Int("axis", -1), x.Rank())
	if err != nil {
		return nil, c.Errorf("%v", err)
	}
	dim := x.Dims[axis]
	if k < 0 || k > dim {
		return nil, c.Errorf("k = %d is outside [0, %d] (the size of axis %d)", k, dim, axis)
	}
	largest := c.Opset < 11 || c.Int("largest", 1) != 0
	dims := append([]int64{}, x.Dims...)
	dims[axis] = k
	vals, err := newOut(c, x.DType, dims)
	if err != nil {
		return nil, err
	}
	idxs, err := newOut(c, ir.Int64, dims)
	if err != nil {
		return nil, err
	}
	outer, inner := prod(x.Dims[:axis]), prod(x.Dims[axis+1:])
	order := make([]int64, dim)
	iv := idxs.I64()
	for o := int64(0); o < outer; o++ {
		for in := int64(0); in < inner; in++ {
			at := func(j int64) int64 { return (o*dim+j)*inner + in }
			for j := range order {
				order[j] = int64(j)
			}
			// Ties keep the lower index first, as ONNX specifies.
			sort.SliceStable(order, func(p, q int) bool {
				r := cmpElem(x, at(order[p]), x, at(order[q]))
				if largest {
					return r > 0
				}
				return r < 0
			})
			for j := int64(0); j < k; j++ {
				dst := (o*k+j)*inner + in
				copyElem(vals, dst, x, at(order[j]))
				iv[dst] = order[j]
			}
		}
	}
	return []*ir.Tensor{vals, idxs}, nil
}

func topKInfer(c *ops.InferCtx) error {
	t, err := c.Input(0)
	if err != nil {
		return err
	}
	c.Out[0] = &ir.Type{DType: t.DType}
	if len(c.Out) > 1 {
		c.Out[1] = &ir.Type{DType: ir.Int64}
	}
	if !t.HasShape {
		return nil
	}
	axis, err := ops.NormAxis(c.Int("axis", -1), len(t.Shape))
	if err != nil {
		return c.Errorf("%v", err)
	}
	s := append(ir.Shape{}, t.Shape...)
	s[axis] = ir.Unknown()
	if c.Opset < 10 {
		s[axis] = ir.D(c.Int("k", 0))
	} else if k, ok := c.InputValue(1); ok && len(k) == 1 {
		s[axis] = k[0]
	}
	c.Out[0] = ir.TensorType(t.DType, s)
	if len(c.Out) > 1 {
		c.Out[1] = ir.TensorType(ir.Int64, append(ir.Shape{}, s...))
	}
	return nil
}

func cumSum(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	x, err := input(c, in, 0, "x")
	if err != nil {
		return nil, err
	}
	at, err := input(c, in, 1, "axis")
	if err != nil {
		return nil, err
	}
	a, err := scalarInt(c, at, "axis")
	if err != nil {
		return nil, err
	}
	if !(x.DType.IsFloat() || x.DType.IsInteger()) {
		return nil, c.Errorf("CumSum does not support %s", x.DType)
	}
	axis, err := ops.NormAxis(a, x.Rank())
	if err != nil {
		return nil, c.Errorf("%v", err)
	}
	exclusive, reverse := c.Int("exclusive", 0) != 0, c.Int("reverse", 0) != 0
	out, err := newOut(c, x.DType, x.Dims)
	if err != nil {
		return nil, err
	}
	dim := x.Dims[axis]
	outer, inner := prod(x.Dims[:axis]), prod(x.Dims[axis+1:])
	// The running sum is kept in the element type (read back after each
	// store), as numpy's cumsum and ONNX Runtime accumulate.
	acc := ir.NewTensor(x.DType, []int64{1})
	for o := int64(0); o < outer; o++ {
		for in := int64(0); in < inner; in++ {
			acc.SetInt64At(0, 0)
			for s := int64(0); s < dim; s++ {
				j := s
				if reverse {
					j = dim - 1 - s
				}
				i := (o*dim+j)*inner + in
				if exclusive {
					copyElem(out, i, acc, 0)
				}
				if x.DType.IsFloat() {
					acc.SetFloat64At(0, acc.Float64At(0)+x.Float64At(i))
				} else {
					acc.SetInt64At(0, acc.Int64At(0)+x.Int64At(i))
				}
				if !exclusive {
					copyElem(out, i, acc, 0)
				}
			}
		}
	}
	return []*ir.Tensor{out}, nil
}

// unique groups X (flattened) or its slices along axis, returning the
// distinct values/slices and ONNX's indices, inverse_indices and counts.
func unique(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	x, err := input(c, in, 0, "X")
	if err != nil {
		return nil, err
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
	outer, inner := prod(src.Dims[:axis]), prod(src.Dims[axis+1:])
	cmpSlice := func(p, q int64) int {
		for o := int64(0); o < outer; o++ {
			for i := int64(0); i < inner; i++ {
				if r := cmpElem(src, (o*dim+p)*inner+i, src, (o*dim+q)*inner+i); r != 0 {
					return r
				}
			}
		}
		return 0
	}
	order := make([]int64, dim)
	for i := range order {
		order[i] = int64(i)
	}
	sort.SliceStable(order, func(a, b int) bool { return cmpSlice(order[a], order[b]) < 0 })
	// Group equal neighbours: first occurrence, count, and each slice's group.
	var firsts, counts []int64
	group := make([]int64, dim)
	for n, s := range order {
		if n == 0 || cmpSlice(order[n-1], s) != 0 {
			firsts = append(firsts, s)
			counts = append(counts, 0)
		}
		group[s] = int64(len(firsts) - 1)
		counts[len(counts)-1]++
	}
	u := int64(len(firsts))
	rank := make([]int64, u) // output position of each group
	for g := range rank {
		rank[g] = int64(g)
	}
	if c.Int("sorted", 1) == 0 {
		// Keep first-occurrence order instead of sorted order.
		pos := make([]int64, u)
		for g := range pos {
			pos[g] = int64(g)
		}
		sort.Slice(pos, func(a, b int) bool { return firsts[pos[a]] < firsts[pos[b]] })
		for p, g := range pos {
			rank[g] = int64(p)
		}
	}
	dims := append([]int64{}, src.Dims...)
	dims[axis] = u
	y, err := newOut(c, x.DType, dims)
	if err != nil {
		return nil, err
	}
	idx, _ := newOut(c, ir.Int64, []int64{u})
	cnt, _ := newOut(c, ir.Int64, []int64{u})
	inv, _ := newOut(c, ir.Int64, []int64{dim})
	for g := int64(0); g < u; g++ {
		p := rank[g]
		for o := int64(0); o < outer; o++ {
			copyRun(y, (o*u+p)*inner, src, (o*dim+firsts[g])*inner, inner)
		}
		idx.I64()[p] = firsts[g]
		cnt.I64()[p] = counts[g]
	}
	for s := int64(0); s < dim; s++ {
		inv.I64()[s] = rank[group[s]]
	}
	return []*ir.Tensor{y, idx, inv, cnt}, nil
}

func uniqueInfer(c *ops.InferCtx) error {
	t, err := c.Input(0)
	if err != nil {
		return err
	}
	u := ir.Shape{ir.Unknown()}
	c.Out[0] = ir.TensorType(t.DType, u)
	inv := ir.Shape{ir.Unknown()}
	if c.Has("axis") {
		c.Out[0] = &ir.Type{DType: t.DType}
		if t.HasShape {
			axis, err := ops.NormAxis(c.Int("axis", 0), len(t.Shape))
			if err != nil {
				return c.Errorf("%v", err)
			}
			s := append(ir.Shape{}, t.Shape...)
			s[axis] = ir.Unknown()
			c.Out[0] = ir.TensorType(t.DType, s)
			inv = ir.Shape{t.Shape[axis]}
		}
	} else if t.HasShape {
		inv = ir.Shape{dimProd(t.Shape)}
	}
	for k := 1; k < len(c.Out); k++ {
		c.Out[k] = ir.TensorType(ir.Int64, ir.Shape{ir.Unknown()})
	}
	if len(c.Out) > 2 {
		c.Out[2] = ir.TensorType(ir.Int64, inv)
	}
	return nil
}
