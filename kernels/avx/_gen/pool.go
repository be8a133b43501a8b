package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// maxPoolRowF32AVX512 pools rows output rows of n outputs each of a 2×2
// stride-2 max pool (output row r from input rows 2r and 2r+1, w floats
// apart), 16 outputs per step: 32 floats of each row (masked to 2n),
// split into even and odd columns with VPERMT2PS, and the four taps
// combined in row-major order as b = v > b ? v : b (VMAXPS with b as the
// Intel second source: ties and NaN keep b, as the portable pool).
func maxPoolRowF32AVX512() {
	TEXT("maxPoolRowF32AVX512", NOSPLIT, "func(out, x *float32, w, n, rows int, lanes *int32)")
	Pragma("noescape")
	Doc("maxPoolRowF32AVX512 is the AVX-512 twin of maxPoolRowF32Generic.")
	out := Load(Param("out"), reg.RDI)
	x := Load(Param("x"), reg.R13)
	w := Load(Param("w"), reg.R14)
	SHLQ(U8(2), w)
	rows := Load(Param("rows"), reg.R15)
	lanes := Load(Param("lanes"), reg.R8)
	x0, x1, n, o := reg.RSI, reg.RDX, reg.RCX, reg.RBX
	even, odd := reg.Z30, reg.Z29
	VMOVDQU32(Mem{Base: lanes}, even)
	VMOVDQU32(Mem{Base: lanes, Disp: 64}, odd)
	m, two, mask, sixteen := reg.R9, reg.R10, reg.R11, reg.R12
	MOVQ(U32(16), sixteen)
	TESTQ(rows, rows)
	JLE(LabelRef("pool_done"))
	Label("pool_row")
	MOVQ(x, x0)
	LEAQ(Mem{Base: x, Index: w, Scale: 1}, x1)
	MOVQ(out, o)
	Load(Param("n"), n)
	TESTQ(n, n)
	JLE(LabelRef("pool_done"))
	Label("pool_loop")
	MOVQ(n, m)
	CMPQ(n, sixteen)
	CMOVQGT(sixteen, m)
	LEAQ(Mem{Base: m, Index: m, Scale: 1}, two)
	MOVQ(I32(-1), mask)
	BZHIQ(two, mask, mask)
	KMOVW(mask.As32(), reg.K1)
	SHRQ(U8(16), mask)
	KMOVW(mask.As32(), reg.K2)
	MOVQ(I32(-1), mask)
	BZHIQ(m, mask, mask)
	KMOVW(mask.As32(), reg.K3)
	VMOVUPS_Z(Mem{Base: x0}, reg.K1, reg.Z0)
	VMOVUPS_Z(Mem{Base: x0, Disp: 64}, reg.K2, reg.Z1)
	VMOVUPS_Z(Mem{Base: x1}, reg.K1, reg.Z2)
	VMOVUPS_Z(Mem{Base: x1, Disp: 64}, reg.K2, reg.Z3)
	VMOVAPS(reg.Z0, reg.Z4)
	VPERMT2PS(reg.Z1, even, reg.Z4)
	VMOVAPS(reg.Z0, reg.Z5)
	VPERMT2PS(reg.Z1, odd, reg.Z5)
	VMOVAPS(reg.Z2, reg.Z6)
	VPERMT2PS(reg.Z3, even, reg.Z6)
	VMOVAPS(reg.Z2, reg.Z7)
	VPERMT2PS(reg.Z3, odd, reg.Z7)
	VMAXPS(reg.Z4, reg.Z5, reg.Z4) // Z4 = Z5 > Z4 ? Z5 : Z4
	VMAXPS(reg.Z4, reg.Z6, reg.Z4)
	VMAXPS(reg.Z4, reg.Z7, reg.Z4)
	VMOVUPS(reg.Z4, reg.K3, Mem{Base: o})
	ADDQ(U8(128), x0)
	ADDQ(U8(128), x1)
	ADDQ(U8(64), o)
	SUBQ(m, n)
	JG(LabelRef("pool_loop"))
	// next output row: two input rows down, n outputs on
	LEAQ(Mem{Base: x, Index: w, Scale: 2}, x)
	Load(Param("n"), n)
	LEAQ(Mem{Base: out, Index: n, Scale: 4}, out)
	DECQ(rows)
	JNE(LabelRef("pool_row"))
	Label("pool_done")
	VZEROUPPER()
	RET()
}

// maxPoolRowAVX512 computes n outputs of one row of a kh×kw max pool
// whose windows lie inside the input (no padding), stride 1 or 2 along the
// row (s2 = stride−1; stride 2 keeps the even lanes of two loads), 16
// outputs per zmm: the first tap, then each later tap in row-major order
// replaces the maximum only when greater (VMAXPS with the maximum as the
// Intel second source: ties and NaN keep it), as the portable pool.
func maxPoolRowAVX512() {
	TEXT("maxPoolRowAVX512", NOSPLIT, "func(out, x *float32, ldx, kh, kw, s2 int, idx *int32, n int)")
	Pragma("noescape")
	Doc("maxPoolRowAVX512 is the AVX-512 twin of maxPoolRowGeneric.")
	out := Load(Param("out"), reg.RDI)
	x := Load(Param("x"), reg.RSI)
	ldx := Load(Param("ldx"), reg.R8)
	SHLQ(U8(2), ldx)
	s2 := Load(Param("s2"), reg.R12)
	idx := Load(Param("idx"), reg.R13)
	VMOVDQU32(Mem{Base: idx}, reg.Z31)
	n := Load(Param("n"), reg.RCX)
	step := reg.R14 // bytes between chunks of 16 outputs
	MOVQ(U32(64), step)
	TESTQ(s2, s2)
	JEQ(LabelRef("mp_s1"))
	MOVQ(U32(128), step)
	Label("mp_s1")
	TESTQ(n, n)
	JLE(LabelRef("mp_done"))
	Label("mp_chunk")
	MOVQ(n, reg.RAX)
	CMPQ(reg.RAX, U8(16))
	JLE(LabelRef("mp_m"))
	MOVQ(U32(16), reg.RAX)
	Label("mp_m")
	MOVQ(I32(-1), reg.RBX)
	BZHIQ(reg.RAX, reg.RBX, reg.RBX)
	KMOVW(reg.EBX, reg.K1) // outputs (and stride-1 loads)
	LEAQ(Mem{Base: reg.RAX, Index: reg.RAX, Scale: 1, Disp: -1}, reg.RDX)
	MOVQ(I32(-1), reg.RBX)
	BZHIQ(reg.RDX, reg.RBX, reg.RBX)
	KMOVW(reg.EBX, reg.K2) // stride-2 loads: 2m−1 floats, never past the last window
	SHRQ(U8(16), reg.RBX)
	KMOVW(reg.EBX, reg.K3)
	acc := reg.Z0
	first := reg.R15 // 1 until the first tap is in acc
	MOVQ(U32(1), first)
	MOVQ(x, reg.R9) // row pointer
	Load(Param("kh"), reg.R10)
	Label("mp_rows")
	MOVQ(reg.R9, reg.R11) // tap pointer
	Load(Param("kw"), reg.RDX)
	Label("mp_cols")
	TESTQ(s2, s2)
	JNE(LabelRef("mp_load2"))
	VMOVUPS_Z(Mem{Base: reg.R11}, reg.K1, reg.Z1)
	JMP(LabelRef("mp_have"))
	Label("mp_load2")
	VMOVUPS_Z(Mem{Base: reg.R11}, reg.K2, reg.Z1)
	VMOVUPS_Z(Mem{Base: reg.R11, Disp: 64}, reg.K3, reg.Z2)
	VPERMT2PS(reg.Z2, reg.Z31, reg.Z1)
	Label("mp_have")
	TESTQ(first, first)
	JEQ(LabelRef("mp_max"))
	VMOVAPS(reg.Z1, acc)
	XORQ(first, first)
	JMP(LabelRef("mp_next"))
	Label("mp_max")
	VMAXPS(acc, reg.Z1, acc) // acc = Z1 > acc ? Z1 : acc
	Label("mp_next")
	ADDQ(U8(4), reg.R11)
	DECQ(reg.RDX)
	JNE(LabelRef("mp_cols"))
	ADDQ(ldx, reg.R9)
	DECQ(reg.R10)
	JNE(LabelRef("mp_rows"))
	VMOVUPS(acc, reg.K1, Mem{Base: out})
	ADDQ(U8(64), out)
	ADDQ(step, x)
	SUBQ(reg.RAX, n)
	JG(LabelRef("mp_chunk"))
	Label("mp_done")
	VZEROUPPER()
	RET()
}
