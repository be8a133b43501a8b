// Package f32 holds kiln's float32 CPU kernels: a packed GEMM whose weights
// are packed once at build time, im2col packing straight from NCHW
// activations, a direct depthwise convolution and the fused epilogue (bias,
// residual, activation). The inner loops are small functions with a
// portable Go implementation selected through function variables
// (micro below), so per-ISA assembly can replace them behind a dispatch
// switch without touching the drivers.
package f32

import "unsafe"

// Register tile of the portable micro-kernel: MR rows of packed A times NR
// columns of packed B. 2×6 keeps its 12 accumulators and the streamed
// operands in the 15 float registers Go's amd64 allocator has (measured
// against 4×4, 3×4 and 4×3). Packed layouts depend on them, so a plan
// records the tile its weights were packed for.
const (
	MR = 2
	NR = 6
)

// Tile is one MR×NR block of accumulators, row-major.
type Tile = [MR * NR]float32

// Variant selects the micro-kernel implementation; CPU feature detection
// sets it once at init when assembly variants exist (VariantGeneric is
// the portable Go twin every variant is tested against).
var Variant = VariantGeneric

const VariantGeneric = 0

// micro computes acc = Σ_p a[p*MR+i]·b[p*NR+j] over p < k in increasing p
// (a fixed order: results do not depend on threading). It dispatches with a
// switch rather than a function variable so that acc stays on the caller's
// stack (assembly twins are declared //go:noescape).
func micro(k int, ap, bp []float32, acc *Tile) {
	switch Variant {
	default:
		microGeneric(k, ap, bp, acc)
	}
}

func microGeneric(k int, ap, bp []float32, acc *Tile) {
	if k == 0 {
		*acc = Tile{}
		return
	}
	_ = ap[k*MR-1]
	_ = bp[k*NR-1]
	var c00, c01, c02, c03, c04, c05, c10, c11, c12, c13, c14, c15 float32
	pa := unsafe.Pointer(unsafe.SliceData(ap))
	pb := unsafe.Pointer(unsafe.SliceData(bp))
	for p := 0; p < k; p++ {
		// Pointers are formed from the base for each p (never one past the
		// end, which -race's checkptr rejects); the slice lengths were
		// checked above.
		a := (*[MR]float32)(unsafe.Add(pa, p*MR*4))
		b := (*[NR]float32)(unsafe.Add(pb, p*NR*4))
		a0, a1 := a[0], a[1]
		b0 := b[0]
		c00 += a0 * b0
		c10 += a1 * b0
		b1 := b[1]
		c01 += a0 * b1
		c11 += a1 * b1
		b2 := b[2]
		c02 += a0 * b2
		c12 += a1 * b2
		b3 := b[3]
		c03 += a0 * b3
		c13 += a1 * b3
		b4 := b[4]
		c04 += a0 * b4
		c14 += a1 * b4
		b5 := b[5]
		c05 += a0 * b5
		c15 += a1 * b5
	}
	*acc = Tile{c00, c01, c02, c03, c04, c05, c10, c11, c12, c13, c14, c15}
}
