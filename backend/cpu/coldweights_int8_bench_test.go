package cpu

import (
	"fmt"
	"testing"
)

// BenchmarkColdWeightsInt8 is BenchmarkColdWeights for ResNet-50's INT8
// layers on the SIMD INT8 conv (cpu.conv.vnni: direct 1×1, im2col 3×3):
// copies of the layer with their own packed int8 weights (over 96 MB in
// all) run round robin, so each run reads its weights from DRAM as an
// inference does. The copies share one output tensor (the outputs of the
// small-weight layers would otherwise take gigabytes); an engine's
// activations are mostly in cache too.
func BenchmarkColdWeightsInt8(b *testing.B) {
	shapes := []benchConv{
		{"res2-3x3-64", 1, 64, 56, 56, 64, 3, 1, 1},
		{"res2-1x1-256to64", 1, 256, 56, 56, 64, 1, 1, 0},
		{"res3-3x3-128", 1, 128, 28, 28, 128, 3, 1, 1},
		{"res3-1x1-512to128", 1, 512, 28, 28, 128, 1, 1, 0},
		{"res4-3x3-256", 1, 256, 14, 14, 256, 3, 1, 1},
		{"res4-1x1-1024to256", 1, 1024, 14, 14, 256, 1, 1, 0},
		{"res4-1x1-256to1024", 1, 256, 14, 14, 1024, 1, 1, 0},
		{"res5-3x3-512", 1, 512, 7, 7, 512, 3, 1, 1},
		{"res5-3x3s2-512", 1, 512, 14, 14, 512, 3, 2, 1},
		{"res5-1x1-2048to512", 1, 2048, 7, 7, 512, 1, 1, 0},
		{"res5-1x1-512to2048", 1, 512, 7, 7, 2048, 1, 1, 0},
	}
	for _, bc := range shapes {
		l, in, _ := convLayer(bc, "i8")
		tacs := simdBackend{}.Tactics(l)
		if len(tacs) == 0 {
			b.Skip("no SIMD INT8 tactic on this CPU/build")
		}
		for _, th := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/%s/threads=%d", bc.name, tacs[0].Name(), th), func(b *testing.B) {
				benchColdShared(b, tacs[0], l, in, th, true)
			})
		}
	}
}
