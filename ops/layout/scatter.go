package layout

import (
	"math"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

func init() {
	ops.Register(&ops.Op{Type: "Scatter", MinOpset: 9, MaxOpset: 10, Run: scatterElements, Infer: ops.SameAsInput(0)})
	ops.Register(&ops.Op{Type: "ScatterElements", MinOpset: 11, Run: scatterElements, Infer: ops.SameAsInput(0)})
	ops.Register(&ops.Op{Type: "ScatterND", MinOpset: 11, Run: scatterND, Infer: ops.SameAsInput(0)})
}

// combineFunc writes src[si] into dst[di], possibly reducing with dst[di].
type combineFunc func(dst *ir.Tensor, di int64, src *ir.Tensor, si int64)

func reduction(c *ops.Ctx, dt ir.DType) (combineFunc, error) {
	r := "none"
	if c.Opset >= 16 {
		r = c.String("reduction", "none")
	}
	if r == "none" {
		return copyElem, nil
	}
	if r != "add" && r != "mul" && !(c.Opset >= 18 && (r == "max" || r == "min")) {
		return nil, c.Errorf("reduction %q is not supported at opset %d", r, c.Opset)
	}
	if dt == ir.String || !(dt.IsFloat() || dt.IsInteger() || dt == ir.Bool) {
		return nil, c.Errorf("reduction %q is not defined for %s", r, dt)
	}
	if dt.IsFloat() {
		f := map[string]func(a, b float64) float64{
			"add": func(a, b float64) float64 { return a + b },
			"mul": func(a, b float64) float64 { return a * b },
			"max": math.Max, "min": math.Min,
		}[r]
		return func(dst *ir.Tensor, di int64, src *ir.Tensor, si int64) {
			dst.SetFloat64At(di, f(dst.Float64At(di), src.Float64At(si)))
		}, nil
	}
	unsigned := dt == ir.Uint64
	f := map[string]func(a, b int64) int64{
		"add": func(a, b int64) int64 { return a + b },
		"mul": func(a, b int64) int64 { return a * b },
		"max": func(a, b int64) int64 {
			if unsigned {
				return int64(max(uint64(a), uint64(b)))
			}
			return max(a, b)
		},
		"min": func(a, b int64) int64 {
			if unsigned {
				return int64(min(uint64(a), uint64(b)))
			}
			return min(a, b)
		},
	}[r]
	return func(dst *ir.Tensor, di int64, src *ir.Tensor, si int64) {
		dst.SetInt64At(di, f(dst.Int64At(di), src.Int64At(si)))
	}, nil
}

// cloneOut copies data into a fresh output.
func cloneOut(c *ops.Ctx, x *ir.Tensor) (*ir.Tensor, error) {
	out, err := newOut(c, x.DType, x.Dims)
	if err != nil {
		return nil, err
	}
	copyRun(out, 0, x, 0, x.Len())
	return out, nil
}

func scatterElements(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	x, err := input(c, in, 0, "data")
	if err != nil {
		return nil, err
	}
	idx, err := indexTensor(c, in, 1, "indices")
	if err != nil {
		return nil, err
	}
	upd, err := input(c, in, 2, "updates")
	if err != nil {
		return nil, err
	}
	r := x.Rank()
	if r == 0 || idx.Rank() != r || !equalDims(idx.Dims, upd.Dims) || upd.DType != x.DType {
		return nil, c.Errorf("data %s%v, indices %v and updates %s%v do not fit (same rank; indices and updates the same shape and updates the data's type)",
			x.DType, x.Dims, idx.Dims, upd.DType, upd.Dims)
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
	combine, err := reduction(c, x.DType)
	if err != nil {
		return nil, err
	}
	out, err := cloneOut(c, x)
	if err != nil {
		return nil, err
	}
	xs := ops.Strides(x.Dims)
	coord := make([]int64, r)
	for u := int64(0); u < idx.Len(); u++ {
		dst := int64(0)
		for k := range coord {
			if k == axis {
				v, err := normIndex(c, "index", idx.Int64At(u), x.Dims[axis])
				if err != nil {
					return nil, err
				}
				dst += v * xs[k]
			} else {
				dst += coord[k] * xs[k]
			}
		}
		combine(out, dst, upd, u)
		nextCoord(coord, idx.Dims)
	}
	return []*ir.Tensor{out}, nil
}

func equalDims(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func scatterND(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	x, err := input(c, in, 0, "data")
	if err != nil {
		return nil, err
	}
	idx, err := indexTensor(c, in, 1, "indices")
	if err != nil {
		return nil, err
	}
	upd, err := input(c, in, 2, "updates")
	if err != nil {
		return nil, err
	}
	r, q := x.Rank(), idx.Rank()
	if r < 1 || q < 1 {
		return nil, c.Errorf("data %v and indices %v must have rank 1 or more", x.Dims, idx.Dims)
	}
	k := int(idx.Dims[q-1])
	if k > r || upd.DType != x.DType {
		return nil, c.Errorf("indices %v index %d dims of data %s%v (updates %s)", idx.Dims, k, x.DType, x.Dims, upd.DType)
	}
	want := append(append([]int64{}, idx.Dims[:q-1]...), x.Dims[k:]...)
	if !equalDims(upd.Dims, want) {
		return nil, c.Errorf("updates have shape %v, want %v", upd.Dims, want)
	}
	combine, err := reduction(c, x.DType)
	if err != nil {
		return nil, err
	}
	out, err := cloneOut(c, x)
	if err != nil {
		return nil, err
	}
	xs := ops.Strides(x.Dims)
	slab := prod(x.Dims[k:])
	tuples := prod(idx.Dims[:q-1])
	for t := int64(0); t < tuples; t++ {
		dst := int64(0)
		for j := 0; j < k; j++ {
			v, err := normIndex(c, "index", idx.Int64At(t*int64(k)+int64(j)), x.Dims[j])
			if err != nil {
				return nil, err
			}
			dst += v * xs[j]
		}
		for e := int64(0); e < slab; e++ {
			combine(out, dst+e, upd, t*slab+e)
		}
	}
	return []*ir.Tensor{out}, nil
}
