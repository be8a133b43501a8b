package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// dwRowAVX512 computes up to 64 outputs (four zmm of 16, independent FMA
// chains) of one row of one depthwise channel over a zero-padded plane:
// acc = Σ_{i<kh, j<kw} w[i*kw+j]·x[i*dh rows, j*dw + o*stride cols] in
// (i, j) order, stride 1 or 2 (stride 2 loads 32 floats per zmm and keeps
// the even ones with VPERMT2PS), then the sgemm epilogue flags (bias as a
// scalar, residual, clamp) and masked stores of n outputs. One tap loop
// per (zmm count, stride): a single chain of FMAs waited on their latency.
// Extra flags of the depthwise row kernel (../dwconv.go).
const (
	dwScale    = 32  // acc ·= scale first (INT8: x_scale·w_scale)
	dwQuant    = 64  // store int8 codes
	dwUnsigned = 128 // uint8 codes
)

func dwRowAVX512() {
	TEXT("dwRowAVX512", NOSPLIT, "func(x *float32, ldx int, w *float32, kh, kw, dh, dw, s2 int, idx *int32, out *float32, n int, bias float32, resid *float32, lo, hi float32, flags int, scale, ys, qlo, qhi float32, yz int32)")
	Pragma("noescape")
	Doc("dwRowAVX512 is the AVX-512 twin of dwRowGeneric.")
	acc := []reg.VecPhysical{reg.Z0, reg.Z1, reg.Z2, reg.Z3}
	for _, a := range acc {
		VXORPS(a, a, a)
	}
	idx := Load(Param("idx"), reg.R13)
	VMOVDQU32(Mem{Base: idx}, reg.Z31)
	// Chunk count q = 1 + (n-1)/16, then one loop per (q, stride).
	q := Load(Param("n"), reg.RBX)
	DECQ(q)
	SHRQ(U8(4), q)
	s2 := Load(Param("s2"), reg.R12)
	for nq := 1; nq <= 4; nq++ {
		for st := 1; st <= 2; st++ {
			l := fmt.Sprintf("dw%d_%d", nq, st)
			next := fmt.Sprintf("dwnot%d_%d", nq, st)
			CMPQ(q, U8(nq-1))
			JNE(LabelRef(next))
			CMPQ(s2, U8(st-1))
			JNE(LabelRef(next))
			dwTaps(l, nq, st, acc, func() { Load(Param("x"), reg.RSI) })
			JMP(LabelRef("dwepilogue"))
			Label(next)
		}
	}
	JMP(LabelRef("dwdone")) // n > 64 or a stride above 2: not called so

	Label("dwepilogue")
	flags := Load(Param("flags"), reg.R14)
	VBROADCASTSS(NewParamAddr("scale", 120), reg.Z24)
	VBROADCASTSS(NewParamAddr("bias", 88), reg.Z25)
	VBROADCASTSS(NewParamAddr("lo", 104), reg.Z26)
	VBROADCASTSS(NewParamAddr("hi", 108), reg.Z27)
	VBROADCASTSS(NewParamAddr("ys", 124), reg.Z28)
	VBROADCASTSS(NewParamAddr("qlo", 128), reg.Z29)
	VBROADCASTSS(NewParamAddr("qhi", 132), reg.Z30)
	MOVL(NewParamAddr("yz", 136), reg.R15L)
	VPBROADCASTD(reg.R15L, reg.Z8)
	left := Load(Param("n"), reg.RAX)
	resid := Load(Param("resid"), reg.RDX)
	out := Load(Param("out"), reg.RSI)
	for i, a := range acc {
		l := func(s string) string { return fmt.Sprintf("dw%s%d", s, i) }
		CMPQ(left, U8(0))
		JLE(LabelRef("dwdone"))
		MOVQ(left, reg.RCX)
		CMPQ(reg.RCX, U8(16))
		JLE(LabelRef(l("m")))
		MOVQ(U32(16), reg.RCX)
		Label(l("m"))
		MOVQ(I32(-1), reg.RBX)
		BZHIQ(reg.RCX, reg.RBX, reg.RBX)
		KMOVW(reg.EBX, reg.K1)
		TESTQ(U32(dwScale), flags)
		JEQ(LabelRef(l("noscale")))
		VMULPS(reg.Z24, a, a)
		Label(l("noscale"))
		TESTQ(U32(flagBiasRow), flags)
		JEQ(LabelRef(l("nobias")))
		VADDPS(reg.Z25, a, a)
		Label(l("nobias"))
		TESTQ(U32(flagResid), flags)
		JEQ(LabelRef(l("noresid")))
		VMOVUPS_Z(Mem{Base: resid, Disp: 64 * i}, reg.K1, reg.Z4)
		VADDPS(reg.Z4, a, a)
		Label(l("noresid"))
		TESTQ(U32(flagClamp), flags)
		JEQ(LabelRef(l("noclamp")))
		VMAXPS(a, reg.Z26, a)
		VMINPS(a, reg.Z27, a)
		Label(l("noclamp"))
		TESTQ(U32(dwQuant), flags)
		JNE(LabelRef(l("quant")))
		VMOVUPS(a, reg.K1, Mem{Base: out, Disp: 64 * i})
		JMP(LabelRef(l("next")))
		// codes: y/ys saturated (NaN to the low bound), rounded half to even,
		// plus the zero point, narrowed (kilnq.Layer.QuantizeOut).
		Label(l("quant"))
		VDIVPS(reg.Z28, a, a)
		VMAXPS(reg.Z29, a, a)
		VMINPS(reg.Z30, a, a)
		VCVTPS2DQ(a, a)
		VPADDD(reg.Z8, a, a)
		TESTQ(U32(dwUnsigned), flags)
		JNE(LabelRef(l("u8")))
		VPMOVSDB(a, reg.K1, Mem{Base: out, Disp: 16 * i})
		JMP(LabelRef(l("next")))
		Label(l("u8"))
		VPMOVUSDB(a, reg.K1, Mem{Base: out, Disp: 16 * i})
		Label(l("next"))
		SUBQ(U8(16), left)
	}
	Label("dwdone")
	VZEROUPPER()
	RET()
}

// dwTaps emits the tap loop for nq zmm of outputs at stride st: per tap
// one broadcast of the weight and, per zmm, a load (two and a permute at
// stride 2) and an FMA.
func dwTaps(l string, nq, st int, acc []reg.VecPhysical, loadX func()) {
	loadX()
	x := reg.RSI
	ldx := Load(Param("ldx"), reg.R8)
	SHLQ(U8(2), ldx)
	w := Load(Param("w"), reg.RDI)
	kh := Load(Param("kh"), reg.R9)
	dh := Load(Param("dh"), reg.R10)
	IMULQ(ldx, dh) // bytes between tap rows
	dw := Load(Param("dw"), reg.R11)
	SHLQ(U8(2), dw)
	Label(l + "rows")
	Load(Param("kw"), reg.RCX)
	MOVQ(x, reg.RAX) // tap pointer in this row
	Label(l + "cols")
	VBROADCASTSS(Mem{Base: w}, reg.Z20)
	for i := 0; i < nq; i++ {
		v := reg.VecPhysical(zmm(4 + 2*i))
		if st == 1 {
			VFMADD231PS(Mem{Base: reg.RAX, Disp: 64 * i}, reg.Z20, acc[i])
			continue
		}
		VMOVUPS(Mem{Base: reg.RAX, Disp: 128 * i}, v)
		VPERMT2PS(Mem{Base: reg.RAX, Disp: 128*i + 64}, reg.Z31, v)
		VFMADD231PS(v, reg.Z20, acc[i])
	}
	ADDQ(U8(4), w)
	ADDQ(dw, reg.RAX)
	DECQ(reg.RCX)
	JNE(LabelRef(l + "cols"))
	ADDQ(dh, x)
	DECQ(kh)
	JNE(LabelRef(l + "rows"))
}

// dwPlaneAVX512 is the FP32 plane loop of dwRowAVX512 in assembly: every
// output row (oh rows, sh input rows apart) in chunks of up to 64 outputs,
// each chunk the same tap loop and epilogue (bias, residual, clamp) as one
// dwRowAVX512 call, without a call per chunk (a call cost about as much as
// a 3×3 chunk's FMAs).
func dwPlaneAVX512() {
	TEXT("dwPlaneAVX512", NOSPLIT, "func(x *float32, ldx int, w *float32, kh, kw, dh, dw, s2 int, idx *int32, out *float32, ow, oh, sh int, bias float32, resid *float32, lo, hi float32, flags int)")
	Pragma("noescape")
	Doc("dwPlaneAVX512 is the AVX-512 twin of dwPlaneGeneric.")
	acc := []reg.VecPhysical{reg.Z0, reg.Z1, reg.Z2, reg.Z3}
	idx := Load(Param("idx"), reg.R13)
	VMOVDQU32(Mem{Base: idx}, reg.Z31)
	rowX, rowOut, rowResid, off, rows, flags := reg.RBX, reg.RDX, reg.R12, reg.R13, reg.R14, reg.R15
	Load(Param("x"), rowX)
	Load(Param("out"), rowOut)
	Load(Param("resid"), rowResid)
	Load(Param("oh"), rows)
	Load(Param("flags"), flags)
	VBROADCASTSS(NewParamAddr("bias", 104), reg.Z25)
	VBROADCASTSS(NewParamAddr("lo", 120), reg.Z26)
	VBROADCASTSS(NewParamAddr("hi", 124), reg.Z27)
	TESTQ(rows, rows)
	JLE(LabelRef("dp_done"))
	Label("dp_row")
	XORQ(off, off)
	Label("dp_chunk")
	for _, a := range acc {
		VXORPS(a, a, a)
	}
	// n = min(ow - off, 64); q = (n-1)/16
	Load(Param("ow"), reg.RAX)
	SUBQ(off, reg.RAX)
	CMPQ(reg.RAX, U8(64))
	JLE(LabelRef("dp_n"))
	MOVQ(U32(64), reg.RAX)
	Label("dp_n")
	DECQ(reg.RAX)
	SHRQ(U8(4), reg.RAX)
	Load(Param("s2"), reg.RCX)
	for nq := 1; nq <= 4; nq++ {
		for st := 1; st <= 2; st++ {
			l := fmt.Sprintf("dp%d_%d", nq, st)
			next := fmt.Sprintf("dpnot%d_%d", nq, st)
			CMPQ(reg.RAX, U8(nq-1))
			JNE(LabelRef(next))
			CMPQ(reg.RCX, U8(st-1))
			JNE(LabelRef(next))
			shift := uint8(2 + st - 1) // bytes per output along the row: 4·stride
			dwTaps(l, nq, st, acc, func() {
				MOVQ(off, reg.RSI)
				SHLQ(U8(shift), reg.RSI)
				ADDQ(rowX, reg.RSI)
			})
			JMP(LabelRef("dp_epilogue"))
			Label(next)
		}
	}
	JMP(LabelRef("dp_done")) // a stride above 2: not called so

	Label("dp_epilogue")
	left := reg.RAX
	Load(Param("ow"), left)
	SUBQ(off, left)
	LEAQ(Mem{Base: rowOut, Index: off, Scale: 4}, reg.RSI)
	LEAQ(Mem{Base: rowResid, Index: off, Scale: 4}, reg.RDI)
	for i, a := range acc {
		l := func(s string) string { return fmt.Sprintf("dp%s%d", s, i) }
		CMPQ(left, U8(0))
		JLE(LabelRef("dp_chunk_done"))
		MOVQ(left, reg.RCX)
		CMPQ(reg.RCX, U8(16))
		JLE(LabelRef(l("m")))
		MOVQ(U32(16), reg.RCX)
		Label(l("m"))
		MOVQ(I32(-1), reg.R8)
		BZHIQ(reg.RCX, reg.R8, reg.R8)
		KMOVW(reg.R8.As32(), reg.K1)
		TESTQ(U32(flagBiasRow), flags)
		JEQ(LabelRef(l("nobias")))
		VADDPS(reg.Z25, a, a)
		Label(l("nobias"))
		TESTQ(U32(flagResid), flags)
		JEQ(LabelRef(l("noresid")))
		VMOVUPS_Z(Mem{Base: reg.RDI, Disp: 64 * i}, reg.K1, reg.Z4)
		VADDPS(reg.Z4, a, a)
		Label(l("noresid"))
		TESTQ(U32(flagClamp), flags)
		JEQ(LabelRef(l("noclamp")))
		VMAXPS(a, reg.Z26, a)
		VMINPS(a, reg.Z27, a)
		Label(l("noclamp"))
		VMOVUPS(a, reg.K1, Mem{Base: reg.RSI, Disp: 64 * i})
		SUBQ(U8(16), left)
	}
	Label("dp_chunk_done")
	ADDQ(U8(64), off)
	Load(Param("ow"), reg.RAX)
	CMPQ(off, reg.RAX)
	JL(LabelRef("dp_chunk"))
	// next row: sh·ldx input floats, ow outputs and residuals on
	Load(Param("sh"), reg.RAX)
	Load(Param("ldx"), reg.RCX)
	IMULQ(reg.RCX, reg.RAX)
	LEAQ(Mem{Base: rowX, Index: reg.RAX, Scale: 4}, rowX)
	Load(Param("ow"), reg.RAX)
	LEAQ(Mem{Base: rowOut, Index: reg.RAX, Scale: 4}, rowOut)
	LEAQ(Mem{Base: rowResid, Index: reg.RAX, Scale: 4}, rowResid)
	DECQ(rows)
	JNE(LabelRef("dp_row"))
	Label("dp_done")
	VZEROUPPER()
	RET()
}
