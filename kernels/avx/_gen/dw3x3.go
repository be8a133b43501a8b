package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// dw3x3F32 is a whole FP32 3×3 depthwise plane (planes of them per call)
// read in place, with no zero-bordered copy: 16 outputs per zmm, four output
// rows per step (then single rows for the tail), stride st in both
// directions. Each input row's taps come from merge-free masked loads
// (zeroing: a column outside the plane reads 0.0) and a row outside the
// plane is a zero register, so every output still gets all nine FMAs in
// (kh, kw) order from a zero accumulator: the same sums, bit for bit, as
// dwPlaneAVX512 over the padded copy. Stride 2 loads 33 floats per input row
// once: the even ones of the first 32 (VPERMT2PS) are kernel column 0, the
// odd ones column 1, column 0 moved down a lane over float 32 (VALIGND)
// column 2 (two loads and a permute per tap were 9.1 ns per 16 outputs at
// 112×112, this 6.5). The column masks depend only on the
// chunk, so the loop runs chunks outer, rows inner. Epilogue as
// dwPlaneAVX512: bias (per plane, FlagBiasRow), residual, clamp.
func dw3x3F32(st int) {
	name := fmt.Sprintf("dw3x3S%dAVX512", st)
	TEXT(name, NOSPLIT, "func(x *float32, w, h int, wt, bias, out *float32, ow, oh, pt, pl int, resid *float32, lo, hi float32, flags, planes int, idx *int32)")
	Pragma("noescape")
	Doc(name + " is the AVX-512 twin of dw3x3Generic at stride " + fmt.Sprint(st) + ".")
	l := func(s string) LabelRef { return LabelRef(s + "_" + name) }
	lab := func(s string) { Label(s + "_" + name) }
	x, w, h := reg.RSI, reg.R8, reg.R9
	Load(Param("x"), x)
	Load(Param("w"), w)
	Load(Param("h"), h)
	outCol, residCol, r, c0, ih0, flags := reg.R10, reg.R11, reg.R12, reg.R13, reg.R14, reg.R15
	Load(Param("flags"), flags)
	VBROADCASTSS(NewParamAddr("lo", 88), reg.Z26)
	VBROADCASTSS(NewParamAddr("hi", 92), reg.Z27)
	if st == 2 {
		Load(Param("idx"), reg.RAX)
		VMOVDQU32(Mem{Base: reg.RAX}, reg.Z31) // even lanes of 32
		VPTERNLOGD(U8(0xff), reg.Z30, reg.Z30, reg.Z30)
		VPSUBD(reg.Z30, reg.Z31, reg.Z30) // odd lanes: even + 1
	}
	VXORPS(reg.Z7, reg.Z7, reg.Z7)
	for _, n := range []string{"oh", "ow", "planes"} {
		Load(Param(n), reg.RAX)
		TESTQ(reg.RAX, reg.RAX)
		JLE(l("done"))
	}
	outPlane, residPlane, wPlane, biasPlane, left := AllocLocal(8), AllocLocal(8), AllocLocal(8), AllocLocal(8), AllocLocal(8)
	for _, p := range []struct {
		n string
		m Mem
	}{{"out", outPlane}, {"resid", residPlane}, {"wt", wPlane}, {"bias", biasPlane}, {"planes", left}} {
		Load(Param(p.n), reg.RAX)
		MOVQ(reg.RAX, p.m)
	}

	lab("plane")
	MOVQ(wPlane, reg.RDI)
	for i := 0; i < 9; i++ {
		VBROADCASTSS(Mem{Base: reg.RDI, Disp: 4 * i}, zmm(16+i))
	}
	TESTQ(U32(flagBiasRow), flags)
	JEQ(l("nobiasload"))
	MOVQ(biasPlane, reg.RDI)
	VBROADCASTSS(Mem{Base: reg.RDI}, reg.Z25)
	lab("nobiasload")
	XORQ(c0, c0)

	lab("chunk")
	// column masks of tap column j: from iw = c0·st − pl + j, the valid run bits b of bzhi(ones << max(0, −iw), clamp(w − iw, 0, 64))
	// for the 16 (stride 1) or 33 (stride 2: bits 0–31 and 32) floats from iw.
	masks := []reg.OpmaskPhysical{reg.K1, reg.K2, reg.K3, reg.K4, reg.K5, reg.K6}
	for j := 0; j < 3; j++ {
		if st == 2 && j > 0 {
			break // one run of 33 floats serves all three tap columns
		}
		MOVQ(c0, reg.RAX)
		if st == 2 {
			SHLQ(U8(1), reg.RAX)
		}
		Load(Param("pl"), reg.RBX)
		SUBQ(reg.RBX, reg.RAX)
		if j > 0 {
			ADDQ(U8(j), reg.RAX)
		}
		XORQ(reg.RCX, reg.RCX)
		MOVQ(reg.RAX, reg.RDX)
		NEGQ(reg.RDX)
		CMOVQGT(reg.RDX, reg.RCX)
		MOVQ(I32(-1), reg.RDI)
		SHLXQ(reg.RCX, reg.RDI, reg.RDI)
		MOVQ(w, reg.RDX)
		SUBQ(reg.RAX, reg.RDX)
		MOVQ(U32(64), reg.RCX)
		CMPQ(reg.RDX, reg.RCX)
		CMOVQGT(reg.RCX, reg.RDX)
		XORQ(reg.RCX, reg.RCX)
		TESTQ(reg.RDX, reg.RDX)
		CMOVQLT(reg.RCX, reg.RDX)
		BZHIQ(reg.RDX, reg.RDI, reg.RDI)
		if st == 1 {
			KMOVW(reg.EDI, masks[j])
		} else {
			KMOVW(reg.EDI, masks[0])
			SHRQ(U8(16), reg.RDI)
			KMOVW(reg.EDI, masks[1])
			SHRQ(U8(16), reg.RDI)
			ANDQ(U8(1), reg.RDI)
			KMOVW(reg.EDI, masks[2]) // float 32 of the run
		}
	}
	// store mask K7: min(16, ow − c0) lanes
	Load(Param("ow"), reg.RCX)
	SUBQ(c0, reg.RCX)
	MOVQ(U32(16), reg.RDX)
	CMPQ(reg.RCX, reg.RDX)
	CMOVQGT(reg.RDX, reg.RCX)
	MOVQ(I32(-1), reg.RDX)
	BZHIQ(reg.RCX, reg.RDX, reg.RDX)
	KMOVW(reg.EDX, reg.K7)
	// outCol/residCol: this chunk's first output (and residual) of row 0
	MOVQ(outPlane, outCol)
	LEAQ(Mem{Base: outCol, Index: c0, Scale: 4}, outCol)
	MOVQ(residPlane, residCol)
	LEAQ(Mem{Base: residCol, Index: c0, Scale: 4}, residCol)
	XORQ(r, r)
	Load(Param("pt"), ih0)
	NEGQ(ih0)
	for _, nr := range []int{4, 1} {
		grp := fmt.Sprintf("rows%d", nr)
		end := fmt.Sprintf("rowsend%d", nr)
		lab(grp)
		Load(Param("oh"), reg.RCX)
		SUBQ(r, reg.RCX)
		CMPQ(reg.RCX, U8(nr))
		JL(l(end))
		dw3x3Rows(name, st, nr, x, w, h, c0, ih0, outCol, residCol, flags)
		ADDQ(U8(nr*st), ih0)
		ADDQ(U8(nr), r)
		JMP(l(grp))
		lab(end)
	}
	ADDQ(U8(16), c0)
	Load(Param("ow"), reg.RCX)
	CMPQ(c0, reg.RCX)
	JL(l("chunk"))
	// next plane: oh·ow outputs (and residuals), h·w inputs, 9 taps, one bias on
	Load(Param("oh"), reg.RDX)
	IMULQ(reg.RCX, reg.RDX)
	SHLQ(U8(2), reg.RDX)
	ADDQ(reg.RDX, outPlane)
	MOVQ(residPlane, reg.RAX)
	TESTQ(reg.RAX, reg.RAX) // nil stays nil
	JEQ(l("nextplane"))
	ADDQ(reg.RDX, residPlane)
	lab("nextplane")
	ADDQ(U8(36), wPlane)
	ADDQ(U8(4), biasPlane)
	MOVQ(w, reg.RDX)
	IMULQ(h, reg.RDX)
	LEAQ(Mem{Base: x, Index: reg.RDX, Scale: 4}, x)
	DECQ(left)
	JNE(l("plane"))
	lab("done")
	VZEROUPPER()
	RET()
}

// dw3x3Rows emits nr output rows of one 16-output chunk: input rows
// ih0 .. ih0+2+(nr−1)·st, each loaded once (its three taps) and fed to
// every accumulator using it, in order, so each accumulator sees its kernel
// rows ascending.
func dw3x3Rows(name string, st, nr int, x, w, h, c0, ih0, outCol, residCol reg.Register, flags reg.Register) {
	l := func(s string) LabelRef { return LabelRef(fmt.Sprintf("%s%d_%s", s, nr, name)) }
	lab := func(s string) { Label(fmt.Sprintf("%s%d_%s", s, nr, name)) }
	accs := []reg.VecPhysical{reg.Z0, reg.Z1, reg.Z2, reg.Z3}[:nr]
	for _, a := range accs {
		VXORPS(a, a, a)
	}
	// RAX: the chunk's first input column
	MOVQ(c0, reg.RAX)
	if st == 2 {
		SHLQ(U8(1), reg.RAX)
	}
	Load(Param("pl"), reg.RBX)
	SUBQ(reg.RBX, reg.RAX)
	taps := []reg.VecPhysical{reg.Z4, reg.Z5, reg.Z6}
	for j := 0; j < 3+(nr-1)*st; j++ {
		skip, next := fmt.Sprintf("out%d_", j), fmt.Sprintf("next%d_", j)
		use := func(t []reg.VecPhysical) {
			for i, a := range accs {
				if kh := j - i*st; kh >= 0 && kh < 3 {
					for kw := 0; kw < 3; kw++ {
						VFMADD231PS(t[kw], zmm(16+3*kh+kw), a)
					}
				}
			}
		}
		LEAQ(Mem{Base: ih0, Disp: j}, reg.RBX)
		CMPQ(reg.RBX, h)
		JAE(l(skip)) // unsigned: a negative row too
		IMULQ(w, reg.RBX)
		ADDQ(reg.RAX, reg.RBX)
		LEAQ(Mem{Base: x, Index: reg.RBX, Scale: 4}, reg.RBX)
		if st == 1 {
			for kw := 0; kw < 3; kw++ {
				VMOVUPS_Z(Mem{Base: reg.RBX, Disp: 4 * kw}, []reg.OpmaskPhysical{reg.K1, reg.K2, reg.K3}[kw], taps[kw])
			}
		} else {
			// floats b .. b+32 of the row: column 0 = the even ones of
			// the first 32, column 1 the odd ones, column 2 column 0
			// moved down a lane with float 32 on top
			VMOVUPS_Z(Mem{Base: reg.RBX}, reg.K1, taps[0])
			VMOVUPS_Z(Mem{Base: reg.RBX, Disp: 64}, reg.K2, reg.Z8)
			VMOVUPS_Z(Mem{Base: reg.RBX, Disp: 128}, reg.K3, taps[2])
			VMOVAPS(taps[0], taps[1])
			VPERMT2PS(reg.Z8, reg.Z31, taps[0])
			VPERMT2PS(reg.Z8, reg.Z30, taps[1])
			VALIGND(U8(1), taps[0], taps[2], taps[2])
		}
		use(taps)
		JMP(l(next))
		lab(skip)
		use([]reg.VecPhysical{reg.Z7, reg.Z7, reg.Z7})
		lab(next)
	}
	Load(Param("ow"), reg.RCX)
	TESTQ(U32(flagBiasRow), flags)
	JEQ(l("nobias"))
	for _, a := range accs {
		VADDPS(reg.Z25, a, a)
	}
	lab("nobias")
	TESTQ(U32(flagResid), flags)
	JEQ(l("noresid"))
	MOVQ(residCol, reg.RBX)
	for _, a := range accs {
		VMOVUPS_Z(Mem{Base: reg.RBX}, reg.K7, reg.Z8)
		VADDPS(reg.Z8, a, a)
		LEAQ(Mem{Base: reg.RBX, Index: reg.RCX, Scale: 4}, reg.RBX)
	}
	MOVQ(reg.RBX, residCol)
	lab("noresid")
	TESTQ(U32(flagClamp), flags)
	JEQ(l("noclamp"))
	for _, a := range accs {
		VMAXPS(a, reg.Z26, a)
		VMINPS(a, reg.Z27, a)
	}
	lab("noclamp")
	for _, a := range accs {
		VMOVUPS(a, reg.K7, Mem{Base: outCol})
		LEAQ(Mem{Base: outCol, Index: reg.RCX, Scale: 4}, outCol)
	}
}
