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
	qCol      = 8  // corrections, multipliers and bias per column (else per row)
	qQuant    = 16 // output codes (else float32)
	qUnsigned = 32 // uint8 codes (else int8)
	qRCorr    = 64 // with qCol: also subtract RCorr per row
)

// Offsets of QEpi's fields (../qgemm.go).
const (
	offCorr, offMult, offBias, offResid  = 0, 8, 16, 24
	offLo, offHi, offYScale, offQLo      = 32, 36, 40, 44
	offQHi, offYZero, offFlags, offRCorr = 48, 52, 56, 64
)

func raw(op string, ops ...Op) {
	Instruction(&ir.Instruction{Opcode: op, Operands: ops, Inputs: ops[:len(ops)-1], Outputs: ops[len(ops)-1:]})
}

// qgemmVNNI is the 8×32 INT8 micro-kernel: u8 activations (packed by k
// quads: 32 columns × 4 bytes per step) times s8 weights (8 rows × 4 bytes
// per step, broadcast) into 16 zmm of int32 with VPDPBUSD, then the
// quantized epilogue of ops/kilnq in registers: subtract the zero-point
// correction, convert, scale, bias, residual, clamp, and either store
// float32 or requantize (divide, saturate, round half to even, add the zero
// point, narrow) and store codes.
func qgemmVNNI() {
	TEXT("qgemm8x32VNNI", NOSPLIT, "func(k4 int, a *int8, b *uint8, out *byte, ldo int, mr, nr int, q *int64)")
	Pragma("noescape")
	Doc("qgemm8x32VNNI is the AVX-512 VNNI twin of qgemmGeneric.")
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
	acc := make([]reg.VecPhysical, 2*mr)
	for i := range acc {
		acc[i] = zmm(i)
		VPXORD(acc[i], acc[i], acc[i])
	}
	b0, b1 := zmm(16), zmm(17)
	TESTQ(k, k)
	JEQ(LabelRef("qepilogue"))
	Label("qloop")
	VMOVDQU32_Z(Mem{Base: b}, reg.K1, b0)
	VMOVDQU32_Z(Mem{Base: b, Disp: 64}, reg.K2, b1)
	for i := 0; i < mr; i++ {
		t := zmm(18 + i)
		VPBROADCASTD(Mem{Base: a, Disp: 4 * i}, t)
		raw("VPDPBUSD", t, b0, acc[2*i])
		raw("VPDPBUSD", t, b1, acc[2*i+1])
	}
	ADDQ(U8(4*mr), a)
	ADDQ(U32(4*nr), b)
	DECQ(k)
	JNE(LabelRef("qloop"))

	Label("qepilogue")
	q := Load(Param("q"), reg.RBX)
	out := Load(Param("out"), reg.RDX)
	ldo := Load(Param("ldo"), reg.R10) // output row stride in bytes (set below)
	ldr := reg.R15                     // residual row stride in bytes
	MOVQ(ldo, ldr)
	SHLQ(U8(2), ldr)
	rows := Load(Param("mr"), reg.R11)
	MOVQ(Mem{Base: q, Disp: offCorr}, reg.R12)
	MOVQ(Mem{Base: q, Disp: offMult}, reg.R8)
	MOVQ(Mem{Base: q, Disp: offBias}, reg.R14)
	MOVQ(Mem{Base: q, Disp: offResid}, reg.R13)
	MOVQ(Mem{Base: q, Disp: offRCorr}, reg.R9)
	flags := reg.RAX
	MOVQ(Mem{Base: q, Disp: offFlags}, flags)
	TESTQ(U32(qQuant), flags)
	JNE(LabelRef("qbytes"))
	MOVQ(ldr, ldo)
	Label("qbytes")
	lo, hi, qlo, qhi, ys, yz := zmm(22), zmm(23), zmm(24), zmm(25), zmm(26), zmm(27)
	VBROADCASTSS(Mem{Base: q, Disp: offLo}, lo)
	VBROADCASTSS(Mem{Base: q, Disp: offHi}, hi)
	VBROADCASTSS(Mem{Base: q, Disp: offQLo}, qlo)
	VBROADCASTSS(Mem{Base: q, Disp: offQHi}, qhi)
	VBROADCASTSS(Mem{Base: q, Disp: offYScale}, ys)
	VPBROADCASTD(Mem{Base: q, Disp: offYZero}, yz)
	cc0, cc1, cm0, cm1, cb0, cb1 := zmm(16), zmm(17), zmm(18), zmm(19), zmm(20), zmm(21)
	TESTQ(U32(qCol), flags)
	JEQ(LabelRef("qrowmode"))
	VMOVDQU32_Z(Mem{Base: reg.R12}, reg.K1, cc0)
	VMOVDQU32_Z(Mem{Base: reg.R12, Disp: 64}, reg.K2, cc1)
	VMOVUPS_Z(Mem{Base: reg.R8}, reg.K1, cm0)
	VMOVUPS_Z(Mem{Base: reg.R8, Disp: 64}, reg.K2, cm1)
	TESTQ(U32(qBias), flags)
	JEQ(LabelRef("qrowmode"))
	VMOVUPS_Z(Mem{Base: reg.R14}, reg.K1, cb0)
	VMOVUPS_Z(Mem{Base: reg.R14, Disp: 64}, reg.K2, cb1)
	Label("qrowmode")
	t0, t1 := zmm(28), zmm(29)
	for i := 0; i < mr; i++ {
		x0, x1 := acc[2*i], acc[2*i+1]
		l := func(s string) string { return fmt.Sprintf("q%s%d", s, i) }
		CMPQ(rows, U8(i))
		JLE(LabelRef("qdone"))
		// per-row or per-column correction and multiplier
		TESTQ(U32(qCol), flags)
		JNE(LabelRef(l("col")))
		VPBROADCASTD(Mem{Base: reg.R12, Disp: 4 * i}, t0)
		VPSUBD(t0, x0, x0)
		VPSUBD(t0, x1, x1)
		VCVTDQ2PS(x0, x0)
		VCVTDQ2PS(x1, x1)
		VBROADCASTSS(Mem{Base: reg.R8, Disp: 4 * i}, t0)
		VMULPS(t0, x0, x0)
		VMULPS(t0, x1, x1)
		TESTQ(U32(qBias), flags)
		JEQ(LabelRef(l("added")))
		VBROADCASTSS(Mem{Base: reg.R14, Disp: 4 * i}, t0)
		VADDPS(t0, x0, x0)
		VADDPS(t0, x1, x1)
		JMP(LabelRef(l("added")))
		Label(l("col"))
		VPSUBD(cc0, x0, x0)
		VPSUBD(cc1, x1, x1)
		TESTQ(U32(qRCorr), flags)
		JEQ(LabelRef(l("norcorr")))
		VPBROADCASTD(Mem{Base: reg.R9, Disp: 4 * i}, t0)
		VPSUBD(t0, x0, x0)
		VPSUBD(t0, x1, x1)
		Label(l("norcorr"))
		VCVTDQ2PS(x0, x0)
		VCVTDQ2PS(x1, x1)
		VMULPS(cm0, x0, x0)
		VMULPS(cm1, x1, x1)
		TESTQ(U32(qBias), flags)
		JEQ(LabelRef(l("added")))
		VADDPS(cb0, x0, x0)
		VADDPS(cb1, x1, x1)
		Label(l("added"))
		TESTQ(U32(qResid), flags)
		JEQ(LabelRef(l("noresid")))
		VMOVUPS_Z(Mem{Base: reg.R13}, reg.K1, t0)
		VMOVUPS_Z(Mem{Base: reg.R13, Disp: 64}, reg.K2, t1)
		VADDPS(t0, x0, x0)
		VADDPS(t1, x1, x1)
		ADDQ(ldr, reg.R13)
		Label(l("noresid"))
		TESTQ(U32(qClamp), flags)
		JEQ(LabelRef(l("noclamp")))
		VMAXPS(x0, lo, x0)
		VMAXPS(x1, lo, x1)
		VMINPS(x0, hi, x0)
		VMINPS(x1, hi, x1)
		Label(l("noclamp"))
		TESTQ(U32(qQuant), flags)
		JNE(LabelRef(l("quant")))
		VMOVUPS(x0, reg.K1, Mem{Base: out})
		VMOVUPS(x1, reg.K2, Mem{Base: out, Disp: 64})
		JMP(LabelRef(l("next")))
		Label(l("quant"))
		VDIVPS(ys, x0, x0)
		VDIVPS(ys, x1, x1)
		// NaN becomes the low bound: VMAXPS returns its last (Intel) source on NaN.
		VMAXPS(qlo, x0, x0)
		VMAXPS(qlo, x1, x1)
		VMINPS(qhi, x0, x0)
		VMINPS(qhi, x1, x1)
		VCVTPS2DQ(x0, x0) // MXCSR's round half to even
		VCVTPS2DQ(x1, x1)
		VPADDD(yz, x0, x0)
		VPADDD(yz, x1, x1)
		TESTQ(U32(qUnsigned), flags)
		JNE(LabelRef(l("u8")))
		VPMOVSDB(x0, reg.K1, Mem{Base: out})
		VPMOVSDB(x1, reg.K2, Mem{Base: out, Disp: 16})
		JMP(LabelRef(l("next")))
		Label(l("u8"))
		VPMOVUSDB(x0, reg.K1, Mem{Base: out})
		VPMOVUSDB(x1, reg.K2, Mem{Base: out, Disp: 16})
		Label(l("next"))
		ADDQ(ldo, out)
	}
	Label("qdone")
	VZEROUPPER()
	RET()
}
