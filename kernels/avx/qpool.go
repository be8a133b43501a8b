package avx

import (
	"math"
	"unsafe"

	"github.com/kilnml/kiln/kernels/pack"
)

// INT8 conv with a fused 2×2/2 max pool, pooled in the micro-kernel's
// registers. The im2col columns of a strip are one pooled group: PoolGroup
// pooled outputs, their four window members in phase order (top left, top
// right, bottom left, bottom right; column f·PoolGroup+j is member f of
// pooled output j). The micro-kernel takes the maximum of the four int32
// accumulators of each pooled output and runs kilnq's epilogue on that
// alone: the epilogue (subtract the correction, convert, scale by a
// positive multiplier, add the bias, clamp, divide by y_scale, saturate,
// round, add the zero point) is a non-decreasing function of the
// accumulator, so max(epilogue(a_i)) = epilogue(max a_i) bit for bit, and
// the conv outputs the pool drops are neither requantized nor stored. The
// raw accumulators Σ u·w cannot wrap (|Σ| ≤ K·255·128 < 2³¹ under the
// drivers' depth bound), so their maximum is the maximum of the corrected
// sums. Only code outputs (y_scale > 0) without a Go activation, per-row
// channel constants and multipliers in (0, +Inf) qualify (QPoolable); the
// drivers keep the tile path for the rest.

// PoolGroup is the pooled outputs of one NR-column strip.
const PoolGroup = NR / 4

// zeroPoolBias is the bias of a pooled layer without one.
var zeroPoolBias [MR]float32

// QPoolable reports whether a layer's epilogue is monotone in the
// accumulator the way QGemmPool needs.
func QPoolable(l *QLayer) bool {
	if !l.Quant || l.Act != nil || l.Col || l.RCorr != nil || l.YScale <= 0 {
		return false
	}
	for _, m := range l.Mult {
		if !(m > 0 && m <= math.MaxFloat32) {
			return false
		}
	}
	return true
}

// PoolGroupPixels fills pix with the conv output positions (oh·ow+ow) of
// the strip whose pooled outputs are p0, p0+1, ... (row-major over the
// pooled plane, pw pooled columns, ow conv columns): column f·PoolGroup+j
// is member f of pooled output p0+j; -1 past the np valid ones.
func PoolGroupPixels(pix *[NR]int32, pw, ow, p0, np int) {
	for j := range PoolGroup {
		if j >= np {
			for f := range 4 {
				pix[f*PoolGroup+j] = -1
			}
			continue
		}
		pr, pc := (p0+j)/pw, (p0+j)%pw
		for f := range 4 {
			pix[f*PoolGroup+j] = int32((2*pr+f/2)*ow + 2*pc + f%2)
		}
	}
}

// QGemmPool computes the pooled codes of np pooled outputs from p0 on:
// packed weights ap (rows [0,m) of MR-row strips, depth k, channel
// constants from r0) times bp, strips of pooled groups (QPoolPlan.Pack,
// QIm2colQuadPlanesPooled or QIm2colRowsPooled). The pooled planes are
// o.Ld codes; pooled output P of row i, image b = (p0+P)/o.Ld, p =
// (p0+P)%o.Ld, goes to o.Q[(r0+i)·o.Ld + b·(o.Ld+o.Jump) + p]: the outputs
// may run into the next images (o.Jump: the other channels of an image;
// planes of at least PoolGroup codes then). The layer must be QPoolable.
func QGemmPool(k int, ap []int8, m int, bp []uint8, np int, o *QOut, l *QLayer, r0, p0 int) {
	qgemmPool(k, ap, m, bp, np, o, l, r0, p0, nil)
}

// qgemmPool is QGemmPool, or QGemmPoolShift when sh is set (bp: shift planes).
func qgemmPool(k int, ap []int8, m int, bp []uint8, np int, o *QOut, l *QLayer, r0, p0 int, sh *QPoolShift) {
	if l.MScale > 0 {
		panic("avx.QGemmPool: the pooled kernels have no mid quantization (QLayer.MScale)")
	}
	k4 := K4(k)
	// Bias and clamp always (zeros, ±Inf when the layer has none: the codes
	// are the same, −0 and +0 both round to the zero point), so that the
	// micro-kernel takes its branch-free epilogue.
	q := QEpi{Flags: QQuant | QClamp | QBias, Lo: l.Lo, Hi: l.Hi, YScale: l.YScale, YZero: l.YZero, Bias: &zeroPoolBias[0]}
	if !l.Clamp {
		q.Lo, q.Hi = float32(math.Inf(-1)), float32(math.Inf(1))
	}
	lo, hi := float32(-128), float32(127)
	if l.Unsigned {
		q.Flags |= QUnsigned
		lo, hi = 0, 255
	}
	q.QLo, q.QHi = lo-float32(l.YZero), hi-float32(l.YZero)
	ld, rem := o.Ld, o.Ld-p0%o.Ld
	last := p0 + np - 1 // the last output's offset from the first plane's start
	lastAt := last/ld*(ld+o.Jump) + last%ld
	for s := 0; s < m; s += MR {
		mr := min(MR, m-s)
		_, _ = l.Corr[r0+s+mr-1], l.Mult[r0+s+mr-1]
		q.Corr, q.Mult = &l.Corr[r0+s], &l.Mult[r0+s]
		if l.Bias != nil {
			_ = l.Bias[r0+s+mr-1]
			q.Bias = &l.Bias[r0+s]
		}
		off := (r0+s)*ld + p0%ld
		_ = o.Q[(r0+s+mr-1)*ld+lastAt]
		as := ap[s*4*k4 : (s+MR)*4*k4]
		if sh != nil {
			qmicroPoolShift(k4, unsafe.SliceData(as), unsafe.SliceData(bp), &o.Q[off], ld, mr, np, (*int64)(unsafe.Pointer(&q)), rem, ld, o.Jump,
				unsafe.SliceData(sh.offs), 4*sh.rowWords, 4*sh.rowWords*(sh.g.KW+1))
			continue
		}
		QMicroPool(k4, as, bp, unsafe.Pointer(&o.Q[off]), ld, mr, np, &q, rem, ld, o.Jump)
	}
}

// QMicroPool computes the pooled tiles of np pooled outputs: a packed
// weight strip (k4 steps) times the strips of ⌈np/PoolGroup⌉ pooled groups
// in b, the codes of row i stored at out + i·ldo + (0..np), where the
// outputs from rem on are jump bytes further on, and so on every phw
// outputs (phw ≥ PoolGroup when np > rem). q's flags: QQuant (required),
// QBias, QClamp, QUnsigned; channel constants per row.
func QMicroPool(k4 int, a []int8, b []uint8, out unsafe.Pointer, ldo, mr, np int, q *QEpi, rem, phw, jump int) {
	groups := (np + PoolGroup - 1) / PoolGroup
	if k4 < 0 || mr < 1 || mr > MR || np < 1 || len(a) < k4*4*MR || len(b) < groups*k4*4*NR ||
		q.Flags&(QQuant|QCol|QResid) != QQuant || rem < 1 || np > rem && phw < PoolGroup {
		panic("avx.QMicroPool: bad tile")
	}
	var pa *int8
	var pb *uint8
	if k4 > 0 {
		pa, pb = unsafe.SliceData(a), unsafe.SliceData(b)
	}
	qmicroPool(k4, pa, pb, (*byte)(out), ldo, mr, np, (*int64)(unsafe.Pointer(q)), rem, phw, jump)
}

// qgemmPoolGeneric is the portable pooled micro-kernel, the reference loop:
// for each pooled group s (strip s of b, outputs P = PoolGroup·s + j < np),
//
//	acc[i][c] as qgemmGeneric's (all NR columns of the strip)
//	a = max_f acc[i][f·PoolGroup+j]
//	out[i*ldo + P + jump·(images crossed: P ≥ rem, rem+phw, ...)] = QEpi's code of a   (i < mr)
func qgemmPoolGeneric(k4 int, a *int8, b *uint8, out *byte, ldo, mr, np int, qp *int64, rem, phw, jump int) {
	q := (*QEpi)(unsafe.Pointer(qp))
	for s := 0; s*PoolGroup < np; s++ {
		var acc [MR * NR]int32
		if k4 > 0 {
			qaccTile(&acc, k4, a, (*uint8)(unsafe.Add(unsafe.Pointer(b), s*k4*4*NR)), mr, NR)
		}
		for j := 0; j < min(PoolGroup, np-s*PoolGroup); j++ {
			at := s*PoolGroup + j
			if at >= rem {
				at += (1 + (at-rem)/phw) * jump
			}
			for i := 0; i < mr; i++ {
				v := acc[i*NR+j]
				for f := 1; f < 4; f++ {
					v = max(v, acc[i*NR+f*PoolGroup+j])
				}
				*(*byte)(unsafe.Add(unsafe.Pointer(out), i*ldo+at)) = qEpiCode(q, qEpiFloat(q, v, i, 0))
			}
		}
	}
}

// QIm2colQuadPlanesPooled packs np pooled outputs from p0 (pooled groups,
// PoolGroupPixels' column order) of one group image in quad planes
// (ToQuadPlanes) in NR-column strips of quads, pad in every byte of
// padding taps. The conv output g.OH×g.OW is pooled to (OH/2)×(OW/2).
func QIm2colQuadPlanesPooled(dst []uint8, xq []byte, g *pack.Conv2D, p0, np int, pad byte) {
	q := Cg4(g.C/g.Group) / 4
	taps := g.KH * g.KW
	k4 := taps * q
	fill := uint32(pad) * 0x01010101
	step := QuadPlaneWords(g.H, g.W) * 4
	var tab [maxTaps][NR]int32
	var pix [NR]int32
	for t := 0; t < np; t += PoolGroup {
		strip := unsafe.Slice((*uint32)(unsafe.Pointer(&dst[t*4*4*k4])), NR*k4)
		PoolGroupPixels(&pix, g.OW/2, g.OW, p0+t, min(PoolGroup, np-t))
		qTapOffsetsPix(&tab, g, &pix, 4)
		gatherQuads(strip, xq[:q*step], &tab, taps, q, step, fill)
	}
}

// QIm2colRowsPooled packs np pooled outputs from p0 (pooled groups,
// PoolGroupPixels' column order) of the row-quad im2col matrix of one
// padded group image (QPadImage) in NR-column strips of quads. Columns of
// absent pooled outputs are left unwritten (their codes are not stored).
func QIm2colRowsPooled(dst []uint8, xp []byte, g *pack.Conv2D, p0, np int) {
	cg := g.C / g.Group
	ph, pw := QPadSize(g)
	q := KW4(g.KW) / 4
	rows := cg * g.KH
	k4 := rows * q
	xp = xp[:cg*ph*pw]
	if rows > maxTaps {
		panic("avx.QIm2colRowsPooled: too many kernel rows")
	}
	var rowOff [maxTaps]int32
	for r := range rows {
		rowOff[r] = int32(r/g.KH*ph*pw + r%g.KH*g.DH*pw)
	}
	opw := g.OW / 2
	var tab [maxTaps][NR]int32
	var pix [NR]int32
	for t := 0; t < np; t += PoolGroup {
		strip := unsafe.Slice((*uint32)(unsafe.Pointer(&dst[t*4*4*k4])), NR*k4)
		n := min(PoolGroup, np-t)
		if g.SW == 1 {
			// the pooled outputs of one pooled row, member f: conv columns
			// 2 apart, overlapping windows at stride 2 of one input row
			for at := 0; at < n; {
				p := p0 + t + at
				pr, pc := p/opw, p%opw
				run := min(n-at, opw-pc)
				for f := range 4 {
					o := (2*pr+f/2)*g.SH*pw + 2*pc + f%2
					c := f*PoolGroup + at
					for r, d := range rowOff[:rows] {
						for i := 0; i < q; i++ {
							s := (r*q + i) * NR
							slideQuads(strip[s+c:s+c+run], xp[o+int(d)+4*i:], run, 2)
						}
					}
				}
				at += run
			}
			continue
		}
		PoolGroupPixels(&pix, opw, g.OW, p0+t, n)
		for c, px := range pix {
			if px < 0 {
				for r := range rows {
					tab[r][c] = -1
				}
				continue
			}
			oh, ow := int(px)/g.OW, int(px)%g.OW
			o := int32(oh*g.SH*pw + ow*g.SW)
			for r, d := range rowOff[:rows] {
				tab[r][c] = o + d
			}
		}
		gatherQuads(strip, xp, &tab, rows, q, 4, 0)
	}
}
