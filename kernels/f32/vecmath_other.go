//go:build noasm || !amd64

package f32

// vecAVX512 is false where the assembly is not built.
var vecAVX512 = false

func geluBlock16(x []float32) { geluBlock(x) }

func expShiftBlock16(x []float32, shift float32, lanes *[16]float32) {
	expShiftBlock(x, shift, lanes)
}

func quantizeBlock16(dst []byte, src []float32, k *[4]float32) { quantizeBlock(dst, src, k) }

func scaleMaskMax16(x, mask []float32, scale float32) (float32, bool) {
	return scaleMaskMaxBlock(x, mask, scale)
}

func sumLanes16(x []float32, lanes *[16]float32) { sumLanes(x, lanes) }

func devLanes16(x []float32, mean float32, d, q *[16]float32) { devLanes(x, mean, d, q) }

func normAffine16(y, x, gamma, beta []float32, k *[3]float32) { normAffine(y, x, gamma, beta, k) }

func scaleAdd16(y, acc, w, b, r []float32, xs float32) { scaleAdd(y, acc, w, b, r, xs) }
