package cpu

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
)

func TestTranspose(t *testing.T) {
	r := rand.New(rand.NewPCG(29, 30))
	for _, dt := range []ir.DType{ir.Int8, ir.Float16, ir.Float32, ir.Int64} {
		for _, c := range []struct {
			dims []int64
			perm []int64
		}{
			{[]int64{3, 5}, nil},
			{[]int64{2, 3, 4}, []int64{0, 2, 1}},
			{[]int64{1, 7, 4, 6}, []int64{0, 2, 1, 3}}, // bert's head split: runs copied
			{[]int64{2, 3, 4, 5, 2}, []int64{4, 1, 3, 0, 2}},
			{[]int64{6}, []int64{0}},
			{[]int64{3, 0, 2}, []int64{2, 1, 0}},
		} {
			x := ir.NewTensor(dt, c.dims)
			for i := range x.Data {
				x.Data[i] = byte(r.IntN(256))
			}
			var attrs []*ir.Attribute
			if c.perm != nil {
				attrs = append(attrs, aInts("perm", c.perm...))
			}
			n := node("", "Transpose", 1, attrs...)
			in := []*ir.Tensor{x}
			want := reference(t, n, in)
			everyTactic(t, layer(n, in, nil, want, engine.FP32), in, func(name string, got *ir.Tensor) { sameBits(t, fmt.Sprint(dt, c.dims, c.perm, name), got, want) })
		}
	}
}
