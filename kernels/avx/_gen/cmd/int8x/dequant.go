package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// dequantize is DequantizeLinear of 8-bit codes with a per-tensor scale:
// dst[i] = float32(code(src[i]) − zero)·scale, 16 per step (the widened
// code minus the zero point is exact in float32, so this is the reference
// table's value bit for bit), the tail masked.
func dequantize(name string, extend func(ops ...Op)) {
	TEXT(name, NOSPLIT, "func(dst *float32, src *byte, n int, zero int32, scale float32)")
	Pragma("noescape")
	Doc(name + " is the AVX-512 twin of dequantizeGeneric.")
	dst := Load(Param("dst"), reg.RDI)
	src := Load(Param("src"), reg.RSI)
	n := Load(Param("n"), reg.RCX)
	MOVL(NewParamAddr("zero", 24), reg.EDX)
	VPBROADCASTD(reg.EDX, reg.Z7)
	VBROADCASTSS(NewParamAddr("scale", 28), reg.Z6)
	ones, t := reg.RAX, reg.RBX
	l := func(s string) LabelRef { return LabelRef(s + "_" + name) }
	MOVQ(I32(-1), ones)
	TESTQ(n, n)
	JLE(l("done"))
	CMPQ(n, U8(32))
	JL(l("tail"))
	Label("loop32_" + name) // two zmm per step while 32 remain
	extend(Mem{Base: src}, reg.Z0)
	extend(Mem{Base: src, Disp: 16}, reg.Z1)
	VPSUBD(reg.Z7, reg.Z0, reg.Z0)
	VPSUBD(reg.Z7, reg.Z1, reg.Z1)
	VCVTDQ2PS(reg.Z0, reg.Z0)
	VCVTDQ2PS(reg.Z1, reg.Z1)
	VMULPS(reg.Z6, reg.Z0, reg.Z0)
	VMULPS(reg.Z6, reg.Z1, reg.Z1)
	VMOVUPS(reg.Z0, Mem{Base: dst})
	VMOVUPS(reg.Z1, Mem{Base: dst, Disp: 64})
	ADDQ(U8(32), src)
	ADDQ(U32(128), dst)
	SUBQ(U8(32), n)
	CMPQ(n, U8(32))
	JGE(l("loop32"))
	TESTQ(n, n)
	JLE(l("done"))
	Label("tail_" + name)
	MOVQ(U32(16), t)
	CMPQ(n, t)
	CMOVQLT(n, t)
	BZHIQ(t, ones, t)
	KMOVW(t.As32(), reg.K1)
	extend(Mem{Base: src}, reg.K1, reg.Z0)
	VPSUBD(reg.Z7, reg.Z0, reg.Z0)
	VCVTDQ2PS(reg.Z0, reg.Z0)
	VMULPS(reg.Z6, reg.Z0, reg.Z0)
	VMOVUPS(reg.Z0, reg.K1, Mem{Base: dst})
	ADDQ(U8(16), src)
	ADDQ(U8(64), dst)
	SUBQ(U8(16), n)
	JG(l("tail"))
	Label("done_" + name)
	VZEROUPPER()
	RET()
}
