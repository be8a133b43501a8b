package avx

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kilnml/kiln/kernels/pack"
)

const guard = 37 // guard band around outputs: must stay untouched

func forEachVariant(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	saved := Variant
	defer func() { Variant = saved }()
	for _, v := range Variants() {
		Variant = v
		t.Run([]string{"generic", "avx512", "avx2"}[v], f)
	}
}

func randF(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

// refTile is the float64 reference of Micro.
func refTile(k int, a, b []float32, ldb, mr, nr int, tl *Tile, resid []float32, ldc int) []float64 {
	out := make([]float64, mr*nr)
	for i := 0; i < mr; i++ {
		for j := 0; j < nr; j++ {
			var s float64
			for p := 0; p < k; p++ {
				s += float64(a[p*MR+i]) * float64(b[p*ldb+j])
			}
			y := float64(float32(s))
			if tl.Flags&FlagBiasRow != 0 {
				y += float64(tl.Bias[i])
			}
			if tl.Flags&FlagBiasCol != 0 {
				y += float64(tl.Bias[j])
			}
			if tl.Flags&FlagResid != 0 {
				y += float64(resid[i*ldc+j])
			}
			if tl.Flags&FlagClamp != 0 && !math.IsNaN(y) {
				y = math.Min(math.Max(y, float64(tl.Lo)), float64(tl.Hi))
			}
			out[i*nr+j] = y
		}
	}
	return out
}

func close32(got float32, want float64, k int) bool {
	if math.IsNaN(want) {
		return got != got
	}
	if math.IsInf(want, 0) {
		return float64(got) == want
	}
	return math.Abs(float64(got)-want) <= 1e-5*float64(k+4)*(1+math.Abs(want))
}

func TestMicro(t *testing.T) {
	forEachVariant(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(1, 2))
		for _, k := range []int{0, 1, 2, 7, 64, 129} {
			for _, mr := range []int{1, 3, 7, 8} {
				for _, nr := range []int{1, 15, 16, 17, 31, 32} {
					for _, flags := range []int{0, FlagBiasRow | FlagResid | FlagClamp, FlagBiasCol | FlagClamp, FlagBiasCol | FlagResid} {
						for _, ldb := range []int{NR, 45} {
							if ldb < nr {
								continue
							}
							a := randF(r, k*MR)
							b := randF(r, max(k*ldb, 1))
							if k > 3 {
								a[3] = float32(math.NaN())
								b[2*ldb+1] = float32(math.Inf(1))
							}
							ldc := nr + 5
							c := make([]float32, guard+mr*ldc+guard)
							for i := range c {
								c[i] = 12345
							}
							tl := &Tile{Bias: randF(r, 32), Lo: 0, Hi: 1.5, Flags: flags}
							resid := randF(r, mr*ldc)
							tl.Resid = resid
							Micro(k, a, b, ldb, c[guard:], ldc, mr, nr, tl)
							want := refTile(k, a, b, ldb, mr, nr, tl, resid, ldc)
							for i := range c {
								ii, j := (i-guard)/ldc, (i-guard)%ldc
								if i < guard || ii >= mr || j >= nr {
									if c[i] != 12345 {
										t.Fatalf("k%d %dx%d flags %d: wrote outside the tile at %d", k, mr, nr, flags, i-guard)
									}
									continue
								}
								if !close32(c[i], want[ii*nr+j], k) {
									t.Fatalf("k%d %dx%d flags %d ldb %d: [%d][%d] = %v, want %v", k, mr, nr, flags, ldb, ii, j, c[i], want[ii*nr+j])
								}
							}
						}
					}
				}
			}
		}
	})
}

// TestIm2colMatchesPack checks every im2col path (stride-1 runs, planned
// or not, tap tables, row-run copies) and micro-kernel variant against pack.Im2col,
// bit for bit (NaN and Inf inputs included).
func TestIm2colMatchesPack(t *testing.T) {
	geoms := []pack.Conv2D{
		{C: 3, H: 9, W: 11, M: 4, KH: 3, KW: 3, SH: 1, SW: 1, DH: 1, DW: 1, PT: 1, PL: 1, Group: 1},
		{C: 4, H: 10, W: 7, M: 4, KH: 3, KW: 2, SH: 2, SW: 3, DH: 1, DW: 2, PT: 0, PL: 2, Group: 2},
		{C: 2, H: 5, W: 40, M: 2, KH: 1, KW: 5, SH: 1, SW: 1, DH: 1, DW: 1, PT: 0, PL: 2, Group: 1},
		{C: 1, H: 3, W: 3, M: 1, KH: 7, KW: 7, SH: 1, SW: 1, DH: 1, DW: 1, PT: 3, PL: 3, Group: 1},
		{C: 5, H: 8, W: 7, M: 6, KH: 3, KW: 2, SH: 1, SW: 1, DH: 2, DW: 2, PT: 2, PL: 2, Group: 1},  // runs of one column in the padding
		{C: 3, H: 6, W: 70, M: 2, KH: 3, KW: 3, SH: 1, SW: 1, DH: 1, DW: 1, PT: 1, PL: 1, Group: 1}, // rows wider than a strip
		{C: 2, H: 9, W: 33, M: 2, KH: 3, KW: 3, SH: 2, SW: 1, DH: 1, DW: 1, PT: 1, PL: 0, Group: 1}, // row stride 2, col stride 1
		{C: 2, H: 9, W: 75, M: 2, KH: 3, KW: 3, SH: 2, SW: 2, DH: 1, DW: 1, PT: 1, PL: 1, Group: 1}, // stride 2, OW ≥ NR: row-run copies
		{C: 4, H: 28, W: 28, M: 2, KH: 1, KW: 1, SH: 1, SW: 1, DH: 1, DW: 1, Group: 1},              // 1×1
		{C: 1, H: 2, W: 1, M: 1, KH: 1, KW: 1, SH: 1, SW: 1, DH: 1, DW: 1, Group: 1},                // one column per row
		// Row stride 2 (im2colSegsS2): a MobileNetV2 stem with rows shorter than a
		// strip, a ResNet stem, a strided 1×1, the last input of the plane read
		// (no pad, odd width), 32 and 33 outputs per row, dilation.
		{C: 3, H: 40, W: 40, M: 2, KH: 3, KW: 3, SH: 2, SW: 2, DH: 1, DW: 1, PT: 1, PL: 1, Group: 1},
		{C: 3, H: 37, W: 37, M: 2, KH: 7, KW: 7, SH: 2, SW: 2, DH: 1, DW: 1, PT: 3, PL: 3, Group: 1},
		{C: 4, H: 14, W: 14, M: 2, KH: 1, KW: 1, SH: 2, SW: 2, DH: 1, DW: 1, Group: 1},
		{C: 2, H: 9, W: 13, M: 2, KH: 3, KW: 3, SH: 2, SW: 2, DH: 1, DW: 1, Group: 1},
		{C: 2, H: 5, W: 64, M: 2, KH: 3, KW: 3, SH: 2, SW: 2, DH: 1, DW: 1, PT: 1, PL: 1, Group: 1},
		{C: 2, H: 5, W: 65, M: 2, KH: 3, KW: 3, SH: 1, SW: 2, DH: 1, DW: 1, PT: 1, PL: 1, Group: 2},
		{C: 2, H: 9, W: 50, M: 2, KH: 3, KW: 3, SH: 2, SW: 2, DH: 2, DW: 2, PT: 2, PL: 1, Group: 1},
	}
	forEachVariant(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(3, 4))
		for gi, g := range geoms {
			g.OH = (g.H+2*g.PT-(g.KH-1)*g.DH-1)/g.SH + 1
			g.OW = (g.W+2*g.PL-(g.KW-1)*g.DW-1)/g.SW + 1
			x := randF(r, g.C*g.H*g.W)
			x[0], x[len(x)/2], x[len(x)-1] = float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))
			ohw := g.OH * g.OW
			for grp := 0; grp < g.Group; grp++ {
				for _, j0 := range []int{0, 3, ohw - 1} {
					if j0 >= ohw {
						continue
					}
					n := ohw - j0
					k := g.K()
					want := make([]float32, BSize(k, n))
					got := make([]float32, BSize(k, n)+guard)
					for i := range got {
						got[i] = 42
					}
					pack.Im2col(want, x, (*[256]float32)(nil), &g, grp, j0, n, NR)
					if p := NewRunPlan(&g); p != nil && j0%NR == 0 && grp == g.Group-1 {
						Im2colPlanned(got[:len(want)], x, p, grp, j0, n) // the planned runs, on one group
					} else {
						Im2col(got[:len(want)], x, &g, grp, j0, n)
					}
					for i := range want {
						if (i/k/NR)*NR+i%NR >= n {
							continue // columns past n are not read
						}
						if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
							t.Fatalf("geometry %d group %d j0 %d: element %d = %v, want %v", gi, grp, j0, i, got[i], want[i])
						}
					}
					for i := len(want); i < len(got); i++ {
						if got[i] != 42 {
							t.Fatalf("geometry %d: guard band written at %d", gi, i-len(want))
						}
					}
				}
			}
		}
	})
}

func TestGemm(t *testing.T) {
	forEachVariant(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(5, 6))
		for _, sz := range [][3]int{{1, 1, 1}, {7, 5, 33}, {8, 32, 32}, {9, 31, 65}, {17, 100, 50}, {9, 600, 45}} {
			m, k, n := sz[0], sz[1], sz[2]
			a := randF(r, m*k)
			b := randF(r, k*n)
			ap := make([]float32, ASize(m, k))
			PackA(ap, a, m, k, k, 1)
			bp := make([]float32, BSize(k, n))
			pack.B(bp, b, (*[256]float32)(nil), k, n, n, 1, NR)
			bias := randF(r, m)
			for _, direct := range []bool{false, true} {
				c := make([]float32, m*n)
				e := &Epi{Bias: bias, BiasOn: FlagBiasRow, Act: func(y float32) float32 { return y * 2 }}
				if direct {
					Gemm(k, ap, m, b, n, n, c, n, e, 0, 0)
				} else {
					Gemm(k, ap, m, bp, 0, n, c, n, e, 0, 0)
				}
				for i := 0; i < m; i++ {
					for j := 0; j < n; j++ {
						var s float64
						for p := 0; p < k; p++ {
							s += float64(a[i*k+p]) * float64(b[p*n+j])
						}
						want := 2 * (s + float64(bias[i]))
						if !close32(c[i*n+j], want, k) {
							t.Fatalf("%v direct %v: [%d][%d] = %v, want %v", sz, direct, i, j, c[i*n+j], want)
						}
					}
				}
			}
		}
	})
}

// TestGemv: one-row products (the sgemv path of Gemm) with column bias,
// residual (at a row offset), clamp and NaN, against float64 sums and, on
// AVX-512, bit for bit against the 8×32 micro-kernel on the same operands.
func TestGemv(t *testing.T) {
	forEachVariant(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(9, 10))
		for _, sz := range [][2]int{{1, 1}, {7, 31}, {32, 32}, {300, 33}, {5, 128}, {64, 129}, {20, 300}} {
			k, n := sz[0], sz[1]
			const r0, ldc = 2, 400
			a := randF(r, k)
			a[k/2] = float32(math.NaN())
			b := randF(r, k*n)
			ap := make([]float32, ASize(1, k))
			PackA(ap, a, 1, k, k, 1)
			bp := make([]float32, BSize(k, n))
			pack.B(bp, b, (*[256]float32)(nil), k, n, n, 1, NR)
			bias, resid := randF(r, n+3), randF(r, (r0+1)*ldc)
			c := make([]float32, n+guard)
			for i := range c {
				c[i] = 42
			}
			e := &Epi{Bias: bias, BiasOn: FlagBiasCol, Resid: resid, Clamp: true, Lo: -0.5, Hi: 1.5}
			Gemm(k, ap, 1, bp, 0, n, c[:n], ldc, e, r0, 3)
			for j := 0; j < n; j++ {
				var s float64
				for p := 0; p < k; p++ {
					s += float64(a[p]) * float64(b[p*n+j])
				}
				want := s + float64(bias[3+j]) + float64(resid[r0*ldc+3+j])
				if !math.IsNaN(want) {
					want = math.Min(math.Max(want, -0.5), 1.5)
				}
				if !close32(c[j], want, k) {
					t.Fatalf("k=%d n=%d: c[%d] = %v, want %v", k, n, j, c[j], want)
				}
				if Variant == VariantAVX512 { // same FMA order as the micro-kernel
					var tile [NR]float32
					tl := &Tile{Bias: bias[3+j/NR*NR:], Resid: resid[r0*ldc+3+j/NR*NR:], Lo: -0.5, Hi: 1.5, Flags: FlagBiasCol | FlagResid | FlagClamp}
					Micro(k, ap, bp[j/NR*NR*k:], NR, tile[:], NR, 1, min(NR, n-j/NR*NR), tl)
					if math.Float32bits(tile[j%NR]) != math.Float32bits(c[j]) {
						t.Fatalf("k=%d n=%d: c[%d] = %v, micro-kernel %v", k, n, j, c[j], tile[j%NR])
					}
				}
			}
			for i := n; i < len(c); i++ {
				if c[i] != 42 {
					t.Fatalf("k=%d n=%d: guard band written at %d", k, n, i-n)
				}
			}
		}
	})
}
