package layout_test

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/onnx"
	"github.com/kilnml/kiln/ops"
	_ "github.com/kilnml/kiln/ops/all"
)

// layoutOps are the ops this package registers; conformance cases that use
// any of them are checked here.
var layoutOps = map[string]bool{}

func init() {
	for _, op := range strings.Fields(`Reshape Flatten Squeeze Unsqueeze Identity Dropout Shape Size Constant
		ConstantOfShape EyeLike Range Transpose Concat Split Slice Gather GatherElements GatherND Scatter
		ScatterElements ScatterND Pad Expand Tile OneHot NonZero Compress Trilu ReverseSequence DepthToSpace
		SpaceToDepth TopK Unique CumSum`) {
		layoutOps[op] = true
	}
}

// TestInferOnConformanceData checks shape inference against the ONNX node
// conformance cases that use layout ops: small int64 inputs (shapes, axes,
// pads, indices...) become initializers, as exporters write them, and the
// inferred type of every graph output must be complete and match the
// expected output's dtype and dims. A second pass renames the first dim of
// every float input to a symbol and checks that inference still succeeds
// and never contradicts the data.
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
		if err != nil {
			continue // the loader's own tests cover load failures
		}
		uses := false
		for _, n := range m.Graph.Nodes {
			uses = uses || (n.Domain == "" && layoutOps[n.OpType])
		}
		if !uses || ops.CheckSupported(m) != nil || !allTensors(m) {
			continue
		}
		name := filepath.Base(dir)
		t.Run(name, func(t *testing.T) {
			checkInfer(t, m, filepath.Join(dir, "test_data_set_0"))
		})
		checked++
	}
	if checked < 50 {
		t.Errorf("only %d conformance cases checked", checked)
	}
}

func allTensors(m *ir.Model) bool {
	for _, vs := range [][]*ir.ValueInfo{m.Graph.Inputs, m.Graph.Outputs} {
		for _, v := range vs {
			if v.Type != nil && v.Type.Kind != ir.KindTensor {
				return false
			}
		}
	}
	return true
}

func checkInfer(t *testing.T, m *ir.Model, set string) {
	// Input files follow the graph inputs that have no initializer.
	real := m.Graph.RealInputs()
	dataInput := map[string]bool{} // inputs read as input 0 of some node: data, not parameters
	for _, n := range m.Graph.Nodes {
		if len(n.Inputs) > 0 && n.OpType != "ConstantOfShape" {
			dataInput[n.Inputs[0]] = true
		}
	}
	for i, in := range real {
		x, err := onnx.ReadTensorFile(filepath.Join(set, fmt.Sprintf("input_%d.pb", i)))
		if err != nil {
			t.Fatal(err)
		}
		if x.DType == ir.Int64 && x.Rank() <= 1 && x.Len() <= 64 && !dataInput[in.Name] {
			x.Name = in.Name
			m.Graph.Initializers = append(m.Graph.Initializers, x)
		} else {
			in.Type = x.Type() // declared types may be looser than the data
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
		if c := inf.Consts[o.Name]; c != nil {
			continue // folded: the kernel ran, the runner checks values
		}
		if got == nil || got.DType != want.DType || !got.HasShape || len(got.Shape) != want.Rank() {
			t.Fatalf("output %q: inferred %s, data is %s%v", o.Name, got, want.DType, want.Dims)
		}
		dataDependent := false
		for _, n := range m.Graph.Nodes {
			switch n.OpType {
			case "NonZero", "Unique", "Compress":
				dataDependent = true
			}
		}
		for k, d := range got.Shape {
			if (d.Known() && d.Value != want.Dims[k]) || (!d.Known() && !dataDependent) {
				t.Fatalf("output %q: inferred %s, data is %s%v", o.Name, got, want.DType, want.Dims)
			}
		}
	}

	// Symbolic pass: the first dim of each float input becomes "N".
	for _, in := range m.Graph.Inputs {
		if in.Type != nil && in.Type.HasShape && len(in.Type.Shape) > 0 && in.Type.DType.IsFloat() {
			in.Type.Shape[0] = ir.Sym("N")
		}
	}
	inf, err = ops.Infer(m, ops.InferOptions{})
	if err != nil {
		// An op may legitimately need a concrete dim (e.g. to check a
		// product); it must not claim a contradiction, only stay unknown.
		if strings.Contains(err.Error(), "declared") {
			t.Fatalf("symbolic inference: %v", err)
		}
		t.Logf("symbolic inference: %v", err)
		return
	}
	var syms []string
	for i, o := range m.Graph.Outputs {
		got := inf.Types[o.Name]
		if got == nil || !got.HasShape {
			continue
		}
		if len(got.Shape) != wants[i].Rank() {
			t.Fatalf("symbolic: output %q: inferred %s, data is %v", o.Name, got, wants[i].Dims)
		}
		for k, d := range got.Shape {
			if d.Known() && d.Value != wants[i].Dims[k] {
				t.Fatalf("symbolic: output %q: inferred %s, data is %v", o.Name, got, wants[i].Dims)
			}
			if d.Param != "" {
				syms = append(syms, d.Param)
			}
		}
	}
	sort.Strings(syms)
	t.Logf("symbolic outputs keep %v", syms)
}

// PyTorch exports with a dynamic batch (shared/models/bench) are full of
// Shape→Gather→Concat→Reshape chains: inference must keep "batch" to the
// outputs and leave no dimension of a layout op's output unknown.
func TestInferKeepsBatchOnExportedModels(t *testing.T) {
	root := filepath.Join("..", "..", "..", "shared", "models", "bench")
	if d := os.Getenv("KILN_SHARED"); d != "" {
		root = filepath.Join(d, "models", "bench")
	}
	files, _ := filepath.Glob(filepath.Join(root, "*.onnx"))
	if len(files) == 0 {
		t.Skipf("no models under %s", root)
	}
	for _, f := range files {
		m, err := onnx.Load(f)
		if err != nil {
			t.Fatal(err)
		}
		inf, err := ops.Infer(m, ops.InferOptions{})
		if err != nil {
			t.Fatalf("%s: %v", filepath.Base(f), err)
		}
		for _, o := range m.Graph.Outputs {
			if ty := inf.Types[o.Name]; ty == nil || !ty.HasShape || len(ty.Shape) == 0 || ty.Shape[0] != ir.Sym("batch") {
				t.Errorf("%s: output %q inferred %s, want a leading batch", filepath.Base(f), o.Name, ty)
			}
		}
		for _, n := range m.Graph.Nodes {
			if !layoutOps[n.OpType] {
				continue
			}
			for _, o := range n.Outputs {
				ty := inf.Types[o]
				if o == "" {
					continue
				}
				if ty == nil || !ty.HasShape {
					t.Errorf("%s: %s: output %q has no inferred shape", filepath.Base(f), n, o)
					continue
				}
				for _, d := range ty.Shape {
					if !d.Known() && d.Param == "" {
						t.Errorf("%s: %s: output %q inferred %s", filepath.Base(f), n, o, ty)
						break
					}
				}
			}
		}
	}
}
