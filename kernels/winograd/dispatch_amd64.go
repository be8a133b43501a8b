//go:build !noasm && amd64

package winograd

// The AVX-512 kernels need AVX512F (gathers, scatters, masks): they run
// when kernels/avx runs its AVX-512 micro-kernel (asmVariant).
const hasAsm = true

func input(k Kind, v *float32, vstride int, x *float32, idx *int32, mask *uint16, c, hw, w int) {
	if !asmVariant() {
		inputGeneric(k, v, vstride, x, idx, mask, c, hw, w)
		return
	}
	if k == F2 {
		inputF2AVX512(v, vstride, x, idx, mask, c, hw, w)
	} else {
		inputF4AVX512(v, vstride, x, idx, mask, c, hw, w)
	}
}

func output(k Kind, y, mb *float32, mstride, ldm, rows int, idx *int32, mask *uint16, yhw, yw int, bias, resid *float32, lo, hi float32, flags int) {
	if !asmVariant() {
		outputGeneric(k, y, mb, mstride, ldm, rows, idx, mask, yhw, yw, bias, resid, lo, hi, flags)
		return
	}
	if k == F2 {
		outputF2AVX512(y, mb, mstride, ldm, rows, idx, mask, yhw, yw, bias, resid, lo, hi, flags)
	} else {
		outputF4AVX512(y, mb, mstride, ldm, rows, idx, mask, yhw, yw, bias, resid, lo, hi, flags)
	}
}
