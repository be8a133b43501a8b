package avx

import (
	"unsafe"

	"github.com/kilnml/kiln/kernels/pack"
)

// Depthwise convolution (one input channel per output channel) on a
// zero-padded copy of each plane: a row of 16 outputs is one zmm, each tap
// one FMA (stride 2 keeps the even lanes of two loads).

var evenLanes = [16]int32{0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30}

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

// Depthwise computes one output plane (OH×OW) of a depthwise convolution
// from input plane x (H×W) and taps w (KH×KW): y = act(Σ taps (kh, kw order)
// + bias + resid) with the clamp of e (e.Act, if set, after). pad is
// scratch of DWPadded's size.
func Depthwise(out, x, w, pad []float32, g *pack.Conv2D, bias float32, e *Epi, resid []float32) {
	ldx, size := DWPadded(g)
	pad = pad[:size]
	clear(pad)
	for ih := 0; ih < g.H; ih++ {
		r := ih + g.PT
		if r*ldx >= size {
			break
		}
		// columns c = iw + PL inside [0, ldx-32)
		lo, hi := max(0, -g.PL), min(g.W, ldx-32-g.PL)
		if hi > lo && r >= 0 {
			copy(pad[r*ldx+lo+g.PL:r*ldx+hi+g.PL], x[ih*g.W+lo:ih*g.W+hi])
		}
	}
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
	s2 := g.SW - 1
	_ = w[g.KH*g.KW-1]
	for oh := 0; oh < g.OH; oh++ {
		row := pad[oh*g.SH*ldx:]
		for ow := 0; ow < g.OW; ow += 16 {
			n := min(16, g.OW-ow)
			o := out[oh*g.OW+ow : oh*g.OW+ow+n]
			var rp *float32
			if resid != nil {
				rp = &resid[oh*g.OW+ow : oh*g.OW+ow+n][0]
			}
			_ = row[ow*g.SW+(g.KH-1)*g.DH*ldx+(g.KW-1)*g.DW+32*g.SW-1]
			dwRow(&row[ow*g.SW], ldx, &w[0], g.KH, g.KW, g.DH, g.DW, s2, &evenLanes[0], &o[0], n, bias, rp, e.Lo, e.Hi, flags)
			if e.Act != nil {
				for i, y := range o {
					o[i] = e.Act(y)
				}
			}
		}
	}
}

// dwRowGeneric is the portable twin of the row kernel, the reference loop:
//
//	for o < n: acc := Σ_{i<kh, j<kw} w[i*kw+j]·x[i*dh*ldx + j*dw + o*(s2+1)]   ((i, j) order)
//		then + bias (FlagBiasRow), + resid[o] (FlagResid), clamp (FlagClamp); out[o] = acc
func dwRowGeneric(x *float32, ldx int, w *float32, kh, kw, dh, dw, s2 int, _ *int32, out *float32, n int, bias float32, resid *float32, lo, hi float32, flags int) {
	s := s2 + 1
	xs := unsafe.Slice(x, (kh-1)*dh*ldx+(kw-1)*dw+(n-1)*s+1)
	ws := unsafe.Slice(w, kh*kw)
	os := unsafe.Slice(out, n)
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
		os[o] = acc
	}
}
