package cudabackend

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/floatx"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops/kiln"
	"github.com/kilnml/kiln/ops/kilnq"
)

// fastCodeFraction is the share of codes the fast epilogue may round
// differently from the exact one: only values within a few float32 ulps of
// a rounding tie differ, about 10⁻⁵ of random ones.
const fastCodeFraction = 1e-3

// fma32 is the device's __fmaf_rn up to double rounding (the float64 FMA,
// then float32), which can differ only on float32 halfway cases: rarer
// still than the fast epilogue's own differences.
func fma32(a, b, c float32) float32 { return float32(math.FMA(float64(a), float64(b), float64(c))) }

// fastCode emulates the fast epilogue (nhwc.cuh/wgmmap.cu, A_FAST) for one
// output: s, b from fastScaleBias, act and bounds from fastBounds, r the
// residual's code − zz (as a float; 0 without one), zs the z_scale.
func fastCode(p gemmParams, acc int32, s, b, r, zs float32, act int, lo, hi float32) int64 {
	ys, _ := p.outQuant()
	t := fma32(float32(acc), s, b)
	if p.HasZ {
		t = fma32(r, zs/ys, t)
	}
	if p.Out == ir.Float8E4M3FN {
		if act == aFast|actCodes["Clip"] {
			t = min(max(t, lo), hi)
		}
		return int64(floatx.F32ToF8(t, floatx.E4M3FN, true))
	}
	w := t + fastMagic
	if !(w >= lo) { // fmaxf: NaN goes to lo
		w = lo
	}
	w = min(w, hi)
	return int64(w) - fastMagic
}

// e4m3Apart says whether two E4M3FN codes are neighbours or equal: the
// same sign and magnitude bytes at most one apart, or both zeros.
func e4m3Apart(a, b int64) bool {
	if a&0x7f == 0 && b&0x7f == 0 {
		return true
	}
	d := a&0x7f - b&0x7f
	return a&0x80 == b&0x80 && d >= -1 && d <= 1
}

// The fast epilogue's host folding (fastScaleBias, fastBounds) with the
// kernel's arithmetic emulated gives the exact epilogue's codes (kilnq's
// Epilogue and QuantizeOut, what the CPU engine computes) or a neighbour,
// rarely: int8 and uint8 with zero points, E4M3, no/ReLU/Clip activations,
// integer residuals with a zero point.
func TestFastEpilogueCodes(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	const nch, per = 16, 20000
	for _, out := range []struct {
		dt ir.DType
		zp int32
	}{{ir.Int8, 0}, {ir.Int8, -7}, {ir.Uint8, 128}, {ir.Float8E4M3FN, 0}} {
		for _, act := range []kiln.Activation{{}, {Kind: "Relu"}, {Kind: "Clip", Alpha: -0.75, Beta: 2.5}} {
			for _, resid := range []bool{false, true} {
				name := fmt.Sprintf("%s zp %d %q residual %v", out.dt, out.zp, act.Kind, resid)
				l := &kilnq.Layer{XScale: 0.02, YScale: 0.031, YZero: out.zp, Act: act, OutType: out.dt}
				bias := make([]float32, nch)
				for c := range nch {
					l.WScales = append(l.WScales, 0.002+0.01*rng.Float32())
					bias[c] = 4 * (rng.Float32() - 0.5)
				}
				p := gemmParams{WG: true, Out: out.dt, HasScale: true, HasBias: true, YScale: l.YScale, YZero: int(out.zp),
					Act: actCodes[act.Kind], ActA: act.Alpha, ActB: act.Beta}
				if resid {
					l.ZScale, l.ZZero = 0.027, 3
					p.HasZ, p.ZFmt, p.ZScale, p.ZZero = true, residualFormats[ir.Int8], l.ZScale, int(l.ZZero)
				}
				if err := fastLowers(p); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				ms := make([]float32, nch)
				for c := range nch {
					ms[c] = l.XScale * l.WScales[c]
				}
				s, b := fastScaleBias(p, ms, bias, nch)
				fa, lo, hi := fastBounds(p)
				differ := 0
				for i := range nch * per {
					c := i % nch
					acc := int32(rng.IntN(60001) - 30000)
					code := int32(rng.IntN(256) - 128)
					rv := float32(0)
					if resid {
						rv = l.ResidualValue(float32(code))
					}
					want := l.QuantizeOut(l.Epilogue(float32(acc), c, bias[c], rv))
					got := fastCode(p, acc, s[c], b[c], float32(code-l.ZZero), l.ZScale, fa, lo, hi)
					if got == want {
						continue
					}
					differ++
					if near := got-want == 1 || got-want == -1; (out.dt == ir.Float8E4M3FN && !e4m3Apart(got, want)) || (out.dt != ir.Float8E4M3FN && !near) {
						t.Fatalf("%s: acc %d channel %d residual code %d: fast code %d, exact %d", name, acc, c, code, got, want)
					}
				}
				t.Logf("%s: %d of %d codes one apart", name, differ, nch*per)
				if float64(differ) > fastCodeFraction*nch*per {
					t.Errorf("%s: %d of %d codes differ (more than %g)", name, differ, nch*per, fastCodeFraction)
				}
			}
		}
	}
}

// The fast tactics replace the exact wgmma ones where the epilogue folds
// (8-bit output, no/ReLU/Clip activation) and not elsewhere (LeakyRelu);
// SetExactEpilogue(true) offers the exact ones. No GPU needed.
func TestFastEpilogueTactics(t *testing.T) {
	offerWithoutDevice = true
	defer func() { offerWithoutDevice = false; SetExactEpilogue(false) }()
	layer := func(act string) *engine.Layer { return qconv1x1(136, act) }
	names := tacticNames
	for _, act := range []string{"", "Relu", "Clip"} {
		got := names(layer(act))
		if !slices.Contains(got, "implicit_nhwc.wgq"+fastTacticSuffix) || slices.Contains(got, "implicit_nhwc.wgq") {
			t.Errorf("activation %q: tactics %v, want the fast wgq and not the exact one", act, got)
		}
	}
	if got := names(layer("LeakyRelu")); !slices.Contains(got, "implicit_nhwc.wgq") || slices.ContainsFunc(got, func(s string) bool { return strings.HasSuffix(s, fastTacticSuffix) }) {
		t.Errorf("LeakyRelu: tactics %v, want the exact ones only", got)
	}
	SetExactEpilogue(true)
	if got := names(layer("Relu")); !slices.Contains(got, "implicit_nhwc.wgq") || slices.Contains(got, "implicit_nhwc.wgq"+fastTacticSuffix) {
		t.Errorf("SetExactEpilogue(true): tactics %v, want the exact ones", got)
	}
	// the lowered step carries the choice (plans record it)
	low, err := lowerGemm(layer("Relu"), modeNHWCWGQ+fastSuffix)
	if err != nil {
		t.Fatal(err)
	}
	k, err := decodeGemm(low.Params, low.Weights)
	if err != nil {
		t.Fatal(err)
	}
	if !k.(*gemmKernel).p.Fast {
		t.Error("a step lowered with the fast suffix decodes without Fast")
	}
	if _, err := lowerGemm(layer("Relu"), modeNHWC+fastSuffix); err == nil {
		t.Error("the mma.sync NHWC kernel lowered with the fast epilogue")
	}
}

// fastBounds folds ReLU and Clip into the integer code bounds as the codes
// of the activation's bounds, and into clampn's bounds for E4M3.
func TestFastBounds(t *testing.T) {
	p := gemmParams{WG: true, Out: ir.Int8, HasScale: true, YScale: 0.5, YZero: -3, Act: actCodes["Clip"], ActA: -1.25, ActB: 100}
	act, lo, hi := fastBounds(p)
	// codes of -1.25 (RN(-2.5) = -2, + zp = -5) and of 100 (200 - 3, saturated to 127)
	if act != aFast || lo != fastMagic-5 || hi != fastMagic+127 {
		t.Errorf("int8 Clip: act %#x bounds %v, %v", act, lo-fastMagic, hi-fastMagic)
	}
	p.Act = actCodes["Relu"]
	if _, lo, hi = fastBounds(p); lo != fastMagic-3 || hi != fastMagic+127 {
		t.Errorf("int8 ReLU: bounds %v, %v", lo-fastMagic, hi-fastMagic)
	}
	p.Out, p.YZero, p.Act = ir.Float8E4M3FN, 0, actCodes["Relu"]
	if act, lo, hi = fastBounds(p); act != aFast|actCodes["Clip"] || lo != 0 || !math.IsInf(float64(hi), 1) {
		t.Errorf("E4M3 ReLU: act %#x bounds %v, %v", act, lo, hi)
	}
	p.Act = actCodes[""]
	if act, _, _ = fastBounds(p); act != aFast {
		t.Errorf("E4M3 without activation: act %#x", act)
	}
}
