package avx

import (
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"testing"

	"github.com/kilnml/kiln/kernels/pack"
)

// TestGemmColsTail: Gemm with the column tail (gemmcols.go) equals Gemm
// without it bit for bit, for every variant, packed and in-place B, one
// and two K blocks (accumulation), partial row strips, groups of more
// than colsStrips strips, every epilogue and NaN/Inf operands; both are
// checked against float64 sums, and the guard bands around the output
// block stay untouched.
func TestGemmColsTail(t *testing.T) {
	forEachVariant(t, func(t *testing.T) {
		if Variant != VariantAVX2 && !colsPath() {
			t.Fatal("the column path is off for this variant")
		}
		r := rand.New(rand.NewPCG(21, 22))
		for _, m := range []int{3, 8, 13, 64, 65, 130} {
			for _, k := range []int{1, 9, 300} {
				for _, n := range []int{1, 2, 3, 5, 6, 7, 17, 22, 49, 196} {
					for ep := 0; ep < 3; ep++ {
						for _, direct := range []bool{false, true} {
							testColsTail(t, r, m, k, n, ep, direct)
						}
					}
				}
			}
		}
	})
}

func testColsTail(t *testing.T, r *rand.Rand, m, k, n, ep int, direct bool) {
	t.Helper()
	const r0, c0 = 2, 3 // the block's place in a larger output
	ldc := c0 + n + 5
	name := fmt.Sprintf("m=%d k=%d n=%d epilogue %d direct %v", m, k, n, ep, direct)
	a := randF(r, m*k)
	b := randF(r, k*n)
	if m > 4 && n > 2 {
		a[3*k+k/2] = float32(math.NaN())
		b[(k/3)*n+n-1] = float32(math.Inf(-1))
	}
	ap := make([]float32, ASize(m, k))
	PackA(ap, a, m, k, k, 1)
	bp := make([]float32, BSize(k, n))
	pack.B(bp, b, (*[256]float32)(nil), k, n, n, 1, NR)
	bias := randF(r, r0+m+c0+n)
	resid := randF(r, (r0+m)*ldc)
	e := &Epi{}
	switch ep {
	case 0:
		e.Bias, e.BiasOn, e.Clamp, e.Lo, e.Hi = bias, FlagBiasRow, true, -0.5, 0.75
	case 1:
		e.Bias, e.BiasOn, e.Resid = bias, FlagBiasCol, resid
	case 2:
		e.Act = func(y float32) float32 { return y * y }
	}
	run := func(tail int) []float32 {
		defer forceColsTail(tail)()
		c := make([]float32, (r0+m+2)*ldc)
		for i := range c {
			c[i] = 42
		}
		out := c[r0*ldc+c0:]
		if direct {
			Gemm(k, ap, m, b, n, n, out, ldc, e, r0, c0)
		} else {
			Gemm(k, ap, m, bp, 0, n, out, ldc, e, r0, c0)
		}
		return c
	}
	got, want := run(2*colsMax), run(0) // tails of one and two calls
	for i := range got {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s: c[%d][%d] = %v with the column tail, %v without", name, i/ldc-r0, i%ldc-c0, got[i], want[i])
		}
		row, col := i/ldc-r0, i%ldc-c0
		if row < 0 || row >= m || col < 0 || col >= n {
			if got[i] != 42 {
				t.Fatalf("%s: guard band written at [%d][%d]", name, row, col)
			}
			continue
		}
		var s float64
		for p := 0; p < k; p++ {
			s += float64(a[row*k+p]) * float64(b[p*n+col])
		}
		y := float64(float32(s))
		switch ep {
		case 0:
			y += float64(bias[r0+row])
			if !math.IsNaN(y) {
				y = math.Min(math.Max(y, -0.5), 0.75)
			}
		case 1:
			y += float64(bias[c0+col]) + float64(resid[(r0+row)*ldc+c0+col])
		case 2:
			y *= y
		}
		if !close32(got[i], y, k) && !(ep == 2 && math.Abs(float64(got[i])-y) <= 1e-4*float64(k+4)*(1+math.Abs(y))) {
			t.Fatalf("%s: c[%d][%d] = %v, want %v", name, row, col, got[i], y)
		}
	}
}

// forceColsTail makes Gemm give tails of up to tail columns to the column
// kernel at every depth; the returned func restores the limits.
func forceColsTail(tail int) func() {
	a, b, c, d := colsTail, colsMinK, colsTailDeep, colsDeepK
	colsTail, colsMinK, colsTailDeep, colsDeepK = tail, 0, tail, 0
	return func() { colsTail, colsMinK, colsTailDeep, colsDeepK = a, b, c, d }
}

// TestGemmColsKernel: the column kernel of each variant against float64
// sums for every strip and column count, from nonzero starting sums, with
// the accumulators outside the strips × cols block left as they were.
func TestGemmColsKernel(t *testing.T) {
	forEachVariant(t, func(t *testing.T) {
		if !colsPath() {
			t.Skip("no column path for this variant")
		}
		r := rand.New(rand.NewPCG(23, 24))
		for _, k := range []int{0, 1, 7, 64} {
			for strips := 1; strips <= colsStrips; strips++ {
				for cols := 1; cols <= colsMax; cols++ {
					astride := k*MR + 8 // strips need not be adjacent
					a := randF(r, strips*astride+1)
					const ldb = 11
					b := randF(r, k*ldb+cols)
					var acc, start [colsMax * colsStrips * MR]float32
					for i := range acc {
						acc[i] = float32(r.NormFloat64())
					}
					start = acc
					var pa, pb *float32
					if k > 0 {
						pa, pb = &a[0], &b[0]
					}
					gemmCols(k, pa, astride, strips, pb, ldb, cols, &acc[0])
					for c := 0; c < colsMax; c++ {
						for s := 0; s < colsStrips; s++ {
							for i := 0; i < MR; i++ {
								x := (c*colsStrips+s)*MR + i
								if c >= cols || s >= strips {
									if bits.Len32(math.Float32bits(acc[x])^math.Float32bits(start[x])) != 0 {
										t.Fatalf("k=%d strips=%d cols=%d: acc[%d] outside the block changed", k, strips, cols, x)
									}
									continue
								}
								want := float64(start[x])
								for p := 0; p < k; p++ {
									want += float64(a[s*astride+p*MR+i]) * float64(b[p*ldb+c])
								}
								if !close32(acc[x], want, k) {
									t.Fatalf("k=%d strips=%d cols=%d: acc[c%d s%d i%d] = %v, want %v", k, strips, cols, c, s, i, acc[x], want)
								}
							}
						}
					}
				}
			}
		}
	})
}

// BenchmarkGemmColsTail: MobileNetV2's 7×7 pointwise convs (49 columns
// read in place, Clip) with and without the column tail, one thread, and
// shapes either side of the colsTail/colsMinK limits (forced here).
func BenchmarkGemmColsTail(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, sz := range [][3]int{{960, 160, 49}, {160, 960, 49}, {1280, 320, 49}, {960, 160, 51}, {64, 32, 51}, {576, 96, 196}, {96, 384, 196}} {
		m, k, n := sz[0], sz[1], sz[2]
		ap := make([]float32, ASize(m, k))
		PackA(ap, randF(r, m*k), m, k, k, 1)
		x := randF(r, k*n)
		c := make([]float32, m*n)
		e := &Epi{Bias: randF(r, m), BiasOn: FlagBiasRow, Clamp: true, Hi: 6}
		for _, tail := range []int{0, colsMax, 2 * colsMax} {
			b.Run(fmt.Sprintf("%dx%dx%d/tail=%d", m, k, n, tail), func(b *testing.B) {
				defer forceColsTail(tail)()
				rate(b, float64(2*m*n*k), "GFLOP/s", func() { Gemm(k, ap, m, x, n, n, c, n, e, 0, 0) })
			})
		}
	}
}

// TestGemmNarrowOneBlock: Gemm runs outputs of at most 2·NR columns in one
// K block; its columns equal those of a wider (K-blocked) output over the
// same operands bit for bit on every variant but AVX2 (which adds block
// sums and so keeps the blocks: checked equal too), so results do not
// depend on the column chunking, which follows the thread count.
func TestGemmNarrowOneBlock(t *testing.T) {
	forEachVariant(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(25, 26))
		for _, k := range []int{KC + 1, 600} {
			for _, narrow := range []int{17, 49, 64} {
				const m, wide = 13, 100
				ap := make([]float32, ASize(m, k))
				PackA(ap, randF(r, m*k), m, k, k, 1)
				b := randF(r, k*wide)
				b[5*wide+3] = float32(math.NaN())
				bias := randF(r, m)
				e := &Epi{Bias: bias, BiasOn: FlagBiasRow, Clamp: true, Lo: -1, Hi: 1}
				cw := make([]float32, m*wide)
				Gemm(k, ap, m, b, wide, wide, cw, wide, e, 0, 0)
				cn := make([]float32, m*wide)
				Gemm(k, ap, m, b, wide, narrow, cn, wide, e, 0, 0)
				for i := 0; i < m; i++ {
					for j := 0; j < narrow; j++ {
						if math.Float32bits(cn[i*wide+j]) != math.Float32bits(cw[i*wide+j]) {
							t.Fatalf("k=%d n=%d: [%d][%d] = %v, %v in a %d-wide output", k, narrow, i, j, cn[i*wide+j], cw[i*wide+j], wide)
						}
					}
				}
			}
		}
	})
}
