package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
)

// everyTransformerTactic is everyTactic for the transformer backend values
// (portable and SIMD).
func everyTransformerTactic(t *testing.T, l *engine.Layer, in []*ir.Tensor, want *ir.Tensor, rel float64) {
	t.Helper()
	ts := append(transformerBackend{}.Tactics(l), simdTransformerBackend{}.Tactics(l)...)
	if len(ts) == 0 {
		t.Fatalf("%s: no cpu tactic", l.Node)
	}
	for _, tac := range ts {
		first := execKernel(t, tac, l, in, 1)
		closeF32(t, tac.Name(), first, want, rel)
		for th := 2; th <= 4; th++ {
			sameBits(t, fmt.Sprintf("%s threads %d vs 1", tac.Name(), th), execKernel(t, tac, l, in, th), first)
		}
	}
}

func TestLayerNormKernel(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, bias := range []bool{true, false} {
		x := randF32(r, 3, 7, 40)
		for i := range x.F32() { // an offset mean, as after residual adds
			x.F32()[i] += 5
		}
		in := []*ir.Tensor{x, randF32(r, 40)}
		nIn := 2
		if bias {
			in, nIn = append(in, randF32(r, 40)), 3
		}
		n := node("kiln", "LayerNorm", nIn, aInt("axis", -1), aFloat("epsilon", 1e-5))
		want := reference(t, n, in)
		l := layer(n, in, []bool{false, true, true}, want, engine.FP32)
		everyTransformerTactic(t, l, in, want, 2e-6)
	}
}

func TestAttentionKernel(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 1))
	for _, c := range []struct {
		kt, mask, nanGuard bool
		maskDims           []int64
	}{
		{kt: true, mask: true, nanGuard: true, maskDims: []int64{2, 1, 1, 13}},
		{kt: false},
		{kt: false, mask: true, maskDims: []int64{11, 13}},
	} {
		q := randF32(r, 2, 3, 11, 16)
		k := randF32(r, 2, 3, 13, 16)
		if c.kt {
			k = randF32(r, 2, 3, 16, 13)
		}
		v := randF32(r, 2, 1, 13, 8) // broadcast over heads
		in := []*ir.Tensor{q, k, v}
		attrs := []*ir.Attribute{aFloat("scale", 0.3)}
		if c.kt {
			attrs = append(attrs, aInt("k_transposed", 1))
		}
		if c.nanGuard {
			attrs = append(attrs, aInt("nan_to_zero", 1))
		}
		if c.mask {
			m := ir.NewTensor(ir.Float32, c.maskDims)
			for i := range m.F32() {
				if i%5 == 3 {
					m.F32()[i] = float32(math.Inf(-1))
				} else {
					m.F32()[i] = float32(r.NormFloat64())
				}
			}
			if c.nanGuard { // batch 1 sees no key: its rows become zeros
				for i := 13; i < 26; i++ {
					m.F32()[i] = float32(math.Inf(-1))
				}
			}
			in = append(in, m)
		}
		n := node("kiln", "Attention", len(in), attrs...)
		want := reference(t, n, in)
		l := layer(n, in, nil, want, engine.FP32)
		everyTransformerTactic(t, l, in, want, 1e-5)
	}
}

func TestGeluKernel(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 1))
	for _, approx := range []string{"none", "tanh"} {
		x := randF32(r, 3, 1000)
		n := node("kiln", "Gelu", 1, aStr("approximate", approx))
		want := reference(t, n, []*ir.Tensor{x})
		l := layer(n, []*ir.Tensor{x}, nil, want, engine.FP32)
		everyTransformerTactic(t, l, []*ir.Tensor{x}, want, 1e-6)
	}
}
