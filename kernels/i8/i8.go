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

// PairsSize is the scratch Gemm needs for depth k.
func PairsSize(k int) int { return max(k, 1) * NR / 2 }

// MaxK is the deepest product whose int32 sum cannot overflow:
// |a·b| ≤ 128·255 per term (weights -128..127, codes minus zero points
// -255..255).
const MaxK = (1<<31 - 1) / (128 * 255)

// Variant selects the micro-kernel implementation (see kernels/f32).
var Variant = VariantGeneric

const VariantGeneric = 0

// micro computes the exact int32 sums of one tile; a switch, not a
// function variable, keeps acc on the caller's stack.
func micro(k int, ap []int8, bp []int64, acc *Tile) {
	switch Variant {
	default:
		microGeneric(k, ap, bp, acc)
	}
}

// microGeneric is the portable micro-kernel. Scalar Go has no SIMD, so it
// multiplies two 32-bit lanes at once in 64-bit integers (SWAR): B comes as
// pairs v = b0 + b1·2³² (Pairs), and a·v accumulates a·b0 + a·b1·2³²
// exactly. Each lane's sum fits int32 (depth ≤ MaxK), so the low lane is
// int32(acc) and the high one (acc − low)/2³², both exact.
func microGeneric(k int, ap []int8, bp []int64, acc *Tile) {
	if k == 0 {
		*acc = Tile{}
		return
	}
	_ = ap[k*MR-1]
	_ = bp[k*NR/2-1]
	var c00, c01, c10, c11, c20, c21, c30, c31 int64
	pa := unsafe.Pointer(unsafe.SliceData(ap))
	pb := unsafe.Pointer(unsafe.SliceData(bp))
	for p := 0; p < k; p++ {
		a := (*[MR]int8)(unsafe.Add(pa, p*MR)) // from the base: never one past the end (checkptr)
		b := (*[NR / 2]int64)(unsafe.Add(pb, p*NR/2*8))
		v0, v1 := b[0], b[1]
		a0 := int64(a[0])
		c00 += a0 * v0
		c01 += a0 * v1
		a1 := int64(a[1])
		c10 += a1 * v0
		c11 += a1 * v1
		a2 := int64(a[2])
		c20 += a2 * v0
		c21 += a2 * v1
		a3 := int64(a[3])
		c30 += a3 * v0
		c31 += a3 * v1
	}
	for i, v := range [MR * NR / 2]int64{c00, c01, c10, c11, c20, c21, c30, c31} {
		lo := int64(int32(uint32(v)))
		acc[2*i] = int32(lo)
		acc[2*i+1] = int32((v - lo) >> 32)
	}
}

// Pairs converts one packed B strip (k×NR int16) into the micro-kernel's
// lane pairs (k×NR/2 int64).
func Pairs(dst []int64, strip []int16, k int) {
	_ = strip[k*NR-1]
	_ = dst[k*NR/2-1]
	for p := 0; p < k; p++ {
		s := strip[p*NR : p*NR+NR]
		d := dst[p*NR/2 : p*NR/2+NR/2]
		d[0] = int64(s[0]) + int64(s[1])<<32
		d[1] = int64(s[2]) + int64(s[3])<<32
	}
}

// Gemm multiplies packed int8 A (m rows, depth k) by packed int16 B (n
// columns); every tile's exact sums go to the epilogue as float32(acc),
// which rounds each once, as the reference does. pairs is scratch of
// PairsSize(k) elements.
func Gemm(k int, ap []int8, m int, bp []int16, n int, r0, c0 int, e *f32.Epilogue, pairs []int64) {
	var acc Tile
	var fa [MR * NR]float32
	bs := pairs[:k*NR/2]
	for t := 0; t < n; t += NR {
		Pairs(bs, bp[t*k:t*k+NR*k], k)
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

// Gemv multiplies packed int8 A (m rows, depth k) by one decoded column x
// and stores it as output column c0 (batch-1 dense layers).
func Gemv(k int, ap []int8, m int, x []int16, r0, c0 int, e *f32.Epilogue) {
	var fa [MR]float32
	x = x[:k]
	for s := 0; s < m; s += MR {
		a := ap[s*k : s*k+MR*k]
		var c0_, c1, c2, c3 int32
		for p, v := range x {
			w := a[p*MR : p*MR+MR : p*MR+MR]
			xv := int32(v)
			c0_ += int32(w[0]) * xv
			c1 += int32(w[1]) * xv
			c2 += int32(w[2]) * xv
			c3 += int32(w[3]) * xv
		}
		fa = [MR]float32{float32(c0_), float32(c1), float32(c2), float32(c3)}
		e.Store(fa[:], 1, r0+s, c0, min(MR, m-s), 1)
	}
}
