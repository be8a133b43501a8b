package passes

import (
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

// MaxFoldElements bounds folding: a node whose inputs or outputs hold more
// elements than this stays a node (folding would bloat the plan).
const MaxFoldElements = 1 << 24

// FoldConstants replaces every node whose outputs are known at build time
// with initializers: nodes whose inputs are all constant (evaluated with
// their reference kernel by inference), and integer nodes whose symbolic
// value is fully known (Shape of a static tensor, Gather of it, ...).
// Random ops are never folded.
func FoldConstants(m *ir.Model, opt Options) (int, error) {
	r := newRewriter(m, opt)
	inf := r.infer(MaxFoldElements)
	var folded []*ir.Node
	for _, n := range r.g.Nodes {
		if !deterministic(n) || len(subgraphRefs(n)) > 0 || keepsQuantization(n) {
			continue
		}
		var outs []*ir.Tensor
		ok := true
		for _, o := range n.Outputs {
			if o == "" {
				continue
			}
			t := inf.Consts[o]
			if t == nil {
				t = knownValue(inf, o)
			}
			if t == nil || t.Len() > MaxFoldElements || t.Check() != nil {
				ok = false
				break
			}
			c := *t
			c.Name = o
			outs = append(outs, &c)
		}
		if !ok || len(outs) == 0 {
			continue
		}
		folded = append(folded, n)
		r.g.Initializers = append(r.g.Initializers, outs...)
	}
	if len(folded) == 0 {
		return 0, nil
	}
	r.removeNodes(folded...)
	r.logf("Constant folding: %d nodes", len(folded))
	return len(folded), nil
}

// keepsQuantization leaves QuantizeLinear/DequantizeLinear nodes alone even
// on constants: DequantizeLinear(int8 weights) is how a Q/DQ model carries
// its quantized weights, and the builder's explicit-quantization step needs
// to see it (it folds what it does not use itself).
func keepsQuantization(n *ir.Node) bool {
	return n.Domain == "" && (n.OpType == "QuantizeLinear" || n.OpType == "DequantizeLinear")
}

// deterministic excludes ops whose output must not be precomputed.
func deterministic(n *ir.Node) bool {
	switch n.OpType {
	case "RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli":
		return false
	case "Dropout": // training mode draws random masks
		return len(n.Inputs) < 3 || n.Inputs[2] == ""
	}
	return true
}

// knownValue turns a fully known symbolic value (an integer tensor of rank
// 0 or 1 whose every element inference knows) into a tensor.
func knownValue(inf *ops.Inference, name string) *ir.Tensor {
	v, ok := inf.Values[name]
	t := inf.Types[name]
	if !ok || t == nil || t.Kind != ir.KindTensor || !t.HasShape || !t.DType.IsInteger() || len(t.Shape) > 1 {
		return nil
	}
	dims, ok := t.Shape.Concrete()
	if !ok {
		return nil
	}
	ints, ok := ops.ValueInts(v)
	n, err := ir.NumElements(dims)
	if !ok || err != nil || n != int64(len(ints)) {
		return nil
	}
	return ir.FromInt64s(t.DType, dims, ints)
}
