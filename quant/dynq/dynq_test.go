package dynq_test

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/onnx"
	"github.com/kilnml/kiln/ops"
	_ "github.com/kilnml/kiln/ops/all"
	"github.com/kilnml/kiln/quant/dynq"
)

func cosine(a, b *ir.Tensor) float64 {
	var ab, aa, bb float64
	for i := range a.Len() {
		x, y := a.Float64At(i), b.Float64At(i)
		ab, aa, bb = ab+x*y, aa+x*x, bb+y*y
	}
	return ab / math.Sqrt(aa*bb)
}

func randT(r *rand.Rand, dims ...int64) *ir.Tensor {
	t := ir.NewTensor(ir.Float32, dims)
	for i := range t.F32() {
		t.F32()[i] = float32(r.NormFloat64())
	}
	return t
}

// A token with a large outlier keeps the other tokens' precision: per-token
// scales vs one per-tensor scale.
func TestDynQMatMulPerToken(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	w := randT(r, 64, 32)
	w.Name = "w"
	bias := randT(r, 32)
	bias.Name = "b"
	m := &ir.Model{IRVersion: 8, Opsets: []ir.OpsetImport{{Version: 17}, {Domain: "kiln", Version: 1}}, Graph: &ir.Graph{Name: "g",
		Inputs:       []*ir.ValueInfo{{Name: "x", Type: ir.TensorType(ir.Float32, ir.Shape{ir.D(8), ir.D(64)})}},
		Initializers: []*ir.Tensor{w, bias},
		Nodes: []*ir.Node{{Name: "fc", OpType: "MatMul", Domain: "kiln", Inputs: []string{"x", "w", "b"}, Outputs: []string{"y"},
			Attrs: []*ir.Attribute{{Name: "activation", Type: ir.AttrString, S: []byte("Relu")}}}},
		Outputs: []*ir.ValueInfo{{Name: "y"}}}}
	q := m.Clone()
	done, err := dynq.Rewrite(q, dynq.Options{})
	if err != nil || len(done) != 1 || q.Graph.Nodes[0].OpType != "DynQMatMul" {
		t.Fatalf("rewrite %v %v", done, err)
	}
	x := randT(r, 8, 64)
	x.F32()[3*64+5] = 500 // row 3 only
	want, err := ops.Run(m, map[string]*ir.Tensor{"x": x})
	if err != nil {
		t.Fatal(err)
	}
	got, err := ops.Run(q, map[string]*ir.Tensor{"x": x})
	if err != nil {
		t.Fatal(err)
	}
	for row := range int64(8) {
		g := ir.FromFloat32s([]int64{32}, got["y"].F32()[row*32:(row+1)*32])
		wnt := ir.FromFloat32s([]int64{32}, want["y"].F32()[row*32:(row+1)*32])
		if c := cosine(g, wnt); c < 0.999 {
			t.Errorf("row %d: cosine %.5f", row, c)
		}
	}
}

// bert4 with every MatMul dynamically quantized stays within cosine 0.99 of
// FP32, also with outlier channels.
func TestDynQBert4(t *testing.T) {
	if testing.Short() {
		t.Skip("bert4 reference runs")
	}
	dir := os.Getenv("KILN_SHARED")
	if dir == "" {
		dir, _ = filepath.Abs(filepath.Join("..", "..", "..", "shared"))
	}
	m, err := onnx.Load(filepath.Join(dir, "models", "bench", "bert4.fp32.onnx"))
	if err != nil {
		t.Skipf("bert4 not available: %v", err)
	}
	q := m.Clone()
	done, err := dynq.Rewrite(q, dynq.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(done) != 24 {
		t.Errorf("%d layers rewritten, want 24 (6 per encoder layer)", len(done))
	}
	r := rand.New(rand.NewPCG(3, 3))
	for _, outliers := range []bool{false, true} {
		x := randT(r, 1, 128, 256)
		if outliers {
			for i := range x.F32() {
				switch i % 256 {
				case 7:
					x.F32()[i] *= 20
				case 201:
					x.F32()[i] *= 50
				}
			}
		}
		want, err := ops.Run(m, map[string]*ir.Tensor{"input": x})
		if err != nil {
			t.Fatal(err)
		}
		got, err := ops.Run(q, map[string]*ir.Tensor{"input": x})
		if err != nil {
			t.Fatal(err)
		}
		c := cosine(got["output"], want["output"])
		t.Logf("outliers=%v: dynamic INT8 cosine %.6f", outliers, c)
		if c < 0.99 {
			t.Errorf("outliers=%v: cosine %.5f", outliers, c)
		}
	}
}
