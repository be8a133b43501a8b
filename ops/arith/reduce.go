package arith

import (
	"fmt"
	"math"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

// plan describes one reduction: the input dims, the output dims with the
// reduced axes kept as 1, the number of elements reduced into each output
// and the input dtype (for the identity of Max and Min).
type plan struct {
	in, kept []int64
	n        int64
	dt       ir.DType
}

// each calls fn(i, o) for every input element i and the output element o it
// reduces into: the kept dims broadcast to the input dims.
func (p *plan) each(fn func(i, o int64)) {
	walk(p.in, [][]int64{p.kept}, func(i int64, idx []int64) { fn(i, idx[0]) })
}

// fold reduces with an associative step from an identity, so that an empty
// reduction gives the identity (0 for sums, 1 for products, the lowest
// value for Max...).
func fold[T num](init func(p *plan) T, step func(acc, x T) T) func(x []T, p *plan) []T {
	return func(x []T, p *plan) []T {
		out := make([]T, numel(p.kept))
		z := init(p)
		for o := range out {
			out[o] = z
		}
		p.each(func(i, o int64) { out[o] = step(out[o], x[i]) })
		return out
	}
}

// then applies fin to every output of a reduction.
func then[T num](r func(x []T, p *plan) []T, fin func(acc T, n int64) T) func(x []T, p *plan) []T {
	return func(x []T, p *plan) []T {
		out := r(x, p)
		for o := range out {
			out[o] = fin(out[o], p.n)
		}
		return out
	}
}

func zero[T num](*plan) T { return 0 }
func one[T num](*plan) T  { return 1 }

// lowest and highest are the identities of Max and Min for the plan's dtype.
func lowest[T num](p *plan) T {
	lo, _ := typeRange[T](p.dt)
	return lo
}

func highest[T num](p *plan) T {
	_, hi := typeRange[T](p.dt)
	return hi
}

// typeRange gives the extreme values of dtype dt as T: ±Inf for floats.
func typeRange[T num](dt ir.DType) (lo, hi T) {
	switch v := any(&lo).(type) {
	case *float64:
		*v, *any(&hi).(*float64) = math.Inf(-1), math.Inf(1)
	case *int64:
		*v, *any(&hi).(*int64) = dt.IntRange()
	case *uint64:
		h := any(&hi).(*uint64)
		switch dt {
		case ir.Uint64:
			*h = math.MaxUint64
		case ir.Bool:
			*h = 1
		default:
			_, x := dt.IntRange()
			*h = uint64(x)
		}
	}
	return lo, hi
}

// nan is NaN for float64 and 0 for the integer types.
func nan[T num]() T {
	var z T
	if _, ok := any(z).(float64); ok {
		return T(math.NaN())
	}
	return 0
}

func abs[T num](x T) T {
	if x < 0 {
		return -x
	}
	return x
}

func sum[T num]() func(x []T, p *plan) []T { return fold(zero[T], add[T]) }

func mean[T num]() func(x []T, p *plan) []T {
	return then(sum[T](), func(s T, n int64) T {
		if n == 0 {
			return nan[T]() // the mean of nothing
		}
		return s / T(n)
	})
}

func sumSquare[T num]() func(x []T, p *plan) []T {
	return fold(zero[T], func(a, x T) T { return a + x*x })
}

// logSumExp subtracts each output's maximum before exponentiating.
func logSumExp(x []float64, p *plan) []float64 {
	m := fold(lowest[float64], maxOf[float64])(x, p)
	s := make([]float64, len(m))
	p.each(func(i, o int64) { s[o] += math.Exp(x[i] - m[o]) })
	for o := range s {
		if math.IsInf(m[o], 0) { // empty, all -Inf, or an +Inf: the max is the answer
			s[o] = m[o]
		} else {
			s[o] = math.Log(s[o]) + m[o]
		}
	}
	return s
}

// reduceFns holds a reduction in each computation type. Integer inputs of
// a reduction with no integer version (L2, LogSum, LogSumExp) are reduced
// in float64 and truncated.
type reduceFns struct {
	f func(x []float64, p *plan) []float64
	i func(x []int64, p *plan) []int64
	u func(x []uint64, p *plan) []uint64
}

type reduceOp struct {
	axesInput int64 // first opset that takes axes as input 1 instead of an attribute
	bools     bool  // accepts bool input (ReduceMax/ReduceMin from opset 20)
	fns       reduceFns
}

func sumAbs[T num]() func(x []T, p *plan) []T {
	return fold(zero[T], func(a, x T) T { return a + abs(x) })
}

var reductions = map[string]*reduceOp{
	"ReduceSum":       {axesInput: 13, fns: reduceFns{sum[float64](), sum[int64](), sum[uint64]()}},
	"ReduceMean":      {axesInput: 18, fns: reduceFns{mean[float64](), mean[int64](), mean[uint64]()}},
	"ReduceMax":       {axesInput: 18, bools: true, fns: reduceFns{fold(lowest[float64], maxOf[float64]), fold(lowest[int64], maxOf[int64]), fold(lowest[uint64], maxOf[uint64])}},
	"ReduceMin":       {axesInput: 18, bools: true, fns: reduceFns{fold(highest[float64], minOf[float64]), fold(highest[int64], minOf[int64]), fold(highest[uint64], minOf[uint64])}},
	"ReduceProd":      {axesInput: 18, fns: reduceFns{fold(one[float64], mul[float64]), fold(one[int64], mul[int64]), fold(one[uint64], mul[uint64])}},
	"ReduceL1":        {axesInput: 18, fns: reduceFns{sumAbs[float64](), sumAbs[int64](), sumAbs[uint64]()}},
	"ReduceSumSquare": {axesInput: 18, fns: reduceFns{sumSquare[float64](), sumSquare[int64](), sumSquare[uint64]()}},
	"ReduceL2": {axesInput: 18, fns: reduceFns{f: then(sumSquare[float64](), func(s float64, _ int64) float64 {
		return math.Sqrt(s)
	})}},
	"ReduceLogSum": {axesInput: 18, fns: reduceFns{f: then(sum[float64](), func(s float64, _ int64) float64 {
		return math.Log(s)
	})}},
	"ReduceLogSumExp": {axesInput: 18, fns: reduceFns{f: logSumExp}},
}

func init() {
	for name, op := range reductions {
		ops.Register(&ops.Op{Type: name, MinOpset: 1, Run: op.run, Infer: op.infer})
	}
}

func (op *reduceOp) accepts(dt ir.DType) bool {
	k := kindOf(dt)
	return k&kNumeric != 0 || (k == kBool && op.bools)
}

// axes reads the axes (attribute or input by opset), keepdims and
// noop_with_empty_axes. noop reports a reduction over no axes at all: each
// element is reduced alone (ReduceL1 gives |x|, ReduceSumSquare x², as ONNX's
// reference and ONNX Runtime do), which is not always the identity.
func (op *reduceOp) axes(c interface {
	Ints(string, []int64) []int64
	Int(string, int64) int64
}, opset int64, input func() ([]int64, bool)) (axes []int64, known, keep, noop bool) {
	keep = c.Int("keepdims", 1) != 0
	known = true
	if opset >= op.axesInput {
		axes, known = input()
	}
	if axes == nil && known {
		axes = c.Ints("axes", nil) // also tolerated where axes became an input
	}
	noop = known && len(axes) == 0 && c.Int("noop_with_empty_axes", 0) != 0
	return axes, known, keep, noop
}

// normAxes turns axes into a per-axis mask, or errors on duplicates and
// axes out of range. No axes means all axes, unless noop.
func normAxes(axes []int64, rank int, noop bool) ([]bool, error) {
	mask := make([]bool, rank)
	if noop {
		return mask, nil
	}
	if len(axes) == 0 {
		for i := range mask {
			mask[i] = true
		}
		return mask, nil
	}
	for _, a := range axes {
		ax, err := ops.NormAxis(a, rank)
		if err != nil {
			return nil, err
		}
		if mask[ax] {
			return nil, fmt.Errorf("axis %d repeated", a)
		}
		mask[ax] = true
	}
	return mask, nil
}

func (op *reduceOp) run(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	if err := inputs(c, in, 1, 2); err != nil {
		return nil, err
	}
	x := in[0]
	if len(in) > 1 && in[1] != nil && in[1].DType != ir.Int64 {
		return nil, c.Errorf("axes must be int64, got %s", in[1].DType)
	}
	if !op.accepts(x.DType) {
		return nil, c.Errorf("does not accept %s input", x.DType)
	}
	k := kindOf(x.DType)
	axes, _, keep, noop := op.axes(c, c.Opset, func() ([]int64, bool) {
		if len(in) < 2 || in[1] == nil {
			return nil, true
		}
		return in[1].I64(), true
	})
	mask, err := normAxes(axes, x.Rank(), noop)
	if err != nil {
		return nil, c.Errorf("%v", err)
	}
	p := &plan{in: x.Dims, kept: make([]int64, len(x.Dims)), n: 1, dt: x.DType}
	var dims []int64
	for ax, d := range x.Dims {
		if mask[ax] {
			p.kept[ax], p.n = 1, p.n*d
			if keep {
				dims = append(dims, 1)
			}
		} else {
			p.kept[ax] = d
			dims = append(dims, d)
		}
	}
	var out *ir.Tensor
	switch {
	case k == kSigned && op.fns.i != nil:
		out = store(x.DType, dims, op.fns.i(load[int64](x), p))
	case (k == kUnsigned || k == kBool) && op.fns.u != nil:
		out = store(x.DType, dims, op.fns.u(load[uint64](x), p))
	default:
		out = store(x.DType, dims, op.fns.f(load[float64](x), p))
	}
	return []*ir.Tensor{out}, nil
}

func (op *reduceOp) infer(c *ops.InferCtx) error {
	t, err := c.Input(0)
	if err != nil {
		return err
	}
	if len(c.In) > 1 && c.In[1] != nil && c.In[1].DType != ir.Int64 && c.In[1].DType != ir.Undefined {
		return c.Errorf("axes must be int64, got %s", c.In[1].DType)
	}
	if t.DType != ir.Undefined && !op.accepts(t.DType) {
		return c.Errorf("does not accept %s input", t.DType)
	}
	axes, known, keep, noop := op.axes(c, c.Opset, func() ([]int64, bool) {
		if len(c.In) < 2 || c.In[1] == nil {
			return nil, true
		}
		if len(c.Const) > 1 && c.Const[1] != nil && c.Const[1].DType != ir.Int64 {
			return nil, false
		}
		return c.InputInts(1)
	})
	if noop {
		c.Out[0] = t.Clone()
		foldValues(c, op.run)
		return nil
	}
	c.Out[0] = &ir.Type{DType: t.DType}
	if !t.HasShape {
		return nil
	}
	if !known { // axes computed at run time: the dims are unknown, the rank may not be
		rank := len(t.Shape)
		if !keep {
			// k axes, k > 0 known from the axes' shape, drop k dims.
			a := c.In[1]
			if !a.HasShape || len(a.Shape) != 1 || !a.Shape[0].Known() || a.Shape[0].Value == 0 {
				return nil
			}
			if rank -= int(a.Shape[0].Value); rank < 0 {
				return c.Errorf("%d axes for an input of rank %d", a.Shape[0].Value, len(t.Shape))
			}
		}
		s := make(ir.Shape, rank)
		for i := range s {
			s[i] = ir.Unknown()
			if d := t.Shape[i]; keep && d.Known() && d.Value == 1 {
				s[i] = d
			}
		}
		c.Out[0] = ir.TensorType(t.DType, s)
		return nil
	}
	mask, err := normAxes(axes, len(t.Shape), false)
	if err != nil {
		return c.Errorf("%v", err)
	}
	c.Out[0] = ir.TensorType(t.DType, reducedShape(t.Shape, mask, keep))
	foldValues(c, op.run)
	return nil
}

// reducedShape drops (or sets to 1, with keep) the masked dims; the others,
// symbolic ones included, stay.
func reducedShape(s ir.Shape, mask []bool, keep bool) ir.Shape {
	out := ir.Shape{}
	for i, d := range s {
		switch {
		case !mask[i]:
			out = append(out, d)
		case keep:
			out = append(out, ir.D(1))
		}
	}
	return out
}
