package passes_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kilnml/kiln/builder"
	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/onnx"
	"github.com/kilnml/kiln/ops"
	"github.com/kilnml/kiln/passes"
)

func sharedModels(t *testing.T) string {
	d, _ := filepath.Abs(filepath.Join("..", "..", "shared", "models"))
	if s := os.Getenv("KILN_SHARED"); s != "" {
		d = filepath.Join(s, "models")
	}
	if _, err := os.Stat(d); err != nil {
		t.Skipf("shared models not found at %s (set KILN_SHARED)", d)
	}
	return d
}

// modelCase: a shared model and what Optimize must do to it.
type modelCase struct {
	rel  string
	slow bool // skipped with -short
	qdq  bool // Q/DQ model: no FP32 engine check
	// want maps a prefix of kiln_member_ops ("Conv,BatchNormalization") to
	// the minimum number of fused nodes whose member op types start with it.
	want  map[string]int
	check func(t *testing.T, m *ir.Model)
}

var modelCases = []modelCase{
	{rel: "bench/simplecnn.fp32.onnx", want: map[string]int{"Conv,Relu": 2, "Gemm,Relu": 1},
		check: func(t *testing.T, m *ir.Model) {
			// The dynamic-batch flatten is a Reshape by a constant [0,-1].
			if got := opTypes(m); got != "kiln.Conv MaxPool kiln.Conv MaxPool Reshape kiln.Gemm Gemm" {
				t.Errorf("ops %s", got)
			}
			rs := findNode(m, "Reshape")
			if s := m.Graph.Initializer(rs.Inputs[1]); s == nil || fmt.Sprint(s.Int64s()) != "[0 -1]" {
				t.Errorf("reshape shape %v", s)
			}
		}},
	{rel: "mnist-8-zoo/model.onnx", want: map[string]int{"Conv,Add,Relu": 2, "MatMul,Add": 1}},
	{rel: "bench/mobilenetv2.fp32.onnx", want: map[string]int{"Conv,Clip": 35, "Conv,Add": 10},
		check: func(t *testing.T, m *ir.Model) {
			for _, n := range m.Graph.Nodes {
				if n.OpType == "BatchNormalization" || n.OpType == "Identity" || n.OpType == "Clip" || n.OpType == "Add" {
					t.Errorf("%s left: %s", n.OpType, n.Name)
				}
			}
		}},
	{rel: "bench/bert4.fp32.onnx", want: map[string]int{"MatMul,Add,Div,Erf,Add,Mul,Mul": 4, "MatMul,Add,Add": 8},
		check: func(t *testing.T, m *ir.Model) {
			for _, n := range m.Graph.Nodes {
				if n.OpType == "Identity" || n.OpType == "Erf" {
					t.Errorf("%s left: %s", n.OpType, n.Name)
				}
				if n.OpType == "Reshape" && m.Graph.Initializer(n.Inputs[1]) == nil {
					t.Errorf("reshape %s still has a computed shape", n.Name)
				}
			}
		}},
	{rel: "onnx-light-cnns/squeezenet/model.onnx", want: map[string]int{"Conv,Relu": 26}},
	{rel: "onnx-light-cnns/shufflenet/model.onnx", want: map[string]int{"Conv,BatchNormalization": 49, "Conv,BatchNormalization,Sum,Relu": 13}},
	{rel: "onnx-light-cnns/inception_v1/model.onnx", slow: true, want: map[string]int{"Conv,Relu": 57}},
	// ONNX Runtime's Q/DQ models: nothing to fuse around the Q/DQ pairs (the
	// builder's explicit quantization handles them), but the graph must
	// still compute the same.
	{rel: "bench/simplecnn.int8.qdq.onnx", qdq: true},
	{rel: "bench/mobilenetv2.int8.qdq.onnx", qdq: true},
	{rel: "onnx-light-cnns/resnet50/model.onnx", slow: true,
		want: map[string]int{"Conv,BatchNormalization,Relu": 33, "Conv,BatchNormalization,Sum,Relu": 16}},
}

// Optimize on every shared model: same outputs as the original, the
// expected fusions, no op kiln cannot run, and the builder's FP32 engine
// (which runs the pipeline) still matches the reference.
func TestSharedModels(t *testing.T) {
	dir := sharedModels(t)
	for _, mc := range modelCases {
		t.Run(mc.rel, func(t *testing.T) {
			if mc.slow && testing.Short() {
				t.Skip("slow model; skipped with -short")
			}
			path := filepath.Join(dir, mc.rel)
			if _, err := os.Stat(path); err != nil {
				t.Skipf("%s not found", path)
			}
			m, err := onnx.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			in := randomInputs(m, 1, 1)
			var fusions []string
			c := m.Clone()
			if err := passes.Optimize(c, passes.Options{Fusions: &fusions}); err != nil {
				t.Fatal(err)
			}
			want, err := ops.Run(m, in)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ops.Run(c, in)
			if err != nil {
				t.Fatal(err)
			}
			compareAll(t, "optimized graph", got, want)
			// the builder then folds 2×2/2 max pools into convs (after precision assignment)
			pooled := c.Clone()
			if _, err := passes.FusePools(pooled, passes.Options{Fusions: &fusions}); err != nil {
				t.Fatal(err)
			}
			if got, err = ops.Run(pooled, in); err != nil {
				t.Fatal(err)
			}
			compareAll(t, "graph with fused pools", got, want)
			counts := fusedCounts(c)
			for pattern, min := range mc.want {
				have := 0
				for ops, k := range counts {
					if strings.HasPrefix(ops+",", pattern+",") {
						have += k
					}
				}
				if have < min {
					t.Errorf("%d fused layers %s..., want at least %d (have %v)", have, pattern, min, counts)
				}
			}
			if mc.check != nil {
				mc.check(t, c)
			}
			t.Logf("%d nodes -> %d, %d fusions: %v", len(m.Graph.Nodes), len(c.Graph.Nodes), len(fusions), counts)
			if !mc.qdq {
				got, rep := engineOutputs(t, m, in)
				compareAll(t, "FP32 engine", got, want)
				if !slices.Equal(rep.Fusions, fusions) {
					t.Errorf("build report fusions %q, Optimize's and FusePools' %q", rep.Fusions, fusions)
				}
			}
		})
	}
}

// fusedCounts counts fused nodes by their member op types.
func fusedCounts(m *ir.Model) map[string]int {
	out := map[string]int{}
	for _, n := range m.Graph.Nodes {
		if ops := attrStrings(n, "kiln_member_ops"); strings.Contains(ops, ",") {
			out[ops]++
		}
	}
	return out
}

// engineOutputs builds the FP32 engine (the builder runs Optimize) and
// runs it.
func engineOutputs(t *testing.T, m *ir.Model, in map[string]*ir.Tensor) (map[string]*ir.Tensor, *builder.Report) {
	t.Helper()
	plan, rep, err := builder.Build(m, nil, builder.Config{Deterministic: true})
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	e, err := engine.NewEngine(plan)
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.NewContext().Run(in)
	if err != nil {
		t.Fatalf("engine: %v", err)
	}
	return got, rep
}

func compareAll(t *testing.T, what string, got, want map[string]*ir.Tensor) {
	t.Helper()
	for name, w := range want {
		if got[name] == nil {
			t.Errorf("%s: output %q missing", what, name)
		} else if err := closeTo(got[name], w, 1e-5); err != nil {
			t.Errorf("%s: output %q: %v", what, name, err)
		}
	}
}
