package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// qdwShuf is two VPSHUFB tables: the even bytes (0, 2, …, 14) of 16 into
// the low 8, then the odd ones (1, 3, …, 15): the stride-2 taps.
var qdwShuf Mem

// qdw3x3RowAVX2 is one output row of the INT8 3×3 depthwise convolution on
// AVX2 (qdw3x3RowGeneric's twin): x is a plane padded with the input zero
// point's code (so every tap is inside it), ldx its row stride; n is a
// multiple of 8. Per 8 outputs, each tap's 8 codes are widened to int32
// (VPMOVSXBD/ZXBD), converted to float32 and accumulated with FMA from
// the start −x_zero·Σw: every product, partial sum and the total is an
// integer below 2²⁴ in magnitude (9·255·128 + 255·1152), so the float
// accumulator equals kilnq's int32 one. The epilogue is the VNNI kernel's
// (scale, bias, residual, clamp, divide, clamp to the code range with NaN
// to the low bound, round half even, zero point), narrowed by saturating
// packs (exact: the value is already in the code range).
func qdw3x3RowAVX2(s int, xu, yu bool) {
	sign := map[bool]string{false: "S8", true: "U8"}
	name := fmt.Sprintf("qdw3x3Row%s%sS%dAVX2", sign[xu], sign[yu], s)
	TEXT(name, NOSPLIT, "func(x *byte, ldx int, k *float32, out *byte, n int, resid *float32, p *float32)")
	Pragma("noescape")
	Doc(name + " is an AVX2 twin of qdw3x3RowGeneric (its input/output code signs and stride in the name).")
	x := Load(Param("x"), reg.RSI)
	ldx := Load(Param("ldx"), reg.R8)
	k := Load(Param("k"), reg.RAX)
	out := Load(Param("out"), reg.RDI)
	n := Load(Param("n"), reg.RCX)
	resid := Load(Param("resid"), reg.RDX)
	p := Load(Param("p"), reg.RBX)
	l := func(s string) LabelRef { return LabelRef(name + "_" + s) }
	taps := []reg.VecPhysical{reg.Y6, reg.Y7, reg.Y8, reg.Y9, reg.Y10, reg.Y11, reg.Y12, reg.Y13, reg.Y14}
	for t, y := range taps {
		VBROADCASTSS(Mem{Base: k, Disp: 4 * t}, y)
	}
	VBROADCASTSS(Mem{Base: k, Disp: 4 * 9}, reg.Y15) // −x_zero·Σw
	if s == 2 {
		VMOVDQU(qdwShuf, reg.X4)
		VMOVDQU(qdwShuf.Offset(16), reg.X5)
	}
	rows := []reg.Register{x, reg.R10, reg.R9}
	LEAQ(Mem{Base: x, Index: ldx, Scale: 1}, reg.R10)
	LEAQ(Mem{Base: x, Index: ldx, Scale: 2}, reg.R9)
	j := reg.R11
	XORQ(j, j)
	widen := VPMOVSXBD
	if xu {
		widen = VPMOVZXBD
	}
	acc, c, t := reg.Y0, reg.Y1, reg.Y3
	Label(name + "_loop")
	CMPQ(j, n)
	JGE(l("done"))
	VMOVAPS(reg.Y15, acc)
	for i, row := range rows {
		if s == 1 {
			for jj := 0; jj < 3; jj++ {
				widen(Mem{Base: row, Index: j, Scale: 1, Disp: jj}, c)
				VCVTDQ2PS(c, c)
				VFMADD231PS(c, taps[3*i+jj], acc)
			}
			continue
		}
		for jj := 0; jj < 3; jj++ {
			if jj != 1 {
				VMOVDQU(Mem{Base: row, Index: j, Scale: 2, Disp: jj}, reg.X2)
			}
			mask := reg.X4
			if jj == 1 {
				mask = reg.X5
			}
			VPSHUFB(mask, reg.X2, c.AsX())
			widen(c.AsX(), c)
			VCVTDQ2PS(c, c)
			VFMADD231PS(c, taps[3*i+jj], acc)
		}
	}
	VBROADCASTSS(Mem{Base: k, Disp: 4 * 10}, t) // scale
	VMULPS(t, acc, acc)
	VBROADCASTSS(Mem{Base: k, Disp: 4 * 11}, t) // bias
	VADDPS(t, acc, acc)
	TESTQ(resid, resid)
	JEQ(l("noresid"))
	VADDPS(Mem{Base: resid, Index: j, Scale: 4}, acc, acc)
	Label(name + "_noresid")
	VBROADCASTSS(Mem{Base: p, Disp: 0}, t) // lo (NaN stays)
	VMAXPS(acc, t, acc)
	VBROADCASTSS(Mem{Base: p, Disp: 4}, t) // hi
	VMINPS(acc, t, acc)
	VBROADCASTSS(Mem{Base: p, Disp: 8}, t) // ys
	VDIVPS(t, acc, acc)
	VBROADCASTSS(Mem{Base: p, Disp: 12}, t) // qlo (NaN becomes it)
	VMAXPS(t, acc, acc)
	VBROADCASTSS(Mem{Base: p, Disp: 16}, t) // qhi
	VMINPS(t, acc, acc)
	VCVTPS2DQ(acc, acc)
	VPBROADCASTD(Mem{Base: p, Disp: 20}, t) // yz
	VPADDD(t, acc, acc)
	VEXTRACTI128(U8(1), acc, t.AsX())
	VPACKSSDW(t.AsX(), acc.AsX(), acc.AsX()) // 8 words, in order
	if yu {
		VPACKUSWB(acc.AsX(), acc.AsX(), acc.AsX())
	} else {
		VPACKSSWB(acc.AsX(), acc.AsX(), acc.AsX())
	}
	VMOVQ(acc.AsX(), Mem{Base: out, Index: j, Scale: 1})
	ADDQ(U8(8), j)
	JMP(l("loop"))
	Label(name + "_done")
	VZEROUPPER()
	RET()
}

func qdwTables() {
	qdwShuf = GLOBL("avx2qdwshuf", RODATA|NOPTR)
	for t := 0; t < 2; t++ { // in offset order (the assembler wants it)
		for i := 0; i < 16; i++ {
			v := U8(2*i + t)
			if i >= 8 {
				v = 0x80 // zero: the high 8 bytes are not used
			}
			DATA(16*t+i, v)
		}
	}
}
