package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// More of QEpi's flags and offsets, and the tile (as _gen/qgemm.go).
const (
	qResid, qCol, qQuant, qRCorr = 2, 8, 16, 64
	offResid, offRCorr           = 24, 64
	mr, nr                       = 8, 32
)

// qgemmNarrowVNNI is _gen's qgemm8x32VNNI (generated from the same code
// with the second 16-column half dropped) for strips with at most cols =
// 16 columns (zmm) or 8 (ymm): tails such as 196 = 6·32 + 4 (14×14
// outputs) or 49 = 32 + 16 + 1 (7×7) take one B load and 8 VPDPBUSD per
// step instead of 2 and 16, at half or a quarter of the vector width, and a
// narrower epilogue. The packed layout is the 32-column one (b may point
// into a step's second half; the rest of each step is not read).
func qgemmNarrowVNNI(name string, cols int) {
	v := func(r reg.VecPhysical) reg.Register { // the tile's vector width: 16 columns zmm, 8 ymm
		if cols == 8 {
			return r.AsY()
		}
		return r
	}
	TEXT(name, NOSPLIT, "func(k4 int, a *int8, b *uint8, out *byte, ldo int, mr, nr int, q *int64)")
	Pragma("noescape")
	Doc(fmt.Sprintf("%s is the AVX-512 VNNI twin of qgemmGeneric for nr ≤ %d.", name, cols))
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
	acc := make([]reg.Register, mr)
	for i := range acc {
		acc[i] = v(zmm(i))
		VPXORD(acc[i], acc[i], acc[i])
	}
	b0 := v(zmm(16))
	TESTQ(k, k)
	JEQ(LabelRef("hepilogue" + name))
	Label("hloop" + name)
	VMOVDQU32_Z(Mem{Base: b}, reg.K1, b0)
	for i := 0; i < mr; i++ {
		t := v(zmm(18 + i))
		VPBROADCASTD(Mem{Base: a, Disp: 4 * i}, t)
		raw("VPDPBUSD", t, b0, acc[i])
	}
	ADDQ(U8(4*mr), a)
	ADDQ(U32(4*nr), b)
	DECQ(k)
	JNE(LabelRef("hloop" + name))

	Label("hepilogue" + name)
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
	JNE(LabelRef("hbytes" + name))
	MOVQ(ldr, ldo)
	Label("hbytes" + name)
	lo, hi, qlo, qhi, ys, yz := v(zmm(22)), v(zmm(23)), v(zmm(24)), v(zmm(25)), v(zmm(26)), v(zmm(27))
	VBROADCASTSS(Mem{Base: q, Disp: offLo}, lo)
	VBROADCASTSS(Mem{Base: q, Disp: offHi}, hi)
	VBROADCASTSS(Mem{Base: q, Disp: offQLo}, qlo)
	VBROADCASTSS(Mem{Base: q, Disp: offQHi}, qhi)
	VBROADCASTSS(Mem{Base: q, Disp: offYScale}, ys)
	VPBROADCASTD(Mem{Base: q, Disp: offYZero}, yz)
	cc0, cm0, cb0 := v(zmm(16)), v(zmm(18)), v(zmm(20))
	TESTQ(U32(qCol), flags)
	JEQ(LabelRef("hrowmode" + name))
	VMOVDQU32_Z(Mem{Base: reg.R12}, reg.K1, cc0)
	VMOVUPS_Z(Mem{Base: reg.R8}, reg.K1, cm0)
	TESTQ(U32(qBias), flags)
	JEQ(LabelRef("hrowmode" + name))
	VMOVUPS_Z(Mem{Base: reg.R14}, reg.K1, cb0)
	Label("hrowmode" + name)
	t0 := v(zmm(28))
	for i := 0; i < mr; i++ {
		x0 := acc[i]
		l := func(s string) string { return fmt.Sprintf("h%s%d%s", s, i, name) }
		CMPQ(rows, U8(i))
		JLE(LabelRef("hdone" + name))
		// per-row or per-column correction and multiplier
		TESTQ(U32(qCol), flags)
		JNE(LabelRef(l("col")))
		VPBROADCASTD(Mem{Base: reg.R12, Disp: 4 * i}, t0)
		VPSUBD(t0, x0, x0)
		VCVTDQ2PS(x0, x0)
		VBROADCASTSS(Mem{Base: reg.R8, Disp: 4 * i}, t0)
		VMULPS(t0, x0, x0)
		TESTQ(U32(qBias), flags)
		JEQ(LabelRef(l("added")))
		VBROADCASTSS(Mem{Base: reg.R14, Disp: 4 * i}, t0)
		VADDPS(t0, x0, x0)
		JMP(LabelRef(l("added")))
		Label(l("col"))
		VPSUBD(cc0, x0, x0)
		TESTQ(U32(qRCorr), flags)
		JEQ(LabelRef(l("norcorr")))
		VPBROADCASTD(Mem{Base: reg.R9, Disp: 4 * i}, t0)
		VPSUBD(t0, x0, x0)
		Label(l("norcorr"))
		VCVTDQ2PS(x0, x0)
		VMULPS(cm0, x0, x0)
		TESTQ(U32(qBias), flags)
		JEQ(LabelRef(l("added")))
		VADDPS(cb0, x0, x0)
		Label(l("added"))
		TESTQ(U32(qResid), flags)
		JEQ(LabelRef(l("noresid")))
		VMOVUPS_Z(Mem{Base: reg.R13}, reg.K1, t0)
		VADDPS(t0, x0, x0)
		ADDQ(ldr, reg.R13)
		Label(l("noresid"))
		TESTQ(U32(qClamp), flags)
		JEQ(LabelRef(l("noclamp")))
		VMAXPS(x0, lo, x0)
		VMINPS(x0, hi, x0)
		Label(l("noclamp"))
		TESTQ(U32(qQuant), flags)
		JNE(LabelRef(l("quant")))
		VMOVUPS(x0, reg.K1, Mem{Base: out})
		JMP(LabelRef(l("next")))
		Label(l("quant"))
		VDIVPS(ys, x0, x0)
		// NaN becomes the low bound: VMAXPS returns its last (Intel) source on NaN.
		VMAXPS(qlo, x0, x0)
		VMINPS(qhi, x0, x0)
		VCVTPS2DQ(x0, x0) // MXCSR's round half to even
		VPADDD(yz, x0, x0)
		TESTQ(U32(qUnsigned), flags)
		JNE(LabelRef(l("u8")))
		VPMOVSDB(x0, reg.K1, Mem{Base: out})
		JMP(LabelRef(l("next")))
		Label(l("u8"))
		VPMOVUSDB(x0, reg.K1, Mem{Base: out})
		Label(l("next"))
		ADDQ(ldo, out)
	}
	Label("hdone" + name)
	VZEROUPPER()
	RET()
}
