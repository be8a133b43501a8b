// Command avx2 generates kernels/avx/avx2_amd64.s: kernels for CPUs with
// AVX2 but without AVX-512: the GEMM micro-kernels (FP32 with FMA, INT8
// without VNNI) and the 2×2 max pool of the fused conv + pool. Its own generator and output file, beside _gen's main command
// (sgemm_amd64.s, the AVX-512 kernels) and cmd/int8x (qextra_amd64.s); all
// share _gen's go.mod:
//
//	cd kernels/avx/_gen && go run ./cmd/avx2 -pkg avx -out ../avx2_amd64.s -stubs ../avx2_stubs_amd64.go
package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// Tile and packing of kernels/avx's INT8 GEMM (qgemm.go): MR weight rows
// and NR activation columns, 4-deep steps (a step is MR·4 weight bytes and
// NR·4 activation bytes).
const (
	mr8  = 8
	nr32 = 32
)

// lanes is the table 0, 1, …, 7 (int32) that lane masks are compared with.
var lanes Mem

func main() {
	ConstraintExpr("!noasm,amd64")
	lanes = GLOBL("avx2lanes", RODATA|NOPTR)
	for i := 0; i < 8; i++ {
		DATA(4*i, U32(i))
	}
	qacc8x32AVX2()
	qepi8x32AVX2()
	sgemm8x32AVX2()
	maxPoolRowF32AVX2()
	qpoolMax8x32AVX2()
	qpoolPackAVX2()
	packPointwiseAVX2()
	quantizeF32AVX2(false)
	quantizeF32AVX2(true)
	qdwTables()
	for _, s := range []int{1, 2} {
		for _, xu := range []bool{false, true} {
			for _, yu := range []bool{false, true} {
				qdw3x3RowAVX2(s, xu, yu)
			}
		}
	}
	Generate()
}

// qacc8x32AVX2 accumulates the exact int32 8×32 tile Σ u·w of a packed
// weight strip (s8) and a packed activation strip (u8) without VPDPBUSD and
// without VPMADDUBSW, whose 16-bit pair sums saturate (255·127·2 > 32767).
// Each 32-bit lane of a step holds four bytes q0..q3 of one column (or
// row); the kernel splits both operands into 16-bit halves, (q0, q2) and
// (q1, q3): activations zero-extended (AND 0x00FF, shift right logical 8),
// weights sign-extended (shift left 8 then arithmetic right 8, arithmetic
// right 8). VPMADDWD of the even halves gives u0·w0 + u2·w2 per lane, of
// the odd halves u1·w1 + u3·w3; each |product| ≤ 255·128, so the int32 sums
// are exact, and the int32 accumulation wraps exactly like the reference
// loop's. Sixteen ymm registers hold 4 rows × 16 columns of accumulators,
// the split activations, a broadcast weight and the mask, so the tile is
// four passes over the depth (two row halves × two column halves).
func qacc8x32AVX2() {
	TEXT("qacc8x32AVX2", 0, "func(k4 int, a *int8, b *uint8, tile *int32)")
	Pragma("noescape")
	Doc("qacc8x32AVX2 is the AVX2 twin of qaccumulate over a full tile: tile[i*32+j] = Σ_p Σ_q b[p*128+j*4+q]·a[p*32+i*4+q] (int32, row-major).")
	// The depth runs in blocks of qaccBlock steps whose weights are split
	// once into a stack buffer (each step: 8 rows' even halves, then odd
	// halves, 64 bytes), so the four passes broadcast split words instead
	// of splitting each row again; a pass after the first block adds to the
	// tile stored by the block before.
	const qaccBlock = 64
	buf := AllocLocal(64 * qaccBlock)
	tile := Load(Param("tile"), reg.R11)
	kk := Load(Param("k4"), reg.R8)
	a := Load(Param("a"), reg.RSI)
	b := Load(Param("b"), reg.RDI)
	first, n, lim, cnt, bp, wp := reg.R9, reg.RCX, reg.R10, reg.R12, reg.R13, reg.R14
	mask := reg.Y15
	MOVL(U32(0x00FF00FF), reg.EAX)
	VMOVD(reg.EAX, reg.X15)
	VPBROADCASTD(reg.X15, mask)
	XORQ(first, first)
	acc := []reg.VecPhysical{reg.Y0, reg.Y1, reg.Y2, reg.Y3, reg.Y4, reg.Y5, reg.Y6, reg.Y7}
	ue0, uo0, ue1, uo1 := reg.Y8, reg.Y9, reg.Y10, reg.Y11
	we, wo, t := reg.Y12, reg.Y13, reg.Y14
	Label("qacc_block")
	MOVQ(kk, n)
	MOVQ(U32(qaccBlock), lim)
	CMPQ(n, lim)
	CMOVQGT(lim, n)
	// split the block's weights
	MOVQ(a, bp)
	LEAQ(buf, wp)
	MOVQ(n, cnt)
	TESTQ(cnt, cnt)
	JEQ(LabelRef("qacc_split_done"))
	Label("qacc_split")
	VMOVDQU(Mem{Base: bp}, wo)
	VPSLLW(U8(8), wo, we)
	VPSRAW(U8(8), we, we)
	VPSRAW(U8(8), wo, wo)
	VMOVDQU(we, Mem{Base: wp})
	VMOVDQU(wo, Mem{Base: wp, Disp: 32})
	ADDQ(U8(4*mr8), bp)
	ADDQ(U8(64), wp)
	DECQ(cnt)
	JNE(LabelRef("qacc_split"))
	Label("qacc_split_done")
	for pass := 0; pass < 4; pass++ {
		rows, cols := 4*(pass/2), 16*(pass%2) // first row and column of this pass
		loop, done := "qacc_loop"+string(rune('0'+pass)), "qacc_done"+string(rune('0'+pass))
		zero, started := "qacc_zero"+string(rune('0'+pass)), "qacc_started"+string(rune('0'+pass))
		TESTQ(first, first)
		JEQ(LabelRef(zero))
		for i := 0; i < 4; i++ {
			VMOVDQU(Mem{Base: tile, Disp: 4 * ((rows+i)*nr32 + cols)}, acc[2*i])
			VMOVDQU(Mem{Base: tile, Disp: 4 * ((rows+i)*nr32 + cols + 8)}, acc[2*i+1])
		}
		JMP(LabelRef(started))
		Label(zero)
		for _, r := range acc {
			VPXOR(r, r, r)
		}
		Label(started)
		MOVQ(b, bp)
		LEAQ(buf, wp)
		MOVQ(n, cnt)
		TESTQ(cnt, cnt)
		JEQ(LabelRef(done))
		Label(loop)
		VMOVDQU(Mem{Base: bp, Disp: 4 * cols}, uo0)
		VMOVDQU(Mem{Base: bp, Disp: 4*cols + 32}, uo1)
		VPAND(uo0, mask, ue0)
		VPSRLW(U8(8), uo0, uo0)
		VPAND(uo1, mask, ue1)
		VPSRLW(U8(8), uo1, uo1)
		for i := 0; i < 4; i++ {
			VPBROADCASTD(Mem{Base: wp, Disp: 4 * (rows + i)}, we)
			VPBROADCASTD(Mem{Base: wp, Disp: 32 + 4*(rows+i)}, wo)
			VPMADDWD(ue0, we, t)
			VPADDD(t, acc[2*i], acc[2*i])
			VPMADDWD(uo0, wo, t)
			VPADDD(t, acc[2*i], acc[2*i])
			VPMADDWD(ue1, we, t)
			VPADDD(t, acc[2*i+1], acc[2*i+1])
			VPMADDWD(uo1, wo, t)
			VPADDD(t, acc[2*i+1], acc[2*i+1])
		}
		ADDQ(U8(64), wp)
		ADDQ(U32(4*nr32), bp)
		DECQ(cnt)
		JNE(LabelRef(loop))
		Label(done)
		for i := 0; i < 4; i++ {
			VMOVDQU(acc[2*i], Mem{Base: tile, Disp: 4 * ((rows+i)*nr32 + cols)})
			VMOVDQU(acc[2*i+1], Mem{Base: tile, Disp: 4 * ((rows+i)*nr32 + cols + 8)})
		}
	}
	// next block
	MOVQ(n, cnt)
	SHLQ(U8(5), cnt) // 4·MR weight bytes a step
	ADDQ(cnt, a)
	MOVQ(n, cnt)
	SHLQ(U8(7), cnt) // 4·NR activation bytes a step
	ADDQ(cnt, b)
	MOVQ(U32(1), first)
	SUBQ(n, kk)
	JG(LabelRef("qacc_block"))
	VZEROUPPER()
	RET()
}

// Flags of the FP32 micro-kernel's epilogue (kernels/avx/sgemm.go).
const (
	flagBiasRow = 1
	flagBiasCol = 2
	flagResid   = 4
	flagClamp   = 8
	flagAccum   = 16
)

// sgemm8x32AVX2 is the AVX2+FMA twin of sgemmGeneric with the same
// signature as the AVX-512 kernel. Sixteen ymm registers hold 8 rows × 8
// columns of accumulators, so the tile is four passes over the depth, one
// per 8-column quarter; a quarter past nr is skipped, and a partial one
// reads b and touches c only under a lane mask (VMASKMOVPS: masked-off
// lanes are not read, so nothing past a row-major b or c faults). Each
// element is one FMA chain from zero over p; then, in registers and in
// this order, + c (FlagAccum), + bias[row] or bias[col], + resid, clamp
// (max(lo, y) then min(hi, y), operands ordered so that NaN passes), store.
func sgemm8x32AVX2() {
	TEXT("sgemm8x32AVX2", NOSPLIT, "func(k int, a, b *float32, ldb int, c *float32, ldc, mr, nr int, bias, resid *float32, lo, hi float32, flags int)")
	Pragma("noescape")
	Doc("sgemm8x32AVX2 is the AVX2+FMA twin of sgemmGeneric.")
	ldb := Load(Param("ldb"), reg.R8)
	SHLQ(U8(2), ldb)
	nr := Load(Param("nr"), reg.R9)
	mr := Load(Param("mr"), reg.R10)
	ldc := Load(Param("ldc"), reg.R11)
	SHLQ(U8(2), ldc)
	flags := Load(Param("flags"), reg.R12)
	acc := []reg.VecPhysical{reg.Y0, reg.Y1, reg.Y2, reg.Y3, reg.Y4, reg.Y5, reg.Y6, reg.Y7}
	bv, t, mask := reg.Y8, reg.Y9, reg.Y13
	for qd := 0; qd < 4; qd++ {
		sfx := fmt.Sprint(qd)
		CMPQ(nr, U8(8*qd))
		JLE(LabelRef("end")) // no column left for this quarter or any later one
		for _, r := range acc {
			VXORPS(r, r, r)
		}
		CMPQ(nr, U8(8*qd+8))
		JL(LabelRef("part" + sfx))
		avx2Quarter(qd, false, acc, ldb, mr, ldc, flags, bv, t, mask, "full"+sfx)
		JMP(LabelRef("next" + sfx))
		Label("part" + sfx)
		MOVQ(nr, reg.RAX)
		SUBQ(U8(8*qd), reg.RAX)
		VMOVD(reg.EAX, reg.X14)
		VPBROADCASTD(reg.X14, mask)
		VPCMPGTD(lanes, mask, mask) // lane j: nr − 8·qd > j
		avx2Quarter(qd, true, acc, ldb, mr, ldc, flags, bv, t, mask, "part"+sfx+"_")
		Label("next" + sfx)
	}
	Label("end")
	VZEROUPPER()
	RET()
}

// avx2Quarter emits one 8-column quarter: the depth loop, then the
// epilogue for rows < mr, every b/c/bias/resid access masked when masked.
func avx2Quarter(qd int, masked bool, acc []reg.VecPhysical, ldb, mr, ldc, flags reg.Register, bv, t, mask reg.VecPhysical, pfx string) {
	load := func(m Mem, dst reg.VecPhysical) {
		if masked {
			VMASKMOVPS(m, mask, dst)
		} else {
			VMOVUPS(m, dst)
		}
	}
	k := Load(Param("k"), reg.RCX)
	a := Load(Param("a"), reg.RSI)
	b := Load(Param("b"), reg.RDI)
	TESTQ(k, k)
	JEQ(LabelRef(pfx + "epi"))
	Label(pfx + "loop")
	load(Mem{Base: b, Disp: 32 * qd}, bv)
	for i := 0; i < mr8; i++ {
		w := []reg.VecPhysical{reg.Y9, reg.Y10, reg.Y11, reg.Y12}[i%4]
		VBROADCASTSS(Mem{Base: a, Disp: 4 * i}, w)
		VFMADD231PS(bv, w, acc[i])
	}
	ADDQ(U8(4*mr8), a)
	ADDQ(ldb, b)
	DECQ(k)
	JNE(LabelRef(pfx + "loop"))
	Label(pfx + "epi")
	// rowwise applies op to each row i < mr with p pointing at row i of a
	// matrix (its quarter), advancing p by ldc.
	rowwise := func(name string, base string, op func(i int, p reg.Register)) {
		p := reg.RBX
		Load(Param(base), p)
		if qd > 0 {
			ADDQ(U8(32*qd), p)
		}
		for i := 0; i < mr8; i++ {
			CMPQ(mr, U8(i))
			JLE(LabelRef(pfx + name + "done"))
			op(i, p)
			if i < mr8-1 {
				ADDQ(ldc, p)
			}
		}
		Label(pfx + name + "done")
	}
	flagged := func(f int, name string, body func()) {
		TESTQ(U32(f), flags)
		JEQ(LabelRef(pfx + name + "skip"))
		body()
		Label(pfx + name + "skip")
	}
	flagged(flagAccum, "accum", func() {
		rowwise("accum", "c", func(i int, p reg.Register) {
			load(Mem{Base: p}, t)
			VADDPS(acc[i], t, acc[i])
		})
	})
	flagged(flagBiasRow, "brow", func() {
		bias := Load(Param("bias"), reg.RBX)
		for i := 0; i < mr8; i++ {
			CMPQ(mr, U8(i))
			JLE(LabelRef(pfx + "browdone"))
			VBROADCASTSS(Mem{Base: bias, Disp: 4 * i}, t)
			VADDPS(t, acc[i], acc[i])
		}
		Label(pfx + "browdone")
	})
	flagged(flagBiasCol, "bcol", func() {
		bias := Load(Param("bias"), reg.RBX)
		load(Mem{Base: bias, Disp: 32 * qd}, t)
		for i := 0; i < mr8; i++ {
			VADDPS(t, acc[i], acc[i])
		}
	})
	flagged(flagResid, "resid", func() {
		rowwise("resid", "resid", func(i int, p reg.Register) {
			load(Mem{Base: p}, t)
			VADDPS(t, acc[i], acc[i])
		})
	})
	flagged(flagClamp, "clamp", func() {
		Load(Param("lo"), reg.X14)
		Load(Param("hi"), reg.X15)
		VBROADCASTSS(reg.X14, reg.Y14)
		VBROADCASTSS(reg.X15, reg.Y15)
		for i := 0; i < mr8; i++ {
			VMAXPS(acc[i], reg.Y14, acc[i]) // lo > y ? lo : y (NaN y kept)
			VMINPS(acc[i], reg.Y15, acc[i]) // hi < y ? hi : y
		}
	})
	rowwise("store", "c", func(i int, p reg.Register) {
		if masked {
			VMASKMOVPS(acc[i], mask, Mem{Base: p})
		} else {
			VMOVUPS(acc[i], Mem{Base: p})
		}
	})
}

// maxPoolRowF32AVX2 is the AVX2 twin of maxPoolRowF32Generic: per 8
// outputs, two rows of 16 inputs are split into even and odd columns with
// VSHUFPS (within 128-bit lanes, the same way for all four vectors),
// reduced in the reference's order with VMAXPS operands ordered as
// "v > b ? v : b" (NaN in v never replaces b, a NaN b stays), and put back
// in order with VPERMPD. The last n%8 outputs of a row load and store
// under lane masks (VMASKMOVPS: nothing past the row is read or written).
func maxPoolRowF32AVX2() {
	TEXT("maxPoolRowF32AVX2", NOSPLIT, "func(out, x *float32, w, n, rows int)")
	Pragma("noescape")
	Doc("maxPoolRowF32AVX2 is the AVX2 twin of maxPoolRowF32Generic.")
	out := Load(Param("out"), reg.RDI)
	x := Load(Param("x"), reg.RSI)
	w := Load(Param("w"), reg.R8)
	SHLQ(U8(2), w) // bytes per input row
	n := Load(Param("n"), reg.R9)
	rows := Load(Param("rows"), reg.R10)
	TESTQ(rows, rows)
	JEQ(LabelRef("pool_end"))
	TESTQ(n, n)
	JEQ(LabelRef("pool_end"))
	// Tail masks, built once: inputs 2m and 2m−8 lanes, outputs m lanes.
	m := reg.R11
	MOVQ(n, m)
	ANDQ(U8(7), m)
	MOVQ(m, reg.RAX)
	VMOVD(reg.EAX, reg.X10)
	VPBROADCASTD(reg.X10, reg.Y10)
	VPCMPGTD(lanes, reg.Y10, reg.Y10) // output lanes j < m
	SHLQ(U8(1), reg.RAX)
	VMOVD(reg.EAX, reg.X8)
	VPBROADCASTD(reg.X8, reg.Y8)
	VPCMPGTD(lanes, reg.Y8, reg.Y8) // first input vector: lanes j < 2m
	SUBQ(U8(8), reg.RAX)
	VMOVD(reg.EAX, reg.X9)
	VPBROADCASTD(reg.X9, reg.Y9)
	VPCMPGTD(lanes, reg.Y9, reg.Y9) // second input vector: lanes j < 2m − 8
	n8 := reg.R12
	MOVQ(n, n8)
	ANDQ(I8(-8), n8)
	SHLQ(U8(2), n) // bytes per output row
	Label("pool_row")
	MOVQ(x, reg.RAX) // input row 2r
	LEAQ(Mem{Base: x, Index: w, Scale: 1}, reg.RBX)
	MOVQ(out, reg.RDX)
	MOVQ(n8, reg.RCX)
	TESTQ(reg.RCX, reg.RCX)
	JEQ(LabelRef("pool_tail"))
	Label("pool_col")
	VMOVUPS(Mem{Base: reg.RAX}, reg.Y0)
	VMOVUPS(Mem{Base: reg.RAX, Disp: 32}, reg.Y1)
	VMOVUPS(Mem{Base: reg.RBX}, reg.Y2)
	VMOVUPS(Mem{Base: reg.RBX, Disp: 32}, reg.Y3)
	pool8()
	VMOVUPS(reg.Y4, Mem{Base: reg.RDX})
	ADDQ(U8(64), reg.RAX)
	ADDQ(U8(64), reg.RBX)
	ADDQ(U8(32), reg.RDX)
	SUBQ(U8(8), reg.RCX)
	JNE(LabelRef("pool_col"))
	Label("pool_tail")
	TESTQ(m, m)
	JEQ(LabelRef("pool_next"))
	VMASKMOVPS(Mem{Base: reg.RAX}, reg.Y8, reg.Y0)
	VMASKMOVPS(Mem{Base: reg.RAX, Disp: 32}, reg.Y9, reg.Y1)
	VMASKMOVPS(Mem{Base: reg.RBX}, reg.Y8, reg.Y2)
	VMASKMOVPS(Mem{Base: reg.RBX, Disp: 32}, reg.Y9, reg.Y3)
	pool8()
	VMASKMOVPS(reg.Y4, reg.Y10, Mem{Base: reg.RDX})
	Label("pool_next")
	LEAQ(Mem{Base: x, Index: w, Scale: 2}, x)
	ADDQ(n, out)
	DECQ(rows)
	JNE(LabelRef("pool_row"))
	Label("pool_end")
	VZEROUPPER()
	RET()
}

// pool8 reduces Y0:Y1 (16 inputs of row 2r) and Y2:Y3 (row 2r+1) to the 8
// window maxima in Y4, in order.
func pool8() {
	VSHUFPS(U8(0x88), reg.Y1, reg.Y0, reg.Y4) // even columns of row 2r
	VSHUFPS(U8(0xDD), reg.Y1, reg.Y0, reg.Y5) // odd columns of row 2r
	VSHUFPS(U8(0x88), reg.Y3, reg.Y2, reg.Y6) // even columns of row 2r+1
	VSHUFPS(U8(0xDD), reg.Y3, reg.Y2, reg.Y7) // odd columns of row 2r+1
	VMAXPS(reg.Y4, reg.Y5, reg.Y4)            // Intel VMAXPS y4, y5, y4: y5 > y4 ? y5 : y4
	VMAXPS(reg.Y4, reg.Y6, reg.Y4)
	VMAXPS(reg.Y4, reg.Y7, reg.Y4)
	VPERMPD(U8(0xD8), reg.Y4, reg.Y4) // 64-bit pairs (o0 o1)(o4 o5)(o2 o3)(o6 o7) back in order
}

// Flags and field offsets of the quantized epilogue QEpi (kernels/avx/qgemm.go).
const (
	qBias, qResid, qClamp, qCol, qQuant, qUnsigned, qRCorr = 1, 2, 4, 8, 16, 32, 64
	qZCode, qZSigned, qRecip, qMid                         = 128, 256, 512, 2048

	offCorr, offMult, offBias, offResid  = 0, 8, 16, 24
	offLo, offHi, offYScale, offQLo      = 32, 36, 40, 44
	offQHi, offYZero, offFlags, offRCorr = 48, 52, 56, 64
	offZScale, offZZero, offYRecip       = 72, 76, 80
	offMScale, offMRecip, offMLo, offMHi = 84, 88, 92, 96
)

// qepi8x32AVX2 is the quantized epilogue of the AVX2 INT8 path in ymm
// registers, the same operations in the same order as the VNNI kernel's
// (and qtileEpilogue's): subtract the correction (per row, or per column
// and per row with RCorr), convert, multiply, add bias and residual, clamp
// (VMAXPS/VMINPS ordered so that NaN passes), then store float32 or
// requantize (divide, or Markstein's correction with qRecip; NaN and low
// values to QLo, QHi, VCVTPS2DQ's round half to even, add the zero point)
// and store 8 codes per group with MOVQ
// after narrowing (the values already lie in the code range, so the
// saturating packs change nothing). It covers columns < nr8 (a multiple
// of 8) of rows < mr; the caller finishes the last nr%8 columns.
func qepi8x32AVX2() {
	TEXT("qepi8x32AVX2", NOSPLIT, "func(tile *int32, out *byte, ldo, mr, nr8 int, q *int64)")
	Pragma("noescape")
	Doc("qepi8x32AVX2 applies the quantized epilogue to columns < nr8 (a multiple of 8) of rows < mr of an accumulated tile (row-major, 32 columns), as qtileEpilogue does.")
	tile := Load(Param("tile"), reg.RSI)
	out := Load(Param("out"), reg.RDI)
	ldo := Load(Param("ldo"), reg.R10)
	rows := Load(Param("mr"), reg.R11)
	nr8 := Load(Param("nr8"), reg.RCX)
	q := Load(Param("q"), reg.RBX)
	ldr := reg.R15 // residual row stride in bytes
	MOVQ(ldo, ldr)
	flags := reg.RAX
	MOVQ(Mem{Base: q, Disp: offFlags}, flags)
	TESTQ(U32(qZCode), flags) // residual codes: one byte per element
	JNE(LabelRef("qe_zbytes"))
	SHLQ(U8(2), ldr)
	Label("qe_zbytes")
	TESTQ(U32(qQuant), flags)
	JNE(LabelRef("qe_bytes"))
	SHLQ(U8(2), ldo) // float output
	Label("qe_bytes")
	corr, mult, bias, resid, rcorr := reg.R12, reg.R8, reg.R14, reg.R13, reg.R9
	MOVQ(Mem{Base: q, Disp: offCorr}, corr)
	MOVQ(Mem{Base: q, Disp: offMult}, mult)
	MOVQ(Mem{Base: q, Disp: offBias}, bias)
	MOVQ(Mem{Base: q, Disp: offResid}, resid)
	MOVQ(Mem{Base: q, Disp: offRCorr}, rcorr)
	lo, hi, qlo, qhi, ys, yz := reg.Y10, reg.Y11, reg.Y12, reg.Y13, reg.Y14, reg.Y15
	VBROADCASTSS(Mem{Base: q, Disp: offLo}, lo)
	VBROADCASTSS(Mem{Base: q, Disp: offHi}, hi)
	VBROADCASTSS(Mem{Base: q, Disp: offQLo}, qlo)
	VBROADCASTSS(Mem{Base: q, Disp: offQHi}, qhi)
	VBROADCASTSS(Mem{Base: q, Disp: offYScale}, ys)
	VPBROADCASTD(Mem{Base: q, Disp: offYZero}, yz)
	yr := reg.Y3 // QEpi.YRecip, RN(1/y_scale), with qRecip
	VBROADCASTSS(Mem{Base: q, Disp: offYRecip}, yr)
	zs, zz := reg.Y8, reg.Y9 // residual codes' scale and zero point
	VBROADCASTSS(Mem{Base: q, Disp: offZScale}, zs)
	VPBROADCASTD(Mem{Base: q, Disp: offZZero}, zz)
	TESTQ(rows, rows)
	JEQ(LabelRef("qe_end"))
	TESTQ(nr8, nr8)
	JEQ(LabelRef("qe_end"))
	row := reg.RDX // row index, for the per-row constants
	XORQ(row, row)
	Label("qe_row")
	x, t, c := reg.Y0, reg.Y1, reg.Y2
	for g := 0; g < 4; g++ {
		l := func(s string) string { return fmt.Sprintf("qe_%s%d", s, g) }
		if g > 0 {
			CMPQ(nr8, U8(8*g))
			JLE(LabelRef("qe_rowdone"))
		}
		VMOVDQU(Mem{Base: tile, Disp: 4 * 8 * g}, x)
		TESTQ(U32(qCol), flags)
		JNE(LabelRef(l("col")))
		VPBROADCASTD(Mem{Base: corr, Index: row, Scale: 4}, t)
		VPSUBD(t, x, x)
		VCVTDQ2PS(x, x)
		VBROADCASTSS(Mem{Base: mult, Index: row, Scale: 4}, t)
		VMULPS(t, x, x)
		TESTQ(U32(qBias), flags)
		JEQ(LabelRef(l("added")))
		VBROADCASTSS(Mem{Base: bias, Index: row, Scale: 4}, t)
		VADDPS(t, x, x)
		JMP(LabelRef(l("added")))
		Label(l("col"))
		VMOVDQU(Mem{Base: corr, Disp: 4 * 8 * g}, t)
		VPSUBD(t, x, x)
		TESTQ(U32(qRCorr), flags)
		JEQ(LabelRef(l("norcorr")))
		VPBROADCASTD(Mem{Base: rcorr, Index: row, Scale: 4}, t)
		VPSUBD(t, x, x)
		Label(l("norcorr"))
		VCVTDQ2PS(x, x)
		VMULPS(Mem{Base: mult, Disp: 4 * 8 * g}, x, x)
		TESTQ(U32(qBias), flags)
		JEQ(LabelRef(l("added")))
		VADDPS(Mem{Base: bias, Disp: 4 * 8 * g}, x, x)
		Label(l("added"))
		// QMid: y = DQ(Q(y)) with MScale, as the VNNI epilogue computes it:
		// clamped to the mid codes' range in y, Markstein's quotient with
		// MRecip, rounded half to even to an integer, times MScale
		TESTQ(U32(qMid), flags)
		JEQ(LabelRef(l("nomid")))
		VBROADCASTSS(Mem{Base: q, Disp: offMLo}, t)
		VMAXPS(t, x, x)
		VBROADCASTSS(Mem{Base: q, Disp: offMHi}, t)
		VMINPS(t, x, x)
		VBROADCASTSS(Mem{Base: q, Disp: offMRecip}, c)
		VBROADCASTSS(Mem{Base: q, Disp: offMScale}, t)
		VMULPS(c, x, reg.Y4)
		VFNMADD231PS(t, reg.Y4, x)
		VFMADD231PS(c, x, reg.Y4)
		VROUNDPS(U8(0), reg.Y4, x)
		VMULPS(t, x, x)
		Label(l("nomid"))
		TESTQ(U32(qResid), flags)
		JEQ(LabelRef(l("noresid")))
		TESTQ(U32(qZCode), flags)
		JNE(LabelRef(l("zcode")))
		VADDPS(Mem{Base: resid, Disp: 4 * 8 * g}, x, x)
		JMP(LabelRef(l("noresid")))
		// codes: widened, minus the zero point, converted, times the scale
		Label(l("zcode"))
		TESTQ(U32(qZSigned), flags)
		JNE(LabelRef(l("zs8")))
		VPMOVZXBD(Mem{Base: resid, Disp: 8 * g}, t)
		JMP(LabelRef(l("zwide")))
		Label(l("zs8"))
		VPMOVSXBD(Mem{Base: resid, Disp: 8 * g}, t)
		Label(l("zwide"))
		VPSUBD(zz, t, t)
		VCVTDQ2PS(t, t)
		VMULPS(zs, t, t)
		VADDPS(t, x, x)
		Label(l("noresid"))
		TESTQ(U32(qClamp), flags)
		JEQ(LabelRef(l("noclamp")))
		VMAXPS(x, lo, x) // Intel VMAXPS x, lo, x: lo > x ? lo : x (NaN x passes)
		VMINPS(x, hi, x)
		Label(l("noclamp"))
		TESTQ(U32(qQuant), flags)
		JNE(LabelRef(l("quant")))
		VMOVUPS(x, Mem{Base: out, Disp: 4 * 8 * g})
		JMP(LabelRef(l("next")))
		Label(l("quant"))
		TESTQ(U32(qRecip), flags)
		JNE(LabelRef(l("recip")))
		VDIVPS(ys, x, x)
		VMAXPS(qlo, x, x) // Intel VMAXPS x, x, qlo: NaN becomes qlo
		VMINPS(qhi, x, x)
		VCVTPS2DQ(x, x) // MXCSR's round half to even
		JMP(LabelRef(l("rounded")))
		// QRecip: the clamp above held the codes' range in y (QEpi's
		// QRecip), so the quotient needs no clamp; Markstein's correction
		// (t = y·yr, y − t·y_scale exact, t + that·yr) gives it, and NaN
		// converts to INT32_MIN, which the signed packs saturate to the
		// lowest code
		Label(l("recip"))
		VMULPS(yr, x, t)
		VFNMADD231PS(t, ys, x)
		VFMADD231PS(yr, x, t)
		VCVTPS2DQ(t, x)
		Label(l("rounded"))
		VPADDD(yz, x, x)
		VEXTRACTI128(U8(1), x, c.AsX())
		VPACKSSDW(c.AsX(), x.AsX(), x.AsX()) // 8 words, in order
		TESTQ(U32(qUnsigned), flags)
		JNE(LabelRef(l("u8")))
		VPACKSSWB(x.AsX(), x.AsX(), x.AsX())
		JMP(LabelRef(l("store")))
		Label(l("u8"))
		VPACKUSWB(x.AsX(), x.AsX(), x.AsX())
		Label(l("store"))
		VMOVQ(x.AsX(), Mem{Base: out, Disp: 8 * g})
		Label(l("next"))
	}
	Label("qe_rowdone")
	ADDQ(U32(4*nr32), tile)
	ADDQ(ldo, out)
	ADDQ(ldr, resid)
	INCQ(row)
	CMPQ(row, rows)
	JL(LabelRef("qe_row"))
	Label("qe_end")
	VZEROUPPER()
	RET()
}
