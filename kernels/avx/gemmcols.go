package avx

import "unsafe"

// The column tail of Gemm. An output block whose width n is not a multiple
// of 16 leaves n%16 columns that the micro-kernel computes in a 16- or
// 32-wide strip: a 7×7 conv (49 positions: 32 + 17) spends a quarter of its
// FMAs on padding. Gemm hands tails of up to colsTail columns to the column
// kernel instead, which makes the rows of up to colsStrips packed A strips
// the vector side and broadcasts each column of B. Every element is the
// same FMA chain (increasing p, from zero or the stored partial sum) and
// epilogue as in the micro-kernel, so the results do not change, only the
// work: each FMA computes 8 useful outputs.
const (
	colsStrips = 8 // A strips (of MR rows) per call
	colsMax    = 3 // columns per call
)

// colsTail is the widest tail Gemm gives the column kernel (in calls of up
// to colsMax columns) at depths of at least colsMinK, colsTailDeep the
// widest at depths of at least colsDeepK: wider tails and shallower
// products stay in a 16-wide strip, whose 16 columns of FMAs cost less
// than the per-element Go around the column kernel there
// (BenchmarkGemmColsTail: 64×32×51 84 → 69 GFLOP/s, 960×160×51 90 → 101,
// 96×384×196 107 → 110, 576×96×196 105 → 103). Tests set them to exercise
// and compare both paths.
var (
	colsTail, colsMinK      = 3, 64
	colsTailDeep, colsDeepK = 6, 256
)

// tailCols is how many of n columns Gemm leaves to the column kernel at
// depth k (0: none).
func tailCols(n, k int) int {
	r := n % 16
	if (r <= colsTail && k >= colsMinK) || (r <= colsTailDeep && k >= colsDeepK) {
		if colsPath() {
			return r
		}
	}
	return 0
}

// sgemmColsGeneric is the portable twin of the column kernel, the reference
// loop (a: packed A strips, MR values per k step, strips astride floats
// apart; b: cols adjacent columns, rows ldb floats apart):
//
//	for c < cols, s < strips, i < MR:
//		acc[(c*colsStrips+s)*MR+i] += Σ_{p<k} a[s*astride+p*MR+i]·b[p*ldb+c]   (increasing p, one step at a time)
func sgemmColsGeneric(k int, a *float32, astride, strips int, b *float32, ldb, cols int, acc *float32) {
	if k == 0 {
		return
	}
	as := unsafe.Slice(a, (strips-1)*astride+k*MR)
	bs := unsafe.Slice(b, (k-1)*ldb+cols)
	accs := unsafe.Slice(acc, colsMax*colsStrips*MR)
	for c := 0; c < cols; c++ {
		for s := 0; s < strips; s++ {
			sum := accs[(c*colsStrips+s)*MR : (c*colsStrips+s+1)*MR]
			for p := 0; p < k; p++ {
				bv := bs[p*ldb+c]
				for i, av := range as[s*astride+p*MR : s*astride+p*MR+MR] {
					sum[i] += av * bv
				}
			}
		}
	}
}

// gemmColsTail computes columns [j0, n) of rows [s0, s1) for one K block
// (depth kb..kb+kc of k) of Gemm: the sums (continuing the stored ones when
// accum), and with last the epilogue (flags, then e's Go activation).
func gemmColsTail(k, kb, kc int, ap []float32, s0, s1 int, b []float32, ldb, j0, n int, c []float32, ldc int,
	e *Epi, flags int, lo, hi float32, accum, last bool, r0, c0 int) {
	strips := (s1 - s0 + MR - 1) / MR
	rows := s1 - s0
	var acc [colsMax * colsStrips * MR]float32 // column ci's rows from acc[ci*colsStrips*MR]
	biasRow, biasCol, resid, clamp := flags&FlagBiasRow != 0, flags&FlagBiasCol != 0, flags&FlagResid != 0, flags&FlagClamp != 0
	for j := j0; j < n; j += colsMax {
		cols := min(colsMax, n-j)
		for ci := 0; ci < cols; ci++ {
			a := acc[ci*colsStrips*MR : ci*colsStrips*MR+strips*MR]
			clear(a) // the last strip's padding rows too
			if accum {
				for x := range rows {
					a[x] = c[(s0+x)*ldc+j+ci]
				}
			}
		}
		var bp []float32
		bld := ldb
		if ldb == 0 { // packed B: the columns' NR-wide strip
			bp, bld = b[(j/NR)*NR*k+kb*NR+j%NR:], NR
		} else {
			bp = b[kb*ldb+j:]
		}
		a := ap[s0*k+kb*MR:]
		if kc > 0 {
			_ = a[(strips-1)*k*MR+kc*MR-1]
			_ = bp[(kc-1)*bld+cols-1]
			gemmCols(kc, &a[0], k*MR, strips, &bp[0], bld, cols, &acc[0])
		}
		for ci := 0; ci < cols; ci++ {
			col := j + ci
			sums := acc[ci*colsStrips*MR : ci*colsStrips*MR+rows]
			if !last {
				for x, y := range sums {
					c[(s0+x)*ldc+col] = y
				}
				continue
			}
			for x, y := range sums { // tileEpilogue's order
				i := s0 + x
				if biasRow {
					y += e.Bias[r0+i]
				}
				if biasCol {
					y += e.Bias[c0+col]
				}
				if resid {
					y += e.Resid[(r0+i)*ldc+c0+col]
				}
				if clamp {
					if y < lo {
						y = lo
					}
					if y > hi {
						y = hi
					}
				}
				o := i*ldc + col
				c[o] = y
				if e.ActRow != nil {
					e.ActRow(c[o : o+1])
				} else if e.Act != nil {
					c[o] = e.Act(y)
				}
			}
		}
	}
}
