//go:build noasm || !amd64

package avx

func f16ToF32(dst *float32, src *uint16, n int) { f16ToF32Generic(dst, src, n) }

func f32ToF16(dst *uint16, src *float32, n int) { f32ToF16Generic(dst, src, n) }
