package cpu

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/kilnml/kiln/builder"
	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/internal/ortrun"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/onnx"
	"github.com/kilnml/kiln/ops"
	"github.com/kilnml/kiln/quant/calib"
)

func bert4Input(seed uint64) map[string]*ir.Tensor {
	r := rand.New(rand.NewPCG(seed, 44))
	return map[string]*ir.Tensor{"input": randF32(r, 1, 128, 256)}
}

// bert4Plan builds bert4 at batch 1 in fp32, int8 or fp8 (MinMax
// calibration on random inputs) with the cpu kernels.
func bert4Plan(t testing.TB, prec string) (*ir.Model, *engine.Plan) {
	path := filepath.Join(sharedModels(t), "bench", "bert4.fp32.onnx")
	m, err := onnx.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg := builder.Config{Deterministic: true, Profiles: []builder.Profile{{"input": {Min: []int64{1, 128, 256}, Opt: []int64{1, 128, 256}, Max: []int64{1, 128, 256}}}}}
	switch prec {
	case "int8":
		cfg.INT8 = true
	case "fp8":
		cfg.FP8 = true
	case "fp16":
		cfg.FP16 = true
	}
	if cfg.INT8 || cfg.FP8 {
		cfg.Calibration = &builder.Calibration{Source: &calib.SliceStream{Batches: []map[string]*ir.Tensor{bert4Input(1), bert4Input(2)}},
			Algorithm: builder.DefaultCalibrator(m)}
	}
	p, _, err := builder.Build(m, nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m, p
}

func cosine32(a, b *ir.Tensor) float64 {
	var ab, aa, bb float64
	for i := range a.Len() {
		x, y := a.Float64At(i), b.Float64At(i)
		ab, aa, bb = ab+x*y, aa+x*x, bb+y*y
	}
	return ab / math.Sqrt(aa*bb)
}

// bert4's FP32 engine runs LayerNorm and Attention on the cpu kernels and
// matches the reference; the INT8 engine stays within cosine 0.99.
func TestBert4CPUEngines(t *testing.T) {
	if testing.Short() {
		t.Skip("bert4 reference run")
	}
	m, p32 := bert4Plan(t, "fp32")
	kernels := map[string]int{}
	for _, s := range p32.Steps {
		kernels[s.Kernel]++
	}
	if kernels["cpu.layernorm"] != 9 || kernels["cpu.attention"] != 4 {
		t.Errorf("kernels %v", kernels)
	}
	in := bert4Input(7)
	want, err := ops.Run(m, in)
	if err != nil {
		t.Fatal(err)
	}
	run := func(p *engine.Plan) *ir.Tensor {
		e, err := engine.NewEngine(p)
		if err != nil {
			t.Fatal(err)
		}
		out, err := e.NewContext().Run(in)
		if err != nil {
			t.Fatal(err)
		}
		return out["output"]
	}
	closeF32(t, "bert4 fp32 engine", run(p32), want["output"], 1e-4)
	_, p8 := bert4Plan(t, "int8")
	if c := cosine32(run(p8), want["output"]); c < 0.99 {
		t.Errorf("int8 cosine %.5f", c)
	}
}

// BenchmarkBert4 times bert4 (batch 1, seq 128) on 2 threads: kiln FP32,
// INT8 and FP8 engines, and ONNX Runtime FP32 and INT8 (its own QDQ model)
// in the same run when KILN_ORT_DIR is set (ort_ms is ORT's median).
func BenchmarkBert4(b *testing.B) {
	for _, prec := range []string{"fp32", "int8", "fp8"} {
		b.Run("kiln-"+prec, func(b *testing.B) {
			_, p := bert4Plan(b, prec)
			e, err := engine.NewEngine(p)
			if err != nil {
				b.Fatal(err)
			}
			ctx := e.NewContext()
			ctx.SetThreads(2)
			in := bert4Input(9)
			if _, err := ctx.Run(in); err != nil {
				b.Fatal(err)
			}
			var lat []float64
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				if _, err := ctx.Run(in); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, float64(time.Since(t0).Microseconds())/1000)
			}
			sort.Float64s(lat)
			b.ReportMetric(lat[len(lat)/2], "median_ms")
		})
	}
	for _, file := range []string{"bert4.fp32.onnx", "bert4.int8.qdq.onnx"} {
		b.Run("ort-"+file, func(b *testing.B) {
			if dir, why := ortrun.Dir(); dir == "" {
				b.Skip(why)
			}
			path := filepath.Join(sharedModels(b), "bench", file)
			var med float64
			for i := 0; i < b.N; i++ {
				_, tm, err := ortrun.Run(path, []*ir.Tensor{bert4Input(9)["input"]}, 2, 50)
				if err != nil {
					b.Fatal(err)
				}
				med = tm.MedianMs
			}
			b.ReportMetric(med, "median_ms")
		})
	}
}
