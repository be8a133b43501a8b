//go:build !noasm && amd64

package avx

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"unsafe"
)

// TestQDW3x3RowAVX2 checks the eight AVX2 depthwise row kernels against
// their Go twin on padded planes of every code value: 8–64 outputs, strides
// 1 and 2, int8/uint8 input and output, with and without a residual (with
// NaN and ±Inf) and clamp, and a guard band after the row.
func TestQDW3x3RowAVX2(t *testing.T) {
	if !hasFMA || QVariant == QVariantGeneric {
		t.Skip("no AVX2+FMA")
	}
	rng := rand.New(rand.NewPCG(3, 11))
	const guard = 16
	for _, s := range []int{1, 2} {
		for _, xu := range []bool{false, true} {
			for _, yu := range []bool{false, true} {
				for _, n := range []int{8, 16, 24, 40, 64} {
					for _, withResid := range []bool{false, true} {
						name := fmt.Sprintf("s%d_xu%v_yu%v_n%d_r%v", s, xu, yu, n, withResid)
						_, ldx, size := qdwPadGeometry(n, 1, s)
						x := make([]byte, size)
						for i := range x {
							x[i] = byte(i*7 + rng.IntN(256)) // every code value
						}
						var tab [16]int32
						for i := range 3 {
							for j := range 3 {
								tab[i] |= int32(uint32(uint8(rng.IntN(256))) << (8 * j))
							}
						}
						tab[7] = int32(math.Float32bits(1e-3 * float32(1+rng.IntN(50))))
						tab[8] = int32(math.Float32bits(float32(rng.NormFloat64())))
						xz := int32(rng.IntN(256) - 128)
						if xu {
							xz = int32(rng.IntN(256))
						}
						k := newQDWRowK(tab[:], xz)
						e := qdwEpi{lo: float32(math.Inf(-1)), hi: float32(math.Inf(1)), ys: 0.02, yz: int32(rng.IntN(41) - 20), xz: xz}
						lo, hi := float32(-128), float32(127)
						if yu {
							lo, hi = 0, 255
							e.yz = int32(rng.IntN(100) + 80)
						}
						if rng.IntN(2) == 0 {
							e.lo, e.hi = 0, 6
						}
						e.qlo, e.qhi = lo-float32(e.yz), hi-float32(e.yz)
						var resid []float32
						var rp *float32
						if withResid {
							resid = make([]float32, n)
							for i := range resid {
								resid[i] = float32(rng.NormFloat64())
							}
							resid[n/2] = float32(math.NaN())
							resid[n-1] = float32(math.Inf(1))
							resid[0] = float32(math.Inf(-1))
							rp = &resid[0]
						}
						pf := (*float32)(unsafe.Pointer(&e))
						want := make([]byte, n)
						qdw3x3RowGeneric(&x[0], ldx, &k[0], &want[0], n, rp, pf, s, xu, yu)
						got := make([]byte, n+guard)
						for i := range got {
							got[i] = 0x5A
						}
						qdw3x3Row(&x[0], ldx, &k[0], &got[0], n, rp, pf, s, xu, yu)
						for i := range n {
							if got[i] != want[i] {
								t.Fatalf("%s: out[%d] = %d, want %d", name, i, got[i], want[i])
							}
						}
						for i := n; i < len(got); i++ {
							if got[i] != 0x5A {
								t.Fatalf("%s: guard byte %d overwritten", name, i-n)
							}
						}
					}
				}
			}
		}
	}
}

// TestQPoolMax8x32AVX2 checks the in-place window maximum against its Go
// twin on tiles of extreme and random int32 values.
func TestQPoolMax8x32AVX2(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 1))
	for trial := range 50 {
		var want, got [MR * NR]int32
		for i := range want {
			switch rng.IntN(4) {
			case 0:
				want[i] = math.MinInt32
			case 1:
				want[i] = math.MaxInt32
			default:
				want[i] = int32(rng.Uint32())
			}
		}
		got = want
		qpoolMaxGeneric(&want)
		qpoolMax8x32AVX2(&got[0])
		if got != want {
			t.Fatalf("trial %d: tile differs", trial)
		}
	}
}
