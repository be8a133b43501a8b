package gemm

import (
	"math"
	"math/rand/v2"
	"testing"
)

// ref is the float64 triple loop the fast path is checked against.
func ref(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) []float64 {
	out := make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			s := 0.0
			for p := 0; p < k; p++ {
				var av, bv float32
				if transA {
					av = a[p*lda+i]
				} else {
					av = a[i*lda+p]
				}
				if transB {
					bv = b[j*ldb+p]
				} else {
					bv = b[p*ldb+j]
				}
				s += float64(av) * float64(bv)
			}
			if beta != 0 {
				s += float64(beta) * float64(c[i*ldc+j])
			}
			out[i*n+j] = s
		}
	}
	return out
}

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

func TestSgemmMatchesFloat64Reference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	shapes := [][3]int{{1, 1, 1}, {2, 5, 3}, {3, 7, 1}, {7, 11, 13}, {64, 121, 288}, {130, 9, 300}, {5, 2050, 7}, {121, 37, 513}, {33, 33, 0}}
	for _, s := range shapes {
		m, n, k := s[0], s[1], s[2]
		for _, tA := range []bool{false, true} {
			for _, tB := range []bool{false, true} {
				for _, beta := range []float32{0, 1, 0.5} {
					// leading dimensions larger than the logical width
					lda, ldb, ldc := k+3, n+1, n+2
					if tA {
						lda = m + 3
					}
					if tB {
						ldb = k + 1
					}
					arows, brows := m, k
					if tA {
						arows = k
					}
					if tB {
						brows = n
					}
					a := randSlice(r, max(arows, 1)*lda)
					b := randSlice(r, max(brows, 1)*ldb)
					c := randSlice(r, m*ldc)
					want := ref(tA, tB, m, n, k, a, lda, b, ldb, beta, c, ldc)
					Sgemm(tA, tB, m, n, k, a, lda, b, ldb, beta, c, ldc)
					for i := 0; i < m; i++ {
						for j := 0; j < n; j++ {
							got, w := float64(c[i*ldc+j]), want[i*n+j]
							if math.Abs(got-w) > 1e-4*(1+math.Abs(w))*math.Sqrt(float64(k+1)) {
								t.Fatalf("m=%d n=%d k=%d tA=%v tB=%v beta=%v: C[%d,%d]=%v want %v", m, n, k, tA, tB, beta, i, j, got, w)
							}
						}
					}
				}
			}
		}
	}
}

func TestSgemmBetaZeroIgnoresNaN(t *testing.T) {
	c := []float32{float32(math.NaN()), float32(math.NaN())}
	Sgemm(false, false, 1, 2, 1, []float32{2}, 1, []float32{3, 4}, 2, 0, c, 2)
	if c[0] != 6 || c[1] != 8 {
		t.Fatalf("got %v", c)
	}
}

func TestSgemmShortSlicePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for a short A")
		}
	}()
	Sgemm(false, false, 2, 2, 2, make([]float32, 3), 2, make([]float32, 4), 2, 0, make([]float32, 4), 2)
}

func benchShape(b *testing.B, tA, tB bool, m, n, k int) {
	r := rand.New(rand.NewPCG(1, 2))
	a, bb, c := randSlice(r, m*k), randSlice(r, k*n), make([]float32, m*n)
	lda, ldb := k, n
	if tA {
		lda = m
	}
	if tB {
		ldb = k
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		Sgemm(tA, tB, m, n, k, a, lda, bb, ldb, 0, c, n)
	}
	b.ReportMetric(float64(b.N)*2*float64(m*n*k)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

// Shapes of the MNIST CNN's training step (per image for the convolutions).
func BenchmarkConv2Forward(b *testing.B)    { benchShape(b, false, false, 64, 121, 288) }
func BenchmarkConv2WeightGrad(b *testing.B) { benchShape(b, false, true, 64, 288, 121) }
func BenchmarkConv2InputGrad(b *testing.B)  { benchShape(b, true, false, 288, 121, 64) }
func BenchmarkConv1Forward(b *testing.B)    { benchShape(b, false, false, 32, 676, 9) }
func BenchmarkFC1Forward(b *testing.B)      { benchShape(b, false, true, 128, 128, 1600) }
func BenchmarkSquare512(b *testing.B)       { benchShape(b, false, false, 512, 512, 512) }

func BenchmarkMicroKernel(b *testing.B) {
	ap, bp, c := make([]float32, KC*MR), make([]float32, KC*NR), make([]float32, MR*NR)
	for i := 0; i < b.N; i++ {
		kernel(KC, ap, bp, c, NR)
	}
	b.ReportMetric(float64(b.N)*2*KC*MR*NR/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}
