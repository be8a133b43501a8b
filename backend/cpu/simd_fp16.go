package cpu

import (
	"fmt"
	"sync"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/floatx"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/kernels/avx"
	"github.com/kilnml/kiln/kernels/parallel"
	"github.com/kilnml/kiln/ops/kiln"
)

// FP16 layers (float16 storage, float32 math) on the FP32 SIMD kernels:
// Conv (plain and fused), Gemm/MatMul and MaxPool are lowered by the FP32
// tactic on a copy of the layer whose float16 constants (weights, bias)
// are widened once at build time; at run time the float16 inputs
// (activation, residual) are widened with F16C (avx.F16ToF32), the FP32
// kernel computes with its fused epilogue, and the output is rounded once
// to float16 (avx.F32ToF16, half to even). That is the portable FP16
// kernels' arithmetic (float32 math, one rounding at the store): within two
// float16 ulps of the reference (closeF16); MaxPool is exact (widening and
// narrowing a float16 value are exact).
const simdF16ID = "cpu.f16" // any FP32 kernel of this backend, widened/narrowed around it

type simdF16Params struct {
	Inner   string `json:"inner"`  // the FP32 kernel's id
	Params  []byte `json:"params"` // and its parameters
	Half    []bool `json:"half"`   // per run-time input: float16, widened
	OutHalf bool   `json:"out_half"`
}

type simdF16Tactic struct{ inner engine.Tactic }

func (t simdF16Tactic) Name() string { return t.inner.Name() + ".f16" }

// simdF16Tactics wraps the FP32 SIMD tactics of an FP16 layer's float32
// copy (ok: l is an FP16 layer of an op they cover).
func simdF16Tactics(l *engine.Layer) ([]engine.Tactic, bool) {
	n := l.Node
	if n.Domain == "" && n.OpType == "Cast" && len(l.Out) == 1 && l.Out[0] != nil &&
		(inDType(l, 0) == ir.Float32 && l.Out[0].DType == ir.Float16 || inDType(l, 0) == ir.Float16 && l.Out[0].DType == ir.Float32) {
		return []engine.Tactic{simdCastF16Tactic{}}, true
	}
	if l.Precision != engine.FP16 {
		return nil, false
	}
	switch {
	case n.Domain == "" && (n.OpType == "Conv" || n.OpType == "Gemm" || n.OpType == "MatMul" || n.OpType == "MaxPool"),
		n.Domain == "kiln" && (n.OpType == "Conv" || n.OpType == "Gemm" || n.OpType == "MatMul"):
	default:
		return nil, false
	}
	half := false
	for i := range l.In {
		half = half || inDType(l, i) == ir.Float16
	}
	if !half || len(l.Out) != 1 || l.Out[0] == nil {
		return nil, true
	}
	fl := f32Layer(l)
	var ts []engine.Tactic
	for _, t := range (simdBackend{}).Tactics(fl) {
		ts = append(ts, simdF16Tactic{inner: t})
	}
	return ts, true
}

// widenType is t with float16 replaced by float32.
func widenType(t *ir.Type) *ir.Type {
	if t == nil || t.DType != ir.Float16 {
		return t
	}
	c := t.Clone()
	c.DType = ir.Float32
	return c
}

// f32Layer is l with float16 types and constants widened to float32.
func f32Layer(l *engine.Layer) *engine.Layer {
	fl := *l
	fl.In, fl.Out, fl.Const = make([]*ir.Type, len(l.In)), make([]*ir.Type, len(l.Out)), make([]*ir.Tensor, len(l.Const))
	for i, t := range l.In {
		fl.In[i] = widenType(t)
	}
	for i, t := range l.Out {
		fl.Out[i] = widenType(t)
	}
	for i, c := range l.Const {
		if c != nil && c.DType == ir.Float16 {
			f := ir.NewTensor(ir.Float32, c.Dims)
			for j, h := range c.U16() {
				f.F32()[j] = floatx.F16ToF32(h)
			}
			f.Name = c.Name
			c = f
		}
		fl.Const[i] = c
	}
	fl.Precision = engine.FP32
	return &fl
}

func (t simdF16Tactic) Lower(l *engine.Layer) (*engine.Lowered, error) {
	if l.Node.Attr(kiln.PoolAttr) != nil { // a fused 2×2 pool: the wrapper does not run it
		return nil, fmt.Errorf("%s: fused pool on an fp16 layer", l.Node)
	}
	low, err := t.inner.Lower(f32Layer(l))
	if err != nil {
		return nil, err
	}
	p := simdF16Params{Inner: low.Kernel, Params: low.Params, OutHalf: l.Out[0].DType == ir.Float16}
	use := low.Inputs
	if use == nil {
		for i := range l.Node.Inputs {
			use = append(use, i)
		}
	}
	for _, i := range use {
		if dt := inDType(l, i); dt != ir.Float16 && dt != ir.Float32 {
			return nil, fmt.Errorf("%s: input %d is %s", l.Node, i, dt)
		}
		p.Half = append(p.Half, inDType(l, i) == ir.Float16)
	}
	if dt := l.Out[0].DType; dt != ir.Float16 && dt != ir.Float32 {
		return nil, fmt.Errorf("%s: output is %s", l.Node, dt)
	}
	return lowered(simdF16ID, &p, low.Weights, low.Inputs)
}

type simdF16Kernel struct {
	p     simdF16Params
	inner engine.Kernel
	mu    sync.Mutex
	free  []*[]float32 // run buffers not in use (one per concurrent run)
}

func init() {
	register(simdF16ID, func(p *simdF16Params, w []*ir.Tensor) (engine.Kernel, error) {
		if p.Inner == simdF16ID {
			return nil, fmt.Errorf("%s: nested", simdF16ID)
		}
		dec, err := engine.LookupKernel(p.Inner)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", simdF16ID, err)
		}
		inner, err := dec(p.Params, w)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", simdF16ID, err)
		}
		return &simdF16Kernel{p: *p, inner: inner}, nil
	})
}

func (k *simdF16Kernel) PortabilityWarning() string {
	if pw, ok := k.inner.(interface{ PortabilityWarning() string }); ok {
		return pw.PortabilityWarning()
	}
	return ""
}

// wide returns in with its float16 tensors as float32 views over bufs
// (dims only when bufs is nil).
func (k *simdF16Kernel) wide(in []*ir.Tensor, buf []float32) ([]*ir.Tensor, []float32, error) {
	if len(in) != len(k.p.Half) {
		return nil, nil, fmt.Errorf("%d inputs, want %d", len(in), len(k.p.Half))
	}
	out := make([]*ir.Tensor, len(in))
	for i, t := range in {
		if t == nil || !k.p.Half[i] {
			out[i] = t
			continue
		}
		if t.DType != ir.Float16 {
			return nil, nil, fmt.Errorf("input %d is %s, want float16", i, t.DType)
		}
		w := &ir.Tensor{DType: ir.Float32, Dims: t.Dims, Name: t.Name}
		if buf != nil {
			n := len(t.Data) / 2
			w.Data = unsafeBytes(buf[:n])
			buf = buf[n:]
		}
		out[i] = w
	}
	return out, buf, nil
}

func (k *simdF16Kernel) Shapes(in []*ir.Tensor) ([][]int64, error) {
	fin, _, err := k.wide(in, nil)
	if err != nil {
		return nil, err
	}
	return k.inner.Shapes(fin)
}

func (k *simdF16Kernel) Run(x *engine.Exec, in, out []*ir.Tensor) error {
	need := 0
	for i, t := range in {
		if t != nil && i < len(k.p.Half) && k.p.Half[i] {
			need += len(t.Data) / 2
		}
	}
	nout := int(out[0].Len())
	if k.p.OutHalf {
		need += nout
	}
	k.mu.Lock()
	var b *[]float32
	if n := len(k.free); n > 0 {
		b, k.free = k.free[n-1], k.free[:n-1]
	} else {
		b = new([]float32)
	}
	k.mu.Unlock()
	defer func() {
		k.mu.Lock()
		k.free = append(k.free, b)
		k.mu.Unlock()
	}()
	if cap(*b) < need {
		*b = make([]float32, need)
	}
	fin, rest, err := k.wide(in, (*b)[:need])
	if err != nil {
		return err
	}
	for i, t := range in {
		if t != nil && k.p.Half[i] {
			convertF16(x, fin[i].F32(), t.U16(), true)
		}
	}
	fout := out
	if k.p.OutHalf {
		fout = []*ir.Tensor{{DType: ir.Float32, Dims: out[0].Dims, Data: unsafeBytes(rest[:nout])}}
	}
	if err := k.inner.Run(x, fin, fout); err != nil {
		return err
	}
	if k.p.OutHalf {
		convertF16(x, fout[0].F32(), out[0].U16(), false)
	}
	return nil
}

// f16Convert widens (or narrows) a tensor in chunks over the workers.
type f16Convert struct {
	f     []float32
	h     []uint16
	widen bool
}

const f16Chunk = 1 << 15

func (c *f16Convert) Do(_, item int) {
	lo, hi := item*f16Chunk, min(len(c.h), (item+1)*f16Chunk)
	if c.widen {
		avx.F16ToF32(c.f[lo:hi], c.h[lo:hi])
	} else {
		avx.F32ToF16(c.h[lo:hi], c.f[lo:hi])
	}
}

func convertF16(x *engine.Exec, f []float32, h []uint16, widen bool) {
	c := f16Convert{f: f, h: h, widen: widen}
	items := (len(h) + f16Chunk - 1) / f16Chunk
	if items <= 1 {
		c.Do(0, 0)
		return
	}
	parallel.Run(simdThreads(x.Threads, len(h)), items, &c)
}

// Cast float32 ↔ float16 (an FP16 engine's input and output reformats)
// with F16C, bit for bit cpu.reformat's (floatx.F32ToF16; widening quiets
// NaNs as the reference's float64 widening does).
const simdCastF16ID = "cpu.cast.f16"

type simdCastF16Tactic struct{}

func (simdCastF16Tactic) Name() string { return "cast.f16" }

func (simdCastF16Tactic) Lower(l *engine.Layer) (*engine.Lowered, error) {
	low, err := reformatTactic{}.Lower(l)
	if err != nil {
		return nil, err
	}
	var p reformatParams
	if err := jsonUnmarshal(low.Params, &p); err != nil {
		return nil, err
	}
	if p.Op != "f32tof16" && p.Op != "f16tof32" {
		return nil, fmt.Errorf("%s: not a float32 ↔ float16 cast", l.Node)
	}
	return lowered(simdCastF16ID, &p, nil, low.Inputs)
}

type simdCastF16Kernel struct{ reformatKernel }

func init() {
	register(simdCastF16ID, func(p *reformatParams, _ []*ir.Tensor) (engine.Kernel, error) {
		if p.Op != "f32tof16" && p.Op != "f16tof32" {
			return nil, fmt.Errorf("%s: op %q", simdCastF16ID, p.Op)
		}
		return &simdCastF16Kernel{reformatKernel{p: *p}}, nil
	})
}

func (k *simdCastF16Kernel) Run(x *engine.Exec, in, out []*ir.Tensor) error {
	if k.p.Op == "f32tof16" {
		convertF16(x, in[0].F32(), out[0].U16(), false)
	} else {
		convertF16(x, out[0].F32(), in[0].U16(), true)
	}
	return nil
}

// halfLayer says whether l reads or writes float16 and otherwise only
// float32 (what simdF16Tactic converts).
func halfLayer(l *engine.Layer) bool {
	half := false
	for i, t := range l.In {
		if t == nil {
			continue
		}
		switch inDType(l, i) {
		case ir.Float16:
			half = true
		case ir.Float32:
		default:
			return false
		}
	}
	if len(l.Out) != 1 || l.Out[0] == nil || (l.Out[0].DType != ir.Float16 && l.Out[0].DType != ir.Float32) {
		return false
	}
	return half || l.Out[0].DType == ir.Float16
}
