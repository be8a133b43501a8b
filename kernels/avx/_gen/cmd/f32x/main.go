// Command f32x generates kernels/avx/f32extra_amd64.s: FP32 kernels around
// the 8×32 micro-kernel (the few-column GEMM tail, the stride-2 im2col). It is separate from
// _gen's main command (sgemm_amd64.s) and int8x (qextra_amd64.s) so that
// each generated file has one generator; all share _gen's go.mod:
//
//	cd kernels/avx/_gen && go run ./cmd/f32x -pkg avx -out ../f32extra_amd64.s -stubs ../f32extra_stubs_amd64.go
package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

const mr = 8 // rows of a packed A strip (kernels/avx.MR)

// colStrips and colCols bound one call of the column kernel: up to 8 A
// strips (64 rows) by up to 3 columns, 24 ymm accumulators.
const colStrips, colCols = 8, 3

func main() {
	ConstraintExpr("!noasm,amd64")
	sgemmColsAVX512()
	im2colSegsS2AVX512()
	Generate()
}

// sgemmColsAVX512 is the GEMM for the last 1–3 columns of an output whose
// width is not a multiple of 16 (a 7×7 conv's 49th column): the
// micro-kernel would compute them in a 16- or 32-wide strip (16 columns of
// FMAs for 1). Here up to 8 packed A strips are the vector side (one ymm
// of 8 rows per strip and k step, straight from memory) and each column
// of B one broadcast per k step, so every FMA is useful and the
// strips × cols accumulators are independent chains (each strip's 8 rows
// are loaded once per k step for all the columns). Each sum is one FMA
// chain in increasing p from acc's value, exactly as the micro-kernel's
// lane for that element, so the results are the same bit for bit.
func sgemmColsAVX512() {
	TEXT("sgemmColsAVX512", NOSPLIT, "func(k int, a *float32, astride, strips int, b *float32, ldb, cols int, acc *float32)")
	Pragma("noescape")
	Doc("sgemmColsAVX512 is the AVX-512VL twin of sgemmColsGeneric.")
	k := Load(Param("k"), reg.RCX)
	a0 := Load(Param("a"), reg.RSI)
	s1 := Load(Param("astride"), reg.R8)
	SHLQ(U8(2), s1) // bytes between strips
	s3 := reg.R9
	LEAQ(Mem{Base: s1, Index: s1, Scale: 2}, s3)
	a4 := reg.R10
	LEAQ(Mem{Base: a0, Index: s1, Scale: 4}, a4)
	ns := Load(Param("strips"), reg.R11)
	b := Load(Param("b"), reg.RDI)
	ldb := Load(Param("ldb"), reg.R12)
	SHLQ(U8(2), ldb)
	nc := Load(Param("cols"), reg.R13)
	acc := Load(Param("acc"), reg.RDX)
	aAt := func(s int) Mem {
		switch s {
		case 0:
			return Mem{Base: a0}
		case 1:
			return Mem{Base: a0, Index: s1, Scale: 1}
		case 2:
			return Mem{Base: a0, Index: s1, Scale: 2}
		case 3:
			return Mem{Base: a0, Index: s3, Scale: 1}
		case 4:
			return Mem{Base: a4}
		case 5:
			return Mem{Base: a4, Index: s1, Scale: 1}
		case 6:
			return Mem{Base: a4, Index: s1, Scale: 2}
		}
		return Mem{Base: a4, Index: s3, Scale: 1}
	}
	// acc[(c·8 + s)·8 + i]: column c, strip s, row i.
	for c := 1; c <= colCols; c++ {
		CMPQ(nc, U8(c))
		JNE(LabelRef(fmt.Sprintf("not_cols%d", c)))
		for s := 1; s <= colStrips; s++ {
			CMPQ(ns, U8(s))
			JEQ(LabelRef(fmt.Sprintf("cols%d_strips%d", c, s)))
		}
		RET()
		Label(fmt.Sprintf("not_cols%d", c))
	}
	RET()
	for c := 1; c <= colCols; c++ {
		for s := 1; s <= colStrips; s++ {
			name := fmt.Sprintf("cols%d_strips%d", c, s)
			Label(name)
			regs := make([][]reg.VecPhysical, c)
			for ci := 0; ci < c; ci++ {
				regs[ci] = make([]reg.VecPhysical, s)
				for si := 0; si < s; si++ {
					regs[ci][si] = yreg(ci*s + si)
					VMOVUPS(Mem{Base: acc, Disp: 4 * (ci*mr + si) * mr}, regs[ci][si])
				}
			}
			TESTQ(k, k)
			JEQ(LabelRef(name + "_store"))
			Label(name + "_loop")
			for ci := 0; ci < c; ci++ {
				t := yreg(24 + ci)
				VBROADCASTSS(Mem{Base: b, Disp: 4 * ci}, t)
			}
			for si := 0; si < s; si++ {
				if c == 1 {
					VFMADD231PS(aAt(si), yreg(24), regs[0][si])
					continue
				}
				t := yreg(27 + si%2) // the strip's 8 rows, loaded once for the c columns
				VMOVUPS(aAt(si), t)
				for ci := 0; ci < c; ci++ {
					VFMADD231PS(t, yreg(24+ci), regs[ci][si])
				}
			}
			ADDQ(U8(4*mr), a0)
			ADDQ(U8(4*mr), a4)
			ADDQ(ldb, b)
			DECQ(k)
			JNE(LabelRef(name + "_loop"))
			Label(name + "_store")
			for ci := 0; ci < c; ci++ {
				for si := 0; si < s; si++ {
					VMOVUPS(regs[ci][si], Mem{Base: acc, Disp: 4 * (ci*mr + si) * mr})
				}
			}
			VZEROUPPER()
			RET()
		}
	}
}

func yreg(i int) reg.VecPhysical {
	return []reg.VecPhysical{reg.Y0, reg.Y1, reg.Y2, reg.Y3, reg.Y4, reg.Y5, reg.Y6, reg.Y7, reg.Y8, reg.Y9,
		reg.Y10, reg.Y11, reg.Y12, reg.Y13, reg.Y14, reg.Y15, reg.Y16, reg.Y17, reg.Y18, reg.Y19, reg.Y20,
		reg.Y21, reg.Y22, reg.Y23, reg.Y24, reg.Y25, reg.Y26, reg.Y27, reg.Y28, reg.Y29, reg.Y30, reg.Y31}[i]
}
