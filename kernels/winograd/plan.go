package winograd

import (
	"fmt"
	"math"

	"github.com/kilnml/kiln/kernels/avx"
)

// Geometry is a 3×3 stride-1 dilation-1 group-1 conv over a batch of NCHW
// images, resolved for concrete input dims.
type Geometry struct {
	N, C, H, W int // batch, input channels, input size
	M, OH, OW  int // output channels, conv output size (before any pool)
	PT, PL     int // begin pads (end pads only shape OH/OW)
	Pool       bool
}

// Plan is a geometry's tiling: tiles are numbered image by image, row by
// row (p = (n·TH + th)·TW + tw), 16 to a group; for every group it holds
// the lane tables the transforms read: each tile's input origin (row
// th·m−PT, column tw·m−PL of image n, channel 0) as an offset into the
// batch, the lanes whose patch taps lie inside the image (zero padding
// elsewhere), each tile's first stored output as an offset into the batch
// output (channel 0), and the lanes whose outputs are stored (tiles
// hanging over the bottom or right edge compute outputs nobody stores).
// With Pool the stored outputs are the 2×2 maxima of each tile's outputs
// (m/2 × m/2 per tile; floor mode drops a last odd row or column).
type Plan struct {
	Kind Kind
	Geometry
	TH, TW        int // tiles per column and per row of an image
	Tiles, Groups int
	Outs          int // stored outputs per tile: m² or (m/2)² pooled
	YW, YHW       int // row stride and plane size of the stored output
	InIdx         []int32
	InMask        []uint16 // T² per group, (i, j) row-major
	OutIdx        []int32
	OutMask       []uint16 // Outs per group, row-major within the tile
}

// NewPlan tiles g for kind k. Offsets are int32 (the kernels gather and
// scatter with 32-bit indices), so a batch of 2³¹ or more input or output
// elements is refused.
func NewPlan(k Kind, g Geometry) (*Plan, error) {
	if !k.Valid() {
		return nil, fmt.Errorf("winograd: unknown kind %d", k)
	}
	if g.N <= 0 || g.C <= 0 || g.M <= 0 || g.OH <= 0 || g.OW <= 0 || g.H <= 0 || g.W <= 0 {
		return nil, fmt.Errorf("winograd: empty geometry %+v", g)
	}
	if g.PT < 0 || g.PL < 0 {
		return nil, fmt.Errorf("winograd: negative pads %d,%d", g.PT, g.PL)
	}
	if int64(g.N)*int64(g.C)*int64(g.H)*int64(g.W) >= math.MaxInt32 || int64(g.N)*int64(g.M)*int64(g.OH)*int64(g.OW) >= math.MaxInt32 {
		return nil, fmt.Errorf("winograd: batch of %d×%d×%d×%d too large for 32-bit offsets", g.N, max(g.C, g.M), g.H, g.W)
	}
	m, t := k.M(), k.T()
	p := &Plan{Kind: k, Geometry: g}
	oh, ow := g.OH, g.OW // outputs that must be computed
	h := m               // stored outputs per tile side
	if g.Pool {
		if g.OH < 2 || g.OW < 2 {
			return nil, fmt.Errorf("winograd: output %d×%d smaller than the 2×2 pool", g.OH, g.OW)
		}
		oh, ow, h = g.OH/2*2, g.OW/2*2, m/2
		p.YW, p.YHW = g.OW/2, (g.OH/2)*(g.OW/2)
	} else {
		p.YW, p.YHW = g.OW, g.OH*g.OW
	}
	p.TH, p.TW = (oh+m-1)/m, (ow+m-1)/m
	p.Tiles = g.N * p.TH * p.TW
	p.Groups = (p.Tiles + Lanes - 1) / Lanes
	p.Outs = h * h
	p.InIdx = make([]int32, p.Groups*Lanes)
	p.OutIdx = make([]int32, p.Groups*Lanes)
	p.InMask = make([]uint16, p.Groups*t*t)
	p.OutMask = make([]uint16, p.Groups*p.Outs)
	ylimH, ylimW := g.OH, g.OW
	if g.Pool {
		ylimH, ylimW = g.OH/2, g.OW/2
	}
	for q := 0; q < p.Tiles; q++ {
		n, r := q/(p.TH*p.TW), q%(p.TH*p.TW)
		th, tw := r/p.TW, r%p.TW
		grp, l := q/Lanes, uint(q%Lanes)
		ih, iw := th*m-g.PT, tw*m-g.PL
		p.InIdx[q] = int32(n*g.C*g.H*g.W + ih*g.W + iw)
		for i := 0; i < t; i++ {
			for j := 0; j < t; j++ {
				if uint(ih+i) < uint(g.H) && uint(iw+j) < uint(g.W) {
					p.InMask[grp*t*t+i*t+j] |= 1 << l
				}
			}
		}
		yh, yw := th*h, tw*h
		p.OutIdx[q] = int32(n*g.M*p.YHW + yh*p.YW + yw)
		for a := 0; a < h; a++ {
			for b := 0; b < h; b++ {
				if yh+a < ylimH && yw+b < ylimW {
					p.OutMask[grp*p.Outs+a*h+b] |= 1 << l
				}
			}
		}
	}
	return p, nil
}

// Fits reports whether p was made for kind k and geometry g.
func (p *Plan) Fits(k Kind, g Geometry) bool { return p != nil && p.Kind == k && p.Geometry == g }

// Epilogue flags of the output transform.
const (
	FlagBias  = 1  // y += bias[row]
	FlagResid = 4  // y += resid (indexed like the output)
	FlagClamp = 8  // y = min(max(y, lo), hi), NaN kept
	FlagPool  = 32 // store the 2×2 maxima of each tile's outputs (Plan.Pool)
)

// StripWidth is the width of the GEMM's packed B strips the input
// transform writes (kernels/avx's NR).
const StripWidth = avx.NR
