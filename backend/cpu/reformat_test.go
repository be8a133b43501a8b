package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/floatx"
	"github.com/kilnml/kiln/ir"
)

// specials are float32 edge values every reformat must convert as the
// reference does: NaN, ±Inf, ±0, ties, huge and tiny values.
func specials() []float32 {
	return []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 0, float32(math.Copysign(0, -1)),
		0.5, 1.5, 2.5, -0.5, -1.5, 126.5, 127.5, 128, -128.5, -129, 254.5, 255.5, 1e30, -1e30, 1e-30, 65504, 65520, 448, 464, 5e-8}
}

func valuesWithSpecials(r *rand.Rand, n int, scale float64) *ir.Tensor {
	t := ir.NewTensor(ir.Float32, []int64{int64(n)})
	v := t.F32()
	for i := range v {
		v[i] = float32(r.NormFloat64() * scale)
	}
	copy(v, specials())
	return t
}

func TestQuantizeLinear(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 18))
	x := valuesWithSpecials(r, 40000, 30) // above one chunk: threaded
	for _, c := range []struct {
		dt   ir.DType
		zero float64
		sat  int64
	}{{ir.Int8, 0, 1}, {ir.Int8, -3, 1}, {ir.Uint8, 128, 1}, {ir.Uint8, 0, 1}, {ir.Float8E4M3FN, 0, 1}, {ir.Float8E4M3FN, 0, 0},
		{ir.Float8E5M2, 0, 1}, {ir.Float8E5M2, 0, 0}} {
		t.Run(fmt.Sprint(c.dt, c.zero, c.sat), func(t *testing.T) {
			scale := ir.FromFloat32s(nil, []float32{0.37})
			zp := ir.FromFloat64s(c.dt, nil, []float64{c.zero})
			n := node("", "QuantizeLinear", 3, aInt("saturate", c.sat))
			in := []*ir.Tensor{x, scale, zp}
			want := reference(t, n, in)
			everyTactic(t, layer(n, in, []bool{false, true, true}, want, engine.FP32), in, func(name string, got *ir.Tensor) { sameBits(t, name, got, want) })
		})
	}
}

func TestDequantizeLinear(t *testing.T) {
	r := rand.New(rand.NewPCG(19, 20))
	for _, c := range []struct {
		dt   ir.DType
		zero float64
	}{{ir.Int8, 0}, {ir.Int8, 5}, {ir.Int8, -128}, {ir.Uint8, 131}, {ir.Uint8, 255}, {ir.Float8E4M3FN, 0}, {ir.Float8E5M2, 0}} {
		x := ir.NewTensor(c.dt, []int64{3, 300})
		for i := range x.Data {
			x.Data[i] = byte(i) // every code, NaN (and E5M2's Inf) codes included
		}
		_ = r
		scale := ir.FromFloat32s(nil, []float32{0.0123})
		zp := ir.FromFloat64s(c.dt, nil, []float64{c.zero})
		n := node("", "DequantizeLinear", 3)
		in := []*ir.Tensor{x, scale, zp}
		want := reference(t, n, in)
		everyTactic(t, layer(n, in, []bool{false, true, true}, want, engine.FP32), in, func(name string, got *ir.Tensor) { sameBits(t, name, got, want) })
	}
}

func TestCastF16(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	x := valuesWithSpecials(r, 20000, 1000)
	n := node("", "Cast", 1, aInt("to", int64(ir.Float16)))
	in := []*ir.Tensor{x}
	want := reference(t, n, in)
	everyTactic(t, layer(n, in, nil, want, engine.FP16), in, func(name string, got *ir.Tensor) { sameBits(t, name, got, want) })

	h := ir.NewTensor(ir.Float16, []int64{1 << 16})
	for i := range h.U16() {
		h.U16()[i] = uint16(i) // every half, NaNs and subnormals included
	}
	n = node("", "Cast", 1, aInt("to", int64(ir.Float32)))
	in = []*ir.Tensor{h}
	want = reference(t, n, in)
	everyTactic(t, layer(n, in, nil, want, engine.FP32), in, func(name string, got *ir.Tensor) { sameBits(t, name, got, want) })
	_ = floatx.F16ToF32
}

func TestMaxPoolAndRelu(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	for _, dt := range []ir.DType{ir.Int8, ir.Uint8, ir.Float32} {
		for i, attrs := range [][]*ir.Attribute{
			{aInts("kernel_shape", 2, 2), aInts("strides", 2, 2)},
			{aInts("kernel_shape", 3, 3), aInts("strides", 2, 2), aInts("pads", 1, 1, 1, 1)},
			{aInts("kernel_shape", 3, 2), aInts("strides", 1, 2), aInt("ceil_mode", 1), aInts("dilations", 2, 1)},
			{aInts("kernel_shape", 3, 3), aStr("auto_pad", "SAME_UPPER"), aInts("strides", 2, 2)},
		} {
			x := randCodes(r, dt, 2, 3, 9, 11)
			if dt == ir.Float32 {
				x = randF32(r, 2, 3, 9, 11)
				x.F32()[5] = float32(math.NaN())
				x.F32()[0] = float32(math.NaN())
			}
			n := node("", "MaxPool", 1, attrs...)
			in := []*ir.Tensor{x}
			want := reference(t, n, in)
			everyTactic(t, layer(n, in, nil, want, engine.FP32), in, func(name string, got *ir.Tensor) {
				if dt == ir.Float32 {
					closeF32(t, fmt.Sprint(dt, i, name), got, want, 0)
				} else {
					sameBits(t, fmt.Sprint(dt, i, name), got, want)
				}
			})
		}
	}
	for _, dt := range []ir.DType{ir.Int8, ir.Float32} {
		x := randCodes(r, ir.Int8, 1000)
		if dt == ir.Float32 {
			x = valuesWithSpecials(r, 1000, 1)
		}
		n := node("", "Relu", 1)
		in := []*ir.Tensor{x}
		want := reference(t, n, in)
		everyTactic(t, layer(n, in, nil, want, engine.FP32), in, func(name string, got *ir.Tensor) { sameBits(t, name, got, want) })
	}
}

func TestAveragePool(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	for i, attrs := range [][]*ir.Attribute{
		{aInts("kernel_shape", 2, 2), aInts("strides", 2, 2)},
		{aInts("kernel_shape", 3, 3), aInts("strides", 2, 2), aInts("pads", 1, 1, 1, 1)},
		{aInts("kernel_shape", 3, 3), aInts("strides", 2, 2), aInts("pads", 1, 0, 2, 1), aInt("count_include_pad", 1)},
		{aInts("kernel_shape", 3, 2), aInts("strides", 2, 2), aInt("ceil_mode", 1), aInts("pads", 1, 1, 1, 1), aInt("count_include_pad", 1)},
		{aInts("kernel_shape", 3, 3), aStr("auto_pad", "SAME_LOWER"), aInt("count_include_pad", 1)},
		{aInts("kernel_shape", 2, 3), aInts("dilations", 2, 1), aInts("pads", 1, 1, 1, 1)},
		{aInts("kernel_shape", 9, 11)}, // global (avgGlobal): 2·13 planes, 3 groups of 8 and 2 alone
		{aInts("kernel_shape", 9, 11), aInts("strides", 3, 3)},
		{aInts("kernel_shape", 9, 11), aInts("pads", 0, 0, 0, 1)}, // one window, padded: avgPlane
	} {
		x := randF32(r, 2, 13, 9, 11)
		x.F32()[7] = float32(math.Inf(-1))
		x.F32()[9*11*5+3] = float32(math.NaN())
		for _, p := range []int{16, 17, 25} { // planes whose sums depend on the order: ±2⁶⁰ absorb the rest
			x.F32()[9*11*p], x.F32()[9*11*p+40] = 0x1p60, -0x1p60
		}
		n := node("", "AveragePool", 1, attrs...)
		in := []*ir.Tensor{x}
		want := reference(t, n, in)
		everyTactic(t, layer(n, in, nil, want, engine.FP32), in, func(name string, got *ir.Tensor) { sameBits(t, fmt.Sprint(i, name), got, want) })
	}
}
