package avx

import (
	"math"
	"unsafe"
)

// The AVX2 INT8 3×3 depthwise path (no VPDPBUSD, no VPERMB): each plane is
// first copied into a byte plane padded with the input zero point's code
// (a padded tap then contributes code − x_zero = 0, as kilnq's skipped
// tap does), so the row kernel needs no border logic; it accumulates in
// float32 (exact, see qdw3x3RowAVX2's generator) 8 outputs at a time.

// qdwRowK is the row kernel's per-channel block: the nine taps as float32
// (kh, kw order), −x_zero·Σw, the scale and the bias.
type qdwRowK [12]float32

// newQDWRowK builds the block from a channel's QDWTable and the zero point.
func newQDWRowK(t []int32, xz int32) qdwRowK {
	var k qdwRowK
	var sum int32
	for i := range 3 {
		for j := range 3 {
			v := int32(int8(t[i] >> (8 * j)))
			k[3*i+j] = float32(v)
			sum += v
		}
	}
	k[9] = float32(-xz * sum)
	k[10], k[11] = math.Float32frombits(uint32(t[7])), math.Float32frombits(uint32(t[8]))
	return k
}

// qdw3x3RowGeneric is the portable twin of the AVX2 row kernels (xu: uint8
// input codes, else int8; yu: uint8 output codes, else int8; s the
// stride), the reference loop (x a plane padded with x_zero's code, rows
// ldx bytes apart, so that every tap is inside it; k a qdwRowK; p a qdwEpi;
// resid nil or n floats):
//
//	for ow < n:
//		acc := k[9] + Σ_{i<3, j<3} k[3i+j]·code(x[i·ldx + ow·s + j])   (exact integers in float32)
//		v := clamp(acc·k[10] + k[11] + resid[ow], lo, hi) / ys
//		out[ow] = saturate(roundHalfEven(clamp(v, qlo, qhi)) + yz)   (NaN → qlo)
func qdw3x3RowGeneric(x *byte, ldx int, k *float32, out *byte, n int, resid *float32, p *float32, s int, xu, yu bool) {
	ks := (*qdwRowK)(unsafe.Pointer(k))
	e := (*qdwEpi)(unsafe.Pointer(p))
	for ow := range n {
		acc := ks[9]
		for i := range 3 {
			for j := range 3 {
				b := *(*byte)(unsafe.Add(unsafe.Pointer(x), i*ldx+ow*s+j))
				c := float32(int8(b))
				if xu {
					c = float32(b)
				}
				acc += ks[3*i+j] * c
			}
		}
		y := acc*ks[10] + ks[11]
		if resid != nil {
			y += *(*float32)(unsafe.Add(unsafe.Pointer(resid), 4*ow))
		}
		if y < e.lo {
			y = e.lo
		}
		if y > e.hi {
			y = e.hi
		}
		v := y / e.ys
		if !(v >= e.qlo) {
			v = e.qlo
		}
		v = min(v, e.qhi)
		*(*byte)(unsafe.Add(unsafe.Pointer(out), ow)) = byte(int32(math.RoundToEven(float64(v))) + e.yz)
	}
}

// qdwPadGeometry is the padded plane of qdw3x3Padded: ph rows of ldx bytes
// (the taps of rows output rows of max(n, 8) outputs, plus 16 bytes for
// the stride-2 kernel's 16-byte loads), and the buffer's length (32 bytes
// of slack after the last row for the same loads).
func qdwPadGeometry(n, rows, s int) (ph, ldx, size int) {
	ph = (rows-1)*s + 3
	ldx = (max(n, 8)-1)*s + 3 + 16
	return ph, ldx, ph*ldx + 32
}

// padCodes3x3 copies plane xs (h×w codes) into buf (ph rows of ldx bytes)
// at offset (pt, pl), every other byte copied from zrow (ldx bytes of the
// zero point's code).
func padCodes3x3(buf, xs []byte, w, h, pt, pl, ph, ldx int, zrow []byte) {
	for r := range ph {
		row := buf[r*ldx : (r+1)*ldx]
		ih := r - pt
		if ih < 0 || ih >= h {
			copy(row, zrow)
			continue
		}
		cnt := min(w, ldx-pl)
		copy(row[:pl], zrow)
		copy(row[pl:pl+cnt], xs[ih*w:ih*w+cnt])
		copy(row[pl+cnt:], zrow)
	}
}

func fillBytes(b []byte, z byte) {
	for i := range b {
		b[i] = z
	}
}
