package arith

import (
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

// variadicOp folds one binary function over 1..N broadcasting inputs.
type variadicOp struct {
	f    binFns
	mean bool // divide the sum by the number of inputs
}

var variadics = map[string]*variadicOp{
	"Max":  {f: typed(maxOf[float64], maxOf[int64], maxOf[uint64])},
	"Min":  {f: typed(minOf[float64], minOf[int64], minOf[uint64])},
	"Sum":  {f: typed(add[float64], add[int64], add[uint64])},
	"Mean": {f: typed(add[float64], add[int64], add[uint64]), mean: true},
}

func init() {
	for name, op := range variadics {
		ops.Register(&ops.Op{Type: name, MinOpset: 7, Run: op.run, Infer: inferVariadic})
	}
}

func (op *variadicOp) run(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	if len(in) == 0 {
		return nil, c.Errorf("needs at least one input")
	}
	for i, t := range in {
		if t == nil {
			return nil, c.Errorf("input %d is missing", i)
		}
		if t.DType != in[0].DType {
			return nil, c.Errorf("input %d is %s but input 0 is %s", i, t.DType, in[0].DType)
		}
	}
	var (
		out *ir.Tensor
		err error
	)
	switch dt := in[0].DType; kindOf(dt) {
	case kFloat:
		out, err = foldInputs(c, in, op.f.f, op.mean)
	case kSigned:
		out, err = foldInputs(c, in, op.f.i, op.mean)
	case kUnsigned:
		out, err = foldInputs(c, in, op.f.u, op.mean)
	default:
		return nil, c.Errorf("does not accept %s inputs", dt)
	}
	if err != nil {
		return nil, err
	}
	return []*ir.Tensor{out}, nil
}

func foldInputs[T num](c *ops.Ctx, in []*ir.Tensor, f func(a, b T) T, mean bool) (*ir.Tensor, error) {
	acc, dims := load[T](in[0]), in[0].Dims
	for _, t := range in[1:] {
		nd, err := broadcast(c, dims, t.Dims)
		if err != nil {
			return nil, err
		}
		acc, dims = zip(acc, load[T](t), dims, t.Dims, nd, f), nd
	}
	if mean {
		n := T(len(in))
		for i := range acc {
			acc[i] /= n
		}
	}
	return store(in[0].DType, dims, acc), nil
}

func inferVariadic(c *ops.InferCtx) error {
	idx := make([]int, len(c.In))
	for i := range idx {
		idx[i] = i
	}
	if len(idx) == 0 {
		return c.Errorf("needs at least one input")
	}
	if err := c.CheckSameDType(idx...); err != nil {
		return err
	}
	if err := ops.BroadcastInfer(ir.Undefined, idx...)(c); err != nil {
		return err
	}
	if op := variadics[c.Node.OpType]; op != nil && !op.mean {
		inferValues(c, c.Node.OpType, exactInt(op.f, false), idx...)
	}
	return nil
}
