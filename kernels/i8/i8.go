// Package i8 is kiln's integer GEMM for quantized layers: int8 weights ×
// 8-bit activation codes (int8, or uint8 minus its zero point, widened to
// int16 while packing) → exact int32 accumulators, then the quantized
// epilogue of kernels/f32 (kilnq semantics, bit-exact). The micro-kernel
// is a function variable with a portable Go implementation; VNNI/AVX2
// assembly replaces it (with its own packed layout) later.
package i8

import (
	"unsafe"

	"github.com/kilnml/kiln/floatx"
	"github.com/kilnml/kiln/kernels/f32"
	"github.com/kilnml/kiln/kernels/pack"
)

// Register tile of the portable micro-kernel.
const (
	MR = 4
	NR = 4
)

// Tile is one MR×NR block of int32 accumulators, row-major.
type Tile = [MR * NR]int32

// MaxK is the deepest product whose int32 sum cannot overflow:
// |a·b| ≤ 128·255 per term (weights -128..127, codes minus zero points
// -255..255).
const MaxK = (1<<31 - 1) / (128 * 255)

// Variant selects the micro-kernel implementation (see kernels/f32).
var Variant = VariantGeneric

const VariantGeneric = 0

// micro computes the exact int32 sums of one tile; a switch, not a
// function variable, keeps acc on the caller's stack.
func micro(k int, ap []int8, bp []int16, acc *Tile) {
	switch Variant {
	default:
		microGeneric(k, ap, bp, acc)
	}
}

func microGeneric(k int, ap []int8, bp []int16, acc *Tile) {
	if k == 0 {
		*acc = Tile{}
		return
	}
	_ = ap[k*MR-1]
	_ = bp[k*NR-1]
	var c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33 int32
	pa := unsafe.Pointer(unsafe.SliceData(ap))
	pb := unsafe.Pointer(unsafe.SliceData(bp))
	for p := 0; p < k; p++ {
		a := (*[MR]int8)(pa)
		b := (*[NR]int16)(pb)
		b0, b1, b2, b3 := int32(b[0]), int32(b[1]), int32(b[2]), int32(b[3])
		a0 := int32(a[0])
		c00 += a0 * b0
		c01 += a0 * b1
		c02 += a0 * b2
		c03 += a0 * b3
		a1 := int32(a[1])
		c10 += a1 * b0
		c11 += a1 * b1
		c12 += a1 * b2
		c13 += a1 * b3
		a2 := int32(a[2])
		c20 += a2 * b0
		c21 += a2 * b1
		c22 += a2 * b2
		c23 += a2 * b3
		a3 := int32(a[3])
		c30 += a3 * b0
		c31 += a3 * b1
		c32 += a3 * b2
		c33 += a3 * b3
		pa = unsafe.Add(pa, MR)
		pb = unsafe.Add(pb, NR*2)
	}
	*acc = Tile{c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33}
}

// Gemm multiplies packed int8 A (m rows, depth k) by packed int16 B (n
// columns); every tile's exact sums go to the epilogue as float32(acc),
// which rounds each once, as the reference does.
func Gemm(k int, ap []int8, m int, bp []int16, n int, r0, c0 int, e *f32.Epilogue) {
	var acc Tile
	var fa [MR * NR]float32
	for t := 0; t < n; t += NR {
		bs := bp[t*k : t*k+NR*k]
		nr := min(NR, n-t)
		for s := 0; s < m; s += MR {
			micro(k, ap[s*k:s*k+MR*k], bs, &acc)
			for i, v := range acc {
				fa[i] = float32(v)
			}
			e.Store(fa[:], NR, r0+s, c0+t, min(MR, m-s), nr)
		}
	}
}

// PackWeights packs an m×k int8 weight matrix (k×m when trans) as A.
func PackWeights(w []int8, m, k int, trans bool) []int8 {
	dst := make([]int8, pack.ASize(m, k, MR))
	rs, cs := k, 1
	if trans {
		rs, cs = 1, m
	}
	pack.A(dst, w, (*[256]int8)(nil), m, k, rs, cs, MR)
	return dst
}

// CodeTable maps activation codes to the values the micro-kernel
// multiplies: the code (int8 or uint8) minus the zero point, in -255..255.
func CodeTable(unsigned bool, zero int32) *[256]int16 {
	var t [256]int16
	for i := range t {
		if unsigned {
			t[i] = int16(int32(i) - zero)
		} else {
			t[i] = int16(int32(int8(uint8(i))) - zero)
		}
	}
	return &t
}

// E4M3Table decodes float8e4m3fn codes to float32 (the FP8 path packs
// through it and runs the float32 GEMM).
func E4M3Table() *[256]float32 {
	var t [256]float32
	for i := range t {
		t[i] = floatx.F8ToF32(uint8(i), floatx.E4M3FN)
	}
	return &t
}
