package gemm

import (
	"fmt"

	"github.com/kilnml/kiln/kernels/avx"
)

// PackedA is a left operand op(A) prepared once for several products, such
// as a layer's weights multiplied with every image of a batch: on the SIMD
// path it holds op(A) in the micro-kernel's strips, so that each product
// skips packing it; on the portable path it keeps the matrix as given.
type PackedA struct {
	transA bool
	m, k   int
	a      []float32 // as given (portable path)
	lda    int
	packed []float32 // avx.MR-row strips (SIMD path), nil otherwise
}

// PackedSize is the length of the buffer PackA needs for an m×k op(A).
func PackedSize(m, k int) int { return avx.ASize(m, max(k, 0)) }

// PackA prepares op(A) (m×k; A stored k×m when transA) for SgemmPacked,
// packing into buf (at least PackedSize(m, k) long) when the SIMD path is
// in use. a and buf must not change while the PackedA is used.
func PackA(buf []float32, transA bool, m, k int, a []float32, lda int) *PackedA {
	checkArgs(transA, false, m, 0, k, a, lda, nil, 1, nil, 1) // A only
	p := &PackedA{transA: transA, m: m, k: k, a: a, lda: lda}
	if m > 0 && k > 0 && useSIMD() {
		if len(buf) < PackedSize(m, k) {
			panic(fmt.Sprintf("gemm.PackA: buffer of %d for a %dx%d operand needs %d", len(buf), m, k, PackedSize(m, k)))
		}
		p.packed = buf[:PackedSize(m, k)]
		packStrips(p.packed, transA, m, k, a, lda)
	}
	return p
}

// SgemmPacked computes C = op(A)·op(B) + beta·C as Sgemm does, with op(A)
// from PackA: bitwise the same result as Sgemm on the same operands.
func SgemmPacked(pa *PackedA, transB bool, n int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if pa.packed == nil || !useSIMD() {
		Sgemm(pa.transA, transB, pa.m, n, pa.k, pa.a, pa.lda, b, ldb, beta, c, ldc)
		return
	}
	if n <= 0 {
		return
	}
	checkArgs(pa.transA, transB, pa.m, n, pa.k, pa.a, pa.lda, b, ldb, c, ldc)
	bufs := simdPool.Get().(*simdBufs)
	defer simdPool.Put(bufs)
	productSIMD(bufs, pa.packed, pa.m, pa.k, transB, n, b, ldb, beta, c, ldc)
}
