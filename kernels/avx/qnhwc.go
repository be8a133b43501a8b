package avx

import (
	"unsafe"

	"github.com/kilnml/kiln/kernels/pack"
)

// Channel-last INT8 im2col. The VNNI micro-kernel consumes depth in quads
// (4 consecutive k per column), so depth is ordered (kh, kw, c) with the
// group's channels padded to Cg4, a multiple of 4: a quad is then 4
// channels of one input position, one 32-bit word of the image transposed
// to channels-last (NHWC). Packing a strip becomes word copies instead of
// byte gathers.

// Cg4 is the per-tap depth of a group with cg channels.
func Cg4(cg int) int { return (cg + 3) &^ 3 }

// QKTaps is the depth of the (kh, kw, c) order: taps × Cg4.
func QKTaps(g *pack.Conv2D) int { return g.KH * g.KW * Cg4(g.C/g.Group) }

// ReorderQWeights turns m×(cg·taps) int8 weights (ONNX order c, kh, kw)
// into m×(taps·Cg4) in (kh, kw, c) order, zero in the padded channels.
func ReorderQWeights(w []int8, m, cg, taps int) []int8 {
	c4 := Cg4(cg)
	out := make([]int8, m*taps*c4)
	for i := 0; i < m; i++ {
		for c := 0; c < cg; c++ {
			for t := 0; t < taps; t++ {
				out[i*taps*c4+t*c4+c] = w[i*cg*taps+c*taps+t]
			}
		}
	}
	return out
}

// ToNHWC transposes group grp of one image of 8-bit codes x (C×H×W) to
// positions × Cg4 bytes, u = code^flip, padded channels = pad.
func ToNHWC(dst []byte, x []byte, g *pack.Conv2D, grp int, flip, pad byte) {
	cg := g.C / g.Group
	c4 := Cg4(cg)
	hw := g.H * g.W
	dst = dst[:hw*c4]
	for c := 0; c < cg; c++ {
		src := x[(grp*cg+c)*hw : (grp*cg+c+1)*hw]
		d := dst[c:]
		for p, v := range src {
			d[p*c4] = v ^ flip
		}
	}
	for c := cg; c < c4; c++ {
		for p := 0; p < hw; p++ {
			dst[p*c4+c] = pad
		}
	}
}

// QIm2colNHWC packs columns [j0, j0+n) of the (kh, kw, c)-ordered im2col
// matrix of one channels-last group image (from ToNHWC) in NR-column
// strips of quads. Padding taps hold pad in every byte.
func QIm2colNHWC(dst []uint8, xc []byte, g *pack.Conv2D, j0, n int, pad byte) {
	c4 := Cg4(g.C / g.Group)
	q := c4 / 4 // quads per tap
	k4 := g.KH * g.KW * q
	fill := uint32(pad) * 0x01010101
	if taps := g.KH * g.KW; taps <= maxTaps {
		// per strip, a table of each column's byte offset per tap, then
		// q gathered words per tap (AVX-512 gathers where available)
		var tab [maxTaps][NR]int32
		for t := 0; t < n; t += NR {
			strip := unsafe.Slice((*uint32)(unsafe.Pointer(&dst[t*4*k4])), NR*k4)
			qTapOffsets(&tab, g, j0+t, min(NR, n-t), c4)
			gatherQuads(strip, xc, &tab, taps, q, 4, fill)
		}
		return
	}
	src := unsafe.Slice((*uint32)(unsafe.Pointer(unsafe.SliceData(xc))), len(xc)/4)
	for t := 0; t < n; t += NR {
		strip := unsafe.Slice((*uint32)(unsafe.Pointer(&dst[t*4*k4])), NR*k4)
		cols := min(NR, n-t)
		for j := 0; j < cols; j++ {
			jj := j0 + t + j
			oh, ow := jj/g.OW, jj%g.OW
			ih0, iw0 := oh*g.SH-g.PT, ow*g.SW-g.PL
			p := 0
			for kh := 0; kh < g.KH; kh++ {
				ih := ih0 + kh*g.DH
				for kw := 0; kw < g.KW; kw++ {
					iw := iw0 + kw*g.DW
					d := strip[p*NR+j:]
					if uint(ih) < uint(g.H) && uint(iw) < uint(g.W) {
						s := src[(ih*g.W+iw)*q : (ih*g.W+iw)*q+q]
						for i, v := range s {
							d[i*NR] = v
						}
					} else {
						for i := 0; i < q; i++ {
							d[i*NR] = fill
						}
					}
					p += q
				}
			}
		}
	}
}

// qTapOffsets fills, for strip columns [0,cols) from output position j,
// the byte offset in a channels-last image (unit bytes per position) of
// every tap (kh,kw), or -1 in the padding and in columns [cols,NR).
func qTapOffsets(tab *[maxTaps][NR]int32, g *pack.Conv2D, j, cols, unit int) {
	var pix [NR]int32
	for c := range pix {
		pix[c] = -1
		if c < cols {
			pix[c] = int32(j + c)
		}
	}
	qTapOffsetsPix(tab, g, &pix, unit)
}

// qTapOffsetsPix is qTapOffsets for the strip's columns at output
// positions pix (oh·OW+ow; -1: an absent column, all taps -1).
func qTapOffsetsPix(tab *[maxTaps][NR]int32, g *pack.Conv2D, pix *[NR]int32, unit int) {
	taps := g.KH * g.KW
	var delta [maxTaps]int32 // tap offsets from the window's top left
	for kh := 0; kh < g.KH; kh++ {
		for kw := 0; kw < g.KW; kw++ {
			delta[kh*g.KW+kw] = int32((kh*g.DH*g.W + kw*g.DW) * unit)
		}
	}
	spanH, spanW := (g.KH-1)*g.DH, (g.KW-1)*g.DW
	for c, px := range pix {
		if px < 0 {
			for t := 0; t < taps; t++ {
				tab[t][c] = -1
			}
			continue
		}
		oh, ow := int(px)/g.OW, int(px)%g.OW
		ih0, iw0 := oh*g.SH-g.PT, ow*g.SW-g.PL
		if ih0 >= 0 && iw0 >= 0 && ih0+spanH < g.H && iw0+spanW < g.W { // the whole window inside
			base := int32((ih0*g.W + iw0) * unit)
			for t, d := range delta[:taps] {
				tab[t][c] = base + d
			}
			continue
		}
		t := 0
		for kh := 0; kh < g.KH; kh++ {
			ih := ih0 + kh*g.DH
			for kw := 0; kw < g.KW; kw++ {
				iw := iw0 + kw*g.DW
				if uint(ih) < uint(g.H) && uint(iw) < uint(g.W) {
					tab[t][c] = int32((ih*g.W + iw) * unit)
				} else {
					tab[t][c] = -1
				}
				t++
			}
		}
	}
}

// Quad planes: the channels-last order's words stored quad-major, each
// quad of channels a plane of HW32 (the positions rounded up to NR) 32-bit
// words: word (i, p) holds channels 4i..4i+3 at position p. Built with the
// pointwise packer (one quad at a time its strips are contiguous), and read
// by the same gathers as channels-last images with a quad step of a plane.

// QuadPlaneWords is the words per quad plane of an h×w image.
func QuadPlaneWords(h, w int) int { return (h*w + NR - 1) / NR * NR }

// ToQuadPlanes writes group grp of one image of 8-bit codes x (C×H×W) as
// Cg4/4 quad planes (QuadPlaneWords words each), u = code^flip, padded
// channels = pad.
func ToQuadPlanes(dst []byte, x []byte, g *pack.Conv2D, grp int, flip, pad byte) {
	ToQuadPlanesRange(dst, x, g, grp, flip, pad, 0, Cg4(g.C/g.Group)/4)
}

// ToQuadPlanesRange is ToQuadPlanes for quad planes [q0, q1) only (dst is
// still the whole group image), so that several threads can share one
// image.
func ToQuadPlanesRange(dst []byte, x []byte, g *pack.Conv2D, grp int, flip, pad byte, q0, q1 int) {
	cg := g.C / g.Group
	hw := g.H * g.W
	hw32 := QuadPlaneWords(g.H, g.W)
	q := Cg4(cg) / 4
	dst = dst[:q*hw32*4]
	src := x[grp*cg*hw : (grp+1)*cg*hw]
	full := cg / 4
	for i := q0; i < min(full, q1); i++ {
		QPackPointwise(dst[i*hw32*4:(i+1)*hw32*4], src[4*i*hw:], hw, 4, 0, hw, flip)
	}
	if full == q || q1 <= full {
		return
	}
	words := unsafe.Slice((*uint32)(unsafe.Pointer(&dst[full*hw32*4])), hw32)
	for p := range words { // the last quad: cg%4 real channels, then pad
		var v uint32
		for c := 0; c < 4; c++ {
			b := pad
			if 4*full+c < cg {
				b = src[(4*full+c)*hw+min(p, hw-1)] ^ flip
			}
			v |= uint32(b) << (8 * c)
		}
		words[p] = v
	}
}

// QIm2colQuadPlanes packs columns [j0, j0+n) of the (kh, kw, c)-ordered
// im2col matrix of one group image in quad planes (ToQuadPlanes) in
// NR-column strips of quads, pad in every byte of padding taps.
func QIm2colQuadPlanes(dst []uint8, xq []byte, g *pack.Conv2D, j0, n int, pad byte) {
	q := Cg4(g.C/g.Group) / 4
	taps := g.KH * g.KW
	k4 := taps * q
	fill := uint32(pad) * 0x01010101
	step := QuadPlaneWords(g.H, g.W) * 4
	if g.SW == 1 && g.DW == 1 {
		// stride 1: a run of consecutive output columns under one tap is
		// a run of consecutive words of each quad plane (fill outside)
		words := unsafe.Slice((*uint32)(unsafe.Pointer(unsafe.SliceData(xq))), q*step/4)
		for t := 0; t < n; t += NR {
			strip := unsafe.Slice((*uint32)(unsafe.Pointer(&dst[t*4*k4])), NR*k4)
			cols := min(NR, n-t)
			for at := 0; at < cols; {
				jj := j0 + t + at
				oh, ow := jj/g.OW, jj%g.OW
				run := min(cols-at, g.OW-ow)
				for kh := 0; kh < g.KH; kh++ {
					ih := oh*g.SH - g.PT + kh*g.DH
					for kw := 0; kw < g.KW; kw++ {
						rows := strip[(kh*g.KW+kw)*q*NR:]
						iw0 := ow - g.PL + kw
						lo, hi := max(0, -iw0), min(run, g.W-iw0)
						if uint(ih) >= uint(g.H) || hi <= lo {
							lo, hi = 0, 0 // the whole run is padding
						}
						var src []uint32
						if hi > lo {
							src = words[ih*g.W+iw0+lo:]
						}
						copyQuadWords(rows[at:], src, lo, hi, run, q, step, fill)
					}
				}
				at += run
			}
		}
		return
	}
	var tab [maxTaps][NR]int32
	for t := 0; t < n; t += NR {
		strip := unsafe.Slice((*uint32)(unsafe.Pointer(&dst[t*4*k4])), NR*k4)
		qTapOffsets(&tab, g, j0+t, min(NR, n-t), 4)
		gatherQuads(strip, xq[:q*step], &tab, taps, q, step, fill)
	}
}
