package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// im2colSegsS2AVX512 is im2colSegsAVX512 for convs of stride 2 along the
// rows (a MobileNetV2 or ResNet stem): a run of L ≤ 32 strip columns reads
// every other input of 2L−1 consecutive floats, loaded in up to four masked
// zmm (nothing past the run is touched) whose even lanes two VPERMT2PS
// gather (idx: 0, 2, …, 30), instead of a VGATHERDPS per 16 columns. The
// stream is runTable's: per tap a count (bit 16: zero the row first), then
// (plane offset of the first input, strip column, mask of the L columns).
func im2colSegsS2AVX512() {
	TEXT("im2colSegsS2AVX512", NOSPLIT, "func(dst, plane *float32, hw, cg int, segs *int32, taps int, idx *int32)")
	Pragma("noescape")
	Doc("im2colSegsS2AVX512 is the AVX-512 twin of im2colSegsS2Generic.")
	dst := Load(Param("dst"), reg.RDI)
	plane := Load(Param("plane"), reg.RSI)
	hw := Load(Param("hw"), reg.R8)
	SHLQ(U8(2), hw)
	cg := Load(Param("cg"), reg.RCX)
	segs := Load(Param("segs"), reg.RDX)
	taps := Load(Param("taps"), reg.R9)
	idx := Load(Param("idx"), reg.RAX)
	evens := reg.Z30
	VMOVDQU32(Mem{Base: idx}, evens)
	p, t, n, off, at, m := reg.R10, reg.R11, reg.R12, reg.R13, reg.R14, reg.R15
	ln := reg.RBX
	zero := reg.Z31
	VXORPS(zero, zero, zero)
	TESTQ(cg, cg)
	JEQ(LabelRef("s2_done"))
	TESTQ(taps, taps)
	JEQ(LabelRef("s2_done"))
	Label("s2_channel")
	MOVQ(segs, p)
	MOVQ(taps, t)
	Label("s2_tap")
	MOVLQSX(Mem{Base: p}, n)
	ADDQ(U8(4), p)
	BTRQ(U8(16), n) // bit 16: some columns are padding, zero the row first
	JCC(LabelRef("s2_full"))
	VMOVUPS(zero, Mem{Base: dst})
	VMOVUPS(zero, Mem{Base: dst, Disp: 64})
	Label("s2_full")
	TESTQ(n, n)
	JEQ(LabelRef("s2_next"))
	Label("s2_run")
	MOVLQSX(Mem{Base: p}, off)
	MOVLQSX(Mem{Base: p, Disp: 4}, at)
	// Load masks: the run's 2L−1 inputs, 16 lanes per zmm.
	POPCNTL(Mem{Base: p, Disp: 8}, ln.As32())
	LEAQ(Mem{Base: ln, Index: ln, Scale: 1, Disp: -1}, ln)
	MOVQ(I32(-1), m)
	BZHIQ(ln, m, m)
	KMOVW(m.As32(), reg.K3)
	SHRQ(U8(16), m)
	KMOVW(m.As32(), reg.K4)
	KMOVW(Mem{Base: p, Disp: 8}, reg.K1)
	VMOVUPS_Z(Mem{Base: plane, Index: off, Scale: 4}, reg.K3, reg.Z0)
	VMOVUPS_Z(Mem{Base: plane, Index: off, Scale: 4, Disp: 64}, reg.K4, reg.Z1)
	VPERMT2PS(reg.Z1, evens, reg.Z0)
	VMOVUPS(reg.Z0, reg.K1, Mem{Base: dst, Index: at, Scale: 4})
	CMPW(Mem{Base: p, Disp: 10}, U8(0)) // runs of ≤ 16 columns: one zmm out
	JEQ(LabelRef("s2_short"))
	SHRQ(U8(16), m)
	KMOVW(m.As32(), reg.K5)
	SHRQ(U8(16), m)
	KMOVW(m.As32(), reg.K6)
	KMOVW(Mem{Base: p, Disp: 10}, reg.K2)
	VMOVUPS_Z(Mem{Base: plane, Index: off, Scale: 4, Disp: 128}, reg.K5, reg.Z2)
	VMOVUPS_Z(Mem{Base: plane, Index: off, Scale: 4, Disp: 192}, reg.K6, reg.Z3)
	VPERMT2PS(reg.Z3, evens, reg.Z2)
	VMOVUPS(reg.Z2, reg.K2, Mem{Base: dst, Index: at, Scale: 4, Disp: 64})
	Label("s2_short")
	ADDQ(U8(12), p)
	DECQ(n)
	JNE(LabelRef("s2_run"))
	Label("s2_next")
	ADDQ(U8(128), dst)
	DECQ(t)
	JNE(LabelRef("s2_tap"))
	ADDQ(hw, plane)
	DECQ(cg)
	JNE(LabelRef("s2_channel"))
	Label("s2_done")
	VZEROUPPER()
	RET()
}
