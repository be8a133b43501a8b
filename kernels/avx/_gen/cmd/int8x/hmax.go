package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// hmax3s2 is the horizontal part of a 3-wide, stride-2 max pool over 8-bit
// codes (hmax3s2Generic is the reference loop): out[j] = max(row[2j],
// row[2j+1], row[2j+2]) for j < n, 31 outputs per step: one masked load of
// the 63 bytes they read, three VPERMB (the even bytes, the odd ones, the
// even ones one word on) and two VPMAX, one masked store.
func hmax3s2(name string, vmax func(ops ...Op)) {
	idx := GLOBL("hmax3s2idx_"+name, RODATA|NOPTR)
	for t := 0; t < 3; t++ { // three 64-byte tables: 2j, 2j+1, 2j+2 (lanes past 30 read byte 63 or less)
		for b := 0; b < 64; b++ {
			DATA(64*t+b, U8(min(2*b+t, 63)))
		}
	}
	TEXT(name, NOSPLIT, "func(out, row *byte, n int)")
	Pragma("noescape")
	Doc(name + " is the AVX-512 VBMI twin of hmax3s2Generic.")
	l := func(s string) LabelRef { return LabelRef(s + "_" + name) }
	lab := func(s string) { Label(s + "_" + name) }
	out := Load(Param("out"), reg.RDI)
	row := Load(Param("row"), reg.RSI)
	n := Load(Param("n"), reg.RCX)
	ones, t, m := reg.RAX, reg.RBX, reg.RDX
	MOVQ(I32(-1), ones)
	VMOVDQU64(idx, reg.Z4)
	VMOVDQU64(idx.Offset(64), reg.Z5)
	VMOVDQU64(idx.Offset(128), reg.Z6)
	TESTQ(n, n)
	JLE(l("done"))
	lab("loop")
	MOVQ(U32(31), m)
	CMPQ(n, m)
	CMOVQLT(n, m)                                      // outputs this step
	LEAQ(Mem{Base: m, Index: m, Scale: 1, Disp: 1}, t) // bytes read: 2m+1
	BZHIQ(t, ones, t)
	KMOVQ(t, reg.K1)
	BZHIQ(m, ones, t)
	KMOVQ(t, reg.K2)
	VMOVDQU8_Z(Mem{Base: row}, reg.K1, reg.Z0)
	VPERMB(reg.Z0, reg.Z4, reg.Z1)
	VPERMB(reg.Z0, reg.Z5, reg.Z2)
	VPERMB(reg.Z0, reg.Z6, reg.Z3)
	vmax(reg.Z2, reg.Z1, reg.Z1)
	vmax(reg.Z3, reg.Z1, reg.Z1)
	VMOVDQU8(reg.Z1, reg.K2, Mem{Base: out})
	ADDQ(U8(62), row)
	ADDQ(U8(31), out)
	SUBQ(U8(31), n)
	JG(l("loop"))
	lab("done")
	VZEROUPPER()
	RET()
}
