package cpu

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/kernels/avx"
)

// A 1×1 stride-1 unpadded conv is offered the direct variant only; padded,
// strided or pool-fused 1×1 convs and 3×3 convs keep im2col.
func TestPointwiseTactics(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	for _, c := range []struct {
		cc     convCase
		pool   bool
		im2col bool
	}{
		{convCase{1, 8, 6, 6, 16, 1, 1, 1, 0, 1, 1, ""}, false, false},
		{convCase{1, 8, 6, 6, 16, 1, 1, 1, 1, 1, 1, ""}, false, true},
		{convCase{1, 8, 6, 6, 16, 1, 1, 2, 0, 1, 1, ""}, false, true},
		{convCase{1, 8, 6, 6, 16, 1, 1, 1, 0, 1, 1, ""}, true, true},
		{convCase{1, 8, 6, 6, 16, 3, 3, 1, 1, 1, 1, ""}, false, true},
	} {
		x := randF32(r, c.cc.n, c.cc.c, c.cc.h, c.cc.w)
		w := randF32(r, c.cc.m, c.cc.c, c.cc.kh, c.cc.kw)
		n := convNode("kiln", "Conv", c.cc, 2)
		if c.pool {
			n = withPool(n)
		}
		in := []*ir.Tensor{x, w}
		l := layer(n, in, []bool{false, true}, ir.NewTensor(ir.Float32, []int64{1, c.cc.m, 1, 1}), engine.FP32)
		ts := simdBackend{}.Tactics(l)
		if len(ts) == 0 {
			t.Skip("no SIMD tactic on this CPU/build")
		}
		var names []string
		for _, tac := range ts {
			names = append(names, tac.Name())
		}
		if got := slices.Contains(names, simdConvTactic{simdIm2col}.Name()); got != c.im2col {
			t.Errorf("%+v pool %v: tactics %v, im2col offered %v, want %v", c.cc, c.pool, names, got, c.im2col)
		}
	}
}

// BenchmarkPointwise: 1×1 convs of MobileNetV2 and ResNet-50 on both FP32
// SIMD tactics, im2col (B packed per run) and direct (B read in place).
func BenchmarkPointwise(b *testing.B) {
	for _, bc := range []benchConv{
		{"mobilenetv2-32to16-112", 1, 32, 112, 112, 16, 1, 1, 0},
		{"mobilenetv2-16to96-112", 1, 16, 112, 112, 96, 1, 1, 0},
		{"mobilenetv2-96to24-56", 1, 96, 56, 56, 24, 1, 1, 0},
		{"mobilenetv2-144to24-56", 1, 144, 56, 56, 24, 1, 1, 0},
		{"mobilenetv2-384to64-14", 1, 384, 14, 14, 64, 1, 1, 0},
		{"mobilenetv2-960to320-7", 1, 960, 7, 7, 320, 1, 1, 0},
		{"resnet50-256to64-56", 1, 256, 56, 56, 64, 1, 1, 0},
		{"resnet50-64to256-56", 1, 64, 56, 56, 256, 1, 1, 0},
		{"resnet50-512to128-28", 1, 512, 28, 28, 128, 1, 1, 0},
		{"resnet50-1024to256-14", 1, 1024, 14, 14, 256, 1, 1, 0},
		{"resnet50-2048to512-7", 1, 2048, 7, 7, 512, 1, 1, 0},
		{"256to64-32", 1, 256, 32, 32, 64, 1, 1, 0}, // planes of 4 KB: B's rows alias in L1
		{"256to64-16", 1, 256, 16, 16, 64, 1, 1, 0},
		{"512to128-64", 1, 512, 64, 64, 128, 1, 1, 0},
	} {
		for _, v := range []string{simdIm2col, simdDirect} {
			b.Run(fmt.Sprintf("%s/%s", bc.name, v), func(b *testing.B) {
				l, in, flops := convLayer(bc, "f32")
				if len(simdBackend{}.Tactics(l)) == 0 {
					b.Skip("no SIMD tactic on this CPU/build")
				}
				benchTactic(b, simdConvTactic{variant: v}, l, in, flops, 1)
			})
		}
	}
}

// evenChunks gives every thread as many items when a few do not divide,
// with chunk widths that are multiples of NR and cover n exactly.
func TestEvenChunks(t *testing.T) {
	for _, c := range []struct{ n, nch, other, th, want int }{
		{12544, 11, 1, 2, 12}, // MobileNetV2 stem: 1184-column chunks
		{1000, 11, 1, 2, 16},  // its classifier: 12 and 14 chunks do not come out of widths of 32
		{12544, 7, 1, 2, 8},
		{3136, 3, 1, 3, 0},   // divides already
		{3136, 3, 2, 2, 0},   // divides already
		{12544, 40, 1, 3, 0}, // many items: the imbalance is small
		{100, 3, 1, 1, 0},    // one thread
		{40, 1, 1, 2, 2},
		{32, 1, 1, 2, 0}, // one strip cannot be split
	} {
		w, got := evenChunks(c.n, c.nch, c.other, c.th)
		if got != c.want {
			t.Errorf("evenChunks(%d, %d, %d, %d) = %d chunks, want %d", c.n, c.nch, c.other, c.th, got, c.want)
			continue
		}
		if got > 0 && (w%avx.NR != 0 || (c.n+w-1)/w != got || (c.other*got)%c.th != 0) {
			t.Errorf("evenChunks(%d, %d, %d, %d): width %d for %d chunks", c.n, c.nch, c.other, c.th, w, got)
		}
	}
}
