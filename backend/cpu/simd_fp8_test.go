package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kilnml/kiln/floatx"
	"github.com/kilnml/kiln/ir"
)

// TestSimdF8ConvGemm runs the fp8 SIMD tactics (FP32 AVX-512 kernels over
// decoded codes, every micro-kernel variant, 1..4 threads) against ops/kilnq
// with checkQuant's tolerance (fp32 outputs within rel 1e-5, codes equal or
// adjacent: float32 sums in another order than the reference's exact ones).
func TestSimdF8ConvGemm(t *testing.T) {
	r := rand.New(rand.NewPCG(81, 82))
	for _, qc := range qcases {
		if !isFP8(qc.xt) {
			continue
		}
		for ci, cc := range []convCase{convCases[1], convCases[2], convCases[3], convCases[5], convCases[8], convCases[9], convCases[12],
			{2, 1, 28, 28, 32, 3, 3, 1, 0, 1, 1, ""}, {1, 32, 13, 13, 64, 3, 3, 1, 0, 1, 1, ""}, {1, 300, 5, 5, 9, 3, 3, 1, 1, 1, 1, ""}} {
			t.Run(fmt.Sprint(qc.name, "/conv", ci), func(t *testing.T) {
				attrs := quantAttrs(r, cc.m, qc.yScale, qc.xz, qc.yz, qc.act)
				n := convNode("kiln", "QConv", cc, 0, attrs...)
				in, consts := quantInputs(r, qc, []int64{cc.n, cc.c, cc.h, cc.w}, []int64{cc.m, cc.c / cc.group, cc.kh, cc.kw}, cc.m,
					func(in []*ir.Tensor) []int64 { return reference(t, nodeWith(n, in[:2]), in[:2]).Dims })
				n = nodeWith(n, in)
				want := reference(t, n, in)
				l := layer(n, in, consts, want, precOf(qc))
				everySimdTactic(t, l, in, func(name string, got *ir.Tensor) { checkQuant(t, qc, name, got, want) })
			})
		}
		for _, tb := range []int64{0, 1} {
			for _, sz := range [][3]int64{{11, 37, 9}, {1, 64, 40}, {70, 300, 33}} {
				M, K, N := sz[0], sz[1], sz[2]
				t.Run(fmt.Sprint(qc.name, "/gemm-transB", tb, sz), func(t *testing.T) {
					wd := []int64{K, N}
					if tb == 1 {
						wd = []int64{N, K}
					}
					n := node("kiln", "QGemm", 0, append(quantAttrs(r, N, qc.yScale, qc.xz, qc.yz, qc.act), aInt("transB", tb))...)
					in, consts := quantInputs(r, qc, []int64{M, K}, wd, N, func([]*ir.Tensor) []int64 { return []int64{M, N} })
					n = nodeWith(n, in)
					want := reference(t, n, in)
					everySimdTactic(t, layer(n, in, consts, want, precOf(qc)), in, func(name string, got *ir.Tensor) { checkQuant(t, qc, name, got, want) })
				})
			}
		}
		t.Run(qc.name+"/matmul", func(t *testing.T) {
			K, N := int64(20), int64(6)
			n := node("kiln", "QMatMul", 0, quantAttrs(r, N, qc.yScale, qc.xz, qc.yz, qc.act)...)
			in, consts := quantInputs(r, qc, []int64{2, 3, K}, []int64{K, N}, N, func([]*ir.Tensor) []int64 { return []int64{2, 3, N} })
			n = nodeWith(n, in)
			want := reference(t, n, in)
			everySimdTactic(t, layer(n, in, consts, want, precOf(qc)), in, func(name string, got *ir.Tensor) { checkQuant(t, qc, name, got, want) })
		})
	}
}

// f8MaxMismatchRate bounds the share of output codes of an fp8 conv that
// differ (by one code step) from ops/kilnq's: a float32 sum rounds away from
// the exact one by a few ulps, which moves the code only when y/y_scale lies
// that close to a rounding midpoint. Measured on the SimpleCNN-like layer
// below: see TestSimdF8MismatchRate's log.
const f8MaxMismatchRate = 1e-3

// TestSimdF8MismatchRate measures how often the SIMD fp8 conv's codes
// differ from the reference's, on a conv2-like layer of SimpleCNN
// (32→64 channels, 3×3, K = 288) with random codes.
func TestSimdF8MismatchRate(t *testing.T) {
	r := rand.New(rand.NewPCG(83, 84))
	cc := convCase{2, 32, 13, 13, 64, 3, 3, 1, 0, 1, 1, ""}
	qc := qcase{"f8-f8out", ir.Float8E4M3FN, ir.Float8E4M3FN, 0.5, 0, 0, "Relu", true, false}
	attrs := quantAttrs(r, cc.m, qc.yScale, 0, 0, qc.act)
	n := convNode("kiln", "QConv", cc, 0, attrs...)
	in, consts := quantInputs(r, qc, []int64{cc.n, cc.c, cc.h, cc.w}, []int64{cc.m, cc.c, cc.kh, cc.kw}, cc.m,
		func(in []*ir.Tensor) []int64 { return reference(t, nodeWith(n, in[:2]), in[:2]).Dims })
	n = nodeWith(n, in)
	want := reference(t, n, in)
	l := layer(n, in, consts, want, precOf(qc))
	got := execKernel(t, simdF8Tactic{conv: true, variant: simdIm2col}, l, in, 1)
	checkQuant(t, qc, "mismatch-rate", got, want)
	diff, nonzero := 0, 0
	for i := range want.Data {
		if want.Data[i] != 0 {
			nonzero++
		}
		if got.Data[i] != want.Data[i] {
			diff++
		}
	}
	rate := float64(diff) / float64(len(want.Data))
	t.Logf("%d of %d codes (%d nonzero) differ by one step from ops/kilnq: %.2g", diff, len(want.Data), nonzero, rate)
	if nonzero < len(want.Data)/4 {
		t.Fatalf("only %d of %d codes are nonzero: the test data does not exercise the rounding", nonzero, len(want.Data))
	}
	if rate > f8MaxMismatchRate {
		t.Fatalf("mismatch rate %.3g > %g", rate, f8MaxMismatchRate)
	}
}

// TestF8Encoder checks the integer float8 encoder against floatx.F32ToF8
// (saturating) on every float32 near each float8 value and rounding
// midpoint (±4 ulps), on ±0, ±Inf, NaN, denormals, and on random bits.
func TestF8Encoder(t *testing.T) {
	for _, f := range []floatx.F8Format{floatx.E4M3FN, floatx.E5M2} {
		e := newF8Encoder(f)
		check := func(v float32) {
			if got, want := e.encode(v), floatx.F32ToF8(v, f, true); got != want {
				t.Fatalf("%v: encode(%v = %#x) = %#x, want %#x", f, v, math.Float32bits(v), got, want)
			}
		}
		var vals []float32
		for c := 0; c < 256; c++ {
			v := floatx.F8ToF32(uint8(c), f)
			vals = append(vals, v)
			if n := floatx.F8ToF32(uint8(c+1), f); c < 255 && !math.IsNaN(float64(v)) && !math.IsNaN(float64(n)) {
				vals = append(vals, (v+n)/2) // midpoint (exact in float32)
			}
		}
		vals = append(vals, 0, float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()),
			math.Float32frombits(1), math.Float32frombits(0x80000001), math.MaxFloat32, 1e-30, 500, 60000, 70000)
		for _, v := range vals {
			for d := int32(-4); d <= 4; d++ {
				b := int32(math.Float32bits(v)) + d
				check(math.Float32frombits(uint32(b)))
				check(-math.Float32frombits(uint32(b)))
			}
		}
		r := rand.New(rand.NewPCG(85, 86))
		for range 1 << 20 {
			check(math.Float32frombits(r.Uint32()))
			check(float32(r.NormFloat64() * 10))
		}
	}
}
