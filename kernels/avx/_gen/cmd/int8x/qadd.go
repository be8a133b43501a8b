package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// qaddAVX512 is kiln.QAdd over n codes (QAdd's Go twin qaddGeneric is the
// reference), 32 per step in two independent chains while 32 remain, then
// 16 at a time with the tail masked (masked-off lanes neither loaded nor
// stored). Per lane, in the flipped (uint8) domain of QAddParams:
// zero-extended codes XOR the flip, minus the zero point (exact), converted
// and multiplied by the (scaled) scale (DequantizeLinear's float32 product
// times 2^-k, exactly), added,
// clamped to [Lo, Hi] (Relu folded into Lo; the clamp changes no code, see
// NewQAddParams), divided by Markstein's correction q0 = s·r, q = fma(fma(−q0,
// y_scale, s), r, q0) with r = RN(1/y_scale) (the correctly rounded quotient
// for a divisor in [1, 2): every scale was multiplied by the same power of
// two, see NewQAddParams; the sums are finite there, so no NaN),
// rounded half to even (VCVTPS2DQ under Go's default MXCSR), plus the zero
// point (in [0, 255] after the clamp), XOR the output flip, narrowed.
//
// QAddParams offsets: AZero 8, BZero 12, AFlip 16, BFlip 20, YZero 28,
// YFlip 32, KAScale 40, KBScale 44, KYScale 48, KYRecip 52, Lo 56, Hi 60.
func qaddAVX512() {
	name := "qaddAVX512"
	TEXT(name, NOSPLIT, "func(dst, a, b *byte, n int, p *int64)")
	Pragma("noescape")
	Doc(name + " is the AVX-512 twin of qaddGeneric (QAddParams.Recip must hold).")
	dst := Load(Param("dst"), reg.RDI)
	a := Load(Param("a"), reg.RSI)
	b := Load(Param("b"), reg.RDX)
	n := Load(Param("n"), reg.RCX)
	p := Load(Param("p"), reg.R8)
	as, bs, az, bz, af, bf := reg.Z16, reg.Z17, reg.Z18, reg.Z19, reg.Z20, reg.Z21
	ys, yr, lo, hi, yz, yf := reg.Z22, reg.Z23, reg.Z24, reg.Z25, reg.Z26, reg.Z27
	VPBROADCASTD(Mem{Base: p, Disp: 8}, az)
	VPBROADCASTD(Mem{Base: p, Disp: 12}, bz)
	VPBROADCASTD(Mem{Base: p, Disp: 16}, af)
	VPBROADCASTD(Mem{Base: p, Disp: 20}, bf)
	VPBROADCASTD(Mem{Base: p, Disp: 28}, yz)
	VPBROADCASTD(Mem{Base: p, Disp: 32}, yf)
	VBROADCASTSS(Mem{Base: p, Disp: 40}, as)
	VBROADCASTSS(Mem{Base: p, Disp: 44}, bs)
	VBROADCASTSS(Mem{Base: p, Disp: 48}, ys)
	VBROADCASTSS(Mem{Base: p, Disp: 52}, yr)
	VBROADCASTSS(Mem{Base: p, Disp: 56}, lo)
	VBROADCASTSS(Mem{Base: p, Disp: 60}, hi)
	l := func(s string) LabelRef { return LabelRef(s + "_" + name) }
	// lane computes 16 codes from x (a's codes) and y (b's), t scratch;
	// the result is left in x as dwords.
	lane := func(x, y, t reg.VecPhysical) {
		VPXORD(af, x, x)
		VPXORD(bf, y, y)
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
		VPXORD(yf, x, x)
	}
	ones, t := reg.RAX, reg.RBX
	MOVQ(I32(-1), ones)
	TESTQ(n, n)
	JLE(l("done"))
	CMPQ(n, U8(32))
	JL(l("tail"))
	Label("loop32_" + name)
	VPMOVZXBD(Mem{Base: a}, reg.Z0)
	VPMOVZXBD(Mem{Base: b}, reg.Z1)
	VPMOVZXBD(Mem{Base: a, Disp: 16}, reg.Z3)
	VPMOVZXBD(Mem{Base: b, Disp: 16}, reg.Z4)
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
	MOVQ(U32(16), t)
	CMPQ(n, U8(16))
	JGE(l("full"))
	MOVQ(n, t)
	Label("full_" + name)
	BZHIQ(t, ones, t)
	KMOVW(t.As32(), reg.K1)
	VPMOVZXBD_Z(Mem{Base: a}, reg.K1, reg.Z0)
	VPMOVZXBD_Z(Mem{Base: b}, reg.K1, reg.Z1)
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
