package arith

import (
	"math"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

// ArgMax/ArgMin and Softmax/LogSoftmax/Hardmax work along one axis: the
// input is seen as [outer, n, inner] with n the length of that axis.

func init() {
	ops.Register(&ops.Op{Type: "ArgMax", MinOpset: 1, Run: argReduce(true), Infer: inferArg})
	ops.Register(&ops.Op{Type: "ArgMin", MinOpset: 1, Run: argReduce(false), Infer: inferArg})
	for name, f := range normalizers {
		ops.Register(&ops.Op{Type: name, MinOpset: 1, Run: normalize(f), Infer: inferNormalize})
	}
}

// split returns outer, n, inner for dims around axis; with flat, everything
// from axis on counts as the one axis (Softmax before opset 13 coerces its
// input to 2-D at axis).
func split(dims []int64, axis int, flat bool) (outer, n, inner int64) {
	outer, n, inner = numel(dims[:axis]), dims[axis], numel(dims[axis+1:])
	if flat {
		n, inner = n*inner, 1
	}
	return outer, n, inner
}

func argReduce(isMax bool) ops.Kernel {
	return func(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
		if err := inputs(c, in, 1, 1); err != nil {
			return nil, err
		}
		x := in[0]
		axis, err := ops.NormAxis(c.Int("axis", 0), x.Rank())
		if err != nil {
			return nil, c.Errorf("%v", err)
		}
		if x.Dims[axis] == 0 {
			return nil, c.Errorf("cannot take the index of an extreme along empty axis %d", axis)
		}
		keep, last := c.Int("keepdims", 1) != 0, c.Int("select_last_index", 0) != 0
		outer, n, inner := split(x.Dims, axis, false)
		var idx []int64
		switch kindOf(x.DType) {
		case kFloat:
			idx = argBest(load[float64](x), outer, n, inner, isMax, last)
		case kSigned:
			idx = argBest(load[int64](x), outer, n, inner, isMax, last)
		case kUnsigned, kBool:
			idx = argBest(load[uint64](x), outer, n, inner, isMax, last)
		default:
			return nil, c.Errorf("does not accept %s input", x.DType)
		}
		mask := make([]bool, x.Rank())
		mask[axis] = true
		return []*ir.Tensor{ir.FromInt64s(ir.Int64, keptDims(x.Dims, mask, keep), idx)}, nil
	}
}

func keptDims(dims []int64, mask []bool, keep bool) []int64 {
	out := []int64{}
	for i, d := range dims {
		switch {
		case !mask[i]:
			out = append(out, d)
		case keep:
			out = append(out, 1)
		}
	}
	return out
}

// argBest finds, per (outer, inner), the index along n of the largest (or
// smallest) value: the first one, or the last with last. NaN beats every
// number, as in numpy.
func argBest[T num](x []T, outer, n, inner int64, isMax, last bool) []int64 {
	out := make([]int64, outer*inner)
	for o := int64(0); o < outer; o++ {
		for i := int64(0); i < inner; i++ {
			base := o * n * inner
			best, bi := x[base+i], int64(0)
			for j := int64(1); j < n; j++ {
				if v := x[base+j*inner+i]; better(v, best, isMax, last) {
					best, bi = v, j
				}
			}
			out[o*inner+i] = bi
		}
	}
	return out
}

func better[T num](v, best T, isMax, last bool) bool {
	switch {
	case best != best: // NaN so far: only a later NaN, with last
		return last && v != v
	case v != v:
		return true
	case v == best:
		return last
	}
	return (v > best) == isMax
}

func inferArg(c *ops.InferCtx) error {
	t, err := c.Input(0)
	if err != nil {
		return err
	}
	c.Out[0] = &ir.Type{DType: ir.Int64}
	if !t.HasShape {
		return nil
	}
	axis, err := ops.NormAxis(c.Int("axis", 0), len(t.Shape))
	if err != nil {
		return c.Errorf("%v", err)
	}
	mask := make([]bool, len(t.Shape))
	mask[axis] = true
	c.Out[0] = ir.TensorType(ir.Int64, reducedShape(t.Shape, mask, c.Int("keepdims", 1) != 0))
	return nil
}

// A normalizer rewrites one row (n values at stride inner) in place, given
// the row's maximum.
type normalizer func(row func(j int64) *float64, n int64, m float64)

var normalizers = map[string]normalizer{
	"Softmax": func(row func(int64) *float64, n int64, m float64) {
		s := 0.0
		for j := int64(0); j < n; j++ {
			p := row(j)
			*p = math.Exp(*p - m)
			s += *p
		}
		for j := int64(0); j < n; j++ {
			*row(j) /= s
		}
	},
	"LogSoftmax": func(row func(int64) *float64, n int64, m float64) {
		s := 0.0
		for j := int64(0); j < n; j++ {
			s += math.Exp(*row(j) - m)
		}
		ls := math.Log(s)
		for j := int64(0); j < n; j++ {
			*row(j) = *row(j) - m - ls
		}
	},
	"Hardmax": func(row func(int64) *float64, n int64, _ float64) {
		best := int64(0)
		for j := int64(1); j < n; j++ {
			if better(*row(j), *row(best), true, false) {
				best = j
			}
		}
		for j := int64(0); j < n; j++ {
			*row(j) = truth[float64](j == best)
		}
	},
}

// normalize runs a normalizer over every row along the axis. Before opset
// 13 the axis defaults to 1 and everything from it on is one row; from 13
// on it is a single axis, by default the last.
func normalize(f normalizer) ops.Kernel {
	return func(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
		if err := inputs(c, in, 1, 1); err != nil {
			return nil, err
		}
		x := in[0]
		if kindOf(x.DType) != kFloat {
			return nil, c.Errorf("does not accept %s input", x.DType)
		}
		flat := c.Opset < 13
		def := int64(-1)
		if flat {
			def = 1
		}
		axis, err := ops.NormAxis(c.Int("axis", def), x.Rank())
		if err != nil {
			return nil, c.Errorf("%v", err)
		}
		v := load[float64](x)
		outer, n, inner := split(x.Dims, axis, flat)
		for o := int64(0); o < outer; o++ {
			for i := int64(0); i < inner; i++ {
				base := o*n*inner + i
				row := func(j int64) *float64 { return &v[base+j*inner] }
				m := math.Inf(-1)
				for j := int64(0); j < n; j++ {
					m = maxOf(*row(j), m)
				}
				f(row, n, m)
			}
		}
		return []*ir.Tensor{store(x.DType, x.Dims, v)}, nil
	}
}

func inferNormalize(c *ops.InferCtx) error {
	t, err := c.Input(0)
	if err != nil {
		return err
	}
	if t.DType != ir.Undefined && kindOf(t.DType) != kFloat {
		return c.Errorf("does not accept %s input", t.DType)
	}
	c.Out[0] = t.Clone()
	return nil
}
