package cpu

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
)

// TestSimdF16ConvGemmPool runs the FP16 wrappers of the FP32 SIMD tactics
// (every micro-kernel variant, 1..4 threads) against the reference: convs
// plain and fused (bias, residual, Relu), Gemm/MatMul, within closeF16;
// MaxPool bit for bit.
func TestSimdF16ConvGemmPool(t *testing.T) {
	r := rand.New(rand.NewPCG(95, 96))
	for i, cc := range []convCase{convCases[1], convCases[2], convCases[4], convCases[7], convCases[8], convCases[12], {2, 1, 28, 28, 32, 3, 3, 1, 0, 1, 1, ""}} {
		x := toHalf(randF32(r, cc.n, cc.c, cc.h, cc.w))
		w := toHalf(randF32(r, cc.m, cc.c/cc.group, cc.kh, cc.kw))
		b := toHalf(randF32(r, cc.m))
		n := convNode("", "Conv", cc, 3)
		in := []*ir.Tensor{x, w, b}
		want := reference(t, n, in)
		everySimdTactic(t, layer(n, in, []bool{false, true, true}, want, engine.FP16), in, func(name string, got *ir.Tensor) { closeF16(t, fmt.Sprint(i, name), got, want) })

		z := toHalf(randF32(r, want.Dims...))
		n = convNode("kiln", "Conv", cc, 4, aStr("activation", "Relu"))
		in = []*ir.Tensor{x, w, b, z}
		want = reference(t, n, in)
		everySimdTactic(t, layer(n, in, []bool{false, true, true, false}, want, engine.FP16), in, func(name string, got *ir.Tensor) { closeF16(t, fmt.Sprint(i, " fused ", name), got, want) })
	}
	for _, m := range []int64{1, 9, 70} {
		a := toHalf(randF32(r, m, 37))
		w := toHalf(randF32(r, 11, 37))
		c := toHalf(randF32(r, 11))
		n := node("", "Gemm", 3, aInt("transB", 1))
		in := []*ir.Tensor{a, w, c}
		want := reference(t, n, in)
		everySimdTactic(t, layer(n, in, []bool{false, true, true}, want, engine.FP16), in, func(name string, got *ir.Tensor) { closeF16(t, fmt.Sprint(m, name), got, want) })

		w2 := toHalf(randF32(r, 37, 11))
		z := toHalf(randF32(r, 2, m, 11))
		a2 := toHalf(randF32(r, 2, m, 37))
		n = node("kiln", "MatMul", 4, aStr("activation", "Relu"))
		in = []*ir.Tensor{a2, w2, c, z}
		want = reference(t, n, in)
		everySimdTactic(t, layer(n, in, []bool{false, true, true, false}, want, engine.FP16), in, func(name string, got *ir.Tensor) { closeF16(t, fmt.Sprint(m, " fused ", name), got, want) })
	}
	for _, dims := range [][]int64{{2, 3, 9, 8}, {1, 4, 26, 26}, {3, 2, 7, 70}} {
		for wi, attrs := range [][]*ir.Attribute{{aInts("kernel_shape", 2, 2), aInts("strides", 2, 2)},
			{aInts("kernel_shape", 3, 3), aInts("strides", 2, 2), aInts("pads", 1, 1, 1, 1)}} {
			x := toHalf(valuesWithSpecials(r, int(dims[0]*dims[1]*dims[2]*dims[3]), 3))
			x.Dims = dims
			n := node("", "MaxPool", 1, attrs...)
			in := []*ir.Tensor{x}
			want := reference(t, n, in)
			l := layer(n, in, []bool{false}, want, engine.FP16)
			everyTactic(t, l, in, func(name string, got *ir.Tensor) { sameBits(t, fmt.Sprint(dims, wi, name), got, want) }) // also without AVX-512
			everySimdTactic(t, l, in, func(name string, got *ir.Tensor) { sameBits(t, fmt.Sprint(dims, wi, name), got, want) })
		}
	}
}

// TestSimdCastF16 checks cpu.cast.f16 bit for bit against the reference
// Cast: float32 values with specials, and every float16 code.
func TestSimdCastF16(t *testing.T) {
	r := rand.New(rand.NewPCG(97, 98))
	x := valuesWithSpecials(r, 70001, 1000)
	n := node("", "Cast", 1, aInt("to", int64(ir.Float16)))
	in := []*ir.Tensor{x}
	want := reference(t, n, in)
	everySimdTactic(t, layer(n, in, nil, want, engine.FP16), in, func(name string, got *ir.Tensor) { sameBits(t, name, got, want) })

	h := ir.NewTensor(ir.Float16, []int64{1<<16 + 3})
	for i := range h.U16() {
		h.U16()[i] = uint16(i)
	}
	n = node("", "Cast", 1, aInt("to", int64(ir.Float32)))
	in = []*ir.Tensor{h}
	want = reference(t, n, in)
	everySimdTactic(t, layer(n, in, nil, want, engine.FP32), in, func(name string, got *ir.Tensor) { sameBits(t, name, got, want) })
}

// TestF16Elementwise runs FP16 Add, Mul, GlobalAveragePool and
// Softmax through the portable float32 kernels wrapped by cpu.f16, within
// closeF16 of the reference.
func TestF16Elementwise(t *testing.T) {
	r := rand.New(rand.NewPCG(99, 100))
	a, b := toHalf(randF32(r, 2, 3, 5, 7)), toHalf(randF32(r, 2, 3, 5, 7))
	for _, c := range []struct {
		n  *ir.Node
		in []*ir.Tensor
	}{
		{node("", "Add", 2), []*ir.Tensor{a, b}},
		{node("", "Mul", 2), []*ir.Tensor{a, b}},
		{node("", "GlobalAveragePool", 1), []*ir.Tensor{a}},
		{node("", "Softmax", 1, aInt("axis", -1)), []*ir.Tensor{a}},
	} {
		want := reference(t, c.n, c.in)
		l := layer(c.n, c.in, make([]bool, len(c.in)), want, engine.FP16)
		if len(Backend{}.Tactics(l)) == 0 {
			t.Fatalf("%s: no fp16 tactic", c.n.OpType)
		}
		everyTactic(t, l, c.in, func(name string, got *ir.Tensor) { closeF16(t, c.n.OpType+" "+name, got, want) })
	}
}
