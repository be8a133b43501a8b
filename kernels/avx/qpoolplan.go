package avx

import (
	"unsafe"

	"github.com/kilnml/kiln/kernels/pack"
)

// A packing plan for the pooled conv's strips (QGemmPool's column order):
// the runs of each pooled group depend only on the geometry (and the
// number of images a band holds: groups may run from one image into the
// next, which the micro-kernel's two stores per row follow), so they are
// listed once and every image's strips are then packed by one call per
// strip (qpoolPack): per segment (the pooled outputs of one pooled row
// within a group, one window member) a masked load per kernel row and quad
// and a VPERMB that picks a word every 2·stride positions. Geometries the
// plan cannot express (quad planes with padding or a column stride other
// than 1, row quads wider apart than a load holds) use the gathers of
// QIm2colQuadPlanesPooled and QIm2colRowsPooled.

// QPoolPlan packs the pooled strips of one conv geometry.
type QPoolPlan struct {
	g        pack.Conv2D
	rows     bool // row quads (QPadImage) or quad planes (ToQuadPlanes)
	images   int  // pooled outputs run over this many images, copies plane bytes apart
	plane    int
	direct   bool    // segments (else gathers)
	segs     []int32 // (column, words, source byte offset, bytes) per segment
	start    []int32 // pooled group s's segments: [start[s], start[s+1])
	rowOff   []int32 // per kernel row (c, kh) or tap: byte offset
	q, qstep int     // quads per row or tap, bytes between them
	idx      [64]byte
}

// QPoolDirect reports whether the pooled packing of geometry g (row quads
// or quad planes) has a direct plan: segments loaded with masks and picked
// with VPERMB, no gathers, possibly over several images.
func QPoolDirect(g *pack.Conv2D, rows bool) bool {
	if rows {
		return 7*2*g.SW+4 <= 64 && g.C/g.Group*g.KH <= maxTaps
	}
	pw, ph := g.OW/2, g.OH/2
	return g.SW == 1 && g.PT == 0 && g.PL == 0 && g.KH*g.KW <= maxTaps &&
		(2*ph-1)*g.SH+(g.KH-1)*g.DH < g.H && 2*pw-1+(g.KW-1)*g.DW < g.W
}

// NewQPoolPlan plans the pooled packing of geometry g in the row-quad
// order (rows) or from quad planes, for bands of images image copies
// (plane bytes apart) whose pooled outputs are numbered across them. Only
// a direct plan (QPoolDirect) runs over several images.
func NewQPoolPlan(g *pack.Conv2D, rows bool, images, plane int) *QPoolPlan {
	p := &QPoolPlan{g: *g, rows: rows, images: images, plane: plane, direct: QPoolDirect(g, rows)}
	pw, ph := g.OW/2, g.OH/2
	var stride, unit, rowPitch int // bytes between pooled neighbours; per conv column / row
	if rows {
		cg := g.C / g.Group
		pph, ppw := QPadSize(g)
		for r := range cg * g.KH {
			p.rowOff = append(p.rowOff, int32(r/g.KH*pph*ppw+r%g.KH*g.DH*ppw))
		}
		p.q, p.qstep = KW4(g.KW)/4, 4
		unit, rowPitch = g.SW, g.SH*ppw
		stride = 2 * g.SW
	} else {
		for kh := range g.KH {
			for kw := range g.KW {
				p.rowOff = append(p.rowOff, int32((kh*g.DH*g.W+kw*g.DW)*4))
			}
		}
		p.q, p.qstep = Cg4(g.C/g.Group)/4, QuadPlaneWords(g.H, g.W)*4
		unit, rowPitch = 4, g.SH*g.W*4
		stride = 8
	}
	for b := range p.idx {
		p.idx[b] = byte(stride*(b/4) + b%4)
	}
	if !p.direct {
		p.images = 1
		return p
	}
	phw := pw * ph
	groups := (images*phw + PoolGroup - 1) / PoolGroup
	for s := range groups {
		p.start = append(p.start, int32(len(p.segs)/4))
		p0 := s * PoolGroup
		n := min(PoolGroup, images*phw-p0)
		for f := range 4 {
			for at := 0; at < n; {
				b, pp := (p0+at)/phw, (p0+at)%phw
				pr, pc := pp/pw, pp%pw
				run := min(n-at, pw-pc)
				off := b*plane + (2*pr+f/2)*rowPitch + (2*pc+f%2)*unit
				p.segs = append(p.segs, int32(f*PoolGroup+at), int32(run), int32(off), int32(stride*(run-1)+4))
				at += run
			}
		}
	}
	p.start = append(p.start, int32(len(p.segs)/4))
	return p
}

// Matches reports whether the plan was made for these arguments.
func (p *QPoolPlan) Matches(g *pack.Conv2D, rows bool, images, plane int) bool {
	return p.g == *g && p.rows == rows && (p.images == images || !p.direct) && p.plane == plane
}

// Direct reports whether the plan packs without gathers (and may run
// over several images).
func (p *QPoolPlan) Direct() bool { return p.direct }

// Pack packs np pooled outputs from p0 (numbered across the plan's images)
// of the image copies img (QPadImage's padded planes for the row order,
// else ToQuadPlanes' planes, plane bytes apart; pad: the zero point's
// byte) as QIm2colRowsPooled and QIm2colQuadPlanesPooled do for one image.
func (p *QPoolPlan) Pack(dst []uint8, img []byte, p0, np int, pad byte) {
	if phw := (p.g.OH / 2) * (p.g.OW / 2); p0+np > p.images*phw || p.direct && np%PoolGroup != 0 && p0+np != p.images*phw {
		// a group's segments cover whole groups (up to the plan's end)
		panic("avx.QPoolPlan.Pack: pooled outputs past the plan's images or ending inside a group")
	}
	if !p.direct || p0%PoolGroup != 0 {
		if p.rows {
			QIm2colRowsPooled(dst, img, &p.g, p0, np)
		} else {
			QIm2colQuadPlanesPooled(dst, img, &p.g, p0, np, pad)
		}
		return
	}
	k4 := len(p.rowOff) * p.q
	for t := 0; t < np; t += PoolGroup {
		s := (p0 + t) / PoolGroup
		segs := p.segs[4*p.start[s] : 4*p.start[s+1]]
		strip := dst[t*4*4*k4 : (t*4+NR)*4*k4]
		qpoolPackDispatch(strip, img, segs, p.rowOff, p.q, p.qstep, &p.idx)
	}
}

// qpoolPackGeneric is the reference loop of qpoolPack: for segment (c, n,
// off, bytes), kernel row r and quad i, strip word (r·q+i)·NR + c + j =
// the word at src[off + rowOff[r] + i·qstep + stride·j] (j < n, stride =
// idx[4]).
func qpoolPackGeneric(dst []uint32, src []byte, segs, rowOff []int32, q, qstep int, idx *[64]byte) {
	stride := int(idx[4])
	for s := 0; s+3 < len(segs); s += 4 {
		c, n, off := int(segs[s]), int(segs[s+1]), int(segs[s+2])
		for r, ro := range rowOff {
			for i := range q {
				row := dst[(r*q+i)*NR+c : (r*q+i)*NR+c+n]
				b := src[off+int(ro)+i*qstep:]
				for j := range row {
					row[j] = uint32(b[stride*j]) | uint32(b[stride*j+1])<<8 | uint32(b[stride*j+2])<<16 | uint32(b[stride*j+3])<<24
				}
			}
		}
	}
}

func qpoolPackWords(strip []uint8) []uint32 {
	return unsafe.Slice((*uint32)(unsafe.Pointer(unsafe.SliceData(strip))), len(strip)/4)
}
