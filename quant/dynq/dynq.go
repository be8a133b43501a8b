// Package dynq rewrites MatMuls with constant weights into
// kiln.DynQMatMul: per-output-column symmetric INT8 weights quantized now,
// activations quantized per token (row) at run time, as ONNX Runtime's
// dynamic quantization does (there: uint8 per tensor). No calibration is
// needed, and a row with an outlier only coarsens its own scale, which is
// why it suits transformers (the per-token scheme of LLM.int8/ZeroQuant).
package dynq

import (
	"fmt"
	"math"

	"github.com/kilnml/kiln/ir"
)

// Options controls Rewrite.
type Options struct {
	// Skip lists node names left in float.
	Skip map[string]bool
	// Log receives one line per rewritten layer.
	Log func(format string, args ...any)
}

// Rewrite turns every MatMul and kiln.MatMul whose B is a constant float32
// [K, N] matrix into kiln.DynQMatMul (bias, residual and activation kept)
// and returns the names of the rewritten layers.
func Rewrite(m *ir.Model, opt Options) ([]string, error) {
	g := m.Graph
	inits := g.InitializerMap()
	users := map[string]int{}
	for _, n := range g.Nodes {
		for _, in := range n.Inputs {
			users[in]++
		}
	}
	var done []string
	for _, n := range g.Nodes {
		if n.OpType != "MatMul" || !(n.Domain == "" || n.Domain == "kiln") || opt.Skip[n.Name] || len(n.Inputs) < 2 {
			continue
		}
		w := inits[n.Inputs[1]]
		if w == nil || w.DType != ir.Float32 || w.Rank() != 2 {
			continue
		}
		K, N := w.Dims[0], w.Dims[1]
		codes := ir.NewTensor(ir.Int8, w.Dims)
		scales := make([]float32, N)
		for c := range N {
			amax := 0.0
			for k := range K {
				amax = math.Max(amax, math.Abs(w.Float64At(k*N+c)))
			}
			scales[c] = float32(amax / 127)
			if scales[c] == 0 {
				scales[c] = 1
			}
		}
		for k := range K {
			for c := range N {
				q := math.RoundToEven(w.Float64At(k*N+c) / float64(scales[c]))
				codes.SetInt64At(k*N+c, int64(max(-127, min(127, q))))
			}
		}
		codes.Name = unique(g, n.Inputs[1]+"_dynq")
		g.Initializers = append(g.Initializers, codes)
		n.Inputs[1] = codes.Name
		n.OpType, n.Domain = "DynQMatMul", "kiln"
		n.Attrs = append(n.Attrs, &ir.Attribute{Name: "w_scales", Type: ir.AttrFloats, Floats: scales})
		if len(n.Attrs) > 0 && n.Attr("kiln_members") == nil {
			n.Attrs = append(n.Attrs, &ir.Attribute{Name: "kiln_members", Type: ir.AttrStrings, Strings: [][]byte{[]byte(n.Name)}},
				&ir.Attribute{Name: "kiln_member_ops", Type: ir.AttrStrings, Strings: [][]byte{[]byte("MatMul")}})
		}
		done = append(done, n.Name)
		if opt.Log != nil {
			opt.Log("Dynamic INT8 %s: weights [%d, %d] per column, activations per token", n.Name, K, N)
		}
	}
	if len(done) > 0 && m.Opset("kiln") == 0 {
		m.Opsets = append(m.Opsets, ir.OpsetImport{Domain: "kiln", Version: 1})
	}
	// Float weights no other node reads are dropped.
	keep := g.Initializers[:0]
	used := map[string]bool{}
	for _, n := range g.Nodes {
		for _, in := range n.Inputs {
			used[in] = true
		}
	}
	for _, o := range g.Outputs {
		used[o.Name] = true
	}
	for _, t := range g.Initializers {
		if used[t.Name] || users[t.Name] == 0 {
			keep = append(keep, t)
		}
	}
	g.Initializers = keep
	return done, nil
}

func unique(g *ir.Graph, base string) string {
	used := map[string]bool{}
	for _, t := range g.Initializers {
		used[t.Name] = true
	}
	name := base
	for i := 1; used[name]; i++ {
		name = fmt.Sprintf("%s_%d", base, i)
	}
	return name
}
