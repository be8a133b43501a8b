package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// dwRowAVX512 computes up to 16 outputs of one row of one depthwise
// channel over a zero-padded plane: acc = Σ_{i<kh, j<kw} w[i*kw+j]·x[i*dh
// rows, j*dw + o*stride cols] in (i, j) order, stride 1 or 2 (stride 2
// loads 32 floats and keeps the even ones with VPERMT2PS), then the
// sgemm epilogue flags (bias as a scalar, residual, clamp) and a masked
// store of n outputs.
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
	x := Load(Param("x"), reg.RSI)
	ldx := Load(Param("ldx"), reg.R8)
	SHLQ(U8(2), ldx)
	w := Load(Param("w"), reg.RDI)
	kh := Load(Param("kh"), reg.R9)
	dh := Load(Param("dh"), reg.R10)
	IMULQ(ldx, dh) // bytes between tap rows
	dw := Load(Param("dw"), reg.R11)
	SHLQ(U8(2), dw)
	s2 := Load(Param("s2"), reg.R12)
	idx := Load(Param("idx"), reg.R13)
	VMOVDQU32(Mem{Base: idx}, reg.Z31)
	acc := reg.Z0
	VXORPS(acc, acc, acc)
	Label("dwrows")
	Load(Param("kw"), reg.RCX)
	MOVQ(x, reg.RAX) // tap pointer in this row
	Label("dwcols")
	VBROADCASTSS(Mem{Base: w}, reg.Z3)
	TESTQ(s2, s2)
	JNE(LabelRef("dwstride2"))
	VMOVUPS(Mem{Base: reg.RAX}, reg.Z1)
	JMP(LabelRef("dwfma"))
	Label("dwstride2")
	VMOVUPS(Mem{Base: reg.RAX}, reg.Z1)
	VMOVUPS(Mem{Base: reg.RAX, Disp: 64}, reg.Z2)
	VPERMT2PS(reg.Z2, reg.Z31, reg.Z1)
	Label("dwfma")
	VFMADD231PS(reg.Z1, reg.Z3, acc)
	ADDQ(U8(4), w)
	ADDQ(dw, reg.RAX)
	DECQ(reg.RCX)
	JNE(LabelRef("dwcols"))
	ADDQ(dh, x)
	DECQ(kh)
	JNE(LabelRef("dwrows"))

	n := Load(Param("n"), reg.RAX)
	MOVQ(I32(-1), reg.RBX)
	BZHIQ(n, reg.RBX, reg.RBX)
	KMOVW(reg.EBX, reg.K1)
	flags := Load(Param("flags"), reg.R14)
	TESTQ(U32(dwScale), flags)
	JEQ(LabelRef("dwnoscale"))
	VBROADCASTSS(NewParamAddr("scale", 120), reg.Z4)
	VMULPS(reg.Z4, acc, acc)
	Label("dwnoscale")
	TESTQ(U32(flagBiasRow), flags)
	JEQ(LabelRef("dwnobias"))
	VBROADCASTSS(NewParamAddr("bias", 88), reg.Z4)
	VADDPS(reg.Z4, acc, acc)
	Label("dwnobias")
	TESTQ(U32(flagResid), flags)
	JEQ(LabelRef("dwnoresid"))
	resid := Load(Param("resid"), reg.RDX)
	VMOVUPS_Z(Mem{Base: resid}, reg.K1, reg.Z4)
	VADDPS(reg.Z4, acc, acc)
	Label("dwnoresid")
	TESTQ(U32(flagClamp), flags)
	JEQ(LabelRef("dwnoclamp"))
	VBROADCASTSS(NewParamAddr("lo", 104), reg.Z5)
	VBROADCASTSS(NewParamAddr("hi", 108), reg.Z6)
	VMAXPS(acc, reg.Z5, acc)
	VMINPS(acc, reg.Z6, acc)
	Label("dwnoclamp")
	out := Load(Param("out"), reg.RDX)
	TESTQ(U32(dwQuant), flags)
	JNE(LabelRef("dwquant"))
	VMOVUPS(acc, reg.K1, Mem{Base: out})
	JMP(LabelRef("dwdone"))
	// codes: y/ys saturated (NaN to the low bound), rounded half to even,
	// plus the zero point, narrowed (kilnq.Layer.QuantizeOut).
	Label("dwquant")
	VBROADCASTSS(NewParamAddr("ys", 124), reg.Z5)
	VBROADCASTSS(NewParamAddr("qlo", 128), reg.Z6)
	VBROADCASTSS(NewParamAddr("qhi", 132), reg.Z7)
	MOVL(NewParamAddr("yz", 136), reg.R15L)
	VPBROADCASTD(reg.R15L, reg.Z8)
	VDIVPS(reg.Z5, acc, acc)
	VMAXPS(reg.Z6, acc, acc)
	VMINPS(reg.Z7, acc, acc)
	VCVTPS2DQ(acc, acc)
	VPADDD(reg.Z8, acc, acc)
	TESTQ(U32(dwUnsigned), flags)
	JNE(LabelRef("dwu8"))
	VPMOVSDB(acc, reg.K1, Mem{Base: out})
	JMP(LabelRef("dwdone"))
	Label("dwu8")
	VPMOVUSDB(acc, reg.K1, Mem{Base: out})
	Label("dwdone")
	VZEROUPPER()
	RET()
}
