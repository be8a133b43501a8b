package train

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/kilnml/kiln/builder"
	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/internal/ortrun"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/onnx"
	"github.com/kilnml/kiln/ops"
	"github.com/kilnml/kiln/quant"
	"github.com/kilnml/kiln/quant/qdq"
)

func qatRandData(n int, seed uint64, scale float64) []float32 {
	r := rand.New(rand.NewPCG(seed, 7))
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64() * scale)
	}
	return x
}

// The trainer's fake quantization is bit-exact with quant's (ONNX's
// QuantizeLinear/DequantizeLinear), per tensor and per channel, and its
// straight-through mask is quant's clip mask.
func TestFakeQuantizeMatchesQuant(t *testing.T) {
	x := qatRandData(4*3*5, 1, 3)
	x[7] = 1.5 * 0.05 // a tie: round half to even
	c := NewCtx(2)
	for _, tc := range []struct {
		spec  FakeQuantSpec
		scale []float32
		p     *quant.Params
	}{
		{Int8Activation, []float32{0.05}, &quant.Params{DType: ir.Int8, Scale: []float32{0.05}, Axis: quant.PerTensor}},
		{WeightSpec(8, false), []float32{0.01, 0.02, 0.03, 0.04}, &quant.Params{DType: ir.Int8, Scale: []float32{0.01, 0.02, 0.03, 0.04}, Axis: 0, Narrow: true}},
	} {
		xt := NewParam(4, 3, 5)
		copy(xt.Data, x)
		y := c.FakeQuantize(xt, FromData(tc.scale, len(tc.scale)), tc.spec)
		want := make([]float32, len(x))
		clipped := make([]bool, len(x))
		if err := quant.FakeQuantizeClipped(want, clipped, x, []int64{4, 3, 5}, tc.p); err != nil {
			t.Fatal(err)
		}
		nclip := 0
		for i := range want {
			if y.Data[i] != want[i] {
				t.Fatalf("%v: y[%d] = %v, quant gives %v", tc.spec, i, y.Data[i], want[i])
			}
			if clipped[i] {
				nclip++
			}
		}
		if nclip == 0 {
			t.Fatalf("%v: the test data clips nothing", tc.spec)
		}
		// STE: d(sum y)/dx is 1 inside the range, 0 where clipped.
		loss := qatSum(c, y)
		if err := c.Backward(loss); err != nil {
			t.Fatal(err)
		}
		for i, g := range xt.Grad {
			if want := map[bool]float32{false: 1, true: 0}[clipped[i]]; g != want {
				t.Fatalf("%v: dx[%d] = %v, want %v (clipped %v)", tc.spec, i, g, want, clipped[i])
			}
		}
		c.Reset()
	}
}

// qatSum is a scalar loss Σ y (gradient 1 everywhere).
func qatSum(c *Ctx, y *Tensor) *Tensor {
	out := c.newResult([]int{}, func(out *Tensor) {
		g := c.gradOf(y)
		for i := range g {
			g[i] += out.Grad[0]
		}
	}, y)
	s := 0.0
	for _, v := range y.Data {
		s += float64(v)
	}
	out.Data[0] = float32(s)
	return out
}

// LSQ's scale gradient, against the formula evaluated in float64.
func TestLearnedStepSizeGradient(t *testing.T) {
	x := qatRandData(2*6, 2, 2)
	for _, spec := range []FakeQuantSpec{{QMin: -8, QMax: 7, Axis: -1}, {QMin: -7, QMax: 7, Axis: 0}} {
		c := NewCtx(3)
		xt := FromData(x, 2, 6)
		s := NewParam(map[int]int{-1: 1, 0: 2}[spec.Axis])
		for i := range s.Data {
			s.Data[i] = 0.2 + 0.1*float32(i)
		}
		y := c.FakeQuantize(xt, s, spec)
		if err := c.Backward(qatSum(c, y)); err != nil {
			t.Fatal(err)
		}
		inner := len(x) / len(s.Data)
		for k := range s.Data {
			sum := 0.0
			for i := k * inner; i < (k+1)*inner; i++ {
				v := float64(x[i]) / float64(s.Data[k])
				q := math.RoundToEven(v)
				switch {
				case q < float64(spec.QMin):
					sum += float64(spec.QMin)
				case q > float64(spec.QMax):
					sum += float64(spec.QMax)
				default:
					sum += q - v
				}
			}
			want := sum / math.Sqrt(float64(inner*spec.QMax))
			if math.Abs(float64(s.Grad[k])-want) > 1e-5 {
				t.Errorf("axis %d: ds[%d] = %v, want %v", spec.Axis, k, s.Grad[k], want)
			}
		}
	}
}

// Folding batch norm into the convolution leaves the outputs unchanged.
func TestFoldBatchNorm(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	conv := NewConv2d("conv", 2, 4, 3, r)
	bn := NewBatchNorm2d("bn", 4)
	for i := 0; i < 4; i++ {
		bn.Gamma.Data[i] = 0.5 + float32(i)
		bn.Beta.Data[i] = float32(i) - 1.5
		bn.Mean.Data[i] = 0.1 * float32(i)
		bn.Variance.Data[i] = 0.3 + 0.2*float32(i)
	}
	model := &Sequential{Layers: []Layer{conv, bn, &ReLULayer{"relu"}}}
	fused, err := Fuse(model, [][]string{{"conv", "bn", "relu"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(fused.Layers) != 1 {
		t.Fatalf("fused model has %d layers", len(fused.Layers))
	}
	x := qatRandData(3*2*7*7, 4, 1)
	a := Logits(NewCtx(1), model, x, 3, 2, 7, 7)
	b := Logits(NewCtx(1), fused, x, 3, 2, 7, 7)
	for i := range a {
		if math.Abs(float64(a[i]-b[i])) > 1e-5*(1+math.Abs(float64(a[i]))) {
			t.Fatalf("output %d: conv+bn+relu %v, folded %v", i, a[i], b[i])
		}
	}
	if _, err := Fuse(model, [][]string{{"bn", "relu"}}); err == nil {
		t.Error("fusing a group that starts with batch norm succeeded")
	}
	if _, err := Fuse(model, [][]string{{"conv", "relu"}}); err == nil {
		t.Error("fusing non-adjacent layers succeeded")
	}
}

// preparedCNN is a random SimpleCNN fused, prepared, calibrated on random
// images and switched to QAT.
func preparedCNN(t *testing.T, cfg QConfig) (*Sequential, []float32) {
	t.Helper()
	model, err := Fuse(NewSimpleCNN(5), SimpleCNNFusions)
	if err != nil {
		t.Fatal(err)
	}
	if model, err = Prepare(model, cfg); err != nil {
		t.Fatal(err)
	}
	x := qatRandData(16*784, 6, 1)
	src := &qatSource{x: x, n: 16, batch: 8, per: 784}
	if err := Calibrate(model, src, 0, 8, 2, 1, 28, 28); err != nil {
		t.Fatal(err)
	}
	if err := PrepareQAT(model); err != nil {
		t.Fatal(err)
	}
	return model, x
}

type qatSource struct {
	x             []float32
	n, batch, per int
	pos           int
}

func (s *qatSource) Reset(int)       { s.pos = 0 }
func (s *qatSource) NumBatches() int { return (s.n + s.batch - 1) / s.batch }
func (s *qatSource) Next(x []float32, labels []int) int {
	k := min(s.batch, s.n-s.pos)
	copy(x, s.x[s.pos*s.per:(s.pos+k)*s.per])
	for i := 0; i < k; i++ {
		labels[i] = (s.pos + i) % 10
	}
	s.pos += k
	return k
}

// The framework API end to end: the Q/DQ export computes what the trainer
// simulated (ops.Run), and kiln's builder turns it into an INT8 engine with
// the same outputs; QAT steps move the weights (and, with LSQ, the scales).
func TestQATExportMatchesTrainer(t *testing.T) {
	configs := []QConfig{{WeightBits: 4, LearnScales: true}, {}, {PerTensorWeights: true}}
	if raceEnabled {
		configs = configs[:1] // the race detector makes the builder slow
	}
	for _, cfg := range configs {
		model, x := preparedCNN(t, cfg)
		opt := NewAdam(model.Params(), 1e-3)
		tr := NewTrainer(model, opt, 8, 2, 1, 28, 28)
		before := QuantLayers(model)[1].ActScale.Data[0]
		for s := 0; s < 2; s++ {
			if _, _, err := tr.Step(x[:8*784], []int{0, 1, 2, 3, 4, 5, 6, 7}); err != nil {
				t.Fatal(err)
			}
		}
		if after := QuantLayers(model)[1].ActScale.Data[0]; cfg.LearnScales == (after == before) {
			t.Errorf("%+v: activation scale %v → %v", cfg, before, after)
		}
		n := 4
		want := Logits(NewCtx(2), model, x, n, 1, 28, 28)
		for _, flavor := range []qdq.Flavor{qdq.TensorRT, qdq.ORT} {
			m, err := Convert(model, ConvertOptions{InputShape: []int{1, 28, 28}, Classes: 10, Flavor: flavor})
			if err != nil {
				t.Fatal(err)
			}
			count := map[string]int{}
			for _, nd := range m.Graph.Nodes {
				count[nd.OpType]++
			}
			if count["DequantizeLinear"] != 8 {
				t.Errorf("%+v flavor %d: %d DequantizeLinear nodes, want 8 (4 activations, 4 weights)", cfg, flavor, count["DequantizeLinear"])
			}
			in := ir.FromFloat32s([]int64{int64(n), 1, 28, 28}, x[:n*784])
			got, err := ops.Run(m, map[string]*ir.Tensor{"input": in})
			if err != nil {
				t.Fatal(err)
			}
			qatClose(t, "ops.Run", got["output"].F32(), want, 1e-4)
			plan, _, err := builder.Build(m, nil, builder.Config{Deterministic: true,
				Profiles: []builder.Profile{{"input": {Min: []int64{1, 1, 28, 28}, Opt: []int64{4, 1, 28, 28}, Max: []int64{8, 1, 28, 28}}}}})
			if err != nil {
				t.Fatal(err)
			}
			if qatInt8Steps(plan) < 4 {
				t.Errorf("%+v: only %d int8 steps", cfg, qatInt8Steps(plan))
			}
			e, err := engine.NewEngine(plan)
			if err != nil {
				t.Fatal(err)
			}
			out, err := e.NewContext().Run(map[string]*ir.Tensor{"input": in})
			if err != nil {
				t.Fatal(err)
			}
			qatClose(t, "engine", out["output"].F32(), want, 1e-3)
			if d, why := ortrun.Dir(); d == "" {
				t.Logf("ONNX Runtime part skipped: %s", why)
			} else {
				path := filepath.Join(t.TempDir(), "m.onnx")
				if err := onnx.Save(path, m); err != nil {
					t.Fatal(err)
				}
				o, _, err := ortrun.Run(path, []*ir.Tensor{in}, 1, 0)
				if err != nil {
					t.Fatal(err)
				}
				// ONNX Runtime fuses Q/DQ into its own int8 kernels, whose
				// fixed-point requantization can move an intermediate code by
				// one step: a few thousandths of the logit range.
				qatClose(t, "ONNX Runtime", o[0].F32(), want, 5e-3)
				t.Logf("%+v flavor %d: ONNX Runtime matches the trainer", cfg, flavor)
			}
		}
	}
}

func qatInt8Steps(p *engine.Plan) int {
	k := 0
	for _, s := range p.Steps {
		if s.Precision == "int8" {
			k++
		}
	}
	return k
}

// qatClose compares logits relative to their overall magnitude.
func qatClose(t *testing.T, what string, got, want []float32, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	mag := 0.0
	for _, v := range want {
		mag = math.Max(mag, math.Abs(float64(v)))
	}
	for i := range got {
		if d := math.Abs(float64(got[i] - want[i])); d > tol*(1+mag) {
			t.Fatalf("%s: logit %d = %v, the trainer gives %v", what, i, got[i], want[i])
		}
	}
}
