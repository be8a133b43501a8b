package cpu

import (
	"fmt"
	"math"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/floatx"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/kernels/avx"
	"github.com/kilnml/kiln/ops/kilnq"
)

// Reformats between precisions, bit-exact with ops/qops: per-tensor
// QuantizeLinear (float32 → int8/uint8/float8e4m3fn), DequantizeLinear
// (those → float32) and Cast float32 ↔ float16.
type reformatParams struct {
	Op    string   `json:"op"` // quantize, dequantize, f32tof16, f16tof32
	From  ir.DType `json:"from"`
	To    ir.DType `json:"to"`
	Scale float32  `json:"scale"`
	Zero  int32    `json:"zero"` // integer zero point
	Sat   bool     `json:"sat"`  // float8 saturation
}

type reformatTactic struct{}

func (reformatTactic) Name() string { return "reformat" }

// scalarConst returns a one-element constant input.
func scalarConst(l *engine.Layer, i int) (*ir.Tensor, error) {
	if !isConst(l, i) || l.Const[i].Len() != 1 {
		return nil, fmt.Errorf("%s: input %d must be a one-element constant (per-tensor)", l.Node, i)
	}
	return l.Const[i], nil
}

func (reformatTactic) Lower(l *engine.Layer) (*engine.Lowered, error) {
	n := l.Node
	p := reformatParams{From: inDType(l, 0), Sat: true}
	if len(l.Out) > 0 && l.Out[0] != nil {
		p.To = l.Out[0].DType
	}
	switch n.OpType {
	case "Cast":
		switch {
		case p.From == ir.Float32 && p.To == ir.Float16:
			p.Op = "f32tof16"
		case p.From == ir.Float16 && p.To == ir.Float32:
			p.Op = "f16tof32"
		default:
			return nil, fmt.Errorf("%s: only float32↔float16 casts have fast kernels", n)
		}
		return lowered("cpu.reformat", &p, nil, []int{0})
	case "QuantizeLinear", "DequantizeLinear":
		if n.Attr("precision") != nil || n.Attr("block_size") != nil && n.Attr("block_size").I != 0 {
			return nil, fmt.Errorf("%s: precision/block_size attributes have no fast kernel", n)
		}
	}
	sc, err := scalarConst(l, 1)
	if err != nil {
		return nil, err
	}
	if sc.DType != ir.Float32 {
		return nil, fmt.Errorf("%s: scale is %s, want float32", n, sc.DType)
	}
	p.Scale = sc.F32()[0]
	code := p.To
	if n.OpType == "DequantizeLinear" {
		code = p.From
	}
	if hasInput(n, 2) {
		zp, err := scalarConst(l, 2)
		if err != nil {
			return nil, err
		}
		if zp.DType != code {
			return nil, fmt.Errorf("%s: zero point is %s, codes are %s", n, zp.DType, code)
		}
		z := zp.Float64At(0)
		if isFP8(code) && z != 0 {
			return nil, fmt.Errorf("%s: float8 zero points must be 0", n)
		}
		p.Zero = int32(z)
	}
	switch code {
	case ir.Int8, ir.Uint8, ir.Float8E4M3FN, ir.Float8E5M2:
	default:
		return nil, fmt.Errorf("%s: %s codes have no fast kernel", n, code)
	}
	if n.OpType == "QuantizeLinear" {
		if p.From != ir.Float32 {
			return nil, fmt.Errorf("%s: input is %s, want float32", n, p.From)
		}
		p.Op = "quantize"
		if l.Opset >= 19 {
			s, err := n.AttrInt("saturate", 1)
			if err != nil {
				return nil, err
			}
			p.Sat = s != 0
		}
	} else {
		if p.To != ir.Float32 {
			return nil, fmt.Errorf("%s: output is %s, want float32", n, p.To)
		}
		p.Op = "dequantize"
	}
	return lowered("cpu.reformat", &p, nil, []int{0})
}

type reformatKernel struct {
	p   reformatParams
	dq  *[256]float32 // dequantization table (code → value)
	out ir.DType
}

func init() { register("cpu.reformat", newReformatKernel) }

func newReformatKernel(p *reformatParams, _ []*ir.Tensor) (engine.Kernel, error) {
	k := &reformatKernel{p: *p}
	switch p.Op {
	case "f32tof16", "f16tof32":
	case "quantize":
		if !(p.To == ir.Int8 || p.To == ir.Uint8 || isFP8(p.To)) || p.From != ir.Float32 {
			return nil, fmt.Errorf("cpu.reformat: cannot quantize %s to %s", p.From, p.To)
		}
	case "dequantize":
		// Every code's value, computed exactly as DequantizeLinear does.
		var t [256]float32
		for i := range t {
			var d float32
			switch p.From {
			case ir.Int8:
				d = float32(int32(int8(uint8(i))) - p.Zero)
			case ir.Uint8:
				d = float32(int32(i) - p.Zero)
			case ir.Float8E4M3FN, ir.Float8E5M2:
				f, _ := kilnq.FP8Format(p.From)
				d = floatx.F8ToF32(uint8(i), f)
			default:
				return nil, fmt.Errorf("cpu.reformat: cannot dequantize %s", p.From)
			}
			t[i] = d * p.Scale
		}
		k.dq = &t
	default:
		return nil, fmt.Errorf("cpu.reformat: unknown op %q", p.Op)
	}
	return k, nil
}

func (k *reformatKernel) Shapes(in []*ir.Tensor) ([][]int64, error) {
	if in[0].DType != k.p.From {
		return nil, fmt.Errorf("input is %s, want %s", in[0].DType, k.p.From)
	}
	return [][]int64{in[0].Dims}, nil
}

// reformatRun: items are fixed 16 Ki-element chunks.
type reformatRun struct {
	k       *reformatKernel
	in, out *ir.Tensor
	n       int
}

const reformatChunk = 16 << 10

func (k *reformatKernel) Run(x *engine.Exec, in, out []*ir.Tensor) error {
	r := reformatRun{k: k, in: in[0], out: out[0], n: int(in[0].Len())}
	items := (r.n + reformatChunk - 1) / reformatChunk
	if items <= 1 {
		r.Do(0, 0)
		return nil
	}
	rp := reformatRuns.get()
	*rp = r
	run(x, items, rp)
	reformatRuns.put(rp)
	return nil
}

var reformatRuns runPool[reformatRun]

func (r *reformatRun) Do(_, item int) {
	lo := item * reformatChunk
	hi := min(r.n, lo+reformatChunk)
	if lo >= hi {
		return
	}
	p := &r.k.p
	switch p.Op {
	case "f32tof16":
		src, dst := r.in.F32()[lo:hi], r.out.U16()[lo:hi]
		for i, v := range src {
			dst[i] = floatx.F32ToF16(v)
		}
	case "f16tof32":
		src, dst := r.in.U16()[lo:hi], r.out.F32()[lo:hi]
		for i, v := range src {
			f := floatx.F16ToF32(v)
			if f != f { // the reference widens through float64, which quiets NaNs
				f = math.Float32frombits(math.Float32bits(f) | 1<<22)
			}
			dst[i] = f
		}
	case "dequantize":
		src, dst := r.in.Data[lo:hi], r.out.F32()[lo:hi]
		if p.From == ir.Int8 || p.From == ir.Uint8 {
			// the table's values computed 16 at a time (bit-identical)
			avx.DequantizeCodes(dst, src, p.Zero, p.Scale, p.From == ir.Uint8)
			return
		}
		t := r.k.dq
		for i, c := range src {
			dst[i] = t[c]
		}
	case "quantize":
		src, dst := r.in.F32()[lo:hi], r.out.Data[lo:hi]
		quantize(dst, src, p)
	}
}

// quantize is QuantizeLinear with a float32 scale: q = float32(x/scale),
// then round half to even and add the zero point, saturating (NaN gives
// the zero point); float8 codes round q saturating or not.
func quantize(dst []byte, src []float32, p *reformatParams) {
	if f, ok := kilnq.FP8Format(p.To); ok {
		for i, v := range src {
			dst[i] = floatx.F64ToF8(float64(v/p.Scale), f, p.Sat)
		}
		return
	}
	lo, hi := float64(-128), float64(127)
	if p.To == ir.Uint8 {
		lo, hi = 0, 255
	}
	z := float64(p.Zero)
	if (p.To == ir.Int8 || p.To == ir.Uint8) && z >= lo && z <= hi {
		avx.QuantizeF32(dst, src, p.Scale, p.Zero, p.To == ir.Uint8) // the same loop, vectorized where the CPU can
		return
	}
	for i, v := range src {
		q := math.RoundToEven(float64(v/p.Scale)) + z
		switch {
		case q != q:
			q = z
		case q < lo:
			q = lo
		case q > hi:
			q = hi
		}
		if p.To == ir.Int8 {
			dst[i] = byte(int8(q)) // two's complement
		} else {
			dst[i] = byte(q)
		}
	}
}
