package f32

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops/kiln"
	"github.com/kilnml/kiln/ops/kilnq"
)

// The hoisted int8/uint8 epilogue equals kilnq's Epilogue + QuantizeOut on
// ties, signed zeros, NaN, infinities and values far out of range.
func TestQuantizedStoreMatchesKilnq(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	vals := []float32{0, float32(math.Copysign(0, -1)), 0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 126.5, 127.5, -128.5, -127.5, 254.5, 255.5,
		float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 1e30, -1e30, 3e15, -3e15, 1 << 24}
	for len(vals) < 400 {
		vals = append(vals, float32(r.NormFloat64()*200), float32(math.Round(r.NormFloat64()*200))+0.5)
	}
	for _, out := range []ir.DType{ir.Int8, ir.Uint8} {
		for _, act := range []string{"", "Relu"} {
			for _, scales := range [][3]float32{{1, 1, 1}, {0.02, 0.7, 0.3}} {
				q := &kilnq.Layer{XScale: scales[0], WScales: []float32{scales[1], 2 * scales[1]}, YScale: scales[2], YZero: 3, OutType: out, Act: kiln.Activation{Kind: act}}
				if out == ir.Int8 {
					q.YZero = -7
				}
				bias := []float32{0.25, -1}
				resid := make([]float32, 2*len(vals))
				for i := range resid {
					resid[i] = float32(r.NormFloat64())
				}
				acc := make([]float32, 2*len(vals))
				copy(acc, vals)
				copy(acc[len(vals):], vals)
				got := make([]byte, len(acc))
				e := &Epilogue{QOut: got, RS: len(vals), CS: 1, Bias: bias, BiasMode: BiasRow, Resid: resid, Q: q, QChannelRow: true}
				e.Store(acc, len(vals), 0, 0, 2, len(vals))
				for i, a := range acc {
					row := i / len(vals)
					want := byte(q.QuantizeOut(q.Epilogue(a, row, bias[row], resid[i])))
					if got[i] != want {
						t.Fatalf("%s %q scales %v: acc %v: code %d, want %d", out, act, scales, a, got[i], want)
					}
				}
			}
		}
	}
}
