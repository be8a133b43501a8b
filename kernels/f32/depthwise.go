package f32

import "github.com/kilnml/kiln/kernels/pack"

// DepthwisePlane computes one output channel of a depthwise convolution
// (one input channel per group) directly: out[oh][ow] = Σ_kh Σ_kw
// w[kh][kw]·x[ih][iw] in (kh, kw) order, taps in the padding skipped. row
// is scratch of OW floats; the epilogue stores row oc of the output.
func DepthwisePlane(x, w []float32, g *pack.Conv2D, oc int, row []float32, e *Epilogue) {
	ow := g.OW
	for oh := 0; oh < g.OH; oh++ {
		clear(row[:ow])
		for kh := 0; kh < g.KH; kh++ {
			ih := oh*g.SH - g.PT + kh*g.DH
			if uint(ih) >= uint(g.H) {
				continue
			}
			xr := x[ih*g.W : ih*g.W+g.W]
			for kw := 0; kw < g.KW; kw++ {
				wv := w[kh*g.KW+kw]
				off := kw*g.DW - g.PL // input col = o*SW + off
				lo, hi := validRange(off, g.SW, g.W, ow)
				if g.SW == 1 {
					src := xr[lo+off : hi+off]
					dst := row[lo:hi]
					for i := range dst {
						dst[i] += wv * src[i]
					}
					continue
				}
				for o := lo; o < hi; o++ {
					row[o] += wv * xr[o*g.SW+off]
				}
			}
		}
		e.Store(row, 0, oc, oh*ow, 1, ow)
	}
}

// validRange is the range of outputs o in [0,n) with 0 <= o*s+off < w.
func validRange(off, s, w, n int) (lo, hi int) {
	lo = 0
	if off < 0 {
		lo = (-off + s - 1) / s
	}
	hi = n
	if last := w - 1 - off; last < 0 {
		hi = 0
	} else {
		hi = min(n, last/s+1)
	}
	if hi < lo {
		hi = lo
	}
	return lo, hi
}
