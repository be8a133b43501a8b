package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/kernels/avx"
	"github.com/kilnml/kiln/kernels/winograd"
	"github.com/kilnml/kiln/ops/kiln"
)

// Error bound of the Winograd convs. Every output is a sum of product
// terms (bias, residual, and per input channel and patch element ξν the
// product of a transformed weight and a transformed input, weighted by
// Aᵀ's coefficients); in float32 each term passes through at most L
// roundings, so |computed − exact| ≤ γ_L·S with γ_L = L·u/(1−L·u), u =
// 2⁻²⁴, and S the same computation over absolute values:
// S = |bias| + |resid| + Σ_c Σ_ξν |Aᵀ_aξ||Aᵀ_bν|·(|G||g||G|ᵀ)_ξν·(|Bᵀ||d||B|)_ξν
// (Higham, Accuracy and Stability of Numerical Algorithms, §3). S is where
// the transforms' error growth shows: F(4,3)'s larger coefficients (4, 5,
// 8) make it several times Σ|x·w|. L is the GEMM's C accumulations plus
// the chain below; the clamp and the pool's maximum are 1-Lipschitz and
// add nothing.
const (
	// F(2,3): weight transform 1 (float64, rounded once), input 2·1 (one
	// add per dimension), output 2·2 ((m0+m1)+m2), bias 1, residual 1.
	winogradChainF2 = 1 + 2 + 4 + 2
	// F(4,3): weight 1, input 2·3 ((d4−5·d2)+4·d0: product, subtract,
	// add), output 2·4 (((m3−m4)·8 + d12) + m5), bias 1, residual 1.
	winogradChainF4 = 1 + 6 + 8 + 2
)

func winogradGamma(k winograd.Kind, c int) float64 {
	l := float64(c + winogradChainF2)
	if k == winograd.F4 {
		l = float64(c + winogradChainF4)
	}
	u := math.Ldexp(1, -24)
	return l * u / (1 - l*u)
}

type wgCase struct{ n, c, h, w, m, pad int }

var winogradCases = []wgCase{
	{1, 1, 5, 5, 1, 1},     // one channel, partial tiles
	{2, 3, 7, 6, 5, 1},     // odd channels and sizes, batch 2
	{2, 32, 13, 13, 64, 0}, // simplecnn conv2 (11×11: partial tiles)
	{3, 5, 9, 11, 17, 0},   // batch 3, odd sizes, 17 rows (partial strip)
	{1, 64, 7, 7, 72, 1},   // ResNet-50 stage 5 shape (few tiles, 9 row strips)
	{1, 64, 20, 20, 9, 1},  // several tile chunks
	{1, 16, 14, 14, 40, 1}, // ResNet-50 stage 4 shape, rows in several GEMM blocks (F4)
	{1, 2, 3, 3, 3, 1},     // 3×3 input: one tile
	{1, 3, 4, 4, 2, 0},     // 2×2 output
	{2, 9, 16, 15, 12, 0},  // tiles exactly covering the rows
}

// winogradRef returns the float64 conv (+bias, +resid, clamp, pool) and
// each output's error bound γ_L·S (max over the pool's taps).
func winogradRef(k winograd.Kind, cc wgCase, x, w, b, z []float32, lo, hi float64, pool bool) (ref, bound []float64) {
	g, bt, at := winograd.Matrices(k)
	m, t := k.M(), k.T()
	oh, ow := cc.h+2*cc.pad-2, cc.w+2*cc.pad-2
	ref = make([]float64, cc.n*cc.m*oh*ow)
	bound = make([]float64, len(ref))
	// |U| per (o, c): |G||g||G|ᵀ
	au := make([]float64, cc.m*cc.c*t*t)
	for o := 0; o < cc.m; o++ {
		for c := 0; c < cc.c; c++ {
			f := w[(o*cc.c+c)*9:]
			for i := 0; i < t; i++ {
				for j := 0; j < t; j++ {
					var s float64
					for p := 0; p < 3; p++ {
						for q := 0; q < 3; q++ {
							s += math.Abs(g[i][p]) * math.Abs(float64(f[p*3+q])) * math.Abs(g[j][q])
						}
					}
					au[(o*cc.c+c)*t*t+i*t+j] = s
				}
			}
		}
	}
	gam := winogradGamma(k, cc.c)
	xat := func(n, c, i, j int) float64 {
		if i < 0 || j < 0 || i >= cc.h || j >= cc.w {
			return 0
		}
		return float64(x[((n*cc.c+c)*cc.h+i)*cc.w+j])
	}
	av := make([]float64, cc.c*t*t)
	wsum := make([]float64, t*t)
	for n := 0; n < cc.n; n++ {
		for th := 0; th*m < oh; th++ {
			for tw := 0; tw*m < ow; tw++ {
				ih, iw := th*m-cc.pad, tw*m-cc.pad
				for c := 0; c < cc.c; c++ { // |V| = |Bᵀ||d||B|
					for i := 0; i < t; i++ {
						for j := 0; j < t; j++ {
							var s float64
							for p := 0; p < t; p++ {
								for q := 0; q < t; q++ {
									s += math.Abs(bt[i][p]) * math.Abs(xat(n, c, ih+p, iw+q)) * math.Abs(bt[j][q])
								}
							}
							av[c*t*t+i*t+j] = s
						}
					}
				}
				for o := 0; o < cc.m; o++ {
					clear(wsum)
					for c := 0; c < cc.c; c++ {
						for q := range wsum {
							wsum[q] += au[(o*cc.c+c)*t*t+q] * av[c*t*t+q]
						}
					}
					for a := 0; a < m && th*m+a < oh; a++ {
						for bb := 0; bb < m && tw*m+bb < ow; bb++ {
							yh, yw := th*m+a, tw*m+bb
							var s, y float64
							for xi := 0; xi < t; xi++ {
								for nu := 0; nu < t; nu++ {
									s += math.Abs(at[a][xi]) * math.Abs(at[bb][nu]) * wsum[xi*t+nu]
								}
							}
							for c := 0; c < cc.c; c++ {
								for p := 0; p < 3; p++ {
									for q := 0; q < 3; q++ {
										y += xat(n, c, yh+p-cc.pad, yw+q-cc.pad) * float64(w[(o*cc.c+c)*9+p*3+q])
									}
								}
							}
							idx := ((n*cc.m+o)*oh+yh)*ow + yw
							if b != nil {
								y += float64(b[o])
								s += math.Abs(float64(b[o]))
							}
							if z != nil {
								y += float64(z[idx])
								s += math.Abs(float64(z[idx]))
							}
							ref[idx] = math.Min(math.Max(y, lo), hi)
							bound[idx] = gam*s + 1e-12*s // + the float64 reference's own rounding
						}
					}
				}
			}
		}
	}
	if !pool {
		return ref, bound
	}
	ph, pw := oh/2, ow/2
	pr, pb := make([]float64, cc.n*cc.m*ph*pw), make([]float64, cc.n*cc.m*ph*pw)
	for p := 0; p < cc.n*cc.m; p++ {
		for i := 0; i < ph; i++ {
			for j := 0; j < pw; j++ {
				v, e := math.Inf(-1), 0.0
				for _, q := range [4]int{(2*i)*ow + 2*j, (2*i)*ow + 2*j + 1, (2*i+1)*ow + 2*j, (2*i+1)*ow + 2*j + 1} {
					v, e = math.Max(v, ref[p*oh*ow+q]), math.Max(e, bound[p*oh*ow+q])
				}
				pr[(p*ph+i)*pw+j], pb[(p*ph+i)*pw+j] = v, e
			}
		}
	}
	return pr, pb
}

// winogradEpilogues: plain conv with bias; kiln.Conv with bias, residual
// and Relu; Clip with the fused pool; no bias with Relu and the pool.
var winogradEpilogues = []struct {
	name        string
	bias, resid bool
	act         kiln.Activation
	pool        bool
}{
	{"bias", true, false, kiln.Activation{}, false},
	{"bias+resid+relu", true, true, kiln.Activation{Kind: "Relu"}, false},
	{"clip+pool", true, false, kiln.Activation{Kind: "Clip", Alpha: -0.5, Beta: 0.7}, true},
	{"relu+pool", false, false, kiln.Activation{Kind: "Relu"}, true},
}

// TestWinogradConv runs both Winograd tactics on every case and epilogue,
// with every micro-kernel variant at 1–4 threads: the first run must be
// within the error bound of the float64 conv, the others equal to it bit
// for bit; the output and scratch guard bands must stay untouched
// (execKernel).
func TestWinogradConv(t *testing.T) {
	r := rand.New(rand.NewPCG(81, 82))
	saved := avx.Variant
	defer func() { avx.Variant = saved }()
	worst := map[winograd.Kind]float64{}
	for ci, cc := range winogradCases {
		if raceOn && ci%3 != 0 { // every third case under the race detector (30 s → 10 s)
			continue
		}
		for _, ep := range winogradEpilogues {
			oh, ow := cc.h+2*cc.pad-2, cc.w+2*cc.pad-2
			if ep.pool && (oh < 2 || ow < 2) {
				continue
			}
			x := randF32(r, int64(cc.n), int64(cc.c), int64(cc.h), int64(cc.w))
			w := randF32(r, int64(cc.m), int64(cc.c), 3, 3)
			b := randF32(r, int64(cc.m))
			z := randF32(r, int64(cc.n), int64(cc.m), int64(oh), int64(ow))
			conv := convCase{int64(cc.n), int64(cc.c), int64(cc.h), int64(cc.w), int64(cc.m), 3, 3, 1, int64(cc.pad), 1, 1, ""}
			in, consts := []*ir.Tensor{x, w}, []bool{false, true}
			var bs, zs []float32
			if ep.bias {
				in, consts, bs = append(in, b), append(consts, true), b.F32()
			}
			if ep.resid {
				if !ep.bias {
					in, consts = append(in, nil), append(consts, false)
				}
				in, consts, zs = append(in, z), append(consts, false), z.F32()
			}
			var n *ir.Node
			if ep.act.Kind == "" && !ep.pool && !ep.resid {
				n = convNode("", "Conv", conv, len(in))
			} else {
				n = convNode("kiln", "Conv", conv, len(in), ep.act.Attrs()...)
				if ep.pool {
					n = withPool(n)
				}
			}
			want := reference(t, n, in)
			lo, hi := math.Inf(-1), math.Inf(1)
			switch ep.act.Kind {
			case "Relu":
				lo = 0
			case "Clip":
				lo, hi = float64(ep.act.Alpha), float64(ep.act.Beta)
			}
			l := layer(n, in, consts, want, engine.FP32)
			// Both tactics, also where they are not offered (no AVX-512,
			// -tags noasm): the kernels then run the transforms' Go twins.
			if ts, want := (winogradBackend{}).Tactics(l), winograd.Available() && cc.c >= winogradMinC; want != (len(ts) == 2) {
				t.Fatalf("%d tactics offered, want them %v", len(ts), want)
			}
			for _, tac := range []winogradTactic{{winograd.F2}, {winograd.F4}} {
				kind := tac.kind
				ref, bound := winogradRef(kind, cc, x.F32(), w.F32(), bs, zs, lo, hi, ep.pool)
				for _, v := range avx.Variants() {
					avx.Variant = v
					name := fmt.Sprintf("case %d %s %s variant %d", ci, ep.name, tac.Name(), v)
					first := execKernel(t, tac, l, in, 1)
					if len(first.F32()) != len(ref) {
						t.Fatalf("%s: %d outputs, want %d", name, len(first.F32()), len(ref))
					}
					for i, g := range first.F32() {
						e := math.Abs(float64(g) - ref[i])
						if !(e <= bound[i]) {
							t.Fatalf("%s: output %d = %v, want %v ± %.3g (error %.3g)", name, i, g, ref[i], bound[i], e)
						}
						if bound[i] > 0 {
							worst[kind] = max(worst[kind], e/bound[i])
						}
					}
					closeF32(t, name+" vs reference executor", first, want, winogradRelTol(kind))
					for th := 2; th <= 4; th++ {
						sameBits(t, fmt.Sprintf("%s threads %d vs 1", name, th), execKernel(t, tac, l, in, th), first)
					}
				}
			}
		}
	}
	for k, v := range worst {
		t.Logf("%v: largest error / bound %.3f", k, v)
	}
}

// winogradRelTol is the tolerance against the reference executor in
// closeF32's scale (relative to max(|want|, mean|want|)): the bound above
// for C ≤ 64 and unit normal data, where S is at most ~20× (F(2,3)) or
// ~200× (F(4,3)) the outputs' mean magnitude.
func winogradRelTol(k winograd.Kind) float64 {
	if k == winograd.F4 {
		return 2e-4
	}
	return 2e-5
}

// TestWinogradRefused: only 3×3 stride-1 dilation-1 group-1 FP32 convs
// with a clamp-like activation get Winograd tactics (or lower).
func TestWinogradRefused(t *testing.T) {
	r := rand.New(rand.NewPCG(83, 84))
	for _, cc := range []convCase{
		{1, 8, 9, 9, 7, 3, 3, 2, 0, 1, 1, ""},  // stride 2
		{1, 9, 8, 8, 6, 3, 3, 1, 2, 2, 1, ""},  // dilation 2
		{1, 16, 6, 6, 4, 3, 3, 1, 1, 1, 2, ""}, // grouped
		{1, 8, 6, 6, 4, 5, 5, 1, 1, 1, 1, ""},  // 5×5
		{1, 8, 6, 6, 4, 1, 1, 1, 0, 1, 1, ""},  // 1×1
	} {
		x := randF32(r, cc.n, cc.c, cc.h, cc.w)
		w := randF32(r, cc.m, cc.c/cc.group, cc.kh, cc.kw)
		n := convNode("", "Conv", cc, 2)
		in := []*ir.Tensor{x, w}
		l := layer(n, in, []bool{false, true}, reference(t, n, in), engine.FP32)
		if ts := (winogradBackend{}).Tactics(l); len(ts) != 0 {
			t.Errorf("%+v: %d Winograd tactics offered", cc, len(ts))
		}
		for _, tac := range []winogradTactic{{winograd.F2}, {winograd.F4}} {
			if _, err := tac.Lower(l); err == nil {
				t.Errorf("%+v: %s lowered", cc, tac.Name())
			}
		}
	}
	cc := convCase{1, 4, 6, 6, 4, 3, 3, 1, 1, 1, 1, ""}
	x, w := randF32(r, 1, 4, 6, 6), randF32(r, 4, 4, 3, 3)
	n := convNode("kiln", "Conv", cc, 2, kiln.Activation{Kind: "LeakyRelu", Alpha: 0.1}.Attrs()...)
	in := []*ir.Tensor{x, w}
	l := layer(n, in, []bool{false, true}, reference(t, n, in), engine.FP32)
	for _, tac := range []winogradTactic{{winograd.F2}, {winograd.F4}} {
		if _, err := tac.Lower(l); err == nil {
			t.Errorf("LeakyRelu: %s lowered", tac.Name())
		}
	}
	l.Precision = engine.FP16
	if ts := (winogradBackend{}).Tactics(l); len(ts) != 0 {
		t.Errorf("FP16 layer got %d Winograd tactics", len(ts))
	}
}

// TestWinogradPads: asymmetric pads and auto_pad SAME_* (begin pads from
// the input size) against the reference executor, at 1–3 threads.
func TestWinogradPads(t *testing.T) {
	r := rand.New(rand.NewPCG(85, 86))
	for i, attrs := range [][]*ir.Attribute{
		{aInts("pads", 0, 2, 1, 0)},
		{aInts("pads", 2, 1, 0, 2)},
		{aStr("auto_pad", "SAME_UPPER")},
		{aStr("auto_pad", "SAME_LOWER")},
		{aStr("auto_pad", "VALID")},
	} {
		x, w, b := randF32(r, 2, 5, 9, 8), randF32(r, 7, 5, 3, 3), randF32(r, 7)
		n := node("kiln", "Conv", 3, append([]*ir.Attribute{aStr("activation", "Relu")}, attrs...)...)
		in := []*ir.Tensor{x, w, b}
		want := reference(t, n, in)
		l := layer(n, in, []bool{false, true, true}, want, engine.FP32)
		for _, tac := range []winogradTactic{{winograd.F2}, {winograd.F4}} {
			first := execKernel(t, tac, l, in, 1)
			closeF32(t, fmt.Sprintf("pads %d %s", i, tac.Name()), first, want, winogradRelTol(tac.kind))
			for th := 2; th <= 3; th++ {
				sameBits(t, fmt.Sprintf("pads %d %s threads %d", i, tac.Name(), th), execKernel(t, tac, l, in, th), first)
			}
		}
	}
}

// TestWinogradNaNInf: a NaN or Inf input makes NaN or ±Inf every output
// whose transform reads a transformed value it reaches, which are some
// outputs of the tiles whose input patch holds it (Inf − Inf gives NaN
// where the direct conv gives ±Inf): a superset of the direct conv's
// non-finite outputs. Every other output is exactly what it is with that
// input finite (documented in docs/ENGINE.md).
func TestWinogradNaNInf(t *testing.T) {
	r := rand.New(rand.NewPCG(87, 88))
	const n, c, h, w, m, pad = 1, 3, 11, 10, 4, 1
	for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))} {
		for _, kind := range []winograd.Kind{winograd.F2, winograd.F4} {
			x, wt := randF32(r, n, c, h, w), randF32(r, m, c, 3, 3)
			ri, ci := 5, 4 // the bad input, channel 1
			xb := x.Clone()
			xb.F32()[(1*h+ri)*w+ci] = bad
			cc := convCase{n, c, h, w, m, 3, 3, 1, pad, 1, 1, ""}
			nd := convNode("", "Conv", cc, 2)
			in, inb := []*ir.Tensor{x, wt}, []*ir.Tensor{xb, wt}
			want := reference(t, nd, inb)
			l := layer(nd, in, []bool{false, true}, want, engine.FP32)
			tac := winogradTactic{kind}
			clean, got := execKernel(t, tac, l, in, 1).F32(), execKernel(t, tac, l, inb, 1).F32()
			mm, tt := kind.M(), kind.T()
			touched := func(o, in int) bool { // tile of output o reads input in (pad 1)
				t0 := o / mm * mm
				return in >= t0-pad && in < t0-pad+tt
			}
			finite := func(v float32) bool { return !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0) }
			spread := 0
			for i, v := range got {
				oh, ow := i%(h*w)/w, i%w
				if !finite(want.F32()[i]) && finite(v) {
					t.Fatalf("%v %v: output %d is %v where the direct conv gives %v", kind, bad, i, v, want.F32()[i])
				}
				same := math.Float32bits(v) == math.Float32bits(clean[i])
				if !touched(oh, ri) || !touched(ow, ci) {
					if !same {
						t.Fatalf("%v %v: output %d outside the bad input's tiles changed: %v, clean %v", kind, bad, i, v, clean[i])
					}
				} else if !same && finite(v) {
					t.Fatalf("%v %v: output %d in a tile reading the bad input is %v, clean %v", kind, bad, i, v, clean[i])
				}
				if !finite(v) && finite(want.F32()[i]) {
					spread++
				}
			}
			t.Logf("%v, %v input: %d outputs non-finite beyond the direct conv's", kind, bad, spread)
		}
	}
}
