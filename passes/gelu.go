package passes

import (
	"slices"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops/kiln"
)

// FuseGelu rewrites the GELUs that FuseLayers could not put into a
// Conv/Gemm/MatMul epilogue (their input comes from another op, or is read
// elsewhere too) from their expanded forms — 0.5·x·(1+Erf(x/√2)) and
// 0.5·x·(1+Tanh(√(2/π)·(x+0.044715·x³))), in the orders exporters write
// them — into one kiln.Gelu. It runs after FuseLayers.
func FuseGelu(m *ir.Model, opt Options) (int, error) {
	r := newRewriter(m, opt)
	r.infer(0)
	var values []string
	for _, in := range r.g.Inputs {
		values = append(values, in.Name)
	}
	for _, n := range r.g.Nodes {
		values = append(values, n.Outputs...)
	}
	fused := 0
	for _, x := range values {
		if x == "" || len(r.cons[x]) == 0 {
			continue
		}
		if t := r.typeOf(x); t == nil || t.DType != ir.Float32 {
			continue
		}
		a, root, nodes, ok := r.expandedActivation(x)
		if !ok || (a.Kind != "Gelu" && a.Kind != "GeluTanh") {
			continue
		}
		approx := "none"
		if a.Kind == "GeluTanh" {
			approx = "tanh"
		}
		g := &ir.Node{OpType: "Gelu", Domain: kiln.Domain, Inputs: []string{x}, Outputs: []string{root.Outputs[0]},
			Attrs: []*ir.Attribute{{Name: "approximate", Type: ir.AttrString, S: []byte(approx)}}}
		if !slices.Contains(nodes, root) {
			nodes = append(nodes, root)
		}
		r.replaceBy(g, nodes...)
		r.reindex()
		fused++
	}
	return fused, nil
}
