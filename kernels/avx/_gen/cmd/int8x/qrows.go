package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// packQRows8 packs nb blocks of 16 words of 8 rows of 8-bit codes (rows k
// bytes apart) as the A side of the INT8 GEMM (packQRows8Generic is the
// reference loop): per block the 8 rows are loaded, flipped (XOR), summed
// as signed bytes by VPDPBUSD against a vector of ones (per row, 16 int32
// partial sums stored to sums at the end), and transposed to 16 steps of 8
// rows' words (VPUNPCK{L,H}DQ, VPUNPCK{L,H}QDQ, two rounds of VSHUFI32X4):
// 512 contiguous bytes of the strip.
func packQRows8() {
	name := "packQRows8AVX512"
	TEXT(name, NOSPLIT, "func(dst *int8, x *byte, k, nb int, flip uint32, sums *int32)")
	Pragma("noescape")
	Doc(name + " is the AVX-512 VNNI twin of packQRows8Generic.")
	l := func(s string) LabelRef { return LabelRef(s + "_" + name) }
	lab := func(s string) { Label(s + "_" + name) }
	dst := Load(Param("dst"), reg.RDI)
	x := Load(Param("x"), reg.RSI)
	k := Load(Param("k"), reg.R8)
	nb := Load(Param("nb"), reg.RCX)
	k3, x4 := reg.R9, reg.R10
	LEAQ(Mem{Base: k, Index: k, Scale: 2}, k3)
	LEAQ(Mem{Base: x, Index: k, Scale: 4}, x4)
	flip, ones := zmm(25), zmm(24)
	Load(Param("flip"), reg.EDX)
	VPBROADCASTD(reg.EDX, flip)
	MOVL(U32(0x01010101), reg.EAX)
	VPBROADCASTD(reg.EAX, ones)
	sum := make([]reg.VecPhysical, 8)
	for i := range sum {
		sum[i] = zmm(16 + i)
		VPXORD(sum[i], sum[i], sum[i])
	}
	TESTQ(nb, nb)
	JLE(l("sums"))
	lab("block")
	row := []Mem{
		{Base: x}, {Base: x, Index: k, Scale: 1}, {Base: x, Index: k, Scale: 2}, {Base: x, Index: k3, Scale: 1},
		{Base: x4}, {Base: x4, Index: k, Scale: 1}, {Base: x4, Index: k, Scale: 2}, {Base: x4, Index: k3, Scale: 1},
	}
	r := make([]reg.VecPhysical, 8)
	for i := range r {
		r[i] = zmm(i)
		VMOVDQU32(row[i], r[i])
		VPXORD(flip, r[i], r[i])
		raw("VPDPBUSD", r[i], ones, sum[i])
	}
	// rows pairwise: lo = [a0 b0 a1 b1 | a4 b4 a5 b5 | ...], hi = words 2, 3 (6, 7, ...)
	t := make([]reg.VecPhysical, 8)
	for i := range t {
		t[i] = zmm(8 + i)
	}
	for p := 0; p < 4; p++ {
		VPUNPCKLDQ(r[2*p+1], r[2*p], t[2*p])
		VPUNPCKHDQ(r[2*p+1], r[2*p], t[2*p+1])
	}
	// rows 0-3 (4-7) of words w, w+4, w+8, w+12 per 128-bit lane: w = 0..3
	b := [2][4]reg.VecPhysical{}
	for h := 0; h < 2; h++ { // rows 0-3, 4-7
		lo01, hi01, lo23, hi23 := t[4*h], t[4*h+1], t[4*h+2], t[4*h+3]
		b[h] = [4]reg.VecPhysical{r[4*h], r[4*h+1], r[4*h+2], r[4*h+3]}
		VPUNPCKLQDQ(lo23, lo01, b[h][0])
		VPUNPCKHQDQ(lo23, lo01, b[h][1])
		VPUNPCKLQDQ(hi23, hi01, b[h][2])
		VPUNPCKHQDQ(hi23, hi01, b[h][3])
	}
	// steps (w, w+1) of 8 rows: lanes l of b[0][w], b[1][w], b[0][w+1], b[1][w+1]
	for w := 0; w < 4; w += 2 {
		u, v, u2, v2 := t[0], t[1], t[2], t[3]
		VSHUFI32X4(U8(0x44), b[1][w], b[0][w], u) // [b0.l0, b0.l1, b1.l0, b1.l1]
		VSHUFI32X4(U8(0x44), b[1][w+1], b[0][w+1], v)
		VSHUFI32X4(U8(0xEE), b[1][w], b[0][w], u2) // lanes 2, 3
		VSHUFI32X4(U8(0xEE), b[1][w+1], b[0][w+1], v2)
		o := t[4]
		for j, src := range [][2]reg.VecPhysical{{u, v}, {u2, v2}} {
			VSHUFI32X4(U8(0x88), src[1], src[0], o) // lane 0 of each half: steps w+8j, w+8j+1
			VMOVDQU32(o, Mem{Base: dst, Disp: 32 * (w + 8*j)})
			VSHUFI32X4(U8(0xDD), src[1], src[0], o) // lane 1: steps w+8j+4, +5
			VMOVDQU32(o, Mem{Base: dst, Disp: 32 * (w + 8*j + 4)})
		}
	}
	ADDQ(U8(64), x)
	ADDQ(U8(64), x4)
	ADDQ(U32(512), dst)
	DECQ(nb)
	JNE(l("block"))
	lab("sums")
	s := Load(Param("sums"), reg.RAX)
	for i := range sum {
		VMOVDQU32(sum[i], Mem{Base: s, Disp: 64 * i})
	}
	VZEROUPPER()
	RET()
}
