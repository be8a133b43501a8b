//go:build noasm || !amd64

package avx

func qmaxPool2x2(x *byte, w, hw int, y *byte, ow, oh, planes int, unsigned bool) {
	qmaxPool2x2Generic(x, w, hw, y, ow, oh, planes, unsigned)
}

func quantizeF32(dst *byte, src *float32, n int, scale, qlo, qhi float32, zero int32, unsigned bool) {
	quantizeF32Generic(dst, src, n, scale, qlo, qhi, zero)
}

func gatherQuadsDispatch(dst *uint32, src []byte, idx *int32, rows, q, step int, fill uint32) {
	gatherQuadsGeneric(dst, src, idx, rows, q, step, fill)
}

func packPointwise(dst *uint32, x *byte, hw, quads, n int, flip uint32) {
	packPointwiseGeneric(dst, x, hw, quads, n, flip)
}

func rowMax(dst, src *byte, n int, unsigned bool) { rowMaxGeneric(dst, src, n, unsigned) }

func codesToF32(dst *float32, ldd int, src *byte, w, h int, zero int32, unsigned bool) {
	codesToF32Generic(dst, ldd, src, w, h, zero, unsigned)
}

func slideQuadsDispatch(dst *uint32, src []byte, n, stride int) {
	slideQuadsGeneric(dst, src, n, stride)
}

func copyQuadWordsDispatch(dst *uint32, src *uint32, lo, hi, run, q, step int, fill uint32) {
	copyQuadWordsGeneric(dst, src, lo, hi, run, q, step, fill)
}

func qmicroPool(k4 int, a *int8, b *uint8, out *byte, ldo, mr, np int, q *int64, rem, phw, jump int) {
	qgemmPoolGeneric(k4, a, b, out, ldo, mr, np, q, rem, phw, jump)
}

func qpoolPackDispatch(strip []uint8, src []byte, segs, rowOff []int32, q, qstep int, idx *[64]byte) {
	qpoolPackGeneric(qpoolPackWords(strip), src, segs, rowOff, q, qstep, idx)
}

func packQRows8Dispatch(dst *int8, x *byte, k, nb int, f4 uint32, sums *int32) {
	packQRows8Generic(dst, x, k, nb, f4, sums)
}

func hmax3s2Dispatch(out, row *byte, n int, unsigned bool) {
	hmax3s2Generic(out, row, n, unsigned)
}

func qmicroNarrow(k4 int, a *int8, b *uint8, out *byte, ldo, mr, nr int, q *QEpi) bool {
	return false
}

func qmicroPoolShift(k4 int, a *int8, b *uint8, out *byte, ldo, mr, np int, q *int64, rem, phw, jump int, offs *int32, rb, rbRow int) {
	qgemmPoolShiftGeneric(k4, a, b, out, ldo, mr, np, q, rem, phw, jump, offs, rb, rbRow)
}

func qshiftPackDispatch(dst []uint32, src []byte, s *QPoolShift) { qshiftPackGeneric(dst, src, s) }

func qcolOK() bool { return false }

func qcol(k4 int, a *int8, b *uint8, acc *int32) { qcolGeneric(k4, a, b, acc) }

func qcol8(k4 int, a *int8, stride int, b *uint8, acc *int32) { qcol8Generic(k4, a, stride, b, acc) }

func qadd(dst, a, b *byte, n int, p *QAddParams) { qaddGeneric(dst, a, b, n, p) }
