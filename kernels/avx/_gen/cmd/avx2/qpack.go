package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// packPointwiseAVX2 is packPointwiseAVX512 for the first n16 columns (a
// multiple of 16; the caller packs the rest): per strip, quad and 16
// columns, the quad's four channel rows (16 bytes each) interleaved into
// 16 words by VPUNPCK{L,H}BW then VPUNPCK{L,H}WD (within xmm registers, so
// no lane crossing), XORed with flip.
func packPointwiseAVX2() {
	name := "packPointwiseAVX2"
	TEXT(name, NOSPLIT, "func(dst *uint32, x *byte, hw, quads, n16 int, flip uint32)")
	Pragma("noescape")
	Doc(name + " is the AVX2 twin of packPointwiseGeneric for n16 (a multiple of 16) columns.")
	l := func(s string) LabelRef { return LabelRef(name + "_" + s) }
	lab := func(s string) { Label(name + "_" + s) }
	dst := Load(Param("dst"), reg.RDI)
	x := Load(Param("x"), reg.RSI)
	hw := Load(Param("hw"), reg.R8)
	quads := Load(Param("quads"), reg.R9)
	n16 := Load(Param("n16"), reg.R10)
	Load(Param("flip"), reg.RAX)
	VMOVD(reg.EAX, reg.X15)
	VPBROADCASTD(reg.X15, reg.X15)
	col, p, src, hw3 := reg.R11, reg.R12, reg.R13, reg.R14
	LEAQ(Mem{Base: hw, Index: hw, Scale: 2}, hw3)
	TESTQ(quads, quads)
	JLE(l("done"))
	XORQ(col, col)
	lab("strip")
	CMPQ(col, n16)
	JGE(l("done"))
	LEAQ(Mem{Base: x, Index: col, Scale: 1}, src) // quad 0's first channel row at the strip
	XORQ(p, p)
	lab("quad")
	for h := 0; h < 2; h++ {
		if h == 1 {
			LEAQ(Mem{Base: col, Disp: 16}, reg.RAX)
			CMPQ(reg.RAX, n16)
			JGE(l("nexthalf"))
		}
		VMOVDQU(Mem{Base: src, Disp: 16 * h}, reg.X0)
		VMOVDQU(Mem{Base: src, Index: hw, Scale: 1, Disp: 16 * h}, reg.X1)
		VMOVDQU(Mem{Base: src, Index: hw, Scale: 2, Disp: 16 * h}, reg.X2)
		VMOVDQU(Mem{Base: src, Index: hw3, Scale: 1, Disp: 16 * h}, reg.X3)
		VPUNPCKLBW(reg.X1, reg.X0, reg.X4) // channels 0,1 of columns 0–7
		VPUNPCKHBW(reg.X1, reg.X0, reg.X5) // of columns 8–15
		VPUNPCKLBW(reg.X3, reg.X2, reg.X6)
		VPUNPCKHBW(reg.X3, reg.X2, reg.X7)
		VPUNPCKLWD(reg.X6, reg.X4, reg.X0) // columns 0–3
		VPUNPCKHWD(reg.X6, reg.X4, reg.X1) // 4–7
		VPUNPCKLWD(reg.X7, reg.X5, reg.X2) // 8–11
		VPUNPCKHWD(reg.X7, reg.X5, reg.X3) // 12–15
		for i, r := range []reg.VecPhysical{reg.X0, reg.X1, reg.X2, reg.X3} {
			VPXOR(reg.X15, r, r)
			VMOVDQU(r, Mem{Base: dst, Disp: 64*h + 16*i})
		}
	}
	lab("nexthalf")
	ADDQ(U32(4*32), dst)
	LEAQ(Mem{Base: src, Index: hw, Scale: 4}, src) // the next quad's channels
	INCQ(p)
	CMPQ(p, quads)
	JLT(l("quad"))
	ADDQ(U8(32), col)
	JMP(l("strip"))
	lab("done")
	RET()
}
