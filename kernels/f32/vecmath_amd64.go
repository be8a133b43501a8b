//go:build !noasm && amd64

package f32

import "golang.org/x/sys/cpu"

// vecAVX512 says whether the AVX-512 twins of the vector math run (tests
// switch it off to check the Go loops, and on to compare the two).
var vecAVX512 = cpu.X86.HasAVX512F

//go:noescape
func geluAVX512(x *float32, n int)

//go:noescape
func expShiftAVX512(x *float32, n int, shift float32, lanes *[16]float32)

func geluBlock16(x []float32) {
	if vecAVX512 && len(x) > 0 {
		geluAVX512(&x[0], len(x))
		return
	}
	geluBlock(x)
}

func expShiftBlock16(x []float32, shift float32, lanes *[16]float32) {
	if vecAVX512 && len(x) > 0 {
		expShiftAVX512(&x[0], len(x), shift, lanes)
		return
	}
	expShiftBlock(x, shift, lanes)
}

//go:noescape
func quantizeAVX512(dst *byte, src *float32, n int, k *[4]float32)

func quantizeBlock16(dst []byte, src []float32, k *[4]float32) {
	if vecAVX512 && len(src) > 0 {
		quantizeAVX512(&dst[0], &src[0], len(src), k)
		return
	}
	quantizeBlock(dst, src, k)
}

//go:noescape
func scaleMaskMaxAVX512(x, mask *float32, n int, scale float32) (mx float32, nan bool)

func scaleMaskMax16(x, mask []float32, scale float32) (float32, bool) {
	if vecAVX512 && len(x) > 0 {
		var m *float32
		if mask != nil {
			m = &mask[:len(x)][0]
		}
		return scaleMaskMaxAVX512(&x[0], m, len(x), scale)
	}
	return scaleMaskMaxBlock(x, mask, scale)
}
