package cpu

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/floatx"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops/kilnq"
)

// quantAttrs returns kilnq attributes for m output channels.
func quantAttrs(r *rand.Rand, m int64, yScale float32, xz, yz int64, act string) []*ir.Attribute {
	ws := make([]float32, m)
	for i := range ws {
		ws[i] = 0.001 + r.Float32()*0.02
	}
	a := []*ir.Attribute{aFloat("x_scale", 0.05), aFloats("w_scales", ws...), aFloat("y_scale", yScale)}
	if xz != 0 || yz != 0 {
		a = append(a, aInt("x_zero", xz), aInt("y_zero", yz))
	}
	if act != "" {
		a = append(a, aStr("activation", act))
	}
	return a
}

type qcase struct {
	name        string
	xt, wt      ir.DType
	yScale      float32
	xz, yz      int64
	act         string
	bias, resid bool
}

var qcases = []qcase{
	{"i8-i8out", ir.Int8, ir.Int8, 0.3, 0, 0, "", true, false},
	{"i8-f32out-relu-resid", ir.Int8, ir.Int8, 0, 0, 0, "Relu", true, true},
	{"i8-i8out-resid-clip", ir.Int8, ir.Int8, 0.2, 0, 0, "Clip", false, true},
	{"i8zp-i8out", ir.Int8, ir.Int8, 0.3, -128, 23, "Relu", true, false},
	{"i8zp-f32out", ir.Int8, ir.Int8, 0, 37, 0, "", true, true},
	{"u8zp-u8out", ir.Uint8, ir.Int8, 0.25, 131, 7, "Relu", true, false},
	{"u8zp-f32out", ir.Uint8, ir.Int8, 0, 90, 0, "Sigmoid", true, true},
	// GELU (kiln.Gelu32: the SIMD kernels apply it a row at a time, vectorized)
	{"i8-i8out-gelu-resid", ir.Int8, ir.Int8, 0.05, 0, 0, "Gelu", true, true},
	{"u8zp-u8out-gelu", ir.Uint8, ir.Int8, 0.04, 128, 64, "Gelu", true, false},
	{"i8-f32out-gelu", ir.Int8, ir.Int8, 0, 0, 0, "Gelu", true, false},
	{"f8-f8out", ir.Float8E4M3FN, ir.Float8E4M3FN, 0.1, 0, 0, "Relu", true, false},
	{"f8-f32out", ir.Float8E4M3FN, ir.Float8E4M3FN, 0, 0, 0, "", true, true},
	// E5M2 activations (a tensor whose range E4M3 cannot hold) with E4M3 weights.
	{"e5m2-e5m2out", ir.Float8E5M2, ir.Float8E4M3FN, 0.1, 0, 0, "Relu", true, false},
	{"e5m2-f32out", ir.Float8E5M2, ir.Float8E4M3FN, 0, 0, 0, "", true, true},
}

// checkQuant: int8/uint8 layers bit-exact; FP8 (float32 accumulation in a
// different order than the reference's float64) within rel 1e-5 for fp32
// outputs and one code for E4M3/E5M2 outputs.
func checkQuant(t *testing.T, qc qcase, name string, got, want *ir.Tensor) {
	t.Helper()
	f, f8 := kilnq.FP8Format(qc.xt)
	if !f8 {
		sameBits(t, name, got, want)
		return
	}
	if want.DType == ir.Float32 {
		closeF32(t, name, got, want, 1e-5)
		return
	}
	for i := range want.Data {
		a, b := int(got.Data[i]), int(want.Data[i])
		va, vb := floatx.F8ToF32(uint8(a), f), floatx.F8ToF32(uint8(b), f)
		tiny := map[floatx.F8Format]float32{floatx.E4M3FN: 0x1p-9, floatx.E5M2: 0x1p-16}[f] // the smallest subnormal
		adjacent := (a^b)&0x80 == 0 && (a-b == 1 || b-a == 1)
		if a != b && !adjacent && !(max(va, -va) <= tiny && max(vb, -vb) <= tiny) {
			t.Fatalf("%s: code %d: %#x, want %#x (%v vs %v)", name, i, a, b,
				floatx.F8ToF32(uint8(a), f), floatx.F8ToF32(uint8(b), f))
		}
	}
}

func quantInputs(r *rand.Rand, qc qcase, xd, wd []int64, m int64, outDims func([]*ir.Tensor) []int64) ([]*ir.Tensor, []bool) {
	in := []*ir.Tensor{randCodes(r, qc.xt, xd...), randCodes(r, qc.wt, wd...)}
	consts := []bool{false, true, true, false}
	in = append(in, nil)
	if qc.bias {
		in[2] = randF32(r, m)
	}
	if qc.resid {
		in = append(in, randF32(r, outDims(in)...))
	}
	return in, consts
}

func TestQConv(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	for _, qc := range qcases {
		for ci, cc := range []convCase{convCases[1], convCases[3], convCases[5], convCases[6], convCases[7], convCases[8], convCases[12]} {
			t.Run(fmt.Sprint(qc.name, "/", ci), func(t *testing.T) {
				attrs := quantAttrs(r, cc.m, qc.yScale, qc.xz, qc.yz, qc.act)
				n := convNode("kiln", "QConv", cc, 0, attrs...)
				in, consts := quantInputs(r, qc, []int64{cc.n, cc.c, cc.h, cc.w}, []int64{cc.m, cc.c / cc.group, cc.kh, cc.kw}, cc.m,
					func(in []*ir.Tensor) []int64 { return reference(t, nodeWith(n, in[:2]), in[:2]).Dims })
				n = nodeWith(n, in)
				want := reference(t, n, in)
				l := layer(n, in, consts, want, precOf(qc))
				everyTactic(t, l, in, func(name string, got *ir.Tensor) { checkQuant(t, qc, name, got, want) })
			})
		}
	}
}

func TestQGemmQMatMul(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	for _, qc := range qcases {
		for _, tb := range []int64{0, 1} {
			for _, M := range []int64{11, 1, 2} { // 1 and 2 rows: matrix-vector path
				t.Run(fmt.Sprint(qc.name, "/gemm-transB", tb, "-M", M), func(t *testing.T) {
					K, N := int64(37), int64(9)
					wd := []int64{K, N}
					if tb == 1 {
						wd = []int64{N, K}
					}
					n := node("kiln", "QGemm", 0, append(quantAttrs(r, N, qc.yScale, qc.xz, qc.yz, qc.act), aInt("transB", tb))...)
					in, consts := quantInputs(r, qc, []int64{M, K}, wd, N, func([]*ir.Tensor) []int64 { return []int64{M, N} })
					n = nodeWith(n, in)
					want := reference(t, n, in)
					everyTactic(t, layer(n, in, consts, want, precOf(qc)), in, func(name string, got *ir.Tensor) { checkQuant(t, qc, name, got, want) })
				})
			}
		}
		t.Run(qc.name+"/matmul", func(t *testing.T) {
			K, N := int64(20), int64(6)
			n := node("kiln", "QMatMul", 0, quantAttrs(r, N, qc.yScale, qc.xz, qc.yz, qc.act)...)
			in, consts := quantInputs(r, qc, []int64{2, 3, K}, []int64{K, N}, N, func([]*ir.Tensor) []int64 { return []int64{2, 3, N} })
			n = nodeWith(n, in)
			want := reference(t, n, in)
			everyTactic(t, layer(n, in, consts, want, precOf(qc)), in, func(name string, got *ir.Tensor) { checkQuant(t, qc, name, got, want) })
		})
	}
}

func precOf(qc qcase) engine.Precision {
	if _, f8 := kilnq.FP8Format(qc.xt); f8 {
		return engine.FP8
	}
	return engine.INT8
}

// nodeWith returns a copy of n with an input per tensor (named "" where nil).
func nodeWith(n *ir.Node, in []*ir.Tensor) *ir.Node {
	c := *n
	c.Inputs = nil
	for i, t := range in {
		name := ""
		if t != nil {
			name = fmt.Sprintf("in%d", i)
		}
		c.Inputs = append(c.Inputs, name)
	}
	return &c
}
