package gemm

import (
	"sync"

	"github.com/kilnml/kiln/kernels/avx"
)

// useSIMD reports whether Sgemm runs on kernels/avx's micro-kernel: when
// that package selected an assembly variant (AVX-512 or AVX2+FMA; never
// under -tags noasm or off amd64). Tests flip forceDriver to run the same
// driver on avx's Go twin, and forcePortable to run the portable kernel.
func useSIMD() bool {
	if forcePortable {
		return false
	}
	return forceDriver || avx.Variant != avx.VariantGeneric
}

var forceDriver, forcePortable bool

var simdPool = sync.Pool{New: func() any { return new(simdBufs) }}

type simdBufs struct{ a, b []float32 }

func grow(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}

// sgemmSIMD is Sgemm (arguments already checked, m, n, k > 0) on
// avx.Micro's 8×32 register tile. op(A) is packed whole in avx.MR-row
// strips (packing absorbs transA); see productSIMD for the rest.
func sgemmSIMD(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	bufs := simdPool.Get().(*simdBufs)
	defer simdPool.Put(bufs)
	bufs.a = grow(bufs.a, avx.ASize(m, k))
	packStrips(bufs.a, transA, m, k, a, lda)
	productSIMD(bufs, bufs.a, m, k, transB, n, b, ldb, beta, c, ldc)
}

// packStrips lays op(A) (m×k) out as avx.PackA does, in avx.MR-row
// strips (strip s, step p, row i at s*k+p*MR+i), zero rows past m. It is
// avx.PackA's layout with float32-only loops: eight rows interleaved per
// step (not A) or eight contiguous values copied per step (transA), which
// measured several times faster than the element-wise generic packer.
func packStrips(dst []float32, transA bool, m, k int, a []float32, lda int) {
	for s := 0; s < m; s += avx.MR {
		strip := dst[s*k : (s+avx.MR)*k]
		rows := min(avx.MR, m-s)
		if transA { // op(A)[s+i][p] = a[p*lda+s+i]
			for p := 0; p < k; p++ {
				d := strip[p*avx.MR : (p+1)*avx.MR]
				copy(d, a[p*lda+s:p*lda+s+rows])
				clear(d[rows:])
			}
			continue
		}
		interleave8(strip, avx.MR, a[s*lda:], lda, rows, k)
	}
}

// packBT lays op(B) = bᵀ (k×n, op(B)[p][j] = b[j*ldb+p]) out in avx.NR-column
// strips, as pack.B(dst, b, nil, k, n, 1, ldb, avx.NR) does, zero columns
// past n, eight columns (rows of b) interleaved at a time.
func packBT(dst []float32, k, n int, b []float32, ldb int) {
	for t := 0; t < n; t += avx.NR {
		strip := dst[t*k : (t+avx.NR)*k]
		for g := 0; g < avx.NR; g += 8 {
			rows := max(0, min(8, n-t-g))
			interleave8(strip[g:], avx.NR, b[min(t+g, n-1)*ldb:], ldb, rows, k)
		}
	}
}

// interleave8 writes dst[p*stride+r] = src[r*lds+p] for p < k and r < 8,
// zero for r ≥ rows. It works in chunks of p so that the missing rows can
// read a fixed zero buffer.
func interleave8(dst []float32, stride int, src []float32, lds, rows, k int) {
	var zero [256]float32
	for p0 := 0; p0 < k; p0 += len(zero) {
		kc := min(len(zero), k-p0)
		var q [8][]float32
		for i := range q {
			if i < rows {
				q[i] = src[i*lds+p0 : i*lds+p0+kc]
			} else {
				q[i] = zero[:kc]
			}
		}
		r0, r1, r2, r3, r4, r5, r6, r7 := q[0], q[1][:kc], q[2][:kc], q[3][:kc], q[4][:kc], q[5][:kc], q[6][:kc], q[7][:kc]
		d := dst[p0*stride:]
		for p, v := range r0 {
			o := d[p*stride : p*stride+8]
			o[0], o[1], o[2], o[3], o[4], o[5], o[6], o[7] = v, r1[p], r2[p], r3[p], r4[p], r5[p], r6[p], r7[p]
		}
	}
}

// productSIMD computes C = op(A)·op(B) + beta·C from a packed op(A) (ap,
// m×k). op(B) is read in place when it is row-major (Micro takes a row
// stride) and packed in avx.NR-column strips when transB. K runs in equal
// blocks of at most avx.KC, as avx.Gemm does; every output element is one
// sum in increasing p from C itself (beta 1, or C scaled first) or from
// zero (beta 0), so the result depends on the shape only, never on how a
// caller splits rows or columns among threads.
func productSIMD(bufs *simdBufs, ap []float32, m, k int, transB bool, n int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	var bp []float32
	if transB { // op(B)[p][j] = b[j*ldb+p]
		bufs.b = grow(bufs.b, avx.BSize(k, n))
		packBT(bufs.b, k, n, b, ldb)
		bp = bufs.b
	}
	accumulate := beta != 0
	if accumulate && beta != 1 {
		scaleC(m, n, beta, c, ldc)
	}
	nb := (k + avx.KC - 1) / avx.KC
	step := (k + nb - 1) / nb
	var t avx.Tile
	for kb := 0; kb < k; kb += step {
		kc := min(step, k-kb)
		t.Flags = 0
		if kb > 0 || accumulate {
			t.Flags = avx.FlagAccum
		}
		for s := 0; s < m; s += avx.MR {
			mr := min(avx.MR, m-s)
			as := ap[s*k+kb*avx.MR : s*k+(kb+kc)*avx.MR]
			for j := 0; j < n; j += avx.NR {
				nr := min(avx.NR, n-j)
				if bp != nil {
					avx.Micro(kc, as, bp[j*k+kb*avx.NR:j*k+(kb+kc)*avx.NR], avx.NR, c[s*ldc+j:], ldc, mr, nr, &t)
				} else {
					avx.Micro(kc, as, b[kb*ldb+j:], ldb, c[s*ldc+j:], ldc, mr, nr, &t)
				}
			}
		}
	}
}
