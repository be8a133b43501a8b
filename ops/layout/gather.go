package layout

import (
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

func init() {
	ops.Register(&ops.Op{Type: "Gather", MinOpset: 1, Run: gather, Infer: gatherInfer})
	ops.Register(&ops.Op{Type: "GatherElements", MinOpset: 11, Run: gatherElements, Infer: gatherElementsInfer})
	ops.Register(&ops.Op{Type: "GatherND", MinOpset: 11, Run: gatherND, Infer: gatherNDInfer})
}

// indexTensor checks that t holds int32/int64 indices.
func indexTensor(c *ops.Ctx, in []*ir.Tensor, i int, what string) (*ir.Tensor, error) {
	t, err := input(c, in, i, what)
	if err != nil {
		return nil, err
	}
	if t.DType != ir.Int32 && t.DType != ir.Int64 {
		return nil, c.Errorf("%s is %s, want int32 or int64", what, t.DType)
	}
	return t, nil
}

// normIndex maps an index in [-dim, dim) to [0, dim).
func normIndex(c *ops.Ctx, what string, v, dim int64) (int64, error) {
	if v < -dim || v >= dim {
		return 0, c.Errorf("%s %d is out of bounds for a dimension of size %d", what, v, dim)
	}
	if v < 0 {
		v += dim
	}
	return v, nil
}

func gather(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	x, err := input(c, in, 0, "data")
	if err != nil {
		return nil, err
	}
	idx, err := indexTensor(c, in, 1, "indices")
	if err != nil {
		return nil, err
	}
	if x.Rank() == 0 {
		return nil, c.Errorf("data must have rank 1 or more")
	}
	axis, err := ops.NormAxis(c.Int("axis", 0), x.Rank())
	if err != nil {
		return nil, c.Errorf("%v", err)
	}
	dims := append(append(append([]int64{}, x.Dims[:axis]...), idx.Dims...), x.Dims[axis+1:]...)
	out, err := newOut(c, x.DType, dims)
	if err != nil {
		return nil, err
	}
	dim := x.Dims[axis]
	outer, tail, ni := prod(x.Dims[:axis]), prod(x.Dims[axis+1:]), idx.Len()
	for j := int64(0); j < ni; j++ {
		k, err := normIndex(c, "index", idx.Int64At(j), dim)
		if err != nil {
			return nil, err
		}
		for o := int64(0); o < outer; o++ {
			copyRun(out, (o*ni+j)*tail, x, (o*dim+k)*tail, tail)
		}
	}
	return []*ir.Tensor{out}, nil
}

func gatherInfer(c *ops.InferCtx) error {
	t, err := c.Input(0)
	if err != nil {
		return err
	}
	it := inType(c, 1)
	c.Out[0] = &ir.Type{DType: t.DType}
	if !t.HasShape || it == nil || !it.HasShape {
		return nil
	}
	axis, err := ops.NormAxis(c.Int("axis", 0), len(t.Shape))
	if err != nil {
		return c.Errorf("%v", err)
	}
	s := append(append(append(ir.Shape{}, t.Shape[:axis]...), it.Shape...), t.Shape[axis+1:]...)
	c.Out[0] = ir.TensorType(t.DType, s)
	// Shape values: gathering from a 1-D value picks its elements.
	v, ok := c.InputValue(0)
	if !ok || len(t.Shape) != 1 {
		return nil
	}
	idx, ok := c.InputInts(1)
	if !ok {
		return nil
	}
	ov := make(ir.Shape, len(idx))
	for i, k := range idx {
		if k < -int64(len(v)) || k >= int64(len(v)) {
			return c.Errorf("index %d is out of bounds for a dimension of size %d", k, len(v))
		}
		if k < 0 {
			k += int64(len(v))
		}
		ov[i] = v[k]
	}
	c.OutValue[0] = ov
	return nil
}

func gatherElements(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	x, err := input(c, in, 0, "data")
	if err != nil {
		return nil, err
	}
	idx, err := indexTensor(c, in, 1, "indices")
	if err != nil {
		return nil, err
	}
	r := x.Rank()
	if r == 0 || idx.Rank() != r {
		return nil, c.Errorf("data %v and indices %v must have the same rank, at least 1", x.Dims, idx.Dims)
	}
	axis, err := ops.NormAxis(c.Int("axis", 0), r)
	if err != nil {
		return nil, c.Errorf("%v", err)
	}
	for k := range idx.Dims {
		if k != axis && idx.Dims[k] > x.Dims[k] {
			return nil, c.Errorf("indices shape %v exceeds data shape %v on axis %d", idx.Dims, x.Dims, k)
		}
	}
	out, err := newOut(c, x.DType, idx.Dims)
	if err != nil {
		return nil, err
	}
	xs := ops.Strides(x.Dims)
	coord := make([]int64, r)
	for o := int64(0); o < out.Len(); o++ {
		src := int64(0)
		for k := range coord {
			if k == axis {
				v, err := normIndex(c, "index", idx.Int64At(o), x.Dims[axis])
				if err != nil {
					return nil, err
				}
				src += v * xs[k]
			} else {
				src += coord[k] * xs[k]
			}
		}
		copyElem(out, o, x, src)
		nextCoord(coord, idx.Dims)
	}
	return []*ir.Tensor{out}, nil
}

// nextCoord advances a row-major coordinate by one.
func nextCoord(coord, dims []int64) {
	for k := len(coord) - 1; k >= 0; k-- {
		coord[k]++
		if coord[k] < dims[k] {
			return
		}
		coord[k] = 0
	}
}

func gatherElementsInfer(c *ops.InferCtx) error {
	t, err := c.Input(0)
	if err != nil {
		return err
	}
	c.Out[0] = &ir.Type{DType: t.DType}
	if it := inType(c, 1); it != nil && it.HasShape {
		c.Out[0] = ir.TensorType(t.DType, append(ir.Shape{}, it.Shape...))
	}
	return nil
}

func gatherND(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	x, err := input(c, in, 0, "data")
	if err != nil {
		return nil, err
	}
	idx, err := indexTensor(c, in, 1, "indices")
	if err != nil {
		return nil, err
	}
	b := int(c.Int("batch_dims", 0))
	r, q := x.Rank(), idx.Rank()
	if r < 1 || q < 1 || b < 0 || b >= min(r, q) {
		return nil, c.Errorf("data %v, indices %v and batch_dims %d do not fit (need rank >= 1 and batch_dims < both ranks)", x.Dims, idx.Dims, b)
	}
	last := int(idx.Dims[q-1])
	if last < 1 && idx.Len() > 0 || last > r-b {
		return nil, c.Errorf("indices %v: last dim %d must be in [1, %d]", idx.Dims, last, r-b)
	}
	for k := 0; k < b; k++ {
		if x.Dims[k] != idx.Dims[k] {
			return nil, c.Errorf("batch dims differ: data %v, indices %v", x.Dims, idx.Dims)
		}
	}
	dims := append(append([]int64{}, idx.Dims[:q-1]...), x.Dims[b+last:]...)
	out, err := newOut(c, x.DType, dims)
	if err != nil {
		return nil, err
	}
	xs := ops.Strides(x.Dims)
	slab := prod(x.Dims[b+last:])
	perBatch := prod(idx.Dims[b : q-1])
	batchStride := prod(x.Dims[b:])
	tuples := prod(idx.Dims[:q-1])
	for t := int64(0); t < tuples; t++ {
		src := (t / max(perBatch, 1)) * batchStride
		for k := 0; k < last; k++ {
			v, err := normIndex(c, "index", idx.Int64At(t*int64(last)+int64(k)), x.Dims[b+k])
			if err != nil {
				return nil, err
			}
			src += v * xs[b+k]
		}
		copyRun(out, t*slab, x, src, slab)
	}
	return []*ir.Tensor{out}, nil
}

func gatherNDInfer(c *ops.InferCtx) error {
	t, err := c.Input(0)
	if err != nil {
		return err
	}
	c.Out[0] = &ir.Type{DType: t.DType}
	it := inType(c, 1)
	if !t.HasShape || it == nil || !it.HasShape || len(it.Shape) == 0 {
		return nil
	}
	b := int(c.Int("batch_dims", 0))
	q := len(it.Shape)
	last := it.Shape[q-1]
	if !last.Known() {
		return nil
	}
	if b < 0 || int(last.Value)+b > len(t.Shape) {
		return c.Errorf("indices %v with batch_dims %d index more dims than data %v has", it.Shape, b, t.Shape)
	}
	s := append(append(ir.Shape{}, it.Shape[:q-1]...), t.Shape[b+int(last.Value):]...)
	c.Out[0] = ir.TensorType(t.DType, s)
	return nil
}
