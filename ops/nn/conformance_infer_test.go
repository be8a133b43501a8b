package nn_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/onnx"
	"github.com/kilnml/kiln/ops"
	_ "github.com/kilnml/kiln/ops/all"
)

// nnOps are the ops this package registers.
var nnOps = map[string]bool{}

func init() {
	for _, op := range strings.Fields(`Conv ConvTranspose Gemm MatMul MaxPool AveragePool LpPool GlobalAveragePool
		GlobalMaxPool GlobalLpPool MaxUnpool BatchNormalization LayerNormalization InstanceNormalization
		GroupNormalization RMSNormalization LRN MeanVarianceNormalization Resize Upsample Einsum Attention
		RotaryEmbedding`) {
		nnOps[op] = true
	}
}

// TestInferOnConformanceData checks shape inference against the ONNX node
// conformance cases made of this package's ops: with small integer inputs
// (sizes, shapes) turned into initializers as exporters write them, every
// graph output's inferred type must match the expected output. A second
// pass makes the first dim of every float input a symbol "N": inference
// must still succeed, never contradict the data, and keep "N" as the first
// dim of every output whose first dim is the batch.
func TestInferOnConformanceData(t *testing.T) {
	root := filepath.Join("..", "..", "..", "shared", "onnx-node")
	if d := os.Getenv("KILN_SHARED"); d != "" {
		root = filepath.Join(d, "onnx-node")
	}
	dirs, err := filepath.Glob(filepath.Join(root, "test_*"))
	if err != nil || len(dirs) == 0 {
		t.Skipf("conformance data not found under %s", root)
	}
	checked := 0
	for _, dir := range dirs {
		m, err := onnx.Load(filepath.Join(dir, "model.onnx"))
		if err != nil || len(m.Graph.Nodes) != 1 || !nnOps[m.Graph.Nodes[0].OpType] || m.Graph.Nodes[0].Domain != "" {
			continue
		}
		name := filepath.Base(dir)
		t.Run(name, func(t *testing.T) { checkInfer(t, m, filepath.Join(dir, "test_data_set_0")) })
		checked++
	}
	if checked < 150 {
		t.Errorf("only %d conformance cases checked", checked)
	}
}

func checkInfer(t *testing.T, m *ir.Model, set string) {
	for i, in := range m.Graph.RealInputs() {
		x, err := onnx.ReadTensorFile(filepath.Join(set, fmt.Sprintf("input_%d.pb", i)))
		if err != nil {
			t.Fatal(err)
		}
		// parameters (sizes, scales, roi, small weights) are constants in exported models
		if i > 0 && x.Rank() <= 1 && x.Len() <= 8 {
			x.Name = in.Name
			m.Graph.Initializers = append(m.Graph.Initializers, x)
		} else {
			in.Type = x.Type()
		}
	}
	wants := make([]*ir.Tensor, len(m.Graph.Outputs))
	for i := range m.Graph.Outputs {
		w, err := onnx.ReadTensorFile(filepath.Join(set, fmt.Sprintf("output_%d.pb", i)))
		if err != nil {
			t.Fatal(err)
		}
		wants[i] = w
	}
	inf, err := ops.Infer(m, ops.InferOptions{})
	if err != nil {
		t.Fatalf("inference: %v", err)
	}
	for i, o := range m.Graph.Outputs {
		got, want := inf.Types[o.Name], wants[i]
		if got == nil || got.DType != want.DType || !got.HasShape || !got.Shape.Equal(ir.ShapeOf(want.Dims)) {
			t.Fatalf("output %q: inferred %s, data is %s%v", o.Name, got, want.DType, want.Dims)
		}
	}
	// symbolic pass
	n := m.Graph.Nodes[0]
	var firstIn ir.Dim
	for _, in := range m.Graph.Inputs {
		if in.Name == n.Inputs[0] && in.Type != nil && in.Type.HasShape && len(in.Type.Shape) > 0 && in.Type.DType.IsFloat() {
			firstIn = in.Type.Shape[0]
			in.Type.Shape[0] = ir.Sym("N")
		}
	}
	if firstIn == (ir.Dim{}) {
		return
	}
	inf, err = ops.Infer(m, ops.InferOptions{})
	if err != nil {
		t.Fatalf("symbolic inference: %v", err)
	}
	for i, o := range m.Graph.Outputs {
		got := inf.Types[o.Name]
		if got == nil || !got.HasShape || len(got.Shape) != wants[i].Rank() {
			t.Fatalf("symbolic: output %q: inferred %s, data is %v", o.Name, got, wants[i].Dims)
		}
		for k, d := range got.Shape {
			if d.Known() && d.Value != wants[i].Dims[k] {
				t.Fatalf("symbolic: output %q: inferred %s, data is %v", o.Name, got, wants[i].Dims)
			}
		}
		// ops that keep the batch axis first must keep its symbol
		batchFirst := map[string]bool{"Conv": true, "ConvTranspose": true, "MaxPool": true, "AveragePool": true,
			"GlobalAveragePool": true, "LpPool": true, "BatchNormalization": i == 0, "InstanceNormalization": true,
			"LayerNormalization": i == 0, "GroupNormalization": true, "RMSNormalization": true, "LRN": true,
			"Resize": len(n.Inputs) < 4 || n.Inputs[3] == "", "Attention": i < 3, "RotaryEmbedding": true, "MaxUnpool": len(n.Inputs) < 3}
		if batchFirst[n.OpType] && wants[i].Rank() > 0 && got.Shape[0] != ir.Sym("N") {
			t.Fatalf("symbolic: output %q: inferred %s, want N first", o.Name, got)
		}
	}
}
