package cudabackend

import (
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kilnml/kiln/builder"
	"github.com/kilnml/kiln/datasrc"
	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/onnx"
	"github.com/kilnml/kiln/quant/calib"
)

// sharedDir is ../shared (or $KILN_SHARED, which the device machine sets
// to the copy it carries).
func sharedDir(t testing.TB) string {
	if d := os.Getenv("KILN_SHARED"); d != "" {
		return d
	}
	d, _ := filepath.Abs(filepath.Join("..", "..", "..", "shared"))
	if _, err := os.Stat(filepath.Join(d, "models")); err != nil {
		t.Skipf("shared data not found at %s (set KILN_SHARED)", d)
	}
	return d
}

// buildOn builds m with the CUDA backend on or off.
func buildOn(t *testing.T, gpu bool, m *ir.Model, cfg builder.Config) *engine.Engine {
	t.Helper()
	if gpu {
		Enable()
	} else {
		Disable()
	}
	defer Disable()
	p, _, err := builder.Build(m, nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	e, err := engine.NewEngine(p)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// cudaSteps counts the plan's steps that run on the GPU.
func cudaSteps(e *engine.Engine) (n, total int) {
	for _, s := range e.Plan().Steps {
		if s.ShapeStep {
			continue
		}
		total++
		if strings.HasPrefix(s.Kernel, "cuda.") {
			n++
		}
	}
	return
}

func nmse(a, b *ir.Tensor) float64 {
	var num, den float64
	for i := int64(0); i < a.Len(); i++ {
		d := a.Float64At(i) - b.Float64At(i)
		num += d * d
		den += b.Float64At(i) * b.Float64At(i)
	}
	return num / max(den, 1e-30)
}

func argmax(t *ir.Tensor, row int) int {
	n := int(t.Dims[len(t.Dims)-1])
	best := 0
	for k := 0; k < n; k++ {
		if t.Float64At(int64(row*n+k)) > t.Float64At(int64(row*n+best)) {
			best = k
		}
	}
	return best
}

// The zoo's MNIST model in FP32, FP16, INT8 and FP8: the GPU engine agrees
// with the CPU engine of the same precision, and keeps the accuracy.
func TestMNISTZooOnGPU(t *testing.T) {
	needGPU(t)
	m, err := onnx.Load(filepath.Join(sharedDir(t), "models", "mnist-8-zoo", "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	opt := datasrc.Options{MaxBatches: 64, MNISTDir: os.Getenv("KILN_MNIST_DIR")}
	calibSrc := func() *datasrc.Source {
		src, err := datasrc.Open("mnist-raw:train", m.Graph.RealInputs(), opt)
		if err != nil {
			t.Skipf("MNIST not available: %v", err)
		}
		return src
	}
	const images = 1000
	var acc32 float64
	for _, c := range []struct {
		name  string
		cfg   func() builder.Config
		bound float64 // NMSE of GPU logits against CPU logits
	}{
		{"fp32", func() builder.Config { return builder.Config{} }, 1e-9},
		{"fp16", func() builder.Config { return builder.Config{FP16: true} }, 1e-5},
		{"int8", func() builder.Config {
			return builder.Config{INT8: true, Calibration: &builder.Calibration{Source: calibSrc(), Algorithm: calib.Entropy2}}
		}, 1e-4},
		{"fp8", func() builder.Config {
			return builder.Config{FP8: true, Calibration: &builder.Calibration{Source: calibSrc(), Algorithm: calib.MinMax}}
		}, 5e-3}, // an E4M3 code flipped by summation order moves a logit by up to 1/16
	} {
		t.Run(c.name, func(t *testing.T) {
			gpu, cpu := buildOn(t, true, m, c.cfg()), buildOn(t, false, m, c.cfg())
			n, total := cudaSteps(gpu)
			if n == 0 {
				t.Fatalf("no step runs on the GPU")
			}
			test, err := datasrc.Open("mnist-raw:test", m.Graph.RealInputs(), datasrc.Options{MaxBatches: images, MNISTDir: opt.MNISTDir})
			if err != nil {
				t.Skip(err)
			}
			gctx, cctx := gpu.NewContext(), cpu.NewContext()
			right, seen := 0, 0
			worst := 0.0
			for {
				b, err := test.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				gout, err := gctx.Run(b)
				if err != nil {
					t.Fatal(err)
				}
				cout, err := cctx.Run(b)
				if err != nil {
					t.Fatal(err)
				}
				for name, g := range gout {
					worst = max(worst, nmse(g, cout[name]))
					if argmax(g, 0) == test.Labels()[0] {
						right++
					}
				}
				seen++
			}
			acc := 100 * float64(right) / float64(seen)
			if c.name == "fp32" {
				acc32 = acc
			}
			t.Logf("%s: %d/%d steps on the GPU; accuracy %.2f%% on %d images; worst logit NMSE vs CPU %.3g", c.name, n, total, acc, seen, worst)
			if worst > c.bound {
				t.Errorf("GPU logits differ from the CPU engine's: NMSE %.3g > %g", worst, c.bound)
			}
			if acc32 > 0 && math.Abs(acc-acc32) > 1.5 {
				t.Errorf("accuracy %.2f%% vs fp32 %.2f%%", acc, acc32)
			}
		})
	}
	t.Logf("timing: %v", ReadTiming())
}

// SimpleCNN (PyTorch export, dynamic batch) at batch 64 matches the CPU.
func TestSimpleCNNOnGPU(t *testing.T) {
	needGPU(t)
	m, err := onnx.Load(filepath.Join(sharedDir(t), "models", "bench", "simplecnn.fp32.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	shape := []int64{64, 1, 28, 28}
	cfg := builder.Config{Profiles: []builder.Profile{{"input": {Min: shape, Opt: shape, Max: shape}}}}
	gpu, cpu := buildOn(t, true, m, cfg), buildOn(t, false, m, cfg)
	n, total := cudaSteps(gpu)
	x := randTensor(rand.New(rand.NewPCG(3, 4)), ir.Float32, shape)
	g, err := gpu.NewContext().Run(map[string]*ir.Tensor{"input": x})
	if err != nil {
		t.Fatal(err)
	}
	c, err := cpu.NewContext().Run(map[string]*ir.Tensor{"input": x})
	if err != nil {
		t.Fatal(err)
	}
	e := nmse(g["output"], c["output"])
	t.Logf("simplecnn batch 64: %d/%d steps on the GPU, NMSE vs CPU %.3g", n, total, e)
	if n == 0 || e > 1e-9 {
		t.Errorf("steps on GPU %d, NMSE %.3g", n, e)
	}
}

// benchModel loads one of the GPU benchmark CNNs at a dynamic batch:
// ResNet-50 light (zoo, opset 9, ConstantOfShape weights: made batch-dynamic,
// opset 13 and given random weights) or mobilenetv2 (PyTorch export).
func benchModel(t testing.TB, name string) (m *ir.Model, input string) {
	t.Helper()
	switch name {
	case "resnet50":
		m, err := onnx.Load(filepath.Join(sharedDir(t), "models", "onnx-light-cnns", "resnet50", "model.onnx"))
		if err != nil {
			t.Fatal(err)
		}
		if err := BatchDynamic(m); err != nil {
			t.Fatal(err)
		}
		if err := Opset13(m); err != nil {
			t.Fatal(err)
		}
		RandomWeights(m, 1)
		// compare logits: with random weights the softmax saturates to
		// one-hot vectors, which would hide any difference
		g := m.Graph
		for i, n := range g.Nodes {
			if n.OpType == "Softmax" && len(g.Outputs) == 1 && n.Outputs[0] == g.Outputs[0].Name {
				g.Outputs[0].Name = n.Inputs[0]
				g.Nodes = append(g.Nodes[:i], g.Nodes[i+1:]...)
				break
			}
		}
		return m, "gpu_0/data_0"
	default:
		m, err := onnx.Load(filepath.Join(sharedDir(t), "models", "bench", name+".fp32.onnx"))
		if err != nil {
			t.Fatal(err)
		}
		return m, "input"
	}
}

// ResNet-50 and mobilenetv2 at batch 2 in every precision: the GPU engine
// (every layer on the GPU) agrees with the CPU engine of the same precision.
func TestBenchModelsOnGPU(t *testing.T) {
	needGPU(t)
	if _, err := os.Stat(filepath.Join(sharedDir(t), "models", "bench", "mobilenetv2.fp32.onnx")); err != nil {
		t.Skip("benchmark models not carried (tools/gpu_prepare.sh with KILN_PREPARE_EXTRA=1)")
	}
	shape := []int64{2, 3, 224, 224}
	for _, name := range []string{"resnet50", "mobilenetv2"} {
		for _, c := range []struct {
			prec  string
			cfg   builder.Config
			bound float64 // NMSE of the GPU output against the CPU engine's
		}{
			{"fp32", builder.Config{}, 1e-8},
			{"fp16", builder.Config{FP16: true}, 1e-3},
			{"int8", builder.Config{INT8: true}, 1e-2},
			{"fp8", builder.Config{FP8: true}, 3e-2},
		} {
			t.Run(name+"/"+c.prec, func(t *testing.T) {
				m, input := benchModel(t, name)
				cfg := c.cfg
				cfg.Profiles = []builder.Profile{{input: {Min: shape, Opt: shape, Max: shape}}}
				calibrate := func() {
					if cfg.INT8 || cfg.FP8 {
						cfg.Calibration = &builder.Calibration{Source: &RandomStream{Input: input, Shape: shape, Batches: 1}, Algorithm: calib.MinMax}
					}
				}
				calibrate()
				gpu := buildOn(t, true, m, cfg)
				calibrate()
				cpu := buildOn(t, false, m, cfg)
				n, total := cudaSteps(gpu)
				x := randTensor(rand.New(rand.NewPCG(5, 6)), ir.Float32, shape)
				for i, v := range x.F32() {
					x.F32()[i] = (v + 2) / 4 // [0, 1) like the calibration data
				}
				g, err := gpu.NewContext().Run(map[string]*ir.Tensor{input: x})
				if err != nil {
					t.Fatal(err)
				}
				cp, err := cpu.NewContext().Run(map[string]*ir.Tensor{input: x})
				if err != nil {
					t.Fatal(err)
				}
				worst := 0.0
				for k, v := range g {
					worst = max(worst, nmse(v, cp[k]))
				}
				var tacs []string
				for _, s := range gpu.Plan().Steps {
					if s.Tactic != "" && s.Kernel == KernelGemm {
						tacs = append(tacs, s.Tactic)
					}
				}
				t.Logf("%s %s batch 2: %d/%d steps on the GPU, NMSE vs CPU engine %.3g; conv tactics %s", name, c.prec, n, total, worst, tacticCounts(tacs))
				if n != total {
					t.Errorf("%d of %d steps are not on the GPU", total-n, total)
				}
				if worst > c.bound || math.IsNaN(worst) {
					t.Errorf("NMSE %.3g > %g", worst, c.bound)
				}
			})
		}
	}
}

func tacticCounts(names []string) string {
	cnt := map[string]int{}
	var order []string
	for _, n := range names {
		if cnt[n] == 0 {
			order = append(order, n)
		}
		cnt[n]++
	}
	var b strings.Builder
	for _, n := range order {
		fmt.Fprintf(&b, "%s×%d ", n, cnt[n])
	}
	return b.String()
}
