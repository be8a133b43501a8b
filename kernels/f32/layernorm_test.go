package f32

import (
	"math"
	"math/rand/v2"
	"testing"
)

func layerNorm64(x, gamma, beta []float32, eps float64) []float64 {
	n := float64(len(x))
	var mean float64
	for _, v := range x {
		mean += float64(v)
	}
	mean /= n
	var ss float64
	for _, v := range x {
		ss += (float64(v) - mean) * (float64(v) - mean)
	}
	inv := 1 / math.Sqrt(ss/n+eps)
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = (float64(v) - mean) * inv * float64(gamma[i])
		if beta != nil {
			out[i] += float64(beta[i])
		}
	}
	return out
}

func TestLayerNormRow(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	worst := 0.0
	for _, n := range []int{1, 2, 7, 8, 9, 31, 256, 257, 1024, 4096} {
		for _, offset := range []float64{0, 5, 1000} {
			for _, std := range []float64{1e-3, 1, 30} {
				x, g, b := make([]float32, n), make([]float32, n), make([]float32, n)
				for i := range x {
					x[i] = float32(offset*std + std*r.NormFloat64())
					g[i] = float32(1 + r.NormFloat64())
					b[i] = float32(r.NormFloat64())
				}
				for _, beta := range [][]float32{nil, b} {
					want := layerNorm64(x, g, beta, 1e-5)
					y := make([]float32, n)
					LayerNormRow(y, x, g, beta, 1e-5)
					for i, w := range want {
						norm := math.Abs((w - float64(bOr0(beta, i))) / math.Max(1e-30, math.Abs(float64(g[i]))))
						scale := math.Max(1, math.Abs(float64(g[i]))) * (norm + 1)
						if e := math.Abs(float64(y[i])-w) / scale; e > worst {
							worst = e
						}
						if e := math.Abs(float64(y[i])-w) / scale; !(e <= LayerNormRowErr) {
							t.Fatalf("n=%d offset=%g std=%g: y[%d] = %g, want %g (error %.3g of scale %.3g)", n, offset, std, i, y[i], w, e, scale)
						}
					}
				}
			}
		}
	}
	t.Logf("worst relative error %.3g (bound %g)", worst, LayerNormRowErr)
	// NaN and Inf in a row make the row NaN (as the reference).
	x := []float32{1, float32(math.Inf(1)), 2}
	y := make([]float32, 3)
	LayerNormRow(y, x, []float32{1, 1, 1}, nil, 1e-5)
	for i, v := range y {
		if v == v {
			t.Errorf("Inf row: y[%d] = %g, want NaN", i, v)
		}
	}
}

func bOr0(b []float32, i int) float32 {
	if b == nil {
		return 0
	}
	return b[i]
}

// go test -bench LayerNormRow ./kernels/f32: one bert4 LayerNorm (128 rows of 256).
func BenchmarkLayerNormRow(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	x, y := make([]float32, 128*256), make([]float32, 128*256)
	g, be := make([]float32, 256), make([]float32, 256)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	for i := range g {
		g[i], be[i] = 1, 0.1
	}
	for b.Loop() {
		for row := 0; row < 128; row++ {
			LayerNormRow(y[row*256:(row+1)*256], x[row*256:(row+1)*256], g, be, 1e-5)
		}
	}
}

// The AVX-512 passes give LayerNormRow the same bits as the Go loops.
func TestLayerNormRowVariants(t *testing.T) {
	if !vecAVX512 {
		t.Skip("no AVX-512 twins in this build or CPU")
	}
	defer func() { vecAVX512 = true }()
	r := rand.New(rand.NewPCG(11, 12))
	for _, n := range []int{1, 15, 16, 17, 32, 100, 256, 1000} {
		x, g, b := make([]float32, n), make([]float32, n), make([]float32, n)
		for i := range x {
			x[i] = float32(50 + 3*r.NormFloat64())
			g[i], b[i] = float32(r.NormFloat64()), float32(r.NormFloat64())
		}
		for _, beta := range [][]float32{nil, b} {
			ya, yg := make([]float32, n), make([]float32, n)
			vecAVX512 = true
			LayerNormRow(ya, x, g, beta, 1e-5)
			vecAVX512 = false
			LayerNormRow(yg, x, g, beta, 1e-5)
			for i := range ya {
				if math.Float32bits(ya[i]) != math.Float32bits(yg[i]) {
					t.Fatalf("n=%d beta %v: y[%d] AVX-512 %g, Go %g", n, beta != nil, i, ya[i], yg[i])
				}
			}
		}
	}
}
