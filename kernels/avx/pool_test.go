package avx

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestMaxPoolRowF32 checks the row pool of every variant against the
// reference loop written out here, bit for bit: lengths below, at and
// above 16 outputs, NaN in each tap position, ±0 ties, ±Inf, and a guard
// band past the output.
func TestMaxPoolRowF32(t *testing.T) {
	nan := float32(math.NaN())
	negz := float32(math.Copysign(0, -1))
	forEachVariant(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(5, 6))
		for _, n := range []int{1, 2, 7, 15, 16, 17, 31, 32, 33, 50} {
			x0, x1 := randF(r, 2*n+1), randF(r, 2*n+1) // odd widths: the last column is not read
			specials := []float32{nan, negz, 0, float32(math.Inf(1)), float32(math.Inf(-1))}
			for i := 0; i < n; i += 3 {
				x0[r.IntN(2*n)] = specials[r.IntN(len(specials))]
				x1[r.IntN(2*n)] = specials[r.IntN(len(specials))]
			}
			x0[2*n] = float32(math.Inf(1)) // never read
			x1[2*n] = float32(math.Inf(1))
			out := make([]float32, n+guard)
			for i := range out {
				out[i] = 42
			}
			MaxPoolRowF32(out[:n], x0, x1)
			for o := 0; o < n; o++ {
				b := x0[2*o]
				for _, v := range []float32{x0[2*o+1], x1[2*o], x1[2*o+1]} {
					if v > b {
						b = v
					}
				}
				if math.Float32bits(out[o]) != math.Float32bits(b) {
					t.Fatalf("n=%d: out[%d] = %v, want %v (taps %v %v %v %v)", n, o, out[o], b, x0[2*o], x0[2*o+1], x1[2*o], x1[2*o+1])
				}
			}
			for i := n; i < len(out); i++ {
				if out[i] != 42 {
					t.Fatalf("n=%d: guard band written at %d", n, i-n)
				}
			}
		}
	})
}
