package cpu

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/kernels/avx"
	"github.com/kilnml/kiln/ops/kiln"
)

// Convs with a fused 2×2/2 max pool (kiln's pool attribute): odd output
// sizes (floor), batch > 1, groups, 1×1 (direct), several row bands.
var poolConvCases = []convCase{
	{2, 3, 9, 11, 5, 3, 3, 1, 0, 1, 1, ""},    // 7×9 output: last row and column dropped
	{1, 8, 6, 6, 4, 3, 3, 1, 1, 1, 2, ""},     // grouped
	{3, 1, 28, 28, 32, 3, 3, 1, 0, 1, 1, ""},  // simplecnn conv1, batch 3
	{2, 32, 13, 13, 64, 3, 3, 1, 0, 1, 1, ""}, // simplecnn conv2 (11×11)
	{1, 16, 40, 40, 33, 3, 3, 1, 1, 1, 1, ""}, // several bands and channel strips
	{2, 16, 7, 10, 24, 1, 1, 1, 0, 1, 1, ""},  // pointwise (direct)
	{1, 4, 9, 9, 7, 3, 3, 2, 0, 1, 1, ""},     // stride 2
	{1, 3, 5, 4, 6, 3, 3, 1, 0, 1, 1, ""},     // 3×2 output: one pooled row and column
}

func withPool(n *ir.Node) *ir.Node {
	c := *n
	c.Attrs = append(append([]*ir.Attribute(nil), n.Attrs...), kiln.PoolAttribute())
	return &c
}

// allConvTactics is every cpu and SIMD tactic for the layer, each run
// with every micro-kernel variant by run.
func allConvTactics(t *testing.T, l *engine.Layer, run func(name string, tac engine.Tactic)) {
	t.Helper()
	saved, qsaved := avx.Variant, avx.QVariant
	defer func() { avx.Variant, avx.QVariant = saved, qsaved }()
	vs, qvs := avx.Variants(), avx.QVariants()
	for i := range max(len(vs), len(qvs)) {
		avx.Variant, avx.QVariant = vs[min(i, len(vs)-1)], qvs[min(i, len(qvs)-1)]
		for _, tac := range append(Backend{}.Tactics(l), simdBackend{}.Tactics(l)...) {
			if _, err := tac.Lower(l); err != nil {
				continue // e.g. direct on a 3×3 conv
			}
			run(fmt.Sprintf("%s variant %d", tac.Name(), i), tac)
		}
	}
}

func TestConvPoolF32(t *testing.T) {
	r := rand.New(rand.NewPCG(71, 72))
	for ci, cc := range poolConvCases {
		for _, act := range []string{"", "Relu"} {
			t.Run(fmt.Sprint(ci, act), func(t *testing.T) {
				x := randF32(r, cc.n, cc.c, cc.h, cc.w)
				w := randF32(r, cc.m, cc.c/cc.group, cc.kh, cc.kw)
				b := randF32(r, cc.m)
				var extra []*ir.Attribute
				if act != "" {
					extra = kiln.Activation{Kind: act}.Attrs()
				}
				plain := convNode("kiln", "Conv", cc, 3, extra...)
				fused := withPool(plain)
				in := []*ir.Tensor{x, w, b}
				full := reference(t, plain, in)
				want := reference(t, fused, in)
				if ref, err := kiln.ApplyPool(plain, full); err != nil || !sameDims(ref.Dims, want.Dims) {
					t.Fatalf("reference pool: %v %v vs %v", err, ref.Dims, want.Dims)
				}
				lp := layer(plain, in, []bool{false, true, true}, full, engine.FP32)
				lf := layer(fused, in, []bool{false, true, true}, want, engine.FP32)
				n := 0
				allConvTactics(t, lf, func(name string, tac engine.Tactic) {
					n++
					// bit for bit the unfused layer (same tactic) followed by MaxPool
					unf, err := kiln.ApplyPool(plain, execKernel(t, tac, lp, in, 1))
					if err != nil {
						t.Fatal(err)
					}
					for _, th := range []int{1, 3} {
						got := execKernel(t, tac, lf, in, th)
						sameBits(t, fmt.Sprintf("%s threads %d vs unfused", name, th), got, unf)
						closeF32(t, name, got, want, 1e-5)
					}
				})
				if n == 0 {
					t.Fatal("no tactic ran the fused pool")
				}
			})
		}
	}
}

func TestConvPoolQuant(t *testing.T) {
	r := rand.New(rand.NewPCG(73, 74))
	for _, qc := range qcases {
		if isFP8(qc.xt) || qc.resid {
			continue // the pool is fused only over float32 and int8/uint8 outputs, without a residual
		}
		for ci, cc := range poolConvCases {
			t.Run(fmt.Sprint(qc.name, "/", ci), func(t *testing.T) {
				attrs := quantAttrs(r, cc.m, qc.yScale, qc.xz, qc.yz, qc.act)
				n := convNode("kiln", "QConv", cc, 0, attrs...)
				in, consts := quantInputs(r, qc, []int64{cc.n, cc.c, cc.h, cc.w}, []int64{cc.m, cc.c / cc.group, cc.kh, cc.kw}, cc.m,
					func(in []*ir.Tensor) []int64 { return reference(t, nodeWith(n, in[:2]), in[:2]).Dims })
				plain := nodeWith(n, in)
				fused := withPool(plain)
				want := reference(t, fused, in)
				// the reference's claim: pooling codes = the unfused graph (QConv, then MaxPool over codes)
				unf, err := kiln.ApplyPool(plain, reference(t, plain, in))
				if err != nil {
					t.Fatal(err)
				}
				sameBits(t, "reference vs unfused", want, unf)
				lf := layer(fused, in, consts, want, precOf(qc))
				ran := 0
				allConvTactics(t, lf, func(name string, tac engine.Tactic) {
					ran++
					for _, th := range []int{1, 3} {
						sameBits(t, fmt.Sprintf("%s threads %d", name, th), execKernel(t, tac, lf, in, th), want)
					}
				})
				if ran == 0 {
					t.Fatal("no tactic ran the fused pool")
				}
			})
		}
	}
}

func TestConvPoolRefused(t *testing.T) {
	// float16 layers and residual inputs have no fused pool: lowering says so.
	cc := poolConvCases[0]
	n := withPool(convNode("kiln", "Conv", cc, 4))
	if _, err := readPool(n, "f32"); err == nil {
		t.Fatal("a pool after a residual add was accepted")
	}
	if _, err := readPool(withPool(convNode("kiln", "Conv", cc, 2)), "f16"); err == nil {
		t.Fatal("an fp16 pool was accepted")
	}
	bad := convNode("kiln", "Conv", cc, 2, aInts(kiln.PoolAttr, 3, 3))
	if _, err := readPool(bad, "f32"); err == nil {
		t.Fatal("pool [3, 3] was accepted")
	}
	// A conv output smaller than the window: an error, as ONNX's MaxPool.
	r := rand.New(rand.NewPCG(75, 76))
	small := convCase{1, 2, 3, 3, 4, 3, 3, 1, 0, 1, 1, ""}
	in := []*ir.Tensor{randF32(r, 1, 2, 3, 3), randF32(r, 4, 2, 3, 3)}
	plain := convNode("kiln", "Conv", small, 2)
	fused := withPool(plain)
	l := layer(fused, in, []bool{false, true}, reference(t, plain, in), engine.FP32)
	for _, tac := range append(Backend{}.Tactics(l), simdBackend{}.Tactics(l)...) {
		low, err := tac.Lower(l)
		if err != nil {
			continue
		}
		dec, _ := engine.LookupKernel(low.Kernel)
		k, err := dec(low.Params, low.Weights)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := k.Shapes(in[:1]); err == nil {
			t.Errorf("%s: a 1×1 conv output with a 2×2 pool was accepted", tac.Name())
		}
	}
}
