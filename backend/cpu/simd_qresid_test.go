package cpu

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
)

// checkCodeResidual gives layer n (inputs in, consts marking the weights) a residual of
// random zt codes with zero point zz and checks every SIMD tactic against
// ops/kilnq.
func checkCodeResidual(t *testing.T, r *rand.Rand, qc qcase, n *ir.Node, in []*ir.Tensor, consts []bool, zt ir.DType, zz int64) {
	t.Helper()
	attachCodeResidual(r, n, in, zt, zz)
	n = nodeWith(n, in)
	want := reference(t, n, in)
	l := layer(n, in, consts, want, precOf(qc))
	mustLowerSimd(t, l)
	everySimdTactic(t, l, in, func(name string, got *ir.Tensor) { checkQuant(t, qc, name, got, want) })
}

// attachCodeResidual replaces layer n's residual input in[3] by random zt
// codes with zero point zz and gives n the matching z_scale/z_zero.
func attachCodeResidual(r *rand.Rand, n *ir.Node, in []*ir.Tensor, zt ir.DType, zz int64) {
	za, zc := residCodes(r, zt, zz, in[3].Dims)
	in[3] = zc
	n.Attrs = append(n.Attrs, za...)
}

// residCodes returns quantized-residual attributes and a residual of codes
// of type zt (dims d) for z_zero zz: the layer reads float32(code −
// zz)·z_scale (ops/kilnq), as if a DequantizeLinear fed a float residual.
func residCodes(r *rand.Rand, zt ir.DType, zz int64, d []int64) ([]*ir.Attribute, *ir.Tensor) {
	a := []*ir.Attribute{aFloat("z_scale", 0.0371)}
	if zz != 0 {
		a = append(a, aInt("z_zero", zz))
	}
	return a, randCodes(r, zt, d...)
}

// mustLowerSimd checks that some SIMD tactic takes l (everySimdTactic
// skips those that decline).
func mustLowerSimd(t *testing.T, l *engine.Layer) {
	t.Helper()
	for _, tac := range (simdBackend{}).Tactics(l) {
		if _, err := tac.Lower(l); err == nil {
			return
		}
	}
	if len((simdBackend{}).Tactics(l)) > 0 {
		t.Fatalf("%s: every SIMD tactic declined the quantized residual", l.Node)
	}
}

// residCases: the int8/uint8 layers with a residual, each also with int8
// and uint8 residual codes (zero points 0, negative, mid-range).
func residCases() []qcase {
	var cs []qcase
	for _, qc := range qcases {
		if qc.resid && !isFP8(qc.xt) {
			cs = append(cs, qc)
		}
	}
	cs = append(cs, qcase{"u8zp-u8out-relu-resid", ir.Uint8, ir.Int8, 0.25, 131, 7, "Relu", true, true},
		qcase{"i8-i8out-relu-resid-nobias", ir.Int8, ir.Int8, 0.3, 0, 0, "Relu", false, true})
	return cs
}

var residZ = []struct {
	zt ir.DType
	zz int64
}{{ir.Int8, 0}, {ir.Int8, -9}, {ir.Uint8, 0}, {ir.Uint8, 128}, {ir.Uint8, 201}}

func TestSimdQConvCodeResidual(t *testing.T) {
	r := rand.New(rand.NewPCG(41, 42))
	for _, qc := range residCases() {
		for ci, cc := range []convCase{convCases[1], convCases[5], convCases[8], convCases[12],
			{1, 64, 7, 7, 72, 3, 3, 1, 1, 1, 1, ""},   // 49 columns: narrow tails
			{1, 16, 14, 14, 40, 1, 1, 1, 0, 1, 1, ""}, // pointwise straight from NCHW codes, 196 columns
			{2, 16, 9, 10, 24, 1, 1, 2, 0, 1, 1, ""},  // 1×1 stride 2 (ResNet's projection)
			{1, 2, 11, 13, 4, 3, 3, 1, 1, 1, 1, ""},   // row quads
		} {
			for _, z := range residZ {
				t.Run(fmt.Sprint(qc.name, "/", ci, "/", z.zt, z.zz), func(t *testing.T) {
					attrs := quantAttrs(r, cc.m, qc.yScale, qc.xz, qc.yz, qc.act)
					n := convNode("kiln", "QConv", cc, 0, attrs...)
					in, consts := quantInputs(r, qc, []int64{cc.n, cc.c, cc.h, cc.w}, []int64{cc.m, cc.c / cc.group, cc.kh, cc.kw}, cc.m,
						func(in []*ir.Tensor) []int64 { return reference(t, nodeWith(n, in[:2]), in[:2]).Dims })
					checkCodeResidual(t, r, qc, n, in, consts, z.zt, z.zz)
				})
			}
		}
	}
}

func TestSimdQGemmCodeResidual(t *testing.T) {
	r := rand.New(rand.NewPCG(43, 44))
	for _, qc := range residCases() {
		for _, z := range residZ {
			for _, sz := range [][3]int64{{11, 37, 9}, {1, 64, 40}, {70, 130, 33}} {
				M, K, N := sz[0], sz[1], sz[2]
				t.Run(fmt.Sprint(qc.name, "/gemm", sz, "/", z.zt, z.zz), func(t *testing.T) {
					n := node("kiln", "QGemm", 0, quantAttrs(r, N, qc.yScale, qc.xz, qc.yz, qc.act)...)
					in, consts := quantInputs(r, qc, []int64{M, K}, []int64{K, N}, N, func([]*ir.Tensor) []int64 { return []int64{M, N} })
					checkCodeResidual(t, r, qc, n, in, consts, z.zt, z.zz)
				})
			}
			t.Run(fmt.Sprint(qc.name, "/matmul/", z.zt, z.zz), func(t *testing.T) {
				K, N := int64(20), int64(6)
				n := node("kiln", "QMatMul", 0, quantAttrs(r, N, qc.yScale, qc.xz, qc.yz, qc.act)...)
				in, consts := quantInputs(r, qc, []int64{2, 3, K}, []int64{K, N}, N, func([]*ir.Tensor) []int64 { return []int64{2, 3, N} })
				checkCodeResidual(t, r, qc, n, in, consts, z.zt, z.zz)
			})
		}
	}
}

// The INT8 SIMD kernels decline residual codes they do not read (float8)
// and a residual type that does not match z_scale, with the reason.
func TestSimdQConvDeclinesResidual(t *testing.T) {
	r := rand.New(rand.NewPCG(45, 46))
	qc := qcases[1] // int8, float32 out, residual
	cc := convCases[1]
	for _, bad := range []struct {
		zt    ir.DType
		scale bool
	}{{ir.Float8E4M3FN, true}, {ir.Float8E5M2, true}, {ir.Float32, true}, {ir.Int8, false}} {
		attrs := quantAttrs(r, cc.m, qc.yScale, qc.xz, qc.yz, qc.act)
		n := convNode("kiln", "QConv", cc, 0, attrs...)
		in, consts := quantInputs(r, qc, []int64{cc.n, cc.c, cc.h, cc.w}, []int64{cc.m, cc.c / cc.group, cc.kh, cc.kw}, cc.m,
			func(in []*ir.Tensor) []int64 { return reference(t, nodeWith(n, in[:2]), in[:2]).Dims })
		in[3] = randCodes(r, bad.zt, in[3].Dims...)
		if bad.zt == ir.Float32 {
			in[3] = randF32(r, in[3].Dims...)
		}
		if bad.scale {
			n.Attrs = append(n.Attrs, aFloat("z_scale", 0.1))
		}
		n = nodeWith(n, in)
		l := layer(n, in, consts, in[3], precOf(qc))
		for _, tac := range (simdBackend{}).Tactics(l) {
			if _, err := tac.Lower(l); err == nil {
				t.Errorf("%s took a %s residual (z_scale %v)", tac.Name(), bad.zt, bad.scale)
			} else {
				t.Logf("%s: %v", tac.Name(), err)
			}
		}
	}
}

// The fp8 kernels read residual codes of every type kilnq allows (E4M3,
// E5M2, int8, uint8) through a 256-entry table of their values.
func TestSimdFP8CodeResidual(t *testing.T) {
	r := rand.New(rand.NewPCG(47, 48))
	var cs []qcase
	for _, qc := range qcases {
		if qc.resid && isFP8(qc.xt) {
			cs = append(cs, qc)
		}
	}
	cs = append(cs, qcase{"f8-f8out-relu-resid", ir.Float8E4M3FN, ir.Float8E4M3FN, 0.1, 0, 0, "Relu", true, true},
		qcase{"e5m2-e5m2out-resid", ir.Float8E5M2, ir.Float8E4M3FN, 0.1, 0, 0, "", false, true})
	zs := []struct {
		zt ir.DType
		zz int64
	}{{ir.Float8E4M3FN, 0}, {ir.Float8E5M2, 0}, {ir.Int8, -3}, {ir.Uint8, 140}}
	for _, qc := range cs {
		for _, z := range zs {
			for ci, cc := range []convCase{convCases[1], convCases[5], {1, 16, 7, 7, 40, 1, 1, 1, 0, 1, 1, ""}} {
				t.Run(fmt.Sprint(qc.name, "/conv", ci, "/", z.zt, z.zz), func(t *testing.T) {
					attrs := quantAttrs(r, cc.m, qc.yScale, qc.xz, qc.yz, qc.act)
					n := convNode("kiln", "QConv", cc, 0, attrs...)
					in, consts := quantInputs(r, qc, []int64{cc.n, cc.c, cc.h, cc.w}, []int64{cc.m, cc.c / cc.group, cc.kh, cc.kw}, cc.m,
						func(in []*ir.Tensor) []int64 { return reference(t, nodeWith(n, in[:2]), in[:2]).Dims })
					checkCodeResidual(t, r, qc, n, in, consts, z.zt, z.zz)
				})
			}
			t.Run(fmt.Sprint(qc.name, "/gemm/", z.zt, z.zz), func(t *testing.T) {
				M, K, N := int64(11), int64(37), int64(9)
				n := node("kiln", "QGemm", 0, quantAttrs(r, N, qc.yScale, qc.xz, qc.yz, qc.act)...)
				in, consts := quantInputs(r, qc, []int64{M, K}, []int64{K, N}, N, func([]*ir.Tensor) []int64 { return []int64{M, N} })
				checkCodeResidual(t, r, qc, n, in, consts, z.zt, z.zz)
			})
		}
	}
}

// One image split by output channels at 2+ threads (byChannels: at least
// as many channels as columns), pointwise and with two column chunks per
// row block: the same bits as at 1 thread (everySimdTactic), as kilnq's.
func TestSimdQConvByChannels(t *testing.T) {
	r := rand.New(rand.NewPCG(49, 50))
	for _, qc := range []qcase{qcases[1], qcases[2]} {
		for ci, cc := range []convCase{{1, 512, 6, 6, 512, 1, 1, 1, 0, 1, 1, ""}, {1, 512, 7, 7, 64, 3, 3, 1, 1, 1, 1, ""}} {
			for _, codes := range []bool{false, true} {
				t.Run(fmt.Sprint(qc.name, "/", ci, "/codes=", codes), func(t *testing.T) {
					attrs := quantAttrs(r, cc.m, qc.yScale, qc.xz, qc.yz, qc.act)
					n := convNode("kiln", "QConv", cc, 0, attrs...)
					in, consts := quantInputs(r, qc, []int64{cc.n, cc.c, cc.h, cc.w}, []int64{cc.m, cc.c / cc.group, cc.kh, cc.kw}, cc.m,
						func(in []*ir.Tensor) []int64 { return reference(t, nodeWith(n, in[:2]), in[:2]).Dims })
					if codes {
						attachCodeResidual(r, n, in, ir.Int8, 0)
					}
					n = nodeWith(n, in)
					want := reference(t, n, in)
					l := layer(n, in, consts, want, precOf(qc))
					mustLowerSimd(t, l)
					everySimdTactic(t, l, in, func(name string, got *ir.Tensor) { checkQuant(t, qc, name, got, want) })
				})
			}
		}
	}
}

// The portable kernels (cpu.conv, cpu.gemm: what a CPU without AVX2 runs)
// read residual codes of every type too, as every other tactic.
func TestPortableCodeResidual(t *testing.T) {
	r := rand.New(rand.NewPCG(51, 52))
	var cs []qcase
	for _, qc := range qcases {
		if qc.resid {
			cs = append(cs, qc)
		}
	}
	zs := []struct {
		zt ir.DType
		zz int64
	}{{ir.Int8, -7}, {ir.Uint8, 130}, {ir.Float8E4M3FN, 0}, {ir.Float8E5M2, 0}}
	for _, qc := range cs {
		for _, z := range zs {
			for ci, cc := range []convCase{convCases[1], convCases[6], convCases[8]} { // odd sizes, depthwise, grouped
				t.Run(fmt.Sprint(qc.name, "/conv", ci, "/", z.zt), func(t *testing.T) {
					attrs := quantAttrs(r, cc.m, qc.yScale, qc.xz, qc.yz, qc.act)
					n := convNode("kiln", "QConv", cc, 0, attrs...)
					in, consts := quantInputs(r, qc, []int64{cc.n, cc.c, cc.h, cc.w}, []int64{cc.m, cc.c / cc.group, cc.kh, cc.kw}, cc.m,
						func(in []*ir.Tensor) []int64 { return reference(t, nodeWith(n, in[:2]), in[:2]).Dims })
					attachCodeResidual(r, n, in, z.zt, z.zz)
					n = nodeWith(n, in)
					want := reference(t, n, in)
					l := layer(n, in, consts, want, precOf(qc))
					if len(tacticsFor(t, l)) == 0 {
						t.Fatal("no tactic")
					}
					everyTactic(t, l, in, func(name string, got *ir.Tensor) { checkQuant(t, qc, name, got, want) })
				})
			}
			t.Run(fmt.Sprint(qc.name, "/gemm/", z.zt), func(t *testing.T) {
				M, K, N := int64(11), int64(37), int64(9)
				n := node("kiln", "QGemm", 0, quantAttrs(r, N, qc.yScale, qc.xz, qc.yz, qc.act)...)
				in, consts := quantInputs(r, qc, []int64{M, K}, []int64{K, N}, N, func([]*ir.Tensor) []int64 { return []int64{M, N} })
				attachCodeResidual(r, n, in, z.zt, z.zz)
				n = nodeWith(n, in)
				want := reference(t, n, in)
				everyTactic(t, layer(n, in, consts, want, precOf(qc)), in, func(name string, got *ir.Tensor) { checkQuant(t, qc, name, got, want) })
			})
		}
	}
}

// A plan whose residual is codes without z_scale (or z_scale without codes)
// is refused by every decoder, never read as floats: the lowered params
// with z_scale removed or the residual type changed.
func TestResidualCodesPlanChecks(t *testing.T) {
	r := rand.New(rand.NewPCG(53, 54))
	for _, qc := range []qcase{qcases[1], qcases[11]} { // int8, fp8
		cc := convCase{1, 8, 6, 6, 16, 3, 3, 1, 1, 1, 1, ""}
		attrs := quantAttrs(r, cc.m, qc.yScale, qc.xz, qc.yz, qc.act)
		n := convNode("kiln", "QConv", cc, 0, attrs...)
		in, consts := quantInputs(r, qc, []int64{cc.n, cc.c, cc.h, cc.w}, []int64{cc.m, cc.c, cc.kh, cc.kw}, cc.m,
			func(in []*ir.Tensor) []int64 { return reference(t, nodeWith(n, in[:2]), in[:2]).Dims })
		attachCodeResidual(r, n, in, ir.Int8, 0)
		n = nodeWith(n, in)
		l := layer(n, in, consts, reference(t, n, in), precOf(qc))
		tactics := append(simdBackend{}.Tactics(l), Backend{}.Tactics(l)...)
		for _, tac := range tactics {
			low, err := tac.Lower(l)
			if err != nil {
				continue
			}
			dec, err := engine.LookupKernel(low.Kernel)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := dec(low.Params, low.Weights); err != nil {
				t.Fatalf("%s: the valid plan: %v", tac.Name(), err)
			}
			var p map[string]any
			if err := json.Unmarshal(low.Params, &p); err != nil {
				t.Fatal(err)
			}
			q := p["quant"].(map[string]any)
			delete(q, "z_scale") // codes, no z_scale
			b, _ := json.Marshal(p)
			if _, err := dec(b, low.Weights); err == nil {
				t.Errorf("%s: decoded residual codes without z_scale", tac.Name())
			} else {
				t.Logf("%s: %v", tac.Name(), err)
			}
			q["z_scale"] = 0.5 // z_scale, float32 residual
			p["ztype"] = float64(ir.Float32)
			b, _ = json.Marshal(p)
			if _, err := dec(b, low.Weights); err == nil {
				t.Errorf("%s: decoded z_scale with a float32 residual", tac.Name())
			} else {
				t.Logf("%s: %v", tac.Name(), err)
			}
		}
	}
}
