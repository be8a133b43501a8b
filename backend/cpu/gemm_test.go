package cpu

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
)

func TestGemmF32(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	type gc struct {
		m, k, n     int64
		ta, tb      bool
		alpha, beta float32
		cdims       []int64 // nil: no C
	}
	cases := []gc{
		{1, 1, 1, false, false, 1, 1, nil},
		{5, 7, 3, false, false, 1, 1, []int64{3}},
		{13, 17, 11, true, false, 1, 1, []int64{1, 11}},
		{6, 9, 12, false, true, 1, 1, []int64{6, 1}},
		{7, 33, 14, true, true, 0.5, 2, []int64{7, 14}},
		{2, 64, 130, false, true, 1, 1, []int64{}},
		{1, 40, 13, true, false, 1, 1, []int64{13}},    // one row, transposed: matrix-vector path
		{300, 40, 10, false, false, 1, 1, []int64{10}}, // several activation chunks
	}
	for i, c := range cases {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			ad := []int64{c.m, c.k}
			if c.ta {
				ad = []int64{c.k, c.m}
			}
			bd := []int64{c.k, c.n}
			if c.tb {
				bd = []int64{c.n, c.k}
			}
			ta, tb := int64(0), int64(0)
			if c.ta {
				ta = 1
			}
			if c.tb {
				tb = 1
			}
			in := []*ir.Tensor{randF32(r, ad...), randF32(r, bd...)}
			if c.cdims != nil {
				in = append(in, randF32(r, c.cdims...))
			}
			n := node("", "Gemm", len(in), aInt("transA", ta), aInt("transB", tb), aFloat("alpha", c.alpha), aFloat("beta", c.beta))
			want := reference(t, n, in)
			l := layer(n, in, []bool{false, true, true}, want, engine.FP32)
			everyTactic(t, l, in, func(name string, got *ir.Tensor) { closeF32(t, name, got, want, 1e-5) })
		})
	}
}

// MatMul with constant weights batches A's leading axes; kiln.Gemm and
// kiln.MatMul fuse bias, residual and activation.
func TestMatMulConstAndFused(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	a := randF32(r, 2, 3, 5, 24)
	w := randF32(r, 24, 7)
	n := node("", "MatMul", 2)
	in := []*ir.Tensor{a, w}
	want := reference(t, n, in)
	everyTactic(t, layer(n, in, []bool{false, true}, want, engine.FP32), in, func(name string, got *ir.Tensor) { closeF32(t, name, got, want, 1e-5) })

	bias := randF32(r, 7)
	z := randF32(r, want.Dims...)
	n = node("kiln", "MatMul", 4, aStr("activation", "Gelu"))
	in = []*ir.Tensor{a, w, bias, z}
	want = reference(t, n, in)
	everyTactic(t, layer(n, in, []bool{false, true, true, false}, want, engine.FP32), in, func(name string, got *ir.Tensor) { closeF32(t, name, got, want, 1e-5) })

	a2 := randF32(r, 9, 24)
	z2 := randF32(r, 9, 7)
	n = node("kiln", "Gemm", 4, aStr("activation", "Relu"), aInt("transB", 0))
	in = []*ir.Tensor{a2, w, bias, z2}
	want = reference(t, n, in)
	everyTactic(t, layer(n, in, []bool{false, true, true, false}, want, engine.FP32), in, func(name string, got *ir.Tensor) { closeF32(t, name, got, want, 1e-5) })
}

// MatMul of two activations with broadcast batch axes.
func TestMatMulTwoActivations(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for i, c := range []struct{ a, b []int64 }{
		{[]int64{5, 7}, []int64{7, 3}},
		{[]int64{2, 3, 13, 8}, []int64{2, 3, 8, 9}},
		{[]int64{2, 1, 6, 4}, []int64{3, 4, 5}}, // broadcast
		{[]int64{1, 40, 16}, []int64{4, 16, 40}},
	} {
		in := []*ir.Tensor{randF32(r, c.a...), randF32(r, c.b...)}
		n := node("", "MatMul", 2)
		want := reference(t, n, in)
		l := layer(n, in, []bool{false, false}, want, engine.FP32)
		everyTactic(t, l, in, func(name string, got *ir.Tensor) { closeF32(t, fmt.Sprint(i, name), got, want, 1e-5) })
	}
}
