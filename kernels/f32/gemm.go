package f32

import "github.com/kilnml/kiln/kernels/pack"

// Gemm multiplies packed A (m rows, depth k) by packed B (n columns) and
// hands every MR×NR tile to the epilogue as output rows r0.., columns c0...
// Every output element is one micro-kernel sum over p = 0..k-1 in order.
func Gemm(k int, ap []float32, m int, bp []float32, n int, r0, c0 int, e *Epilogue) {
	var acc Tile
	for t := 0; t < n; t += NR {
		bs := bp[t*k : t*k+NR*k]
		nr := min(NR, n-t)
		for s := 0; s < m; s += MR {
			micro(k, ap[s*k:s*k+MR*k], bs, &acc)
			e.Store(acc[:], NR, r0+s, c0+t, min(MR, m-s), nr)
		}
	}
}

// PackWeights packs an m×k row-major weight matrix (or its transpose when
// trans: w is k×m) as A for Gemm.
func PackWeights(w []float32, m, k int, trans bool) []float32 {
	dst := make([]float32, pack.ASize(m, k, MR))
	if trans {
		pack.A(dst, w, (*[256]float32)(nil), m, k, 1, m, MR)
	} else {
		pack.A(dst, w, (*[256]float32)(nil), m, k, k, 1, MR)
	}
	return dst
}
