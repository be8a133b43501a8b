package avx

import "unsafe"

// DequantizeCodes is DequantizeLinear of 8-bit codes (int8, or uint8 with
// unsigned) with a per-tensor scale and zero point: dst[i] =
// float32(code(src[i]) − zero)·scale.
func DequantizeCodes(dst []float32, src []byte, zero int32, scale float32, unsigned bool) {
	n := len(src)
	if n == 0 {
		return
	}
	_ = dst[n-1]
	dequantize(&dst[0], &src[0], n, zero, scale, unsigned)
}

// dequantizeGeneric is the reference loop of DequantizeCodes:
//
//	dst[i] = float32(code(src[i]) − zero) · scale   (code: int8, or uint8 with unsigned)
func dequantizeGeneric(dst *float32, src *byte, n int, zero int32, scale float32, unsigned bool) {
	d, s := unsafe.Slice(dst, n), unsafe.Slice(src, n)
	for i, c := range s {
		v := int32(int8(c))
		if unsigned {
			v = int32(c)
		}
		d[i] = float32(v-zero) * scale
	}
}
