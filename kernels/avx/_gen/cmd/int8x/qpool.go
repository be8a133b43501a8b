package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// Flags and field offsets of QEpi (../../../qgemm.go, as _gen/qgemm.go).
const (
	qBias     = 1
	qClamp    = 4
	qUnsigned = 32

	offCorr, offMult, offBias       = 0, 8, 16
	offLo, offHi, offYScale, offQLo = 32, 36, 40, 44
	offQHi, offYZero, offFlags      = 48, 52, 56

	poolGroup = 8 // pooled outputs per 32-column strip
	poolMR    = 8 // rows per tile
)

// qgemmPool is the 8×32 VNNI micro-kernel of a conv with a fused 2×2 max
// pool (qgemmPoolGeneric is its reference loop), over the strips of np
// pooled outputs, one pooled group (8) per 32-column strip: the k loop is
// qgemm8x32VNNI's (u8 activations × s8 weights broadcast, VPDPBUSD into 16
// zmm); column f·8+j of a strip is window member f of pooled output j, so
// a row's pooled values are the maximum of its two zmm accumulators
// (members 0,1 vs 2,3) and then of their 256-bit halves. kilnq's epilogue
// (per-row correction, convert, multiplier, bias, clamp, divide by
// y_scale, saturate with NaN to the low bound, round half to even, zero
// point, narrow) runs on those 8 lanes in ymm registers, and each row's
// codes (8, or what is left of np) are stored with a byte mask. The pooled
// outputs may run over several images: rem are left in the first one, phw
// in each next one, whose outputs are jump bytes further on (a group's
// lanes past the boundary are stored by a second masked store).
func qgemmPool(name string, shift bool) {
	sig := "func(k4 int, a *int8, b *uint8, out *byte, ldo int, mr, np int, q *int64, rem, phw, jump int)"
	if shift {
		// b: shift planes (QPoolShift); offs: each step's offset of its
		// first phase's row; the phases at +0, +rb, +rbRow, +rbRow+rb
		sig = "func(k4 int, a *int8, b *uint8, out *byte, ldo int, mr, np int, q *int64, rem, phw, jump int, offs *int32, rb, rbRow int)"
	}
	TEXT(name, NOSPLIT, sig)
	Pragma("noescape")
	twin := "qgemmPoolGeneric"
	if shift {
		twin = "qgemmPoolShiftGeneric"
	}
	Doc(name + " is the AVX-512 VNNI twin of " + twin + ".")
	l := func(s string) LabelRef { return LabelRef(s + "_" + name) }
	lab := func(s string) { Label(s + "_" + name) }
	k4 := Load(Param("k4"), reg.R15)
	a0 := Load(Param("a"), reg.R10)
	b := Load(Param("b"), reg.RDI)
	outg := Load(Param("out"), reg.R11) // the group's first output
	np := Load(Param("np"), reg.R9)     // pooled outputs left
	q := Load(Param("q"), reg.RBX)
	k, a, out := reg.RCX, reg.RSI, reg.RDX
	rows, ones, t := reg.RAX, reg.R14, reg.R13
	lo, hi, qlo, qhi, ys, yz := zmm(22).AsY(), zmm(23).AsY(), zmm(24).AsY(), zmm(25).AsY(), zmm(26).AsY(), zmm(27).AsY()
	acc := make([]reg.VecPhysical, 2*poolMR)
	for i := range acc {
		acc[i] = zmm(i)
	}
	b0, b1 := zmm(16), zmm(17)
	TESTQ(np, np)
	JLE(l("done"))
	lab("group")
	for i := range acc {
		VPXORD(acc[i], acc[i], acc[i])
	}
	MOVQ(a0, a)
	MOVQ(k4, k)
	if shift {
		Load(Param("offs"), t)
		Load(Param("rb"), reg.R12)
		Load(Param("rbRow"), reg.R8)
		LEAQ(Mem{Base: reg.R8, Index: reg.R12, Scale: 1}, rows) // rbRow + rb
	}
	TESTQ(k, k)
	JEQ(l("epilogue"))
	lab("loop")
	if shift {
		p := ones
		MOVLQSX(Mem{Base: t}, p)
		ADDQ(b, p)
		VMOVDQU32(Mem{Base: p}, b0.AsY())
		VINSERTI64X4(U8(1), Mem{Base: p, Index: reg.R12, Scale: 1}, b0, b0)
		VMOVDQU32(Mem{Base: p, Index: reg.R8, Scale: 1}, b1.AsY())
		VINSERTI64X4(U8(1), Mem{Base: p, Index: rows, Scale: 1}, b1, b1)
		ADDQ(U8(4), t)
	} else {
		VMOVDQU32(Mem{Base: b}, b0)
		VMOVDQU32(Mem{Base: b, Disp: 64}, b1)
	}
	for i := 0; i < poolMR; i++ {
		t := zmm(18 + i)
		VPBROADCASTD(Mem{Base: a, Disp: 4 * i}, t)
		raw("VPDPBUSD", t, b0, acc[2*i])
		raw("VPDPBUSD", t, b1, acc[2*i+1])
	}
	ADDQ(U8(4*poolMR), a)
	if !shift {
		ADDQ(U32(4*4*poolGroup), b)
	}
	DECQ(k)
	JNE(l("loop"))
	if shift {
		ADDQ(U8(4*poolGroup), b) // the next group: 8 words on in every plane row
	}

	lab("epilogue")
	// the row constants (the loop used 18–25 for its broadcasts)
	VBROADCASTSS(Mem{Base: q, Disp: offLo}, zmm(22))
	VBROADCASTSS(Mem{Base: q, Disp: offHi}, zmm(23))
	VBROADCASTSS(Mem{Base: q, Disp: offQLo}, zmm(24))
	VBROADCASTSS(Mem{Base: q, Disp: offQHi}, zmm(25))
	VBROADCASTSS(Mem{Base: q, Disp: offYScale}, zmm(26))
	VPBROADCASTD(Mem{Base: q, Disp: offYZero}, zmm(27))
	_, _, _, _, _, _ = lo, hi, qlo, qhi, ys, yz
	// this group's codes: n = min(np, 8) lanes, [0, min(rem, n)) in this
	// image (K1), [rem, n) in the next (K3)
	MOVQ(I32(-1), ones)
	MOVQ(U32(poolGroup), t)
	CMPQ(np, t)
	CMOVQLT(np, t)
	BZHIQ(t, ones, reg.R12)
	Load(Param("rem"), reg.R8)
	BZHIQ(reg.R8, ones, ones)
	ANDNQ(reg.R12, ones, t) // lanes [rem, n)
	KMOVW(t.As32(), reg.K3)
	ANDQ(reg.R12, ones)
	KMOVW(ones.As32(), reg.K1)
	Load(Param("jump"), ones)
	MOVQ(outg, out)
	corr, mult, bias, flags, ldo := reg.R12, reg.R8, reg.RSI, reg.RCX, reg.R13
	MOVQ(Mem{Base: q, Disp: offCorr}, corr)
	MOVQ(Mem{Base: q, Disp: offMult}, mult)
	MOVQ(Mem{Base: q, Disp: offBias}, bias)
	MOVQ(Mem{Base: q, Disp: offFlags}, flags)
	Load(Param("ldo"), ldo)
	Load(Param("mr"), rows)
	// 8 rows with bias and clamp (QGemmPool's calls): branch-free, four rows
	// interleaved; one or two stores per row
	CMPQ(rows, U8(poolMR))
	JNE(l("slow"))
	MOVQ(flags, rows) // (mr is reloaded on the slow path)
	ANDQ(U32(qBias|qClamp), rows)
	CMPQ(rows, U32(qBias|qClamp))
	JNE(l("slow"))
	KORTESTW(reg.K3, reg.K3)
	JNZ(l("fast2"))
	poolEpilogue(name, acc, corr, mult, bias, out, ldo, ones, false)
	JMP(l("next"))
	lab("fast2")
	poolEpilogue(name, acc, corr, mult, bias, out, ldo, ones, true)
	JMP(l("next"))
	lab("slow")
	Load(Param("mr"), rows)
	tz, u := zmm(28), zmm(29)
	x, uy, ux := tz.AsY(), u.AsY(), u.AsX()
	for i := 0; i < poolMR; i++ {
		li := func(s string) LabelRef { return l(fmt.Sprintf("%s%d", s, i)) }
		labi := func(s string) { lab(fmt.Sprintf("%s%d", s, i)) }
		CMPQ(rows, U8(i))
		JLE(l("next"))
		VPMAXSD(acc[2*i+1], acc[2*i], tz)
		VEXTRACTI64X4(U8(1), tz, uy)
		VPMAXSD(uy, x, x)
		VPBROADCASTD(Mem{Base: corr, Disp: 4 * i}, uy)
		VPSUBD(uy, x, x)
		VCVTDQ2PS(x, x)
		VBROADCASTSS(Mem{Base: mult, Disp: 4 * i}, uy)
		VMULPS(uy, x, x)
		TESTQ(U32(qBias), flags)
		JEQ(li("nobias"))
		VBROADCASTSS(Mem{Base: bias, Disp: 4 * i}, uy)
		VADDPS(uy, x, x)
		labi("nobias")
		TESTQ(U32(qClamp), flags)
		JEQ(li("noclamp"))
		VMAXPS(x, lo, x) // qgemm8x32VNNI's operand order: NaN stays NaN
		VMINPS(x, hi, x)
		labi("noclamp")
		VDIVPS(ys, x, x)
		// NaN becomes the low bound: VMAXPS returns its last (Intel) source on NaN.
		VMAXPS(qlo, x, x)
		VMINPS(qhi, x, x)
		VCVTPS2DQ(x, x) // MXCSR's round half to even
		VPADDD(yz, x, x)
		TESTQ(U32(qUnsigned), flags)
		JNE(li("u8"))
		VPMOVSDB(x, ux)
		JMP(li("store"))
		labi("u8")
		VPMOVUSDB(x, ux)
		labi("store")
		VMOVDQU8(ux, reg.K1, Mem{Base: out})
		VMOVDQU8(ux, reg.K3, Mem{Base: out, Index: ones, Scale: 1})
		ADDQ(ldo, out)
	}
	lab("next")
	ADDQ(U8(poolGroup), outg)
	Load(Param("rem"), t)
	SUBQ(U8(poolGroup), t)
	JG(l("same"))
	Load(Param("phw"), reg.R12)
	ADDQ(reg.R12, t)
	ADDQ(ones, outg) // the next image
	lab("same")
	Store(t, Param("rem"))
	SUBQ(U8(poolGroup), np)
	JG(l("group"))
	lab("done")
	VZEROUPPER()
	RET()
}

// qpoolPack packs the strips of a pooled conv from a plan
// (qpoolPackGeneric is the reference loop): per segment (column c, n ≤ 8
// columns, source byte offset, bytes to read) one masked load of the
// segment's bytes per kernel row (rowOff) and quad (qstep apart), one VPERMB
// that picks the n words (idx: a word every stride bytes) and one masked
// store of n words into the strip row.
func qpoolPack() {
	name := "qpoolPackVBMI"
	TEXT(name, NOSPLIT, "func(dst *uint32, src *byte, segs *int32, nseg, rows int, rowOff *int32, q, qstep int, idx *byte)")
	Pragma("noescape")
	Doc(name + " is the AVX-512 VBMI twin of qpoolPackGeneric.")
	l := func(s string) LabelRef { return LabelRef(s + "_" + name) }
	lab := func(s string) { Label(s + "_" + name) }
	dst := Load(Param("dst"), reg.RDI)
	src := Load(Param("src"), reg.RSI)
	segs := Load(Param("segs"), reg.R8)
	nseg := Load(Param("nseg"), reg.R9)
	rows := Load(Param("rows"), reg.R10)
	rowOff := Load(Param("rowOff"), reg.R11)
	q := Load(Param("q"), reg.R12)
	qstep := Load(Param("qstep"), reg.R13)
	idx := Load(Param("idx"), reg.RAX)
	VMOVDQU64(Mem{Base: idx}, reg.Z1)
	ones, t := reg.R15, reg.RDX
	d, s, r, i := reg.RAX, reg.RBX, reg.RCX, reg.R14
	MOVQ(I32(-1), ones)
	TESTQ(nseg, nseg)
	JLE(l("done"))
	TESTQ(rows, rows)
	JLE(l("done"))
	TESTQ(q, q)
	JLE(l("done"))
	lab("seg")
	MOVLQSX(Mem{Base: segs}, t) // column
	LEAQ(Mem{Base: dst, Index: t, Scale: 4}, d)
	MOVLQSX(Mem{Base: segs, Disp: 4}, t) // words
	BZHIQ(t, ones, t)
	KMOVW(t.As32(), reg.K2)
	MOVLQSX(Mem{Base: segs, Disp: 8}, t) // source offset
	LEAQ(Mem{Base: src, Index: t, Scale: 1}, s)
	MOVLQSX(Mem{Base: segs, Disp: 12}, t) // bytes
	BZHIQ(t, ones, t)
	KMOVQ(t, reg.K1)
	XORQ(r, r)
	lab("row")
	MOVLQSX(Mem{Base: rowOff, Index: r, Scale: 4}, t)
	ADDQ(s, t) // the row's first quad
	MOVQ(q, i)
	lab("quad")
	VMOVDQU8_Z(Mem{Base: t}, reg.K1, reg.Z0)
	VPERMB(reg.Z0, reg.Z1, reg.Z2)
	VMOVDQU32(reg.Y2, reg.K2, Mem{Base: d}) // n ≤ 8 words: a ymm store
	ADDQ(qstep, t)
	ADDQ(U32(4*32), d)
	DECQ(i)
	JNE(l("quad"))
	INCQ(r)
	CMPQ(r, rows)
	JLT(l("row"))
	ADDQ(U8(16), segs)
	DECQ(nseg)
	JNE(l("seg"))
	lab("done")
	VZEROUPPER()
	RET()
}

// poolEpilogue is qgemmPool's epilogue for all 8 rows with bias and clamp,
// two rows per zmm (row r's 8 pooled values in the low half, row r+1's in
// the high half: the maximum of the two accumulators, then of the 256-bit
// halves across the pair with VSHUFI64X2) and two pairs' instructions
// interleaved; the rows' constants are picked from the strip's 8 with
// VPERMD. Codes narrowed by truncation (VPMOVDB: the clamps already bound
// them to the code range) and stored under K1 (row r) and K4 = K1<<8 (row
// r+1, 8 bytes back), and under K3/K5 jump bytes on when two is set.
func poolEpilogue(name string, acc []reg.VecPhysical, corr, mult, bias, out, ldo, jump reg.Register, two bool) {
	lo, hi, qlo, qhi, ys, yz := zmm(22), zmm(23), zmm(24), zmm(25), zmm(26), zmm(27)
	ct, mt, bt := zmm(16), zmm(17), zmm(18)
	VMOVDQU32(Mem{Base: corr}, ct.AsY()) // 8 rows' constants (upper halves zeroed)
	VMOVDQU32(Mem{Base: mult}, mt.AsY())
	VMOVDQU32(Mem{Base: bias}, bt.AsY())
	KSHIFTLW(U8(8), reg.K1, reg.K4)
	if two {
		KSHIFTLW(U8(8), reg.K3, reg.K5)
	}
	idx := GLOBL(fmt.Sprintf("poolpairidx%v_%s", two, name), RODATA|NOPTR)
	for p := 0; p < 4; p++ { // pair p: lanes 0-7 pick row 2p, lanes 8-15 row 2p+1
		for l := 0; l < 16; l++ {
			DATA(64*p+4*l, U32(2*p+l/8))
		}
	}
	regs := [2][3]reg.VecPhysical{{zmm(19), zmm(20), zmm(21)}, {zmm(28), zmm(29), zmm(30)}}
	for p0 := 0; p0 < 4; p0 += 2 {
		each := func(f func(j, p int, t0, t1, u reg.VecPhysical)) {
			for j := range 2 {
				f(j, p0+j, regs[j][0], regs[j][1], regs[j][2])
			}
		}
		each(func(j, p int, t0, t1, u reg.VecPhysical) { VPMAXSD(acc[4*p+1], acc[4*p], t0) })
		each(func(j, p int, t0, t1, u reg.VecPhysical) { VPMAXSD(acc[4*p+3], acc[4*p+2], t1) })
		each(func(j, p int, t0, t1, u reg.VecPhysical) { VSHUFI64X2(U8(0x44), t1, t0, u) }) // low halves of the pair
		each(func(j, p int, t0, t1, u reg.VecPhysical) { VSHUFI64X2(U8(0xEE), t1, t0, t1) })
		each(func(j, p int, t0, t1, u reg.VecPhysical) { VPMAXSD(t1, u, u) })
		each(func(j, p int, t0, t1, u reg.VecPhysical) { VMOVDQU32(idx.Offset(64*p), t0) })
		each(func(j, p int, t0, t1, u reg.VecPhysical) { VPERMD(ct, t0, t1) })
		each(func(j, p int, t0, t1, u reg.VecPhysical) { VPSUBD(t1, u, u) })
		each(func(j, p int, t0, t1, u reg.VecPhysical) { VCVTDQ2PS(u, u) })
		each(func(j, p int, t0, t1, u reg.VecPhysical) { VPERMD(mt, t0, t1) })
		each(func(j, p int, t0, t1, u reg.VecPhysical) { VMULPS(t1, u, u) })
		each(func(j, p int, t0, t1, u reg.VecPhysical) { VPERMD(bt, t0, t1) })
		each(func(j, p int, t0, t1, u reg.VecPhysical) { VADDPS(t1, u, u) })
		each(func(j, p int, t0, t1, u reg.VecPhysical) { VMAXPS(u, lo, u) }) // qgemm8x32VNNI's operand order: NaN stays NaN
		each(func(j, p int, t0, t1, u reg.VecPhysical) { VMINPS(u, hi, u) })
		each(func(j, p int, t0, t1, u reg.VecPhysical) { VDIVPS(ys, u, u) })
		each(func(j, p int, t0, t1, u reg.VecPhysical) { VMAXPS(qlo, u, u) }) // NaN becomes the low bound
		each(func(j, p int, t0, t1, u reg.VecPhysical) { VMINPS(qhi, u, u) })
		each(func(j, p int, t0, t1, u reg.VecPhysical) { VCVTPS2DQ(u, u) })
		each(func(j, p int, t0, t1, u reg.VecPhysical) { VPADDD(yz, u, u) })
		each(func(j, p int, t0, t1, u reg.VecPhysical) { VPMOVDB(u, t1.AsX()) })
		each(func(j, p int, t0, t1, u reg.VecPhysical) {
			x := t1.AsX()
			VMOVDQU8(x, reg.K1, Mem{Base: out})
			if two {
				VMOVDQU8(x, reg.K3, Mem{Base: out, Index: jump, Scale: 1})
			}
			ADDQ(ldo, out)
			VMOVDQU8(x, reg.K4, Mem{Base: out, Disp: -8})
			if two {
				VMOVDQU8(x, reg.K5, Mem{Base: out, Index: jump, Scale: 1, Disp: -8})
			}
			ADDQ(ldo, out)
		})
	}
}

// qshiftPack builds the shift planes of a pooled conv's band
// (qshiftPackGeneric is the reference loop): per segment (destination
// word, n ≤ 8 words, source byte offset, bytes to read), shift s and quad
// i, one masked load of the segment's bytes at src + off + srcShift[s] +
// i·qstep, one VPERMB picking a word every 8 bytes, one masked store of n
// words at dst + 4·word + s·dstRow + i·dstQuad.
func qshiftPack() {
	name := "qshiftPackVBMI"
	TEXT(name, NOSPLIT, "func(dst *uint32, src *byte, segs *int32, nseg, shifts int, srcShift *int32, q, qstep, dstRow, dstQuad int, idx *byte)")
	Pragma("noescape")
	Doc(name + " is the AVX-512 VBMI twin of qshiftPackGeneric.")
	l := func(s string) LabelRef { return LabelRef(s + "_" + name) }
	lab := func(s string) { Label(s + "_" + name) }
	dst := Load(Param("dst"), reg.RDI)
	src := Load(Param("src"), reg.RSI)
	segs := Load(Param("segs"), reg.R8)
	nseg := Load(Param("nseg"), reg.R9)
	shifts := Load(Param("shifts"), reg.R10)
	srcShift := Load(Param("srcShift"), reg.R11)
	q := Load(Param("q"), reg.R12)
	qstep := Load(Param("qstep"), reg.R13)
	idx := Load(Param("idx"), reg.RAX)
	VMOVDQU64(Mem{Base: idx}, reg.Z1)
	ones, t := reg.R15, reg.RDX
	d, sb, r, i := reg.RAX, reg.RBX, reg.RCX, reg.R14
	MOVQ(I32(-1), ones)
	TESTQ(nseg, nseg)
	JLE(l("done"))
	TESTQ(shifts, shifts)
	JLE(l("done"))
	TESTQ(q, q)
	JLE(l("done"))
	lab("seg")
	MOVLQSX(Mem{Base: segs, Disp: 4}, t) // words
	BZHIQ(t, ones, t)
	KMOVW(t.As32(), reg.K2)
	MOVLQSX(Mem{Base: segs, Disp: 12}, t) // bytes
	BZHIQ(t, ones, t)
	KMOVQ(t, reg.K1)
	XORQ(r, r)
	lab("shift")
	// d: the segment's words in shift row r (quad 0); sb: its source
	MOVLQSX(Mem{Base: segs}, d)
	LEAQ(Mem{Base: dst, Index: d, Scale: 4}, d)
	MOVQ(r, t)
	IMULQ(NewParamAddr("dstRow", 64), t)
	ADDQ(t, d)
	MOVLQSX(Mem{Base: segs, Disp: 8}, sb)
	ADDQ(src, sb)
	MOVLQSX(Mem{Base: srcShift, Index: r, Scale: 4}, t)
	ADDQ(t, sb)
	MOVQ(q, i)
	lab("quad")
	VMOVDQU8_Z(Mem{Base: sb}, reg.K1, reg.Z0)
	VPERMB(reg.Z0, reg.Z1, reg.Z2)
	VMOVDQU32(reg.Y2, reg.K2, Mem{Base: d})
	ADDQ(qstep, sb)
	ADDQ(NewParamAddr("dstQuad", 72), d)
	DECQ(i)
	JNE(l("quad"))
	INCQ(r)
	CMPQ(r, shifts)
	JLT(l("shift"))
	ADDQ(U8(16), segs)
	DECQ(nseg)
	JNE(l("seg"))
	lab("done")
	VZEROUPPER()
	RET()
}
