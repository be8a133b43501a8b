// Package kiln registers the reference kernels of kiln's fused ops (domain
// "kiln"): kiln.Conv, kiln.Gemm and kiln.MatMul, an ONNX compute op with its
// bias, residual add and activation folded in (see docs/ENGINE.md). A graph
// rewritten by the fusion passes still runs in ops.Run through these, which
// is how every pass is tested.
package kiln

import (
	"fmt"
	"math"

	"github.com/kilnml/kiln/ir"
)

// Domain is the ONNX domain of kiln's own ops.
const Domain = "kiln"

// Activation is the epilogue activation of a fused op. The same struct (and
// Apply) is used by every backend's epilogue, so their semantics match.
type Activation struct {
	Kind        string // "", Relu, Clip, LeakyRelu, Sigmoid, Tanh, Gelu, GeluTanh, HardSwish, HardSigmoid
	Alpha, Beta float32
}

// ActivationOf reads the activation attributes of a fused node.
func ActivationOf(n *ir.Node) (Activation, error) {
	kind, err := n.AttrString("activation", "")
	if err != nil {
		return Activation{}, err
	}
	a := Activation{Kind: kind}
	switch kind {
	case "", "Relu", "Sigmoid", "Tanh", "Gelu", "GeluTanh", "HardSwish":
	case "LeakyRelu":
		a.Alpha = 0.01
	case "Clip":
		a.Alpha, a.Beta = float32(math.Inf(-1)), float32(math.Inf(1))
	case "HardSigmoid":
		a.Alpha, a.Beta = 0.2, 0.5
	default:
		return a, fmt.Errorf("%s: unknown activation %q", n, kind)
	}
	if at := n.Attr("act_alpha"); at != nil {
		a.Alpha = at.F
	}
	if at := n.Attr("act_beta"); at != nil {
		a.Beta = at.F
	}
	return a, nil
}

// Attrs returns the node attributes that encode a.
func (a Activation) Attrs() []*ir.Attribute {
	if a.Kind == "" {
		return nil
	}
	return []*ir.Attribute{
		{Name: "activation", Type: ir.AttrString, S: []byte(a.Kind)},
		{Name: "act_alpha", Type: ir.AttrFloat, F: a.Alpha},
		{Name: "act_beta", Type: ir.AttrFloat, F: a.Beta},
	}
}

// Apply evaluates the activation in float64 (the reference's precision).
func (a Activation) Apply(x float64) float64 {
	switch a.Kind {
	case "Relu":
		return math.Max(x, 0)
	case "Clip":
		return math.Min(math.Max(x, float64(a.Alpha)), float64(a.Beta))
	case "LeakyRelu":
		if x < 0 {
			return x * float64(a.Alpha)
		}
		return x
	case "Sigmoid":
		return 1 / (1 + math.Exp(-x))
	case "Tanh":
		return math.Tanh(x)
	case "Gelu":
		return 0.5 * x * (1 + math.Erf(x/math.Sqrt2))
	case "GeluTanh":
		return 0.5 * x * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(x+0.044715*x*x*x)))
	case "HardSwish":
		return x * math.Max(0, math.Min(1, x/6+0.5))
	case "HardSigmoid":
		return math.Max(0, math.Min(1, float64(a.Alpha)*x+float64(a.Beta)))
	}
	return x
}
