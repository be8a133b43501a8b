package cpu

import (
	"fmt"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/kernels/avx"
	"github.com/kilnml/kiln/kernels/pack"
	"github.com/kilnml/kiln/kernels/parallel"
	"github.com/kilnml/kiln/ops/kilnq"
)

// INT8 depthwise convolution (kiln.QConv, group = channels, multiplier 1)
// on the AVX-512 depthwise row kernel: codes minus the zero point and the
// int8 weights are exact in float32, and with at most 25 taps every sum
// stays below 2²⁴, so the float accumulator equals kilnq's int32 one; the
// requantizing epilogue runs in the kernel's registers. Named after
// avx.QVariant: on the AVX2 path (offered for 3×3 kernels only) the AVX2
// row kernels of avx.DepthwiseQ3x3 run it (cpu.conv.dw.avx2.i8).
var simdQDWIDs = isaIDs{fam: famI8, ids: [3]string{"cpu.conv.dw.avx512.i8", "cpu.conv.dw.avx2.i8", "cpu.conv.dw.generic.i8"}}

type simdQDWParams struct {
	Win   window      `json:"win"`
	M     int         `json:"m"`
	Bias  bool        `json:"bias,omitempty"`
	Resid bool        `json:"resid,omitempty"`
	Quant *quantParam `json:"quant"`
	XType ir.DType    `json:"xtype"`
}

type simdQDWTactic struct{}

func (simdQDWTactic) Name() string { return "conv." + simdQDWIDs.tag("avx512") + ".depthwise.i8" }

func (simdQDWTactic) Lower(l *engine.Layer) (*engine.Lowered, error) {
	n := l.Node
	w := l.Const[1]
	xt := inDType(l, 0)
	group, err := n.AttrInt("group", 1)
	if err != nil {
		return nil, err
	}
	if w.DType != ir.Int8 || (xt != ir.Int8 && xt != ir.Uint8) || w.Dims[1] != 1 || group != w.Dims[0] || group < 2 {
		return nil, fmt.Errorf("%s: not an int8 depthwise conv with multiplier 1", n)
	}
	win, err := readWindow(n, w.Dims[2:], true)
	if err != nil {
		return nil, err
	}
	if win.Strides[1] > 2 || win.Kernel[0]*win.Kernel[1] > avx.DWMaxTaps {
		return nil, fmt.Errorf("%s: stride or kernel size left to the portable kernel", n)
	}
	ql, err := kilnq.LayerOf(n, xt)
	if err != nil {
		return nil, err
	}
	p := simdQDWParams{Win: win, M: int(w.Dims[0]), Quant: &quantParam{*ql}, XType: xt}
	if err := simdQLayerOK(ql, p.M); err != nil {
		return nil, fmt.Errorf("%s: %v", n, err)
	}
	weights := []*ir.Tensor{w.Clone()}
	weights, inputs, bias, resid, err := epilogueInputs(l, weights, p.M)
	if err != nil {
		return nil, err
	}
	p.Bias, p.Resid = bias, resid
	return lowered(simdQDWIDs.now(), &p, weights, inputs)
}

type simdQDWKernel struct {
	builtFor // the variant the plan names (simd_isa.go)
	p        simdQDWParams
	w        []float32
	bias     []float32
	scale    []float32
	lut      [256]float32
	epi      avx.Epi
	q        avx.DWQuant
	tabs     []avx.QDWTable // 3×3 kernels: per channel, for the in-place plane kernel
	runs     runPool[simdQDWRun]
}

func init() { registerISA(simdQDWIDs, newSimdQDWKernel) }

func newSimdQDWKernel(p *simdQDWParams, w []*ir.Tensor) (engine.Kernel, error) {
	need := 1
	if p.Bias {
		need = 2
	}
	taps := p.Win.Kernel[0] * p.Win.Kernel[1]
	if p.M <= 0 || p.Quant == nil || len(w) != need || w[0].DType != ir.Int8 || len(w[0].I8()) != p.M*taps ||
		p.Win.Strides[1] > 2 || taps > avx.DWMaxTaps {
		return nil, fmt.Errorf("%s: bad parameters or weights", simdQDWIDs)
	}
	l := &p.Quant.Layer
	if err := simdQLayerOK(l, p.M); err != nil {
		return nil, fmt.Errorf("%s: %v", simdQDWIDs, err)
	}
	k := &simdQDWKernel{p: *p, w: make([]float32, p.M*taps), scale: make([]float32, p.M)}
	for i, v := range w[0].I8() {
		k.w[i] = float32(v)
	}
	for c := range p.M {
		k.scale[c] = l.XScale * l.WScales[min(c, len(l.WScales)-1)]
	}
	for code := range 256 {
		v := int32(code)
		if p.XType == ir.Int8 {
			v = int32(int8(code))
		}
		k.lut[code] = float32(v - l.XZero)
	}
	if p.Bias {
		if w[1].DType != ir.Float32 || len(w[1].F32()) != p.M {
			return nil, fmt.Errorf("%s: bias is %s%v, want float32[%d]", simdQDWIDs, w[1].DType, w[1].Dims, p.M)
		}
		k.bias = w[1].F32()
	}
	ql := simdQLayer(l, p.M, make([]int32, p.M), 0, k.bias)
	k.epi = avx.Epi{Clamp: ql.Clamp, Lo: ql.Lo, Hi: ql.Hi, Act: ql.Act}
	if k.bias != nil {
		k.epi.BiasOn = avx.FlagBiasRow
	}
	k.q = avx.DWQuant{Quant: ql.Quant, Unsigned: ql.Unsigned, YScale: ql.YScale, YZero: ql.YZero, Quantize: ql.Quantize,
		XCodes: true, XUnsigned: p.XType == ir.Uint8, XZero: l.XZero} // the lut's code − x_zero, vectorized
	if taps == 9 && k.q.Quant && k.epi.Act == nil {
		k.tabs = make([]avx.QDWTable, p.M)
		for c := range p.M {
			var b float32
			if k.bias != nil {
				b = k.bias[c]
			}
			k.tabs[c] = avx.NewQDWTable(w[0].I8()[c*9:(c+1)*9], l.XZero, p.XType == ir.Uint8, k.scale[c], b)
		}
	}
	return k, nil
}

func (k *simdQDWKernel) geometry(xd []int64) (pack.Conv2D, error) {
	g, err := k.p.Win.geometry(xd, k.p.M, k.p.M)
	if err != nil {
		return g, err
	}
	if g.C != k.p.M {
		return g, fmt.Errorf("input has %d channels, the weights want %d", g.C, k.p.M)
	}
	return g, nil
}

func (k *simdQDWKernel) Shapes(in []*ir.Tensor) ([][]int64, error) {
	if in[0].DType != k.p.XType {
		return nil, fmt.Errorf("input is %s, want %s", in[0].DType, k.p.XType)
	}
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

type simdQDWRun struct {
	k      *simdQDWKernel
	g      pack.Conv2D
	x, yq  []byte
	yf, z  []float32
	sl     slots
	padLen int
	// the in-place 3×3 path: channels per item and items per image
	group, groups int
}

func (k *simdQDWKernel) Run(x *engine.Exec, in, out []*ir.Tensor) error {
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
	*r = simdQDWRun{k: k, g: g, x: in[0].Data}
	if out[0].DType == ir.Float32 {
		r.yf = out[0].F32()
	} else {
		r.yq = out[0].Data
	}
	if k.p.Resid {
		r.z = in[1].F32()
	}
	if r.yq != nil && k.tabs != nil && avx.QDW3x3Supported(&g) {
		// codes read in place, several channel planes per call (no padded
		// float copy, no scratch)
		th := x.Threads
		if N*k.p.M*g.OH*((g.OW+15)/16) < qdwSplitChunks {
			th = 1
		}
		r.group = min(64, (k.p.M+4*th-1)/(4*th))
		r.groups = (k.p.M + r.group - 1) / r.group
		parallel.Run(th, N*r.groups, r)
		return nil
	}
	_, r.padLen = avx.DWPadded(&g)
	items := N * k.p.M
	th := simdThreads(x.Threads, items*g.OH*g.OW*g.KH*g.KW)
	r.sl = newSlots(x, min(th, items), 4*r.padLen)
	parallel.Run(th, items, r)
	return nil
}

// qdwSplitChunks is the number of row chunks (16 outputs of one output row)
// from which the in-place 3×3 kernel splits a layer over threads. It takes
// about 4 ns per chunk, 50-100 times longer per multiply-add than the GEMM
// micro-kernel simdThreads' threshold is set for: mobilenetv2's 576-channel
// 7×7 stride-2 layer (254K multiply-adds, under that threshold) took ~20 µs
// on one thread at 2 threads. 1024 chunks are ~4 µs.
const qdwSplitChunks = 1024

// doPlanes runs item's channel group (r.group channels of one image) on
// the in-place 3×3 kernel in one call.
func (r *simdQDWRun) doPlanes(item int) {
	k, g := r.k, &r.g
	n, c0 := item/r.groups, item%r.groups*r.group
	c1 := min(k.p.M, c0+r.group)
	hw, ohw := g.H*g.W, g.OH*g.OW
	p0, p1 := n*k.p.M+c0, n*k.p.M+c1 // planes of the batch
	var z []float32
	if r.z != nil {
		z = r.z[p0*ohw : p1*ohw]
	}
	avx.DepthwiseQ3x3(r.yq[p0*ohw:p1*ohw], r.x[p0*hw:p1*hw], k.tabs[c0:c1], g, &k.epi, z, &k.q)
}

func (r *simdQDWRun) Do(w, item int) {
	if r.group > 0 {
		r.doPlanes(item)
		return
	}
	k, g := r.k, &r.g
	c := item % k.p.M
	hw, ohw, taps := g.H*g.W, g.OH*g.OW, g.KH*g.KW
	var b float32
	if k.bias != nil {
		b = k.bias[c]
	}
	var z []float32
	if r.z != nil {
		z = r.z[item*ohw : (item+1)*ohw]
	}
	q := k.q
	q.Scale = k.scale[c]
	var yq []byte
	var yf []float32
	if r.yq != nil {
		yq = r.yq[item*ohw : (item+1)*ohw]
	} else {
		yf = r.yf[item*ohw : (item+1)*ohw]
	}
	avx.DepthwiseQ(yq, yf, r.x[item*hw:(item+1)*hw], &k.lut, k.w[c*taps:(c+1)*taps], slotAs[float32](r.sl, w, r.padLen), g, b, &k.epi, z, &q)
}
