// Package gemm is kiln's general float32 matrix multiply (BLAS sgemm's
// interface: transposes, leading dimensions, beta), the one place the
// trainer multiplies matrices. On CPUs where kernels/avx selected an
// assembly micro-kernel (AVX-512 or AVX2+FMA) it runs on that kernel
// (simd.go: packing and K blocking around avx.Micro), so the trainer shares
// the inference engine's GEMM instead of keeping a second fast copy;
// elsewhere, and under -tags noasm, it runs the portable blocked GEMM below.
//
// The portable GEMM is plain Go, cache-blocked with packed panels and a
// register-blocked micro-kernel. The blocking follows the usual Goto/BLIS scheme: op(B) is packed in
// KC×NC blocks as NR-wide column strips, op(A) in MC×KC blocks as MR-tall row
// strips, and the micro-kernel multiplies one strip pair into an MR×NR tile
// of C held in registers. Packing absorbs transposition, so one kernel serves
// all four (transA, transB) cases. For a given shape the order of every
// floating-point addition is fixed, so results are deterministic.
package gemm

import (
	"fmt"
	"sync"
)

// Blocking parameters. MR×NR is the register tile: Go's amd64 register
// allocator (GOAMD64=v1, no FMA) keeps a 2×5 tile in registers best among
// the shapes measured (see BenchmarkMicroKernel); KC keeps an A strip and a B
// strip in L1, MC×KC of packed A in L2.
const (
	MR = 2
	NR = 5
	KC = 256
	MC = 120
	NC = 2000
)

var packPool = sync.Pool{New: func() any {
	return &packBufs{a: make([]float32, MC*KC), b: make([]float32, KC*((NC+NR-1)/NR*NR))}
}}

type packBufs struct{ a, b []float32 }

// Sgemm computes C = op(A)·op(B) + beta·C, where op(A) is m×k, op(B) is k×n
// and C is m×n, all row-major with leading dimensions lda, ldb, ldc.
// op(X) is Xᵀ when the matching trans flag is set (then A is stored k×m, B
// n×k). beta 0 overwrites C (NaNs in C do not leak), 1 accumulates.
// It panics if a slice is too short for the shape, like an index out of range.
func Sgemm(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m <= 0 || n <= 0 {
		return
	}
	checkArgs(transA, transB, m, n, k, a, lda, b, ldb, c, ldc)
	if k > 0 && useSIMD() {
		sgemmSIMD(transA, transB, m, n, k, a, lda, b, ldb, beta, c, ldc)
		return
	}
	scaleC(m, n, beta, c, ldc)
	if k <= 0 {
		return
	}
	bufs := packPool.Get().(*packBufs)
	defer packPool.Put(bufs)
	var tile [MR * NR]float32
	for jc := 0; jc < n; jc += NC {
		nc := min(NC, n-jc)
		for pc := 0; pc < k; pc += KC {
			kc := min(KC, k-pc)
			packB(transB, kc, nc, b, ldb, pc, jc, bufs.b)
			for ic := 0; ic < m; ic += MC {
				mc := min(MC, m-ic)
				packA(transA, mc, kc, a, lda, ic, pc, bufs.a)
				for jr := 0; jr < nc; jr += NR {
					nr := min(NR, nc-jr)
					bp := bufs.b[jr*kc : jr*kc+kc*NR]
					for ir := 0; ir < mc; ir += MR {
						mr := min(MR, mc-ir)
						ap := bufs.a[ir*kc : ir*kc+kc*MR]
						ci := (ic+ir)*ldc + jc + jr
						if mr == MR && nr == NR {
							kernel(kc, ap, bp, c[ci:], ldc)
							continue
						}
						tile = [MR * NR]float32{}
						kernel(kc, ap, bp, tile[:], NR)
						for r := 0; r < mr; r++ {
							row := c[ci+r*ldc : ci+r*ldc+nr]
							for j := range row {
								row[j] += tile[r*NR+j]
							}
						}
					}
				}
			}
		}
	}
}

func checkArgs(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	need := func(name string, rows, cols, ld, have int) {
		if rows <= 0 || cols <= 0 {
			return
		}
		if ld < cols || (rows-1)*ld+cols > have {
			panic(fmt.Sprintf("gemm: %s is %dx%d with leading dimension %d but has %d elements", name, rows, cols, ld, have))
		}
	}
	ar, ac := m, k
	if transA {
		ar, ac = k, m
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	need("A", ar, ac, lda, len(a))
	need("B", br, bc, ldb, len(b))
	need("C", m, n, ldc, len(c))
}

func scaleC(m, n int, beta float32, c []float32, ldc int) {
	if beta == 1 {
		return
	}
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		if beta == 0 {
			clear(row)
			continue
		}
		for j := range row {
			row[j] *= beta
		}
	}
}

// packA copies op(A)[ic:ic+mc, pc:pc+kc] into MR-row strips: strip s holds,
// for each p, the MR values op(A)[ic+s*MR+r, pc+p], zero-padded past mc.
func packA(trans bool, mc, kc int, a []float32, lda, ic, pc int, dst []float32) {
	for s := 0; s < mc; s += MR {
		strip := dst[s*kc : s*kc+kc*MR]
		rows := min(MR, mc-s)
		for r := 0; r < MR; r++ {
			if r >= rows {
				for p := 0; p < kc; p++ {
					strip[p*MR+r] = 0
				}
				continue
			}
			i := ic + s + r
			if trans { // op(A)[i,p] = a[p*lda+i]
				for p := 0; p < kc; p++ {
					strip[p*MR+r] = a[(pc+p)*lda+i]
				}
			} else {
				src := a[i*lda+pc : i*lda+pc+kc]
				for p, v := range src {
					strip[p*MR+r] = v
				}
			}
		}
	}
}

// packB copies op(B)[pc:pc+kc, jc:jc+nc] into NR-column strips: strip s
// holds, for each p, the NR values op(B)[pc+p, jc+s*NR+j], zero-padded.
func packB(trans bool, kc, nc int, b []float32, ldb, pc, jc int, dst []float32) {
	for s := 0; s < nc; s += NR {
		strip := dst[s*kc : s*kc+kc*NR]
		cols := min(NR, nc-s)
		if trans { // op(B)[p,j] = b[j*ldb+p]
			for j := 0; j < NR; j++ {
				if j >= cols {
					for p := 0; p < kc; p++ {
						strip[p*NR+j] = 0
					}
					continue
				}
				src := b[(jc+s+j)*ldb+pc : (jc+s+j)*ldb+pc+kc]
				for p, v := range src {
					strip[p*NR+j] = v
				}
			}
			continue
		}
		for p := 0; p < kc; p++ {
			src := b[(pc+p)*ldb+jc+s : (pc+p)*ldb+jc+s+cols]
			d := strip[p*NR : p*NR+NR]
			copy(d, src)
			clear(d[cols:])
		}
	}
}
