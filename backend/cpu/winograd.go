package cpu

import (
	"fmt"
	"sync/atomic"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/kernels/avx"
	"github.com/kilnml/kiln/kernels/parallel"
	"github.com/kilnml/kiln/kernels/winograd"
	"github.com/kilnml/kiln/ops/kiln"
)

// Winograd convolution (kernels/winograd) for FP32 3×3 stride-1
// dilation-1 group-1 convs: F(2×2,3×3) and F(4×4,3×3) are offered as two
// tactics next to the im2col GEMM of simd_conv.go, and the builder times
// them all at the opt shape and keeps the fastest, so Winograd runs only
// where it measured faster. The weights are transformed and packed at
// build time (T² matrices of M×C for avx.Gemm); at run time tiles are cut
// into chunks whose transformed inputs stay in L2, and each chunk's T²
// GEMMs run on kernels/avx's packed FP32 GEMM between the input and the
// output transforms. The fused epilogue is bias, residual, Relu/Clip and
// kiln's 2×2 max pool; other activations keep the GEMM conv. Winograd
// rounds differently from a direct conv (error bound in winograd_test.go),
// but each output is one fixed computation, so results are bit-identical
// at any thread count.
type winogradBackend struct{}

func (winogradBackend) Name() string { return "cpu" }

// Priority 8: after the portable and SIMD GEMM tactics, so deterministic
// builds (first valid tactic) never pick a Winograd kernel.
func (winogradBackend) Priority() int { return 8 }

func init() { engine.RegisterBackend(winogradBackend{}) }

const winogradID = "cpu.conv.winograd"

type winogradTactic struct{ kind winograd.Kind }

func (t winogradTactic) Name() string { return fmt.Sprintf("conv.winograd.f%d.f32", t.kind.M()) }

func (winogradBackend) Tactics(l *engine.Layer) []engine.Tactic {
	n := l.Node
	if disabled || !winograd.Available() || l.Precision != engine.FP32 || !(n.OpType == "Conv" && (n.Domain == "" || n.Domain == "kiln")) {
		return nil
	}
	if !isConst(l, 1) || len(l.Const[1].Dims) != 4 || l.Const[1].Dims[2] != 3 || l.Const[1].Dims[3] != 3 {
		return nil
	}
	if l.Const[1].Dims[1] < winogradMinC {
		return nil
	}
	if win, err := readWindow(n, l.Const[1].Dims[2:], true); err != nil || win.Strides != [2]int{1, 1} || win.Dils != [2]int{1, 1} {
		return nil // Lower would refuse it: not timed at all
	}
	if g, err := n.AttrInt("group", 1); err != nil || g != 1 {
		return nil
	}
	return []engine.Tactic{winogradTactic{winograd.F2}, winogradTactic{winograd.F4}}
}

// winogradMinC: below this many input channels the T² GEMMs have too
// little depth to pay for the transforms (simplecnn's conv1, C = 1: F(2,3)
// 5× slower than the GEMM conv), so the tactics are not offered at all and
// a noisy timing cannot pick them.
const winogradMinC = 8

type winogradParams struct {
	Kind  int      `json:"kind"` // m of F(m×m, 3×3)
	Win   window   `json:"win"`
	M     int      `json:"m"`
	C     int      `json:"c"`
	Bias  bool     `json:"bias,omitempty"`
	Resid bool     `json:"resid,omitempty"`
	Act   actParam `json:"act"`
	MR    int      `json:"mr"` // avx.MR the weights were packed for
	Pool  bool     `json:"pool,omitempty"`
}

func (t winogradTactic) Lower(l *engine.Layer) (*engine.Lowered, error) {
	n := l.Node
	w := l.Const[1]
	if w.DType != ir.Float32 || inDType(l, 0) != ir.Float32 {
		return nil, fmt.Errorf("%s: fp32 conv over %s×%s", n, inDType(l, 0), w.DType)
	}
	if group, err := n.AttrInt("group", 1); err != nil || group != 1 {
		return nil, fmt.Errorf("%s: winograd needs group 1", n)
	}
	win, err := readWindow(n, w.Dims[2:], true)
	if err != nil {
		return nil, err
	}
	if win.Kernel != [2]int{3, 3} || win.Strides != [2]int{1, 1} || win.Dils != [2]int{1, 1} {
		return nil, fmt.Errorf("%s: winograd needs a 3×3 stride-1 dilation-1 kernel", n)
	}
	if ks, _ := n.AttrInts("kernel_shape", nil); len(ks) == 2 && (ks[0] != 3 || ks[1] != 3) {
		return nil, fmt.Errorf("%s: kernel_shape %v does not match W %v", n, ks, w.Dims)
	}
	p := winogradParams{Kind: t.kind.M(), Win: win, M: int(w.Dims[0]), C: int(w.Dims[1]), MR: avx.MR}
	if n.Domain == "kiln" {
		a, err := kiln.ActivationOf(n)
		if err != nil {
			return nil, err
		}
		if simdEpi(a).Act != nil {
			return nil, fmt.Errorf("%s: winograd fuses only Relu and Clip activations", n)
		}
		p.Act = actParam(a)
	}
	if p.Pool, err = readPool(n, "f32"); err != nil {
		return nil, err
	}
	packed := winograd.PackWeights(t.kind, w.F32(), p.M, p.C)
	weights := []*ir.Tensor{ir.FromFloat32s([]int64{int64(len(packed))}, packed)}
	weights, inputs, bias, resid, err := epilogueInputs(l, weights, p.M)
	if err != nil {
		return nil, err
	}
	p.Bias, p.Resid = bias, resid
	return lowered(winogradID, &p, weights, inputs)
}

type winogradKernel struct {
	p     winogradParams
	kind  winograd.Kind
	w     []float32
	bias  []float32
	epi   avx.Epi
	runs  runPool[winogradRun]
	plan  atomic.Pointer[winograd.Plan] // tiling of the last geometry, shared by runs and contexts
	split atomic.Pointer[winogradSplitCache]
}

// winogradSplitCache is winogradSplit's choice for a plan and thread count.
type winogradSplitCache struct {
	plan          *winograd.Plan
	th            int
	chunk, nsplit int
}

func init() { register(winogradID, newWinogradKernel) }

func newWinogradKernel(p *winogradParams, w []*ir.Tensor) (engine.Kernel, error) {
	k := &winogradKernel{p: *p, kind: winograd.Kind(p.Kind), epi: simdEpi(p.Act.get())}
	if !k.kind.Valid() || p.M <= 0 || p.C <= 0 {
		return nil, fmt.Errorf("%s: bad parameters (kind %d, %d×%d channels)", winogradID, p.Kind, p.M, p.C)
	}
	if p.MR != avx.MR {
		return nil, fmt.Errorf("%s: weights packed for %d-row strips, this build uses %d", winogradID, p.MR, avx.MR)
	}
	if k.epi.Act != nil {
		return nil, fmt.Errorf("%s: activation %q is not a clamp", winogradID, p.Act.get().Kind)
	}
	need := 1
	if p.Bias {
		need = 2
	}
	if len(w) != need || w[0].DType != ir.Float32 {
		return nil, fmt.Errorf("%s: %d weights, want %d float32", winogradID, len(w), need)
	}
	k.w = w[0].F32()
	if want := winograd.WeightsSize(k.kind, p.M, p.C); len(k.w) != want {
		return nil, fmt.Errorf("%s: %d packed weights, want %d", winogradID, len(k.w), want)
	}
	if p.Bias {
		if w[1].DType != ir.Float32 || len(w[1].F32()) != p.M {
			return nil, fmt.Errorf("%s: bias is %s%v, want float32[%d]", winogradID, w[1].DType, w[1].Dims, p.M)
		}
		k.bias = w[1].F32()
	}
	return k, nil
}

// PortabilityWarning: a plan built where the AVX-512 transforms ran,
// loaded on a CPU without them, runs the Go twins (same results, slower).
func (k *winogradKernel) PortabilityWarning() string {
	if winograd.Available() {
		return ""
	}
	return winogradID + ": built for AVX-512, this CPU lacks it: the Winograd transforms run their portable twins (same results, slower)"
}

func (k *winogradKernel) geometry(xd []int64) (winograd.Geometry, error) {
	g, err := k.p.Win.geometry(xd, k.p.M, 1)
	if err != nil {
		return winograd.Geometry{}, err
	}
	if g.C != k.p.C {
		return winograd.Geometry{}, fmt.Errorf("input has %d channels, the weights want %d", g.C, k.p.C)
	}
	return winograd.Geometry{N: int(xd[0]), C: g.C, H: g.H, W: g.W, M: k.p.M, OH: g.OH, OW: g.OW, PT: g.PT, PL: g.PL, Pool: k.p.Pool}, nil
}

func (k *winogradKernel) Shapes(in []*ir.Tensor) ([][]int64, error) {
	g, err := k.p.Win.geometry(in[0].Dims, k.p.M, 1)
	if err != nil {
		return nil, err
	}
	if g.C != k.p.C {
		return nil, fmt.Errorf("input has %d channels, the weights want %d", g.C, k.p.C)
	}
	out, err := convOutputDims(in, k.p.M, g, k.p.Resid, k.p.Pool)
	if err != nil {
		return nil, err
	}
	return [][]int64{out}, nil
}

// winogradRun is one Run's shared state. Items are (chunk of tiles, block
// of output channels); an item transforms its chunk's inputs (all
// channels: items of the same chunk each do it, which only happens when
// there are fewer chunks than threads), then per block of rb channels runs
// the T² GEMMs and the output transform.
type winogradRun struct {
	k              *winogradKernel
	plan           *winograd.Plan
	x, y           []float32
	epi            winograd.Epi
	sl             slots
	chunk, nch     int // tiles per chunk (a multiple of 32, or of 16 when there are few), chunks
	split, nsplit  int // output channels per item (a multiple of MR), items per chunk
	rb             int // output channels per GEMM block inside an item
	vFloats, ldmax int
}

// winogradL2 is the budget, in floats, of a chunk's transformed inputs
// (T²·C·chunk) and of a block's GEMM outputs (T²·rb·chunk): both stay in
// the core's L2 between the transform and the GEMM.
const winogradL2 = 64 << 10

// winogradSkew (floats, one cache line) pads the distance between the
// T² transformed matrices and between the T² GEMM outputs: one transform
// step touches the same place of each, and at a multiple of 4 KB apart
// (C·32 floats for C = 32, 64...) those T² lines all fall into one L1 set
// and evict each other (simplecnn@256: the input transform went from 26%
// of the model to %% with the skew).
const winogradSkew = 16

func (k *winogradKernel) Run(x *engine.Exec, in, out []*ir.Tensor) error {
	g, err := k.geometry(in[0].Dims)
	if err != nil {
		return err
	}
	if g.N == 0 || g.OH <= 0 || g.OW <= 0 || (g.Pool && (g.OH < 2 || g.OW < 2)) {
		return nil
	}
	plan := k.plan.Load()
	if !plan.Fits(k.kind, g) {
		if plan, err = winograd.NewPlan(k.kind, g); err != nil {
			return err
		}
		k.plan.Store(plan)
	}
	t2 := k.kind.T() * k.kind.T()
	r := k.runs.get()
	defer k.runs.put(r)
	*r = winogradRun{k: k, plan: plan, x: in[0].F32(), y: out[0].F32()}
	r.epi = winograd.Epi{Bias: k.bias, Lo: k.epi.Lo, Hi: k.epi.Hi}
	if k.bias != nil {
		r.epi.Flags |= winograd.FlagBias
	}
	if k.p.Resid {
		r.epi.Resid, r.epi.Flags = in[1].F32(), r.epi.Flags|winograd.FlagResid
	}
	if k.epi.Clamp {
		r.epi.Flags |= winograd.FlagClamp
	}
	th := simdThreads(x.Threads, g.N*g.M*g.OH*g.OW*g.C*9)
	maxChunk := max(avx.NR, winogradL2/(t2*g.C)/avx.NR*avx.NR)
	if s := k.split.Load(); s != nil && s.plan == plan && s.th == th {
		r.chunk, r.nsplit = s.chunk, s.nsplit
	} else {
		r.chunk, r.nsplit = winogradSplit(plan.Tiles, g.C, g.M, th, maxChunk)
		k.split.Store(&winogradSplitCache{plan, th, r.chunk, r.nsplit})
	}
	r.nch = (plan.Tiles + r.chunk - 1) / r.chunk
	mUp := (g.M + avx.MR - 1) / avx.MR * avx.MR
	r.nsplit = min(r.nsplit, mUp/avx.MR)
	r.split = (mUp/avx.MR + r.nsplit - 1) / r.nsplit * avx.MR
	r.nsplit = (g.M + r.split - 1) / r.split
	ldm := (min(r.chunk, plan.Tiles) + winograd.Lanes - 1) / winograd.Lanes * winograd.Lanes
	r.rb = min(r.split, max(avx.MR, winogradL2/(t2*ldm)/avx.MR*avx.MR))
	r.vFloats = t2 * (avx.BSize(g.C, r.chunk) + winogradSkew)
	r.ldmax = ldm
	items := r.nch * r.nsplit
	r.sl = newSlots(x, min(th, items), 4*(r.vFloats+t2*(r.rb*ldm+winogradSkew)))
	parallel.Run(th, items, r)
	return nil
}

func (r *winogradRun) Do(w, item int) {
	k, plan := r.k, r.plan
	t2 := k.kind.T() * k.kind.T()
	C := plan.C
	split, ch := item%r.nsplit, item/r.nsplit
	p0 := ch * r.chunk
	np := min(r.chunk, plan.Tiles-p0)
	groups := (np + winograd.Lanes - 1) / winograd.Lanes
	ldm := groups * winograd.Lanes
	slot := slotAs[float32](r.sl, w, r.vFloats+t2*(r.rb*r.ldmax+winogradSkew))
	vstride := avx.BSize(C, np) + winogradSkew
	v, mb := slot[:t2*vstride], slot[r.vFloats:]
	g0 := p0 / winograd.Lanes
	for q := 0; q < groups; q++ {
		off := q/2*C*avx.NR + q%2*winograd.Lanes // strip q/2, half q%2
		winograd.Input(plan, v[off:], vstride, r.x, g0+q)
	}
	sz := avx.ASize(plan.M, C)
	var none avx.Epi
	r0 := split * r.split
	r1 := min(plan.M, r0+r.split)
	for i0 := r0; i0 < r1; i0 += r.rb {
		rows := min(r.rb, r1-i0)
		mstride := rows*ldm + winogradSkew
		for q := 0; q < t2; q++ {
			avx.Gemm(C, k.w[q*sz+i0*C:(q+1)*sz], rows, v[q*vstride:q*vstride+avx.BSize(C, np)], 0, np, mb[q*mstride:(q+1)*mstride], ldm, &none, 0, 0)
		}
		for q := 0; q < groups; q++ {
			winograd.Output(plan, r.y, i0, rows, mb[q*winograd.Lanes:t2*mstride], mstride, ldm, g0+q, &r.epi)
		}
	}
}
