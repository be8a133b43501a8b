package smooth_test

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/kilnml/kiln/internal/ortrun"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/onnx"
	"github.com/kilnml/kiln/ops"
	_ "github.com/kilnml/kiln/ops/all"
	"github.com/kilnml/kiln/quant/calib"
	"github.com/kilnml/kiln/quant/qdq"
	"github.com/kilnml/kiln/quant/smooth"
)

func randT(rng *rand.Rand, scale float64, dims ...int64) *ir.Tensor {
	t := ir.NewTensor(ir.Float32, dims)
	for i := range t.Len() {
		t.SetFloat64At(i, scale*rng.NormFloat64())
	}
	return t
}

// lnModel: h = LayerNorm(x) with γ large on channels 3, 17, 29 (the
// outliers of real transformers live in γ); y1 = h·W1, y2 = h·W2; with
// residual, z = h + x too (then 1/s cannot go into γ).
func lnModel(residual bool) *ir.Model {
	rng := rand.New(rand.NewPCG(1, 2))
	g := &ir.Graph{Name: "ln"}
	g.Inputs = []*ir.ValueInfo{{Name: "x", Type: ir.TensorType(ir.Float32, ir.Shape{ir.D(2), ir.D(16), ir.D(32)})}}
	gamma := ir.NewTensor(ir.Float32, []int64{32})
	for j := range int64(32) {
		gamma.SetFloat64At(j, 1+0.1*rng.NormFloat64())
	}
	gamma.SetFloat64At(3, 40)
	gamma.SetFloat64At(17, -25)
	gamma.SetFloat64At(29, 60)
	gamma.Name = "gamma"
	beta := randT(rng, 0.1, 32)
	beta.Name = "beta"
	w1, w2 := randT(rng, 0.2, 32, 48), randT(rng, 0.2, 32, 16)
	w1.Name, w2.Name = "w1", "w2"
	g.Initializers = []*ir.Tensor{gamma, beta, w1, w2}
	g.Nodes = []*ir.Node{
		{Name: "ln", OpType: "LayerNormalization", Inputs: []string{"x", "gamma", "beta"}, Outputs: []string{"h"}},
		{Name: "fc1", OpType: "MatMul", Inputs: []string{"h", "w1"}, Outputs: []string{"y1"}},
		{Name: "fc2", OpType: "MatMul", Inputs: []string{"h", "w2"}, Outputs: []string{"y2"}},
	}
	g.Outputs = []*ir.ValueInfo{{Name: "y1"}, {Name: "y2"}}
	if residual {
		g.Nodes = append(g.Nodes, &ir.Node{Name: "res", OpType: "Add", Inputs: []string{"h", "x"}, Outputs: []string{"z"}})
		g.Outputs = append(g.Outputs, &ir.ValueInfo{Name: "z"})
	}
	return &ir.Model{IRVersion: 8, Opsets: []ir.OpsetImport{{Version: 17}}, Graph: g}
}

func batches(seed uint64, n int) []map[string]*ir.Tensor {
	rng := rand.New(rand.NewPCG(seed, 3))
	var out []map[string]*ir.Tensor
	for range n {
		out = append(out, map[string]*ir.Tensor{"x": randT(rng, 1, 2, 16, 32)})
	}
	return out
}

// int8Cosine fake-quantizes m (MinMax ranges, per-tensor int8 activations,
// per-channel weights) and returns the worst cosine of y1/y2 against ref.
func int8Cosine(t *testing.T, m, ref *ir.Model) float64 {
	t.Helper()
	sess, err := ops.NewSession(m)
	if err != nil {
		t.Fatal(err)
	}
	stats, err := calib.Collect(sess, &calib.SliceStream{Batches: batches(5, 4)}, calib.CollectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := calib.ComputeRanges(stats, calib.MinMax, calib.Params{})
	if err != nil {
		t.Fatal(err)
	}
	ranges := map[string]qdq.Range{}
	for _, r := range rs {
		ranges[r.Name] = qdq.Range{Amax: r.Amax, Min: r.Min, Max: r.Max}
	}
	q, err := qdq.Insert(m, qdq.Options{Flavor: qdq.TensorRT, Ranges: ranges, NoResidualAdds: true})
	if err != nil {
		t.Fatal(err)
	}
	worst := 1.0
	for _, in := range batches(9, 2) {
		want, err := ops.Run(ref, in)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ops.Run(q, in)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"y1", "y2"} {
			worst = math.Min(worst, cosine(got[name], want[name]))
		}
	}
	return worst
}

func cosine(a, b *ir.Tensor) float64 {
	var ab, aa, bb float64
	for i := range a.Len() {
		x, y := a.Float64At(i), b.Float64At(i)
		ab, aa, bb = ab+x*y, aa+x*x, bb+y*y
	}
	return ab / math.Sqrt(aa*bb)
}

func TestSmoothQuantImprovesINT8(t *testing.T) {
	for _, residual := range []bool{false, true} {
		ref := lnModel(residual)
		before := int8Cosine(t, ref, ref)
		m := ref.Clone()
		sites, err := smooth.Smooth(m, &calib.SliceStream{Batches: batches(5, 4)}, smooth.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if len(sites) != 1 || len(sites[0].Layers) != 2 {
			t.Fatalf("sites %+v", sites)
		}
		if folded := sites[0].Folded != ""; folded == residual {
			t.Errorf("residual=%v: folded into %q", residual, sites[0].Folded)
		}
		// Same function before quantization.
		for _, in := range batches(11, 1) {
			want, _ := ops.Run(ref, in)
			got, err := ops.Run(m, in)
			if err != nil {
				t.Fatal(err)
			}
			for name, w := range want {
				if c := cosine(got[name], w); c < 1-1e-9 {
					t.Errorf("residual=%v: smoothing changed %s (cosine %.12f)", residual, name, c)
				}
			}
		}
		after := int8Cosine(t, m, ref)
		t.Logf("residual=%v: INT8 cosine %.5f -> %.5f with SmoothQuant (max|x| %.3g -> %.3g)", residual, before, after, sites[0].MaxBefore, sites[0].MaxAfter)
		if !(after > before) || after < 0.999 {
			t.Errorf("residual=%v: INT8 cosine %.5f -> %.5f", residual, before, after)
		}
	}
}

func TestSmoothQuantAlpha(t *testing.T) {
	m := lnModel(false)
	act := map[string][]float64{"h": make([]float64, 32)}
	for j := range act["h"] {
		act["h"][j] = 1
	}
	act["h"][3] = 64
	if _, err := smooth.Apply(m.Clone(), act, smooth.Options{Alpha: 1.5}); err == nil {
		t.Error("alpha 1.5 accepted")
	}
	// α = 1: everything moves into the weights, every channel's max becomes
	// max|W_j|^0 ... i.e. s_j = max|X_j|, so max|X_j/s_j| = 1.
	sites, err := smooth.Apply(m, act, smooth.Options{Alpha: 1})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(sites[0].MaxAfter-1) > 1e-12 {
		t.Errorf("α=1: max after %g, want 1", sites[0].MaxAfter)
	}
	g := m.Graph.Initializer("gamma")
	if math.Abs(g.Float64At(3)-40.0/64) > 1e-5 {
		t.Errorf("γ_3 = %g, want 40/64", g.Float64At(3))
	}
}

// The smoothed, Q/DQ-annotated model is an ordinary ONNX file: ONNX
// Runtime runs its export (ORT flavour: uint8 activations, int8 weights)
// and agrees with kiln's reference executor.
func TestSmoothQuantQDQExportInORT(t *testing.T) {
	if dir, why := ortrun.Dir(); dir == "" {
		t.Skip(why)
	}
	m := lnModel(true)
	if _, err := smooth.Smooth(m, &calib.SliceStream{Batches: batches(5, 4)}, smooth.Options{}); err != nil {
		t.Fatal(err)
	}
	sess, err := ops.NewSession(m)
	if err != nil {
		t.Fatal(err)
	}
	stats, err := calib.Collect(sess, &calib.SliceStream{Batches: batches(5, 4)}, calib.CollectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := calib.ComputeRanges(stats, calib.MinMax, calib.Params{})
	if err != nil {
		t.Fatal(err)
	}
	ranges := map[string]qdq.Range{}
	for _, r := range rs {
		ranges[r.Name] = qdq.Range{Amax: r.Amax, Min: r.Min, Max: r.Max}
	}
	q, err := qdq.Insert(m, qdq.Options{Flavor: qdq.ORT, Ranges: ranges})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "smoothed.qdq.onnx")
	if err := onnx.Save(path, q); err != nil {
		t.Fatal(err)
	}
	in := batches(13, 1)[0]
	want, err := ops.Run(q, in)
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := ortrun.Run(path, []*ir.Tensor{in["x"]}, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"y1", "y2"} {
		if c := cosine(got[i], want[name]); c < 0.9999 {
			t.Errorf("%s: ORT vs kiln cosine %.6f", name, c)
		}
	}
}
