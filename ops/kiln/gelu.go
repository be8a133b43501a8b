package kiln

import (
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

// kiln.Gelu(X): GELU where no layer can take it as an epilogue, from its
// expanded forms; attribute approximate "none" (0.5·x·(1+erf(x/√2))) or
// "tanh" (0.5·x·(1+tanh(√(2/π)·(x+0.044715·x³)))), as ONNX Gelu-20, so
// that models of older opsets can use it.
func init() {
	ops.Register(&ops.Op{Type: "Gelu", Domain: Domain, MinOpset: 1, MaxOpset: 1, Run: gelu, Infer: ops.SameAsInput(0)})
}

// GeluActivation reads a kiln.Gelu node's approximation.
func GeluActivation(n *ir.Node) (Activation, error) {
	approx, err := n.AttrString("approximate", "none")
	if err != nil {
		return Activation{}, err
	}
	switch approx {
	case "none":
		return Activation{Kind: "Gelu"}, nil
	case "tanh":
		return Activation{Kind: "GeluTanh"}, nil
	}
	return Activation{}, errorf(n, "approximate %q (want none or tanh)", approx)
}

func gelu(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	if len(in) < 1 || in[0] == nil || !in[0].DType.IsFloat() {
		return nil, c.Errorf("needs a floating-point X")
	}
	a, err := GeluActivation(c.Node)
	if err != nil {
		return nil, err
	}
	x := in[0]
	out := ir.NewTensor(x.DType, x.Dims)
	for i := range x.Len() {
		out.SetFloat64At(i, a.Apply(x.Float64At(i)))
	}
	return []*ir.Tensor{out}, nil
}
