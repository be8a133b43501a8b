package cpu

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
)

// benchKernel lowers a layer with its first cpu tactic and times Run.
func benchKernel(b *testing.B, l *engine.Layer, in []*ir.Tensor, flops float64, threads int) {
	benchTactic(b, Backend{}.Tactics(l)[0], l, in, flops, threads)
}

// benchTactic lowers a layer with tac and times Run.
func benchTactic(b *testing.B, tac engine.Tactic, l *engine.Layer, in []*ir.Tensor, flops float64, threads int) {
	low, err := tac.Lower(l)
	if err != nil {
		b.Fatal(err)
	}
	dec, _ := engine.LookupKernel(low.Kernel)
	k, err := dec(low.Params, low.Weights)
	if err != nil {
		b.Fatal(err)
	}
	var kin []*ir.Tensor
	for _, i := range low.Inputs {
		kin = append(kin, in[i])
	}
	shapes, err := k.Shapes(kin)
	if err != nil {
		b.Fatal(err)
	}
	out := []*ir.Tensor{ir.NewTensor(l.Out[0].DType, shapes[0])}
	var scratch []byte
	x := &engine.Exec{Threads: threads, Scratch: func(n int) []byte {
		if cap(scratch) < n {
			scratch = ir.AlignedBytes(int64(n))
		}
		return scratch[:n]
	}}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuSeconds()
	for i := 0; i < b.N; i++ {
		if err := k.Run(x, kin, out); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	// On a shared machine wall time includes waiting for a core; the rate
	// per CPU-second (process user+system time) is what a core delivers.
	if cpu := cpuSeconds() - cpu0; cpu > 0 {
		b.ReportMetric(flops*float64(b.N)/cpu/1e9, "GFLOP/cpu-s")
	}
}

type benchConv struct {
	name                   string
	n, c, h, w, m, k, s, p int64
}

// simplecnn@256 (conv 1→32, 32→64, 3×3) and ResNet-50 conv shapes.
var benchConvs = []benchConv{
	{"simplecnn256-conv1", 256, 1, 28, 28, 32, 3, 1, 0},
	{"simplecnn256-conv2", 256, 32, 13, 13, 64, 3, 1, 0},
	{"resnet50-conv1-7x7s2", 1, 3, 224, 224, 64, 7, 2, 3},
	{"mobilenetv2-stem-3x3s2", 1, 3, 224, 224, 32, 3, 2, 1},
	{"resnet50-3x3-64", 1, 64, 56, 56, 64, 3, 1, 1},
	{"resnet50-1x1-256to64", 1, 256, 56, 56, 64, 1, 1, 0},
	{"resnet50-3x3-512", 1, 512, 7, 7, 512, 3, 1, 1},
	{"resnet50-1x1-64to256", 1, 64, 56, 56, 256, 1, 1, 0},
	{"resnet50-3x3-128", 1, 128, 28, 28, 128, 3, 1, 1},
	{"resnet50-1x1-512to128", 1, 512, 28, 28, 128, 1, 1, 0},
	{"resnet50-1x1-128to512", 1, 128, 28, 28, 512, 1, 1, 0},
	{"resnet50-3x3-256", 1, 256, 14, 14, 256, 3, 1, 1},
	{"resnet50-1x1-1024to256", 1, 1024, 14, 14, 256, 1, 1, 0},
	{"resnet50-1x1-256to1024", 1, 256, 14, 14, 1024, 1, 1, 0},
	{"resnet50-1x1-2048to512", 1, 2048, 7, 7, 512, 1, 1, 0},
	{"resnet50-1x1-512to2048", 1, 512, 7, 7, 2048, 1, 1, 0},
}

func convLayer(bc benchConv, prec string) (*engine.Layer, []*ir.Tensor, float64) {
	r := rand.New(rand.NewPCG(1, 1))
	cc := convCase{bc.n, bc.c, bc.h, bc.w, bc.m, bc.k, bc.k, bc.s, bc.p, 1, 1, ""}
	oh := (bc.h+2*bc.p-bc.k)/bc.s + 1
	ow := (bc.w+2*bc.p-bc.k)/bc.s + 1
	flops := 2 * float64(bc.n*bc.m*oh*ow*bc.c*bc.k*bc.k)
	outDims := []int64{bc.n, bc.m, oh, ow}
	if prec == "f32" {
		in := []*ir.Tensor{randF32(r, bc.n, bc.c, bc.h, bc.w), randF32(r, bc.m, bc.c, bc.k, bc.k), randF32(r, bc.m)}
		n := convNode("kiln", "Conv", cc, 3, aStr("activation", "Relu"))
		return layer(n, in, []bool{false, true, true}, ir.NewTensor(ir.Float32, outDims), engine.FP32), in, flops
	}
	in := []*ir.Tensor{randCodes(r, ir.Int8, bc.n, bc.c, bc.h, bc.w), randCodes(r, ir.Int8, bc.m, bc.c, bc.k, bc.k), randF32(r, bc.m)}
	n := convNode("kiln", "QConv", cc, 3, quantAttrs(r, bc.m, 0.1, 0, 0, "Relu")...)
	return layer(n, in, []bool{false, true, true}, ir.NewTensor(ir.Int8, outDims), engine.INT8), in, flops
}

// BenchmarkConv times the first portable tactic (f32, i8) and the first
// SIMD tactic (f32simd: cpu.conv.avx512's im2col variant, direct for 1×1
// convs; i8simd: cpu.conv.vnni) of each shape.
func BenchmarkConv(b *testing.B) {
	for _, prec := range []string{"f32", "f32simd", "i8", "i8simd"} {
		for _, bc := range benchConvs {
			for _, th := range []int{1, 2} {
				b.Run(fmt.Sprintf("%s/%s/threads=%d", prec, bc.name, th), func(b *testing.B) {
					if prec == "f32simd" || prec == "i8simd" {
						l, in, flops := convLayer(bc, prec[:len(prec)-4])
						ts := simdBackend{}.Tactics(l)
						if len(ts) == 0 {
							b.Skip("no SIMD tactic on this CPU/build")
						}
						benchTactic(b, ts[0], l, in, flops, th)
						return
					}
					l, in, flops := convLayer(bc, prec)
					benchKernel(b, l, in, flops, th)
				})
			}
		}
	}
}

// Dense layers: simplecnn@256's fc1 (1600→128), ResNet-50's fc (2048→1000).
func BenchmarkGemm(b *testing.B) {
	for _, prec := range []string{"f32", "i8"} {
		for _, c := range []struct {
			name    string
			m, k, n int64
		}{{"simplecnn256-fc1", 256, 1600, 128}, {"resnet50-fc", 1, 2048, 1000}} {
			for _, th := range []int{1, 2} {
				b.Run(fmt.Sprintf("%s/%s/threads=%d", prec, c.name, th), func(b *testing.B) {
					r := rand.New(rand.NewPCG(2, 2))
					flops := 2 * float64(c.m*c.k*c.n)
					if prec == "f32" {
						in := []*ir.Tensor{randF32(r, c.m, c.k), randF32(r, c.k, c.n), randF32(r, c.n)}
						n := node("kiln", "Gemm", 3, aStr("activation", "Relu"))
						benchKernel(b, layer(n, in, []bool{false, true, true}, ir.NewTensor(ir.Float32, []int64{c.m, c.n}), engine.FP32), in, flops, th)
						return
					}
					in := []*ir.Tensor{randCodes(r, ir.Int8, c.m, c.k), randCodes(r, ir.Int8, c.k, c.n), randF32(r, c.n)}
					n := node("kiln", "QGemm", 3, quantAttrs(r, c.n, 0.1, 0, 0, "Relu")...)
					benchKernel(b, layer(n, in, []bool{false, true, true}, ir.NewTensor(ir.Int8, []int64{c.m, c.n}), engine.INT8), in, flops, th)
				})
			}
		}
	}
}

// BenchmarkDepthwise: MobileNetV2's widest depthwise convs (3×3, Clip),
// on the SIMD depthwise tactic.
func BenchmarkDepthwise(b *testing.B) {
	for _, bc := range []benchConv{
		{"mobilenetv2-dw32-112", 1, 32, 112, 112, 32, 3, 1, 1},
		{"mobilenetv2-dw96-112-s2", 1, 96, 112, 112, 96, 3, 2, 1},
		{"mobilenetv2-dw144-56", 1, 144, 56, 56, 144, 3, 1, 1},
	} {
		benchDepthwise(b, bc, 1)
	}
}

// BenchmarkDepthwiseThreads: MobileNetV2's small depthwise convs (28×28 and
// below, 15-45 µs on one core) at 1 and 2 threads, hot and alone: what the
// split by runs of channels saves when each core's planes stay in its own
// cache. (In the engine the same layers gain almost nothing at 2 threads:
// see BENCHMARKS.md, issue 7, "mobilenetv2 FP32 at two threads: where the
// time goes".)
func BenchmarkDepthwiseThreads(b *testing.B) {
	for _, bc := range []benchConv{
		{"mobilenetv2-dw192-28", 1, 192, 28, 28, 192, 3, 1, 1},
		{"mobilenetv2-dw384-14", 1, 384, 14, 14, 384, 3, 1, 1},
		{"mobilenetv2-dw576-14", 1, 576, 14, 14, 576, 3, 1, 1},
		{"mobilenetv2-dw576-14-s2", 1, 576, 14, 14, 576, 3, 2, 1},
		{"mobilenetv2-dw960-7", 1, 960, 7, 7, 960, 3, 1, 1},
	} {
		for _, th := range []int{1, 2} {
			bc := bc
			bc.name = fmt.Sprintf("%s/threads=%d", bc.name, th)
			benchDepthwise(b, bc, th)
		}
	}
}

func benchDepthwise(b *testing.B, bc benchConv, threads int) {
	b.Run(bc.name, func(b *testing.B) {
		r := rand.New(rand.NewPCG(1, 1))
		cc := convCase{bc.n, bc.c, bc.h, bc.w, bc.m, bc.k, bc.k, bc.s, bc.p, 1, bc.c, ""}
		oh := (bc.h+2*bc.p-bc.k)/bc.s + 1
		ow := (bc.w+2*bc.p-bc.k)/bc.s + 1
		in := []*ir.Tensor{randF32(r, bc.n, bc.c, bc.h, bc.w), randF32(r, bc.m, 1, bc.k, bc.k), randF32(r, bc.m)}
		n := convNode("kiln", "Conv", cc, 3, aStr("activation", "Relu"))
		l := layer(n, in, []bool{false, true, true}, ir.NewTensor(ir.Float32, []int64{bc.n, bc.m, oh, ow}), engine.FP32)
		benchTactic(b, simdDWTactic{}, l, in, 2*float64(bc.n*bc.m*oh*ow*bc.k*bc.k), threads)
	})
}
