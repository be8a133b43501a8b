package cpu

import (
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kilnml/kiln/builder"
	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/onnx"
	"github.com/kilnml/kiln/ops"
)

// After the first Execute, an engine of cpu kernels allocates nothing per
// inference, at any thread count.
func TestExecuteDoesNotAllocate(t *testing.T) {
	path := filepath.Join(sharedModels(t), "mnist-8-zoo/model.onnx")
	m, err := onnx.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	plan, _, err := builder.Build(m, nil, builder.Config{Deterministic: true})
	if err != nil {
		t.Fatal(err)
	}
	e, err := engine.NewEngine(plan)
	if err != nil {
		t.Fatal(err)
	}
	in := modelInputs(t, m, path, 1)
	for _, threads := range []int{1, 2} {
		c := e.NewContext()
		c.SetThreads(threads)
		for name, v := range in {
			if err := c.SetInput(name, v); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.Execute(); err != nil {
			t.Fatal(err)
		}
		for _, s := range plan.Steps {
			if !strings.HasPrefix(s.Kernel, "cpu.") && !s.ShapeStep {
				t.Fatalf("step %s runs on %s", s.Name, s.Kernel)
			}
		}
		if raceOn {
			continue // sync.Pool drops items under the race detector
		}
		if a := testing.AllocsPerRun(20, func() { c.Execute() }); a != 0 {
			t.Errorf("threads %d: Execute allocates %v times", threads, a)
		}
	}
}

// ONNX Runtime's INT8 QDQ simplecnn builds to cpu int8 kernels whose
// output follows the fake-quantized float model closely.
func TestQDQModelINT8(t *testing.T) {
	path := filepath.Join(sharedModels(t), "bench/simplecnn.int8.qdq.onnx")
	m, err := onnx.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	in := modelInputs(t, m, path, 4)
	shapes := map[string][]int64{}
	for k, v := range in {
		shapes[k] = v.Dims
	}
	prof, _ := builder.ProfileFromShapes(shapes, shapes, shapes)
	plan, _, err := builder.Build(m, nil, builder.Config{INT8: true, Deterministic: true, Profiles: []builder.Profile{prof}})
	if err != nil {
		t.Fatal(err)
	}
	q := 0
	for _, s := range plan.Steps {
		if strings.HasPrefix(s.Kernel, "cpu.") && s.Precision == "int8" {
			q++
		}
	}
	if q == 0 {
		var ks []string
		for _, s := range plan.Steps {
			ks = append(ks, s.Name+":"+s.Kernel+":"+s.Precision)
		}
		t.Fatalf("no int8 cpu step in %v", ks)
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
		g := got[name].F32()
		var dot, gg, ww float64
		for i, v := range w.F32() {
			dot += float64(v) * float64(g[i])
			gg += float64(g[i]) * float64(g[i])
			ww += float64(v) * float64(v)
		}
		if cos := dot / math.Sqrt(gg*ww); !(cos >= 0.999) {
			t.Errorf("%s: cosine %v with the QDQ reference", name, cos)
		}
	}
}

// buildPlan builds a model at fixed input shapes, with or without this
// backend (without: the reference engine every cpu kernel must match).
func buildPlan(t *testing.T, m *ir.Model, in map[string]*ir.Tensor, cfg builder.Config, withCPU bool) *engine.Plan {
	t.Helper()
	shapes := map[string][]int64{}
	for k, v := range in {
		shapes[k] = v.Dims
	}
	prof, err := builder.ProfileFromShapes(shapes, shapes, shapes)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Profiles = []builder.Profile{prof}
	disabled = !withCPU
	plan, _, err := builder.Build(m, nil, cfg)
	disabled = false
	if err != nil {
		t.Fatal(err)
	}
	return plan
}

func runPlan(t *testing.T, p *engine.Plan, in map[string]*ir.Tensor, threads int) map[string]*ir.Tensor {
	t.Helper()
	e, err := engine.NewEngine(p)
	if err != nil {
		t.Fatal(err)
	}
	c := e.NewContext()
	c.SetThreads(threads)
	out, err := c.Run(in)
	if err != nil {
		t.Fatal(err)
	}
	res := map[string]*ir.Tensor{}
	for k, v := range out {
		res[k] = v.Clone()
	}
	return res
}

// INT8 engines of ONNX Runtime's QDQ models: every step between the input
// quantization and the output dequantization is integer (or exact), so the
// engine built with cpu kernels equals the reference-kernel engine bit for
// bit, at any thread count.
func TestINT8EngineBitExact(t *testing.T) {
	dir := sharedModels(t)
	for _, c := range []struct {
		rel   string
		batch int64
	}{{"bench/simplecnn.int8.qdq.onnx", 3}, {"bench/mobilenetv2.int8.qdq.onnx", 1}} {
		t.Run(c.rel, func(t *testing.T) {
			if raceOn && c.batch == 1 {
				t.Skip("mobilenetv2 is too slow under the race detector")
			}
			path := filepath.Join(dir, c.rel)
			m, err := onnx.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			in := modelInputs(t, m, path, c.batch)
			cfg := builder.Config{INT8: true, Deterministic: true}
			fast := buildPlan(t, m, in, cfg, true)
			ref := buildPlan(t, m, in, cfg, false)
			n := 0
			for _, s := range fast.Steps {
				if strings.HasPrefix(s.Kernel, "cpu.conv") || strings.HasPrefix(s.Kernel, "cpu.gemm") {
					n++
				}
			}
			if n == 0 {
				t.Fatal("no cpu conv/gemm step")
			}
			want := runPlan(t, ref, in, 1)
			for _, th := range []int{1, 2, 3} {
				got := runPlan(t, fast, in, th)
				for name, w := range want {
					if w.DType == ir.Float32 && !bytesEqual(got[name].Data, w.Data) {
						// float layers between int8 ones (e.g. a float residual Add) round differently
						closeF32(t, fmt.Sprint(name, " threads ", th), got[name], w, 1e-5)
						t.Logf("%s: not bit-exact (float steps in the model), within rel 1e-5", name)
						continue
					}
					sameBits(t, fmt.Sprint(name, " threads ", th), got[name], w)
				}
			}
		})
	}
}

func bytesEqual(a, b []byte) bool { return string(a) == string(b) }

// Contexts of one engine run concurrently (kernels keep per-run state in
// pooled objects and context scratch) and agree bit for bit.
func TestConcurrentContexts(t *testing.T) {
	path := filepath.Join(sharedModels(t), "bench/simplecnn.fp32.onnx")
	m, err := onnx.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	in := modelInputs(t, m, path, 3)
	plan := buildPlan(t, m, in, builder.Config{Deterministic: true}, true)
	want := runPlan(t, plan, in, 1)
	e, err := engine.NewEngine(plan)
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 4)
	for g := 0; g < 4; g++ {
		go func() {
			c := e.NewContext()
			c.SetThreads(1 + g%2)
			for i := 0; i < 5; i++ {
				got, err := c.Run(in)
				if err != nil {
					errs <- err
					return
				}
				for name, w := range want {
					if !bytesEqual(got[name].Data, w.Data) {
						errs <- fmt.Errorf("context %d run %d: %s differs", g, i, name)
						return
					}
				}
			}
			errs <- nil
		}()
	}
	for g := 0; g < 4; g++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
