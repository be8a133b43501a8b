//go:build noasm || !amd64

package avx

func micro(k int, a, b *float32, ldb int, c *float32, ldc, mr, nr int, bias, resid *float32, lo, hi float32, flags int) {
	sgemmGeneric(k, a, b, ldb, c, ldc, mr, nr, bias, resid, lo, hi, flags)
}

func qaccTile(acc *[MR * NR]int32, k4 int, a *int8, b *uint8, mr, nr int) {
	qaccumulate(acc, k4, a, b, mr, nr)
}

func qmicro(k4 int, a *int8, b *uint8, out *byte, ldo, mr, nr int, q *int64) {
	qgemmGeneric(k4, a, b, out, ldo, mr, nr, q)
}

func dwRow(x *float32, ldx int, w *float32, kh, kw, dh, dw, s2 int, idx *int32, out *float32, n int, bias float32, resid *float32, lo, hi float32, flags int, scale, ys, qlo, qhi float32, yz int32) {
	dwRowGeneric(x, ldx, w, kh, kw, dh, dw, s2, idx, out, n, bias, resid, lo, hi, flags, scale, ys, qlo, qhi, yz)
}

func im2colGather(dst, plane *float32, hw, cg int, tab *int32, taps int) {
	im2colGatherGeneric(dst, plane, hw, cg, tab, taps)
}

func im2colSegs(dst, plane *float32, hw, cg int, segs *int32, taps int) {
	im2colSegsGeneric(dst, plane, hw, cg, segs, taps)
}

func maxPoolRowF32(out, x *float32, w, n, rows int, lanes *int32) {
	maxPoolRowF32Generic(out, x, w, n, rows, lanes)
}

func gemv(k int, a, b *float32, sstride int, c *float32, n int, bias, resid *float32, lo, hi float32, flags int) {
	sgemvGeneric(k, a, b, sstride, c, n, bias, resid, lo, hi, flags)
}

func maxPoolRow(out, x *float32, ldx, kh, kw, s2 int, idx *int32, n int) {
	maxPoolRowGeneric(out, x, ldx, kh, kw, s2, idx, n)
}

func dwPlaneF32(x *float32, ldx int, w *float32, kh, kw, dh, dw, s2 int, idx *int32, out *float32, n, rows, sh int, bias float32, resid *float32, lo, hi float32, flags int) {
	dwPlaneGeneric(x, ldx, w, kh, kw, dh, dw, s2, idx, out, n, rows, sh, bias, resid, lo, hi, flags)
}

func dw3x3(x *float32, w, h int, wt, bias, out *float32, n, rows, pt, pl, s int, resid *float32, lo, hi float32, flags, planes int) {
	dw3x3Generic(x, w, h, wt, bias, out, n, rows, pt, pl, s, resid, lo, hi, flags, planes)
}
