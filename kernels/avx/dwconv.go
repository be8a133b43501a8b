package avx

import (
	"math"
	"unsafe"

	"github.com/kilnml/kiln/kernels/pack"
)

// Depthwise convolution (one input channel per output channel) on a
// zero-padded copy of each plane: a row of 16 outputs is one zmm, each tap
// one FMA (stride 2 keeps the even lanes of two loads).

var evenLanes = [16]int32{0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30}

// dwRowMax is the most outputs one row-kernel call computes (four zmm).
const dwRowMax = 64

// DWPadded returns the padded plane's row stride and the scratch length
// one plane needs (with slack for the kernel's full-width loads).
func DWPadded(g *pack.Conv2D) (ldx, size int) {
	hp := (g.OH-1)*g.SH + (g.KH-1)*g.DH + 1
	wp := (g.OW-1)*g.SW + (g.KW-1)*g.DW + 1
	ldx = wp + 2*16
	return ldx, hp*ldx + 2*16
}

// DWSupported says whether the direct kernel handles the geometry.
func DWSupported(g *pack.Conv2D) bool { return g.SW == 1 || g.SW == 2 }

// Extra flags of the depthwise row kernel (mirrored in _gen/dwconv.go).
const (
	dwScale    = 32  // acc ·= scale first (INT8: x_scale·w_scale)
	dwQuant    = 64  // store int8 codes
	dwUnsigned = 128 // uint8 codes
)

// DWQuant is the quantized epilogue of an INT8 depthwise plane (kilnq):
// y = float32(acc)·Scale + bias + resid, clamp; codes when Quant.
type DWQuant struct {
	Scale    float32
	Quant    bool
	Unsigned bool
	YScale   float32
	YZero    int32
	Quantize func(float32) byte // with a Go activation (Epi.Act)
	// XCodes: DepthwiseQ's input codes decode as code − XZero (uint8 with
	// XUnsigned, else int8), converted arithmetically (the lut is unused).
	XCodes    bool
	XUnsigned bool
	XZero     int32
}

// Depthwise computes one output plane (OH×OW) of a depthwise convolution
// from input plane x (H×W) and taps w (KH×KW): y = act(Σ taps (kh, kw order)
// + bias + resid) with the clamp of e (e.Act, if set, after). pad is
// scratch of DWPadded's size.
func Depthwise(out, x, w, pad []float32, g *pack.Conv2D, bias float32, e *Epi, resid []float32) {
	padPlane(pad, x, (*[256]float32)(nil), g)
	dwPlane(unsafe.Pointer(&out[:g.OH*g.OW][0]), 4, w, pad, g, bias, e, resid, nil)
}

// DepthwiseQ is Depthwise over 8-bit codes: lut maps a code to x−x_zero
// (exact in float32), w holds the int8 weights as floats. Every product
// and partial sum is an integer below 2²⁴, so the float32 accumulator is
// exactly kilnq's int32 one; the epilogue then follows kilnq bit for bit.
// out is OH×OW codes (q.Quant) or float32.
func DepthwiseQ(outQ []byte, outF []float32, x []byte, lut *[256]float32, w, pad []float32, g *pack.Conv2D, bias float32, e *Epi, resid []float32, q *DWQuant) {
	if q.XCodes {
		padCodes(pad, x, g, q.XZero, q.XUnsigned)
	} else {
		padPlane(pad, x, lut, g)
	}
	if q.Quant {
		dwPlane(unsafe.Pointer(&outQ[:g.OH*g.OW][0]), 1, w, pad, g, bias, e, resid, q)
	} else {
		dwPlane(unsafe.Pointer(&outF[:g.OH*g.OW][0]), 4, w, pad, g, bias, e, resid, q)
	}
}

// DWMaxTaps bounds the kernel size DepthwiseQ is exact for (25 taps ×
// 255·128 < 2²⁴).
const DWMaxTaps = 25

func padPlane[T uint8 | float32](pad []float32, x []T, lut *[256]float32, g *pack.Conv2D) {
	ldx, size := DWPadded(g)
	pad = pad[:size]
	done := 0 // pad[:done] holds its final values: zero only the borders, not the rows' data too
	for ih := 0; ih < g.H; ih++ {
		r := ih + g.PT
		if r*ldx >= size-32 { // rows past the last one read (stride 2 with an unused last row) would overrun
			break
		}
		lo, hi := max(0, -g.PL), min(g.W, ldx-32-g.PL)
		if hi <= lo {
			continue
		}
		clear(pad[done : r*ldx+lo+g.PL])
		done = r*ldx + hi + g.PL
		d := pad[r*ldx+lo+g.PL : done]
		src := x[ih*g.W+lo : ih*g.W+hi]
		if f, ok := any(src).([]float32); ok {
			copy(d, f)
		} else if lut == nil {
			for i, v := range src {
				d[i] = float32(v)
			}
		} else {
			for i, v := range src {
				d[i] = lut[uint8(v)]
			}
		}
	}
	clear(pad[done:])
}

func dwPlane(out unsafe.Pointer, esize int, w, pad []float32, g *pack.Conv2D, bias float32, e *Epi, resid []float32, q *DWQuant) {
	ldx, _ := DWPadded(g)
	flags := 0
	if e.BiasOn != 0 {
		flags |= FlagBiasRow
	}
	if resid != nil {
		flags |= FlagResid
	}
	if e.Clamp {
		flags |= FlagClamp
	}
	var scale, ys, qlo, qhi float32
	var yz int32
	if q != nil {
		flags |= dwScale
		scale = q.Scale
		if q.Quant && e.Act == nil {
			flags |= dwQuant
			ys, yz = q.YScale, q.YZero
			lo, hi := float32(-128), float32(127)
			if q.Unsigned {
				flags |= dwUnsigned
				lo, hi = 0, 255
			}
			qlo, qhi = lo-float32(yz), hi-float32(yz)
		}
	}
	s2 := g.SW - 1
	_ = w[g.KH*g.KW-1]
	if q == nil && e.Act == nil && esize == 4 {
		// FP32 with a clamp at most: the whole plane in one call.
		last := (g.OW - 1) / 16 * 16
		_ = pad[(g.OH-1)*g.SH*ldx+last*g.SW+(g.KH-1)*g.DH*ldx+(g.KW-1)*g.DW+32*g.SW-1]
		var rp *float32
		if resid != nil {
			rp = &resid[:g.OH*g.OW][0]
		}
		dwPlaneF32(&pad[0], ldx, &w[0], g.KH, g.KW, g.DH, g.DW, s2, &evenLanes[0], (*float32)(out), g.OW, g.OH, g.SH, bias, rp, e.Lo, e.Hi, flags)
		return
	}
	var tmp [dwRowMax]float32
	for oh := 0; oh < g.OH; oh++ {
		row := pad[oh*g.SH*ldx:]
		for ow := 0; ow < g.OW; ow += dwRowMax {
			n := min(dwRowMax, g.OW-ow)
			at := oh*g.OW + ow
			var rp *float32
			if resid != nil {
				rp = &resid[at : at+n][0]
			}
			last := ow + (n-1)/16*16 // the last zmm's first output: reads up to 32·stride floats from it
			_ = row[last*g.SW+(g.KH-1)*g.DH*ldx+(g.KW-1)*g.DW+32*g.SW-1]
			o := (*float32)(unsafe.Add(out, at*esize))
			if esize == 1 && flags&dwQuant == 0 { // Go activation, then codes
				o = &tmp[0]
			}
			dwRow(&row[ow*g.SW], ldx, &w[0], g.KH, g.KW, g.DH, g.DW, s2, &evenLanes[0], o, n, bias, rp, e.Lo, e.Hi, flags, scale, ys, qlo, qhi, yz)
			if e.Act != nil {
				ys := unsafe.Slice(o, n)
				for i, y := range ys {
					ys[i] = e.Act(y)
				}
				if esize == 1 {
					codes := unsafe.Slice((*byte)(unsafe.Add(out, at)), n)
					for i, y := range ys {
						codes[i] = q.Quantize(y)
					}
				}
			}
		}
	}
}

// dwRowGeneric is the portable twin of the row kernel, the reference loop:
//
//	for o < n: acc := Σ_{i<kh, j<kw} w[i*kw+j]·x[i*dh*ldx + j*dw + o*(s2+1)]   ((i, j) order)
//		then ·scale (dwScale), + bias (FlagBiasRow), + resid[o] (FlagResid), clamp (FlagClamp);
//		out[o] = acc, or with dwQuant the code roundHalfEven(clamp(acc/ys, qlo, qhi)) + yz (NaN → qlo)
func dwRowGeneric(x *float32, ldx int, w *float32, kh, kw, dh, dw, s2 int, _ *int32, out *float32, n int, bias float32, resid *float32, lo, hi float32, flags int, scale, ys, qlo, qhi float32, yz int32) {
	s := s2 + 1
	xs := unsafe.Slice(x, (kh-1)*dh*ldx+(kw-1)*dw+(n-1)*s+1)
	ws := unsafe.Slice(w, kh*kw)
	var rs []float32
	if flags&FlagResid != 0 {
		rs = unsafe.Slice(resid, n)
	}
	for o := 0; o < n; o++ {
		var acc float32
		for i := 0; i < kh; i++ {
			for j := 0; j < kw; j++ {
				acc += ws[i*kw+j] * xs[i*dh*ldx+j*dw+o*s]
			}
		}
		if flags&dwScale != 0 {
			acc *= scale
		}
		if flags&FlagBiasRow != 0 {
			acc += bias
		}
		if flags&FlagResid != 0 {
			acc += rs[o]
		}
		if flags&FlagClamp != 0 {
			if acc < lo {
				acc = lo
			}
			if acc > hi {
				acc = hi
			}
		}
		if flags&dwQuant != 0 {
			v := acc / ys
			if !(v >= qlo) {
				v = qlo
			}
			v = min(v, qhi)
			*(*byte)(unsafe.Add(unsafe.Pointer(out), o)) = byte(int32(math.RoundToEven(float64(v))) + yz)
			continue
		}
		*(*float32)(unsafe.Add(unsafe.Pointer(out), 4*o)) = acc
	}
}

// dwPlaneGeneric is the portable twin of the FP32 plane kernel, the
// reference loop: every output row oh < rows, in chunks of up to dwRowMax
// outputs, is dwRowGeneric's (no scale, no codes):
//
//	for oh < rows, ow < n step dwRowMax:
//		dwRowGeneric(x + oh*sh*ldx + ow*(s2+1), ..., out + oh*n + ow, min(dwRowMax, n-ow), bias, resid + oh*n + ow, lo, hi, flags)
func dwPlaneGeneric(x *float32, ldx int, w *float32, kh, kw, dh, dw, s2 int, idx *int32, out *float32, n, rows, sh int, bias float32, resid *float32, lo, hi float32, flags int) {
	for oh := 0; oh < rows; oh++ {
		for ow := 0; ow < n; ow += dwRowMax {
			at := oh*n + ow
			var rp *float32
			if flags&FlagResid != 0 {
				rp = (*float32)(unsafe.Add(unsafe.Pointer(resid), 4*at))
			}
			dwRowGeneric((*float32)(unsafe.Add(unsafe.Pointer(x), 4*(oh*sh*ldx+ow*(s2+1)))), ldx, w, kh, kw, dh, dw, s2, idx,
				(*float32)(unsafe.Add(unsafe.Pointer(out), 4*at)), min(dwRowMax, n-ow), bias, rp, lo, hi, flags, 0, 0, 0, 0, 0)
		}
	}
}
