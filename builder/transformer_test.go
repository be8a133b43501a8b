package builder

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/onnx"
	"github.com/kilnml/kiln/ops"
	"github.com/kilnml/kiln/quant/calib"
)

// bert4Inputs returns n inputs [1,128,256] of N(0,1) token embeddings; with
// outliers, hidden channels 7, 100 and 201 are scaled by 20, 35 and 50 (the
// activation outliers of real transformers that break per-tensor INT8).
func bert4Inputs(seed uint64, n int, outliers bool) []map[string]*ir.Tensor {
	rng := rand.New(rand.NewPCG(seed, 10))
	var out []map[string]*ir.Tensor
	for range n {
		t := ir.NewTensor(ir.Float32, []int64{1, 128, 256})
		x := t.F32()
		for i := range x {
			x[i] = float32(rng.NormFloat64())
			if outliers {
				switch i % 256 {
				case 7:
					x[i] *= 20
				case 100:
					x[i] *= 35
				case 201:
					x[i] *= 50
				}
			}
		}
		out = append(out, map[string]*ir.Tensor{"input": t})
	}
	return out
}

func loadBert4(t testing.TB) *ir.Model {
	m, err := onnx.Load(filepath.Join(sharedDir(t), "models", "bench", "bert4.fp32.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// engineOutputs runs a plan on every input and returns the outputs.
func engineOutputs(t testing.TB, p *engine.Plan, inputs []map[string]*ir.Tensor) []*ir.Tensor {
	e, err := engine.NewEngine(p)
	if err != nil {
		t.Fatal(err)
	}
	ctx := e.NewContext()
	var outs []*ir.Tensor
	for _, in := range inputs {
		o, err := ctx.Run(in)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, o["output"].Clone())
	}
	return outs
}

// TestBert4Precisions: bert4 builds with LayerNorm and Attention fused and
// runs in FP16, INT8 and FP8 (MinMax calibration) within the cosine
// bounds of the FP32 engine, on random inputs and on inputs with outlier
// channels; LayerNorm and Attention stay FP32 in every engine.
func TestBert4Precisions(t *testing.T) {
	if testing.Short() {
		t.Skip("bert4 on reference kernels")
	}
	m := loadBert4(t)
	fp32, rep, err := Build(m, nil, Config{Deterministic: true})
	if err != nil {
		t.Fatal(err)
	}
	fused := map[string]int{}
	for _, f := range rep.Fusions {
		for _, op := range []string{"kiln.LayerNorm", "kiln.Attention"} {
			if strings.HasSuffix(f, "into "+op) {
				fused[op]++
			}
		}
	}
	if fused["kiln.LayerNorm"] != 9 || fused["kiln.Attention"] != 4 {
		t.Errorf("fusions: %v", fused)
	}
	bounds := map[string]float64{"fp16": 0.999, "int8": 0.99, "fp8": 0.99}
	// One random and one outlier input, evaluated separately; calibration
	// sees one of each (other seeds).
	eval := append(bert4Inputs(1, 1, false), bert4Inputs(1, 1, true)...)
	want := engineOutputs(t, fp32, eval)
	for _, prec := range []string{"fp16", "int8", "fp8"} {
		cfg := Config{Deterministic: true}
		switch prec {
		case "fp16":
			cfg.FP16 = true
		case "int8":
			cfg.INT8 = true
		case "fp8":
			cfg.FP8 = true
		}
		if prec != "fp16" {
			batches := append(bert4Inputs(2, 1, false), bert4Inputs(3, 1, true)...)
			cfg.Calibration = &Calibration{Source: &calib.SliceStream{Batches: batches}, Algorithm: DefaultCalibrator(m)}
		}
		p, _, err := Build(m, nil, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if n := countPrecision(p, prec); n < 24 {
			t.Errorf("%s: only %d %s layers", prec, n, prec)
		}
		for _, s := range p.Steps {
			if k := stepKind(s); (k == "LayerNorm" || k == "Attention") && s.Precision != "fp32" {
				t.Errorf("%s: %s %s runs in %s", prec, k, s.Name, s.Precision)
			}
		}
		got := engineOutputs(t, p, eval)
		for i, what := range []string{"random", "outliers"} {
			c := cosine(got[i], want[i])
			t.Logf("%s %s: cosine %.6f", prec, what, c)
			if c < bounds[prec] {
				t.Errorf("%s %s: cosine %.6f < %.3f", prec, what, c, bounds[prec])
			}
		}
	}
}

// stepKind names a transformer step by its members: Attention (a Softmax
// with MatMuls), LayerNorm, or its first op type.
func stepKind(s engine.Step) string {
	for _, o := range s.OpTypes {
		switch o {
		case "Softmax":
			if len(s.OpTypes) > 1 {
				return "Attention"
			}
		case "LayerNormalization", "ReduceMean":
			return "LayerNorm"
		}
	}
	if len(s.OpTypes) > 0 {
		return s.OpTypes[0]
	}
	return ""
}

func TestDefaultCalibrator(t *testing.T) {
	if got := DefaultCalibrator(loadBert4(t)); got != calib.MinMax {
		t.Errorf("bert4: %s", got)
	}
	m, err := onnx.Load(filepath.Join(sharedDir(t), "models", "bench", "simplecnn.fp32.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	if got := DefaultCalibrator(m); got != calib.Entropy2 {
		t.Errorf("simplecnn: %s", got)
	}
}

// TestBert4AttentionMatMulsINT8 measures the two ways of handling
// attention's activation×activation MatMuls in an INT8 engine: fused into
// kiln.Attention (FP32, the default) or left unfused (the scores exposed as
// extra graph outputs so that the fusion cannot apply) and quantized as
// kiln.QMatMul with two int8 activations (P in [0,1] at scale 1/127).
func TestBert4AttentionMatMulsINT8(t *testing.T) {
	if testing.Short() {
		t.Skip("bert4 on reference kernels")
	}
	m := loadBert4(t)
	unfused := m.Clone()
	for _, n := range unfused.Graph.Nodes {
		if n.OpType == "Softmax" {
			unfused.Graph.Outputs = append(unfused.Graph.Outputs, &ir.ValueInfo{Name: n.Outputs[0]})
		}
	}
	fp32, _, err := Build(m, nil, Config{Deterministic: true})
	if err != nil {
		t.Fatal(err)
	}
	eval := bert4Inputs(1, 1, true)
	want := engineOutputs(t, fp32, eval)
	for _, c := range []struct {
		name string
		m    *ir.Model
	}{{"fused FP32 attention", m}, {"unfused, QMatMul attention", unfused}} {
		batches := bert4Inputs(3, 1, true)
		p, _, err := Build(c.m, nil, Config{Deterministic: true, INT8: true,
			Calibration: &Calibration{Source: &calib.SliceStream{Batches: batches}, Algorithm: calib.MinMax}})
		if err != nil {
			t.Fatal(err)
		}
		qmm := 0
		for _, s := range p.Steps {
			if s.Precision == "int8" && len(s.OpTypes) == 1 && s.OpTypes[0] == "MatMul" && !strings.Contains(s.Name, "dense") &&
				!strings.Contains(s.Name, "query") && !strings.Contains(s.Name, "key") && !strings.Contains(s.Name, "value") {
				qmm++
			}
		}
		got := engineOutputs(t, p, eval)
		t.Logf("%s: %d activation×activation int8 MatMuls; outlier input: 1 - cosine %.3g, relative L2 error %.3g", c.name, qmm, 1-cosine(got[0], want[0]), relL2(got[0], want[0]))
		if c.m == unfused && qmm != 8 {
			t.Errorf("%s: %d quantized attention MatMuls, want 8", c.name, qmm)
		}
		for i := range got {
			if cs := cosine(got[i], want[i]); cs < 0.99 {
				t.Errorf("%s: cosine %.5f", c.name, cs)
			}
		}
	}
}

func relL2(got, want *ir.Tensor) float64 {
	var d, w float64
	for i := range want.Len() {
		e := got.Float64At(i) - want.Float64At(i)
		d += e * e
		w += want.Float64At(i) * want.Float64At(i)
	}
	return math.Sqrt(d / w)
}

// TestBert4SmoothQuant: INT8 engines of bert4 (static, calibrated with the
// transformer default MinMax on one random and one outlier input as in
// TestBert4Precisions; and dynamic per-token) built with and without
// Config.SmoothQuant (α 0.5), against the FP32 engine on a random and an
// outlier input (BENCHMARKS.md, issue 10). Smoothing must keep the fused
// FP32 graph's function and lower the error on the outlier input without
// raising it much on the random one.
func TestBert4SmoothQuant(t *testing.T) {
	if testing.Short() {
		t.Skip("bert4 on reference kernels")
	}
	m := loadBert4(t)
	calData := func() []map[string]*ir.Tensor {
		return append(bert4Inputs(2, 1, false), bert4Inputs(3, 1, true)...)
	}
	eval := append(bert4Inputs(1, 1, false), bert4Inputs(1, 1, true)...)
	plain, sm, rep := smoothedGraph(t, m, calData(), 0)
	t.Log(rep.SmoothQuantSummary())
	if len(rep.Smoothed) < 16 {
		t.Errorf("%d smoothed activations, want the 4 layers' QKV, attention output, FFN in and out", len(rep.Smoothed))
	}
	for _, in := range eval {
		want, err := ops.Run(plain, in)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ops.Run(sm, in)
		if err != nil {
			t.Fatal(err)
		}
		d := maxRelDiff(got["output"], want["output"])
		t.Logf("FP32 graph after smoothing: max rel diff %.3g", d)
		if d > smoothFP32Tol*10 { // 4 layers of LayerNorm, softmax and GELU amplify rounding
			t.Errorf("smoothing changed bert4's FP32 output: max rel diff %.3g", d)
		}
	}
	fp32, _, err := Build(m, nil, Config{Deterministic: true})
	if err != nil {
		t.Fatal(err)
	}
	want := engineOutputs(t, fp32, eval)
	for _, dynamic := range []bool{false, true} {
		kind := map[bool]string{false: "INT8 static", true: "INT8 dynamic per-token"}[dynamic]
		errs := map[bool][]float64{}
		for _, sq := range []bool{false, true} {
			cfg := Config{Deterministic: true, INT8: !dynamic, DynamicINT8: dynamic, SmoothQuant: sq}
			if !dynamic || sq {
				cfg.Calibration = &Calibration{Source: &calib.SliceStream{Batches: calData()}}
			}
			p, _, err := Build(m, nil, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if n := countPrecision(p, "int8"); n < 24 {
				t.Errorf("%s, SmoothQuant %v: %d int8 layers", kind, sq, n)
			}
			got := engineOutputs(t, p, eval)
			for i, what := range []string{"random", "outliers"} {
				e := relL2(got[i], want[i])
				errs[sq] = append(errs[sq], e)
				t.Logf("%s, SmoothQuant %v, %s input: cosine %.6f (1 - cosine %.3g), relative L2 error %.4g", kind, sq, what, cosine(got[i], want[i]), 1-cosine(got[i], want[i]), e)
				if c := cosine(got[i], want[i]); c < 0.99 {
					t.Errorf("%s, SmoothQuant %v, %s input: cosine %.5f", kind, sq, what, c)
				}
			}
		}
		// Per-token scales already absorb much of what smoothing fixes, and
		// smoothing coarsens the weights: on the random input the dynamic
		// engine loses a little (0.0038 -> 0.0041), hence the wider bound.
		slack := map[bool]float64{false: 1.05, true: 1.15}[dynamic]
		if errs[true][0] > errs[false][0]*slack {
			t.Errorf("%s, random: SmoothQuant raised the error %.4g -> %.4g", kind, errs[false][0], errs[true][0])
		}
		if !(errs[true][1] < errs[false][1]) {
			t.Errorf("%s, outliers: SmoothQuant did not lower the error (%.4g -> %.4g)", kind, errs[false][1], errs[true][1])
		}
	}
}
