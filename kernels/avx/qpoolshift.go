package avx

import (
	"unsafe"

	"github.com/kilnml/kiln/kernels/pack"
)

// Shift planes: the pooled conv's B operand without packing strips. For a
// stride-1 conv whose pooled windows lie inside the image, window member
// (dy, dx) of pooled output (pr, pc) reads, under tap (kh, kw), input
// (2pr+dy+kh, 2pc+dx+kw): one of (KH+1)·(KW+1) shifts (sy, sx) = (dy+kh,
// dx+kw) of the input sampled at (2pr, 2pc). Per quad of channels and
// shift, a plane row holds that sample for every pooled output of the band
// (numbered across its images), so a micro-kernel step (kh, kw, quad) reads
// its four phases as 8 consecutive words of four rows (shifts (kh, kw),
// (kh, kw+1), (kh+1, kw), (kh+1, kw+1)) and each group of 8 pooled outputs
// is the next 8 words: the rows are built once per band (one masked load
// and VPERMB per quad, shift and pooled row) instead of 36 runs per quad
// and group in the packed strips.

// QPoolShift is the shift-plane layout of one geometry and band.
type QPoolShift struct {
	g             pack.Conv2D
	images, plane int
	shifts        int     // (KH+1)·(KW+1)
	rowWords      int     // words per plane row: the band's pooled outputs rounded up to PoolGroup
	q, qstep      int     // quads, bytes between an input image's quad planes
	srcShift      []int32 // per shift: byte offset in a quad plane
	segs          []int32 // (word, words, source byte offset, bytes) per pooled row run
	offs          []int32 // per micro-kernel step (kh, kw, quad): byte offset of its first phase's row
	idx           [64]byte
}

// QPoolShiftOK reports whether geometry g (channels-last quads) should
// use shift planes: unit strides and dilations, pooled windows inside the
// image (QPoolDirect's quad-plane conditions), and the VNNI kernels (the
// portable twin rebuilds packed strips from the planes per call: slower
// than packing them).
func QPoolShiftOK(g *pack.Conv2D) bool {
	return QVariant == QVariantVNNI && qpoolShiftGeometry(g)
}

// qpoolShiftGeometry is QPoolShiftOK's geometry part.
func qpoolShiftGeometry(g *pack.Conv2D) bool {
	return g.SH == 1 && g.SW == 1 && g.DH == 1 && g.DW == 1 && QPoolDirect(g, false)
}

// NewQPoolShift lays out the shift planes of geometry g for bands of
// images quad-plane images (ToQuadPlanes), plane bytes apart.
func NewQPoolShift(g *pack.Conv2D, images, plane int) *QPoolShift {
	pw, ph := g.OW/2, g.OH/2
	phw := pw * ph
	s := &QPoolShift{g: *g, images: images, plane: plane, shifts: (g.KH + 1) * (g.KW + 1)}
	s.rowWords = (images*phw + PoolGroup - 1) / PoolGroup * PoolGroup
	s.q, s.qstep = Cg4(g.C/g.Group)/4, QuadPlaneWords(g.H, g.W)*4
	for sy := range g.KH + 1 {
		for sx := range g.KW + 1 {
			s.srcShift = append(s.srcShift, int32((sy*g.W+sx)*4))
		}
	}
	for b := range images {
		for pr := range ph {
			for c := 0; c < pw; c += PoolGroup {
				n := min(PoolGroup, pw-c)
				s.segs = append(s.segs, int32(b*phw+pr*pw+c), int32(n), int32(b*plane+(2*pr*g.W+2*c)*4), int32(8*(n-1)+4))
			}
		}
	}
	rb := 4 * s.rowWords
	for kh := range g.KH {
		for kw := range g.KW {
			for i := range s.q {
				s.offs = append(s.offs, int32((i*s.shifts+kh*(g.KW+1)+kw)*rb))
			}
		}
	}
	for b := range s.idx {
		s.idx[b] = byte(8*(b/4) + b%4)
	}
	return s
}

// Matches reports whether s was made for these arguments.
func (s *QPoolShift) Matches(g *pack.Conv2D, images, plane int) bool {
	return s.g == *g && s.images == images && s.plane == plane
}

// Size is the bytes of a band's shift planes.
func (s *QPoolShift) Size() int { return s.q * s.shifts * s.rowWords * 4 }

// Build writes the shift planes of the band whose quad-plane images are
// imgs (plane bytes apart) into dst (Size bytes). Words past the band's
// pooled outputs are left as they are (their codes are not stored).
func (s *QPoolShift) Build(dst []uint8, imgs []byte) {
	_, _ = dst[s.Size()-1], imgs[s.images*s.plane-1]
	qshiftPackDispatch(qpoolPackWords(dst[:s.Size()]), imgs[:s.images*s.plane], s)
}

// qshiftPackGeneric is the reference loop of Build: for segment (w, n,
// off, bytes), shift r and quad i, plane row (i·shifts + r) word w + j =
// the word at src[off + srcShift[r] + i·qstep + 8j] (j < n).
func qshiftPackGeneric(dst []uint32, src []byte, s *QPoolShift) {
	for k := 0; k+3 < len(s.segs); k += 4 {
		w, n, off := int(s.segs[k]), int(s.segs[k+1]), int(s.segs[k+2])
		for r, so := range s.srcShift {
			for i := range s.q {
				row := dst[(i*s.shifts+r)*s.rowWords+w : (i*s.shifts+r)*s.rowWords+w+n]
				b := src[off+int(so)+i*s.qstep:]
				for j := range row {
					row[j] = uint32(b[8*j]) | uint32(b[8*j+1])<<8 | uint32(b[8*j+2])<<16 | uint32(b[8*j+3])<<24
				}
			}
		}
	}
}

// QGemmPoolShift is QGemmPool with the B operand in shift planes sp
// (Build) instead of packed strips: np pooled outputs of the band from its
// first (o as QGemmPool's with p0 = 0). The layer must be QPoolable.
func QGemmPoolShift(k int, ap []int8, m int, sp []uint8, s *QPoolShift, np int, o *QOut, l *QLayer, r0 int) {
	if K4(k) != len(s.offs) || len(sp) < s.Size() || np > s.rowWords {
		panic("avx.QGemmPoolShift: shift planes do not match")
	}
	qgemmPool(k, ap, m, sp, np, o, l, r0, 0, s)
}

// qgemmPoolShiftGeneric is the portable shift-plane pooled micro-kernel,
// the reference loop: the strips of the ⌈np/PoolGroup⌉ groups, step p of
// group g's columns [8f, 8f+8) = the 8 words at b + 32g + offs[p] +
// {0, rb, rbRow, rbRow+rb}[f], then qgemmPoolGeneric.
func qgemmPoolShiftGeneric(k4 int, a *int8, b *uint8, out *byte, ldo, mr, np int, qp *int64, rem, phw, jump int, offs *int32, rb, rbRow int) {
	groups := (np + PoolGroup - 1) / PoolGroup
	strips := make([]uint32, groups*k4*NR)
	os := unsafe.Slice(offs, k4)
	phase := [4]int{0, rb, rbRow, rbRow + rb}
	for g := range groups {
		for p, off := range os {
			for f, d := range phase {
				src := unsafe.Slice((*uint32)(unsafe.Add(unsafe.Pointer(b), 32*g+int(off)+d)), PoolGroup)
				copy(strips[(g*k4+p)*NR+f*PoolGroup:], src)
			}
		}
	}
	var sb *uint8
	if len(strips) > 0 {
		sb = (*uint8)(unsafe.Pointer(&strips[0]))
	}
	qgemmPoolGeneric(k4, a, sb, out, ldo, mr, np, qp, rem, phw, jump)
}
