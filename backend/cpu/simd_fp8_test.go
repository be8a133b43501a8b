package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kilnml/kiln/engine"
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

// BenchmarkSimdF8Conv times the fp8 SIMD conv (and the FP32 one it runs
// on) on simplecnn@256's convs.
func BenchmarkSimdF8Conv(b *testing.B) {
	for _, bc := range benchConvs[:2] {
		for _, prec := range []string{"f32", "f8"} {
			b.Run(prec+"/"+bc.name, func(b *testing.B) {
				l, in, flops := convLayer(bc, "f32")
				if prec == "f8" {
					oh, ow := (bc.h+2*bc.p-bc.k)/bc.s+1, (bc.w+2*bc.p-bc.k)/bc.s+1
					r := rand.New(rand.NewPCG(1, 1))
					// codes of magnitude below 2 (a calibrated layer's range), signed weights
					xq, wq := randCodes(r, ir.Float8E4M3FN, in[0].Dims...), randCodes(r, ir.Float8E4M3FN, in[1].Dims...)
					for i := range xq.Data {
						xq.Data[i] &= 0x3f
					}
					for i := range wq.Data {
						wq.Data[i] &= 0xbf
					}
					in = []*ir.Tensor{xq, wq, in[2]}
					n := convNode("kiln", "QConv", convCase{bc.n, bc.c, bc.h, bc.w, bc.m, bc.k, bc.k, bc.s, bc.p, 1, 1, ""}, 3,
						quantAttrs(r, bc.m, 0.1, 0, 0, "Relu")...)
					l = layer(n, in, []bool{false, true, true}, ir.NewTensor(ir.Float8E4M3FN, []int64{bc.n, bc.m, oh, ow}), engine.FP8)
				}
				ts := simdBackend{}.Tactics(l)
				if len(ts) == 0 {
					b.Skip("no SIMD tactic on this CPU/build")
				}
				benchTactic(b, ts[0], l, in, flops, 1)
			})
		}
	}
}

// TestSimdF8MaxPool checks the fp8 max pool against ops/nn's MaxPool, bit
// for bit: E4M3FN and E5M2 codes (all 256, so NaN, ±0 and ±Inf, in some
// planes; only finite nonzero ones in others, the vectorized key path),
// 2×2/2 and 3×3 windows with strides, padding, dilation and odd sizes.
func TestSimdF8MaxPool(t *testing.T) {
	r := rand.New(rand.NewPCG(87, 88))
	wins := [][]*ir.Attribute{
		{aInts("kernel_shape", 2, 2), aInts("strides", 2, 2)},
		{aInts("kernel_shape", 3, 3), aInts("strides", 2, 2), aInts("pads", 1, 1, 1, 1)},
		{aInts("kernel_shape", 3, 2), aInts("strides", 1, 2), aInts("pads", 0, 1, 2, 0), aInts("dilations", 2, 1)},
	}
	for _, dt := range []ir.DType{ir.Float8E4M3FN, ir.Float8E5M2} {
		for wi, attrs := range wins {
			for _, dims := range [][]int64{{2, 3, 9, 8}, {1, 4, 26, 26}, {3, 2, 7, 70}} {
				for _, special := range []bool{false, true} {
					t.Run(fmt.Sprint(dt, "/win", wi, dims, "/special=", special), func(t *testing.T) {
						x := ir.NewTensor(dt, dims)
						for i := range x.Data {
							c := byte(r.IntN(256))
							if !special && (c == 0x80 || c&0x7f >= map[ir.DType]byte{ir.Float8E4M3FN: 0x7f, ir.Float8E5M2: 0x7c}[dt]) {
								c = byte(r.IntN(0x70)) | c&0x80 + 1
							}
							x.Data[i] = c
						}
						if special { // a plane of negative values with −0 and +0
							for i := range x.Data[:dims[2]*dims[3]] {
								x.Data[i] = []byte{0x80, 0x00, 0x81, 0x85}[r.IntN(4)]
							}
						}
						n := node("", "MaxPool", 1, attrs...)
						in := []*ir.Tensor{x}
						want := reference(t, n, in)
						l := layer(n, in, []bool{false}, want, engine.FP8)
						everyTactic(t, l, in, func(name string, got *ir.Tensor) { sameBits(t, name, got, want) }) // also without AVX-512
						everySimdTactic(t, l, in, func(name string, got *ir.Tensor) { sameBits(t, name, got, want) })
					})
				}
			}
		}
	}
}

// TestSimdF8QuantizeLinear checks cpu.quantize.f8 against ops/qops's
// QuantizeLinear bit for bit: values with specials (±0, ±Inf, NaN,
// denormals, ties), saturating and not, E4M3FN and E5M2, odd lengths.
func TestSimdF8QuantizeLinear(t *testing.T) {
	r := rand.New(rand.NewPCG(89, 90))
	for _, n := range []int{40000, 37} {
		x := valuesWithSpecials(r, n, 30)
		for _, dt := range []ir.DType{ir.Float8E4M3FN, ir.Float8E5M2} {
			for _, sat := range []int64{1, 0} {
				t.Run(fmt.Sprint(dt, sat, n), func(t *testing.T) {
					scale := ir.FromFloat32s(nil, []float32{0.37})
					zp := ir.FromFloat64s(dt, nil, []float64{0})
					nd := node("", "QuantizeLinear", 3, aInt("saturate", sat))
					in := []*ir.Tensor{x, scale, zp}
					want := reference(t, nd, in)
					everySimdTactic(t, layer(nd, in, []bool{false, true, true}, want, engine.FP32), in, func(name string, got *ir.Tensor) { sameBits(t, name, got, want) })
				})
			}
		}
	}
}
