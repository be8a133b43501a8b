package cpu

import (
	"fmt"
	"sync"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/kernels/parallel"
	"github.com/kilnml/kiln/ops/kiln"
	"github.com/kilnml/kiln/ops/kilnq"
)

// FP8 kiln.QConv / QGemm / QMatMul on the FP32 AVX-512 kernels: the E4M3
// weights are decoded once at build time (exact in float32) and packed by
// the FP32 tactic (cpu.conv.avx512, cpu.gemm.avx512, lowered on a copy of
// the layer with float32 weights and no epilogue); at run time the
// activation codes are decoded through the format's 256-entry table, the
// FP32 kernel computes the float32 sums, and kilnq's epilogue (scale,
// bias, residual, activation, then requantization to the output's fp8
// format, round half even, saturating) runs over them.
//
// Exactness: products of fp8 values are exact in float32 (≤ 8 significant
// bits), but the FP32 kernel sums them in float32 (FMA, K blocks of
// avx.KC) where kilnq sums in float64 (exact for E4M3×E4M3: every product
// is a multiple of 2⁻¹⁸ below 2¹⁸). float32(acc) can therefore differ from
// kilnq's by a few float32 ulps; after the scale and the 3-bit (E4M3) or
// 2-bit (E5M2) mantissa rounding this changes a code only where y/y_scale
// sits within those ulps of a rounding midpoint: the output is the
// reference code or its neighbour (f8MaxCodeSteps), and fp32 outputs agree
// within f8OutRelErr (see simd_fp8_test.go for the measured rates) — the
// same contract as the portable cpu.conv/cpu.gemm fp8 kernels.
var (
	simdF8ConvIDs = isaIDs{fam: famF32, ids: [3]string{"cpu.conv.avx512.f8", "cpu.conv.avx2.f8", "cpu.conv.generic.f8"}}
	simdF8GemmIDs = isaIDs{fam: famF32, ids: [3]string{"cpu.gemm.avx512.f8", "cpu.gemm.avx2.f8", "cpu.gemm.generic.f8"}}
)

// simdF8Params wraps the inner FP32 kernel's parameters with the fp8
// layer's quantization.
type simdF8Params struct {
	Inner  []byte      `json:"inner"` // the FP32 kernel's parameters
	XType  ir.DType    `json:"x_type"`
	Quant  *quantParam `json:"quant"`
	Conv   bool        `json:"conv,omitempty"`
	Bias   bool        `json:"bias,omitempty"`
	Resid  bool        `json:"resid,omitempty"`
	ZType  ir.DType    `json:"ztype,omitempty"` // the residual's type: float32, or codes (z_scale > 0)
	Chans  int         `json:"chans"`
	NInner int         `json:"n_inner"` // weights of the inner kernel
}

type simdF8Tactic struct {
	conv    bool
	variant string // conv: simdIm2col or simdDirect
}

func (t simdF8Tactic) Name() string {
	if t.conv {
		return "conv." + simdF8ConvIDs.tag("avx512") + "." + t.variant + ".f8"
	}
	return "gemm." + simdF8GemmIDs.tag("avx512") + ".f8"
}

// floatLayer is l as the float layer the FP32 tactic lowers: decoded
// weights, float32 activations, the plain ONNX op (no bias, residual or
// activation: kilnq's epilogue runs after).
func floatLayer(l *engine.Layer, op string) *engine.Layer {
	n := *l.Node
	n.Domain, n.OpType = "", op
	n.Inputs = n.Inputs[:2]
	var attrs []*ir.Attribute
	for _, a := range l.Node.Attrs {
		switch a.Name {
		case "activation", "act_alpha", "act_beta", "kiln_members", "kiln_member_ops", "x_scale", "w_scales", "y_scale", "x_zero", "y_zero":
		default:
			attrs = append(attrs, a)
		}
	}
	n.Attrs = attrs
	w := l.Const[1]
	dec := ir.FromFloat32s(w.Dims, decodeFP8(w))
	in0 := *l.In[0]
	in0.DType = ir.Float32
	fl := *l
	fl.Node = &n
	fl.In = []*ir.Type{&in0, l.In[1]}
	fl.Const = []*ir.Tensor{nil, dec}
	fl.Precision = engine.FP32
	return &fl
}

func (t simdF8Tactic) Lower(l *engine.Layer) (*engine.Lowered, error) {
	n := l.Node
	if !isConst(l, 1) || !isFP8(l.Const[1].DType) || !isFP8(inDType(l, 0)) || l.In[0] == nil {
		return nil, fmt.Errorf("%s: fp8 SIMD layer needs fp8 activations and constant fp8 weights", n)
	}
	if n.Attr(kiln.PoolAttr) != nil { // a fused 2×2 pool: not this kernel's (simd.go keeps these off)
		return nil, fmt.Errorf("%s: fused pool on an fp8 layer", n)
	}
	ql, err := kilnq.ParseLayer(n, inDType(l, 0))
	if err != nil {
		return nil, err
	}
	var inner *engine.Lowered
	var chans int
	switch {
	case t.conv && n.OpType == "QConv":
		inner, err = simdConvTactic{variant: t.variant}.Lower(floatLayer(l, "Conv"))
		chans = int(l.Const[1].Dims[0])
	case !t.conv && (n.OpType == "QGemm" || n.OpType == "QMatMul"):
		inner, err = simdGemmTactic{}.Lower(floatLayer(l, n.OpType[1:]))
		if err == nil {
			var gp simdGemmParams
			if err = jsonUnmarshal(inner.Params, &gp); err == nil {
				chans = gp.N
			}
		}
	default:
		return nil, fmt.Errorf("%s: not a %s layer", n, t.Name())
	}
	if err != nil {
		return nil, err
	}
	if len(ql.WScales) != 1 && len(ql.WScales) != chans {
		return nil, fmt.Errorf("%s: w_scales has %d entries for %d output channels", n, len(ql.WScales), chans)
	}
	p := simdF8Params{Inner: inner.Params, XType: inDType(l, 0), Quant: &quantParam{*ql}, Conv: t.conv, Chans: chans,
		NInner: len(inner.Weights)}
	weights, inputs, bias, zType, err := qEpilogueInputs(l, ql, inner.Weights, chans, ir.Int8, ir.Uint8, ir.Float8E4M3FN, ir.Float8E5M2)
	if err != nil {
		return nil, err
	}
	p.Bias, p.Resid, p.ZType = bias, zType != ir.Undefined, zType
	id := simdF8GemmIDs.now()
	if t.conv {
		id = simdF8ConvIDs.now()
	}
	return lowered(id, &p, weights, inputs)
}

type simdF8Kernel struct {
	builtFor // the variant the plan names (simd_isa.go)
	p        simdF8Params
	inner    engine.Kernel
	lut      *[256]float32
	ztab     *[256]float32 // residual codes' values (z_scale > 0)
	bias     []float32
	epi      f8Epilogue
	convRuns runPool[f8ConvRun]
	mu       sync.Mutex
	free     []*f8Bufs // Gemm/MatMul buffers not in use
}

// f8Bufs holds one Gemm/MatMul Run's decoded activations and float32 sums
// (kept by the kernel, one per concurrent run, so steady-state runs do not
// allocate; the inner FP32 run uses the context's scratch).
type f8Bufs struct{ x, y, z []float32 }

func init() {
	registerISA(simdF8ConvIDs, func(p *simdF8Params, w []*ir.Tensor) (engine.Kernel, error) { return newSimdF8Kernel(p, w) })
	registerISA(simdF8GemmIDs, func(p *simdF8Params, w []*ir.Tensor) (engine.Kernel, error) { return newSimdF8Kernel(p, w) })
}

func newSimdF8Kernel(p *simdF8Params, w []*ir.Tensor) (engine.Kernel, error) {
	id := simdF8GemmIDs.String()
	if p.Conv {
		id = simdF8ConvIDs.String()
	}
	if p.Quant == nil || p.NInner < 1 || p.Chans <= 0 {
		return nil, fmt.Errorf("%s: bad parameters", id)
	}
	need := p.NInner
	if p.Bias {
		need++
	}
	if len(w) != need {
		return nil, fmt.Errorf("%s: %d weights, want %d", id, len(w), need)
	}
	k := &simdF8Kernel{p: *p, lut: fp8Table(p.XType)}
	if k.lut == nil {
		return nil, fmt.Errorf("%s: activations of type %s are no fp8 codes", id, p.XType)
	}
	l := &k.p.Quant.Layer
	if len(l.WScales) != 1 && len(l.WScales) != p.Chans {
		return nil, fmt.Errorf("%s: w_scales has %d entries for %d output channels", id, len(l.WScales), p.Chans)
	}
	if l.YScale > 0 && l.OutType != p.XType {
		return nil, fmt.Errorf("%s: output codes %s differ from the input's %s", id, l.OutType, p.XType)
	}
	var err error
	if p.Conv {
		var cp simdConvParams
		if err = jsonUnmarshal(p.Inner, &cp); err == nil {
			if cp.Bias || cp.Resid || cp.Act.Kind != "" || cp.M != p.Chans {
				return nil, fmt.Errorf("%s: inner conv parameters do not match", id)
			}
			k.inner, err = newSimdConvKernel(&cp, w[:p.NInner])
		}
	} else {
		var gp simdGemmParams
		if err = jsonUnmarshal(p.Inner, &gp); err == nil {
			if gp.Bias || gp.Resid || gp.Act.Kind != "" || gp.N != p.Chans {
				return nil, fmt.Errorf("%s: inner gemm parameters do not match", id)
			}
			k.inner, err = newSimdGemmKernel(&gp, w[:p.NInner])
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", id, err)
	}
	if p.Bias {
		b := w[p.NInner]
		if b.DType != ir.Float32 || len(b.F32()) != p.Chans {
			return nil, fmt.Errorf("%s: bias is %s%v, want float32[%d]", id, b.DType, b.Dims, p.Chans)
		}
		k.bias = b.F32()
	}
	if !floatResidualOK(l.ZScale, p.ZType) {
		return nil, fmt.Errorf("%s: residual codes (%s) without z_scale", id, p.ZType)
	}
	if l.ZScale != 0 {
		if k.ztab = residualTable(l, p.ZType); k.ztab == nil || !p.Resid {
			return nil, fmt.Errorf("%s: z_scale %g needs residual codes, the plan says %s", id, l.ZScale, p.ZType)
		}
	}
	k.epi = newF8Epilogue(l, p.Chans)
	return k, nil
}

// floatView is t's shape over float32 data (no copy).
func floatView(dims []int64, data []float32) *ir.Tensor {
	return &ir.Tensor{DType: ir.Float32, Dims: dims, Data: unsafeBytes(data)}
}

func (k *simdF8Kernel) Shapes(in []*ir.Tensor) ([][]int64, error) {
	fin := []*ir.Tensor{{DType: ir.Float32, Dims: in[0].Dims}}
	out, err := k.inner.Shapes(fin)
	if err != nil || !k.p.Resid {
		return out, err
	}
	if err := checkResidual(in, out[0]); err != nil {
		return nil, err
	}
	if err := checkResidualType(in, k.p.ZType); err != nil {
		return nil, err
	}
	return out, nil
}

// residual is the residual input's values: the float32 tensor, or codes
// decoded through ztab into dst (a run's buffer of its length) by th
// threads.
func (k *simdF8Kernel) residual(th int, z *ir.Tensor, dst []float32) []float32 {
	if k.ztab == nil {
		return z.F32()
	}
	parallel.Run(th, (len(z.Data)+f8Chunk-1)/f8Chunk, &f8Decode{dst: dst, src: z.Data, lut: k.ztab})
	return dst
}

func (k *simdF8Kernel) Run(x *engine.Exec, in, out []*ir.Tensor) error {
	if k.p.Conv {
		return k.runConv(x, in, out)
	}
	nx, ny := len(in[0].Data), int(out[0].Len())
	k.mu.Lock()
	var b *f8Bufs
	if n := len(k.free); n > 0 {
		b, k.free = k.free[n-1], k.free[:n-1]
	} else {
		b = &f8Bufs{}
	}
	k.mu.Unlock()
	defer func() {
		k.mu.Lock()
		k.free = append(k.free, b)
		k.mu.Unlock()
	}()
	if cap(b.x) < nx {
		b.x = make([]float32, nx)
	}
	if cap(b.y) < ny {
		b.y = make([]float32, ny)
	}
	if k.ztab != nil && cap(b.z) < ny {
		b.z = make([]float32, ny)
	}
	xs, ys := b.x[:nx], b.y[:ny]
	th := simdThreads(x.Threads, ny*8)
	parallel.Run(th, (nx+f8Chunk-1)/f8Chunk, &f8Decode{dst: xs, src: in[0].Data, lut: k.lut})
	fin := []*ir.Tensor{floatView(in[0].Dims, xs)}
	if err := k.inner.Run(x, fin, []*ir.Tensor{floatView(out[0].Dims, ys)}); err != nil {
		return err
	}
	e := &f8EpiRun{e: &k.epi, acc: ys, bias: k.bias, out: out[0]}
	if k.p.Resid {
		e.resid = k.residual(th, in[1], b.z[:min(ny, cap(b.z))])
	}
	// The channel of element i is (i / inner) % chans: NCHW convs have
	// OH·OW elements per channel, Gemm/MatMul rows one per channel.
	e.inner = 1
	if k.p.Conv {
		d := out[0].Dims
		e.inner = int(d[2] * d[3])
	}
	parallel.Run(th, (ny+f8Chunk-1)/f8Chunk, e)
	return nil
}

// f8Chunk is the elements per work item of the decode and epilogue passes.
const f8Chunk = 1 << 14

type f8Decode struct {
	dst []float32
	src []byte
	lut *[256]float32
}

func (d *f8Decode) Do(_, item int) {
	lo, hi := item*f8Chunk, min(len(d.src), (item+1)*f8Chunk)
	decodeCodes(d.dst[lo:hi], d.src[lo:hi], d.lut)
}

// decodeCodes maps codes to their values through lut.
func decodeCodes(dst []float32, src []byte, lut *[256]float32) {
	dst = dst[:len(src)]
	for i, c := range src {
		dst[i] = lut[c]
	}
}

type f8EpiRun struct {
	e          *f8Epilogue
	acc, resid []float32
	bias       []float32
	out        *ir.Tensor
	inner      int
}

func (r *f8EpiRun) Do(_, item int) {
	lo, hi := item*f8Chunk, min(len(r.acc), (item+1)*f8Chunk)
	r.e.apply(r.acc, r.bias, r.resid, r.out, r.inner, lo, hi)
}

// simdF8Tactics returns the SIMD tactics of fp8 layers (ok: l is one).
func simdF8Tactics(l *engine.Layer) ([]engine.Tactic, bool) {
	n := l.Node
	if n.Domain == "" && n.OpType == "MaxPool" && isFP8(inDType(l, 0)) {
		return []engine.Tactic{simdF8PoolTactic{}}, true
	}
	if n.Domain == "" && n.OpType == "QuantizeLinear" && len(l.Out) > 0 && l.Out[0] != nil && isFP8(l.Out[0].DType) {
		return []engine.Tactic{simdF8QuantizeTactic{}}, true
	}
	if n.Domain != "kiln" || quantPrec(l) != "f8" || !isConst(l, 1) {
		return nil, false
	}
	switch n.OpType {
	case "QConv":
		if len(l.Const[1].Dims) != 4 {
			return nil, true
		}
		ts := []engine.Tactic{simdF8Tactic{conv: true, variant: simdIm2col}}
		if d := l.Const[1].Dims; d[2] == 1 && d[3] == 1 {
			ts = append(ts, simdF8Tactic{conv: true, variant: simdDirect})
		}
		return ts, true
	case "QGemm", "QMatMul":
		return []engine.Tactic{simdF8Tactic{}}, true
	}
	return nil, false
}
