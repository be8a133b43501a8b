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
// then −u·Σ of all taps (the accumulator's start), then the channel's
// float32 scale (x_scale·w_scale) and bias as bits; 64 bytes, one per
// plane of a call.
type QDWTable [16]int32

// NewQDWTable builds a channel's table from its taps (kh, kw order), the
// input zero point (uint8 codes with unsigned, else int8), its scale and
// its bias (0 for none).
func NewQDWTable(w []int8, xZero int32, unsigned bool, scale, bias float32) QDWTable {
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
	t[7], t[8] = int32(math.Float32bits(scale)), int32(math.Float32bits(bias))
	return t
}

// qdwEpi is the assembly's epilogue block (field order is its layout).
type qdwEpi struct {
	lo, hi, ys, qlo, qhi float32
	yz, xz               int32
	flip                 uint32 // 0x80808080 for int8 codes (to uint8), else 0
}

// DepthwiseQ3x3 is DepthwiseQ for a 3×3 kernel (QDW3x3Supported) with
// code output (q.Quant) and no Go activation (e.Act nil), reading the
// codes x (H×W, int8 or with q.XUnsigned uint8, zero point q.XZero) in
// place: out gets OH×OW codes bit-identical to DepthwiseQ's (and kilnq's).
// One call runs len(tabs) consecutive channel planes (x, out and resid
// planes contiguous): tabs[i] is plane i's NewQDWTable (its scale and bias
// replace q.Scale and DepthwiseQ's bias), resid the residual planes or nil.
func DepthwiseQ3x3(out, x []byte, tabs []QDWTable, g *pack.Conv2D, e *Epi, resid []float32, q *DWQuant) {
	if !QDW3x3Supported(g) || !q.Quant || e.Act != nil {
		panic("avx.DepthwiseQ3x3: unsupported geometry or epilogue")
	}
	planes := len(tabs)
	if g.OH <= 0 || g.OW <= 0 || planes == 0 {
		return
	}
	_, _ = x[planes*g.H*g.W-1], out[planes*g.OH*g.OW-1]
	var rp *float32
	if resid != nil {
		rp = &resid[:planes*g.OH*g.OW][0]
	}
	p := qdwEpi{lo: float32(math.Inf(-1)), hi: float32(math.Inf(1)), ys: q.YScale, yz: q.YZero, xz: q.XZero}
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
	qdw3x3(&x[0], g.W, g.H, &tabs[0][0], &out[0], g.OW, g.OH, g.PT, g.PL, g.SW, rp, &p, planes, q.XUnsigned, q.Unsigned)
}

// qdw3x3Generic is the portable twin of the plane kernel, the reference
// loop (code(v): int8 or, with xu, uint8; saturate: to int8 or, with yu,
// uint8; NaN → the low bound; plane q's table t = tab[16q:], its x, out
// and resid planes w·h, n·rows and n·rows elements on):
//
//	for q < planes, oh < rows, ow < n:
//		acc := Σ_{i<3, j<3} int8(byte j of t[i])·(code(x[ih][iw]) − xz), ih = oh·s − pt + i, iw = ow·s − pl + j,
//		       positions outside the plane contribute 0 (int32, exact in float32)
//		v := clamp(float32(acc)·scale(t[7]) + bias(t[8]) + resid[oh·n+ow], lo, hi) / ys
//		out[oh·n+ow] = saturate(roundHalfEven(clamp(v, qlo, qhi)) + yz)
func qdw3x3Generic(x *byte, w, h int, tab *int32, out *byte, n, rows, pt, pl, s int, resid *float32, p *qdwEpi, planes int, xu, yu bool) {
	tabs := unsafe.Slice(tab, 16*planes)
	for q := range planes {
		xs := unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(x), q*w*h)), w*h)
		os := unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(out), q*n*rows)), n*rows)
		var rs []float32
		if resid != nil {
			rs = unsafe.Slice((*float32)(unsafe.Add(unsafe.Pointer(resid), 4*q*n*rows)), n*rows)
		}
		qdw3x3Plane(xs, w, h, tabs[16*q:16*q+16], os, n, rows, pt, pl, s, rs, p, xu)
	}
}

func qdw3x3Plane(xs []byte, w, h int, ts []int32, os []byte, n, rows, pt, pl, s int, rs []float32, p *qdwEpi, xu bool) {
	scale, bias := math.Float32frombits(uint32(ts[7])), math.Float32frombits(uint32(ts[8]))
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
			y := float32(acc)*scale + bias
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
