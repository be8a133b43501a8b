package avx

import (
	"math"
	"unsafe"

	"github.com/kilnml/kiln/kernels/pack"
)

// INT8 3×3 depthwise planes read in place from 8-bit codes: no padded
// float copy of the plane (DepthwiseQ's padCodes) and one call per plane
// instead of one per row. Padding reads as x_zero (contributing zero).

// QDW3x3Supported says whether DepthwiseQ3x3 handles the geometry: a 3×3
// kernel, no dilation, the same stride (1 or 2) in both directions, begin
// pads 0 to 2.
func QDW3x3Supported(g *pack.Conv2D) bool {
	return g.KH == 3 && g.KW == 3 && g.DH == 1 && g.DW == 1 && (g.SW == 1 || g.SW == 2) && g.SH == g.SW &&
		g.PT >= 0 && g.PT <= 2 && g.PL >= 0 && g.PL <= 2
}

// QDWTable is one channel's table for DepthwiseQ3x3: each kernel row's
// three int8 taps as the low bytes of a little-endian word (VPDPBUSD's
// signed operand), then, with u the zero point's code as uint8 (int8 codes
// + 128), u·Σ of each kernel row's taps (a row outside the plane adds it),
// then −u·Σ of all taps (the accumulator's start).
type QDWTable [8]int32

// NewQDWTable builds a channel's table from its taps (kh, kw order) and
// the input zero point (uint8 codes with unsigned, else int8).
func NewQDWTable(w []int8, xZero int32, unsigned bool) QDWTable {
	var t QDWTable
	u := xZero
	if !unsigned {
		u += 128
	}
	var all int32
	for kh := range 3 {
		var row int32
		for kw := range 3 {
			v := w[kh*3+kw]
			t[kh] |= int32(uint32(uint8(v)) << (8 * kw))
			row += int32(v)
		}
		t[3+kh] = u * row
		all += row
	}
	t[6] = -u * all
	return t
}

// qdwEpi is the assembly's epilogue block (field order is its layout).
type qdwEpi struct {
	scale, bias, lo, hi, ys, qlo, qhi float32
	yz, xz                            int32
	flip                              uint32 // 0x80808080 for int8 codes (to uint8), else 0
}

// DepthwiseQ3x3 is DepthwiseQ for a 3×3 kernel (QDW3x3Supported) with
// code output (q.Quant) and no Go activation (e.Act nil), reading the
// codes x (H×W, int8 or with q.XUnsigned uint8, zero point q.XZero) in
// place: out gets OH×OW codes bit-identical to DepthwiseQ's (and kilnq's).
// tab is the channel's NewQDWTable, bias the channel's float bias (0 for
// none), resid the channel's residual plane or nil.
func DepthwiseQ3x3(out, x []byte, tab *QDWTable, g *pack.Conv2D, bias float32, e *Epi, resid []float32, q *DWQuant) {
	if !QDW3x3Supported(g) || !q.Quant || e.Act != nil {
		panic("avx.DepthwiseQ3x3: unsupported geometry or epilogue")
	}
	if g.OH <= 0 || g.OW <= 0 {
		return
	}
	_, _ = x[g.H*g.W-1], out[g.OH*g.OW-1]
	var rp *float32
	if resid != nil {
		rp = &resid[:g.OH*g.OW][0]
	}
	p := qdwEpi{scale: q.Scale, bias: bias, lo: float32(math.Inf(-1)), hi: float32(math.Inf(1)), ys: q.YScale, yz: q.YZero, xz: q.XZero}
	if !q.XUnsigned {
		p.flip = 0x80808080
	}
	if e.Clamp {
		p.lo, p.hi = e.Lo, e.Hi
	}
	lo, hi := float32(-128), float32(127)
	if q.Unsigned {
		lo, hi = 0, 255
	}
	p.qlo, p.qhi = lo-float32(q.YZero), hi-float32(q.YZero)
	qdw3x3(&x[0], g.W, g.H, &tab[0], &out[0], g.OW, g.OH, g.PT, g.PL, g.SW, rp, &p, q.XUnsigned, q.Unsigned)
}

// qdw3x3Generic is the portable twin of the plane kernel, the reference
// loop (code(v): int8 or, with xu, uint8; saturate: to int8 or, with yu,
// uint8; NaN → the low bound):
//
//	for oh < rows, ow < n:
//		acc := Σ_{i<3, j<3} int8(byte j of tab[i])·(code(x[ih][iw]) − xz), ih = oh·s − pt + i, iw = ow·s − pl + j,
//		       positions outside the plane contribute 0 (int32, exact in float32)
//		v := clamp(float32(acc)·scale + bias + resid[oh·n+ow], lo, hi) / ys
//		out[oh·n+ow] = saturate(roundHalfEven(clamp(v, qlo, qhi)) + yz)
func qdw3x3Generic(x *byte, w, h int, tab *int32, out *byte, n, rows, pt, pl, s int, resid *float32, p *qdwEpi, xu, yu bool) {
	xs := unsafe.Slice(x, w*h)
	ts := unsafe.Slice(tab, 3)
	os := unsafe.Slice(out, n*rows)
	var rs []float32
	if resid != nil {
		rs = unsafe.Slice(resid, n*rows)
	}
	for oh := 0; oh < rows; oh++ {
		for ow := 0; ow < n; ow++ {
			var acc int32
			for i := 0; i < 3; i++ {
				for j := 0; j < 3; j++ {
					ih, iw := oh*s-pt+i, ow*s-pl+j
					if ih < 0 || ih >= h || iw < 0 || iw >= w {
						continue
					}
					c := int32(int8(xs[ih*w+iw]))
					if xu {
						c = int32(xs[ih*w+iw])
					}
					acc += int32(int8(ts[i]>>(8*j))) * (c - p.xz)
				}
			}
			y := float32(acc)*p.scale + p.bias
			if rs != nil {
				y += rs[oh*n+ow]
			}
			if y < p.lo {
				y = p.lo
			}
			if y > p.hi {
				y = p.hi
			}
			v := y / p.ys
			if !(v >= p.qlo) {
				v = p.qlo
			}
			v = min(v, p.qhi)
			os[oh*n+ow] = byte(int32(math.RoundToEven(float64(v))) + p.yz)
		}
	}
}
