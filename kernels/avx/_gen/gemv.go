package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// sgemvAVX512 is the one-row product (batch-1 dense layers): c[j] =
// epi(Σ_p a[p]·b[p][j]) for j < n ≤ 4·NR over up to four packed B strips
// (sstride floats apart), each k step one broadcast of a[p] and two FMAs
// per strip straight from memory (8 independent chains for 4 strips), in
// increasing p as the 8×32 micro-kernel, so the sums are the same; then
// the epilogue (column bias, residual, clamp) and masked stores.
func sgemvAVX512() {
	TEXT("sgemvAVX512", NOSPLIT, "func(k int, a, b *float32, sstride int, c *float32, n int, bias, resid *float32, lo, hi float32, flags int)")
	Pragma("noescape")
	Doc("sgemvAVX512 is the AVX-512 twin of sgemvGeneric.")
	n := Load(Param("n"), reg.RAX)
	ss := Load(Param("sstride"), reg.R8)
	SHLQ(U8(2), ss)
	acc := make([]reg.VecPhysical, 8)
	for i := range acc {
		acc[i] = zmm(i)
		VXORPS(acc[i], acc[i], acc[i])
	}
	bp := []reg.GPPhysical{reg.RDI, reg.R9, reg.R10, reg.R11}
	t := zmm(8)
	// Strip count: 1 + (n-1)/32, one loop per count.
	ns := reg.RBX
	MOVQ(n, ns)
	DECQ(ns)
	SHRQ(U8(5), ns)
	for s := 4; s >= 1; s-- {
		CMPQ(ns, U8(s-1))
		JEQ(LabelRef(fmt.Sprintf("gemv%d", s)))
	}
	JMP(LabelRef("gemv_epilogue"))
	for s := 1; s <= 4; s++ {
		Label(fmt.Sprintf("gemv%d", s))
		k := Load(Param("k"), reg.RCX)
		a := Load(Param("a"), reg.RSI)
		Load(Param("b"), bp[0])
		for i := 1; i < s; i++ {
			LEAQ(Mem{Base: bp[i-1], Index: ss, Scale: 1}, bp[i])
		}
		TESTQ(k, k)
		JEQ(LabelRef("gemv_epilogue"))
		Label(fmt.Sprintf("gemv%d_loop", s))
		VBROADCASTSS(Mem{Base: a}, t)
		for i := 0; i < s; i++ {
			VFMADD231PS(Mem{Base: bp[i]}, t, acc[2*i])
			VFMADD231PS(Mem{Base: bp[i], Disp: 64}, t, acc[2*i+1])
		}
		ADDQ(U8(4*mr), a) // packed A: MR values per k step
		for i := 0; i < s; i++ {
			ADDQ(U8(128), bp[i])
		}
		DECQ(k)
		JNE(LabelRef(fmt.Sprintf("gemv%d_loop", s)))
		JMP(LabelRef("gemv_epilogue"))
	}

	Label("gemv_epilogue")
	c := Load(Param("c"), reg.RDX)
	bias := Load(Param("bias"), reg.R12)
	resid := Load(Param("resid"), reg.R13)
	flags := Load(Param("flags"), reg.R14)
	lo, hi := zmm(26), zmm(27)
	VBROADCASTSS(NewParamAddr("lo", 64), lo)
	VBROADCASTSS(NewParamAddr("hi", 68), hi)
	left, m, sixteen := reg.R15, reg.RCX, reg.RSI
	MOVQ(n, left)
	MOVQ(U32(16), sixteen)
	for i := 0; i < 8; i++ {
		l := func(s string) string { return fmt.Sprintf("gemv_%s%d", s, i) }
		x := acc[i]
		CMPQ(left, U8(0))
		JLE(LabelRef("gemv_done"))
		MOVQ(left, m)
		CMPQ(m, sixteen)
		CMOVQGT(sixteen, m)
		MOVQ(I32(-1), reg.R8)
		BZHIQ(m, reg.R8, reg.R8)
		KMOVW(reg.R8.As32(), reg.K1)
		TESTQ(U32(flagBiasCol), flags)
		JEQ(LabelRef(l("nobias")))
		VMOVUPS_Z(Mem{Base: bias, Disp: 64 * i}, reg.K1, zmm(30))
		VADDPS(zmm(30), x, x)
		Label(l("nobias"))
		TESTQ(U32(flagResid), flags)
		JEQ(LabelRef(l("noresid")))
		VMOVUPS_Z(Mem{Base: resid, Disp: 64 * i}, reg.K1, zmm(31))
		VADDPS(zmm(31), x, x)
		Label(l("noresid"))
		TESTQ(U32(flagClamp), flags)
		JEQ(LabelRef(l("noclamp")))
		VMAXPS(x, lo, x)
		VMINPS(x, hi, x)
		Label(l("noclamp"))
		VMOVUPS(x, reg.K1, Mem{Base: c, Disp: 64 * i})
		SUBQ(sixteen, left)
	}
	Label("gemv_done")
	VZEROUPPER()
	RET()
}
