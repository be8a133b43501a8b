package builder

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
	"github.com/kilnml/kiln/quant/calib"
)

// smoothFP32Tol bounds |smoothed − plain| / max|plain| of FP32 outputs:
// smoothing rescales weights and activations by s and 1/s, which changes
// float32 rounding but not the function.
const smoothFP32Tol = 2e-6

// smoothBlockModel is a small transformer block whose hidden channels 3,
// 17 and 29 carry outliers through LayerNorm's γ (where real transformers
// keep them): h = LN1(x); y = h + fc2(relu(fc1(h))) (h has a residual
// reader, so its smoothing needs a Mul); out = fc3(LN2(y)) (LN2's only
// reader is fc3, so 1/s folds into its γ/β).
func smoothBlockModel() *ir.Model {
	rng := rand.New(rand.NewPCG(4, 5))
	const d, f = 32, 64
	mk := func(name string, scale float64, dims ...int64) *ir.Tensor {
		t := ir.NewTensor(ir.Float32, dims)
		for i := range t.Len() {
			t.SetFloat64At(i, scale*rng.NormFloat64())
		}
		t.Name = name
		return t
	}
	g1, g2 := mk("g1", 0.1, d), mk("g2", 0.1, d)
	for j := range int64(d) {
		g1.SetFloat64At(j, 1+g1.Float64At(j))
		g2.SetFloat64At(j, 1+g2.Float64At(j))
	}
	for j, v := range map[int64]float64{3: 40, 17: -25, 29: 60} {
		g1.SetFloat64At(j, v)
		g2.SetFloat64At(j, v/2)
	}
	g := &ir.Graph{Name: "block"}
	g.Inputs = []*ir.ValueInfo{{Name: "input", Type: ir.TensorType(ir.Float32, ir.Shape{ir.D(1), ir.D(16), ir.D(d)})}}
	g.Initializers = []*ir.Tensor{g1, mk("b1", 0.1, d), g2, mk("b2", 0.1, d),
		mk("w1", 0.2, d, f), mk("c1", 0.1, f), mk("w2", 0.1, f, d), mk("c2", 0.1, d), mk("w3", 0.2, d, d)}
	g.Nodes = []*ir.Node{
		{Name: "ln1", OpType: "LayerNormalization", Inputs: []string{"input", "g1", "b1"}, Outputs: []string{"h"}},
		{Name: "fc1", OpType: "MatMul", Inputs: []string{"h", "w1"}, Outputs: []string{"a"}},
		{Name: "fc1_bias", OpType: "Add", Inputs: []string{"a", "c1"}, Outputs: []string{"a1"}},
		{Name: "relu", OpType: "Relu", Inputs: []string{"a1"}, Outputs: []string{"a2"}},
		{Name: "fc2", OpType: "MatMul", Inputs: []string{"a2", "w2"}, Outputs: []string{"b"}},
		{Name: "fc2_bias", OpType: "Add", Inputs: []string{"b", "c2"}, Outputs: []string{"b1o"}},
		{Name: "residual", OpType: "Add", Inputs: []string{"b1o", "h"}, Outputs: []string{"y"}},
		{Name: "ln2", OpType: "LayerNormalization", Inputs: []string{"y", "g2", "b2"}, Outputs: []string{"z"}},
		{Name: "fc3", OpType: "MatMul", Inputs: []string{"z", "w3"}, Outputs: []string{"output"}},
	}
	g.Outputs = []*ir.ValueInfo{{Name: "output"}}
	return &ir.Model{IRVersion: 8, Opsets: []ir.OpsetImport{{Version: 17}}, Graph: g}
}

func blockInputs(seed uint64, n int) []map[string]*ir.Tensor {
	rng := rand.New(rand.NewPCG(seed, 6))
	var out []map[string]*ir.Tensor
	for range n {
		t := ir.NewTensor(ir.Float32, []int64{1, 16, 32})
		for i := range t.Len() {
			t.SetFloat64At(i, rng.NormFloat64())
		}
		out = append(out, map[string]*ir.Tensor{"input": t})
	}
	return out
}

// maxRelDiff is max|a−b| / max|b|.
func maxRelDiff(a, b *ir.Tensor) float64 {
	var d, m float64
	for i := range b.Len() {
		d = math.Max(d, math.Abs(a.Float64At(i)-b.Float64At(i)))
		m = math.Max(m, math.Abs(b.Float64At(i)))
	}
	return d / m
}

// smoothedGraph runs the builder's passes and its SmoothQuant step on m and
// returns the fused graph before and after smoothing.
func smoothedGraph(t *testing.T, m *ir.Model, batches []map[string]*ir.Tensor, alpha float64) (plain, smoothed *ir.Model, rep *Report) {
	t.Helper()
	b := &build{cfg: Config{INT8: true, SmoothQuant: true, SmoothQuantAlpha: alpha,
		Calibration: &Calibration{Source: &calib.SliceStream{Batches: batches}}}, m: m.Clone(), rep: &Report{}}
	if err := b.optimize(); err != nil {
		t.Fatal(err)
	}
	plain = b.m.Clone()
	if err := b.smoothQuant(); err != nil {
		t.Fatal(err)
	}
	return plain, b.m, b.rep
}

// TestSmoothQuantKeepsFP32: the smoothed graph computes the same function
// (in float32 rounding) on inputs the statistics never saw, with 1/s both
// folded into a LayerNorm and applied by an inserted Mul.
func TestSmoothQuantKeepsFP32(t *testing.T) {
	plain, sm, rep := smoothedGraph(t, smoothBlockModel(), blockInputs(1, 2), 0)
	folded, muls := 0, 0
	for _, s := range rep.Smoothed {
		if s.Folded != "" {
			folded++
		} else {
			muls++
		}
	}
	if folded != 1 || muls != 2 || rep.SmoothQuantAlpha != 0.5 {
		t.Fatalf("smoothed %d activations by folding, %d by Mul (α %g): %+v", folded, muls, rep.SmoothQuantAlpha, rep.Smoothed)
	}
	t.Log(rep.SmoothQuantSummary())
	for _, in := range blockInputs(9, 3) {
		want, err := ops.Run(plain, in)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ops.Run(sm, in)
		if err != nil {
			t.Fatal(err)
		}
		d := maxRelDiff(got["output"], want["output"])
		t.Logf("FP32 output after smoothing: max rel diff %.3g", d)
		if d > smoothFP32Tol {
			t.Errorf("smoothing changed the FP32 output: max rel diff %.3g > %.3g", d, smoothFP32Tol)
		}
	}
}

// TestSmoothQuantImprovesINT8Engine: on the outlier block, an INT8 engine
// built with Config.SmoothQuant is closer to the FP32 engine than one
// built without it.
func TestSmoothQuantImprovesINT8Engine(t *testing.T) {
	m := smoothBlockModel()
	fp32, _, err := Build(m, nil, Config{Deterministic: true})
	if err != nil {
		t.Fatal(err)
	}
	eval := blockInputs(7, 2)
	want := engineOutputs(t, fp32, eval)
	cos := map[bool]float64{}
	for _, sq := range []bool{false, true} {
		p, rep, err := Build(m, nil, Config{Deterministic: true, INT8: true, SmoothQuant: sq,
			Calibration: &Calibration{Source: &calib.SliceStream{Batches: blockInputs(3, 4)}, Algorithm: calib.MinMax}})
		if err != nil {
			t.Fatal(err)
		}
		if n := countPrecision(p, "int8"); n != 3 {
			t.Errorf("SmoothQuant %v: %d int8 layers, want 3", sq, n)
		}
		if sq != (len(rep.Smoothed) > 0) || sq != (p.Meta.Config["smoothquant_alpha"] == "0.5") {
			t.Errorf("SmoothQuant %v: report %d sites, plan config %v", sq, len(rep.Smoothed), p.Meta.Config)
		}
		// Two smoothing Muls (h has a residual reader, a2 is a ReLU
		// output); LN2's 1/s went into its γ/β.
		muls := 0
		for _, s := range p.Steps {
			if len(s.OpTypes) == 1 && s.OpTypes[0] == "Mul" && strings.HasSuffix(s.Name, "_smooth") {
				muls++
			}
		}
		if muls != map[bool]int{false: 0, true: 2}[sq] {
			t.Errorf("SmoothQuant %v: %d smoothing Mul steps", sq, muls)
		}
		cos[sq] = 1
		for i, g := range engineOutputs(t, p, eval) {
			cos[sq] = math.Min(cos[sq], cosine(g, want[i]))
		}
		t.Logf("SmoothQuant %v: INT8 engine cosine vs FP32 engine %.6f", sq, cos[sq])
	}
	if !(cos[true] > cos[false]) || cos[true] < 0.999 {
		t.Errorf("INT8 cosine %.6f without SmoothQuant, %.6f with", cos[false], cos[true])
	}
}

// TestSmoothQuantNeedsData: smoothing needs rewindable calibration data and
// refuses given ranges; a bad α is an error; FP32 builds skip it with a
// warning.
func TestSmoothQuantNeedsData(t *testing.T) {
	m := smoothBlockModel()
	data := func() *Calibration { return &Calibration{Source: &calib.SliceStream{Batches: blockInputs(3, 1)}} }
	oneShot := calib.FuncStream{Size: 1, Fn: (&calib.SliceStream{Batches: blockInputs(3, 1)}).Next}
	for name, cfg := range map[string]Config{
		"no data":        {INT8: true, SmoothQuant: true},
		"ranges":         {INT8: true, SmoothQuant: true, DynamicRanges: map[string]float64{"h": 1}},
		"alpha 1.5":      {INT8: true, SmoothQuant: true, SmoothQuantAlpha: 1.5, Calibration: data()},
		"not rewindable": {INT8: true, SmoothQuant: true, Calibration: &Calibration{Source: oneShot}},
	} {
		cfg.Deterministic = true
		if _, _, err := Build(m, nil, cfg); err == nil {
			t.Errorf("%s: built", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	_, rep, err := Build(m, nil, Config{Deterministic: true, SmoothQuant: true, Calibration: data()})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Smoothed) != 0 || len(rep.Warnings) == 0 {
		t.Errorf("FP32 build: smoothed %d, warnings %q", len(rep.Smoothed), rep.Warnings)
	}
}

// TestDynamicINT8Engine: Config.DynamicINT8 needs no calibration and turns
// every MatMul with a constant weight into a per-token kiln.DynQMatMul
// (reported as int8); the engine stays close to the FP32 engine, also on
// an input whose one token carries a huge outlier (per-token scales keep
// the other tokens' precision). With SmoothQuant and calibration data the
// dynamic layers read the smoothed activations.
func TestDynamicINT8Engine(t *testing.T) {
	m := smoothBlockModel()
	fp32, _, err := Build(m, nil, Config{Deterministic: true})
	if err != nil {
		t.Fatal(err)
	}
	eval := blockInputs(7, 2)
	eval[1]["input"].SetFloat64At(5*32+9, 400) // token 5 only
	want := engineOutputs(t, fp32, eval)
	for _, sq := range []bool{false, true} {
		cfg := Config{Deterministic: true, DynamicINT8: true}
		if sq {
			cfg.SmoothQuant = true
			cfg.Calibration = &Calibration{Source: &calib.SliceStream{Batches: blockInputs(3, 2)}}
		}
		p, rep, err := Build(m, nil, cfg)
		if err != nil {
			t.Fatal(err)
		}
		dyn := 0
		for _, s := range p.Steps {
			if len(s.OpTypes) > 0 && s.OpTypes[0] == "MatMul" {
				if s.Precision != "int8" {
					t.Errorf("SmoothQuant %v: %s runs in %s", sq, s.Name, s.Precision)
				}
				dyn++
			}
		}
		if dyn != 3 || sq != (len(rep.Smoothed) > 0) {
			t.Errorf("SmoothQuant %v: %d int8 MatMul layers, %d smoothed", sq, dyn, len(rep.Smoothed))
		}
		for i, g := range engineOutputs(t, p, eval) {
			c := cosine(g, want[i])
			t.Logf("dynamic INT8, SmoothQuant %v, input %d: cosine %.6f", sq, i, c)
			if c < 0.999 {
				t.Errorf("dynamic INT8, SmoothQuant %v, input %d: cosine %.6f", sq, i, c)
			}
		}
	}
}

// A layer kept in FP32 by --layer-precisions is not smoothed (its input
// gets no Mul); the other sites are.
func TestSmoothQuantSkipsFloatLayers(t *testing.T) {
	p, rep, err := Build(smoothBlockModel(), nil, Config{Deterministic: true, INT8: true, SmoothQuant: true,
		LayerPrecisions: map[string]engine.Precision{"fc2": engine.FP32},
		Calibration:     &Calibration{Source: &calib.SliceStream{Batches: blockInputs(3, 2)}}})
	if err != nil {
		t.Fatal(err)
	}
	var acts []string
	for _, s := range rep.Smoothed {
		acts = append(acts, s.Activation)
	}
	if len(acts) != 2 || slices.Contains(acts, "a2") {
		t.Errorf("smoothed %v, want h and z but not fc2's input a2", acts)
	}
	if n := countPrecision(p, "int8"); n != 2 {
		t.Errorf("%d int8 layers, want 2", n)
	}
}
