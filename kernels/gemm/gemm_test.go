package gemm

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kilnml/kiln/kernels/avx"
	"github.com/kilnml/kiln/kernels/pack"
)

// forEachPath runs f on the portable GEMM and on the SIMD driver with each
// micro-kernel variant this CPU and build offer (avx's Go twin always, so
// the driver is tested under -tags noasm too).
func forEachPath(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	saved := avx.Variant
	defer func() { avx.Variant, forceDriver, forcePortable = saved, false, false }()
	forcePortable = true
	t.Run("portable", f)
	forcePortable, forceDriver = false, true
	for _, v := range avx.Variants() {
		avx.Variant = v
		t.Run("avx-"+[]string{"generic", "avx512", "avx2"}[v], f)
	}
}

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

// Tolerance of a float32 sum of k products against the float64 reference,
// relative to 1+|want|, scaled by √(k+1).
const sumTol = 1e-4

func TestSgemmMatchesFloat64Reference(t *testing.T) {
	// Sizes below, at and above both register tiles (2×5 portable, 8×32
	// AVX) and the K block (256), and the trainer's shapes.
	shapes := [][3]int{{1, 1, 1}, {2, 5, 3}, {3, 7, 1}, {7, 11, 13}, {8, 32, 256}, {9, 33, 257}, {17, 31, 255}, {33, 33, 0}}
	if !raceEnabled {
		shapes = append(shapes, [][3]int{{16, 64, 512}, {64, 121, 288}, {130, 9, 300}, {5, 2050, 7}, {121, 37, 513}}...)
	}
	forEachPath(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(1, 2))
		for _, s := range shapes {
			m, n, k := s[0], s[1], s[2]
			for _, tA := range []bool{false, true} {
				for _, tB := range []bool{false, true} {
					for _, beta := range []float32{0, 1, 0.5} {
						checkShape(t, r, m, n, k, tA, tB, beta)
					}
				}
			}
		}
	})
}

// checkShape multiplies random matrices with odd leading dimensions and
// checks C against the float64 reference and its guard columns (past n in
// each row, and rows past m) against being written.
func checkShape(t *testing.T, r *rand.Rand, m, n, k int, tA, tB bool, beta float32) {
	t.Helper()
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
	c := randSlice(r, (m+1)*ldc)
	before := append([]float32(nil), c...)
	want := ref(tA, tB, m, n, k, a, lda, b, ldb, beta, c, ldc)
	Sgemm(tA, tB, m, n, k, a, lda, b, ldb, beta, c[:m*ldc], ldc)
	for i := 0; i <= m; i++ {
		for j := 0; j < ldc; j++ {
			got := c[i*ldc+j]
			if i == m || j >= n {
				if got != before[i*ldc+j] {
					t.Fatalf("m=%d n=%d k=%d tA=%v tB=%v: guard C[%d,%d] written", m, n, k, tA, tB, i, j)
				}
				continue
			}
			w := want[i*n+j]
			if math.Abs(float64(got)-w) > sumTol*(1+math.Abs(w))*math.Sqrt(float64(k+1)) {
				t.Fatalf("m=%d n=%d k=%d tA=%v tB=%v beta=%v: C[%d,%d]=%v want %v", m, n, k, tA, tB, beta, i, j, got, w)
			}
		}
	}
}

// The trainer splits the rows of a product among its workers and relies on
// each row block being bitwise the rows of the whole product.
func TestSgemmRowBlocksAreBitwiseTheWhole(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(3, 4))
		for _, tA := range []bool{false, true} {
			for _, tB := range []bool{false, true} {
				m, n, k := 45, 70, 300
				lda, ldb := k, n
				if tA {
					lda = m
				}
				if tB {
					ldb = k
				}
				a, b := randSlice(r, m*k), randSlice(r, k*n)
				c0 := randSlice(r, m*n)
				whole := append([]float32(nil), c0...)
				Sgemm(tA, tB, m, n, k, a, lda, b, ldb, 1, whole, n)
				for _, cut := range []int{1, 7, 8, 23} {
					parts := append([]float32(nil), c0...)
					for lo := 0; lo < m; lo += cut {
						hi := min(m, lo+cut)
						aoff := lo * lda
						if tA {
							aoff = lo
						}
						Sgemm(tA, tB, hi-lo, n, k, a[aoff:], lda, b, ldb, 1, parts[lo*n:], n)
					}
					for i := range whole {
						if parts[i] != whole[i] {
							t.Fatalf("tA=%v tB=%v blocks of %d rows: C[%d] = %v, whole product %v", tA, tB, cut, i, parts[i], whole[i])
						}
					}
				}
			}
		}
	})
}

// NaN and Inf in the operands reach the outputs they touch, on every path.
func TestSgemmPropagatesNaNAndInf(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		m, n, k := 9, 33, 5
		a, b := make([]float32, m*k), make([]float32, k*n)
		for i := range a {
			a[i] = 1
		}
		for i := range b {
			b[i] = 1
		}
		a[2*k+1] = float32(math.NaN())   // row 2
		b[3*n+31] = float32(math.Inf(1)) // column 31
		c := make([]float32, m*n)
		Sgemm(false, false, m, n, k, a, k, b, n, 0, c, n)
		for i := 0; i < m; i++ {
			for j := 0; j < n; j++ {
				v := float64(c[i*n+j])
				switch {
				case i == 2 && !math.IsNaN(v):
					t.Fatalf("C[2,%d] = %v, want NaN", j, v)
				case i != 2 && j == 31 && !math.IsInf(v, 1):
					t.Fatalf("C[%d,31] = %v, want +Inf", i, v)
				case i != 2 && j != 31 && v != float64(k):
					t.Fatalf("C[%d,%d] = %v, want %d", i, j, v, k)
				}
			}
		}
	})
}

func TestSgemmBetaZeroIgnoresNaN(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		c := []float32{float32(math.NaN()), float32(math.NaN())}
		Sgemm(false, false, 1, 2, 1, []float32{2}, 1, []float32{3, 4}, 2, 0, c, 2)
		if c[0] != 6 || c[1] != 8 {
			t.Fatalf("got %v", c)
		}
	})
}

func TestSgemmShortSlicePanics(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		defer func() {
			if recover() == nil {
				t.Fatal("no panic for a short A")
			}
		}()
		Sgemm(false, false, 2, 2, 2, make([]float32, 3), 2, make([]float32, 4), 2, 0, make([]float32, 4), 2)
	})
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

// SgemmPacked with a PackA operand is bitwise Sgemm, on every path.
func TestSgemmPackedIsSgemm(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(7, 8))
		shapes := [][3]int{{1, 1, 1}, {9, 33, 257}}
		if !raceEnabled {
			shapes = append(shapes, [3]int{64, 121, 288}, [3]int{288, 121, 64})
		}
		for _, s := range shapes {
			m, n, k := s[0], s[1], s[2]
			for _, tA := range []bool{false, true} {
				for _, tB := range []bool{false, true} {
					lda, ldb := k, n
					if tA {
						lda = m
					}
					if tB {
						ldb = k
					}
					a, b, c0 := randSlice(r, m*k), randSlice(r, k*n), randSlice(r, m*n)
					pa := PackA(make([]float32, PackedSize(m, k)), tA, m, k, a, lda)
					for _, beta := range []float32{0, 1, 0.5} {
						want, got := append([]float32(nil), c0...), append([]float32(nil), c0...)
						Sgemm(tA, tB, m, n, k, a, lda, b, ldb, beta, want, n)
						SgemmPacked(pa, tB, n, b, ldb, beta, got, n)
						for i := range want {
							if got[i] != want[i] {
								t.Fatalf("m=%d n=%d k=%d tA=%v tB=%v beta=%v: C[%d] = %v, Sgemm %v", m, n, k, tA, tB, beta, i, got[i], want[i])
							}
						}
					}
				}
			}
		}
	})
}

// The float32 packers lay operands out exactly as kernels/avx and
// kernels/pack do (the layouts avx.Micro reads).
func TestPackersMatchAvxLayouts(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, s := range [][2]int{{1, 1}, {7, 3}, {8, 256}, {9, 257}, {33, 300}, {64, 121}, {288, 64}} {
		m, k := s[0], s[1]
		for _, tA := range []bool{false, true} {
			lda := k + 2
			rs, cs := lda, 1
			if tA {
				lda = m + 2
				rs, cs = 1, lda
			}
			a := randSlice(r, max(m, k)*lda)
			got, want := randSlice(r, avx.ASize(m, k)), make([]float32, avx.ASize(m, k))
			packStrips(got, tA, m, k, a, lda)
			avx.PackA(want, a, m, k, rs, cs)
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("packStrips m=%d k=%d tA=%v: [%d] = %v, avx.PackA %v", m, k, tA, i, got[i], want[i])
				}
			}
		}
		// op(B) = bᵀ with k = s[1] rows of op(B) and n = s[0] columns
		n, ldb := m, k+3
		b := randSlice(r, n*ldb)
		got, want := randSlice(r, avx.BSize(k, n)), make([]float32, avx.BSize(k, n))
		packBT(got, k, n, b, ldb)
		pack.B(want, b, (*[256]float32)(nil), k, n, 1, ldb, avx.NR)
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("packBT k=%d n=%d: [%d] = %v, pack.B %v", k, n, i, got[i], want[i])
			}
		}
	}
}
