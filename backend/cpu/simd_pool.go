package cpu

import (
	"fmt"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/kernels/avx"
	"github.com/kilnml/kiln/kernels/pack"
)

// MaxPool 2×2 stride 2 (float32, int8 or uint8 codes) without padding (CNN downsampling): two input
// rows per output row, no per-tap bounds checks. Same semantics as
// cpu.maxpool (row-major taps, first wins ties, NaN kept only when first).
const simdPoolID = "cpu.maxpool.2x2"

type simdPoolTactic struct{}

func (simdPoolTactic) Name() string { return "maxpool.2x2" }

func (simdPoolTactic) Lower(l *engine.Layer) (*engine.Lowered, error) {
	low, err := maxPoolTactic{}.Lower(l)
	if err != nil {
		return nil, err
	}
	var p poolParams
	if err := jsonUnmarshal(low.Params, &p); err != nil {
		return nil, err
	}
	if !pool2x2(&p) {
		return nil, fmt.Errorf("%s: not a 2×2 stride-2 unpadded pool", l.Node)
	}
	return lowered(simdPoolID, &p, nil, []int{0})
}

func pool2x2(p *poolParams) bool {
	w := &p.Win
	return (p.DType == ir.Float32 || p.DType == ir.Int8 || p.DType == ir.Uint8) && w.Kernel == [2]int{2, 2} && w.Strides == [2]int{2, 2} && w.Dils == [2]int{1, 1} &&
		w.Pads == [4]int{} && (w.AutoPad == "NOTSET" || w.AutoPad == "" || w.AutoPad == "VALID") && !w.Ceil
}

type simdPoolKernel struct{ maxPoolKernel }

func init() {
	register(simdPoolID, func(p *poolParams, _ []*ir.Tensor) (engine.Kernel, error) {
		if !pool2x2(p) {
			return nil, fmt.Errorf("%s: parameters of another pool", simdPoolID)
		}
		return &simdPoolKernel{maxPoolKernel{p: *p}}, nil
	})
}

type simdPoolRun struct {
	g       pack.Conv2D
	dt      ir.DType
	in, out *ir.Tensor
	rowsPer int
	nrows   int
}

func (k *simdPoolKernel) Run(x *engine.Exec, in, out []*ir.Tensor) error {
	g, err := k.p.Win.geometry(in[0].Dims, int(in[0].Dims[1]), int(in[0].Dims[1]))
	if err != nil {
		return err
	}
	planes := int(in[0].Dims[0]) * g.C
	r := &simdPoolRun{g: g, dt: k.p.DType, in: in[0], out: out[0], nrows: planes * g.OH}
	r.rowsPer = max(1, (16<<10)/max(g.OW, 1))
	if r.dt != ir.Float32 { // codes: items are whole planes (kernels/avx pools planes)
		r.nrows = planes
		r.rowsPer = max(1, (64<<10)/max(g.H*g.W, 1))
	}
	run(x, (r.nrows+r.rowsPer-1)/r.rowsPer, r)
	return nil
}

func (r *simdPoolRun) Do(_, item int) {
	lo, hi := item*r.rowsPer, min(r.nrows, (item+1)*r.rowsPer)
	if r.dt == ir.Float32 {
		pool2x2RowsF32(r.out.F32(), r.in.F32(), &r.g, lo, hi)
		return
	}
	// Codes: the maximum of integers has no ties or NaN to order, so the
	// vectorized pool equals the row-major scan of cpu.maxpool.
	g := &r.g
	in, out := r.in.Data[lo*g.H*g.W:hi*g.H*g.W], r.out.Data[lo*g.OH*g.OW:hi*g.OH*g.OW]
	avx.MaxPool2x2(out, in, g.W, g.H, hi-lo, r.dt == ir.Uint8)
}

// pool2x2Rows pools output rows [lo,hi) (plane-major) of a 2×2/2 pool of
// float32.
func pool2x2Rows(out, in []float32, g *pack.Conv2D, lo, hi int) {
	hw := g.H * g.W
	for row := lo; row < hi; row++ {
		plane, oh := row/g.OH, row%g.OH
		x0 := in[plane*hw+2*oh*g.W : plane*hw+2*oh*g.W+g.W]
		x1 := in[plane*hw+(2*oh+1)*g.W : plane*hw+(2*oh+1)*g.W+g.W]
		y := out[row*g.OW : row*g.OW+g.OW]
		for ow := range y {
			b := x0[2*ow]
			if v := x0[2*ow+1]; v > b {
				b = v
			}
			if v := x1[2*ow]; v > b {
				b = v
			}
			if v := x1[2*ow+1]; v > b {
				b = v
			}
			y[ow] = b
		}
	}
}
