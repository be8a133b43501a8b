//go:build !noasm && amd64

package avx

import "unsafe"

// f16ToF32AVX512 and f32ToF16AVX512 are the F16C twins of f16ToF32Generic
// and f32ToF16Generic (hand-written, f16conv_amd64.s: VCVTPH2PS and
// VCVTPS2PH on 16 lanes; n a multiple of 16).
//
//go:noescape
func f16ToF32AVX512(dst *float32, src *uint16, n int)

//go:noescape
func f32ToF16AVX512(dst *uint16, src *float32, n int)

func f16ToF32(dst *float32, src *uint16, n int) {
	whole := 0
	if Variant == VariantAVX512 {
		whole = n &^ 15
		if whole > 0 {
			f16ToF32AVX512(dst, src, whole)
		}
	}
	if n > whole {
		f16ToF32Generic((*float32)(unsafe.Add(unsafe.Pointer(dst), 4*whole)), (*uint16)(unsafe.Add(unsafe.Pointer(src), 2*whole)), n-whole)
	}
}

func f32ToF16(dst *uint16, src *float32, n int) {
	whole := 0
	if Variant == VariantAVX512 {
		whole = n &^ 15
		if whole > 0 {
			f32ToF16AVX512(dst, src, whole)
		}
	}
	if n > whole {
		f32ToF16Generic((*uint16)(unsafe.Add(unsafe.Pointer(dst), 2*whole)), (*float32)(unsafe.Add(unsafe.Pointer(src), 4*whole)), n-whole)
	}
}
