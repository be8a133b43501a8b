package avx

import "unsafe"

// poolLanes selects the even (first 16) and odd (last 16) lanes of two
// zmm registers for the 2×2 pool.
var poolLanes = [32]int32{0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30,
	1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31}

// MaxPoolRowF32 computes one output row of a 2×2 stride-2 unpadded max
// pool: out[o] from x0[2o], x0[2o+1], x1[2o], x1[2o+1] (the two input rows)
// for o < len(out), with the portable pool's semantics: the taps in that
// order, a later tap replaces the maximum only when greater (ties keep the
// earlier one, NaN is kept only when it is the first tap).
func MaxPoolRowF32(out, x0, x1 []float32) {
	n := len(out)
	if n == 0 {
		return
	}
	if len(x0) < 2*n || len(x1) < 2*n {
		panic("avx.MaxPoolRowF32: input rows shorter than 2×len(out)")
	}
	maxPoolRowF32(&out[0], &x0[0], &x1[0], n, &poolLanes[0])
}

// maxPoolRowF32Generic is the portable twin of the row kernel, the reference
// loop:
//
//	for o < n:
//		b := x0[2o]
//		for v in x0[2o+1], x1[2o], x1[2o+1]: if v > b { b = v }
//		out[o] = b
func maxPoolRowF32Generic(out, x0, x1 *float32, n int, _ *int32) {
	y := unsafe.Slice(out, n)
	a := unsafe.Slice(x0, 2*n)
	c := unsafe.Slice(x1, 2*n)
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
