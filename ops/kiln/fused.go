package kiln

import (
	"fmt"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

// The inner ONNX op of each fused op and the opset its attributes follow.
var inner = map[string]struct {
	op    string
	opset int64
	nIn   int // inputs of the inner op (the rest: residual)
}{
	"Conv":   {"Conv", 11, 3},
	"Gemm":   {"Gemm", 13, 3},
	"MatMul": {"MatMul", 13, 2},
}

func init() {
	for name := range inner {
		ops.Register(&ops.Op{Type: name, Domain: Domain, MinOpset: 1, MaxOpset: 1, Run: runFused, Infer: inferFused})
	}
}

// innerNode is the fused node seen as its ONNX op (without the residual and,
// for MatMul, without the bias).
func innerNode(n *ir.Node) (*ir.Node, int64, int) {
	spec := inner[n.OpType]
	in := *n
	in.OpType, in.Domain = spec.op, ""
	in.Inputs = n.Inputs[:min(len(n.Inputs), spec.nIn)]
	var attrs []*ir.Attribute
	for _, a := range n.Attrs {
		switch a.Name {
		case "activation", "act_alpha", "act_beta", "kiln_members", "kiln_member_ops", PoolAttr:
		default:
			attrs = append(attrs, a)
		}
	}
	in.Attrs = attrs
	return &in, spec.opset, spec.nIn
}

func runFused(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	act, err := ActivationOf(c.Node)
	if err != nil {
		return nil, err
	}
	pool, err := fusedPool(c.Node)
	if err != nil {
		return nil, err
	}
	n, opset, nIn := innerNode(c.Node)
	op, err := ops.Lookup("", n.OpType, opset)
	if err != nil {
		return nil, err
	}
	var bias, resid *ir.Tensor
	args := in[:min(len(in), nIn)]
	if c.Node.OpType == "MatMul" {
		if len(in) > 2 {
			bias = in[2]
		}
		if len(in) > 3 {
			resid = in[3]
		}
	} else if len(in) > 3 {
		resid = in[3]
	}
	ic := ops.NewCtx(n, opset)
	outs, err := op.Run(ic, args)
	if err == nil {
		err = ic.Err()
	}
	if err != nil {
		return nil, err
	}
	y := outs[0]
	if bias != nil {
		if bias.Rank() != 1 || y.Rank() == 0 || bias.Dims[0] != y.Dims[y.Rank()-1] {
			return nil, c.Errorf("bias %v does not match the last axis of %v", bias.Dims, y.Dims)
		}
	}
	if resid != nil && !sameDims(resid.Dims, y.Dims) {
		return nil, c.Errorf("residual %v does not match the output %v", resid.Dims, y.Dims)
	}
	out := ir.NewTensor(y.DType, y.Dims)
	n0 := y.Len()
	last := int64(1)
	if bias != nil {
		last = bias.Dims[0]
	}
	for i := int64(0); i < n0; i++ {
		v := y.Float64At(i)
		if bias != nil {
			v += bias.Float64At(i % last)
		}
		if resid != nil {
			v += resid.Float64At(i)
		}
		out.SetFloat64At(i, act.Apply(v))
	}
	if pool {
		if out, err = ApplyPool(c.Node, out); err != nil {
			return nil, err
		}
	}
	return []*ir.Tensor{out}, nil
}

// fusedPool reads the pool attribute, which only kiln.Conv takes.
func fusedPool(n *ir.Node) (bool, error) {
	pool, err := PoolOf(n)
	if err == nil && pool && n.OpType != "Conv" {
		err = fmt.Errorf("%s: only kiln.Conv takes a fused pool", n)
	}
	return pool, err
}

func inferFused(c *ops.InferCtx) error {
	if _, err := ActivationOf(c.Node); err != nil {
		return err
	}
	pool, err := fusedPool(c.Node)
	if err != nil {
		return err
	}
	n, opset, nIn := innerNode(c.Node)
	op, err := ops.Lookup("", n.OpType, opset)
	if err != nil {
		return err
	}
	k := min(len(c.In), nIn)
	ic := ops.NewInferCtx(n, opset, c.In[:k], c.Const[:k], c.Value[:k])
	if err := op.Infer(ic); err != nil {
		return err
	}
	if err := ic.Err(); err != nil {
		return err
	}
	c.Out[0] = ic.Out[0]
	if pool {
		t, err := InferPool(c.Node, ic.Out[0])
		if err != nil {
			return err
		}
		c.Out[0] = t
	}
	return nil
}

func sameDims(a, b []int64) bool {
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
