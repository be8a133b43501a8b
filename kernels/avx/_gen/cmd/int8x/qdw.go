package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/ir"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// qdw3x3 is a whole plane of an INT8 3×3 depthwise convolution read in
// place from 8-bit codes (no padded copy), 16 outputs per step at stride st
// (1 or 2, both directions), nr output rows at a time, on VPDPBUSD: per
// kernel row one merge-masked load of the input row's bytes into a
// register holding the input zero point's code (so padding reads as
// x_zero), int8 codes flipped to uint8 (XOR 0x80: code + 128), one VPERMB
// that gives output lane l the bytes st·l + 0, 1, 2 (and a fourth under a
// zero weight), and one VPDPBUSD against the row's three int8 taps. With
// u the flipped zero point, the int32 accumulator starts at −u·Σw (tab[6])
// and a kernel row outside the plane adds u·Σ of its taps (tab[3+kh])
// instead of loading, so it ends at kilnq's Σ w·(x − x_zero) exactly
// (below 2²⁴, so VCVTDQ2PS is exact too). The epilogue is dwRowAVX512's
// quantized one (scale, bias, residual, clamp, /y_scale, saturate with NaN
// to the low bound, round half even, + y_zero, narrow), so the codes are
// kilnq's bit for bit. planes planes run in one call (x, out and resid
// planes contiguous, tab one 64-byte table per plane with its scale and
// bias).
func qdw3x3(name string, st, nr int, narrow func(ops ...Op)) {
	idx := GLOBL(fmt.Sprintf("qdwidx%d_%s", st, name), RODATA|NOPTR)
	for b := 0; b < 64; b++ {
		DATA(b, U8(st*(b/4)+b%4))
	}
	TEXT(name, NOSPLIT, "func(x *byte, w, h int, tab *int32, out *byte, ow, oh, pt, pl int, resid *float32, p *float32, planes int)")
	Pragma("noescape")
	Doc(name + " is the AVX-512 VNNI/VBMI twin of qdw3x3Generic.")
	l := func(s string) LabelRef { return LabelRef(s + "_" + name) }
	lab := func(s string) { Label(s + "_" + name) }
	x := Load(Param("x"), reg.RSI)
	w := Load(Param("w"), reg.R8)
	h := Load(Param("h"), reg.R9)
	outRow, residRow := reg.R10, reg.R11
	r, c0, ih0, ones := reg.R12, reg.R13, reg.R14, reg.R15
	p := Load(Param("p"), reg.RDI)
	VBROADCASTSS(Mem{Base: p, Disp: 0}, reg.Z12)  // lo
	VBROADCASTSS(Mem{Base: p, Disp: 4}, reg.Z13)  // hi
	VBROADCASTSS(Mem{Base: p, Disp: 8}, reg.Z14)  // y_scale
	VBROADCASTSS(Mem{Base: p, Disp: 12}, reg.Z15) // qlo
	VBROADCASTSS(Mem{Base: p, Disp: 16}, reg.Z29) // qhi
	VPBROADCASTD(Mem{Base: p, Disp: 20}, reg.Z30) // y_zero
	VPBROADCASTB(Mem{Base: p, Disp: 24}, reg.Z9)  // x_zero's code byte
	VPBROADCASTD(Mem{Base: p, Disp: 28}, reg.Z7)  // 0x80 bytes for int8 codes, else 0
	VMOVDQU64(idx, reg.Z8)
	MOVQ(I32(-1), ones)
	for _, n := range []string{"oh", "ow", "planes"} {
		Load(Param(n), reg.RAX)
		TESTQ(reg.RAX, reg.RAX)
		JLE(l("done"))
	}
	// per-plane pointers and the planes left, in the frame
	outPlane, residPlane, tabPlane, left := AllocLocal(8), AllocLocal(8), AllocLocal(8), AllocLocal(8)
	Load(Param("out"), reg.RAX)
	MOVQ(reg.RAX, outPlane)
	Load(Param("resid"), reg.RAX)
	MOVQ(reg.RAX, residPlane)
	Load(Param("tab"), reg.RAX)
	MOVQ(reg.RAX, tabPlane)
	Load(Param("planes"), reg.RAX)
	MOVQ(reg.RAX, left)

	lab("plane")
	MOVQ(tabPlane, reg.RDI)
	for i := 0; i < 3; i++ {
		VPBROADCASTD(Mem{Base: reg.RDI, Disp: 4 * i}, zmm(16+i))
		VPBROADCASTD(Mem{Base: reg.RDI, Disp: 4 * (3 + i)}, zmm(25+i))
	}
	VPBROADCASTD(Mem{Base: reg.RDI, Disp: 4 * 6}, reg.Z28)
	VBROADCASTSS(Mem{Base: reg.RDI, Disp: 4 * 7}, reg.Z10) // scale
	VBROADCASTSS(Mem{Base: reg.RDI, Disp: 4 * 8}, reg.Z11) // bias
	MOVQ(outPlane, outRow)
	MOVQ(residPlane, residRow)
	XORQ(r, r)
	Load(Param("pt"), ih0)
	NEGQ(ih0)

	// nr output rows (r, r+1, ...) per step share the input rows: with
	// stride st, row i's kernel row kh is input row kh+i·st of the
	// 3+(nr−1)·st loaded, and each loaded row feeds every accumulator that
	// uses it at once. The nr accumulator chains interleave (one chain per
	// chunk left the scheduler waiting on latency).
	lab("row")
	XORQ(c0, c0)
	lab("chunk")
	// RAX = the chunk's first input column (kernel column 0)
	MOVQ(c0, reg.RAX)
	if st == 2 {
		SHLQ(U8(1), reg.RAX)
	}
	Load(Param("pl"), reg.RBX)
	SUBQ(reg.RBX, reg.RAX)
	// bytes b of a row load valid where 0 ≤ iw+b < w:
	// bzhi(ones << max(0, −iw), clamp(w − iw, 0, 64))
	XORQ(reg.RCX, reg.RCX)
	MOVQ(reg.RAX, reg.RDX)
	NEGQ(reg.RDX)
	CMOVQGT(reg.RDX, reg.RCX)
	SHLXQ(reg.RCX, ones, reg.RDI)
	MOVQ(w, reg.RDX)
	SUBQ(reg.RAX, reg.RDX)
	MOVQ(U32(64), reg.RCX)
	CMPQ(reg.RDX, reg.RCX)
	CMOVQGT(reg.RCX, reg.RDX)
	XORQ(reg.RCX, reg.RCX)
	TESTQ(reg.RDX, reg.RDX)
	CMOVQLT(reg.RCX, reg.RDX)
	BZHIQ(reg.RDX, reg.RDI, reg.RDI)
	KMOVQ(reg.RDI, reg.K2)
	accs := []reg.VecPhysical{reg.Z0, reg.Z1, reg.Z2, reg.Z3}[:nr]
	for _, a := range accs {
		VMOVDQA64(reg.Z28, a)
	}
	for j := 0; j < 3+(nr-1)*st; j++ {
		skip := fmt.Sprintf("out%d", j)
		next := fmt.Sprintf("next%d", j)
		LEAQ(Mem{Base: ih0, Disp: j}, reg.RBX)
		CMPQ(reg.RBX, h)
		JAE(l(skip)) // unsigned: a negative row too
		IMULQ(w, reg.RBX)
		ADDQ(x, reg.RBX)
		ADDQ(reg.RAX, reg.RBX)
		t, u := []reg.VecPhysical{reg.Z4, reg.Z6}[j%2], []reg.VecPhysical{reg.Z5, reg.Z21}[j%2]
		VMOVDQA64(reg.Z9, t)
		VMOVDQU8(Mem{Base: reg.RBX}, reg.K2, t)
		VPXORD(reg.Z7, t, t)
		VPERMB(t, reg.Z8, u)
		for i, a := range accs {
			if kh := j - i*st; kh >= 0 && kh < 3 {
				raw("VPDPBUSD", zmm(16+kh), u, a)
			}
		}
		JMP(l(next))
		lab(skip)
		for i, a := range accs {
			if kh := j - i*st; kh >= 0 && kh < 3 {
				VPADDD(zmm(25+kh), a, a)
			}
		}
		lab(next)
	}
	// store masks: K1 for row r (min(16, ow − c0) lanes); for row r+i,
	// K(2+i) = K1 where r+i < oh, else none
	Load(Param("ow"), reg.RCX)
	SUBQ(c0, reg.RCX)
	MOVQ(U32(16), reg.RDX)
	CMPQ(reg.RCX, reg.RDX)
	CMOVQGT(reg.RDX, reg.RCX)
	BZHIQ(reg.RCX, ones, reg.RDX)
	KMOVW(reg.EDX, reg.K1)
	rowMasks := []reg.OpmaskPhysical{reg.K1, reg.K3, reg.K4, reg.K5}
	Load(Param("oh"), reg.RDI)
	XORQ(reg.RBX, reg.RBX)
	for i := 1; i < nr; i++ {
		LEAQ(Mem{Base: r, Disp: i}, reg.RCX)
		CMPQ(reg.RCX, reg.RDI)
		CMOVQGE(reg.RBX, reg.RDX)
		KMOVW(reg.EDX, rowMasks[i])
	}
	for _, a := range accs {
		VCVTDQ2PS(a, a)
	}
	for _, a := range accs {
		VMULPS(reg.Z10, a, a)
	}
	for _, a := range accs {
		VADDPS(reg.Z11, a, a)
	}
	Load(Param("ow"), reg.RCX)
	TESTQ(residRow, residRow)
	JEQ(l("noresid"))
	MOVQ(residRow, reg.RBX)
	for i, a := range accs {
		tmp := []reg.VecPhysical{reg.Z24, reg.Z31, reg.Z19, reg.Z20}[i]
		VMOVUPS_Z(Mem{Base: reg.RBX, Index: c0, Scale: 4}, rowMasks[i], tmp)
		VADDPS(tmp, a, a)
		LEAQ(Mem{Base: reg.RBX, Index: reg.RCX, Scale: 4}, reg.RBX)
	}
	lab("noresid")
	for _, a := range accs {
		VMAXPS(a, reg.Z12, a)
		VMINPS(a, reg.Z13, a)
	}
	for _, a := range accs {
		VDIVPS(reg.Z14, a, a)
	}
	for _, a := range accs {
		VMAXPS(reg.Z15, a, a)
		VMINPS(reg.Z29, a, a)
	}
	for _, a := range accs {
		VCVTPS2DQ(a, a)
		VPADDD(reg.Z30, a, a)
	}
	// narrow in registers, then masked byte stores
	MOVQ(outRow, reg.RBX)
	for i, a := range accs {
		narrow(a, a.AsX())
		VMOVDQU8(a.AsX(), rowMasks[i], Mem{Base: reg.RBX, Index: c0, Scale: 1})
		ADDQ(reg.RCX, reg.RBX)
	}
	ADDQ(U8(16), c0)
	CMPQ(c0, reg.RCX)
	JL(l("chunk"))
	// next nr output rows
	IMUL3Q(U8(nr), reg.RCX, reg.RDX)
	ADDQ(reg.RDX, outRow)
	TESTQ(residRow, residRow)
	JEQ(l("nextrow"))
	LEAQ(Mem{Base: residRow, Index: reg.RDX, Scale: 4}, residRow)
	lab("nextrow")
	ADDQ(U8(nr*st), ih0)
	ADDQ(U8(nr), r)
	Load(Param("oh"), reg.RCX)
	CMPQ(r, reg.RCX)
	JL(l("row"))
	// next plane: oh·ow outputs (and residuals), h·w inputs, one table on
	Load(Param("ow"), reg.RDX)
	IMULQ(reg.RCX, reg.RDX)
	ADDQ(reg.RDX, outPlane)
	TESTQ(residRow, residRow) // nil stays nil
	JEQ(l("nextplane"))
	SHLQ(U8(2), reg.RDX)
	ADDQ(reg.RDX, residPlane)
	lab("nextplane")
	ADDQ(U8(64), tabPlane)
	MOVQ(w, reg.RDX)
	IMULQ(h, reg.RDX)
	ADDQ(reg.RDX, x)
	DECQ(left)
	JNE(l("plane"))
	lab("done")
	VZEROUPPER()
	RET()
}

// raw emits an instruction avo v0.5.0 does not know (VPDPBUSD), operands
// in Go assembler order.
func raw(op string, ops ...Op) {
	Instruction(&ir.Instruction{Opcode: op, Operands: ops, Inputs: ops[:len(ops)-1], Outputs: ops[len(ops)-1:]})
}

func zmm(i int) reg.VecPhysical {
	return []reg.VecPhysical{reg.Z0, reg.Z1, reg.Z2, reg.Z3, reg.Z4, reg.Z5, reg.Z6, reg.Z7, reg.Z8, reg.Z9,
		reg.Z10, reg.Z11, reg.Z12, reg.Z13, reg.Z14, reg.Z15, reg.Z16, reg.Z17, reg.Z18, reg.Z19, reg.Z20,
		reg.Z21, reg.Z22, reg.Z23, reg.Z24, reg.Z25, reg.Z26, reg.Z27, reg.Z28, reg.Z29, reg.Z30, reg.Z31}[i]
}
