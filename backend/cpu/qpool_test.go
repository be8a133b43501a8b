package cpu

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/kernels/avx"
)

// MaxPool over int8/uint8 codes with every window shape the vectorized
// plane pool handles (padding, strides, dilation, ceil mode, windows over
// padding only, rows wider than one 64-byte step), each INT8 kernel variant
// forced, bit-identical to the reference.
func TestMaxPoolCodesWindows(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	saved := avx.QVariant
	defer func() { avx.QVariant = saved }()
	for _, v := range avx.QVariants() {
		avx.QVariant = v
		for _, dt := range []ir.DType{ir.Int8, ir.Uint8} {
			for i, c := range []struct {
				dims  []int64
				attrs []*ir.Attribute
			}{
				{[]int64{1, 2, 112, 112}, []*ir.Attribute{aInts("kernel_shape", 3, 3), aInts("strides", 2, 2), aInts("pads", 1, 1, 1, 1)}}, // ResNet's stem pool
				{[]int64{2, 3, 9, 11}, []*ir.Attribute{aInts("kernel_shape", 3, 2), aInts("strides", 1, 2), aInt("ceil_mode", 1), aInts("dilations", 2, 1)}},
				{[]int64{1, 2, 7, 70}, []*ir.Attribute{aInts("kernel_shape", 5, 4), aInts("strides", 3, 1), aInts("pads", 2, 3, 2, 3)}},
				{[]int64{1, 1, 1, 5}, []*ir.Attribute{aInts("kernel_shape", 1, 1), aInts("pads", 1, 1, 1, 1)}}, // windows over padding only
				{[]int64{1, 2, 6, 6}, []*ir.Attribute{aInts("kernel_shape", 3, 3), aStr("auto_pad", "SAME_UPPER"), aInts("strides", 2, 2)}},
				{[]int64{1, 1, 5, 300}, []*ir.Attribute{aInts("kernel_shape", 2, 3), aInts("strides", 1, 1), aInts("dilations", 1, 2)}},
				{[]int64{1, 2, 9, 67}, []*ir.Attribute{aInts("kernel_shape", 3, 3), aInts("strides", 2, 2), aInt("ceil_mode", 1)}}, // 3-wide stride 2: vectorized rows, 33 outputs
				{[]int64{1, 1, 3, 5}, []*ir.Attribute{aInts("kernel_shape", 3, 3), aInts("strides", 2, 2), aInts("pads", 1, 1, 1, 1)}},
			} {
				x := randCodes(r, dt, c.dims...)
				n := node("", "MaxPool", 1, c.attrs...)
				in := []*ir.Tensor{x}
				want := reference(t, n, in)
				everyTactic(t, layer(n, in, nil, want, engine.INT8), in, func(name string, got *ir.Tensor) {
					sameBits(t, fmt.Sprint(dt, " case ", i, " variant ", v, " ", name), got, want)
				})
			}
		}
	}
}
