package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// im2colGatherAVX512 fills one NR-column strip of a packed B from cg
// channel planes: for every channel and tap, two VGATHERDPS of 16 floats
// through the strip's tap table (plane offsets, -1 in the padding: the
// sign bit masks the lane off, which leaves the zero it started from).
func im2colGatherAVX512() {
	TEXT("im2colGatherAVX512", NOSPLIT, "func(dst, plane *float32, hw, cg int, tab *int32, taps int)")
	Pragma("noescape")
	Doc("im2colGatherAVX512 is the AVX-512 twin of im2colGatherGeneric.")
	dst := Load(Param("dst"), reg.RDI)
	plane := Load(Param("plane"), reg.RSI)
	hw := Load(Param("hw"), reg.R8)
	SHLQ(U8(2), hw)
	cg := Load(Param("cg"), reg.RCX)
	tab := Load(Param("tab"), reg.RDX)
	taps := Load(Param("taps"), reg.R9)
	t, n := reg.R11, reg.R10
	TESTQ(cg, cg)
	JEQ(LabelRef("gather_done"))
	TESTQ(taps, taps)
	JEQ(LabelRef("gather_done"))
	Label("gather_channel")
	MOVQ(tab, t)
	MOVQ(taps, n)
	Label("gather_tap")
	VMOVDQU32(Mem{Base: t}, reg.Z0)
	VMOVDQU32(Mem{Base: t, Disp: 64}, reg.Z1)
	VPMOVD2M(reg.Z0, reg.K1)
	KNOTW(reg.K1, reg.K1)
	VPMOVD2M(reg.Z1, reg.K2)
	KNOTW(reg.K2, reg.K2)
	VXORPS(reg.Z2, reg.Z2, reg.Z2)
	VXORPS(reg.Z3, reg.Z3, reg.Z3)
	VGATHERDPS(Mem{Base: plane, Index: reg.Z0, Scale: 4}, reg.K1, reg.Z2)
	VGATHERDPS(Mem{Base: plane, Index: reg.Z1, Scale: 4}, reg.K2, reg.Z3)
	VMOVUPS(reg.Z2, Mem{Base: dst})
	VMOVUPS(reg.Z3, Mem{Base: dst, Disp: 64})
	ADDQ(U8(128), t)
	ADDQ(U8(128), dst)
	DECQ(n)
	JNE(LabelRef("gather_tap"))
	ADDQ(hw, plane)
	DECQ(cg)
	JNE(LabelRef("gather_channel"))
	Label("gather_done")
	VZEROUPPER()
	RET()
}

// im2colSegsAVX512 fills one NR-column strip of a packed B from cg channel
// planes for a stride-1 conv: for every channel and tap it zeroes the
// strip row if some of its columns are padding, then copies the tap's
// runs, each a contiguous piece of one input row (≤ 32 floats: one or two
// masked loads and stores). The runs come as a stream of int32: per tap a
// count (bit 16: zero first), then (plane offset, strip column, lane mask)
// per run; the same stream serves every channel.
func im2colSegsAVX512() {
	TEXT("im2colSegsAVX512", NOSPLIT, "func(dst, plane *float32, hw, cg int, segs *int32, taps int)")
	Pragma("noescape")
	Doc("im2colSegsAVX512 is the AVX-512 twin of im2colSegsGeneric.")
	dst := Load(Param("dst"), reg.RDI)
	plane := Load(Param("plane"), reg.RSI)
	hw := Load(Param("hw"), reg.R8)
	SHLQ(U8(2), hw)
	cg := Load(Param("cg"), reg.RCX)
	segs := Load(Param("segs"), reg.RDX)
	taps := Load(Param("taps"), reg.R9)
	p, t, n, off, at := reg.R10, reg.R11, reg.R12, reg.R13, reg.R14
	zero := reg.Z31
	VXORPS(zero, zero, zero)
	TESTQ(cg, cg)
	JEQ(LabelRef("segs_done"))
	TESTQ(taps, taps)
	JEQ(LabelRef("segs_done"))
	Label("segs_channel")
	MOVQ(segs, p)
	MOVQ(taps, t)
	Label("segs_tap")
	MOVLQSX(Mem{Base: p}, n)
	ADDQ(U8(4), p)
	BTRQ(U8(16), n) // bit 16: some columns are padding, zero the row first
	JCC(LabelRef("segs_full"))
	VMOVUPS(zero, Mem{Base: dst})
	VMOVUPS(zero, Mem{Base: dst, Disp: 64})
	Label("segs_full")
	TESTQ(n, n)
	JEQ(LabelRef("segs_next"))
	Label("segs_run")
	MOVLQSX(Mem{Base: p}, off)
	MOVLQSX(Mem{Base: p, Disp: 4}, at)
	KMOVW(Mem{Base: p, Disp: 8}, reg.K1)
	VMOVUPS_Z(Mem{Base: plane, Index: off, Scale: 4}, reg.K1, reg.Z0)
	VMOVUPS(reg.Z0, reg.K1, Mem{Base: dst, Index: at, Scale: 4})
	CMPW(Mem{Base: p, Disp: 10}, U8(0)) // runs of ≤ 16 columns: one zmm
	JEQ(LabelRef("segs_short"))
	KMOVW(Mem{Base: p, Disp: 10}, reg.K2)
	VMOVUPS_Z(Mem{Base: plane, Index: off, Scale: 4, Disp: 64}, reg.K2, reg.Z1)
	VMOVUPS(reg.Z1, reg.K2, Mem{Base: dst, Index: at, Scale: 4, Disp: 64})
	Label("segs_short")
	ADDQ(U8(12), p)
	DECQ(n)
	JNE(LabelRef("segs_run"))
	Label("segs_next")
	ADDQ(U8(128), dst)
	DECQ(t)
	JNE(LabelRef("segs_tap"))
	ADDQ(hw, plane)
	DECQ(cg)
	JNE(LabelRef("segs_channel"))
	Label("segs_done")
	VZEROUPPER()
	RET()
}
