package winograd

import "github.com/kilnml/kiln/kernels/avx"

// WeightsSize is the length of PackWeights' result: T² packed M×C
// matrices.
func WeightsSize(k Kind, m, c int) int { return k.T() * k.T() * avx.ASize(m, c) }

// PackWeights is the weight transform, done once when an engine is built:
// for every output channel o and input channel c, U = G·g·Gᵀ of the 3×3
// kernel g = w[o][c] is computed in float64 and rounded once to float32,
// and each of the T² matrices U[ξ][ν] (M×C) is packed for avx.Gemm (MR-row
// strips), one after the other.
func PackWeights(k Kind, w []float32, m, c int) []float32 {
	if len(w) < m*c*9 {
		panic("winograd.PackWeights: short weights")
	}
	t := k.T()
	g, _, _ := Matrices(k)
	u := make([]float32, t*t*m*c) // [ξν][o][c]
	var gg [6][3]float64
	for o := 0; o < m; o++ {
		for ci := 0; ci < c; ci++ {
			f := w[(o*c+ci)*9 : (o*c+ci)*9+9]
			for i := 0; i < t; i++ { // G·g
				for j := 0; j < 3; j++ {
					var s float64
					for q := 0; q < 3; q++ {
						s += g[i][q] * float64(f[q*3+j])
					}
					gg[i][j] = s
				}
			}
			for i := 0; i < t; i++ { // (G·g)·Gᵀ
				for j := 0; j < t; j++ {
					var s float64
					for q := 0; q < 3; q++ {
						s += gg[i][q] * g[j][q]
					}
					u[((i*t+j)*m+o)*c+ci] = float32(s)
				}
			}
		}
	}
	sz := avx.ASize(m, c)
	packed := make([]float32, t*t*sz)
	for q := 0; q < t*t; q++ {
		avx.PackA(packed[q*sz:(q+1)*sz], u[q*m*c:(q+1)*m*c], m, c, c, 1)
	}
	return packed
}
