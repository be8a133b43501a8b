// Command _gen writes kernels/avx's assembly (run by go generate in ../).
package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// Flags of the fused epilogue (mirrored in ../sgemm.go).
const (
	flagBiasRow = 1
	flagBiasCol = 2
	flagResid   = 4
	flagClamp   = 8
	flagAccum   = 16 // start from the tile in c (K blocking) instead of zero
)

const mr, nr = 8, 32

// aPrefetch is how far ahead (bytes) the FP32 micro-kernel prefetches its
// packed A (PREFETCHT0 once per k step). At batch 1 a conv's packed
// weights are its A and stream from DRAM once per inference (a model's
// weights exceed the caches), each strip serving only the few columns of a
// small output: ResNet-50's 14×14 Winograd F4 GEMMs read 8 KB of A per
// 8×16 tile, one k step per 4 cycles, and the hardware prefetchers left
// them ~20% slower than with A in cache. Ahead by 4 KB (about one DRAM
// latency at that rate; the next strip when a strip is short), on the
// 2-core Zen 4 with cold weights (BenchmarkColdWeights, 1 thread, minimum
// of 100 runs): 14×14 F4 1.02–1.06 → 0.86–0.88 ms, 7×7 F2 1.62–1.64 →
// 1.40–1.41, 1×1 1024→256 @14 0.985 → 0.95, 3×3 im2col @14 2.25 → 2.18
// (1 KB ahead: 0.95, 1.49–1.55; 2 KB: 0.92–0.95, 1.40–1.42; 8 KB: 0.91–
// 0.94, 1.45); hot the micro-kernel stays at 117.6 GFLOP/s. Prefetches
// past the end of A (the last strips) are harmless: they never fault.
const aPrefetch = 4096

func main() {
	ConstraintExpr("!noasm,amd64")
	sgemmAVX512()
	qgemmVNNI("qgemm8x32VNNI", 32, "q", "")
	qgemmVNNI("qgemm8x16VNNI", 16, "h", "qgemm8x16VNNI")
	qgemmVNNI("qgemm8x8VNNI", 8, "h", "qgemm8x8VNNI")
	dwRowAVX512()
	dwPlaneAVX512()
	dw3x3F32(1)
	dw3x3F32(2)
	im2colGatherAVX512()
	im2colSegsAVX512()
	maxPoolRowF32AVX512()
	maxPoolRowAVX512()
	sgemvAVX512()
	ceilings()
	Generate()
}

// sgemmAVX512 is the 8×32 FP32 micro-kernel: 16 zmm accumulators, two zmm
// of B per k step and each row's A value as the FMAs' embedded broadcast
// (a separate VBROADCASTSS per row held the 16-column loop at ~70% of the
// FMA peak on Zen 4, and the 32-column one ~2% below); then the epilogue on the tile
// (bias, residual, clamp) and masked stores of mr rows, nr columns.
func sgemmAVX512() {
	TEXT("sgemm8x32AVX512", NOSPLIT, "func(k int, a, b *float32, ldb int, c *float32, ldc int, mr, nr int, bias, resid *float32, lo, hi float32, flags int)")
	Pragma("noescape")
	Doc("sgemm8x32AVX512 is the AVX-512 twin of sgemmGeneric.")
	k := Load(Param("k"), reg.RCX)
	a := Load(Param("a"), reg.RSI)
	b := Load(Param("b"), reg.RDI)
	ldb := Load(Param("ldb"), reg.R8)
	SHLQ(U8(2), ldb)
	nrr := Load(Param("nr"), reg.RAX)

	// Column masks: K1 the first 16 columns, K2 the next 16.
	ones := reg.R9
	MOVQ(I32(-1), ones)
	BZHIQ(nrr, ones, ones)
	KMOVW(ones.As32(), reg.K1)
	SHRQ(U8(16), ones)
	KMOVW(ones.As32(), reg.K2)

	acc := make([]reg.VecPhysical, 2*mr)
	for i := range acc {
		acc[i] = zmm(i)
		VXORPS(acc[i], acc[i], acc[i])
	}
	// K blocking: continue from the partial sums stored in c.
	{
		f := Load(Param("flags"), reg.R14)
		TESTQ(U32(flagAccum), f)
		JEQ(LabelRef("zeroed"))
		cp := Load(Param("c"), reg.RDX)
		ld := Load(Param("ldc"), reg.R10)
		SHLQ(U8(2), ld)
		rows := Load(Param("mr"), reg.R11)
		for i := 0; i < mr; i++ {
			CMPQ(rows, U8(i))
			JLE(LabelRef("zeroed"))
			VMOVUPS_Z(Mem{Base: cp}, reg.K1, acc[2*i])
			VMOVUPS_Z(Mem{Base: cp, Disp: 64}, reg.K2, acc[2*i+1])
			ADDQ(ld, cp)
		}
		Label("zeroed")
	}
	b0, b1 := zmm(16), zmm(17)
	TESTQ(k, k)
	JEQ(LabelRef("epilogue"))
	// Strips of ≤ 16 columns (the last of a 196- or 784-wide output): one
	// zmm of B per k step, half the FMAs.
	CMPQ(nrr, U8(16))
	JLE(LabelRef("loop16"))
	Label("loop")
	PREFETCHT0(Mem{Base: a, Disp: aPrefetch})
	VMOVUPS_Z(Mem{Base: b}, reg.K1, b0)
	VMOVUPS_Z(Mem{Base: b, Disp: 64}, reg.K2, b1)
	for i := 0; i < mr; i++ {
		VFMADD231PS_BCST(Mem{Base: a, Disp: 4 * i}, b0, acc[2*i])
		VFMADD231PS_BCST(Mem{Base: a, Disp: 4 * i}, b1, acc[2*i+1])
	}
	ADDQ(U8(4*mr), a)
	ADDQ(ldb, b)
	DECQ(k)
	JNE(LabelRef("loop"))
	JMP(LabelRef("epilogue"))

	Label("loop16")
	PREFETCHT0(Mem{Base: a, Disp: aPrefetch})
	VMOVUPS_Z(Mem{Base: b}, reg.K1, b0)
	for i := 0; i < mr; i++ {
		VFMADD231PS_BCST(Mem{Base: a, Disp: 4 * i}, b0, acc[2*i])
	}
	ADDQ(U8(4*mr), a)
	ADDQ(ldb, b)
	DECQ(k)
	JNE(LabelRef("loop16"))

	Label("epilogue")
	c := Load(Param("c"), reg.RDX)
	ldc := Load(Param("ldc"), reg.R10)
	SHLQ(U8(2), ldc)
	rows := Load(Param("mr"), reg.R11)
	bias := Load(Param("bias"), reg.R12)
	resid := Load(Param("resid"), reg.R13)
	flags := Load(Param("flags"), reg.R14)
	lo, hi := zmm(26), zmm(27)
	VBROADCASTSS(NewParamAddr("lo", 80), lo)
	VBROADCASTSS(NewParamAddr("hi", 84), hi)
	bc0, bc1 := zmm(28), zmm(29)
	TESTQ(U32(flagBiasCol), flags)
	JEQ(LabelRef("nobiascol"))
	VMOVUPS_Z(Mem{Base: bias}, reg.K1, bc0)
	VMOVUPS_Z(Mem{Base: bias, Disp: 64}, reg.K2, bc1)
	Label("nobiascol")
	for i := 0; i < mr; i++ {
		t0, t1 := acc[2*i], acc[2*i+1]
		l := func(s string) string { return fmt.Sprintf("%s%d", s, i) }
		CMPQ(rows, U8(i))
		JLE(LabelRef("done"))
		TESTQ(U32(flagBiasRow), flags)
		JEQ(LabelRef(l("nobiasrow")))
		VBROADCASTSS(Mem{Base: bias, Disp: 4 * i}, zmm(30))
		VADDPS(zmm(30), t0, t0)
		VADDPS(zmm(30), t1, t1)
		Label(l("nobiasrow"))
		TESTQ(U32(flagBiasCol), flags)
		JEQ(LabelRef(l("nobiascol")))
		VADDPS(bc0, t0, t0)
		VADDPS(bc1, t1, t1)
		Label(l("nobiascol"))
		TESTQ(U32(flagResid), flags)
		JEQ(LabelRef(l("noresid")))
		VMOVUPS_Z(Mem{Base: resid}, reg.K1, zmm(30))
		VMOVUPS_Z(Mem{Base: resid, Disp: 64}, reg.K2, zmm(31))
		VADDPS(zmm(30), t0, t0)
		VADDPS(zmm(31), t1, t1)
		ADDQ(ldc, resid)
		Label(l("noresid"))
		TESTQ(U32(flagClamp), flags)
		JEQ(LabelRef(l("noclamp")))
		// Operand order keeps NaN: VMAXPS returns its last (Intel) source on NaN.
		VMAXPS(t0, lo, t0)
		VMAXPS(t1, lo, t1)
		VMINPS(t0, hi, t0)
		VMINPS(t1, hi, t1)
		Label(l("noclamp"))
		VMOVUPS(t0, reg.K1, Mem{Base: c})
		VMOVUPS(t1, reg.K2, Mem{Base: c, Disp: 64})
		ADDQ(ldc, c)
	}
	Label("done")
	VZEROUPPER()
	RET()
}

func zmm(i int) reg.VecPhysical {
	return []reg.VecPhysical{reg.Z0, reg.Z1, reg.Z2, reg.Z3, reg.Z4, reg.Z5, reg.Z6, reg.Z7, reg.Z8, reg.Z9,
		reg.Z10, reg.Z11, reg.Z12, reg.Z13, reg.Z14, reg.Z15, reg.Z16, reg.Z17, reg.Z18, reg.Z19, reg.Z20,
		reg.Z21, reg.Z22, reg.Z23, reg.Z24, reg.Z25, reg.Z26, reg.Z27, reg.Z28, reg.Z29, reg.Z30, reg.Z31}[i]
}
