package cpu

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/kernels/avx"
)

// every kernel id table of the SIMD backend
var allISAIDs = []isaIDs{simdConvIDs, simdDWIDs, simdGemmIDs, simdMatMulIDs, simdAttentionIDs, simdQConvIDs,
	simdQGemmIDs, simdDynqIDs, simdQDWIDs, simdF8ConvIDs, simdF8GemmIDs}

// Every variant's id of every SIMD kernel decodes, and no two kernels
// share an id; the AVX-512 ids are the names plans held before.
func TestISAIDsRegistered(t *testing.T) {
	seen := map[string]bool{}
	for _, k := range allISAIDs {
		for tier, id := range k.ids {
			if id == "" {
				if !k.goOnAVX2 || isaTier(tier) != tierAVX2 {
					t.Errorf("%s: no id for variant %d", k, tier)
				}
				continue
			}
			if seen[id] {
				t.Errorf("id %s used twice", id)
			}
			seen[id] = true
			if _, err := engine.LookupKernel(id); err != nil {
				t.Errorf("%v", err)
			}
		}
	}
	for _, old := range []string{"cpu.conv.avx512", "cpu.conv.dw.avx512", "cpu.gemm.avx512", "cpu.matmul.avx512", "cpu.attention.avx512",
		"cpu.conv.vnni", "cpu.gemm.vnni", "cpu.dynqmatmul.vnni", "cpu.conv.dw.avx512.i8", "cpu.conv.avx512.f8", "cpu.gemm.avx512.f8"} {
		if !seen[old] {
			t.Errorf("the old id %s is not registered", old)
		}
	}
}

// The INT8 3×3 depthwise and FP32 convs are named after the variant that
// runs: on the AVX2 path neither the tactic nor the kernel id says avx512
// or vnni (the FP32 depthwise, which has no AVX2 form, says generic there). A plan step naming another variant's id (an AVX2 plan from
// before the names: cpu.conv.dw.avx512.i8) loads and computes the same
// bits, and warns only when this CPU runs a lesser variant than it names.
func TestISANamesFollowVariant(t *testing.T) {
	if !simdAvailable() {
		t.Skip("no SIMD variant on this CPU")
	}
	r := rand.New(rand.NewPCG(71, 72))
	qc := qcase{"u8zp-u8out-relu", ir.Uint8, ir.Int8, 0.25, 131, 7, "Relu", true, false}
	dw := convCase{1, 16, 9, 11, 16, 3, 3, 1, 1, 1, 16, ""}
	n := convNode("kiln", "QConv", dw, 0, quantAttrs(r, dw.m, qc.yScale, qc.xz, qc.yz, qc.act)...)
	qin, consts := quantInputs(r, qc, []int64{dw.n, dw.c, dw.h, dw.w}, []int64{dw.m, 1, 3, 3}, dw.m, nil)
	n = nodeWith(n, qin)
	qwant := reference(t, n, qin)
	ql := layer(n, qin, consts, qwant, precOf(qc))

	fc := convCase{1, 8, 9, 9, 16, 3, 3, 1, 1, 1, 1, ""}
	fin := []*ir.Tensor{randF32(r, fc.n, fc.c, fc.h, fc.w), randF32(r, fc.m, fc.c, 3, 3), randF32(r, fc.m)}
	fn := convNode("", "Conv", fc, 3)
	fwant := reference(t, fn, fin)
	fl := layer(fn, fin, []bool{false, true, true}, fwant, engine.FP32)
	dc := convCase{1, 16, 9, 11, 16, 3, 3, 2, 1, 1, 16, ""}
	din := []*ir.Tensor{randF32(r, dc.n, dc.c, dc.h, dc.w), randF32(r, dc.m, 1, 3, 3), randF32(r, dc.m)}
	dn := convNode("", "Conv", dc, 3)
	dwant := reference(t, dn, din)
	dl := layer(dn, din, []bool{false, true, true}, dwant, engine.FP32)

	saved, qsaved := avx.Variant, avx.QVariant
	defer func() { avx.Variant, avx.QVariant = saved, qsaved }()
	for _, c := range []struct {
		what  string
		l     *engine.Layer
		in    []*ir.Tensor
		tac   engine.Tactic
		ids   isaIDs
		names [3]string
		cmp   func(name string, got *ir.Tensor)
	}{
		{"int8 depthwise", ql, qin, simdQDWTactic{}, simdQDWIDs, [3]string{"conv.avx512.depthwise.i8", "conv.avx2.depthwise.i8", "conv.generic.depthwise.i8"},
			func(name string, got *ir.Tensor) { sameBits(t, name, got, qwant) }},
		{"fp32 conv", fl, fin, simdConvTactic{variant: simdIm2col}, simdConvIDs, [3]string{"conv.avx512.im2col.f32", "conv.avx2.im2col.f32", "conv.generic.im2col.f32"},
			func(name string, got *ir.Tensor) { closeF32(t, name, got, fwant, 1e-5) }},
		{"fp32 depthwise", dl, din, simdDWTactic{}, simdDWIDs, [3]string{"conv.avx512.depthwise.f32", "", "conv.generic.depthwise.f32"},
			func(name string, got *ir.Tensor) { closeF32(t, name, got, dwant, 1e-5) }},
	} {
		for _, v := range avx.Variants() {
			for _, qv := range avx.QVariants() {
				avx.Variant, avx.QVariant = v, qv
				tier := c.ids.tier()
				what := fmt.Sprintf("%s, variants %d/%d", c.what, v, qv)
				if name := c.tac.Name(); name != c.names[tier] {
					t.Errorf("%s: tactic %s, want %s", what, name, c.names[tier])
				}
				low, err := c.tac.Lower(c.l)
				if err != nil {
					t.Fatalf("%s: %v", what, err)
				}
				if low.Kernel != c.ids.ids[tier] {
					t.Errorf("%s: kernel id %s, want %s", what, low.Kernel, c.ids.ids[tier])
				}
				if tier == tierAVX2 && (strings.Contains(c.tac.Name()+low.Kernel, "avx512") || strings.Contains(c.tac.Name()+low.Kernel, "vnni")) {
					t.Errorf("%s: the AVX2 path is named %s / %s", what, c.tac.Name(), low.Kernel)
				}
				// The same step under every variant's id: same bits, and
				// a warning exactly when it names a better variant.
				var first *ir.Tensor
				for named, id := range c.ids.ids {
					if id == "" {
						continue
					}
					got, warn := runAs(t, id, low, c.in, c.l.Out[0].DType)
					c.cmp(what+" as "+id, got)
					if first == nil {
						first = got
					} else {
						sameBits(t, what+" as "+id+" vs "+c.ids.ids[0], got, first)
					}
					if lesser := tier > isaTier(named); lesser != (warn != "") || warn != "" && !strings.HasPrefix(warn, id+": ") {
						t.Errorf("%s, step named %s: warning %q", what, id, warn)
					}
				}
			}
		}
	}
}

// runAs decodes a lowered step under kernel id (as a plan naming that id
// would) and runs it on one thread; it returns the output and the kernel's
// PortabilityWarning.
func runAs(t *testing.T, id string, low *engine.Lowered, in []*ir.Tensor, dt ir.DType) (*ir.Tensor, string) {
	t.Helper()
	dec, err := engine.LookupKernel(id)
	if err != nil {
		t.Fatal(err)
	}
	k, err := dec(low.Params, low.Weights)
	if err != nil {
		t.Fatalf("%s: %v", id, err)
	}
	var kin []*ir.Tensor
	for _, i := range low.Inputs {
		kin = append(kin, in[i])
	}
	if low.Inputs == nil {
		kin = slices.Clone(in)
	}
	shapes, err := k.Shapes(kin)
	if err != nil {
		t.Fatal(err)
	}
	out := ir.NewTensor(dt, shapes[0])
	if err := k.Run(&engine.Exec{Threads: 1, Scratch: func(n int) []byte { return make([]byte, n) }}, kin, []*ir.Tensor{out}); err != nil {
		t.Fatal(err)
	}
	warn := ""
	if pw, ok := k.(interface{ PortabilityWarning() string }); ok {
		warn = pw.PortabilityWarning()
	}
	return out, warn
}
