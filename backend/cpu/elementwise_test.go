package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
)

func TestElementwiseF32(t *testing.T) {
	r := rand.New(rand.NewPCG(27, 28))
	for _, op := range []string{"Add", "Sub", "Mul", "Div", "Sum"} { // a two-input Sum runs as Add
		for _, c := range []struct{ a, b []int64 }{{[]int64{3, 5, 7}, []int64{3, 5, 7}}, {[]int64{40000}, []int64{40000}}, {[]int64{2, 9}, []int64{1}}, {[]int64{1, 1}, []int64{4, 6}}} {
			a, b := valuesWithSpecials(r, int(prod64(c.a)), 3), valuesWithSpecials(r, int(prod64(c.b)), 3)
			a.Dims, b.Dims = c.a, c.b
			n := node("", op, 2)
			in := []*ir.Tensor{a, b}
			want := reference(t, n, in)
			everyTactic(t, layer(n, in, nil, want, engine.FP32), in, func(name string, got *ir.Tensor) { sameBits(t, fmt.Sprint(op, c.a, c.b, name), got, want) })
		}
	}
	for _, dims := range [][]int64{{2, 3, 7}, {4, 1000}, {3, 1}} {
		x := randF32(r, dims...)
		x.F32()[1] = float32(math.Inf(1))
		x.F32()[len(x.F32())-1] = float32(math.NaN())
		for i := range x.F32() {
			x.F32()[i] *= 10
		}
		n := node("", "Softmax", 1)
		in := []*ir.Tensor{x}
		want := reference(t, n, in)
		everyTactic(t, layer(n, in, nil, want, engine.FP32), in, func(name string, got *ir.Tensor) { sameBits(t, fmt.Sprint("Softmax", dims, name), got, want) })
	}
	x := randF32(r, 2, 5, 7, 3)
	n := node("", "GlobalAveragePool", 1)
	in := []*ir.Tensor{x}
	want := reference(t, n, in)
	everyTactic(t, layer(n, in, nil, want, engine.FP32), in, func(name string, got *ir.Tensor) { sameBits(t, name, got, want) })
}

func prod64(d []int64) int64 {
	p := int64(1)
	for _, v := range d {
		p *= v
	}
	return p
}
