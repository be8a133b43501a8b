package cpu

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
)

// BenchmarkColdWeights times ResNet-50 layers as an engine runs them at
// batch 1: with their weights out of the caches. A model's weights exceed
// the caches and each layer's are read once per inference, so a repeated
// hot benchmark (BenchmarkConv, BenchmarkWinogradConv) hides the weight
// streams. Here copies of the layer, each with its own weights (over 96 MB
// in all), run round robin. Besides the mean it reports the median and the
// minimum of single runs ("min-ms"), which other processes on a shared
// machine disturb least.
func BenchmarkColdWeights(b *testing.B) {
	shapes := []benchConv{
		{"resnet50-3x3-256", 1, 256, 14, 14, 256, 3, 1, 1},
		{"resnet50-3x3-512", 1, 512, 7, 7, 512, 3, 1, 1},
		{"resnet50-3x3-128", 1, 128, 28, 28, 128, 3, 1, 1},
		{"resnet50-3x3-64", 1, 64, 56, 56, 64, 3, 1, 1},
		{"resnet50-1x1-1024to256", 1, 1024, 14, 14, 256, 1, 1, 0},
		{"resnet50-1x1-2048to512", 1, 2048, 7, 7, 512, 1, 1, 0},
		{"resnet50-1x1-512to2048", 1, 512, 7, 7, 2048, 1, 1, 0},
		{"resnet50-3x3s2-512", 1, 512, 14, 14, 512, 3, 2, 1},
		{"resnet50-1x1s2-256to512", 1, 256, 56, 56, 512, 1, 2, 0},
		{"resnet50-1x1-128to512", 1, 128, 28, 28, 512, 1, 1, 0},
	}
	for _, bc := range shapes {
		l, in, _ := convLayer(bc, "f32")
		tacs := simdBackend{}.Tactics(l)[:1]
		tacs = append(tacs, winogradBackend{}.Tactics(l)...)
		for _, tac := range tacs {
			for _, th := range []int{1, 2} {
				b.Run(fmt.Sprintf("%s/%s/threads=%d", bc.name, tac.Name(), th), func(b *testing.B) {
					benchColdShared(b, tac, l, in, th, false)
				})
			}
		}
	}
}

// benchColdShared runs copies of l's kernel (tac) round robin; with
// shareOut the copies write one output tensor.
func benchColdShared(b *testing.B, tac engine.Tactic, l *engine.Layer, in []*ir.Tensor, threads int, shareOut bool) {
	type copy struct {
		k   engine.Kernel
		out []*ir.Tensor
	}
	var copies []copy
	var kin []*ir.Tensor
	for bytes := 0; bytes < 96<<20 || len(copies) < 2; {
		low, err := tac.Lower(l)
		if err != nil {
			b.Fatal(err)
		}
		dec, _ := engine.LookupKernel(low.Kernel)
		k, err := dec(low.Params, low.Weights)
		if err != nil {
			b.Fatal(err)
		}
		if kin == nil {
			for _, i := range low.Inputs {
				kin = append(kin, in[i])
			}
		}
		shapes, err := k.Shapes(kin)
		if err != nil {
			b.Fatal(err)
		}
		out := []*ir.Tensor{ir.NewTensor(l.Out[0].DType, shapes[0])}
		if shareOut && len(copies) > 0 {
			out = copies[0].out
		}
		copies = append(copies, copy{k, out})
		for _, w := range low.Weights {
			bytes += len(w.Data)
		}
	}
	var scratch []byte
	x := &engine.Exec{Threads: threads, Scratch: func(n int) []byte {
		if cap(scratch) < n {
			scratch = ir.AlignedBytes(int64(n))
		}
		return scratch[:n]
	}}
	for _, c := range copies { // warm-up: plans, scratch
		if err := c.k.Run(x, kin, c.out); err != nil {
			b.Fatal(err)
		}
	}
	times := make([]time.Duration, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c := copies[i%len(copies)]
		t0 := time.Now()
		if err := c.k.Run(x, kin, c.out); err != nil {
			b.Fatal(err)
		}
		times[i] = time.Since(t0)
	}
	b.StopTimer()
	slices.Sort(times)
	b.ReportMetric(float64(times[0].Microseconds())/1e3, "min-ms")
	b.ReportMetric(float64(times[len(times)/2].Microseconds())/1e3, "median-ms")
}
