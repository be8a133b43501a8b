package cpu

import (
	"fmt"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/kernels/avx"
	"github.com/kilnml/kiln/kernels/pack"
	"github.com/kilnml/kiln/kernels/parallel"
	"github.com/kilnml/kiln/ops/kiln"
)

// FP32 depthwise convolution (group = input channels = output channels)
// with kernels/avx's direct row kernel: each plane is copied into a zero
// border, then 16 outputs of a row per zmm, one FMA per tap. 3×3 planes
// (stride 1 or 2, begin pads ≤ 2, a clamp at most) skip the copy:
// avx.Depthwise3x3 reads them in place, several per call, with the same
// sums bit for bit.
var simdDWIDs = isaIDs{fam: famF32, ids: [3]string{"cpu.conv.dw.avx512", "", "cpu.conv.dw.generic"}, goOnAVX2: true} // no AVX2 row kernel

type simdDWParams struct {
	Win   window   `json:"win"`
	M     int      `json:"m"`
	Bias  bool     `json:"bias,omitempty"`
	Resid bool     `json:"resid,omitempty"`
	Act   actParam `json:"act"`
}

type simdDWTactic struct{}

func (simdDWTactic) Name() string { return "conv." + simdDWIDs.tag("avx512") + ".depthwise.f32" }

func (simdDWTactic) Lower(l *engine.Layer) (*engine.Lowered, error) {
	n := l.Node
	w := l.Const[1]
	group, err := n.AttrInt("group", 1)
	if err != nil {
		return nil, err
	}
	if w.DType != ir.Float32 || inDType(l, 0) != ir.Float32 || w.Dims[1] != 1 || group != w.Dims[0] || group < 2 {
		return nil, fmt.Errorf("%s: not an fp32 depthwise conv with multiplier 1", n)
	}
	win, err := readWindow(n, w.Dims[2:], true)
	if err != nil {
		return nil, err
	}
	if win.Strides[1] > 2 {
		return nil, fmt.Errorf("%s: horizontal stride %d: left to the portable kernel", n, win.Strides[1])
	}
	p := simdDWParams{Win: win, M: int(w.Dims[0])}
	if n.Domain == "kiln" {
		a, err := kiln.ActivationOf(n)
		if err != nil {
			return nil, err
		}
		p.Act = actParam(a)
	}
	weights := []*ir.Tensor{w.Clone()}
	weights, inputs, bias, resid, err := epilogueInputs(l, weights, p.M)
	if err != nil {
		return nil, err
	}
	p.Bias, p.Resid = bias, resid
	return lowered(simdDWIDs.now(), &p, weights, inputs)
}

type simdDWKernel struct {
	builtFor // the variant the plan names (simd_isa.go)
	p        simdDWParams
	w        []float32
	bias     []float32
	epi      avx.Epi
	runs     runPool[simdDWRun]
}

func init() { registerISA(simdDWIDs, newSimdDWKernel) }

func newSimdDWKernel(p *simdDWParams, w []*ir.Tensor) (engine.Kernel, error) {
	need := 1
	if p.Bias {
		need = 2
	}
	taps := p.Win.Kernel[0] * p.Win.Kernel[1]
	if p.M <= 0 || len(w) != need || w[0].DType != ir.Float32 || len(w[0].F32()) != p.M*taps || p.Win.Strides[1] > 2 {
		return nil, fmt.Errorf("%s: bad parameters or weights", simdDWIDs)
	}
	k := &simdDWKernel{p: *p, w: w[0].F32(), epi: simdEpi(p.Act.get())}
	if p.Bias {
		if w[1].DType != ir.Float32 || len(w[1].F32()) != p.M {
			return nil, fmt.Errorf("%s: bias is %s%v, want float32[%d]", simdDWIDs, w[1].DType, w[1].Dims, p.M)
		}
		k.bias = w[1].F32()
		k.epi.BiasOn = avx.FlagBiasRow
	}
	return k, nil
}

func (k *simdDWKernel) geometry(xd []int64) (pack.Conv2D, error) {
	g, err := k.p.Win.geometry(xd, k.p.M, k.p.M)
	if err != nil {
		return g, err
	}
	if g.C != k.p.M {
		return g, fmt.Errorf("input has %d channels, the weights want %d", g.C, k.p.M)
	}
	return g, nil
}

func (k *simdDWKernel) Shapes(in []*ir.Tensor) ([][]int64, error) {
	g, err := k.geometry(in[0].Dims)
	if err != nil {
		return nil, err
	}
	out, err := convOutputDims(in, k.p.M, g, k.p.Resid, false)
	if err != nil {
		return nil, err
	}
	return [][]int64{out}, nil
}

type simdDWRun struct {
	k       *simdDWKernel
	g       pack.Conv2D
	x, y, z []float32
	sl      slots
	padLen  int
	per     int // in place: channels per item
}

func (k *simdDWKernel) Run(x *engine.Exec, in, out []*ir.Tensor) error {
	g, err := k.geometry(in[0].Dims)
	if err != nil {
		return err
	}
	N := int(in[0].Dims[0])
	if N == 0 || g.OH*g.OW == 0 {
		return nil
	}
	r := k.runs.get()
	defer k.runs.put(r)
	*r = simdDWRun{k: k, g: g, x: in[0].F32(), y: out[0].F32()}
	if k.p.Resid {
		r.z = in[1].F32()
	}
	work := N * k.p.M * g.OH * g.OW * g.KH * g.KW
	if k.inPlace(&g) {
		// runs of channels of one image, read in place: blocks of
		// dw3x3Planes, several per item when they are many, so that an item
		// is not a fraction of a microsecond (960 7×7 planes were 240 items:
		// at 2 threads their hand-out, one shared atomic per item, took
		// longer than the layer on one thread)
		th := simdThreads(x.Threads, work)
		blocks := (k.p.M + dw3x3Planes - 1) / dw3x3Planes
		r.per = dw3x3Planes * max(1, blocks/max(1, 8*th/N))
		if th == 1 {
			r.per = k.p.M
		}
		items := N * ((k.p.M + r.per - 1) / r.per)
		parallel.Run(th, items, (*simdDW3x3Run)(r))
		return nil
	}
	_, r.padLen = avx.DWPadded(&g)
	th := simdThreads(x.Threads, work)
	r.per = max(1, k.p.M/max(1, 8*th/N)) // channels per item, as above
	items := N * ((k.p.M + r.per - 1) / r.per)
	r.sl = newSlots(x, min(th, items), 4*r.padLen)
	parallel.Run(th, items, r)
	return nil
}

// dw3x3Planes is the unit of channel planes an item runs with one
// avx.Depthwise3x3 call (few enough that a 32-channel layer still splits
// over threads).
const dw3x3Planes = 4

// inPlace says whether the planes go to avx.Depthwise3x3 (no padded copy,
// outputs bit-identical to avx.Depthwise's).
func (k *simdDWKernel) inPlace(g *pack.Conv2D) bool { return avx.DW3x3Supported(g) && k.epi.Act == nil }

// simdDW3x3Run runs per item a run of r.per channels (a multiple of
// dw3x3Planes) of one image.
type simdDW3x3Run simdDWRun

func (r *simdDW3x3Run) Do(_, item int) {
	k, g := r.k, &r.g
	blocks := (k.p.M + r.per - 1) / r.per
	c := item % blocks * r.per
	planes := min(r.per, k.p.M-c)
	first := item/blocks*k.p.M + c // the block's first plane
	hw, ohw := g.H*g.W, g.OH*g.OW
	var b, z []float32
	if k.bias != nil {
		b = k.bias[c : c+planes]
	}
	if r.z != nil {
		z = r.z[first*ohw : (first+planes)*ohw]
	}
	avx.Depthwise3x3(r.y[first*ohw:(first+planes)*ohw], r.x[first*hw:(first+planes)*hw], k.w[c*9:(c+planes)*9], b, g, &k.epi, z, planes)
}

func (r *simdDWRun) Do(w, item int) {
	k, g := r.k, &r.g
	blocks := (k.p.M + r.per - 1) / r.per
	c0 := item % blocks * r.per
	first := item/blocks*k.p.M + c0 // the run's first plane
	hw, ohw, taps := g.H*g.W, g.OH*g.OW, g.KH*g.KW
	for c, pl := c0, first; c < min(c0+r.per, k.p.M); c, pl = c+1, pl+1 {
		var b float32
		if k.bias != nil {
			b = k.bias[c]
		}
		var z []float32
		if r.z != nil {
			z = r.z[pl*ohw : (pl+1)*ohw]
		}
		avx.Depthwise(r.y[pl*ohw:(pl+1)*ohw], r.x[pl*hw:(pl+1)*hw], k.w[c*taps:(c+1)*taps],
			slotAs[float32](r.sl, w, r.padLen), g, b, &k.epi, z)
	}
}
