package cpu

import (
	"fmt"
	"math"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/kernels/avx"
	"github.com/kilnml/kiln/kernels/pack"
)

// MaxPool (2-D, one output) over int8, uint8 or float32, and Relu over
// int8 or float32: the quantization-friendly ops that stay on codes
// between quantized layers. Max is taken over the window's positions
// inside the input in row-major order, the first one winning ties and NaN
// kept only when first, as ops/nn's reference does.
type poolParams struct {
	Win        window   `json:"win"`
	DType      ir.DType `json:"dtype"`
	Average    bool     `json:"average,omitempty"`     // AveragePool (float32)
	IncludePad bool     `json:"include_pad,omitempty"` // count_include_pad
}

type maxPoolTactic struct{}

func (maxPoolTactic) Name() string { return "pool" }

func (maxPoolTactic) Lower(l *engine.Layer) (*engine.Lowered, error) {
	n := l.Node
	p := poolParams{DType: inDType(l, 0), Average: n.OpType == "AveragePool"}
	switch {
	case p.DType == ir.Float32, !p.Average && (p.DType == ir.Int8 || p.DType == ir.Uint8):
	default:
		return nil, fmt.Errorf("%s: %s %s has no fast kernel", n, p.DType, n.OpType)
	}
	if p.Average {
		ip, err := n.AttrInt("count_include_pad", 0)
		if err != nil {
			return nil, err
		}
		p.IncludePad = ip != 0
	}
	if len(n.Outputs) > 1 && n.Outputs[1] != "" {
		return nil, fmt.Errorf("%s: MaxPool indices have no fast kernel", n)
	}
	if so, _ := n.AttrInt("storage_order", 0); so != 0 {
		return nil, fmt.Errorf("%s: storage_order has no fast kernel", n)
	}
	ks, err := n.AttrInts("kernel_shape", nil)
	if err != nil {
		return nil, err
	}
	useDil := l.Opset >= 10
	if p.Average {
		useDil = l.Opset >= 19
	}
	if p.Win, err = readWindow(n, ks, useDil); err != nil {
		return nil, err
	}
	return lowered("cpu.maxpool", &p, nil, []int{0})
}

type maxPoolKernel struct {
	p    poolParams
	runs runPool[poolRun]
}

func init() {
	register("cpu.maxpool", func(p *poolParams, _ []*ir.Tensor) (engine.Kernel, error) {
		return &maxPoolKernel{p: *p}, nil
	})
}

func (k *maxPoolKernel) Shapes(in []*ir.Tensor) ([][]int64, error) {
	if in[0].DType != k.p.DType || len(in[0].Dims) != 4 {
		return nil, fmt.Errorf("input %s%v, want %s of rank 4", in[0].DType, in[0].Dims, k.p.DType)
	}
	g, err := k.p.Win.geometry(in[0].Dims, int(in[0].Dims[1]), int(in[0].Dims[1]))
	if err != nil {
		return nil, err
	}
	return [][]int64{{in[0].Dims[0], in[0].Dims[1], int64(g.OH), int64(g.OW)}}, nil
}

type poolRun struct {
	k       *maxPoolKernel
	g       pack.Conv2D
	in, out *ir.Tensor
	global  bool // items are groups of avgGroup planes for avgGlobal
}

// globalWindow reports whether g's one window is its whole input plane with
// no padding (a global average pool written as AveragePool: ResNet-50's
// 7×7 over 2048 planes), which avgGlobal computes.
func (k *maxPoolKernel) globalWindow(g *pack.Conv2D) bool {
	return g.OH == 1 && g.OW == 1 && g.KH == g.H && g.KW == g.W && g.PT == 0 && g.PL == 0 &&
		g.DH == 1 && g.DW == 1 && k.p.Win.padEnd(0, g.H) == 0 && k.p.Win.padEnd(1, g.W) == 0
}

func (k *maxPoolKernel) Run(x *engine.Exec, in, out []*ir.Tensor) error {
	g, err := k.p.Win.geometry(in[0].Dims, int(in[0].Dims[1]), int(in[0].Dims[1]))
	if err != nil {
		return err
	}
	r := k.runs.get()
	*r = poolRun{k: k, g: g, in: in[0], out: out[0]}
	planes := int(in[0].Dims[0]) * g.C
	if k.p.Average && k.globalWindow(&g) {
		r.global = true
		run(x, (planes+avgGroup-1)/avgGroup, r)
	} else {
		run(x, planes, r)
	}
	k.runs.put(r)
	return nil
}

func (r *poolRun) Do(_, item int) {
	if r.global {
		hw, planes := r.g.H*r.g.W, int(r.out.Len())
		p0 := item * avgGroup
		p1 := min(p0+avgGroup, planes)
		avgGlobal(r.out.F32()[p0:p1], r.in.F32()[p0*hw:p1*hw], hw)
		return
	}
	plane := item
	g := &r.g
	hw, ohw := g.H*g.W, g.OH*g.OW
	dt := r.k.p.DType
	if (dt == ir.Int8 || dt == ir.Uint8) && avx.MaxPoolCodes(r.out.Data[plane*ohw:(plane+1)*ohw], r.in.Data[plane*hw:(plane+1)*hw], g, dt == ir.Uint8) {
		return // the same maximum, vectorized and branch-free (integers have no ties or NaN to order)
	}
	switch dt {
	case ir.Int8:
		maxPlane(r.out.I8()[plane*ohw:(plane+1)*ohw], r.in.I8()[plane*hw:(plane+1)*hw], g, -128)
	case ir.Uint8:
		maxPlane(r.out.Data[plane*ohw:(plane+1)*ohw], r.in.Data[plane*hw:(plane+1)*hw], g, 0)
	case ir.Float32:
		if r.k.p.Average {
			p := &r.k.p
			avgPlane(r.out.F32()[plane*ohw:(plane+1)*ohw], r.in.F32()[plane*hw:(plane+1)*hw], g,
				p.IncludePad, p.Win.padEnd(0, g.H), p.Win.padEnd(1, g.W))
			return
		}
		maxPlane(r.out.F32()[plane*ohw:(plane+1)*ohw], r.in.F32()[plane*hw:(plane+1)*hw], g, float32(negInf))
	}
}

// avgPlane is AveragePool as ops/nn computes it: the float64 sum of the
// window's positions inside the input in row-major order, divided by their
// count, or with count_include_pad by the positions inside the padded
// input (pb, pr: end pads).
func avgPlane(y, x []float32, g *pack.Conv2D, includePad bool, pb, pr int) {
	for oh := 0; oh < g.OH; oh++ {
		for ow := 0; ow < g.OW; ow++ {
			var s float64
			n, padded := 0, 0
			for kh := 0; kh < g.KH; kh++ {
				ih := oh*g.SH - g.PT + kh*g.DH
				rowIn := uint(ih) < uint(g.H)
				rowPad := ih >= -g.PT && ih < g.H+pb
				for kw := 0; kw < g.KW; kw++ {
					iw := ow*g.SW - g.PL + kw*g.DW
					if rowPad && iw >= -g.PL && iw < g.W+pr {
						padded++
					}
					if rowIn && uint(iw) < uint(g.W) {
						s += float64(x[ih*g.W+iw])
						n++
					}
				}
			}
			d := float64(n)
			if includePad {
				d = float64(padded)
			}
			y[oh*g.OW+ow] = float32(s / d)
		}
	}
}

// avgGroup is how many planes avgGlobal sums at once: eight independent
// float64 addition chains keep both of a core's adders busy (one plane's
// chain waits on each addition's latency).
const avgGroup = 8

// avgGlobal is avgPlane for a window that is the whole plane (no padding):
// y[p] = float32(Σ x[p·hw + i] / hw), each sum in float64 in row-major
// order as avgPlane adds, so the results are the same bits; planes go
// avgGroup at a time.
func avgGlobal(y, x []float32, hw int) {
	n := float64(hw)
	p := 0
	for ; p+avgGroup <= len(y); p += avgGroup {
		x0 := x[p*hw : (p+1)*hw]
		x1, x2, x3 := x[(p+1)*hw:(p+2)*hw], x[(p+2)*hw:(p+3)*hw], x[(p+3)*hw:(p+4)*hw]
		x4, x5, x6, x7 := x[(p+4)*hw:(p+5)*hw], x[(p+5)*hw:(p+6)*hw], x[(p+6)*hw:(p+7)*hw], x[(p+7)*hw:(p+8)*hw]
		var s0, s1, s2, s3, s4, s5, s6, s7 float64
		for i := range x0 {
			s0 += float64(x0[i])
			s1 += float64(x1[i])
			s2 += float64(x2[i])
			s3 += float64(x3[i])
			s4 += float64(x4[i])
			s5 += float64(x5[i])
			s6 += float64(x6[i])
			s7 += float64(x7[i])
		}
		y[p], y[p+1], y[p+2], y[p+3] = float32(s0/n), float32(s1/n), float32(s2/n), float32(s3/n)
		y[p+4], y[p+5], y[p+6], y[p+7] = float32(s4/n), float32(s5/n), float32(s6/n), float32(s7/n)
	}
	for ; p < len(y); p++ {
		var s float64
		for _, v := range x[p*hw : (p+1)*hw] {
			s += float64(v)
		}
		y[p] = float32(s / n)
	}
}

var negInf = math.Inf(-1)

// maxPlane pools one plane; empty is the value of a window with no input
// position (the reference's -Inf converted to the type).
func maxPlane[T int8 | uint8 | float32](y, x []T, g *pack.Conv2D, empty T) {
	for oh := 0; oh < g.OH; oh++ {
		for ow := 0; ow < g.OW; ow++ {
			best, found := empty, false
			for kh := 0; kh < g.KH; kh++ {
				ih := oh*g.SH - g.PT + kh*g.DH
				if uint(ih) >= uint(g.H) {
					continue
				}
				row := x[ih*g.W : ih*g.W+g.W]
				for kw := 0; kw < g.KW; kw++ {
					iw := ow*g.SW - g.PL + kw*g.DW
					if uint(iw) >= uint(g.W) {
						continue
					}
					if v := row[iw]; v > best || !found {
						best, found = v, true
					}
				}
			}
			y[oh*g.OW+ow] = best
		}
	}
}

type reluTactic struct{}

func (reluTactic) Name() string { return "relu" }

func (reluTactic) Lower(l *engine.Layer) (*engine.Lowered, error) {
	dt := inDType(l, 0)
	if dt != ir.Int8 && dt != ir.Float32 {
		return nil, fmt.Errorf("%s: %s Relu has no fast kernel", l.Node, dt)
	}
	return lowered("cpu.relu", &poolParams{DType: dt}, nil, []int{0})
}

type reluKernel struct{ dt ir.DType }

func init() {
	register("cpu.relu", func(p *poolParams, _ []*ir.Tensor) (engine.Kernel, error) {
		if p.DType != ir.Int8 && p.DType != ir.Float32 {
			return nil, fmt.Errorf("cpu.relu: %s", p.DType)
		}
		return &reluKernel{dt: p.DType}, nil
	})
}

func (k *reluKernel) Shapes(in []*ir.Tensor) ([][]int64, error) {
	if in[0].DType != k.dt {
		return nil, fmt.Errorf("input is %s, want %s", in[0].DType, k.dt)
	}
	return [][]int64{in[0].Dims}, nil
}

// Run is a single pass: memory-bound, so one thread already saturates it
// for the sizes between layers.
func (k *reluKernel) Run(_ *engine.Exec, in, out []*ir.Tensor) error {
	if k.dt == ir.Int8 {
		y := out[0].I8()
		for i, v := range in[0].I8() {
			y[i] = max(v, 0)
		}
		return nil
	}
	y := out[0].F32()
	for i, v := range in[0].F32() {
		if v < 0 { // -0 and NaN pass through, as in ops/arith
			v = 0
		}
		y[i] = v
	}
	return nil
}
