//go:build noasm || !amd64

package avx

func colsPath() bool { return Variant == VariantGeneric }

func gemmCols(k int, a *float32, astride, strips int, b *float32, ldb, cols int, acc *float32) {
	sgemmColsGeneric(k, a, astride, strips, b, ldb, cols, acc)
}

func im2colSegsS2(dst, plane *float32, hw, cg int, segs *int32, taps int) {
	im2colSegsS2Generic(dst, plane, hw, cg, segs, taps)
}
