package avx

import (
	"unsafe"

	"github.com/kilnml/kiln/kernels/pack"
)

// Epi is a GEMM's float epilogue: y = act(acc + bias + resid) with the
// bias per row or per column. Clamp-like activations (none, Relu, Clip)
// run inside the micro-kernel; any other runs in Go on the stored tile
// (Act, applied after the adds, exactly as kernels/f32's Epilogue).
type Epi struct {
	Bias   []float32 // M entries (BiasRow) or N entries (BiasCol)
	BiasOn int       // 0, FlagBiasRow or FlagBiasCol
	Resid  []float32 // indexed like the output, nil for none
	Clamp  bool
	Lo, Hi float32
	Act    func(float32) float32 // nil when the clamp covers the activation
	ActRow func([]float32)       // optional: Act over a stored row (vectorized), used instead of Act where set
}

// PackA packs an m×k row-major matrix (A[i][p] = a[i*rs+p*cs]) in MR-row
// strips for Gemm.
func PackA(dst, a []float32, m, k, rs, cs int) {
	if cs != 1 {
		pack.A(dst, a, (*[256]float32)(nil), m, k, rs, cs, MR)
		return
	}
	// Rows in place (the usual case): the same layout as pack.A without its
	// generic per-element load, which made packing activations ~13% of an
	// FP32 transformer's time.
	for s := 0; s < m; s += MR {
		strip := dst[s*k : s*k+MR*k]
		if s+MR <= m {
			packStrip8(strip, a[s*rs:], k, rs)
			continue
		}
		// A partial strip (a batch-1 dense layer's one row): clear it in one
		// memclr, then place the rows; zeroing the padding element by element
		// cost 7/8 of the strip in scalar stores (~8% of simplecnn at batch 1).
		clear(strip)
		for i := 0; i < m-s; i++ {
			for p, v := range a[(s+i)*rs : (s+i)*rs+k] {
				strip[p*MR+i] = v
			}
		}
	}
}

// ASize is the length of a packed A.
func ASize(m, k int) int { return pack.ASize(m, k, MR) }

// BSize is the length of a packed B of n columns.
func BSize(k, n int) int { return pack.BSize(k, n, NR) }

// Gemm computes rows [0,m) and columns [0,n) of C = epi(A·B): c[i*ldc+j]
// for packed A (ap, MR-row strips, depth k) and B either packed in NR-column
// strips (ldb == 0) or row-major with row stride ldb. Rows of the epilogue's
// bias and residual are counted from r0 and columns from c0 (the block's
// place in the whole output). Row strips are the outer loop so that one A
// strip serves every column strip from L1/L2, and B stays in L2.
func Gemm(k int, ap []float32, m int, b []float32, ldb, n int, c []float32, ldc int, e *Epi, r0, c0 int) {
	epi := e.BiasOn
	if e.Resid != nil {
		epi |= FlagResid
	}
	var t Tile
	if e.Clamp {
		epi |= FlagClamp
		t.Lo, t.Hi = e.Lo, e.Hi
	}
	if m == 1 && ldb == 0 && e.BiasOn != FlagBiasRow && Variant != VariantAVX2 {
		gemvRow(k, ap, b, n, c, ldc, e, epi, t.Lo, t.Hi, r0, c0)
		return
	}
	// K blocks of KC: an A strip block (MR×KC) stays in L1 and the B block
	// of a column chunk in L2; later blocks accumulate onto the stored
	// partial sums, the epilogue runs with the last.
	nb := max(1, (k+KC-1)/KC)
	if n <= 2*NR && Variant != VariantAVX2 {
		// Narrow outputs (7×7 convs: 49 columns) in one block: an A strip
		// serves only 2–3 column strips, and the passes over the stored
		// partial sums cost more than the L1 they save (BenchmarkGemmColsTail
		// 160×960×49 107 → 112 GFLOP/s). The sums are the same either way
		// (one FMA chain continued from the stored value), except on the
		// AVX2 variant, which adds a block's sum to the stored one: it keeps
		// the blocks, so that its results do not depend on the chunk widths
		// (and so on the thread count).
		nb = 1
	}
	step := (k + nb - 1) / nb // equal blocks: 288 is 144+144, not 256+32
	// A tail of a few columns goes to the column kernel (gemmcols.go),
	// after each group of colsStrips row strips, whose A the micro-kernel
	// has just brought into L2: the micro-kernel prefetches A ahead of its
	// loads (at batch 1 the weights come from DRAM), the column kernel,
	// with its 8 strip streams, does not (ResNet-50's 7×7 1×1 convs, whose
	// 49 columns leave a 1-column tail, were 7–9% slower with cold weights
	// when the tail ran first).
	nt := n - tailCols(n, k)
	for kb := 0; kb == 0 || kb < k; kb += step {
		kc := min(step, k-kb)
		last := kb+step >= k
		t.Flags = 0
		if kb > 0 {
			t.Flags = FlagAccum
		}
		if last {
			t.Flags |= epi
		}
		for s := 0; s < m; s += MR {
			if nt < n && s > 0 && s%(colsStrips*MR) == 0 { // the previous group's tail
				gemmColsTail(k, kb, kc, ap, s-colsStrips*MR, s, b, ldb, nt, n, c, ldc, e, epi, t.Lo, t.Hi, kb > 0, last, r0, c0)
			}
			mr := min(MR, m-s)
			as := ap[s*k+kb*MR : s*k+(kb+kc)*MR]
			for j := 0; j < nt; j += NR {
				nr := min(NR, nt-j)
				var bs []float32
				bld := ldb
				if ldb == 0 {
					bs, bld = b[j*k+kb*NR:j*k+(kb+kc)*NR], NR
				} else {
					bs = b[kb*ldb+j:]
				}
				switch e.BiasOn {
				case FlagBiasRow:
					t.Bias = e.Bias[r0+s:]
				case FlagBiasCol:
					t.Bias = e.Bias[c0+j:]
				}
				off := s*ldc + j
				if e.Resid != nil {
					t.Resid = e.Resid[(r0+s)*ldc+c0+j:]
				}
				Micro(kc, as, bs, bld, c[off:], ldc, mr, nr, &t)
				if last && e.Act != nil {
					for i := 0; i < mr; i++ {
						row := c[off+i*ldc : off+i*ldc+nr]
						if e.ActRow != nil {
							e.ActRow(row)
							continue
						}
						for x, y := range row {
							row[x] = e.Act(y)
						}
					}
				}
			}
		}
		if nt < n && m > 0 { // the last group's tail
			s := (m - 1) / (colsStrips * MR) * (colsStrips * MR)
			gemmColsTail(k, kb, kc, ap, s, m, b, ldb, nt, n, c, ldc, e, epi, t.Lo, t.Hi, kb > 0, last, r0, c0)
		}
	}
}

// KC is the depth of one K block of Gemm.
const KC = 256

// gemvRow is Gemm for one row of A and packed B (dense layers at batch 1):
// the 8-row micro-kernel would spend 7/8 of its FMAs on padding, so each
// group of up to four B strips is one pass of sgemv over the whole depth,
// with the same sums (increasing p, FMA per step) and epilogue.
func gemvRow(k int, ap, b []float32, n int, c []float32, ldc int, e *Epi, flags int, lo, hi float32, r0, c0 int) {
	if k > 0 {
		_ = ap[(k-1)*MR]
	}
	for j := 0; j < n; j += 4 * NR {
		cols := min(4*NR, n-j)
		strips := (cols + NR - 1) / NR
		if k > 0 {
			_ = b[j*k+(strips*k-1)*NR+NR-1]
		}
		var bias, resid *float32
		if e.BiasOn == FlagBiasCol {
			bias = &e.Bias[c0+j : c0+j+cols][0]
		}
		if e.Resid != nil {
			resid = &e.Resid[r0*ldc+c0+j : r0*ldc+c0+j+cols][0]
		}
		var pa, pb *float32
		if k > 0 {
			pa, pb = &ap[0], &b[j*k]
		}
		out := c[j : j+cols]
		gemv(k, pa, pb, k*NR, &out[0], cols, bias, resid, lo, hi, flags)
		if e.ActRow != nil {
			e.ActRow(out)
		} else if e.Act != nil {
			for x, y := range out {
				out[x] = e.Act(y)
			}
		}
	}
}

// sgemvGeneric is the portable twin of the one-row kernel, the reference
// loop (a: the packed A strip of one row, so a[p*MR]; b: up to four packed
// B strips, sstride floats apart):
//
//	for j < n: y := Σ_{p<k} a[p*MR]·b[(j/NR)*sstride + p*NR + j%NR]   (increasing p)
//		then bias[j] (FlagBiasCol), resid[j] (FlagResid), clamp (FlagClamp); c[j] = y
func sgemvGeneric(k int, a, b *float32, sstride int, c *float32, n int, bias, resid *float32, lo, hi float32, flags int) {
	var acc [4 * NR]float32
	if k > 0 {
		as := unsafe.Slice(a, (k-1)*MR+1)
		bs := unsafe.Slice(b, ((n-1)/NR)*sstride+k*NR)
		for p := 0; p < k; p++ {
			av := as[p*MR]
			for j := 0; j < n; j++ {
				acc[j] += av * bs[(j/NR)*sstride+p*NR+j%NR]
			}
		}
	}
	cs := unsafe.Slice(c, n)
	var bsl, rs []float32
	if flags&FlagBiasCol != 0 {
		bsl = unsafe.Slice(bias, n)
	}
	if flags&FlagResid != 0 {
		rs = unsafe.Slice(resid, n)
	}
	for j := 0; j < n; j++ {
		y := acc[j]
		if flags&FlagBiasCol != 0 {
			y += bsl[j]
		}
		if flags&FlagResid != 0 {
			y += rs[j]
		}
		if flags&FlagClamp != 0 {
			if y < lo {
				y = lo
			}
			if y > hi {
				y = hi
			}
		}
		cs[j] = y
	}
}
