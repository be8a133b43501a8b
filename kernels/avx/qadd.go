package avx

import (
	"math"
	"unsafe"
)

// QAddParams are kiln.QAdd's per-tensor parameters (ops/kilnq) in the
// kernels' form. The field offsets are the assembly's (qextra_amd64.s,
// checked by a test); NewQAddParams fills them.
type QAddParams struct {
	AScale, BScale float32 // 0, 4: the reference's (qaddGeneric)
	AZero, BZero   int32   // 8, 12
	YScale         float32 // 16: the reference's
	YZero          int32   // 20
	// Code types (24..26): int8 where set, else uint8.
	ASigned, BSigned, YSigned bool
	Relu                      bool // 27
	// Recip (28): the assembly's division-free quotient is exact for these
	// parameters (else QAdd runs the Go loop, which divides).
	Recip bool
	// The assembly's scales (32..44): every scale times 2^-k, where 2^k is
	// y_scale's binade (KYScale in [1, 2)), so that Markstein's correction
	// sees a divisor in its range whatever y_scale is; exact where every
	// scaled and unscaled product stays normal (Recip). KYRecip = RN(1/KYScale).
	KAScale, KBScale, KYScale, KYRecip float32
	// Lo, Hi (48, 52): the scaled sum's clamp, see NewQAddParams.
	Lo, Hi float32
}

// NewQAddParams converts kiln.QAdd's attributes (zero points in their own
// code type's range; signed: int8 codes, else uint8). Lo and Hi bound the
// scaled sum to the output codes' range times KYScale: Lo = RN((lowest code
// − YZero)·KYScale), or 0 when it is below 0 with Relu (max(s, 0) folded
// into the clamp), Hi = RN((highest code − YZero)·KYScale). Clamping there
// changes no code: a sum below Lo has a quotient that rounds to at most the
// lowest code's integer (|code − zero| ≤ 255 keeps RN's relative error far
// below half a unit), which saturates to the lowest code, as Lo itself
// does; likewise above Hi. Scaling every scale by the same power of two
// 2^-k scales every rounded product and the rounded sum by exactly 2^-k
// while all of them stay normal or are exact (a sum that underflows is
// exact), and leaves the quotient unchanged.
func NewQAddParams(aScale, bScale, yScale float32, aZero, bZero, yZero int32, aSigned, bSigned, ySigned, relu bool) QAddParams {
	p := QAddParams{AScale: aScale, BScale: bScale, YScale: yScale, AZero: aZero, BZero: bZero, YZero: yZero,
		ASigned: aSigned, BSigned: bSigned, YSigned: ySigned, Relu: relu}
	_, k := math.Frexp(float64(yScale)) // yScale = f·2^k, f in [0.5, 1)
	k--
	scale := func(s float32) float32 { return float32(math.Ldexp(float64(s), -k)) }
	p.KAScale, p.KBScale, p.KYScale = scale(aScale), scale(bScale), scale(yScale)
	p.KYRecip = 1 / p.KYScale
	lo, hi := codeBounds(ySigned)
	p.Lo = float32(lo-yZero) * p.KYScale
	p.Hi = float32(hi-yZero) * p.KYScale
	if relu && !(p.Lo >= 0) {
		p.Lo = 0
	}
	// Normal scales before and after the scaling (products of integers
	// 1..255 with them stay normal), at most 2^100 (sums stay finite).
	normal := func(s float32) bool { return float64(s) >= 0x1p-126 && float64(s) <= 0x1p100 }
	p.Recip = normal(aScale) && normal(bScale) && normal(yScale) && normal(p.KAScale) && normal(p.KBScale) && p.KYScale >= 1 && p.KYScale < 2
	return p
}

// codeBounds is the range of int8 (signed) or uint8 codes.
func codeBounds(signed bool) (int32, int32) {
	if signed {
		return -128, 127
	}
	return 0, 255
}

// QAdd writes dst[i] = kiln.QAdd's code for a[i] and b[i] (all the same
// length), on the assembly kernel where the CPU and the parameters allow.
func QAdd(dst, a, b []byte, p *QAddParams) {
	n := len(dst)
	if n == 0 {
		return
	}
	_, _ = a[n-1], b[n-1]
	qadd(unsafe.SliceData(dst), unsafe.SliceData(a), unsafe.SliceData(b), n, p)
}

// qaddGeneric is the reference loop of QAdd (ops/kilnq's kiln.QAdd;
// code(c) is c as int8 or uint8 per its type):
//
//	x = float32(float32(code(a[i]) − AZero)·AScale)        (DequantizeLinear)
//	y = float32(float32(code(b[i]) − BZero)·BScale)
//	s = float32(x + y); Relu: s = max(s, 0)
//	r = round_half_even(float32(s / YScale)) + YZero; NaN → YZero; saturate to Y's codes
//	dst[i] = r
func qaddGeneric(dst, a, b *byte, n int, p *QAddParams) {
	d, as, bs := unsafe.Slice(dst, n), unsafe.Slice(a, n), unsafe.Slice(b, n)
	code := func(c byte, signed bool) int32 {
		if signed {
			return int32(int8(c))
		}
		return int32(c)
	}
	lo, hi := codeBounds(p.YSigned)
	for i := range d {
		x := float32(float32(code(as[i], p.ASigned)-p.AZero) * p.AScale)
		y := float32(float32(code(bs[i], p.BSigned)-p.BZero) * p.BScale)
		s := float32(x + y)
		if p.Relu && s < 0 {
			s = 0
		}
		r := math.RoundToEven(float64(float32(s/p.YScale))) + float64(p.YZero)
		switch {
		case r != r:
			r = float64(p.YZero)
		case r < float64(lo):
			r = float64(lo)
		case r > float64(hi):
			r = float64(hi)
		}
		d[i] = byte(int32(r))
	}
}
