package avx

import (
	"unsafe"

	"github.com/kilnml/kiln/kernels/pack"
)

// FP32 3×3 depthwise planes read in place: no zero-bordered copy of each
// plane (Depthwise's padPlane, a third of its time on mobilenetv2) and one
// call for several planes. Columns outside the plane come from masked
// loads that read 0.0 and rows outside it from a zero register, so every
// output gets the same nine FMAs in the same order as Depthwise: the
// results are bit-identical to it.

// DW3x3Supported says whether Depthwise3x3 handles the geometry: a 3×3
// kernel, no dilation, the same stride (1 or 2) in both directions, begin
// pads 0 to 2.
func DW3x3Supported(g *pack.Conv2D) bool {
	return g.KH == 3 && g.KW == 3 && g.DH == 1 && g.DW == 1 && (g.SW == 1 || g.SW == 2) && g.SH == g.SW &&
		g.PT >= 0 && g.PT <= 2 && g.PL >= 0 && g.PL <= 2
}

// Depthwise3x3 is Depthwise (e.Act nil) for DW3x3Supported geometries over
// planes consecutive channel planes: x holds planes H×W input planes, out
// and resid (nil for none) planes OH×OW planes, w 9 taps per plane, bias
// one value per plane (nil for none). Outputs equal Depthwise's bit for
// bit.
func Depthwise3x3(out, x, w, bias []float32, g *pack.Conv2D, e *Epi, resid []float32, planes int) {
	if !DW3x3Supported(g) || e.Act != nil {
		panic("avx.Depthwise3x3: unsupported geometry or epilogue")
	}
	if g.OH <= 0 || g.OW <= 0 || planes <= 0 {
		return
	}
	_, _, _ = x[planes*g.H*g.W-1], out[planes*g.OH*g.OW-1], w[planes*9-1]
	flags := 0
	var bp, rp *float32
	if bias != nil {
		flags |= FlagBiasRow
		bp = &bias[:planes][0]
	}
	if resid != nil {
		flags |= FlagResid
		rp = &resid[:planes*g.OH*g.OW][0]
	}
	if e.Clamp {
		flags |= FlagClamp
	}
	dw3x3(&x[0], g.W, g.H, &w[0], bp, &out[0], g.OW, g.OH, g.PT, g.PL, g.SW, rp, e.Lo, e.Hi, flags, planes)
}

// dw3x3Generic is the portable twin of the plane kernel, the reference loop
// (plane q's x, out and resid planes w·h, n·rows and n·rows floats on, its
// taps wt[9q:]):
//
//	for q < planes, oh < rows, ow < n:
//		acc := 0; for i < 3, j < 3: acc += wt[3i+j]·x[ih][iw] (ih = oh·s − pt + i, iw = ow·s − pl + j; 0 outside the plane)
//		then + bias[q] (FlagBiasRow), + resid[oh·n+ow] (FlagResid), clamp to [lo, hi] (FlagClamp)
//
// Each product is rounded before the add here, where the assembly fuses
// them (as dwRowGeneric and dwRowAVX512 do).
func dw3x3Generic(x *float32, w, h int, wt, bias, out *float32, n, rows, pt, pl, s int, resid *float32, lo, hi float32, flags, planes int) {
	for q := range planes {
		xs := unsafe.Slice((*float32)(unsafe.Add(unsafe.Pointer(x), 4*q*w*h)), w*h)
		ws := unsafe.Slice((*float32)(unsafe.Add(unsafe.Pointer(wt), 4*9*q)), 9)
		os := unsafe.Slice((*float32)(unsafe.Add(unsafe.Pointer(out), 4*q*n*rows)), n*rows)
		var rs []float32
		if flags&FlagResid != 0 {
			rs = unsafe.Slice((*float32)(unsafe.Add(unsafe.Pointer(resid), 4*q*n*rows)), n*rows)
		}
		var b float32
		if flags&FlagBiasRow != 0 {
			b = *(*float32)(unsafe.Add(unsafe.Pointer(bias), 4*q))
		}
		for oh := 0; oh < rows; oh++ {
			for ow := 0; ow < n; ow++ {
				var acc float32
				for i := 0; i < 3; i++ {
					for j := 0; j < 3; j++ {
						ih, iw := oh*s-pt+i, ow*s-pl+j
						var v float32
						if ih >= 0 && ih < h && iw >= 0 && iw < w {
							v = xs[ih*w+iw]
						}
						acc += ws[3*i+j] * v
					}
				}
				if flags&FlagBiasRow != 0 {
					acc += b
				}
				if flags&FlagResid != 0 {
					acc += rs[oh*n+ow]
				}
				if flags&FlagClamp != 0 {
					if acc < lo {
						acc = lo
					}
					if acc > hi {
						acc = hi
					}
				}
				os[oh*n+ow] = acc
			}
		}
	}
}
