package cpu

import (
	"fmt"
	"testing"

	"github.com/kilnml/kiln/engine"
)

// BenchmarkWinogradConv times the im2col GEMM conv (cpu.conv.avx512) and
// both Winograd tactics on the 3×3 stride-1 layers of simplecnn (conv2,
// with its fused Relu + 2×2 pool as the engine runs it) and ResNet-50.
// GFLOP/s counts the direct conv's multiply-adds for all three, so the
// rates compare times.
func BenchmarkWinogradConv(b *testing.B) {
	shapes := []struct {
		bc   benchConv
		pool bool
	}{
		{benchConv{"simplecnn1-conv2-pool", 1, 32, 13, 13, 64, 3, 1, 0}, true},
		{benchConv{"simplecnn256-conv2-pool", 256, 32, 13, 13, 64, 3, 1, 0}, true},
		{benchConv{"resnet50-3x3-64", 1, 64, 56, 56, 64, 3, 1, 1}, false},
		{benchConv{"resnet50-3x3-128", 1, 128, 28, 28, 128, 3, 1, 1}, false},
		{benchConv{"resnet50-3x3-256", 1, 256, 14, 14, 256, 3, 1, 1}, false},
		{benchConv{"resnet50-3x3-512", 1, 512, 7, 7, 512, 3, 1, 1}, false},
	}
	for _, s := range shapes {
		l, in, flops := convLayer(s.bc, "f32")
		if s.pool {
			l.Node = withPool(l.Node) // the output's shape comes from the kernel's Shapes
		}
		var tacs []engine.Tactic
		if ts := (simdBackend{}).Tactics(l); len(ts) > 0 {
			tacs = append(tacs, ts[0])
		}
		tacs = append(tacs, winogradBackend{}.Tactics(l)...)
		for _, tac := range tacs {
			for _, th := range []int{1, 2} {
				b.Run(fmt.Sprintf("%s/%s/threads=%d", s.bc.name, tac.Name(), th), func(b *testing.B) {
					benchTactic(b, tac, l, in, flops, th)
				})
			}
		}
	}
}
