//go:build noasm || !amd64

package winograd

const hasAsm = false

func input(k Kind, v *float32, vstride int, x *float32, idx *int32, mask *uint16, c, hw, w int) {
	inputGeneric(k, v, vstride, x, idx, mask, c, hw, w)
}

func output(k Kind, y, mb *float32, mstride, ldm, rows int, idx *int32, mask *uint16, yhw, yw int, bias, resid *float32, lo, hi float32, flags int) {
	outputGeneric(k, y, mb, mstride, ldm, rows, idx, mask, yhw, yw, bias, resid, lo, hi, flags)
}
