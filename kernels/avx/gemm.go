package avx

import (
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
}

// PackA packs an m×k row-major matrix (A[i][p] = a[i*rs+p*cs]) in MR-row
// strips for Gemm.
func PackA(dst, a []float32, m, k, rs, cs int) {
	pack.A(dst, a, (*[256]float32)(nil), m, k, rs, cs, MR)
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
	// K blocks of KC: an A strip block (MR×KC) stays in L1 and the B block
	// of a column chunk in L2; later blocks accumulate onto the stored
	// partial sums, the epilogue runs with the last.
	nb := max(1, (k+KC-1)/KC)
	step := (k + nb - 1) / nb // equal blocks: 288 is 144+144, not 256+32
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
			mr := min(MR, m-s)
			as := ap[s*k+kb*MR : s*k+(kb+kc)*MR]
			for j := 0; j < n; j += NR {
				nr := min(NR, n-j)
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
						for x, y := range row {
							row[x] = e.Act(y)
						}
					}
				}
			}
		}
	}
}

// KC is the depth of one K block of Gemm.
const KC = 256
