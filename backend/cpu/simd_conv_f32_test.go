package cpu

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
)

// TestSimdConvOneRow: convs whose GEMM has one output row per group (one
// output channel, or one per group) and no bias take kernels/avx's one-row
// path (sgemv): with and without a residual and a clamp, at every variant
// and 1..4 threads, against the reference.
func TestSimdConvOneRow(t *testing.T) {
	r := rand.New(rand.NewPCG(51, 52))
	for i, c := range []convCase{
		{1, 5, 9, 11, 1, 3, 3, 1, 1, 1, 1, ""},   // one output channel
		{2, 4, 20, 20, 4, 3, 3, 1, 1, 1, 4, ""},  // one channel per group, 400 columns
		{1, 6, 10, 30, 3, 1, 1, 1, 0, 1, 3, ""},  // pointwise, groups of two input channels
		{1, 70, 12, 12, 1, 1, 1, 1, 0, 1, 1, ""}, // deep pointwise
	} {
		for _, resid := range []bool{false, true} {
			t.Run(fmt.Sprint(i, resid), func(t *testing.T) {
				x := randF32(r, c.n, c.c, c.h, c.w)
				w := randF32(r, c.m, c.c/c.group, c.kh, c.kw)
				y0 := reference(t, convNode("", "Conv", c, 2), []*ir.Tensor{x, w})
				attrs := []*ir.Attribute{aStr("activation", "Clip"), aFloat("act_alpha", -0.5), aFloat("act_beta", 0.7)}
				in := []*ir.Tensor{x, w}
				consts := []bool{false, true}
				nIn := 2
				if resid {
					in = append(in, nil, randF32(r, y0.Dims...))
					consts = append(consts, false, false)
					nIn = 4
				}
				n := convNode("kiln", "Conv", c, nIn, attrs...)
				if resid {
					n.Inputs[2] = ""
				}
				want := reference(t, n, in)
				l := layer(n, in, consts, want, engine.FP32)
				everySimdTactic(t, l, in, func(name string, got *ir.Tensor) { closeF32(t, name, got, want, 1e-5) })
			})
		}
	}
}
