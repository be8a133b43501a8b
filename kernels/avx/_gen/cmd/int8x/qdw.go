package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// qdw3x3 is a whole plane of an INT8 3×3 depthwise convolution read in
// place from 8-bit codes (no padded copy), 16 outputs per step at width
// stride st (1 or 2; the row stride sh is a parameter). Per output row and
// chunk: one byte mask per kernel column (the lanes whose input column
// lies inside the row); each tap is a merge-masked load into a register
// holding the input zero point (so padding reads as x_zero), widened to
// int32 (stride 2: 32 bytes narrowed to their even bytes by VPMOVWB),
// converted to float32 and one FMA. The accumulator starts at
// −x_zero·Σw (tab[12]) and a row outside the plane adds x_zero·Σ of its
// taps (tab[9+kh]) instead of loading: every partial sum is an integer
// below 2²⁴, so the result equals kilnq's int32 Σ w·(x − x_zero) exactly.
// The epilogue is dwRowAVX512's quantized one (scale, bias, residual,
// clamp, /y_scale, saturate with NaN to the low bound, round half even,
// + y_zero, narrow), so the codes are kilnq's bit for bit.
func qdw3x3(name string, st int, extend func(ops ...Op), narrow func(ops ...Op)) {
	TEXT(name, NOSPLIT, "func(x *byte, w, h int, tab *float32, out *byte, ow, oh, sh, pt, pl int, resid *float32, p *float32)")
	Pragma("noescape")
	Doc(name + " is the AVX-512 twin of qdw3x3Generic.")
	l := func(s string) LabelRef { return LabelRef(s + "_" + name) }
	lab := func(s string) { Label(s + "_" + name) }
	x := Load(Param("x"), reg.RSI)
	w := Load(Param("w"), reg.R8)
	h := Load(Param("h"), reg.R9)
	outRow := Load(Param("out"), reg.R10)
	residRow := Load(Param("resid"), reg.R11)
	r, c0, ih0, ones := reg.R12, reg.R13, reg.R14, reg.R15
	tab := Load(Param("tab"), reg.RDI)
	for i := 0; i < 9; i++ {
		VBROADCASTSS(Mem{Base: tab, Disp: 4 * i}, zmm(16+i))
	}
	for i := 0; i < 3; i++ {
		VBROADCASTSS(Mem{Base: tab, Disp: 4 * (9 + i)}, zmm(25+i))
	}
	VBROADCASTSS(Mem{Base: tab, Disp: 4 * 12}, reg.Z28)
	p := Load(Param("p"), reg.RDI)
	VBROADCASTSS(Mem{Base: p, Disp: 0}, reg.Z10)  // scale
	VBROADCASTSS(Mem{Base: p, Disp: 4}, reg.Z11)  // bias
	VBROADCASTSS(Mem{Base: p, Disp: 8}, reg.Z12)  // lo
	VBROADCASTSS(Mem{Base: p, Disp: 12}, reg.Z13) // hi
	VBROADCASTSS(Mem{Base: p, Disp: 16}, reg.Z14) // y_scale
	VBROADCASTSS(Mem{Base: p, Disp: 20}, reg.Z15) // qlo
	VBROADCASTSS(Mem{Base: p, Disp: 24}, reg.Z29) // qhi
	VPBROADCASTD(Mem{Base: p, Disp: 28}, reg.Z30) // y_zero
	VPBROADCASTD(Mem{Base: p, Disp: 32}, reg.Z31) // x_zero (int32 lanes)
	VPBROADCASTB(Mem{Base: p, Disp: 32}, reg.Z9)  // x_zero's code byte
	MOVQ(I32(-1), ones)
	XORQ(r, r)
	Load(Param("pt"), ih0)
	NEGQ(ih0)
	Load(Param("oh"), reg.RAX)
	TESTQ(reg.RAX, reg.RAX)
	JLE(l("done"))
	Load(Param("ow"), reg.RAX)
	TESTQ(reg.RAX, reg.RAX)
	JLE(l("done"))

	nb := 16 * st // input bytes one chunk's tap spans
	lab("row")
	XORQ(c0, c0)
	lab("chunk")
	// RAX = first input column of the chunk's tap column 0
	MOVQ(c0, reg.RAX)
	if st == 2 {
		SHLQ(U8(1), reg.RAX)
	}
	Load(Param("pl"), reg.RBX)
	SUBQ(reg.RBX, reg.RAX)
	masks := []reg.OpmaskPhysical{reg.K2, reg.K3, reg.K4}
	for kw := 0; kw < 3; kw++ {
		// bytes b of the load at column iw valid where 0 ≤ iw+b < w:
		// bzhi(ones << max(0, −iw), clamp(w − iw, 0, nb))
		LEAQ(Mem{Base: reg.RAX, Disp: kw}, reg.RBX) // iw
		XORQ(reg.RCX, reg.RCX)
		MOVQ(reg.RBX, reg.RDX)
		NEGQ(reg.RDX)
		CMOVQGT(reg.RDX, reg.RCX)
		SHLXQ(reg.RCX, ones, reg.RDI)
		MOVQ(w, reg.RDX)
		SUBQ(reg.RBX, reg.RDX)
		MOVQ(U32(nb), reg.RCX)
		CMPQ(reg.RDX, reg.RCX)
		CMOVQGT(reg.RCX, reg.RDX)
		XORQ(reg.RCX, reg.RCX)
		TESTQ(reg.RDX, reg.RDX)
		CMOVQLT(reg.RCX, reg.RDX)
		BZHIQ(reg.RDX, reg.RDI, reg.RDI)
		if st == 1 {
			KMOVW(reg.EDI, masks[kw])
		} else {
			KMOVD(reg.EDI, masks[kw])
		}
	}
	acc := []reg.VecPhysical{reg.Z0, reg.Z1}
	VMOVAPS(reg.Z28, reg.Z0)
	VXORPS(reg.Z1, reg.Z1, reg.Z1)
	for kh := 0; kh < 3; kh++ {
		skip := fmt.Sprintf("out%d", kh)
		next := fmt.Sprintf("next%d", kh)
		LEAQ(Mem{Base: ih0, Disp: kh}, reg.RBX)
		CMPQ(reg.RBX, h)
		JAE(l(skip)) // unsigned: a negative row too
		IMULQ(w, reg.RBX)
		ADDQ(x, reg.RBX)
		ADDQ(reg.RAX, reg.RBX)
		for kw := 0; kw < 3; kw++ {
			t := zmm(2 + kw)
			if st == 1 {
				VMOVDQA64(reg.Z31, t)
				extend(Mem{Base: reg.RBX, Disp: kw}, masks[kw], t)
			} else {
				VMOVDQA64(reg.Z9, t)
				VMOVDQU8(Mem{Base: reg.RBX, Disp: kw}, masks[kw], t.AsY())
				VPMOVWB(t.AsY(), t.AsX())
				extend(t.AsX(), t)
			}
			VCVTDQ2PS(t, t)
			VFMADD231PS(t, zmm(16+3*kh+kw), acc[(3*kh+kw)%2])
		}
		JMP(l(next))
		lab(skip)
		VADDPS(zmm(25+kh), reg.Z0, reg.Z0)
		lab(next)
	}
	VADDPS(reg.Z1, reg.Z0, reg.Z0)
	// epilogue on min(16, ow − c0) lanes
	Load(Param("ow"), reg.RCX)
	SUBQ(c0, reg.RCX)
	MOVQ(U32(16), reg.RDX)
	CMPQ(reg.RCX, reg.RDX)
	CMOVQGT(reg.RDX, reg.RCX)
	BZHIQ(reg.RCX, ones, reg.RDX)
	KMOVW(reg.EDX, reg.K1)
	a := reg.Z0
	VMULPS(reg.Z10, a, a)
	VADDPS(reg.Z11, a, a)
	TESTQ(residRow, residRow)
	JEQ(l("noresid"))
	VMOVUPS_Z(Mem{Base: residRow, Index: c0, Scale: 4}, reg.K1, reg.Z2)
	VADDPS(reg.Z2, a, a)
	lab("noresid")
	VMAXPS(a, reg.Z12, a)
	VMINPS(a, reg.Z13, a)
	VDIVPS(reg.Z14, a, a)
	VMAXPS(reg.Z15, a, a)
	VMINPS(reg.Z29, a, a)
	VCVTPS2DQ(a, a)
	VPADDD(reg.Z30, a, a)
	narrow(a, reg.K1, Mem{Base: outRow, Index: c0, Scale: 1})
	ADDQ(U8(16), c0)
	Load(Param("ow"), reg.RCX)
	CMPQ(c0, reg.RCX)
	JL(l("chunk"))
	// next output row
	ADDQ(reg.RCX, outRow)
	TESTQ(residRow, residRow)
	JEQ(l("nextrow"))
	LEAQ(Mem{Base: residRow, Index: reg.RCX, Scale: 4}, residRow)
	lab("nextrow")
	Load(Param("sh"), reg.RCX)
	ADDQ(reg.RCX, ih0)
	INCQ(r)
	Load(Param("oh"), reg.RCX)
	CMPQ(r, reg.RCX)
	JL(l("row"))
	lab("done")
	VZEROUPPER()
	RET()
}

func zmm(i int) reg.VecPhysical {
	return []reg.VecPhysical{reg.Z0, reg.Z1, reg.Z2, reg.Z3, reg.Z4, reg.Z5, reg.Z6, reg.Z7, reg.Z8, reg.Z9,
		reg.Z10, reg.Z11, reg.Z12, reg.Z13, reg.Z14, reg.Z15, reg.Z16, reg.Z17, reg.Z18, reg.Z19, reg.Z20,
		reg.Z21, reg.Z22, reg.Z23, reg.Z24, reg.Z25, reg.Z26, reg.Z27, reg.Z28, reg.Z29, reg.Z30, reg.Z31}[i]
}
