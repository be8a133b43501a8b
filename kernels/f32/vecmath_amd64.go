//go:build !noasm && amd64

package f32

import (
	"golang.org/x/sys/cpu"

	"github.com/kilnml/kiln/kernels/isa"
)

// vecAVX512 says whether the AVX-512 twins of the vector math run (tests
// switch it off to check the Go loops, and on to compare the two).
var vecAVX512 = cpu.X86.HasAVX512F && isa.Allows(isa.AVX512)

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

//go:noescape
func sumLanesAVX512(x *float32, n int, lanes *[16]float32)

//go:noescape
func devLanesAVX512(x *float32, n int, mean float32, d, q *[16]float32)

//go:noescape
func normAffineAVX512(y, x, gamma, beta *float32, n int, k *[3]float32)

func sumLanes16(x []float32, lanes *[16]float32) {
	if vecAVX512 && len(x) > 0 {
		sumLanesAVX512(&x[0], len(x), lanes)
		return
	}
	sumLanes(x, lanes)
}

func devLanes16(x []float32, mean float32, d, q *[16]float32) {
	if vecAVX512 && len(x) > 0 {
		devLanesAVX512(&x[0], len(x), mean, d, q)
		return
	}
	devLanes(x, mean, d, q)
}

func normAffine16(y, x, gamma, beta []float32, k *[3]float32) {
	if vecAVX512 && len(x) > 0 {
		var b *float32
		if beta != nil {
			b = &beta[:len(x)][0]
		}
		normAffineAVX512(&y[:len(x)][0], &x[0], &gamma[:len(x)][0], b, len(x), k)
		return
	}
	normAffine(y, x, gamma, beta, k)
}

//go:noescape
func scaleAddAVX512(y, acc, w, b, r *float32, n int, xs float32)

func scaleAdd16(y, acc, w, b, r []float32, xs float32) {
	if vecAVX512 && len(y) > 0 {
		n := len(y)
		scaleAddAVX512(&y[0], &acc[:n][0], &w[:n][0], &b[:n][0], &r[:n][0], n, xs)
		return
	}
	scaleAdd(y, acc, w, b, r, xs)
}
