package avx

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kilnml/kiln/kernels/pack"
)

// TestDepthwiseWidths: output rows of every length class of the row kernel
// (1 to 4 zmm per call, several calls per row) at strides 1 and 2, with
// bias, residual, clamp and a NaN input, against a float64 reference.
func TestDepthwiseWidths(t *testing.T) {
	forEachVariant(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(11, 12))
		for _, w := range []int{1, 5, 16, 17, 33, 48, 50, 64, 65, 100, 130} {
			for _, s := range []int{1, 2} {
				g := pack.Conv2D{C: 1, H: 4, W: w, M: 1, KH: 3, KW: 3, SH: s, SW: s, DH: 1, DW: 1, PT: 1, PL: 1, Group: 1}
				g.OH = (g.H+2-3)/s + 1
				g.OW = (g.W+2-3)/s + 1
				x, wt := randF(r, g.H*g.W), randF(r, 9)
				x[g.W/2] = float32(math.NaN())
				resid := randF(r, g.OH*g.OW)
				_, size := DWPadded(&g)
				pad := make([]float32, size)
				for i := range pad {
					pad[i] = float32(math.NaN()) // scratch from an earlier plane: the borders must be zeroed
				}
				out := make([]float32, g.OH*g.OW+guard)
				for i := range out {
					out[i] = 42
				}
				e := &Epi{BiasOn: FlagBiasRow, Clamp: true, Lo: -1, Hi: 1}
				Depthwise(out[:g.OH*g.OW], x, wt, pad, &g, 0.25, e, resid)
				for oh := 0; oh < g.OH; oh++ {
					for ow := 0; ow < g.OW; ow++ {
						var acc float64
						for i := 0; i < 3; i++ {
							for j := 0; j < 3; j++ {
								ih, iw := oh*s-1+i, ow*s-1+j
								if ih >= 0 && ih < g.H && iw >= 0 && iw < g.W {
									acc += float64(wt[i*3+j]) * float64(x[ih*g.W+iw])
								}
							}
						}
						want := acc + 0.25 + float64(resid[oh*g.OW+ow])
						if !math.IsNaN(want) {
							want = math.Min(math.Max(want, -1), 1)
						}
						if got := out[oh*g.OW+ow]; !close32(got, want, 9) {
							t.Fatalf("w=%d s=%d: y[%d][%d] = %v, want %v", w, s, oh, ow, got, want)
						}
					}
				}
				for i := g.OH * g.OW; i < len(out); i++ {
					if out[i] != 42 {
						t.Fatalf("w=%d s=%d: guard band written", w, s)
					}
				}
			}
		}
	})
}
