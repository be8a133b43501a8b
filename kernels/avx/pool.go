package avx

import "unsafe"

// poolLanes selects the even (first 16) and odd (last 16) lanes of two
// zmm registers for the 2×2 pool.
var poolLanes = [32]int32{0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30,
	1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31}

// MaxPoolRowsF32 computes rows output rows of ow outputs each (out,
// row-major) of a 2×2 stride-2 unpadded max pool over input rows w floats
// apart: output row r, column o, from x[2r·w+2o], x[2r·w+2o+1],
// x[(2r+1)·w+2o], x[(2r+1)·w+2o+1], with the portable pool's semantics:
// the taps in that order, a later tap replaces the maximum only when
// greater (ties keep the earlier one, NaN is kept only when it is the first
// tap).
func MaxPoolRowsF32(out, x []float32, w, ow, rows int) {
	if rows <= 0 || ow <= 0 {
		return
	}
	if 2*ow > w || len(out) < rows*ow || len(x) < (2*rows-1)*w+2*ow {
		panic("avx.MaxPoolRowsF32: bad geometry")
	}
	maxPoolRowF32(&out[0], &x[0], w, ow, rows, &poolLanes[0])
}

// maxPoolRowF32Generic is the portable twin of the row kernel, the
// reference loop:
//
//	for r < rows, o < n:
//		b := x[2r·w + 2o]
//		for v in x[2r·w+2o+1], x[(2r+1)·w+2o], x[(2r+1)·w+2o+1]: if v > b { b = v }
//		out[r·n + o] = b
func maxPoolRowF32Generic(out, x *float32, w, n, rows int, _ *int32) {
	ys := unsafe.Slice(out, rows*n)
	xs := unsafe.Slice(x, (2*rows-1)*w+2*n)
	for r := 0; r < rows; r++ {
		y := ys[r*n : r*n+n]
		a := xs[2*r*w : 2*r*w+2*n]
		c := xs[(2*r+1)*w : (2*r+1)*w+2*n]
		for o := range y {
			b := a[2*o]
			if v := a[2*o+1]; v > b {
				b = v
			}
			if v := c[2*o]; v > b {
				b = v
			}
			if v := c[2*o+1]; v > b {
				b = v
			}
			y[o] = b
		}
	}
}

// MaxPoolRow computes n outputs of one row of a kh×kw max pool, stride 1
// or 2 along the row, whose windows all lie inside the input: output o
// from x[i*ldx + o*stride + j] for i < kh, j < kw, the first tap (i = j =
// 0) then each later one in row-major order replacing the maximum only
// when greater (ties keep it, NaN is kept only as the first tap), as the
// portable pool. x must hold the last window.
func MaxPoolRow(out, x []float32, ldx, kh, kw, stride, n int) {
	if n <= 0 {
		return
	}
	if kh < 1 || kw < 1 || stride < 1 || stride > 2 || len(out) < n || len(x) < (kh-1)*ldx+(n-1)*stride+kw {
		panic("avx.MaxPoolRow: bad geometry")
	}
	maxPoolRow(&out[0], &x[0], ldx, kh, kw, stride-1, &evenLanes[0], n)
}

// maxPoolRowGeneric is the portable twin of the row kernel, the reference
// loop:
//
//	for o < n: b := x[o*s]; for (i, j) ≠ (0, 0) in row-major order: if v := x[i*ldx+o*s+j]; v > b { b = v }; out[o] = b
func maxPoolRowGeneric(out, x *float32, ldx, kh, kw, s2 int, _ *int32, n int) {
	s := s2 + 1
	ys := unsafe.Slice(out, n)
	xs := unsafe.Slice(x, (kh-1)*ldx+(n-1)*s+kw)
	for o := range ys {
		b := xs[o*s]
		for i := 0; i < kh; i++ {
			row := xs[i*ldx+o*s : i*ldx+o*s+kw]
			for j, v := range row {
				if (i != 0 || j != 0) && v > b {
					b = v
				}
			}
		}
		ys[o] = b
	}
}
