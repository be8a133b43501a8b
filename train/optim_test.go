package train

import (
	"math"
	"testing"
)

// Adam follows torch.optim.Adam's arithmetic: m = β1·m + (1−β1)·g and
// v = β2·v + (1−β2)·g² with 1−β taken in float64 before rounding (PyTorch
// passes the Python float 1−beta), step lr/(1−β1ᵗ), denominator
// √v/√(1−β2ᵗ) + ε. A float32 1−β2 (0.000999987) made every second moment
// 1.3e-5 small and every update 6.5e-6 large, which this test catches: the
// weights start at 0 so that their float32 rounding stays far below that.
func TestAdamMatchesPyTorchFormula(t *testing.T) {
	const tol = 1e-6 // relative to the reference weight (the sum of the updates)
	p := NewParam(4)
	opt := NewAdam([]NamedParam{{"w", p}}, 1e-3)
	grads := [][]float32{{0.5, -0.02, 1, 0.3}, {0.4, 0.01, -1, 0.3}, {-0.1, 0.03, 0.5, 0.3}}
	var m, v, w [4]float64
	for step, g := range grads {
		copy(p.Grad, g)
		opt.Step()
		t1 := float64(step + 1)
		for i, gi := range g {
			m[i] = 0.9*m[i] + (1-0.9)*float64(gi)
			v[i] = 0.999*v[i] + (1-0.999)*float64(gi)*float64(gi)
			denom := math.Sqrt(v[i])/math.Sqrt(1-math.Pow(0.999, t1)) + 1e-8
			w[i] -= 1e-3 / (1 - math.Pow(0.9, t1)) * m[i] / denom
			if d := math.Abs(float64(p.Data[i]) - w[i]); d > tol*math.Abs(w[i]) {
				t.Fatalf("step %d, weight %d: %.9g, PyTorch's formula %.9g (relative %.1e)", step+1, i, p.Data[i], w[i], d/math.Abs(w[i]))
			}
		}
	}
}
