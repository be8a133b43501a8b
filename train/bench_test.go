package train

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkTrainStep times one SimpleCNN training step (forward, backward,
// Adam) at batch 256 on GOMAXPROCS workers; images/s is the throughput.
func BenchmarkTrainStep(b *testing.B) {
	const batch = 256
	m := NewSimpleCNN(1)
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
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, err := tr.Step(x, labels); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "images/s")
}
