package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
)

type convCase struct {
	n, c, h, w, m, kh, kw int64
	stride, pad, dil      int64
	group                 int64
	autoPad               string
}

var convCases = []convCase{
	{1, 1, 5, 5, 1, 3, 3, 1, 1, 1, 1, ""},
	{2, 3, 7, 6, 5, 3, 3, 1, 1, 1, 1, ""},  // odd channels, tile edges
	{1, 4, 9, 9, 7, 3, 3, 2, 0, 1, 1, ""},  // stride 2
	{1, 5, 8, 7, 6, 3, 2, 1, 2, 2, 1, ""},  // dilation, padding, rectangular kernel
	{1, 6, 6, 6, 4, 1, 1, 1, 0, 1, 1, ""},  // pointwise
	{3, 7, 4, 5, 13, 1, 1, 1, 0, 1, 1, ""}, // pointwise, odd sizes, batch 3
	{1, 6, 7, 7, 6, 3, 3, 1, 1, 1, 6, ""},  // depthwise
	{2, 4, 9, 8, 8, 3, 3, 2, 1, 1, 4, ""},  // depthwise multiplier 2, stride 2
	{1, 8, 6, 6, 4, 3, 3, 1, 1, 1, 2, ""},  // grouped
	{1, 3, 7, 8, 4, 3, 3, 2, 0, 1, 1, "SAME_UPPER"},
	{1, 3, 7, 8, 4, 4, 4, 1, 0, 1, 1, "SAME_LOWER"},
	{1, 2, 6, 6, 3, 2, 2, 1, 0, 1, 1, "VALID"},
	{1, 16, 20, 20, 33, 3, 3, 1, 1, 1, 1, ""}, // several column chunks and strips
}

func convNode(domain, op string, cc convCase, nIn int, extra ...*ir.Attribute) *ir.Node {
	attrs := []*ir.Attribute{aInt("group", cc.group), aInts("strides", cc.stride, cc.stride), aInts("dilations", cc.dil, cc.dil)}
	if cc.autoPad != "" {
		attrs = append(attrs, aStr("auto_pad", cc.autoPad))
	} else {
		attrs = append(attrs, aInts("pads", cc.pad, cc.pad, cc.pad, cc.pad))
	}
	return node(domain, op, nIn, append(attrs, extra...)...)
}

func TestConvF32(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i, cc := range convCases {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			x := randF32(r, cc.n, cc.c, cc.h, cc.w)
			w := randF32(r, cc.m, cc.c/cc.group, cc.kh, cc.kw)
			b := randF32(r, cc.m)
			n := convNode("", "Conv", cc, 3)
			in := []*ir.Tensor{x, w, b}
			want := reference(t, n, in)
			l := layer(n, in, []bool{false, true, true}, want, engine.FP32)
			everyTactic(t, l, in, func(name string, got *ir.Tensor) { closeF32(t, name, got, want, 1e-5) })
		})
	}
}

// kiln.Conv with bias, residual and each activation.
func TestFusedConvF32(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	cc := convCases[1]
	for _, act := range []string{"", "Relu", "Clip", "LeakyRelu", "Sigmoid", "Tanh", "Gelu", "GeluTanh", "HardSwish", "HardSigmoid"} {
		for _, dw := range []bool{false, true} {
			c := cc
			if dw {
				c = convCases[7]
			}
			x := randF32(r, c.n, c.c, c.h, c.w)
			w := randF32(r, c.m, c.c/c.group, c.kh, c.kw)
			b := randF32(r, c.m)
			n0 := convNode("", "Conv", c, 3)
			y0 := reference(t, n0, []*ir.Tensor{x, w, b})
			z := randF32(r, y0.Dims...)
			attrs := []*ir.Attribute{aStr("activation", act)}
			if act == "Clip" {
				attrs = append(attrs, aFloat("act_alpha", -0.5), aFloat("act_beta", 0.7))
			}
			n := convNode("kiln", "Conv", c, 4, attrs...)
			in := []*ir.Tensor{x, w, b, z}
			want := reference(t, n, in)
			l := layer(n, in, []bool{false, true, true, false}, want, engine.FP32)
			everyTactic(t, l, in, func(name string, got *ir.Tensor) { closeF32(t, act+" "+name, got, want, 1e-5) })
		}
	}
}

// NaN and Inf in the input propagate as in the reference.
func TestConvF32NaNInf(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, cc := range []convCase{convCases[1], convCases[4], convCases[6]} {
		x := randF32(r, cc.n, cc.c, cc.h, cc.w)
		x.F32()[3] = float32(math.NaN())
		x.F32()[len(x.F32())-2] = float32(math.Inf(1))
		w := randF32(r, cc.m, cc.c/cc.group, cc.kh, cc.kw)
		n := convNode("", "Conv", cc, 2)
		in := []*ir.Tensor{x, w}
		want := reference(t, n, in)
		l := layer(n, in, []bool{false, true}, want, engine.FP32)
		everyTactic(t, l, in, func(name string, got *ir.Tensor) { closeF32(t, name, got, want, 1e-5) })
	}
}
