//go:build !noasm && amd64

package avx

import "unsafe"

func qdw3x3(x *byte, w, h int, tab *int32, out *byte, n, rows, pt, pl, s int, resid *float32, p *qdwEpi, planes int, xu, yu bool) {
	if QVariant != QVariantVNNI || !hasVBMI {
		qdw3x3Generic(x, w, h, tab, out, n, rows, pt, pl, s, resid, p, planes, xu, yu)
		return
	}
	pf := (*float32)(unsafe.Pointer(p))
	switch {
	case s == 1 && yu:
		qdw3x3U8S1VNNI(x, w, h, tab, out, n, rows, pt, pl, resid, pf, planes)
	case s == 1:
		qdw3x3S8S1VNNI(x, w, h, tab, out, n, rows, pt, pl, resid, pf, planes)
	case yu:
		qdw3x3U8S2VNNI(x, w, h, tab, out, n, rows, pt, pl, resid, pf, planes)
	default:
		qdw3x3S8S2VNNI(x, w, h, tab, out, n, rows, pt, pl, resid, pf, planes)
	}
}

func dequantize(dst *float32, src *byte, n int, zero int32, scale float32, unsigned bool) {
	switch {
	case QVariant != QVariantVNNI:
		dequantizeGeneric(dst, src, n, zero, scale, unsigned)
	case unsigned:
		dequantizeU8AVX512(dst, src, n, zero, scale)
	default:
		dequantizeS8AVX512(dst, src, n, zero, scale)
	}
}
