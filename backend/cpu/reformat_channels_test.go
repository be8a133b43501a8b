package cpu

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
)

// QuantizeLinear along the last axis (SmoothQuant's Mul folded into the
// quantizer) is bit-exact with ops/qops for every code type, with the axis
// given as −1 or rank−1, across 16 Ki-element chunks that start mid-row.
func TestQuantizeLinearLastAxis(t *testing.T) {
	r := rand.New(rand.NewPCG(41, 42))
	for _, dims := range [][]int64{{2, 3, 37}, {7, 3001}} {
		k := dims[len(dims)-1]
		n := int(prod64(dims))
		x := valuesWithSpecials(r, n, 30)
		x.Dims = dims
		scales := make([]float32, k)
		for i := range scales {
			scales[i] = 0.01 + 2*r.Float32()
		}
		for _, c := range []struct {
			dt   ir.DType
			zero float64
			sat  int64
		}{{ir.Int8, 0, 1}, {ir.Int8, -3, 1}, {ir.Uint8, 128, 1}, {ir.Float8E4M3FN, 0, 1}, {ir.Float8E4M3FN, 0, 0}, {ir.Float8E5M2, 0, 1}} {
			for _, axis := range []int64{-1, int64(len(dims) - 1)} {
				t.Run(fmt.Sprint(dims, c.dt, c.zero, c.sat, axis), func(t *testing.T) {
					zs := make([]float64, k)
					for i := range zs {
						zs[i] = c.zero
					}
					sc := ir.FromFloat32s([]int64{k}, scales)
					zp := ir.FromFloat64s(c.dt, []int64{k}, zs)
					nd := node("", "QuantizeLinear", 3, aInt("axis", axis), aInt("saturate", c.sat))
					in := []*ir.Tensor{x, sc, zp}
					want := reference(t, nd, in)
					everyTactic(t, layer(nd, in, []bool{false, true, true}, want, engine.FP32), in, func(name string, got *ir.Tensor) { sameBits(t, name, got, want) })
				})
			}
		}
	}
}
