package avx

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkMicro reports the micro-kernel's FP32 rate on a tile whose
// operands sit in L1 (the machine's peak: ~205 GFLOP/s per Zen 5 core).
func BenchmarkMicro(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	const k = 256
	a, bb := randF(r, k*MR), randF(r, k*NR)
	c := make([]float32, MR*NR)
	t := &Tile{}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		Micro(k, a, bb, NR, c, NR, MR, NR, t)
	}
	b.ReportMetric(float64(2*k*MR*NR)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

// BenchmarkGemm: one thread, C[256×3136] = A[256×576]·B (a ResNet 3×3 conv).
func BenchmarkGemm(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	m, k, n := 256, 576, 3136
	ap := make([]float32, ASize(m, k))
	PackA(ap, randF(r, m*k), m, k, k, 1)
	chunk := 128
	bp := randF(r, BSize(k, chunk))
	c := make([]float32, m*n)
	e := &Epi{}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := 0; j < n; j += chunk {
			Gemm(k, ap, m, bp, 0, min(chunk, n-j), c[j:], n, e, 0, j)
		}
	}
	b.ReportMetric(float64(2*m*n*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}
