package winograd

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/kilnml/kiln/kernels/avx"
)

// TestProgramsMatchMatrices: each 1-D program applied to the unit vectors
// gives the columns of its matrix (Bᵀ, Aᵀ) exactly (small integers), so the
// programs compute Lavin & Gray's transforms.
func TestProgramsMatchMatrices(t *testing.T) {
	var s [32][Lanes]float32
	for _, k := range []Kind{F2, F4} {
		_, bt, at := Matrices(k)
		for _, c := range []struct {
			p   *program
			mat [][]float64
		}{{inputProgram(k), bt}, {outputProgram(k), at}} {
			for j := 0; j < c.p.in; j++ {
				in := make([]*[Lanes]float32, c.p.in)
				for i := range in {
					in[i] = new([Lanes]float32)
				}
				in[j][0] = 1
				out := make([]*[Lanes]float32, len(c.p.outs))
				for i := range out {
					out[i] = new([Lanes]float32)
				}
				c.p.run(s[:], in, out)
				for i := range out {
					if float64(out[i][0]) != c.mat[i][j] {
						t.Fatalf("%v: row %d column %d: %v, want %v", k, i, j, out[i][0], c.mat[i][j])
					}
				}
			}
		}
	}
}

// TestWeightTransform: U = G·g·Gᵀ in float64, rounded once, packed.
func TestWeightTransform(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, k := range []Kind{F2, F4} {
		m, c := 11, 5
		w := make([]float32, m*c*9)
		for i := range w {
			w[i] = float32(r.NormFloat64())
		}
		packed := PackWeights(k, w, m, c)
		if len(packed) != WeightsSize(k, m, c) {
			t.Fatalf("%v: %d packed, want %d", k, len(packed), WeightsSize(k, m, c))
		}
		g, _, _ := Matrices(k)
		tt := k.T()
		sz := avx.ASize(m, c)
		for xi := 0; xi < tt; xi++ {
			for nu := 0; nu < tt; nu++ {
				for o := 0; o < m; o++ {
					for ci := 0; ci < c; ci++ {
						var u float64
						for p := 0; p < 3; p++ {
							for q := 0; q < 3; q++ {
								u += g[xi][p] * float64(w[(o*c+ci)*9+p*3+q]) * g[nu][q]
							}
						}
						// packed A: strip o/MR, element (ci, o%MR)
						got := packed[(xi*tt+nu)*sz+(o/avx.MR)*avx.MR*c+ci*avx.MR+o%avx.MR]
						if math.Abs(float64(got)-u) > 1e-6*math.Max(1, math.Abs(u)) {
							t.Fatalf("%v: U[%d][%d] of (%d,%d) = %v, want %v", k, xi, nu, o, ci, got, u)
						}
					}
				}
			}
		}
	}
}

func randSlice(r *rand.Rand, n int, specials bool) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	if specials && n > 8 {
		s[r.IntN(n)] = float32(math.NaN())
		s[r.IntN(n)] = float32(math.Inf(1))
		s[r.IntN(n)] = float32(math.Inf(-1))
	}
	return s
}

// TestAsmMatchesGeneric: the AVX-512 transforms equal their Go twins bit
// for bit (NaN and Inf inputs included), write nothing outside the lanes'
// slots and stored outputs, and read nothing the masks exclude (guard
// bands of NaN around the input would show up in the results).
func TestAsmMatchesGeneric(t *testing.T) {
	if !slices.Contains(avx.Variants(), avx.VariantAVX512) || !hasAsm {
		t.Skip("no AVX-512 kernels on this CPU or build")
	}
	saved := avx.Variant
	defer func() { avx.Variant = saved }()
	r := rand.New(rand.NewPCG(3, 4))
	const guard = 64
	for _, k := range []Kind{F2, F4} {
		for _, g := range []Geometry{
			{N: 1, C: 3, H: 7, W: 6, M: 5, OH: 7, OW: 6, PT: 1, PL: 1},
			{N: 2, C: 2, H: 13, W: 13, M: 9, OH: 11, OW: 11},
			{N: 2, C: 2, H: 13, W: 13, M: 9, OH: 11, OW: 11, Pool: true},
			{N: 3, C: 1, H: 9, W: 10, M: 3, OH: 9, OW: 10, PT: 1, PL: 1, Pool: true},
		} {
			p, err := NewPlan(k, g)
			if err != nil {
				t.Fatal(err)
			}
			tt := k.T()
			name := fmt.Sprintf("%v %+v", k, g)
			nx := g.N * g.C * g.H * g.W
			xbuf := make([]float32, nx+2*guard)
			for i := range xbuf {
				xbuf[i] = float32(math.NaN())
			}
			copy(xbuf[guard:], randSlice(r, nx, true))
			x := xbuf[guard : guard+nx]
			vstride := g.C*StripWidth + 8
			for grp := 0; grp < p.Groups; grp++ {
				var vs [2][]float32
				for vi, v := range []int{avx.VariantGeneric, avx.VariantAVX512} {
					avx.Variant = v
					vs[vi] = make([]float32, tt*tt*vstride+guard)
					for i := range vs[vi] {
						vs[vi][i] = -7
					}
					Input(p, vs[vi], vstride, x, grp)
				}
				sameFloats(t, name+" input", vs[1], vs[0])
			}
			rows := g.M
			ldm := 2 * Lanes
			mstride := rows*ldm + 3
			mb := randSlice(r, tt*tt*mstride, true)
			bias := randSlice(r, g.M, false)
			ny := g.N * g.M * p.YHW
			resid := randSlice(r, ny, false)
			for _, flags := range []int{0, FlagBias, FlagBias | FlagClamp, FlagBias | FlagResid | FlagClamp, FlagResid} {
				if g.Pool && flags&FlagResid != 0 {
					continue
				}
				e := &Epi{Bias: bias, Resid: resid, Lo: -0.5, Hi: 0.75, Flags: flags}
				var ys [2][]float32
				for vi, v := range []int{avx.VariantGeneric, avx.VariantAVX512} {
					avx.Variant = v
					ys[vi] = make([]float32, ny)
					for i := range ys[vi] {
						ys[vi][i] = 99
					}
					for grp := 0; grp < p.Groups; grp++ {
						ch0 := grp % 3 // several channel ranges
						Output(p, ys[vi], ch0, rows-ch0, mb[grp%2*Lanes:], mstride, ldm, grp, e)
					}
				}
				sameFloats(t, fmt.Sprintf("%s output flags %d", name, flags), ys[1], ys[0])
			}
		}
	}
}

func sameFloats(t *testing.T, what string, got, want []float32) {
	t.Helper()
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) && !(got[i] != got[i] && want[i] != want[i]) {
			t.Fatalf("%s: element %d: %v, want %v", what, i, got[i], want[i])
		}
	}
}
