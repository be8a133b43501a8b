package avx

import (
	"math"
	"unsafe"

	"github.com/kilnml/kiln/floatx"
)

// F16ToF32 widens float16 values (exact; a signaling NaN comes out quiet,
// as F16C's VCVTPH2PS and the reference's float64 widening make it).
func F16ToF32(dst []float32, src []uint16) {
	n := min(len(dst), len(src))
	if n > 0 {
		f16ToF32(&dst[0], &src[0], n)
	}
}

// F32ToF16 rounds float32 values to float16, half to even (overflow to
// ±Inf, NaN kept quiet with its sign and top payload bits), as
// floatx.F32ToF16 and F16C's VCVTPS2PH with rounding mode 0.
func F32ToF16(dst []uint16, src []float32) {
	n := min(len(dst), len(src))
	if n > 0 {
		f32ToF16(&dst[0], &src[0], n)
	}
}

// f16ToF32Generic is the portable twin of the widening, the reference loop:
//
//	for i < n: dst[i] = floatx.F16ToF32(src[i]), NaNs quieted (bit 22 set)
func f16ToF32Generic(dst *float32, src *uint16, n int) {
	d, s := unsafe.Slice(dst, n), unsafe.Slice(src, n)
	for i, h := range s {
		f := floatx.F16ToF32(h)
		if f != f {
			f = math.Float32frombits(math.Float32bits(f) | 1<<22)
		}
		d[i] = f
	}
}

// f32ToF16Generic is the portable twin of the narrowing, the reference loop:
//
//	for i < n: dst[i] = floatx.F32ToF16(src[i])
func f32ToF16Generic(dst *uint16, src *float32, n int) {
	d, s := unsafe.Slice(dst, n), unsafe.Slice(src, n)
	for i, f := range s {
		d[i] = floatx.F32ToF16(f)
	}
}
