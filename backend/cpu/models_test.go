package cpu

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kilnml/kiln/builder"
	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/onnx"
	"github.com/kilnml/kiln/ops"
)

func sharedModels(t testing.TB) string {
	d := os.Getenv("KILN_SHARED")
	if d == "" {
		d, _ = filepath.Abs(filepath.Join("..", "..", "..", "shared"))
	}
	d = filepath.Join(d, "models")
	if _, err := os.Stat(d); err != nil {
		t.Skipf("shared models not found at %s (set KILN_SHARED)", d)
	}
	return d
}

// modelInputs reads test_data_set_0 next to the model, or makes random
// inputs with dynamic dims set to batch.
func modelInputs(t testing.TB, m *ir.Model, path string, batch int64) map[string]*ir.Tensor {
	in := map[string]*ir.Tensor{}
	r := rand.New(rand.NewPCG(25, 26))
	for i, v := range m.Graph.RealInputs() {
		if tt, err := onnx.ReadTensorFile(filepath.Join(filepath.Dir(path), "test_data_set_0", fmt.Sprintf("input_%d.pb", i))); err == nil {
			in[v.Name] = tt
			continue
		}
		var dims []int64
		for _, d := range v.Type.Shape {
			if d.Known() {
				dims = append(dims, d.Value)
			} else {
				dims = append(dims, batch)
			}
		}
		in[v.Name] = randF32(r, dims...)
	}
	return in
}

// Whole FP32 models build with the cpu kernels for every conv and dense
// layer and match the reference executor within rel 1e-5.
func TestModelsFP32(t *testing.T) {
	testModels(t, "bench/simplecnn.fp32.onnx", "mnist-8-zoo/model.onnx", "onnx-light-cnns/shufflenet/model.onnx")
}

func TestMobileNetV2FP32(t *testing.T) { testModels(t, "bench/mobilenetv2.fp32.onnx") }

func TestSqueezeNetFP32(t *testing.T) { testModels(t, "onnx-light-cnns/squeezenet/model.onnx") }

// ResNet-50 and Inception v1 take several seconds each on 2 cores (most
// in the float64 reference).
func TestResNet50FP32(t *testing.T) {
	if testing.Short() {
		t.Skip("large model: skipped in -short mode")
	}
	testModels(t, "onnx-light-cnns/resnet50/model.onnx")
}

func TestInceptionV1FP32(t *testing.T) {
	if testing.Short() {
		t.Skip("large model: skipped in -short mode")
	}
	testModels(t, "onnx-light-cnns/inception_v1/model.onnx")
}

func testModels(t *testing.T, models ...string) {
	dir := sharedModels(t)
	for _, rel := range models {
		t.Run(rel, func(t *testing.T) {
			if raceOn && strings.Contains(rel, "mobilenet") {
				t.Skip("too slow under the race detector")
			}
			path := filepath.Join(dir, rel)
			m, err := onnx.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			in := modelInputs(t, m, path, 2)
			cfg := builder.Config{Deterministic: true}
			if strings.HasPrefix(rel, "bench/") {
				shapes := map[string][]int64{}
				for k, v := range in {
					shapes[k] = v.Dims
				}
				p, err := builder.ProfileFromShapes(shapes, shapes, shapes)
				if err != nil {
					t.Fatal(err)
				}
				cfg.Profiles = []builder.Profile{p}
			}
			plan, _, err := builder.Build(m, nil, cfg)
			if err != nil {
				t.Fatal(err)
			}
			fast := 0
			for _, s := range plan.Steps {
				compute := false
				for _, op := range s.OpTypes {
					compute = compute || op == "Conv" || op == "Gemm" || op == "MatMul"
				}
				if compute && !strings.HasPrefix(s.Kernel, "cpu.") {
					t.Errorf("layer %q (%v) runs on %s", s.Name, s.OpTypes, s.Kernel)
				}
				if strings.HasPrefix(s.Kernel, "cpu.") {
					fast++
				}
			}
			if fast == 0 {
				t.Fatal("no step uses a cpu kernel")
			}
			e, err := engine.NewEngine(plan)
			if err != nil {
				t.Fatal(err)
			}
			got, err := e.NewContext().Run(in)
			if err != nil {
				t.Fatal(err)
			}
			want, err := ops.Run(m, in)
			if err != nil {
				t.Fatal(err)
			}
			for name, w := range want {
				closeF32(t, name, got[name], w, 1e-5)
			}
		})
	}
}
