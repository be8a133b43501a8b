package avx

import (
	"github.com/kilnml/kiln/kernels/pack"
)

// QRowsPlan packs the row-quad im2col (QIm2colRows) from a per-geometry
// list of segments, one qpoolPack call per strip instead of one slideQuads
// call per kernel row, quad and run: a segment is ≤ 8 consecutive output
// columns of one output row, whose quads are one masked load and a VPERMB
// (a word every SW bytes) per kernel row and quad. First layers (ResNet's
// 7×7/2 stem, mobilenetv2's 3×3/2) spent a quarter of their time in those
// calls.
type QRowsPlan struct {
	g      pack.Conv2D
	direct bool
	segs   []int32 // (column in the strip, words, byte offset in the padded image, bytes) per segment
	start  []int32 // strip s's segments: [start[s], start[s+1])
	rowOff []int32 // per kernel row (c, kh): byte offset in the padded image
	q      int
	idx    [64]byte
}

// NewQRowsPlan plans the row-quad packing of geometry g (strides up to 8
// with a direct plan; others fall back to QIm2colRows).
func NewQRowsPlan(g *pack.Conv2D) *QRowsPlan {
	p := &QRowsPlan{g: *g, q: KW4(g.KW) / 4}
	cg := g.C / g.Group
	ph, pw := QPadSize(g)
	for r := range cg * g.KH {
		p.rowOff = append(p.rowOff, int32(r/g.KH*ph*pw+r%g.KH*g.DH*pw))
	}
	p.direct = 7*g.SW+4 <= 64 && len(p.rowOff) <= maxTaps
	if !p.direct {
		return p
	}
	for b := range p.idx {
		p.idx[b] = byte(g.SW*(b/4) + b%4)
	}
	ohw := g.OH * g.OW
	for t := 0; t < ohw; t += NR {
		p.start = append(p.start, int32(len(p.segs)/4))
		cols := min(NR, ohw-t)
		for at := 0; at < cols; {
			oh, ow := (t+at)/g.OW, (t+at)%g.OW
			n := min(cols-at, g.OW-ow, PoolGroup)
			p.segs = append(p.segs, int32(at), int32(n), int32(oh*g.SH*pw+ow*g.SW), int32(g.SW*(n-1)+4))
			at += n
		}
	}
	p.start = append(p.start, int32(len(p.segs)/4))
	return p
}

// Matches reports whether the plan was made for geometry g.
func (p *QRowsPlan) Matches(g *pack.Conv2D) bool { return p.g == *g }

// Pack is QIm2colRows(dst, xp, g, j0, n) (columns past n in the last strip
// are left unwritten).
func (p *QRowsPlan) Pack(dst []uint8, xp []byte, j0, n int) {
	if !p.direct || j0%NR != 0 {
		QIm2colRows(dst, xp, &p.g, j0, n)
		return
	}
	cg := p.g.C / p.g.Group
	ph, pw := QPadSize(&p.g)
	xp = xp[:cg*ph*pw]
	k4 := len(p.rowOff) * p.q
	for t := 0; t < n; t += NR {
		s := (j0 + t) / NR
		segs := p.segs[4*p.start[s] : 4*p.start[s+1]]
		if t+NR > n { // a partial last strip: the columns below n only
			k := 0
			for k < len(segs) && int(segs[k]) < n-t {
				k += 4
			}
			segs = segs[:k]
		}
		strip := dst[t*4*k4 : (t+NR)*4*k4]
		qpoolPackDispatch(strip, xp, segs, p.rowOff, p.q, 4, &p.idx)
	}
}
