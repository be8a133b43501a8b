package i8

import (
	"github.com/kilnml/kiln/kernels/f32"
	"github.com/kilnml/kiln/kernels/pack"
)

// DepthwisePlane computes one output channel of a quantized depthwise
// convolution directly: exact int32 sums of (code − zero)·w over the taps
// inside the input (padding is a real zero), then the quantized epilogue
// of row oc. acc and row are scratch of OW elements each.
func DepthwisePlane(x []byte, lut *[256]int16, w []int8, g *pack.Conv2D, oc int, acc []int32, row []float32, e *f32.Epilogue) {
	ow := g.OW
	acc, row = acc[:ow], row[:ow]
	for oh := 0; oh < g.OH; oh++ {
		clear(acc)
		for kh := 0; kh < g.KH; kh++ {
			ih := oh*g.SH - g.PT + kh*g.DH
			if uint(ih) >= uint(g.H) {
				continue
			}
			xr := x[ih*g.W : ih*g.W+g.W]
			for kw := 0; kw < g.KW; kw++ {
				wv := int32(w[kh*g.KW+kw])
				off := kw*g.DW - g.PL
				lo, hi := validRange(off, g.SW, g.W, ow)
				for o := lo; o < hi; o++ {
					acc[o] += wv * int32(lut[xr[o*g.SW+off]])
				}
			}
		}
		for i, v := range acc {
			row[i] = float32(v)
		}
		e.Store(row, 0, oc, oh*ow, 1, ow)
	}
}

// validRange is the range of outputs o in [0,n) with 0 <= o*s+off < w.
func validRange(off, s, w, n int) (lo, hi int) {
	if off < 0 {
		lo = (-off + s - 1) / s
	}
	hi = n
	if last := w - 1 - off; last < 0 {
		hi = 0
	} else {
		hi = min(n, last/s+1)
	}
	return lo, max(hi, lo)
}
