//go:build noasm || !amd64

package avx

func qdw3x3(x *byte, w, h int, tab *int32, out *byte, n, rows, pt, pl, s int, resid *float32, p *qdwEpi, planes int, xu, yu bool) {
	qdw3x3Generic(x, w, h, tab, out, n, rows, pt, pl, s, resid, p, planes, xu, yu)
}

func dequantize(dst *float32, src *byte, n int, zero int32, scale float32, unsigned bool) {
	dequantizeGeneric(dst, src, n, zero, scale, unsigned)
}
