package train

import (
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"

	"github.com/kilnml/kiln/floatx"
)

// Round equals floatx's saturating encode + decode, for every float32 near
// each format's codes (ties, subnormals, beyond the maximum) and at random.
func TestFP8Round(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, c := range []struct {
		f  FP8Format
		fx floatx.F8Format
	}{{E4M3, floatx.E4M3FN}, {E5M2, floatx.E5M2}} {
		check := func(v float32) {
			want := floatx.F8ToF32(floatx.F32ToF8(v, c.fx, true), c.fx)
			if got := c.f.Round(v); got != want && !(got != got && want != want) {
				t.Fatalf("%s.Round(%g) = %g, want %g", c.f.Name, v, got, want)
			}
		}
		for code := 0; code < 256; code++ {
			v := floatx.F8ToF32(uint8(code), c.fx)
			if v != v || math.IsInf(float64(v), 0) {
				continue
			}
			check(v)
			for _, d := range []float32{1e-3, 0.49, 0.5, 0.51} { // towards the next code, ties
				next := floatx.F8ToF32(uint8(code+1), c.fx)
				if next == next && !math.IsInf(float64(next), 0) && (next > v) == (v >= 0) {
					check(v + d*(next-v))
				}
			}
		}
		for range 100000 {
			check(float32(r.NormFloat64() * math.Exp2(float64(r.IntN(40)-25))))
		}
		check(float32(math.Inf(1)))
		check(-1e9)
	}
}

// The scale at step t comes from the amax of the HistoryLen steps before t.
func TestFP8DelayedScaling(t *testing.T) {
	m := &FP8Meta{Format: E4M3, window: 16}
	c := NewCtx(2)
	buf := make([]float32, 4)
	amaxOf := func(step int) float32 { return float32(step%20 + 1) } // rises, then drops at step 20
	for step := 0; step < 40; step++ {
		m.update()
		x := []float32{0.1, -amaxOf(step), 0.5, 0}
		m.cast(c, x, buf, true)
		want := float32(448) / amaxOf(0) // first step: its own amax
		if step > 0 {
			var a float32
			for s := max(0, step-16); s < step; s++ {
				a = max(a, amaxOf(s))
			}
			want = 448 / a
		}
		if step == 0 {
			want = 448 / amaxOf(0)
		}
		if math.Abs(float64(m.Scale-want)) > 1e-6*float64(want) {
			t.Fatalf("step %d: scale %g, want %g (history %v)", step, m.Scale, want, m.History)
		}
	}
	if len(m.History) != 16 {
		t.Errorf("history holds %d steps", len(m.History))
	}
	// Margin 2 divides by 4.
	mm := &FP8Meta{Format: E5M2, window: 16, margin: 2}
	mm.cast(c, []float32{2}, buf[:1], true)
	if mm.Scale != 57344/2/4 {
		t.Errorf("margin: scale %g", mm.Scale)
	}
}

// An FP8 Linear computes on E4M3 inputs and weights; its weight gradient is
// dyᵀ·x over the E5M2-cast output gradient and the E4M3 input.
func TestFP8LinearGradients(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	lin := NewLinear("fc", 8, 3, r)
	model := &Sequential{Layers: []Layer{lin}}
	layers := PrepareFP8(model, FP8Recipe{})
	if len(layers) != 1 || model.Layers[0] != layers[0] {
		t.Fatal("PrepareFP8 did not wrap the layer")
	}
	x := make([]float32, 4*8)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	c := NewCtx(2)
	y := model.Forward(c, FromData(x, 4, 8))
	// Loss = Σ y·k with a fixed k: dy = k.
	k := make([]float32, len(y.Data))
	for i := range k {
		k[i] = float32(r.NormFloat64()) * 1e-3
	}
	loss := c.newResult([]int{1}, func(out *Tensor) {
		g := c.gradOf(y)
		for i := range g {
			g[i] += k[i] * out.Grad[0]
		}
	}, y)
	for i := range y.Data {
		loss.Data[0] += y.Data[i] * k[i]
	}
	if err := c.Backward(loss); err != nil {
		t.Fatal(err)
	}
	sx := 448 / maxAbs(x)
	sw := 448 / maxAbs(lin.Weight.Data)
	sg := 57344 / maxAbs(k)
	for o := 0; o < 3; o++ {
		for i := 0; i < 8; i++ {
			var want float64
			for n := 0; n < 4; n++ {
				want += float64(E5M2.Round(k[n*3+o]*sg)/sg) * float64(E4M3.Round(x[n*8+i]*sx)/sx)
			}
			if got := lin.Weight.Grad[o*8+i]; math.Abs(float64(got)-want) > 1e-5*math.Abs(want)+1e-9 {
				t.Fatalf("dw[%d,%d] = %g, want %g", o, i, got, want)
			}
		}
		var yw float64 = float64(lin.Bias.Data[o])
		for i := 0; i < 8; i++ {
			yw += float64(E4M3.Round(x[i]*sx)/sx) * float64(E4M3.Round(lin.Weight.Data[o*8+i]*sw)/sw)
		}
		if math.Abs(float64(y.Data[o])-yw) > 1e-5*math.Abs(yw)+1e-6 {
			t.Fatalf("y[0,%d] = %g, want %g", o, y.Data[o], yw)
		}
	}
}

func maxAbs(v []float32) float32 {
	var m float32
	for _, x := range v {
		m = max(m, float32(math.Abs(float64(x))))
	}
	return m
}

// FP8 training of SimpleCNN (E4M3 forward, E5M2 gradients, delayed scaling)
// ends within 0.2 points of FP32 training with the same seed and data.
// KILN_FP8_MNIST=1 runs it (minutes: a full-data run is in BENCHMARKS.md);
// KILN_FP8_LIMIT and KILN_FP8_EPOCHS shorten or lengthen it.
func TestFP8TrainingMatchesFP32(t *testing.T) {
	if os.Getenv("KILN_FP8_MNIST") == "" {
		t.Skip("set KILN_FP8_MNIST=1 (minutes of training)")
	}
	cfg := MNISTConfig{Epochs: envInt("KILN_FP8_EPOCHS", 1), BatchSize: 64, LR: 1e-3, Seed: 1, Optimizer: "adam", Limit: envInt("KILN_FP8_LIMIT", 0),
		MNISTDir: os.Getenv("KILN_MNIST_DIR")}
	every := envInt("KILN_FP8_EVAL_EVERY", 0)
	_, c32, err := TrainMNISTFP8(cfg, false, FP8Recipe{}, every, testWriter{t})
	if err != nil {
		t.Skipf("MNIST: %v", err)
	}
	_, c8, err := TrainMNISTFP8(cfg, true, FP8Recipe{}, every, testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	a32, a8 := c32.Accuracies[len(c32.Accuracies)-1], c8.Accuracies[len(c8.Accuracies)-1]
	t.Logf("final test accuracy: fp32 %.2f%%, fp8 %.2f%%", 100*a32, 100*a8)
	if math.Abs(a32-a8) > 0.002 {
		t.Errorf("fp32 %.2f%% vs fp8 %.2f%%: more than 0.2 points apart", 100*a32, 100*a8)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}
