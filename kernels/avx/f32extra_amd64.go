//go:build !noasm && amd64

package avx

import "golang.org/x/sys/cpu"

// colsAsm: the column kernel's ymm16–31 need AVX-512VL besides the
// micro-kernel's features.
var colsAsm = cpu.X86.HasAVX512VL

// colsPath says whether Gemm may split off column tails: only where the
// column kernel computes what the micro-kernel in use would (the AVX2
// variant adds a stored partial sum after its own, not as a chain start).
func colsPath() bool {
	return Variant == VariantGeneric || (Variant == VariantAVX512 && colsAsm)
}

func gemmCols(k int, a *float32, astride, strips int, b *float32, ldb, cols int, acc *float32) {
	if Variant == VariantAVX512 {
		sgemmColsAVX512(k, a, astride, strips, b, ldb, cols, acc)
		return
	}
	sgemmColsGeneric(k, a, astride, strips, b, ldb, cols, acc)
}

func im2colSegsS2(dst, plane *float32, hw, cg int, segs *int32, taps int) {
	if Variant == VariantAVX512 {
		im2colSegsS2AVX512(dst, plane, hw, cg, segs, taps, &evenLanes[0])
		return
	}
	im2colSegsS2Generic(dst, plane, hw, cg, segs, taps)
}
