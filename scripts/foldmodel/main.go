// Command foldmodel writes an ONNX model with its constant subgraphs folded
// into initializers and its BatchNormalizations folded into the preceding
// convolutions (kiln's passes.FoldConstants, FoldBatchNorm and dead-code
// elimination; standard ONNX ops only), as ONNX Runtime's quantization
// pre-processing does before quantize_static. scripts/bench.sh runs it on
// onnx-light-cnns' ResNet-50 (weights computed by ConstantOfShape nodes,
// which `kiln quantize` would leave in float, and unfolded batch norms that
// would stay float layers between the quantized convs) before quantizing.
//
//	go run ./scripts/foldmodel IN.onnx OUT.onnx
package main

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/onnx"
	_ "github.com/kilnml/kiln/ops/all" // the reference kernels that evaluate the constants
	"github.com/kilnml/kiln/passes"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: foldmodel IN.onnx OUT.onnx")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "foldmodel:", err)
		os.Exit(1)
	}
}

func run(in, out string) error {
	m, err := onnx.Load(in)
	if err != nil {
		return err
	}
	// IR version 3 lists initializers as graph inputs (overridable, so not
	// constant): keep only the real inputs, as IR version 4 allows.
	m.Graph.Inputs = m.Graph.RealInputs()
	m.IRVersion = max(m.IRVersion, 4)
	total := 0
	for _, p := range []passes.Pass{{Name: "constant-folding", Run: passes.FoldConstants}, {Name: "fold-batchnorm", Run: passes.FoldBatchNorm}, {Name: "dead-code", Run: passes.EliminateDeadCode}} {
		n, err := p.Run(m, passes.Options{})
		if err != nil {
			return fmt.Errorf("%s: %s: %w", in, p.Name, err)
		}
		total += n
	}
	if err := standardConvs(m); err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	if err := m.Verify(); err != nil {
		return fmt.Errorf("%s: after folding: %w", in, err)
	}
	if err := onnx.Save(out, m); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "%s: %d rewrites (constants, batch norms, dead code)\n", out, total)
	return nil
}

// standardConvs turns the kiln.Conv layers FoldBatchNorm makes (a Conv
// with the batch norm as a member, no activation, no residual) back into
// ONNX Convs, so that ONNX Runtime reads the model.
func standardConvs(m *ir.Model) error {
	kilnOps := false
	for _, n := range m.Graph.Nodes {
		if n.Domain != "kiln" {
			continue
		}
		act, _ := n.AttrString("activation", "")
		if n.OpType != "Conv" || act != "" || len(n.Inputs) > 3 {
			kilnOps = true
			continue
		}
		n.Domain = ""
		n.Attrs = slices.DeleteFunc(n.Attrs, func(a *ir.Attribute) bool {
			return strings.HasPrefix(a.Name, "kiln_") || strings.HasPrefix(a.Name, "act")
		})
	}
	if kilnOps {
		return fmt.Errorf("folding left kiln-only layers")
	}
	m.Opsets = slices.DeleteFunc(m.Opsets, func(o ir.OpsetImport) bool { return o.Domain == "kiln" })
	return nil
}
