package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// sgemmAVX2 computes the same 8×32 tile as sgemmAVX512 with AVX2+FMA,
// for CPUs without AVX-512 (plans keep their packed layout): 16 ymm
// registers hold 8 rows × 8 columns at a time, so the tile is four passes
// over the k loop, one per 8-column quarter. It stores the raw tile
// (row-major, NR columns); the caller applies the epilogue.
func sgemmAVX2() {
	TEXT("sgemm8x32AVX2", NOSPLIT, "func(k int, a, b *float32, ldb int, tile *float32)")
	Pragma("noescape")
	Doc("sgemm8x32AVX2 accumulates a full 8×32 tile (all 32 columns of b are read) into tile, row-major.")
	ldb := Load(Param("ldb"), reg.R8)
	SHLQ(U8(2), ldb)
	tile := Load(Param("tile"), reg.RDX)
	for qd := 0; qd < 4; qd++ {
		k := Load(Param("k"), reg.RCX)
		a := Load(Param("a"), reg.RSI)
		b := Load(Param("b"), reg.RDI)
		acc := []reg.VecPhysical{reg.Y0, reg.Y1, reg.Y2, reg.Y3, reg.Y4, reg.Y5, reg.Y6, reg.Y7}
		for _, r := range acc {
			VXORPS(r, r, r)
		}
		loop, done := "loop"+string(rune('0'+qd)), "done"+string(rune('0'+qd))
		TESTQ(k, k)
		JEQ(LabelRef(done))
		Label(loop)
		VMOVUPS(Mem{Base: b, Disp: 32 * qd}, reg.Y8)
		for i := 0; i < mr; i++ {
			t := []reg.VecPhysical{reg.Y9, reg.Y10, reg.Y11, reg.Y12}[i%4]
			VBROADCASTSS(Mem{Base: a, Disp: 4 * i}, t)
			VFMADD231PS(reg.Y8, t, acc[i])
		}
		ADDQ(U8(4*mr), a)
		ADDQ(ldb, b)
		DECQ(k)
		JNE(LabelRef(loop))
		Label(done)
		for i := 0; i < mr; i++ {
			VMOVUPS(acc[i], Mem{Base: tile, Disp: 4 * (i*nr + 8*qd)})
		}
	}
	VZEROUPPER()
	RET()
}
