package cpu

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kilnml/kiln/builder"
	"github.com/kilnml/kiln/datasrc"
	"github.com/kilnml/kiln/onnx"
	"github.com/kilnml/kiln/quant/calib"
)

// FP8 engines of SimpleCNN and the zoo's MNIST CNN, built with tactic
// timing: no step runs on the reference backend, the fp8 convs, dense
// layers, pools and the input quantization run on the SIMD tactics, and
// the logits follow the reference-kernel FP8 engine (same calibration)
// within fp8NMSE (a code flipped by the float32 summation order moves a
// logit by up to 1/16 of its scale).
const fp8NMSE = 5e-3

func TestFP8EnginesOnSIMD(t *testing.T) {
	if !simdAVX512() {
		t.Skip("no AVX-512 tactics on this CPU/build")
	}
	dir := sharedModels(t)
	for _, rel := range []string{"bench/simplecnn.fp32.onnx", "mnist-8-zoo/model.onnx"} {
		t.Run(rel, func(t *testing.T) {
			path := filepath.Join(dir, rel)
			m, err := onnx.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			cfg := func() builder.Config {
				src, err := datasrc.Open("mnist-raw:train", m.Graph.RealInputs(), datasrc.Options{MaxBatches: 8, MNISTDir: os.Getenv("KILN_MNIST_DIR")})
				if err != nil {
					t.Skipf("MNIST not available: %v", err)
				}
				return builder.Config{FP8: true, Calibration: &builder.Calibration{Source: src, Algorithm: calib.MinMax}}
			}
			in := modelInputs(t, m, path, 4)
			fast := buildPlan(t, m, in, cfg(), true)
			simd := 0
			for _, s := range fast.Steps {
				if s.ShapeStep {
					continue
				}
				if !strings.HasPrefix(s.Kernel, "cpu.") {
					t.Errorf("step %s runs on %s", s.Name, s.Kernel)
				}
				switch s.Kernel {
				case simdF8ConvIDs.now(), simdF8GemmIDs.now(), simdF8PoolID, simdF8QuantizeID:
					simd++
				}
			}
			if simd < 5 {
				t.Errorf("only %d steps on the fp8 SIMD kernels", simd)
			}
			want := runPlan(t, buildPlan(t, m, in, cfg(), false), in, 1)
			for _, th := range []int{1, 2} {
				got := runPlan(t, fast, in, th)
				for name, w := range want {
					var num, den float64
					for i, v := range w.F32() {
						d := float64(got[name].F32()[i]) - float64(v)
						num += d * d
						den += float64(v) * float64(v)
					}
					nmse := num / den
					t.Logf("%s threads %d: NMSE %.3g vs the reference FP8 engine (%d fp8 SIMD steps)", name, th, nmse, simd)
					if !(nmse <= fp8NMSE) || math.IsNaN(nmse) {
						t.Errorf("%s threads %d: NMSE %.3g vs the reference FP8 engine", name, th, nmse)
					}
				}
			}
		})
	}
}
