package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// qpoolMax8x32AVX2 takes, in place, each of the 8×32 tile's rows' 2×2
// window maxima: columns 0–7 become the VPMAXSD of columns j, 8+j, 16+j,
// 24+j (the four window positions of a pooled group).
func qpoolMax8x32AVX2() {
	TEXT("qpoolMax8x32AVX2", NOSPLIT, "func(tile *int32)")
	Pragma("noescape")
	Doc("qpoolMax8x32AVX2 is the AVX2 twin of qpoolMaxGeneric.")
	t := Load(Param("tile"), reg.RDI)
	for i := 0; i < mr8; i++ {
		a, b := reg.Y0, reg.Y1
		if i%2 == 1 {
			a, b = reg.Y2, reg.Y3
		}
		VMOVDQU(Mem{Base: t, Disp: 128 * i}, a)
		VMOVDQU(Mem{Base: t, Disp: 128*i + 32}, b)
		VPMAXSD(Mem{Base: t, Disp: 128*i + 64}, a, a)
		VPMAXSD(Mem{Base: t, Disp: 128*i + 96}, b, b)
		VPMAXSD(b, a, a)
		VMOVDQU(a, Mem{Base: t, Disp: 128 * i})
	}
	VZEROUPPER()
	RET()
}

// qpoolPackAVX2 is qpoolPackVBMI without VPERMB and masked byte loads: each
// quad's n ≤ 8 words, stride bytes apart, gathered by VPGATHERDD under the
// lanes-below-n mask (so no byte outside them is read) and stored by
// VPMASKMOVD under the same mask.
func qpoolPackAVX2() {
	name := "qpoolPackAVX2"
	TEXT(name, NOSPLIT, "func(dst *uint32, src *byte, segs *int32, nseg, rows int, rowOff *int32, q, qstep, stride int)")
	Pragma("noescape")
	Doc(name + " is the AVX2 twin of qpoolPackGeneric (stride = idx[4]).")
	l := func(s string) LabelRef { return LabelRef(name + "_" + s) }
	lab := func(s string) { Label(name + "_" + s) }
	dst := Load(Param("dst"), reg.RDI)
	src := Load(Param("src"), reg.RSI)
	segs := Load(Param("segs"), reg.R8)
	nseg := Load(Param("nseg"), reg.R9)
	rows := Load(Param("rows"), reg.R10)
	rowOff := Load(Param("rowOff"), reg.R11)
	q := Load(Param("q"), reg.R12)
	qstep := Load(Param("qstep"), reg.R13)
	Load(Param("stride"), reg.RAX)
	// Y5: the gather offsets stride·j
	VMOVD(reg.EAX, reg.X5) // stride
	VPBROADCASTD(reg.X5, reg.Y5)
	VPMULLD(lanes, reg.Y5, reg.Y5)
	t, t32 := reg.RDX, reg.EDX
	d, s, r, i := reg.RAX, reg.RBX, reg.RCX, reg.R14
	TESTQ(nseg, nseg)
	JLE(l("done"))
	TESTQ(rows, rows)
	JLE(l("done"))
	TESTQ(q, q)
	JLE(l("done"))
	lab("seg")
	MOVLQSX(Mem{Base: segs}, t) // column
	LEAQ(Mem{Base: dst, Index: t, Scale: 4}, d)
	MOVL(Mem{Base: segs, Disp: 4}, t32) // words
	VMOVD(t32, reg.X4)
	VPBROADCASTD(reg.X4, reg.Y4)
	VPCMPGTD(lanes, reg.Y4, reg.Y4)      // lanes j < n
	MOVLQSX(Mem{Base: segs, Disp: 8}, t) // source offset
	LEAQ(Mem{Base: src, Index: t, Scale: 1}, s)
	XORQ(r, r)
	lab("row")
	MOVLQSX(Mem{Base: rowOff, Index: r, Scale: 4}, t)
	ADDQ(s, t) // the row's first quad
	MOVQ(q, i)
	lab("quad")
	VMOVDQA(reg.Y4, reg.Y1) // the gather clears its mask
	VPXOR(reg.Y2, reg.Y2, reg.Y2)
	VPGATHERDD(reg.Y1, Mem{Base: t, Index: reg.Y5, Scale: 1}, reg.Y2)
	VPMASKMOVD(reg.Y2, reg.Y4, Mem{Base: d})
	ADDQ(qstep, t)
	ADDQ(U32(4*32), d)
	DECQ(i)
	JNE(l("quad"))
	INCQ(r)
	CMPQ(r, rows)
	JLT(l("row"))
	ADDQ(U8(16), segs)
	DECQ(nseg)
	JNE(l("seg"))
	lab("done")
	VZEROUPPER()
	RET()
}
