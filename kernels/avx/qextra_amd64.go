//go:build !noasm && amd64

package avx

import (
	"unsafe"

	"golang.org/x/sys/cpu"
)

func qmaxPool2x2(x *byte, w, hw int, y *byte, ow, oh, planes int, unsigned bool) {
	switch {
	case QVariant != QVariantVNNI:
		qmaxPool2x2Generic(x, w, hw, y, ow, oh, planes, unsigned)
	case unsigned:
		maxPool2x2U8BW(x, w, hw, y, ow, oh, planes)
	default:
		maxPool2x2S8BW(x, w, hw, y, ow, oh, planes)
	}
}

func quantizeF32(dst *byte, src *float32, n int, scale, qlo, qhi float32, zero int32, unsigned bool) {
	switch {
	case QVariant == QVariantAVX2:
		n8 := n &^ 7
		if unsigned {
			quantizeF32U8AVX2(dst, src, n8, scale, qlo, qhi, zero)
		} else {
			quantizeF32S8AVX2(dst, src, n8, scale, qlo, qhi, zero)
		}
		if n8 < n {
			quantizeF32Generic((*byte)(unsafe.Add(unsafe.Pointer(dst), n8)), (*float32)(unsafe.Add(unsafe.Pointer(src), 4*n8)), n-n8, scale, qlo, qhi, zero)
		}
	case QVariant != QVariantVNNI:
		quantizeF32Generic(dst, src, n, scale, qlo, qhi, zero)
	case unsigned:
		quantizeF32U8AVX512(dst, src, n, scale, qlo, qhi, zero)
	default:
		quantizeF32S8AVX512(dst, src, n, scale, qlo, qhi, zero)
	}
}

func gatherQuadsDispatch(dst *uint32, src []byte, idx *int32, rows, q, step int, fill uint32) {
	if QVariant != QVariantVNNI {
		gatherQuadsGeneric(dst, src, idx, rows, q, step, fill)
		return
	}
	gatherQuadsAVX512(dst, unsafe.SliceData(src), idx, rows, q, step, fill)
}

func packPointwise(dst *uint32, x *byte, hw, quads, n int, flip uint32) {
	switch QVariant {
	case QVariantVNNI:
		packPointwiseAVX512(dst, x, hw, quads, n, flip)
	case QVariantAVX2:
		n16 := n &^ 15
		packPointwiseAVX2(dst, x, hw, quads, n16, flip)
		packPointwiseTail(dst, x, hw, quads, n, n16, flip)
	default:
		packPointwiseGeneric(dst, x, hw, quads, n, flip)
	}
}

// packPointwiseTail is packPointwiseGeneric for the columns from n16 to the
// end of the last strip (those past n read as 0): what packPointwiseAVX2
// leaves.
func packPointwiseTail(dst *uint32, x *byte, hw, quads, n, n16 int, flip uint32) {
	strips := (n + NR - 1) / NR
	d := unsafe.Slice(dst, strips*quads*NR)
	for col := n16; col < strips*NR; col++ {
		s, j := col/NR, col%NR
		for p := 0; p < quads; p++ {
			var v uint32
			if col < n {
				for c := 0; c < 4; c++ {
					v |= uint32(*(*byte)(unsafe.Add(unsafe.Pointer(x), (4*p+c)*hw+col))) << (8 * c)
				}
			}
			d[(s*quads+p)*NR+j] = v ^ flip
		}
	}
}

func rowMax(dst, src *byte, n int, unsigned bool) {
	switch {
	case QVariant != QVariantVNNI:
		rowMaxGeneric(dst, src, n, unsigned)
	case unsigned:
		rowMaxU8BW(dst, src, n)
	default:
		rowMaxS8BW(dst, src, n)
	}
}

func codesToF32(dst *float32, ldd int, src *byte, w, h int, zero int32, unsigned bool) {
	switch {
	case QVariant != QVariantVNNI:
		codesToF32Generic(dst, ldd, src, w, h, zero, unsigned)
	case unsigned:
		codesToF32U8AVX512(dst, ldd, src, w, h, zero)
	default:
		codesToF32S8AVX512(dst, ldd, src, w, h, zero)
	}
}

// hasVBMI: VPERMB for slideQuads (checked besides QVariant's VNNI/BW).
var hasVBMI = cpu.X86.HasAVX512VBMI

func slideQuadsDispatch(dst *uint32, src []byte, n, stride int) {
	switch {
	case QVariant != QVariantVNNI || !hasVBMI:
		slideQuadsGeneric(dst, src, n, stride)
	case stride == 2:
		slideQuads2VBMI(dst, unsafe.SliceData(src), n)
	default:
		slideQuadsVBMI(dst, unsafe.SliceData(src), n)
	}
}

func copyQuadWordsDispatch(dst *uint32, src *uint32, lo, hi, run, q, step int, fill uint32) {
	if QVariant != QVariantVNNI {
		copyQuadWordsGeneric(dst, src, lo, hi, run, q, step, fill)
		return
	}
	copyQuadWordsAVX512(dst, src, lo, hi, run, q, step, fill)
}

func qmicroPool(k4 int, a *int8, b *uint8, out *byte, ldo, mr, np int, q *int64, rem, phw, jump int) {
	switch QVariant {
	case QVariantAVX2:
		qgemmPoolAVX2(k4, a, b, out, ldo, mr, np, q, rem, phw, jump)
		return
	case QVariantGeneric:
		qgemmPoolGeneric(k4, a, b, out, ldo, mr, np, q, rem, phw, jump)
		return
	}
	qgemm8x32PoolVNNI(k4, a, b, out, ldo, mr, np, q, rem, phw, jump)
}

// qpoolPackDispatch packs one pooled strip (QPoolPlan.Pack); the plan's
// offsets keep every read inside src.
func qpoolPackDispatch(strip []uint8, src []byte, segs, rowOff []int32, q, qstep int, idx *[64]byte) {
	switch {
	case QVariant == QVariantVNNI && hasVBMI:
	case QVariant != QVariantGeneric:
		if len(segs) >= 4 && len(rowOff) > 0 {
			qpoolPackAVX2((*uint32)(unsafe.Pointer(unsafe.SliceData(strip))), unsafe.SliceData(src), unsafe.SliceData(segs), len(segs)/4,
				len(rowOff), unsafe.SliceData(rowOff), q, qstep, int(idx[4]))
		}
		return
	default:
		qpoolPackGeneric(qpoolPackWords(strip), src, segs, rowOff, q, qstep, idx)
		return
	}
	qpoolPackVBMI((*uint32)(unsafe.Pointer(unsafe.SliceData(strip))), unsafe.SliceData(src), unsafe.SliceData(segs), len(segs)/4,
		len(rowOff), unsafe.SliceData(rowOff), q, qstep, &idx[0])
}

func packQRows8Dispatch(dst *int8, x *byte, k, nb int, f4 uint32, sums *int32) {
	if QVariant != QVariantVNNI {
		packQRows8Generic(dst, x, k, nb, f4, sums)
		return
	}
	packQRows8AVX512(dst, x, k, nb, f4, sums)
}

func hmax3s2Dispatch(out, row *byte, n int, unsigned bool) {
	switch {
	case QVariant != QVariantVNNI || !hasVBMI:
		hmax3s2Generic(out, row, n, unsigned)
	case unsigned:
		hmax3s2U8VBMI(out, row, n)
	default:
		hmax3s2S8VBMI(out, row, n)
	}
}

// qmicroNarrow runs the 8×16 (nr ≤ 16) or 8×8 (nr ≤ 8) VNNI kernel,
// or reports false without VNNI.
func qmicroNarrow(k4 int, a *int8, b *uint8, out *byte, ldo, mr, nr int, q *QEpi) bool {
	switch {
	case QVariant != QVariantVNNI:
		return false
	case nr <= NR/4:
		qgemm8x8VNNI(k4, a, b, out, ldo, mr, nr, (*int64)(unsafe.Pointer(q)))
	default:
		qgemm8x16VNNI(k4, a, b, out, ldo, mr, nr, (*int64)(unsafe.Pointer(q)))
	}
	return true
}

func qmicroPoolShift(k4 int, a *int8, b *uint8, out *byte, ldo, mr, np int, q *int64, rem, phw, jump int, offs *int32, rb, rbRow int) {
	if QVariant != QVariantVNNI {
		qgemmPoolShiftGeneric(k4, a, b, out, ldo, mr, np, q, rem, phw, jump, offs, rb, rbRow)
		return
	}
	qgemm8x32PoolShiftVNNI(k4, a, b, out, ldo, mr, np, q, rem, phw, jump, offs, rb, rbRow)
}

func qshiftPackDispatch(dst []uint32, src []byte, s *QPoolShift) {
	if QVariant != QVariantVNNI || !hasVBMI {
		qshiftPackGeneric(dst, src, s)
		return
	}
	qshiftPackVBMI(&dst[0], &src[0], &s.segs[0], len(s.segs)/4, s.shifts, &s.srcShift[0], s.q, s.qstep, 4*s.rowWords, 4*s.rowWords*s.shifts, &s.idx[0])
}

func qcolOK() bool { return QVariant == QVariantVNNI }

func qcol(k4 int, a *int8, b *uint8, acc *int32) {
	if QVariant != QVariantVNNI {
		qcolGeneric(k4, a, b, acc)
		return
	}
	qcolVNNI(k4, a, b, acc)
}

func qcol8(k4 int, a *int8, stride int, b *uint8, acc *int32) {
	if QVariant != QVariantVNNI {
		qcol8Generic(k4, a, stride, b, acc)
		return
	}
	qcol8VNNI(k4, a, stride, b, acc)
}

func qadd(dst, a, b *byte, n int, p *QAddParams) {
	if QVariant != QVariantVNNI || !p.Recip {
		qaddGeneric(dst, a, b, n, p)
		return
	}
	q := (*int64)(unsafe.Pointer(p))
	switch {
	case p.ASigned && p.BSigned:
		qaddSSAVX512(dst, a, b, n, q)
	case p.ASigned:
		qaddSUAVX512(dst, a, b, n, q)
	case p.BSigned:
		qaddUSAVX512(dst, a, b, n, q)
	default:
		qaddUUAVX512(dst, a, b, n, q)
	}
}
