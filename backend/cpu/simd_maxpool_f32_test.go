package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
)

// TestSimdMaxPoolF32: the general FP32 max pool against the reference
// executor, bit for bit, at every variant and 1..4 threads: ResNet's 3×3/2
// pad-1 pool, stride 1, asymmetric pads, ceil mode, 2×2/2, 5×5, rows
// narrower and wider than a zmm, NaN at window starts and inside windows.
func TestSimdMaxPoolF32(t *testing.T) {
	r := rand.New(rand.NewPCG(41, 42))
	for i, c := range []struct {
		dims       []int64
		k, s, pads []int64
		ceil       int64
	}{
		{[]int64{1, 3, 112, 112}, []int64{3, 3}, []int64{2, 2}, []int64{1, 1, 1, 1}, 0},
		{[]int64{2, 2, 9, 37}, []int64{3, 3}, []int64{1, 1}, []int64{1, 1, 1, 1}, 0},
		{[]int64{1, 2, 10, 40}, []int64{3, 2}, []int64{2, 2}, []int64{0, 1, 2, 0}, 1},
		{[]int64{1, 3, 8, 9}, []int64{2, 2}, []int64{2, 2}, []int64{0, 0, 0, 0}, 0},
		{[]int64{1, 2, 20, 70}, []int64{5, 5}, []int64{2, 2}, []int64{2, 2, 2, 2}, 0},
		{[]int64{1, 1, 4, 5}, []int64{3, 3}, []int64{3, 2}, []int64{0, 0, 0, 0}, 0},
	} {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			x := randF32(r, c.dims...)
			for j := 0; j < len(x.F32()); j += 7 {
				x.F32()[j] = float32(math.NaN())
			}
			x.F32()[1] = float32(math.Inf(1))
			n := node("", "MaxPool", 1, aInts("kernel_shape", c.k...), aInts("strides", c.s...), aInts("pads", c.pads...), aInt("ceil_mode", c.ceil))
			in := []*ir.Tensor{x}
			want := reference(t, n, in)
			l := layer(n, in, []bool{false}, want, engine.FP32)
			if _, err := (simdMaxPoolTactic{}).Lower(l); err != nil {
				t.Fatalf("the FP32 max pool tactic declines: %v", err)
			}
			everySimdTactic(t, l, in, func(name string, got *ir.Tensor) { sameBits(t, name, got, want) })
		})
	}
}
