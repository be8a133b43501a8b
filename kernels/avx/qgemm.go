package avx

import (
	"math"
	"unsafe"
)

// INT8 GEMM: u8 activations × s8 weights → exact int32 with AVX-512 VNNI
// (VPDPBUSD), 8×32 tile, then ops/kilnq's epilogue in registers. kiln's
// activations are int8 codes (or uint8 with a zero point); the kernel
// takes u = code^0x80 (= x+128) for int8 and u = code for uint8, so
// Σ u·w = Σ (x−xz)·w + off·Σw with off = 128+xz (int8) or xz (uint8): the
// per-channel correction off·Σw is subtracted before conversion, which
// leaves exactly kilnq's int32 accumulator. Padding taps hold u = off
// (x = xz, contributing 0); depth is padded to a multiple of 4 with zero
// weights.

// Flags of QEpi (mirrored in _gen/qgemm.go).
const (
	QBias     = 1
	QResid    = 2
	QClamp    = 4
	QCol      = 8  // Corr, Mult and Bias per column (else per row)
	QQuant    = 16 // output codes (else float32)
	QUnsigned = 32 // uint8 codes (else int8)
	QRCorr    = 64 // with QCol: also subtract RCorr[row]
	// QZCode, with QResid: the residual is 8-bit codes (row stride ldo
	// bytes) whose value is DequantizeLinear's, float32(code − ZZero)·ZScale
	// in float32 (ops/kilnq's quantized residual); int8 with QZSigned, else
	// uint8.
	QZCode   = 128
	QZSigned = 256
	// QRecip, with QQuant|QClamp: Lo and Hi also hold the codes' range in
	// y (QLo·YScale, QHi·YScale rounded: the clamp then saturates, as
	// rounding is monotone), so the assembly epilogues skip the clamp of
	// the quotient, and divide as Markstein's correction with YRecip =
	// RN(1/YScale): q0 = y·YRecip, q = fma(fma(−q0, YScale, y), YRecip,
	// q0), which is RN(y/YScale) in QRecip's range (three FMA-unit
	// operations instead of VDIVPS and two clamps); NaN reaches the
	// conversion and becomes INT32_MIN, which the narrowing saturates to
	// the lowest code. Set by useRecip.
	QRecip = 512
	// QNaNLo, with QRecip: Lo is the lowest code's bound RN(QLo·YScale)
	// (no activation clamp above it), so the assembly's clamp maps NaN to
	// Lo, which gives the lowest code, and uint8 codes skip the maximum
	// that INT32_MIN would otherwise need. Set by useRecip.
	QNaNLo = 1024
	// QMid: after the bias, y becomes DequantizeLinear(QuantizeLinear(y))
	// with MScale (ops/kilnq's m_scale: ONNX Runtime's Conv → Q → DQ before
	// the residual add): y clamped to [MLo, MHi] (the mid codes' range in
	// y, RN(MQLo·MScale) and RN(MQHi·MScale): saturation unchanged, see
	// useRecip), divided by Markstein's correction with MRecip (MScale in
	// QRecip's range, checked by MidOK), rounded half to even to an integer,
	// times MScale.
	QMid = 2048
)

// MidOK reports whether a mid quantization scale suits the epilogues
// (Markstein's correction: QRecip's range).
func MidOK(scale float32) bool { return scale >= recipMinScale && scale <= recipMaxScale }

// QEpi is the quantized epilogue of one micro-kernel call (field offsets
// are hard-coded in the assembly: keep the layout):
//
//	acc' = acc − Corr[r] (− RCorr[i] with QCol|QRCorr)   (int32, r the row or column per QCol)
//	y = float32(acc')·Mult[r]; y += Bias[r]; y += z[i][j]; y = min(max(y, Lo), Hi)
//	z = Resid[i][j] (float32), or with QZCode float32(float32(code[i][j] − ZZero)·ZScale)
//	float output: y; codes: clamp(roundHalfEven(clamp(y/YScale, QLo, QHi)) + YZero), NaN → QLo+YZero
//	(y/YScale correctly rounded: with QRecip, Markstein's correction)
type QEpi struct {
	Corr     *int32
	Mult     *float32
	Bias     *float32
	Resid    unsafe.Pointer // float32s, row stride ldo elements; codes (QZCode), ldo bytes
	Lo, Hi   float32
	YScale   float32
	QLo, QHi float32 // saturation bounds minus the zero point
	YZero    int32
	Flags    int
	RCorr    *int32  // per row, with QCol|QRCorr (activation row sums)
	ZScale   float32 // QZCode: the residual codes' scale and zero point
	ZZero    int32
	YRecip   float32 // QRecip: RN(1/YScale)
	// QMid: the mid quantization's scale, RN(1/MScale), the clamp of y to
	// its codes' range (offsets 84, 88, 92, 96), and that range minus its
	// zero point (MQLo, MQHi: the Go epilogue's clamp of the quotient).
	MScale, MRecip, MLo, MHi float32
	MQLo, MQHi               float32
}

var _ [112 - unsafe.Sizeof(QEpi{})]byte // the assembly's layout
var _ [unsafe.Sizeof(QEpi{}) - 112]byte

// The range of QRecip. With y_scale in [2⁻⁴⁰, 2⁴⁰] and |y| ≤ 512·y_scale
// (the clamp), every step of Markstein's correction is finite, and where
// the quotient can reach a rounding boundary (|y/y_scale| ≥ ¼) also normal
// (|y| ≥ 2⁻⁴², remainder ≥ 2⁻⁶⁶), so the theorem holds (RN(1/y_scale)
// within half an ulp, q0 within an ulp: RN(q0 + e·r) = RN(y/y_scale));
// smaller quotients give the zero code either way.
const (
	recipMinScale = 0x1p-40
	recipMaxScale = 0x1p40
)

// DivideEpilogue, when set, keeps QRecip off (the assembly epilogues
// divide, as before QRecip): for benchmarks comparing both in one process.
var DivideEpilogue bool

// useRecip returns flags (QEpi's, with QQuant) with QRecip and QClamp
// set, q.YRecip = RN(1/YScale) and q.Lo, q.Hi narrowed to the codes' range
// in y, [RN(QLo·YScale), RN(QHi·YScale)] (with QClamp, intersected with the
// activation's), when q.YScale lies in QRecip's range and the bounds
// intersect; else flags unchanged (the assembly divides). Codes are the
// same either way: y ≤ RN(QLo·YScale) gives a quotient that rounds to at
// most QLo (|QLo·δ| < ½ for the product's relative rounding δ ≤ 2⁻²⁴,
// and division and rounding are monotone), so clamping there saturates as
// the clamp of the quotient does, and likewise at QHi. The Go epilogue,
// which divides and clamps the quotient, gives those codes with the
// narrowed bounds too.
func (q *QEpi) useRecip(flags int) int {
	ys := q.YScale
	if !(ys >= recipMinScale && ys <= recipMaxScale) {
		return flags
	}
	lo, hi := float32(float64(q.QLo)*float64(ys)), float32(float64(q.QHi)*float64(ys)) // exact products, rounded once
	if flags&QClamp != 0 {
		lo, hi = max(q.Lo, lo), min(q.Hi, hi)
	}
	if !(lo <= hi) { // disjoint (or NaN) bounds: divide
		return flags
	}
	q.YRecip = 1 / ys // float32 division: the correctly rounded reciprocal
	flags |= QRecip | QClamp
	if lo <= float32(float64(q.QLo)*float64(ys)) { // no activation bound above the lowest code's
		flags |= QNaNLo
	}
	q.Lo, q.Hi = lo, hi
	return flags
}

// K4 is the number of 4-deep steps of depth k.
func K4(k int) int { return (k + 3) / 4 }

// QASize is the byte length of packed int8 weights (m rows, depth k).
func QASize(m, k int) int { return (m + MR - 1) / MR * MR * 4 * K4(k) }

// QBSize is the byte length of packed u8 activations (n columns, depth k).
func QBSize(k, n int) int { return (n + NR - 1) / NR * NR * 4 * K4(k) }

// PackQA packs m×k int8 weights (row-major, row stride k) in MR-row
// strips of 4-deep steps: dst[s][p][i][q] = w[s*MR+i][4p+q], 0 past the
// edges; it returns Σ_p w[i][p] per row.
func PackQA(dst []int8, w []int8, m, k int) []int32 {
	k4 := K4(k)
	sums := make([]int32, m)
	for s := 0; s < m; s += MR {
		strip := dst[s*4*k4 : (s+MR)*4*k4]
		clear(strip)
		for i := 0; i < MR && s+i < m; i++ {
			row := w[(s+i)*k : (s+i+1)*k]
			for p, v := range row {
				strip[(p/4)*4*MR+i*4+p%4] = v
				sums[s+i] += int32(v)
			}
		}
	}
	return sums
}

// PackQB packs a k×n matrix of u8 values (b[p*rs+j*cs]) in NR-column
// strips of 4-deep steps, depth padded with pad.
func PackQB(dst []uint8, b []uint8, k, n, rs, cs int, pad uint8) {
	k4 := K4(k)
	for t := 0; t < n; t += NR {
		strip := dst[t*4*k4 : (t+NR)*4*k4]
		for j := 0; j < NR; j++ {
			for p := 0; p < 4*k4; p++ {
				v := pad
				if t+j < n && p < k {
					v = b[p*rs+(t+j)*cs]
				}
				strip[(p/4)*4*NR+j*4+p%4] = v
			}
		}
	}
}

// QMicro computes one tile of the INT8 GEMM with its epilogue: a is a
// packed weight strip (k4 steps), b a packed activation strip, out the
// tile's top left (float32 or codes per q.Flags, row stride ldo elements).
func QMicro(k4 int, a []int8, b []uint8, out unsafe.Pointer, ldo, mr, nr int, q *QEpi) {
	if k4 < 0 || mr < 1 || mr > MR || nr < 1 || nr > NR || len(a) < k4*4*MR || len(b) < k4*4*NR {
		panic("avx.QMicro: bad tile")
	}
	var pa *int8
	var pb *uint8
	if k4 > 0 {
		pa, pb = unsafe.SliceData(a), unsafe.SliceData(b)
	}
	qmicro(k4, pa, pb, (*byte)(out), ldo, mr, nr, (*int64)(unsafe.Pointer(q)))
}

// qgemmGeneric is the portable INT8 micro-kernel, the reference loop:
//
//	acc[i][j] = Σ_{p<k4, q<4} int32(b[p*4*NR+j*4+q])·int32(a[p*4*MR+i*4+q])   (exact int32)
//	then QEpi's epilogue on acc[i][j] for i < mr, j < nr.
func qgemmGeneric(k4 int, a *int8, b *uint8, out *byte, ldo, mr, nr int, qp *int64) {
	var acc [MR * NR]int32
	qaccumulate(&acc, k4, a, b, mr, nr)
	qtileEpilogue(&acc, out, ldo, mr, 0, nr, (*QEpi)(unsafe.Pointer(qp)))
}

// qtileEpilogue applies q's epilogue to the rows < mr, columns j0 ≤ j < nr
// of an accumulated tile (row-major, NR columns) and stores them at out
// (the tile's top left): the portable micro-kernel's epilogue, and the AVX2
// one's for the columns past its last full 8.
func qtileEpilogue(acc *[MR * NR]int32, out *byte, ldo, mr, j0, nr int, q *QEpi) {
	for i := 0; i < mr; i++ {
		for j := j0; j < nr; j++ {
			r := i
			if q.Flags&QCol != 0 {
				r = j
			}
			a := acc[i*NR+j]
			if q.Flags&(QCol|QRCorr) == QCol|QRCorr {
				a -= unsafe.Slice(q.RCorr, mr)[i]
			}
			var z float32
			if q.Flags&QResid != 0 {
				z = qResidAt(q, i*ldo+j)
			}
			y := qEpiFloat(q, a, r, z)
			if q.Flags&QQuant == 0 {
				*(*float32)(unsafe.Add(unsafe.Pointer(out), 4*(i*ldo+j))) = y
				continue
			}
			*(*byte)(unsafe.Add(unsafe.Pointer(out), i*ldo+j)) = qEpiCode(q, y)
		}
	}
}

// qaccumulate is the micro-kernels' exact int32 product of a packed weight
// strip and a packed activation strip (rows < mr, columns < nr).
func qaccumulate(acc *[MR * NR]int32, k4 int, a *int8, b *uint8, mr, nr int) {
	if k4 <= 0 {
		return
	}
	as := unsafe.Slice(a, k4*4*MR)
	bs := unsafe.Slice(b, k4*4*NR)
	for p := 0; p < k4; p++ {
		for i := 0; i < mr; i++ {
			w := as[p*4*MR+i*4 : p*4*MR+i*4+4]
			for j := 0; j < nr; j++ {
				u := bs[p*4*NR+j*4 : p*4*NR+j*4+4]
				acc[i*NR+j] += int32(u[0])*int32(w[0]) + int32(u[1])*int32(w[1]) + int32(u[2])*int32(w[2]) + int32(u[3])*int32(w[3])
			}
		}
	}
}

// qResidAt is the residual's value at element e (i·ldo + j) of q.Resid:
// the float32, or the code's DequantizeLinear value with QZCode.
func qResidAt(q *QEpi, e int) float32 {
	if q.Flags&QZCode == 0 {
		return *(*float32)(unsafe.Add(q.Resid, 4*e))
	}
	c := *(*byte)(unsafe.Add(q.Resid, e))
	v := int32(c)
	if q.Flags&QZSigned != 0 {
		v = int32(int8(c))
	}
	return float32(v-q.ZZero) * q.ZScale
}

// qEpiFloat is QEpi's float part for accumulator a of channel r (a row, or
// a column with QCol): float32(a − Corr[r])·Mult[r], + Bias[r], + z (the
// residual's value, with QResid), then the clamp.
func qEpiFloat(q *QEpi, a int32, r int, z float32) float32 {
	a -= *(*int32)(unsafe.Add(unsafe.Pointer(q.Corr), 4*r))
	y := float32(a) * *(*float32)(unsafe.Add(unsafe.Pointer(q.Mult), 4*r))
	if q.Flags&QBias != 0 {
		y += *(*float32)(unsafe.Add(unsafe.Pointer(q.Bias), 4*r))
	}
	if q.Flags&QMid != 0 {
		y = q.mid(y)
	}
	if q.Flags&QResid != 0 {
		y += z
	}
	if q.Flags&QClamp != 0 {
		y = float32(math.Min(math.Max(float64(y), float64(q.Lo)), float64(q.Hi)))
	}
	return y
}

// qEpiCode is QEpi's requantization of y: saturate(roundHalfEven(y /
// YScale)) + YZero, NaN to the low bound, as a code byte.
func qEpiCode(q *QEpi, y float32) byte {
	v := y / q.YScale
	if !(v >= q.QLo) { // NaN too
		v = q.QLo
	}
	v = min(v, q.QHi)
	return byte(int32(math.RoundToEven(float64(v))) + q.YZero)
}

// mid is QMid's step as the reference computes it (ops/kilnq's
// Layer.MidValue): the quotient divided, rounded half to even, clamped to
// [MQLo, MQHi], times MScale (y is finite here: no NaN case).
func (q *QEpi) mid(y float32) float32 {
	v := float32(math.RoundToEven(float64(float32(y / q.MScale))))
	v = min(max(v, q.MQLo), q.MQHi)
	return float32(v * q.MScale)
}

// setMid fills QEpi's mid fields for scale s and code bounds minus the
// zero point qlo, qhi.
func (q *QEpi) setMid(s, qlo, qhi float32) {
	q.MScale, q.MRecip, q.MQLo, q.MQHi = s, 1/s, qlo, qhi
	q.MLo, q.MHi = float32(float64(qlo)*float64(s)), float32(float64(qhi)*float64(s)) // exact products, rounded once
}
