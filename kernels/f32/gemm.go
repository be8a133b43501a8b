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

// Gemv multiplies packed A (m rows, depth k) by one column x (x[p*xs]) and
// stores it as output column c0: the batch-1 dense layer, where a packed
// B strip would be mostly zero padding. Each sum runs over p in order, as
// in Gemm.
func Gemv(k int, ap []float32, m int, x []float32, xs int, r0, c0 int, e *Epilogue) {
	var acc [MR]float32
	for s := 0; s < m; s += MR {
		gemvStrip(k, ap[s*k:s*k+MR*k], x, xs, &acc)
		e.Store(acc[:], 1, r0+s, c0, min(MR, m-s), 1)
	}
}

func gemvStrip(k int, a, x []float32, xs int, acc *[MR]float32) {
	var c0, c1 float32
	for p := 0; p < k; p++ {
		v := x[p*xs]
		c0 += a[p*MR] * v
		c1 += a[p*MR+1] * v
	}
	*acc = [MR]float32{c0, c1}
}
