package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// quantizeF32AVX2 is QuantizeLinear of n8 (a multiple of 8) float32 values
// to codes, 8 per step: the quotient by VDIVPS (as float32(x/scale)), NaN
// lanes zeroed (AND with the ordered compare's mask), clamped to the code
// range minus the zero point (integers, so clamping before the rounding
// is the same), VCVTPS2DQ's round half to even, plus the zero point,
// narrowed by saturating packs (exact: already in range).
func quantizeF32AVX2(yu bool) {
	name := fmt.Sprintf("quantizeF32%sAVX2", map[bool]string{false: "S8", true: "U8"}[yu])
	TEXT(name, NOSPLIT, "func(dst *byte, src *float32, n8 int, scale, qlo, qhi float32, zero int32)")
	Pragma("noescape")
	Doc(name + " is an AVX2 twin of quantizeF32Generic for n8 (a multiple of 8) values.")
	l := func(s string) LabelRef { return LabelRef(name + "_" + s) }
	dst := Load(Param("dst"), reg.RDI)
	src := Load(Param("src"), reg.RSI)
	n := Load(Param("n8"), reg.RCX)
	for i, p := range []string{"scale", "qlo", "qhi"} {
		r := []reg.VecPhysical{reg.Y10, reg.Y11, reg.Y12}[i]
		VBROADCASTSS(NewParamAddr(p, 24+4*i), r)
	}
	Load(Param("zero"), reg.EDX)
	VMOVD(reg.EDX, reg.X13)
	VPBROADCASTD(reg.X13, reg.Y13)
	j := reg.RAX
	XORQ(j, j)
	Label(name + "_loop")
	CMPQ(j, n)
	JGE(l("done"))
	VMOVUPS(Mem{Base: src, Index: j, Scale: 4}, reg.Y0)
	VDIVPS(reg.Y10, reg.Y0, reg.Y0)
	VCMPPS(U8(7), reg.Y0, reg.Y0, reg.Y1) // ordered: not NaN
	VANDPS(reg.Y1, reg.Y0, reg.Y0)
	VMAXPS(reg.Y11, reg.Y0, reg.Y0)
	VMINPS(reg.Y12, reg.Y0, reg.Y0)
	VCVTPS2DQ(reg.Y0, reg.Y0)
	VPADDD(reg.Y13, reg.Y0, reg.Y0)
	VEXTRACTI128(U8(1), reg.Y0, reg.X1)
	VPACKSSDW(reg.X1, reg.X0, reg.X0)
	if yu {
		VPACKUSWB(reg.X0, reg.X0, reg.X0)
	} else {
		VPACKSSWB(reg.X0, reg.X0, reg.X0)
	}
	VMOVQ(reg.X0, Mem{Base: dst, Index: j, Scale: 1})
	ADDQ(U8(8), j)
	JMP(l("loop"))
	Label(name + "_done")
	VZEROUPPER()
	RET()
}
