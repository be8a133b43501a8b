package avx

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kilnml/kiln/kernels/pack"
)

// TestDepthwiseQ3x3 checks the in-place INT8 3×3 plane kernel against
// DepthwiseQ (the padded-copy path, bit-identical to kilnq) and against
// an int32 reference loop written here, on both variants: widths below,
// at and above 16 and 32 (one chunk's outputs and a stride-2 chunk's
// input bytes), strides 1 and 2, pads 0–2, int8/uint8 input and output codes (all four pairings) with zero
// points, clamp, bias, residual (with a NaN), a guard band after the
// output, and 1–3 channel planes per call.
func TestDepthwiseQ3x3(t *testing.T) {
	forEachQVariant(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(7, 9))
		for _, signs := range [][2]bool{{false, false}, {true, true}, {true, false}, {false, true}} {
			unsigned, yu := signs[0], signs[1]
			for _, s := range []int{1, 2} {
				for _, pad := range []int{1, 0, 2} {
					for _, w := range []int{1, 2, 3, 15, 16, 17, 31, 32, 33, 34, 47, 64, 65, 113} {
						for _, h := range []int{1, 2, 5, 9} {
							name := fmt.Sprintf("xu%v_yu%v_s%d_p%d_%dx%d", unsigned, yu, s, pad, h, w)
							checkQDW3x3(t, rng, name, unsigned, yu, s, pad, w, h)
						}
					}
				}
			}
		}
	})
}

func checkQDW3x3(t *testing.T, rng *rand.Rand, name string, unsigned, yu bool, s, pad, w, h int) {
	t.Helper()
	g := pack.Conv2D{C: 1, H: h, W: w, M: 1, KH: 3, KW: 3, SH: s, SW: s, DH: 1, DW: 1, PT: pad, PL: pad, Group: 1}
	g.OH = (h+2*pad-3)/s + 1
	g.OW = (w+2*pad-3)/s + 1
	if g.OH <= 0 || g.OW <= 0 {
		return
	}
	const guard = 37
	planes := 1 + rng.IntN(3) // one call runs them all
	hw, ohw := h*w, g.OH*g.OW
	x := make([]byte, planes*hw)
	for i := range x {
		x[i] = byte(rng.IntN(256))
	}
	wt := make([]int8, 9*planes)
	wf := make([]float32, 9*planes)
	for i := range wt {
		wt[i] = int8(rng.IntN(256) - 128)
		wf[i] = float32(wt[i])
	}
	xz, yz := int32(rng.IntN(256)-128), int32(rng.IntN(41)-20)
	if unsigned {
		xz = int32(rng.IntN(256))
	}
	if yu {
		yz = int32(rng.IntN(100) + 80)
	}
	bias := make([]float32, planes)
	scale := make([]float32, planes)
	for c := range planes {
		bias[c] = float32(rng.NormFloat64())
		scale[c] = 1e-3 * float32(1+rng.IntN(50))
	}
	resid := make([]float32, planes*ohw)
	for i := range resid {
		resid[i] = float32(rng.NormFloat64())
	}
	resid[len(resid)/2] = float32(math.NaN())
	tabs := make([]QDWTable, planes)
	for c := range planes {
		tabs[c] = NewQDWTable(wt[9*c:9*c+9], xz, unsigned, scale[c], bias[c])
	}
	for _, variant := range []struct {
		clamp, resid bool
	}{{false, false}, {true, false}, {true, true}, {false, true}} {
		e := Epi{Clamp: variant.clamp, Lo: 0, Hi: 6}
		var r []float32
		if variant.resid {
			r = resid
		}
		q := DWQuant{Quant: true, Unsigned: yu, YScale: 0.02, YZero: yz, XCodes: true, XUnsigned: unsigned, XZero: xz}
		got := make([]byte, planes*ohw+guard)
		for i := range got {
			got[i] = 0xA5
		}
		DepthwiseQ3x3(got[:planes*ohw], x, tabs, &g, &e, r, &q)
		for i := planes * ohw; i < len(got); i++ {
			if got[i] != 0xA5 {
				t.Fatalf("%s: guard byte %d overwritten", name, i-planes*ohw)
			}
		}
		for c := range planes {
			// the padded-copy path, one plane
			_, padLen := DWPadded(&g)
			want := make([]byte, ohw)
			e2 := e
			e2.BiasOn = FlagBiasRow // DepthwiseQ adds the bias argument only with this flag
			q2 := q
			q2.Scale = scale[c]
			var rc []float32
			if r != nil {
				rc = r[c*ohw : (c+1)*ohw]
			}
			DepthwiseQ(want, nil, x[c*hw:(c+1)*hw], nil, wf[9*c:9*c+9], make([]float32, padLen), &g, bias[c], &e2, rc, &q2)
			// an int32 reference written here
			for oh := 0; oh < g.OH; oh++ {
				for ow := 0; ow < g.OW; ow++ {
					var acc int32
					for i := 0; i < 3; i++ {
						for j := 0; j < 3; j++ {
							ih, iw := oh*s-pad+i, ow*s-pad+j
							if ih < 0 || ih >= h || iw < 0 || iw >= w {
								continue
							}
							v := x[c*hw+ih*w+iw]
							code := int32(int8(v))
							if unsigned {
								code = int32(v)
							}
							acc += int32(wt[9*c+3*i+j]) * (code - xz)
						}
					}
					y := float32(acc)*scale[c] + bias[c]
					if rc != nil {
						y += rc[oh*g.OW+ow]
					}
					if e.Clamp {
						y = min(max(y, e.Lo), e.Hi)
					}
					lo, hi := float64(-128), float64(127)
					if yu {
						lo, hi = 0, 255
					}
					v := float64(y / q.YScale)
					if v != v {
						v = lo - float64(yz)
					}
					code := math.Min(math.Max(math.RoundToEven(v)+float64(yz), lo), hi)
					ref := byte(int32(code))
					at := oh*g.OW + ow
					if got[c*ohw+at] != ref || want[at] != ref {
						t.Fatalf("%s plane %d/%d clamp=%v resid=%v: output (%d,%d) = %d, padded path %d, reference %d (acc %d)",
							name, c, planes, variant.clamp, variant.resid, oh, ow, got[c*ohw+at], want[at], ref, acc)
					}
				}
			}
		}
	}
}

// BenchmarkDepthwiseQ3x3 runs MobileNetV2's 3×3 depthwise plane shapes
// (int8 codes, clamp) through the in-place kernel and the padded-copy path.
func BenchmarkDepthwiseQ3x3(b *testing.B) {
	for _, c := range []struct{ hw, s int }{{112, 1}, {56, 1}, {28, 1}, {14, 1}, {7, 1}, {112, 2}, {56, 2}} {
		g := pack.Conv2D{C: 1, H: c.hw, W: c.hw, M: 1, KH: 3, KW: 3, SH: c.s, SW: c.s, DH: 1, DW: 1, PT: 1, PL: 1, Group: 1}
		g.OH, g.OW = (c.hw-1)/c.s+1, (c.hw-1)/c.s+1
		x := make([]byte, c.hw*c.hw)
		wt := []int8{1, -2, 3, -4, 5, -6, 7, -8, 9}
		wf := make([]float32, 9)
		for i, v := range wt {
			wf[i] = float32(v)
		}
		tabs := []QDWTable{NewQDWTable(wt, 3, false, 1e-3, 0.5)}
		out := make([]byte, g.OH*g.OW)
		e := Epi{Clamp: true, Lo: 0, Hi: 6, BiasOn: FlagBiasRow}
		q := DWQuant{Scale: 1e-3, Quant: true, YScale: 0.02, YZero: -5, XCodes: true, XZero: 3}
		_, padLen := DWPadded(&g)
		pad := make([]float32, padLen)
		b.Run(fmt.Sprintf("%dx%d_s%d/inplace", c.hw, c.hw, c.s), func(b *testing.B) {
			for b.Loop() {
				DepthwiseQ3x3(out, x, tabs, &g, &e, nil, &q)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*g.OH*((g.OW+15)/16)), "ns/chunk")
		})
		b.Run(fmt.Sprintf("%dx%d_s%d/padded", c.hw, c.hw, c.s), func(b *testing.B) {
			for b.Loop() {
				DepthwiseQ(out, nil, x, nil, wf, pad, &g, 0.5, &e, nil, &q)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*g.OH*((g.OW+15)/16)), "ns/chunk")
		})
	}
}

// TestDequantizeCodes checks every code at every length around the 16
// and 32 steps (with a guard band after dst) against the reference
// formula written here, for int8 and uint8 codes, zero points at and
// inside the range's ends, and scales including a subnormal, an overflow
// to Inf, Inf and NaN.
func TestDequantizeCodes(t *testing.T) {
	forEachQVariant(t, func(t *testing.T) {
		src := make([]byte, 300)
		for i := range src {
			src[i] = byte(i*7 + 3)
		}
		for _, unsigned := range []bool{false, true} {
			for _, zero := range []int32{-128, -3, 0, 127, 255} {
				if !unsigned && zero > 127 || unsigned && zero < 0 {
					continue
				}
				for _, scale := range []float32{0.0173, 1, 3e38, 1e-45, float32(math.Inf(1)), float32(math.NaN())} {
					for _, n := range []int{0, 1, 15, 16, 17, 31, 32, 33, 63, 64, 65, 256, 300} {
						dst := make([]float32, n+5)
						for i := range dst {
							dst[i] = -7
						}
						DequantizeCodes(dst[:n], src[:n], zero, scale, unsigned)
						for i := range dst {
							want := float32(-7)
							if i < n {
								c := int32(int8(src[i]))
								if unsigned {
									c = int32(src[i])
								}
								want = float32(c-zero) * scale
							}
							if math.Float32bits(dst[i]) != math.Float32bits(want) && !(want != want && dst[i] != dst[i]) {
								t.Fatalf("u=%v zero %d scale %g n %d: dst[%d] = %g, want %g", unsigned, zero, scale, n, i, dst[i], want)
							}
						}
					}
				}
			}
		}
	})
}
