package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// qcolVNNI accumulates one column of a packed activation strip (b points
// at the column's quad in the first step; steps are 4·NR = 128 bytes
// apart) against a packed weight strip (8 rows × 4 bytes per step): the
// micro-kernel's int32 sums of that column for the 8 rows, stored to
// acc[0..7]. For the last columns of a strip with few of them (7×7 outputs:
// 49 = 32 + 16 + 1), where the 8×8 kernel would spend 8 VPDPBUSDs per step
// on one column: here one VPBROADCASTD of the column's quad (the unsigned
// operand) and one VPDPBUSD with the step's 32 weight bytes (the signed
// operand, from memory) per step, four accumulators (steps mod 4) to hide
// VPDPBUSD's latency, added at the end (int32, exact modulo 2³² as the
// micro-kernel's sums).
func qcolVNNI() {
	TEXT("qcolVNNI", NOSPLIT, "func(k4 int, a *int8, b *uint8, acc *int32)")
	Pragma("noescape")
	Doc("qcolVNNI is the AVX-512 VNNI twin of qcolGeneric.")
	k := Load(Param("k4"), reg.RCX)
	a := Load(Param("a"), reg.RSI)
	b := Load(Param("b"), reg.RDI)
	acc := []reg.VecPhysical{reg.Y0, reg.Y1, reg.Y2, reg.Y3}
	t := []reg.VecPhysical{reg.Y4, reg.Y5, reg.Y6, reg.Y7}
	for _, r := range acc {
		VPXOR(r, r, r)
	}
	CMPQ(k, U8(4))
	JL(LabelRef("qcol_tail"))
	Label("qcol_loop4")
	for u := range 4 {
		VPBROADCASTD(Mem{Base: b, Disp: 128 * u}, t[u])
		raw("VPDPBUSD", Mem{Base: a, Disp: 32 * u}, t[u], acc[u])
	}
	ADDQ(U32(4*128), b)
	ADDQ(U32(4*32), a)
	SUBQ(U8(4), k)
	CMPQ(k, U8(4))
	JGE(LabelRef("qcol_loop4"))
	Label("qcol_tail")
	TESTQ(k, k)
	JEQ(LabelRef("qcol_done"))
	Label("qcol_loop1")
	VPBROADCASTD(Mem{Base: b}, t[0])
	raw("VPDPBUSD", Mem{Base: a}, t[0], acc[0])
	ADDQ(U32(128), b)
	ADDQ(U8(32), a)
	DECQ(k)
	JNE(LabelRef("qcol_loop1"))
	Label("qcol_done")
	VPADDD(acc[1], acc[0], acc[0])
	VPADDD(acc[3], acc[2], acc[2])
	VPADDD(acc[2], acc[0], acc[0])
	out := Load(Param("acc"), reg.RDX)
	VMOVDQU(acc[0], Mem{Base: out})
	VZEROUPPER()
	RET()
}

// qcol8VNNI is qcolVNNI for 8 weight strips at once (strip i at a +
// i·stride bytes): one VPBROADCASTD of the column's quad per step serves
// eight VPDPBUSDs (the column's cache line is loaded once for the eight
// strips, not once per strip), whose eight accumulators are independent;
// acc[8i..8i+7] are strip i's sums.
func qcol8VNNI() {
	TEXT("qcol8VNNI", NOSPLIT, "func(k4 int, a *int8, stride int, b *uint8, acc *int32)")
	Pragma("noescape")
	Doc("qcol8VNNI is the AVX-512 VNNI twin of qcol8Generic.")
	k := Load(Param("k4"), reg.RCX)
	a := Load(Param("a"), reg.RSI)
	s1 := Load(Param("stride"), reg.R8)
	b := Load(Param("b"), reg.RDI)
	s3, a4 := reg.R9, reg.R10
	LEAQ(Mem{Base: s1, Index: s1, Scale: 2}, s3)
	LEAQ(Mem{Base: a, Index: s1, Scale: 4}, a4)
	acc := make([]reg.VecPhysical, 8)
	for i := range acc {
		acc[i] = reg.VecPhysical(zmm(i).AsY().(reg.VecPhysical))
		VPXOR(acc[i], acc[i], acc[i])
	}
	src := func(i int) Mem {
		base := a
		if i >= 4 {
			base = a4
		}
		switch i % 4 {
		case 0:
			return Mem{Base: base}
		case 1:
			return Mem{Base: base, Index: s1, Scale: 1}
		case 2:
			return Mem{Base: base, Index: s1, Scale: 2}
		}
		return Mem{Base: base, Index: s3, Scale: 1}
	}
	t := reg.Y8
	TESTQ(k, k)
	JEQ(LabelRef("qcol8_done"))
	Label("qcol8_loop")
	VPBROADCASTD(Mem{Base: b}, t)
	for i := range acc {
		raw("VPDPBUSD", src(i), t, acc[i])
	}
	ADDQ(U32(128), b)
	ADDQ(U8(32), a)
	ADDQ(U8(32), a4)
	DECQ(k)
	JNE(LabelRef("qcol8_loop"))
	Label("qcol8_done")
	out := Load(Param("acc"), reg.RDX)
	for i := range acc {
		VMOVDQU(acc[i], Mem{Base: out, Disp: 32 * i})
	}
	VZEROUPPER()
	RET()
}
