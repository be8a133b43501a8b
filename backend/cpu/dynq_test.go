package cpu

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/kilnml/kiln/builder"
	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/kernels/avx"
	"github.com/kilnml/kiln/quant/dynq"
)

// kiln.DynQMatMul on the cpu is bit-exact with ops/kilnq at 1..4 threads,
// with and without bias, residual and activation, over a row with an
// outlier, an all-zero row and a depth that is not a multiple of the tile.
func TestDynQMatMulKernel(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	for _, c := range []struct {
		rows, k, n  int64
		bias, resid bool
		act         string
	}{{37, 70, 29, true, true, "Gelu"}, {5, 256, 64, false, false, ""}, {1, 3, 1, true, false, "Relu"}, {70, 256, 100, true, true, "Gelu"}, {9, 33, 40, false, true, "Sigmoid"}} {
		a := randF32(r, 1, c.rows, c.k)
		if c.rows > 1 {
			a.F32()[c.k+2] = 300 // row 1 outlier
		}
		if c.rows > 3 {
			clear(a.F32()[3*c.k : 4*c.k])
		}
		w := randCodes(r, ir.Int8, c.k, c.n)
		ws := make([]float32, c.n)
		for i := range ws {
			ws[i] = 0.001 + 0.01*r.Float32()
		}
		in := []*ir.Tensor{a, w}
		attrs := []*ir.Attribute{aFloats("w_scales", ws...)}
		if c.act != "" {
			attrs = append(attrs, aStr("activation", c.act))
		}
		if c.bias || c.resid {
			var b *ir.Tensor
			if c.bias {
				b = randF32(r, c.n)
			}
			in = append(in, b)
		}
		if c.resid {
			in = append(in, randF32(r, 1, c.rows, c.n))
		}
		n := node("kiln", "DynQMatMul", len(in), attrs...)
		if c.bias == false && c.resid {
			n.Inputs[2] = ""
		}
		want := reference(t, n, in)
		l := layer(n, in, []bool{false, true, true}, want, engine.FP32)
		ts := transformerBackend{}.Tactics(l)
		if len(ts) != 1 {
			t.Fatalf("tactics %v", ts)
		}
		first := execKernel(t, ts[0], l, in, 1)
		sameBits(t, "dynq vs reference", first, want)
		for th := 2; th <= 4; th++ {
			sameBits(t, "dynq threads", execKernel(t, ts[0], l, in, th), first)
		}
		// The VNNI tactic (and the portable twin of its micro-kernel): bit-exact too.
		saved := avx.QVariant
		simd := simdTransformerBackend{}.Tactics(l)
		if len(simd) == 0 && simdAVX512() && len(avx.QVariants()) > 1 {
			t.Fatalf("no VNNI DynQMatMul tactic on a VNNI CPU")
		}
		for _, tac := range simd {
			for _, v := range avx.QVariants() {
				avx.QVariant = v
				got := execKernel(t, tac, l, in, 1)
				sameBits(t, fmt.Sprintf("%s variant %d vs reference", tac.Name(), v), got, want)
				for th := 2; th <= 3; th++ {
					sameBits(t, fmt.Sprintf("%s variant %d threads %d", tac.Name(), v, th), execKernel(t, tac, l, in, th), got)
				}
			}
		}
		avx.QVariant = saved
	}
}

// BenchmarkBert4DynQ times bert4 with every MatMul as kiln.DynQMatMul (no
// calibration) on 2 threads; compare with BenchmarkBert4 in the same run.
// The rewrite runs as an extra builder pass after the optimizer (the hook
// the builder does not have yet).
func BenchmarkBert4DynQ(b *testing.B) {
	saved := builder.Passes
	builder.Passes = append(append([]builder.Pass{}, saved...), builder.Pass{Name: "dynq", Run: func(m *ir.Model, _ *builder.Config, _ *builder.Report) error {
		_, err := dynq.Rewrite(m, dynq.Options{})
		return err
	}})
	_, p := bert4Plan(b, "fp32")
	builder.Passes = saved
	n := 0
	for _, s := range p.Steps {
		if s.Kernel == "cpu.dynqmatmul" {
			n++
		}
	}
	if n != 24 {
		b.Fatalf("%d dynq layers", n)
	}
	e, err := engine.NewEngine(p)
	if err != nil {
		b.Fatal(err)
	}
	ctx := e.NewContext()
	ctx.SetThreads(2)
	in := bert4Input(9)
	if _, err := ctx.Run(in); err != nil {
		b.Fatal(err)
	}
	var lat []float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if _, err := ctx.Run(in); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, float64(time.Since(t0).Microseconds())/1000)
	}
	sort.Float64s(lat)
	b.ReportMetric(lat[len(lat)/2], "median_ms")
}
