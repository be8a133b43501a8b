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

// TestQConvPoolInRegisters: cpu.conv.vnni's fused pool in registers
// (simd_qconvpool.go) takes the layers it should, and equals the reference
// (ops/kilnq's QConv, then MaxPool over codes) bit for bit at 1–3 threads
// with every variant: row-quad and quad-plane geometries with direct plans
// and with gathers (padding, stride 2), pooled rows wider and narrower than
// a pooled group, layers without bias or clamp, items of several images (groups running from one image
// into the next, a shorter last band), odd conv outputs, int8 and uint8
// codes; and a layer with
// a multiplier x_scale·w_scale that underflows to 0 (QPoolable wants it
// positive) keeps the tile path, still exact.
func TestQConvPoolInRegisters(t *testing.T) {
	cases := []struct {
		cc       convCase
		zeroMult bool
		want     bool // in registers
	}{
		{convCase{2, 32, 13, 13, 64, 3, 3, 1, 0, 1, 1, ""}, false, true}, // simplecnn conv2: quad planes, direct plan
		{convCase{3, 1, 28, 28, 32, 3, 3, 1, 0, 1, 1, ""}, false, true},  // simplecnn conv1: row quads
		{convCase{7, 32, 13, 13, 64, 3, 3, 1, 0, 1, 1, ""}, false, true}, // bands of several images, a shorter last band
		{convCase{5, 1, 28, 28, 32, 3, 3, 1, 0, 1, 1, ""}, false, true},
		{convCase{9, 2, 9, 8, 8, 3, 3, 1, 0, 1, 1, ""}, false, true},     // 12 pooled per image, bands of images
		{convCase{1, 3, 30, 37, 9, 3, 3, 1, 1, 1, 1, ""}, false, true},   // row quads, padded, 18 pooled per row
		{convCase{2, 8, 20, 21, 16, 3, 3, 1, 0, 1, 1, ""}, false, true},  // quad planes, 9 pooled per row
		{convCase{1, 12, 19, 18, 40, 3, 3, 2, 1, 1, 1, ""}, false, true}, // quad planes, stride 2, padded: gathers
		{convCase{1, 2, 25, 26, 8, 5, 5, 2, 2, 1, 1, ""}, false, true},   // row quads, stride 2
		{convCase{2, 32, 13, 13, 64, 3, 3, 1, 0, 1, 1, ""}, true, false}, // a multiplier that underflows to 0: the tile path
	}
	r := rand.New(rand.NewPCG(91, 92))
	nobias := qcase{"i8-i8out-nobias", ir.Int8, ir.Int8, 0.3, 0, 0, "", false, false} // zero bias and no clamp in the kernel
	for _, qc := range append(qcases, nobias) {
		if qc.yScale == 0 || qc.resid || isFP8(qc.xt) {
			continue // codes out, no residual: the layers a pool fuses into
		}
		for ci, c := range cases {
			t.Run(fmt.Sprint(qc.name, "/", ci), func(t *testing.T) {
				cc := c.cc
				attrs := quantAttrs(r, cc.m, qc.yScale, qc.xz, qc.yz, qc.act)
				if c.zeroMult {
					attrs[0].F = 1e-30
					attrs[1].Floats[len(attrs[1].Floats)/2] = 1e-30 // x_scale·w_scale underflows to 0
				}
				n := convNode("kiln", "QConv", cc, 0, attrs...)
				in, consts := quantInputs(r, qc, []int64{cc.n, cc.c, cc.h, cc.w}, []int64{cc.m, cc.c / cc.group, cc.kh, cc.kw}, cc.m,
					func(in []*ir.Tensor) []int64 { return reference(t, nodeWith(n, in[:2]), in[:2]).Dims })
				plain := nodeWith(n, in)
				fused := withPool(plain)
				want, err := kiln.ApplyPool(plain, reference(t, plain, in))
				if err != nil {
					t.Fatal(err)
				}
				lf := layer(fused, in, consts, want, precOf(qc))
				low, err := simdQConvTactic{}.Lower(lf)
				if err != nil {
					t.Fatal(err)
				}
				dec, _ := engine.LookupKernel(low.Kernel)
				k, err := dec(low.Params, low.Weights)
				if err != nil {
					t.Fatal(err)
				}
				if got := k.(*simdQConvKernel).poolInRegisters(); got != (c.want && qc.act != "Gelu") {
					t.Fatalf("pool in registers: %v, want %v", got, !got)
				}
				saved := avx.QVariant
				defer func() { avx.QVariant = saved }()
				for _, v := range avx.QVariants() {
					avx.QVariant = v
					for _, th := range []int{1, 2, 3} {
						sameBits(t, fmt.Sprintf("variant %d threads %d", v, th), execKernel(t, simdQConvTactic{}, lf, in, th), want)
					}
				}
			})
		}
	}
}

// BenchmarkQConvPool times simplecnn@256's two INT8 convs with their fused
// 2×2 max pool on cpu.conv.vnni (GFLOP/s counts the conv's MACs before the
// pool, as BenchmarkConv).
func BenchmarkQConvPool(b *testing.B) {
	for _, bc := range benchConvs[:2] {
		for _, th := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/threads=%d", bc.name, th), func(b *testing.B) {
				l, in, flops := convLayer(bc, "i8")
				l.Node = withPool(l.Node) // the kernel's Shapes give the pooled output
				benchTactic(b, simdQConvTactic{}, l, in, flops, th)
			})
		}
	}
}

// TestBalancedChunk: column chunks re-cut so that threads taking items as
// they free up finish together (ResNet-50's 14×14 and 7×7 at 2 threads).
func TestBalancedChunk(t *testing.T) {
	for _, c := range []struct{ n, chunk, other, th, want int }{
		{196, 64, 1, 2, 32},    // 64/64/64/4: 128 vs 68 columns; 32s: 100 vs 96
		{196, 96, 1, 2, 96},    // 96/96/4: 100 vs 96 already
		{196, 64, 1, 1, 64},    // one thread: kept
		{3136, 320, 1, 2, 320}, // many items: kept
		{49, 64, 4, 2, 64},     // one chunk per row block: nothing to re-cut
		{784, 160, 1, 2, 160},  // 160×4 + 144: 320 vs 464? no: 5 items → 480 vs 304; narrower cuts are better
	} {
		got := balancedChunk(c.n, c.chunk, c.other, c.th)
		if c.n == 784 { // checked by the makespan itself: no wider chunk finishes sooner
			if got > c.chunk || got%avx.NR != 0 {
				t.Errorf("balancedChunk(%v) = %d", c, got)
			}
			continue
		}
		if got != c.want {
			t.Errorf("balancedChunk(%d, %d, %d, %d) = %d, want %d", c.n, c.chunk, c.other, c.th, got, c.want)
		}
	}
}
