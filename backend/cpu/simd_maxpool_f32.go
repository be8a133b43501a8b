package cpu

import (
	"fmt"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/kernels/avx"
	"github.com/kilnml/kiln/kernels/pack"
)

// FP32 MaxPool of any kernel size and padding, stride 1 or 2 along rows,
// no dilation (ResNet's 3×3/2 stem pool): outputs whose window lies inside
// the input go through kernels/avx's row kernel (16 per zmm, no bounds
// checks), the border ones through the portable loop; both take the taps
// in row-major order with the first in-bounds one as the start, so the
// result equals cpu.maxpool's bit for bit (ties, NaN).
const simdMaxPoolID = "cpu.maxpool.f32"

// simdMaxPoolISA names the tactic's variant (one kernel id for all: no
// AVX2 row kernel, the AVX2 path runs the Go twin).
var simdMaxPoolISA = isaIDs{fam: famF32, goOnAVX2: true}

type simdMaxPoolTactic struct{}

func (simdMaxPoolTactic) Name() string { return "maxpool." + simdMaxPoolISA.tag("avx512") + ".f32" }

func (simdMaxPoolTactic) Lower(l *engine.Layer) (*engine.Lowered, error) {
	low, err := maxPoolTactic{}.Lower(l)
	if err != nil {
		return nil, err
	}
	var p poolParams
	if err := jsonUnmarshal(low.Params, &p); err != nil {
		return nil, err
	}
	if !simdMaxPoolFits(&p) {
		return nil, fmt.Errorf("%s: not a float32 max pool with row stride 1 or 2 and no dilation", l.Node)
	}
	return lowered(simdMaxPoolID, &p, nil, []int{0})
}

func simdMaxPoolFits(p *poolParams) bool {
	return p.DType == ir.Float32 && !p.Average && p.Win.Dils == [2]int{1, 1} && (p.Win.Strides[1] == 1 || p.Win.Strides[1] == 2)
}

type simdMaxPoolKernel struct{ maxPoolKernel }

func init() {
	register(simdMaxPoolID, func(p *poolParams, _ []*ir.Tensor) (engine.Kernel, error) {
		if !simdMaxPoolFits(p) {
			return nil, fmt.Errorf("%s: parameters of another pool", simdMaxPoolID)
		}
		return &simdMaxPoolKernel{maxPoolKernel{p: *p}}, nil
	})
}

type simdMaxPoolRun struct {
	g       pack.Conv2D
	in, out []float32
}

func (k *simdMaxPoolKernel) Run(x *engine.Exec, in, out []*ir.Tensor) error {
	g, err := k.p.Win.geometry(in[0].Dims, int(in[0].Dims[1]), int(in[0].Dims[1]))
	if err != nil {
		return err
	}
	r := &simdMaxPoolRun{g: g, in: in[0].F32(), out: out[0].F32()}
	run(x, int(in[0].Dims[0])*g.C, r)
	return nil
}

// inside is the range [lo, hi) of outputs along one axis whose window
// (k taps from o*s−pad) lies inside [0, size).
func inside(size, k, s, pad, outs int) (lo, hi int) {
	lo = (pad + s - 1) / s
	if size-k+pad < 0 {
		return lo, lo
	}
	hi = min(outs, (size-k+pad)/s+1)
	return min(lo, hi), hi
}

func (r *simdMaxPoolRun) Do(_, plane int) {
	g := &r.g
	hw, ohw := g.H*g.W, g.OH*g.OW
	x, y := r.in[plane*hw:(plane+1)*hw], r.out[plane*ohw:(plane+1)*ohw]
	rlo, rhi := inside(g.H, g.KH, g.SH, g.PT, g.OH)
	clo, chi := inside(g.W, g.KW, g.SW, g.PL, g.OW)
	for oh := 0; oh < g.OH; oh++ {
		if oh < rlo || oh >= rhi || clo >= chi {
			for ow := 0; ow < g.OW; ow++ {
				y[oh*g.OW+ow] = maxAt(x, g, oh, ow)
			}
			continue
		}
		for ow := 0; ow < clo; ow++ {
			y[oh*g.OW+ow] = maxAt(x, g, oh, ow)
		}
		ih, iw := oh*g.SH-g.PT, clo*g.SW-g.PL
		avx.MaxPoolRow(y[oh*g.OW+clo:oh*g.OW+chi], x[ih*g.W+iw:], g.W, g.KH, g.KW, g.SW, chi-clo)
		for ow := chi; ow < g.OW; ow++ {
			y[oh*g.OW+ow] = maxAt(x, g, oh, ow)
		}
	}
}

// maxAt is maxPlane's value of output (oh, ow): the first in-bounds tap,
// then each later one replacing the maximum only when greater.
func maxAt(x []float32, g *pack.Conv2D, oh, ow int) float32 {
	best, found := float32(negInf), false
	for kh := 0; kh < g.KH; kh++ {
		ih := oh*g.SH - g.PT + kh*g.DH
		if uint(ih) >= uint(g.H) {
			continue
		}
		for kw := 0; kw < g.KW; kw++ {
			iw := ow*g.SW - g.PL + kw*g.DW
			if uint(iw) >= uint(g.W) {
				continue
			}
			if v := x[ih*g.W+iw]; v > best || !found {
				best, found = v, true
			}
		}
	}
	return best
}
