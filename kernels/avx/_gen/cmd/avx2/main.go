// Command avx2 generates kernels/avx/avx2_amd64.s: kernels for CPUs with
// AVX2 but without AVX-512 — the INT8 GEMM micro-kernel (no VNNI there) and
// the FP32 micro-kernel's partial-width tiles. Its own generator and output
// file, beside _gen's main command (sgemm_amd64.s, with the full-width AVX2
// FP32 kernel) and cmd/int8x (qextra_amd64.s); all share _gen's go.mod:
//
//	cd kernels/avx/_gen && go run ./cmd/avx2 -pkg avx -out ../avx2_amd64.s -stubs ../avx2_stubs_amd64.go
package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// Tile and packing of kernels/avx's INT8 GEMM (qgemm.go): MR weight rows
// and NR activation columns, 4-deep steps (a step is MR·4 weight bytes and
// NR·4 activation bytes).
const (
	mr   = 8
	nr32 = 32
)

func main() {
	ConstraintExpr("!noasm,amd64")
	qacc8x32AVX2()
	sgemm8x32AVX2Part()
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
	TEXT("qacc8x32AVX2", NOSPLIT, "func(k4 int, a *int8, b *uint8, tile *int32)")
	Pragma("noescape")
	Doc("qacc8x32AVX2 is the AVX2 twin of qaccumulate over a full tile: tile[i*32+j] = Σ_p Σ_q b[p*128+j*4+q]·a[p*32+i*4+q] (int32, row-major).")
	tile := Load(Param("tile"), reg.RDX)
	mask := reg.Y15
	MOVL(U32(0x00FF00FF), reg.EAX)
	VMOVD(reg.EAX, reg.X15)
	VPBROADCASTD(reg.X15, mask)
	acc := []reg.VecPhysical{reg.Y0, reg.Y1, reg.Y2, reg.Y3, reg.Y4, reg.Y5, reg.Y6, reg.Y7}
	ue0, uo0, ue1, uo1 := reg.Y8, reg.Y9, reg.Y10, reg.Y11
	we, wo, t := reg.Y12, reg.Y13, reg.Y14
	for pass := 0; pass < 4; pass++ {
		rows, cols := 4*(pass/2), 16*(pass%2) // first row and column of this pass
		k := Load(Param("k4"), reg.RCX)
		a := Load(Param("a"), reg.RSI)
		b := Load(Param("b"), reg.RDI)
		for _, r := range acc {
			VPXOR(r, r, r)
		}
		loop, done := "loop"+string(rune('0'+pass)), "done"+string(rune('0'+pass))
		TESTQ(k, k)
		JEQ(LabelRef(done))
		Label(loop)
		VMOVDQU(Mem{Base: b, Disp: 4 * cols}, uo0)
		VMOVDQU(Mem{Base: b, Disp: 4*cols + 32}, uo1)
		VPAND(uo0, mask, ue0)
		VPSRLW(U8(8), uo0, uo0)
		VPAND(uo1, mask, ue1)
		VPSRLW(U8(8), uo1, uo1)
		for i := 0; i < 4; i++ {
			VPBROADCASTD(Mem{Base: a, Disp: 4 * (rows + i)}, wo)
			VPSLLW(U8(8), wo, we)
			VPSRAW(U8(8), we, we)
			VPSRAW(U8(8), wo, wo)
			VPMADDWD(ue0, we, t)
			VPADDD(t, acc[2*i], acc[2*i])
			VPMADDWD(uo0, wo, t)
			VPADDD(t, acc[2*i], acc[2*i])
			VPMADDWD(ue1, we, t)
			VPADDD(t, acc[2*i+1], acc[2*i+1])
			VPMADDWD(uo1, wo, t)
			VPADDD(t, acc[2*i+1], acc[2*i+1])
		}
		ADDQ(U8(4*mr), a)
		ADDQ(U32(4*nr32), b)
		DECQ(k)
		JNE(LabelRef(loop))
		Label(done)
		for i := 0; i < 4; i++ {
			VMOVDQU(acc[2*i], Mem{Base: tile, Disp: 4 * ((rows+i)*nr32 + cols)})
			VMOVDQU(acc[2*i+1], Mem{Base: tile, Disp: 4 * ((rows+i)*nr32 + cols + 8)})
		}
	}
	VZEROUPPER()
	RET()
}

// sgemm8x32AVX2Part is _gen's sgemm8x32AVX2 (same four 8-column passes,
// same FMA chain per element from zero, so the same bits) for a tile whose
// b has only nr < 32 readable columns (rows of a row-major matrix): each
// pass loads its columns with VMASKMOVPS under a lane mask j < nr − 8·pass
// (masked-off lanes are not read, so nothing past the matrix faults) and a
// pass with no valid column is skipped. Without it the partial tiles ran in
// the Go twin, whose rounding (no FMA) made results depend on where strips
// were cut — on thread count, for the direct 1×1 convolution.
func sgemm8x32AVX2Part() {
	TEXT("sgemm8x32AVX2Part", NOSPLIT, "func(k int, a, b *float32, ldb int, tile *float32, nr int)")
	Pragma("noescape")
	Doc("sgemm8x32AVX2Part accumulates the first nr columns of an 8×32 tile into tile (row-major, 32 columns), reading only nr columns of b.")
	lanes := GLOBL("avx2lanes", RODATA|NOPTR)
	for i := 0; i < 8; i++ {
		DATA(4*i, U32(i))
	}
	ldb := Load(Param("ldb"), reg.R8)
	SHLQ(U8(2), ldb)
	tile := Load(Param("tile"), reg.RDX)
	nr := Load(Param("nr"), reg.R9)
	mask, left := reg.Y13, reg.X14
	acc := []reg.VecPhysical{reg.Y0, reg.Y1, reg.Y2, reg.Y3, reg.Y4, reg.Y5, reg.Y6, reg.Y7}
	for qd := 0; qd < 4; qd++ {
		sfx := string(rune('0' + qd))
		CMPQ(nr, U8(8*qd))
		JLE(LabelRef("end")) // no column left for this pass or any later one
		MOVQ(nr, reg.RAX)
		SUBQ(U8(8*qd), reg.RAX)
		VMOVD(reg.EAX, left)
		VPBROADCASTD(left, mask)
		VPCMPGTD(lanes, mask, mask) // lane j: nr − 8·qd > j
		k := Load(Param("k"), reg.RCX)
		a := Load(Param("a"), reg.RSI)
		b := Load(Param("b"), reg.RDI)
		for _, r := range acc {
			VXORPS(r, r, r)
		}
		TESTQ(k, k)
		JEQ(LabelRef("done" + sfx))
		Label("loop" + sfx)
		VMASKMOVPS(Mem{Base: b, Disp: 32 * qd}, mask, reg.Y8)
		for i := 0; i < mr; i++ {
			t := []reg.VecPhysical{reg.Y9, reg.Y10, reg.Y11, reg.Y12}[i%4]
			VBROADCASTSS(Mem{Base: a, Disp: 4 * i}, t)
			VFMADD231PS(reg.Y8, t, acc[i])
		}
		ADDQ(U8(4*mr), a)
		ADDQ(ldb, b)
		DECQ(k)
		JNE(LabelRef("loop" + sfx))
		Label("done" + sfx)
		for i := 0; i < mr; i++ {
			VMOVUPS(acc[i], Mem{Base: tile, Disp: 4 * (i*nr32 + 8*qd)})
		}
	}
	Label("end")
	VZEROUPPER()
	RET()
}
