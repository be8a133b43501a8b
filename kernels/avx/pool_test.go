package avx

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestMaxPoolRowsF32 checks the row pool of every variant against the
// reference loop written out here, bit for bit: lengths below, at and
// above 16 outputs, NaN in each tap position, ±0 ties, ±Inf, and a guard
// band past the output.
func TestMaxPoolRowsF32(t *testing.T) {
	nan := float32(math.NaN())
	negz := float32(math.Copysign(0, -1))
	forEachVariant(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(5, 6))
		for _, n := range []int{1, 2, 7, 15, 16, 17, 31, 32, 33, 50} {
			w := 2*n + 1 // odd widths: the last column is not read
			const rows = 3
			x := randF(r, 2*rows*w)
			specials := []float32{nan, negz, 0, float32(math.Inf(1)), float32(math.Inf(-1))}
			for i := 0; i < rows*n; i += 2 {
				x[r.IntN(len(x))] = specials[r.IntN(len(specials))]
			}
			for q := 0; q < 2*rows; q++ {
				x[q*w+2*n] = float32(math.Inf(1)) // never read
			}
			out := make([]float32, rows*n+guard)
			for i := range out {
				out[i] = 42
			}
			MaxPoolRowsF32(out[:rows*n], x[:len(x)-w+2*n], w, n, rows)
			for q := 0; q < rows; q++ {
				x0, x1 := x[2*q*w:], x[(2*q+1)*w:]
				for o := 0; o < n; o++ {
					b := x0[2*o]
					for _, v := range []float32{x0[2*o+1], x1[2*o], x1[2*o+1]} {
						if v > b {
							b = v
						}
					}
					if got := out[q*n+o]; math.Float32bits(got) != math.Float32bits(b) {
						t.Fatalf("n=%d: out[%d][%d] = %v, want %v (taps %v %v %v %v)", n, q, o, got, b, x0[2*o], x0[2*o+1], x1[2*o], x1[2*o+1])
					}
				}
			}
			for i := rows * n; i < len(out); i++ {
				if out[i] != 42 {
					t.Fatalf("n=%d: guard band written at %d", n, i-n)
				}
			}
		}
	})
}

// TestMaxPoolRow: k×k windows inside the input, strides 1 and 2, widths
// below, at and above 16, NaN/±0/Inf, exact input length (no over-read in
// the Go twin), guard band; bit for bit against the loop written here.
func TestMaxPoolRow(t *testing.T) {
	nan := float32(math.NaN())
	forEachVariant(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(7, 8))
		for _, k := range [][2]int{{3, 3}, {2, 2}, {1, 3}, {3, 1}} {
			for _, s := range []int{1, 2} {
				for _, n := range []int{1, 5, 16, 17, 33, 56} {
					ldx := (n-1)*s + k[1] + 3
					x := randF(r, (k[0]-1)*ldx+(n-1)*s+k[1])
					for i := 0; i < len(x); i += 5 {
						x[r.IntN(len(x))] = []float32{nan, 0, float32(math.Copysign(0, -1)), float32(math.Inf(-1))}[r.IntN(4)]
					}
					out := make([]float32, n+guard)
					for i := range out {
						out[i] = 42
					}
					MaxPoolRow(out[:n], x, ldx, k[0], k[1], s, n)
					for o := 0; o < n; o++ {
						b := x[o*s]
						for i := 0; i < k[0]; i++ {
							for j := 0; j < k[1]; j++ {
								if v := x[i*ldx+o*s+j]; (i|j) != 0 && v > b {
									b = v
								}
							}
						}
						if math.Float32bits(out[o]) != math.Float32bits(b) {
							t.Fatalf("k=%v s=%d n=%d: out[%d] = %v, want %v", k, s, n, o, out[o], b)
						}
					}
					for i := n; i < len(out); i++ {
						if out[i] != 42 {
							t.Fatalf("k=%v s=%d n=%d: guard band written", k, s, n)
						}
					}
				}
			}
		}
	})
}
