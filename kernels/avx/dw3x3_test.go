package avx

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kilnml/kiln/kernels/pack"
)

// dw3x3Tol is the float64 reference's tolerance in ulps (nine products and
// three epilogue adds, each rounded once).
const dw3x3Tol = 12

// TestDepthwise3x3: widths around the 16-output chunk and odd heights (the
// four-row step and its single-row tail), strides 1 and 2, begin pads 0 to
// 2, several planes per call with and without bias, residual and clamp,
// NaN/Inf inputs and an Inf tap: every output equals Depthwise's (the padded
// copy) bit for bit and a float64 reference within dw3x3Tol, and nothing
// past the planes is written.
func TestDepthwise3x3(t *testing.T) {
	forEachVariant(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(3, 3))
		widths := []int{1, 2, 3, 7, 15, 16, 17, 31, 32, 33, 47, 63, 64, 65, 100, 112, 113}
		for _, w := range widths {
			for _, h := range []int{1, 2, 3, 5, 7, 9, 12} {
				for _, s := range []int{1, 2} {
					for pad := 0; pad <= 2; pad++ {
						checkDW3x3(t, rng, s, pad, (pad+rng.IntN(3))%3, w, h)
					}
				}
			}
		}
	})
}

func checkDW3x3(t *testing.T, rng *rand.Rand, s, pt, pl, w, h int) {
	t.Helper()
	g := pack.Conv2D{C: 1, H: h, W: w, M: 1, KH: 3, KW: 3, SH: s, SW: s, DH: 1, DW: 1, PT: pt, PL: pl, Group: 1}
	g.OH = (h+2*pt-3)/s + 1
	g.OW = (w+2*pl-3)/s + 1
	if h+2*pt < 3 || w+2*pl < 3 {
		return
	}
	planes := 1 + rng.IntN(4)
	hw, ohw := h*w, g.OH*g.OW
	x, wt := randF(rng, planes*hw), randF(rng, planes*9)
	special := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))}
	if rng.IntN(2) == 0 {
		x[rng.IntN(len(x))] = special[rng.IntN(3)]
	}
	if rng.IntN(8) == 0 {
		wt[rng.IntN(len(wt))] = float32(math.Inf(1)) // Inf·padding = NaN, as in the padded copy
	}
	var bias, resid []float32
	e := &Epi{}
	if rng.IntN(2) == 0 {
		bias = randF(rng, planes)
		e.BiasOn = FlagBiasRow
	}
	if rng.IntN(2) == 0 {
		resid = randF(rng, planes*ohw)
	}
	if rng.IntN(2) == 0 {
		e.Clamp, e.Lo, e.Hi = true, 0, 6
	}
	out := make([]float32, planes*ohw+guard)
	for i := range out {
		out[i] = 42
	}
	Depthwise3x3(out[:planes*ohw], x, wt, bias, &g, e, resid, planes)
	_, size := DWPadded(&g)
	pad := make([]float32, size)
	want := make([]float32, ohw)
	for q := range planes {
		var b float32
		if bias != nil {
			b = bias[q]
		}
		var rq []float32
		if resid != nil {
			rq = resid[q*ohw : (q+1)*ohw]
		}
		Depthwise(want, x[q*hw:(q+1)*hw], wt[9*q:9*q+9], pad, &g, b, e, rq)
		for oh := 0; oh < g.OH; oh++ {
			for ow := 0; ow < g.OW; ow++ {
				got, ref := out[q*ohw+oh*g.OW+ow], want[oh*g.OW+ow]
				if math.Float32bits(got) != math.Float32bits(ref) && !(got != got && ref != ref) {
					t.Fatalf("s=%d pt=%d pl=%d %dx%d plane %d: y[%d][%d] = %v, Depthwise gives %v", s, pt, pl, h, w, q, oh, ow, got, ref)
				}
				var acc float64
				for i := 0; i < 3; i++ {
					for j := 0; j < 3; j++ {
						ih, iw := oh*s-pt+i, ow*s-pl+j
						v := 0.0
						if ih >= 0 && ih < h && iw >= 0 && iw < w {
							v = float64(x[q*hw+ih*w+iw])
						}
						acc += float64(wt[9*q+3*i+j]) * v
					}
				}
				acc += float64(b)
				if rq != nil {
					acc += float64(rq[oh*g.OW+ow])
				}
				if e.Clamp && !math.IsNaN(acc) {
					acc = math.Min(math.Max(acc, 0), 6)
				}
				if !close32(got, acc, dw3x3Tol) {
					t.Fatalf("s=%d pt=%d pl=%d %dx%d plane %d: y[%d][%d] = %v, want %v", s, pt, pl, h, w, q, oh, ow, got, acc)
				}
			}
		}
	}
	for i := planes * ohw; i < len(out); i++ {
		if out[i] != 42 {
			t.Fatalf("s=%d pt=%d pl=%d %dx%d: guard band written", s, pt, pl, h, w)
		}
	}
}

// BenchmarkDepthwise3x3 runs MobileNetV2's FP32 3×3 depthwise plane shapes
// (bias, Relu6 clamp; 4 planes per call) through the in-place kernel and the
// padded-copy path (one Depthwise per plane), in ns per 16 outputs.
func BenchmarkDepthwise3x3(b *testing.B) {
	const planes = 4
	for _, c := range []struct{ hw, s int }{{112, 1}, {56, 1}, {28, 1}, {14, 1}, {7, 1}, {112, 2}, {56, 2}} {
		g := pack.Conv2D{C: 1, H: c.hw, W: c.hw, M: 1, KH: 3, KW: 3, SH: c.s, SW: c.s, DH: 1, DW: 1, PT: 1, PL: 1, Group: 1}
		g.OH, g.OW = (c.hw-1)/c.s+1, (c.hw-1)/c.s+1
		rng := rand.New(rand.NewPCG(1, 2))
		hw, ohw := c.hw*c.hw, g.OH*g.OW
		x, wt, bias := randF(rng, planes*hw), randF(rng, planes*9), randF(rng, planes)
		out := make([]float32, planes*ohw)
		e := Epi{Clamp: true, Lo: 0, Hi: 6, BiasOn: FlagBiasRow}
		_, padLen := DWPadded(&g)
		pad := make([]float32, padLen)
		chunks := float64(planes * g.OH * ((g.OW + 15) / 16))
		b.Run(fmt.Sprintf("%dx%d_s%d/inplace", c.hw, c.hw, c.s), func(b *testing.B) {
			for b.Loop() {
				Depthwise3x3(out, x, wt, bias, &g, &e, nil, planes)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/(float64(b.N)*chunks), "ns/chunk")
		})
		b.Run(fmt.Sprintf("%dx%d_s%d/padded", c.hw, c.hw, c.s), func(b *testing.B) {
			for b.Loop() {
				for q := range planes {
					Depthwise(out[q*ohw:(q+1)*ohw], x[q*hw:(q+1)*hw], wt[9*q:9*q+9], pad, &g, bias[q], &e, nil)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/(float64(b.N)*chunks), "ns/chunk")
		})
	}
}
