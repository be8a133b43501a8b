//go:build !noasm && amd64

package avx

import (
	"golang.org/x/sys/cpu"

	"github.com/kilnml/kiln/kernels/isa"
)

// packTranspose says whether PackA's full strips use the AVX2 8×8
// transpose (tests switch it off to compare with the Go loop).
var packTranspose = cpu.X86.HasAVX2 && isa.Allows(isa.AVX2)

//go:noescape
func packA8AVX2(dst, a *float32, k8, rs int)

// packStrip8 packs one full strip of 8 rows (row stride rs) of depth k.
func packStrip8(strip, a []float32, k, rs int) {
	k8 := k / 8
	if packTranspose && k8 > 0 && 7*rs+k <= len(a) {
		packA8AVX2(&strip[:8*k][0], &a[0], k8, rs)
		for i := 0; i < MR; i++ { // the last k mod 8 columns
			for p := 8 * k8; p < k; p++ {
				strip[p*MR+i] = a[i*rs+p]
			}
		}
		return
	}
	packStrip8Go(strip, a, k, rs)
}
