package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/ir"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// Flags of the quantized epilogue (mirrored in ../qgemm.go).
const (
	qBias     = 1
	qResid    = 2
	qClamp    = 4
	qCol      = 8    // corrections, multipliers and bias per column (else per row)
	qQuant    = 16   // output codes (else float32)
	qUnsigned = 32   // uint8 codes (else int8)
	qRCorr    = 64   // with qCol: also subtract RCorr per row
	qZCode    = 128  // with qResid: the residual is 8-bit codes, float32(code − ZZero)·ZScale
	qZSigned  = 256  // with qZCode: int8 codes (else uint8)
	qRecip    = 512  // with qQuant: divide by Markstein's correction with YRecip
	qNaNLo    = 1024 // with qRecip: the clamp maps NaN to Lo, the lowest code's bound
	qMid      = 2048 // after the bias: y = DQ(Q(y)) with MScale (Markstein's quotient, rounded to an integer)
)

// Offsets of QEpi's fields (../qgemm.go).
const (
	offCorr, offMult, offBias, offResid  = 0, 8, 16, 24
	offLo, offHi, offYScale, offQLo      = 32, 36, 40, 44
	offQHi, offYZero, offFlags, offRCorr = 48, 52, 56, 64
	offZScale, offZZero, offYRecip       = 72, 76, 80
	offMScale, offMRecip, offMLo, offMHi = 84, 88, 92, 96
)

// qaPrefetch is how far ahead (bytes) the INT8 VNNI micro-kernels
// prefetch their packed A (PREFETCHT0 once per k step, as the FP32
// kernel's aPrefetch). At batch 1 A is a conv's packed int8 weights (8 rows
// × 4 bytes per step), read from DRAM once per inference: ResNet-50's
// ~25 MB of them exceed the caches. A prefetch never faults, so the
// addresses past the end of A (the last 4 KB of the last strip) are safe:
// at worst a line of something else, or nothing, is fetched. With qCol
// (weights in B) the kernels prefetch nothing ahead (see qgemmVNNI). 1
// and 8 KB ahead measured the same as 4 KB on ResNet-50's cold layers, 2 KB
// slower on two of them (BENCHMARKS.md, issue 7).
const qaPrefetch = 4096

func raw(op string, ops ...Op) {
	Instruction(&ir.Instruction{Opcode: op, Operands: ops, Inputs: ops[:len(ops)-1], Outputs: ops[len(ops)-1:]})
}

// qgemmVNNI emits an INT8 micro-kernel for tiles of 8 rows × cols columns:
// u8 activations (packed by k quads: 32 columns × 4 bytes per step)
// times s8 weights (8 rows × 4 bytes per step, broadcast) into int32 with
// VPDPBUSD, then the quantized epilogue of ops/kilnq in registers:
// subtract the zero-point correction, convert, scale, bias, residual,
// clamp, and either store float32 or requantize (divide, saturate, round
// half to even, add the zero point, narrow) and store codes; with qRecip
// the division is Markstein's correction with RN(1/y_scale), three
// FMA-unit operations, the same quotient (QEpi's QRecip). cols is 32
// (two zmm per row: qgemm8x32VNNI), 16 (one zmm) or 8 (one ymm): the
// narrow forms serve strips with at most that many columns, such as the
// tails 196 = 6·32 + 4 (14×14 outputs) or 49 = 32 + 16 + 1 (7×7), with one
// B load and 8 VPDPBUSD per step instead of 2 and 16; they read the same
// 32-column packed layout (b may point into a step's second half; the rest
// of each step is not read). Labels are prefixed by pfx and suffixed by sfx
// so that several forms share one file.
func qgemmVNNI(name string, cols int, pfx, sfx string) {
	nv := 1 // vectors per row
	if cols == 32 {
		nv = 2
	}
	v := func(r reg.VecPhysical) reg.VecPhysical { // the vector width: zmm, or ymm for 8 columns
		if cols == 8 {
			return r.AsY().(reg.VecPhysical)
		}
		return r
	}
	lbl := func(s string) string { return pfx + s + sfx }
	masks := []reg.OpmaskPhysical{reg.K1, reg.K2}
	TEXT(name, NOSPLIT, "func(k4 int, a *int8, b *uint8, out *byte, ldo int, mr, nr int, q *int64)")
	Pragma("noescape")
	if cols == 32 {
		Doc(name + " is the AVX-512 VNNI twin of qgemmGeneric.")
	} else {
		Doc(fmt.Sprintf("%s is the AVX-512 VNNI twin of qgemmGeneric for nr ≤ %d.", name, cols))
	}
	k := Load(Param("k4"), reg.RCX)
	a := Load(Param("a"), reg.RSI)
	b := Load(Param("b"), reg.RDI)
	nrr := Load(Param("nr"), reg.RAX)
	ones := reg.R9
	MOVQ(I32(-1), ones)
	BZHIQ(nrr, ones, ones)
	KMOVW(ones.As32(), reg.K1)
	SHRQ(U8(16), ones)
	KMOVW(ones.As32(), reg.K2)
	acc := make([]reg.VecPhysical, nv*mr)
	for i := range acc {
		acc[i] = v(zmm(i))
		VPXORD(acc[i], acc[i], acc[i])
	}
	bv := []reg.VecPhysical{v(zmm(16)), v(zmm(17))}[:nv]
	// The prefetch distance: qaPrefetch for a conv (A its weights), 0 (the
	// line the step loads anyway) with per-column constants (qCol: a
	// Gemm/MatMul whose weights are B, A its few activation rows, already in
	// L1), where prefetching 4 KB past the strip's A fetched unrelated lines
	// from DRAM next to the weights' stream (ResNet-50's classifier, 2048 →
	// 1000 at batch 1: 0.127 → 0.150 ms).
	pf := reg.R8
	qp := Load(Param("q"), reg.RBX)
	MOVQ(U32(qaPrefetch), pf)
	XORL(reg.R11L, reg.R11L)
	TESTQ(U32(qCol), Mem{Base: qp, Disp: offFlags})
	CMOVQNE(reg.R11, pf)
	TESTQ(k, k)
	JEQ(LabelRef(lbl("epilogue")))
	Label(lbl("loop"))
	PREFETCHT0(Mem{Base: a, Index: pf, Scale: 1})
	for h := range bv {
		VMOVDQU32_Z(Mem{Base: b, Disp: 64 * h}, masks[h], bv[h])
	}
	for i := 0; i < mr; i++ {
		t := v(zmm(18 + i))
		VPBROADCASTD(Mem{Base: a, Disp: 4 * i}, t)
		for h := range bv {
			raw("VPDPBUSD", t, bv[h], acc[nv*i+h])
		}
	}
	ADDQ(U8(4*mr), a)
	ADDQ(U32(4*nr), b)
	DECQ(k)
	JNE(LabelRef(lbl("loop")))

	Label(lbl("epilogue"))
	q := Load(Param("q"), reg.RBX)
	out := Load(Param("out"), reg.RDX)
	ldo := Load(Param("ldo"), reg.R10) // output row stride in bytes (set below)
	ldr := reg.R15                     // residual row stride in bytes
	MOVQ(ldo, ldr)
	rows := Load(Param("mr"), reg.R11)
	MOVQ(Mem{Base: q, Disp: offCorr}, reg.R12)
	MOVQ(Mem{Base: q, Disp: offMult}, reg.R8)
	MOVQ(Mem{Base: q, Disp: offBias}, reg.R14)
	MOVQ(Mem{Base: q, Disp: offResid}, reg.R13)
	MOVQ(Mem{Base: q, Disp: offRCorr}, reg.R9)
	flags := reg.RAX
	MOVQ(Mem{Base: q, Disp: offFlags}, flags)
	TESTQ(U32(qZCode), flags) // residual codes: one byte per element
	JNE(LabelRef(lbl("zbytes")))
	SHLQ(U8(2), ldr)
	Label(lbl("zbytes"))
	TESTQ(U32(qQuant), flags)
	JNE(LabelRef(lbl("bytes")))
	SHLQ(U8(2), ldo)
	Label(lbl("bytes"))
	lo, hi, qlo, qhi, yr, yz := v(zmm(22)), v(zmm(23)), v(zmm(24)), v(zmm(25)), v(zmm(26)), v(zmm(27))
	VBROADCASTSS(Mem{Base: q, Disp: offLo}, lo)
	VBROADCASTSS(Mem{Base: q, Disp: offHi}, hi)
	VBROADCASTSS(Mem{Base: q, Disp: offQLo}, qlo)
	VBROADCASTSS(Mem{Base: q, Disp: offQHi}, qhi)
	VBROADCASTSS(Mem{Base: q, Disp: offYRecip}, yr)
	VPBROADCASTD(Mem{Base: q, Disp: offYZero}, yz)
	ysm := Mem{Base: q, Disp: offYScale} // y_scale, broadcast from memory (all 32 registers are taken)
	zs, zz := v(zmm(30)), v(zmm(31))     // residual codes' scale and zero point
	VBROADCASTSS(Mem{Base: q, Disp: offZScale}, zs)
	VPBROADCASTD(Mem{Base: q, Disp: offZZero}, zz)
	// Per-column constants (qCol): correction, multiplier, bias per vector.
	cc := []reg.VecPhysical{v(zmm(16)), v(zmm(17))}[:nv]
	cm := []reg.VecPhysical{v(zmm(18)), v(zmm(19))}[:nv]
	cb := []reg.VecPhysical{v(zmm(20)), v(zmm(21))}[:nv]
	TESTQ(U32(qCol), flags)
	JEQ(LabelRef(lbl("rowmode")))
	for h := range cc {
		VMOVDQU32_Z(Mem{Base: reg.R12, Disp: 64 * h}, masks[h], cc[h])
	}
	for h := range cm {
		VMOVUPS_Z(Mem{Base: reg.R8, Disp: 64 * h}, masks[h], cm[h])
	}
	TESTQ(U32(qBias), flags)
	JEQ(LabelRef(lbl("rowmode")))
	for h := range cb {
		VMOVUPS_Z(Mem{Base: reg.R14, Disp: 64 * h}, masks[h], cb[h])
	}
	Label(lbl("rowmode"))
	tv := []reg.VecPhysical{v(zmm(28)), v(zmm(29))}[:nv]
	t0 := tv[0]
	for i := 0; i < mr; i++ {
		x := acc[nv*i : nv*i+nv]
		l := func(s string) string { return fmt.Sprintf("%s%s%d%s", pfx, s, i, sfx) }
		each := func(f func(h int, x reg.VecPhysical)) {
			for h, r := range x {
				f(h, r)
			}
		}
		CMPQ(rows, U8(i))
		JLE(LabelRef(lbl("done")))
		// per-row or per-column correction and multiplier
		TESTQ(U32(qCol), flags)
		JNE(LabelRef(l("col")))
		VPBROADCASTD(Mem{Base: reg.R12, Disp: 4 * i}, t0)
		each(func(_ int, r reg.VecPhysical) { VPSUBD(t0, r, r) })
		each(func(_ int, r reg.VecPhysical) { VCVTDQ2PS(r, r) })
		VBROADCASTSS(Mem{Base: reg.R8, Disp: 4 * i}, t0)
		each(func(_ int, r reg.VecPhysical) { VMULPS(t0, r, r) })
		TESTQ(U32(qBias), flags)
		JEQ(LabelRef(l("added")))
		VBROADCASTSS(Mem{Base: reg.R14, Disp: 4 * i}, t0)
		each(func(_ int, r reg.VecPhysical) { VADDPS(t0, r, r) })
		JMP(LabelRef(l("added")))
		Label(l("col"))
		each(func(h int, r reg.VecPhysical) { VPSUBD(cc[h], r, r) })
		TESTQ(U32(qRCorr), flags)
		JEQ(LabelRef(l("norcorr")))
		VPBROADCASTD(Mem{Base: reg.R9, Disp: 4 * i}, t0)
		each(func(_ int, r reg.VecPhysical) { VPSUBD(t0, r, r) })
		Label(l("norcorr"))
		each(func(_ int, r reg.VecPhysical) { VCVTDQ2PS(r, r) })
		each(func(h int, r reg.VecPhysical) { VMULPS(cm[h], r, r) })
		TESTQ(U32(qBias), flags)
		JEQ(LabelRef(l("added")))
		each(func(h int, r reg.VecPhysical) { VADDPS(cb[h], r, r) })
		Label(l("added"))
		// QMid: y = DQ(Q(y)) with MScale (ONNX Runtime's Q → DQ before the
		// residual add): clamped to the mid codes' range in y (saturation
		// unchanged), Markstein's quotient with MRecip, rounded half to even
		// to an integer (VRNDSCALEPS 0), times MScale; constants broadcast
		// from memory (no register is free), tv as scratch.
		TESTQ(U32(qMid), flags)
		JEQ(LabelRef(l("nomid")))
		each(func(_ int, r reg.VecPhysical) { VMAXPS_BCST(Mem{Base: q, Disp: offMLo}, r, r) })
		each(func(_ int, r reg.VecPhysical) { VMINPS_BCST(Mem{Base: q, Disp: offMHi}, r, r) })
		each(func(h int, r reg.VecPhysical) { VMULPS_BCST(Mem{Base: q, Disp: offMRecip}, r, tv[h]) })
		each(func(h int, r reg.VecPhysical) { VFNMADD231PS_BCST(Mem{Base: q, Disp: offMScale}, tv[h], r) })
		each(func(h int, r reg.VecPhysical) { VFMADD231PS_BCST(Mem{Base: q, Disp: offMRecip}, r, tv[h]) })
		each(func(h int, r reg.VecPhysical) { VRNDSCALEPS(U8(0), tv[h], r) })
		each(func(_ int, r reg.VecPhysical) { VMULPS_BCST(Mem{Base: q, Disp: offMScale}, r, r) })
		Label(l("nomid"))
		TESTQ(U32(qResid), flags)
		JEQ(LabelRef(l("noresid")))
		TESTQ(U32(qZCode), flags)
		JNE(LabelRef(l("zcode")))
		each(func(h int, _ reg.VecPhysical) { VMOVUPS_Z(Mem{Base: reg.R13, Disp: 64 * h}, masks[h], tv[h]) })
		JMP(LabelRef(l("zvalue")))
		// codes: widened (zero or sign), minus the zero point, converted
		// (exact), times the scale: DequantizeLinear's value
		Label(l("zcode"))
		TESTQ(U32(qZSigned), flags)
		JNE(LabelRef(l("zs8")))
		each(func(h int, _ reg.VecPhysical) { VPMOVZXBD_Z(Mem{Base: reg.R13, Disp: 16 * h}, masks[h], tv[h]) })
		JMP(LabelRef(l("zwide")))
		Label(l("zs8"))
		each(func(h int, _ reg.VecPhysical) { VPMOVSXBD_Z(Mem{Base: reg.R13, Disp: 16 * h}, masks[h], tv[h]) })
		Label(l("zwide"))
		each(func(h int, _ reg.VecPhysical) { VPSUBD(zz, tv[h], tv[h]) })
		each(func(h int, _ reg.VecPhysical) { VCVTDQ2PS(tv[h], tv[h]) })
		each(func(h int, _ reg.VecPhysical) { VMULPS(zs, tv[h], tv[h]) })
		Label(l("zvalue"))
		each(func(h int, r reg.VecPhysical) { VADDPS(tv[h], r, r) })
		ADDQ(ldr, reg.R13)
		Label(l("noresid"))
		TESTQ(U32(qClamp), flags)
		JEQ(LabelRef(l("noclamp")))
		TESTQ(U32(qNaNLo), flags)
		JNE(LabelRef(l("nanlo")))
		each(func(_ int, r reg.VecPhysical) { VMAXPS(r, lo, r) }) // Intel VMAXPS r, lo, r: NaN passes
		each(func(_ int, r reg.VecPhysical) { VMINPS(r, hi, r) })
		JMP(LabelRef(l("noclamp")))
		Label(l("nanlo"))
		each(func(_ int, r reg.VecPhysical) { VMAXPS(lo, r, r) }) // Intel VMAXPS r, r, lo: NaN becomes lo
		each(func(_ int, r reg.VecPhysical) { VMINPS(r, hi, r) })
		Label(l("noclamp"))
		TESTQ(U32(qQuant), flags)
		JNE(LabelRef(l("quant")))
		each(func(h int, r reg.VecPhysical) { VMOVUPS(r, masks[h], Mem{Base: out, Disp: 64 * h}) })
		JMP(LabelRef(l("next")))
		Label(l("quant"))
		TESTQ(U32(qRecip), flags)
		JNE(LabelRef(l("recip")))
		each(func(_ int, r reg.VecPhysical) { VDIVPS_BCST(ysm, r, r) })
		// NaN becomes the low bound: VMAXPS returns its last (Intel) source on NaN.
		each(func(_ int, r reg.VecPhysical) { VMAXPS(qlo, r, r) })
		each(func(_ int, r reg.VecPhysical) { VMINPS(qhi, r, r) })
		each(func(_ int, r reg.VecPhysical) { VCVTPS2DQ(r, r) }) // MXCSR's round half to even
		each(func(_ int, r reg.VecPhysical) { VPADDD(yz, r, r) })
		TESTQ(U32(qUnsigned), flags)
		JNE(LabelRef(l("u8")))
		each(func(h int, r reg.VecPhysical) { VPMOVSDB(r, masks[h], Mem{Base: out, Disp: 16 * h}) })
		JMP(LabelRef(l("next")))
		Label(l("u8"))
		each(func(h int, r reg.VecPhysical) { VPMOVUSDB(r, masks[h], Mem{Base: out, Disp: 16 * h}) })
		JMP(LabelRef(l("next")))
		// QRecip: the clamp above held the codes' range in y (QEpi's
		// QRecip), so the quotient needs no clamp. y/y_scale = q0 + (y −
		// q0·y_scale)·yr with q0 = y·yr, yr = RN(1/y_scale): Markstein's
		// correction, exact in QRecip's range. NaN converts to INT32_MIN:
		// VPMOVSDB saturates it to the lowest int8 code; uint8 codes take
		// a maximum with 0 first (VPMOVUSDB reads unsigned dwords), unless
		// the clamp already made NaN Lo (qNaNLo).
		Label(l("recip"))
		each(func(h int, r reg.VecPhysical) { VMULPS(yr, r, tv[h]) })
		each(func(h int, r reg.VecPhysical) { VFNMADD231PS_BCST(ysm, tv[h], r) })
		each(func(h int, r reg.VecPhysical) { VFMADD231PS(yr, r, tv[h]) })
		each(func(h int, r reg.VecPhysical) { VCVTPS2DQ(tv[h], r) })
		each(func(_ int, r reg.VecPhysical) { VPADDD(yz, r, r) })
		TESTQ(U32(qUnsigned), flags)
		JNE(LabelRef(l("ru8")))
		each(func(h int, r reg.VecPhysical) { VPMOVSDB(r, masks[h], Mem{Base: out, Disp: 16 * h}) })
		JMP(LabelRef(l("next")))
		Label(l("ru8"))
		TESTQ(U32(qNaNLo), flags) // NaN became Lo: no INT32_MIN to raise
		JNE(LabelRef(l("rstore")))
		each(func(h int, r reg.VecPhysical) { VPXORD(tv[h], tv[h], tv[h]) })
		each(func(h int, r reg.VecPhysical) { VPMAXSD(tv[h], r, r) })
		Label(l("rstore"))
		each(func(h int, r reg.VecPhysical) { VPMOVUSDB(r, masks[h], Mem{Base: out, Disp: 16 * h}) })
		Label(l("next"))
		ADDQ(ldo, out)
	}
	Label(lbl("done"))
	VZEROUPPER()
	RET()
}
