//go:build !noasm && amd64

package avx

import (
	"unsafe"

	"golang.org/x/sys/cpu"

	"github.com/kilnml/kiln/kernels/isa"
)

func init() {
	if !isa.Allows(isa.AVX2) {
		return
	}
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		available = append(available, VariantAVX2)
		Variant = VariantAVX2
	}
	if cpu.X86.HasAVX2 {
		qavailable = append(qavailable, QVariantAVX2)
		QVariant = QVariantAVX2
	}
	if !isa.Allows(isa.AVX512) {
		return
	}
	if cpu.X86.HasAVX512F && cpu.X86.HasAVX512DQ && cpu.X86.HasBMI2 {
		available = append(available, VariantAVX512)
		Variant = VariantAVX512
		if cpu.X86.HasAVX512VNNI && cpu.X86.HasAVX512BW {
			qavailable = append(qavailable, QVariantVNNI)
			QVariant = QVariantVNNI
		}
	}
}

func qmicro(k4 int, a *int8, b *uint8, out *byte, ldo, mr, nr int, q *int64) {
	switch QVariant {
	case QVariantVNNI:
		qgemm8x32VNNI(k4, a, b, out, ldo, mr, nr, q)
	case QVariantAVX2:
		var acc [MR * NR]int32
		qaccTile(&acc, k4, a, b, mr, nr)
		nr8 := nr &^ 7
		if nr8 > 0 {
			qepi8x32AVX2(&acc[0], out, ldo, mr, nr8, q)
		}
		if nr8 < nr && !qepiTailAVX2(&acc, out, ldo, mr, nr, (*QEpi)(unsafe.Pointer(q))) {
			qtileEpilogue(&acc, out, ldo, mr, nr8, nr, (*QEpi)(unsafe.Pointer(q)))
		}
	default:
		qgemmGeneric(k4, a, b, out, ldo, mr, nr, q)
	}
}

// qepiTailAVX2 finishes a tile's last nr mod 8 columns on the AVX2
// epilogue by running it again on the last 8 columns (nr-8 .. nr-1; the
// ones before nr8 get the same codes again), through a copy of q whose
// per-column constants and residual start at column nr-8. It declines
// (false: the Go epilogue runs) for fewer than 8 columns and for a
// residual whose memory overlaps the output's (a rewritten column would
// read a replaced value).
func qepiTailAVX2(acc *[MR * NR]int32, out *byte, ldo, mr, nr int, q *QEpi) bool {
	if nr < 8 {
		return false
	}
	esize := 1
	if q.Flags&QQuant == 0 {
		esize = 4
	}
	d := nr - 8
	t := *q
	if t.Flags&QResid != 0 {
		rsize := 4
		if t.Flags&QZCode != 0 {
			rsize = 1
		}
		o, r := uintptr(unsafe.Pointer(out)), uintptr(t.Resid)
		span := uintptr((mr-1)*ldo + nr)
		if o < r+span*uintptr(rsize) && r < o+span*uintptr(esize) {
			return false
		}
		t.Resid = unsafe.Add(t.Resid, rsize*d)
	}
	if t.Flags&QCol != 0 {
		t.Corr = (*int32)(unsafe.Add(unsafe.Pointer(t.Corr), 4*d))
		t.Mult = (*float32)(unsafe.Add(unsafe.Pointer(t.Mult), 4*d))
		if t.Bias != nil {
			t.Bias = (*float32)(unsafe.Add(unsafe.Pointer(t.Bias), 4*d))
		}
	}
	qepi8x32AVX2(&acc[d], (*byte)(unsafe.Add(unsafe.Pointer(out), esize*d)), ldo, mr, 8, (*int64)(unsafe.Pointer(&t)))
	return true
}

// qaccTile is qaccumulate on the AVX2 kernel where QVariant is AVX2 (it
// computes the whole tile; rows ≥ mr and columns ≥ nr are ignored): the
// accumulation of the Go-epilogue paths (QVariantAVX2's micro-kernel, the
// pooled INT8 GEMM's portable twin). acc must be zero on entry.
func qaccTile(acc *[MR * NR]int32, k4 int, a *int8, b *uint8, mr, nr int) {
	if QVariant == QVariantAVX2 && k4 > 0 {
		qacc8x32AVX2(k4, a, b, &acc[0])
		return
	}
	qaccumulate(acc, k4, a, b, mr, nr)
}

// qgemmPoolAVX2 is qgemmPoolGeneric on the AVX2 kernels: each pooled
// group's accumulators from qacc8x32AVX2, their window maxima (taken in
// place by qpoolMax8x32AVX2) requantized
// by qepi8x32AVX2 into a small tile of codes, which are then stored at the
// group's output positions. Layers the pooled path does not produce
// (per-column constants, a residual, float output) take the Go twin.
func qgemmPoolAVX2(k4 int, a *int8, b *uint8, out *byte, ldo, mr, np int, qp *int64, rem, phw, jump int) {
	q := (*QEpi)(unsafe.Pointer(qp))
	if q.Flags&(QCol|QResid) != 0 || q.Flags&QQuant == 0 {
		qgemmPoolGeneric(k4, a, b, out, ldo, mr, np, qp, rem, phw, jump)
		return
	}
	var codes [MR * PoolGroup]byte
	var acc [MR * NR]int32
	for s := 0; s*PoolGroup < np; s++ {
		if k4 == 0 {
			acc = [MR * NR]int32{} // qaccumulate adds to it (the assembly overwrites)
		}
		qaccTile(&acc, k4, a, (*uint8)(unsafe.Add(unsafe.Pointer(b), s*k4*4*NR)), mr, NR)
		qpoolMax8x32AVX2(&acc[0])
		qepi8x32AVX2(&acc[0], &codes[0], PoolGroup, mr, PoolGroup, qp)
		for j := 0; j < min(PoolGroup, np-s*PoolGroup); j++ {
			at := s*PoolGroup + j
			if at >= rem {
				at += (1 + (at-rem)/phw) * jump
			}
			for i := 0; i < mr; i++ {
				*(*byte)(unsafe.Add(unsafe.Pointer(out), i*ldo+at)) = codes[i*PoolGroup+j]
			}
		}
	}
}

// micro dispatches with a switch (not a function variable) so that callers'
// operands stay on their stacks (the assembly is //go:noescape).
func micro(k int, a, b *float32, ldb int, c *float32, ldc, mr, nr int, bias, resid *float32, lo, hi float32, flags int) {
	switch Variant {
	case VariantAVX512:
		sgemm8x32AVX512(k, a, b, ldb, c, ldc, mr, nr, bias, resid, lo, hi, flags)
	case VariantAVX2:
		sgemm8x32AVX2(k, a, b, ldb, c, ldc, mr, nr, bias, resid, lo, hi, flags)
	default:
		sgemmGeneric(k, a, b, ldb, c, ldc, mr, nr, bias, resid, lo, hi, flags)
	}
}

func dwRow(x *float32, ldx int, w *float32, kh, kw, dh, dw, s2 int, idx *int32, out *float32, n int, bias float32, resid *float32, lo, hi float32, flags int, scale, ys, qlo, qhi float32, yz int32) {
	switch Variant {
	case VariantAVX512:
		dwRowAVX512(x, ldx, w, kh, kw, dh, dw, s2, idx, out, n, bias, resid, lo, hi, flags, scale, ys, qlo, qhi, yz)
	default:
		dwRowGeneric(x, ldx, w, kh, kw, dh, dw, s2, idx, out, n, bias, resid, lo, hi, flags, scale, ys, qlo, qhi, yz)
	}
}

func im2colGather(dst, plane *float32, hw, cg int, tab *int32, taps int) {
	switch Variant {
	case VariantAVX512:
		im2colGatherAVX512(dst, plane, hw, cg, tab, taps)
	default:
		im2colGatherGeneric(dst, plane, hw, cg, tab, taps)
	}
}

func im2colSegs(dst, plane *float32, hw, cg int, segs *int32, taps int) {
	switch Variant {
	case VariantAVX512:
		im2colSegsAVX512(dst, plane, hw, cg, segs, taps)
	default:
		im2colSegsGeneric(dst, plane, hw, cg, segs, taps)
	}
}

func maxPoolRowF32(out, x *float32, w, n, rows int, lanes *int32) {
	switch Variant {
	case VariantAVX512:
		maxPoolRowF32AVX512(out, x, w, n, rows, lanes)
	case VariantAVX2:
		maxPoolRowF32AVX2(out, x, w, n, rows)
	default:
		maxPoolRowF32Generic(out, x, w, n, rows, lanes)
	}
}

func gemv(k int, a, b *float32, sstride int, c *float32, n int, bias, resid *float32, lo, hi float32, flags int) {
	switch Variant {
	case VariantAVX512:
		sgemvAVX512(k, a, b, sstride, c, n, bias, resid, lo, hi, flags)
	default:
		sgemvGeneric(k, a, b, sstride, c, n, bias, resid, lo, hi, flags)
	}
}

func maxPoolRow(out, x *float32, ldx, kh, kw, s2 int, idx *int32, n int) {
	switch Variant {
	case VariantAVX512:
		maxPoolRowAVX512(out, x, ldx, kh, kw, s2, idx, n)
	default:
		maxPoolRowGeneric(out, x, ldx, kh, kw, s2, idx, n)
	}
}

func dwPlaneF32(x *float32, ldx int, w *float32, kh, kw, dh, dw, s2 int, idx *int32, out *float32, n, rows, sh int, bias float32, resid *float32, lo, hi float32, flags int) {
	switch Variant {
	case VariantAVX512:
		dwPlaneAVX512(x, ldx, w, kh, kw, dh, dw, s2, idx, out, n, rows, sh, bias, resid, lo, hi, flags)
	default:
		dwPlaneGeneric(x, ldx, w, kh, kw, dh, dw, s2, idx, out, n, rows, sh, bias, resid, lo, hi, flags)
	}
}

func dw3x3(x *float32, w, h int, wt, bias, out *float32, n, rows, pt, pl, s int, resid *float32, lo, hi float32, flags, planes int) {
	switch {
	case Variant != VariantAVX512:
		dw3x3Generic(x, w, h, wt, bias, out, n, rows, pt, pl, s, resid, lo, hi, flags, planes)
	case s == 1:
		dw3x3S1AVX512(x, w, h, wt, bias, out, n, rows, pt, pl, resid, lo, hi, flags, planes, &evenLanes[0])
	default:
		dw3x3S2AVX512(x, w, h, wt, bias, out, n, rows, pt, pl, resid, lo, hi, flags, planes, &evenLanes[0])
	}
}
