package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// qaddAVX512 is kiln.QAdd over n codes (QAdd's Go twin qaddGeneric is the
// reference) for one pair of input code types (extendA/extendB: VPMOVSXBD
// for int8, VPMOVZXBD for uint8), 32 per step in two independent chains
// while 32 remain, then 16 at a time with the tail masked (masked-off lanes
// neither loaded nor stored). Per lane: the widened codes minus the zero
// points (exact), converted and multiplied by the prescaled scales
// (DequantizeLinear's float32 product times 2^-k, exactly, see
// NewQAddParams), added, clamped to [Lo, Hi] (Relu folded into Lo; the
// clamp changes no code), divided by Markstein's correction q0 = s·r,
// q = fma(fma(−q0, y_scale, s), r, q0) with r = RN(1/y_scale) (the
// correctly rounded quotient for the prescaled divisor in [1, 2); the sums
// are finite, so no NaN), rounded half to even (VCVTPS2DQ under Go's
// default MXCSR), plus the zero point (the clamp keeps the code in the
// output type's range, so VPMOVDB's truncation is the code's byte).
//
// QAddParams offsets: AZero 8, BZero 12, YZero 20, KAScale 32, KBScale 36,
// KYScale 40, KYRecip 44, Lo 48, Hi 52.
func qaddAVX512(name string, extendA, extendB func(ops ...Op)) {
	TEXT(name, NOSPLIT, "func(dst, a, b *byte, n int, p *int64)")
	Pragma("noescape")
	Doc(name + " is an AVX-512 twin of qaddGeneric (QAddParams.Recip must hold).")
	dst := Load(Param("dst"), reg.RDI)
	a := Load(Param("a"), reg.RSI)
	b := Load(Param("b"), reg.RDX)
	n := Load(Param("n"), reg.RCX)
	p := Load(Param("p"), reg.R8)
	as, bs, az, bz := reg.Z16, reg.Z17, reg.Z18, reg.Z19
	ys, yr, lo, hi, yz := reg.Z22, reg.Z23, reg.Z24, reg.Z25, reg.Z26
	VPBROADCASTD(Mem{Base: p, Disp: 8}, az)
	VPBROADCASTD(Mem{Base: p, Disp: 12}, bz)
	VPBROADCASTD(Mem{Base: p, Disp: 20}, yz)
	VBROADCASTSS(Mem{Base: p, Disp: 32}, as)
	VBROADCASTSS(Mem{Base: p, Disp: 36}, bs)
	VBROADCASTSS(Mem{Base: p, Disp: 40}, ys)
	VBROADCASTSS(Mem{Base: p, Disp: 44}, yr)
	VBROADCASTSS(Mem{Base: p, Disp: 48}, lo)
	VBROADCASTSS(Mem{Base: p, Disp: 52}, hi)
	l := func(s string) LabelRef { return LabelRef(s + "_" + name) }
	// lane computes 16 codes from x (a's widened codes) and y (b's), t
	// scratch; the result is left in x as dwords.
	lane := func(x, y, t reg.VecPhysical) {
		VPSUBD(az, x, x)
		VPSUBD(bz, y, y)
		VCVTDQ2PS(x, x)
		VCVTDQ2PS(y, y)
		VMULPS(as, x, x)
		VMULPS(bs, y, y)
		VADDPS(y, x, x)
		VMAXPS(lo, x, x)
		VMINPS(hi, x, x)
		VMULPS(yr, x, t)       // q0 = s·r
		VFNMADD231PS(ys, t, x) // e = s − q0·y_scale (exact)
		VFMADD231PS(yr, x, t)  // q = q0 + e·r
		VCVTPS2DQ(t, x)        // round half to even
		VPADDD(yz, x, x)
	}
	ones, t := reg.RAX, reg.RBX
	MOVQ(I32(-1), ones)
	TESTQ(n, n)
	JLE(l("done"))
	CMPQ(n, U8(32))
	JL(l("tail"))
	Label("loop32_" + name)
	extendA(Mem{Base: a}, reg.Z0)
	extendB(Mem{Base: b}, reg.Z1)
	extendA(Mem{Base: a, Disp: 16}, reg.Z3)
	extendB(Mem{Base: b, Disp: 16}, reg.Z4)
	lane(reg.Z0, reg.Z1, reg.Z2)
	lane(reg.Z3, reg.Z4, reg.Z5)
	VPMOVDB(reg.Z0, Mem{Base: dst})
	VPMOVDB(reg.Z3, Mem{Base: dst, Disp: 16})
	ADDQ(U8(32), a)
	ADDQ(U8(32), b)
	ADDQ(U8(32), dst)
	SUBQ(U8(32), n)
	CMPQ(n, U8(32))
	JGE(l("loop32"))
	TESTQ(n, n)
	JLE(l("done"))
	Label("tail_" + name)
	lowBits(name, t, n, ones, 16)
	KMOVW(t.As32(), reg.K1)
	extendA(Mem{Base: a}, reg.K1, reg.Z0)
	extendB(Mem{Base: b}, reg.K1, reg.Z1)
	lane(reg.Z0, reg.Z1, reg.Z2)
	VPMOVDB(reg.Z0, reg.K1, Mem{Base: dst})
	ADDQ(U8(16), a)
	ADDQ(U8(16), b)
	ADDQ(U8(16), dst)
	SUBQ(U8(16), n)
	JG(l("tail"))
	Label("done_" + name)
	VZEROUPPER()
	RET()
}
