package winograd

import (
	"fmt"
	"testing"

	"github.com/kilnml/kiln/kernels/avx"
)

// BenchmarkGemmShapes times one of the T² GEMMs the Winograd convs run
// (M×K weights, N tiles): N is small at batch 1 (16 tiles at 14×14 for
// F(4,3) and at 7×7 for F(2,3)), where the weights stream once per
// GEMM and each weight serves only N multiply-adds.
func BenchmarkGemmShapes(b *testing.B) {
	for _, s := range []struct{ m, k, n int }{{512, 512, 16}, {512, 512, 32}, {256, 256, 16}, {256, 256, 32}, {64, 64, 32}, {128, 128, 64}} {
		b.Run(fmt.Sprintf("%dx%dx%d", s.m, s.k, s.n), func(b *testing.B) {
			a := make([]float32, avx.ASize(s.m, s.k))
			bb := make([]float32, avx.BSize(s.k, s.n))
			c := make([]float32, s.m*s.n)
			for i := range a {
				a[i] = 0.5
			}
			for i := range bb {
				bb[i] = 0.25
			}
			var e avx.Epi
			for i := 0; i < b.N; i++ {
				avx.Gemm(s.k, a, s.m, bb, 0, s.n, c, s.n, &e, 0, 0)
			}
			b.ReportMetric(2*float64(s.m*s.k*s.n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
