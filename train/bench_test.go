package train

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkTrainStep times one SimpleCNN training step (forward, backward,
// Adam) at batch 256 on GOMAXPROCS workers (-cpu 1,2 sets both); images/s
// is the throughput, cpu-ms/step the process's CPU time per step (all
// threads; what the step costs whatever else the machine runs). On amd64 its GEMMs run on kernels/avx's micro-kernel,
// under -tags noasm on the portable GEMM.
func BenchmarkTrainStep(b *testing.B) { benchTrainStep(b, false) }

// BenchmarkTrainStepFP8 is BenchmarkTrainStep with every conv and linear
// layer in FP8 with delayed scaling (PrepareFP8): the casts' cost.
func BenchmarkTrainStepFP8(b *testing.B) { benchTrainStep(b, true) }

func benchTrainStep(b *testing.B, fp8 bool) {
	const batch = 256
	m := NewSimpleCNN(1)
	if fp8 {
		PrepareFP8(m, FP8Recipe{})
	}
	tr := NewTrainer(m, NewAdam(m.Params(), 1e-3), batch, 0, 1, 28, 28)
	r := rand.New(rand.NewPCG(1, 1))
	x := make([]float32, batch*28*28)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	labels := make([]int, batch)
	for i := range labels {
		labels[i] = r.IntN(10)
	}
	if _, _, err := tr.Step(x, labels); err != nil { // buffers allocated once, outside the timing
		b.Fatal(err)
	}
	b.ResetTimer()
	cpu0 := processCPU()
	for i := 0; i < b.N; i++ {
		if _, _, err := tr.Step(x, labels); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "images/s")
	if cpu := processCPU() - cpu0; cpu > 0 {
		b.ReportMetric(cpu.Seconds()*1000/float64(b.N), "cpu-ms/step")
	}
}
