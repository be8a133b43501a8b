// Package floatx converts between float32/float64 and the small float
// formats kiln stores: IEEE half (float16), bfloat16, the four float8 formats
// of ONNX (E4M3FN, E4M3FNUZ, E5M2, E5M2FNUZ), float8 E8M0 and float4 E2M1.
//
// All conversions to a narrow format round to nearest, ties to even, on the
// exact value (float64 input is rounded once, never through float32), except
// E8M0, which rounds to a power of two by ONNX's round_mode. Special values
// and overflow follow ONNX's Cast tables and conformance data. The
// small formats are described by one table (format) and encoded and decoded
// by one generic routine each, so a new format is a new table row.
package floatx

import "math"

// format describes a small binary float: sign bit, ebits of exponent, mbits
// of mantissa.
type format struct {
	ebits, mbits int
	bias         int
	maxMag       uint32 // magnitude code of the largest finite value
	infMag       int64  // magnitude code of +Inf, or -1 when the format has none
	nanMag       int64  // magnitude code written for NaN, -1 when the format has no NaN (ignored when uz)
	uz           bool   // "unsigned zero": no -0; the code with only the sign bit set is the one NaN
	ieeeNaN      bool   // every exponent-all-ones code with a non-zero mantissa is NaN (IEEE style)
}

func (f *format) signShift() uint { return uint(f.ebits + f.mbits) }

// isNaN reports whether the code is a NaN of this format.
func (f *format) isNaN(code uint32) bool {
	mag := code & (1<<f.signShift() - 1)
	if f.uz {
		return code == 1<<f.signShift()
	}
	if f.ieeeNaN {
		return mag>>uint(f.mbits) == 1<<uint(f.ebits)-1 && mag&(1<<uint(f.mbits)-1) != 0
	}
	return f.nanMag >= 0 && int64(mag) == f.nanMag
}

// decode returns the exact value of a code.
func (f *format) decode(code uint32) float64 {
	if f.isNaN(code) {
		return math.NaN()
	}
	neg := code>>f.signShift()&1 == 1
	mag := code & (1<<f.signShift() - 1)
	var v float64
	if f.infMag >= 0 && int64(mag) == f.infMag {
		v = math.Inf(1)
	} else {
		e := int(mag >> uint(f.mbits))
		m := float64(mag & (1<<uint(f.mbits) - 1))
		if e == 0 {
			v = math.Ldexp(m, 1-f.bias-f.mbits)
		} else {
			v = math.Ldexp(1+m/float64(uint32(1)<<uint(f.mbits)), e-f.bias)
		}
	}
	if neg {
		v = -v
	}
	return v
}

// encode rounds v to nearest even. Values that round beyond the largest
// finite value (and infinities) become the largest finite value when sat is
// set, else +-Inf where the format has it, else NaN. This is ONNX Cast's
// table since opset 24 (and what its reference and ONNX Runtime compute for
// earlier opsets too): with saturate, +-Inf becomes +-FLT_MAX in all four
// float8 formats, the FNUZ ones included. NaN input needs a format with NaN
// (callers handle the others).
func (f *format) encode(v float64, sat bool) uint32 {
	sign := uint32(0)
	if math.Signbit(v) {
		sign = 1 << f.signShift()
	}
	if math.IsNaN(v) {
		if f.uz {
			return 1 << f.signShift()
		}
		return sign | uint32(f.nanMag)
	}
	a := math.Abs(v)
	overflow := func() uint32 {
		switch {
		case sat:
			return sign | f.maxMag
		case f.infMag >= 0:
			return sign | uint32(f.infMag)
		case f.uz:
			return 1 << f.signShift()
		case f.nanMag < 0: // no Inf, no NaN: nothing to do but saturate
			return sign | f.maxMag
		default:
			return sign | uint32(f.nanMag)
		}
	}
	if math.IsInf(a, 0) {
		return overflow()
	}
	emin := 1 - f.bias
	var mag uint64
	if a < math.Ldexp(1, emin) {
		mag = uint64(math.RoundToEven(math.Ldexp(a, f.mbits-emin)))
	} else {
		_, exp := math.Frexp(a)
		e := exp - 1
		n := math.RoundToEven(math.Ldexp(a, f.mbits-e))
		if n >= math.Ldexp(1, f.mbits+1) {
			e++
			n = math.Ldexp(1, f.mbits)
		}
		be := e + f.bias
		if be >= 1<<uint(f.ebits) {
			return overflow()
		}
		mag = uint64(be)<<uint(f.mbits) | (uint64(n) - 1<<uint(f.mbits))
	}
	if mag > uint64(f.maxMag) {
		return overflow()
	}
	if mag == 0 && f.uz {
		return 0
	}
	return sign | uint32(mag)
}

var (
	half     = format{ebits: 5, mbits: 10, bias: 15, maxMag: 0x7bff, infMag: 0x7c00, nanMag: 0x7e00, ieeeNaN: true}
	bfloat   = format{ebits: 8, mbits: 7, bias: 127, maxMag: 0x7f7f, infMag: 0x7f80, nanMag: 0x7fc0, ieeeNaN: true}
	e4m3fn   = format{ebits: 4, mbits: 3, bias: 7, maxMag: 0x7e, infMag: -1, nanMag: 0x7f}
	e4m3fnuz = format{ebits: 4, mbits: 3, bias: 8, maxMag: 0x7f, infMag: -1, uz: true}
	// E5M2 writes NaN as 0x7e/0xfe, the top byte of half's quiet NaN, as ONNX's reference (ml_dtypes) does.
	e5m2     = format{ebits: 5, mbits: 2, bias: 15, maxMag: 0x7b, infMag: 0x7c, nanMag: 0x7e, ieeeNaN: true}
	e5m2fnuz = format{ebits: 5, mbits: 2, bias: 16, maxMag: 0x7f, infMag: -1, uz: true}
	e2m1     = format{ebits: 2, mbits: 1, bias: 1, maxMag: 0x7, infMag: -1, nanMag: -1}
)

// F8Format names one of ONNX's float8 formats.
type F8Format int

const (
	E4M3FN F8Format = iota
	E4M3FNUZ
	E5M2
	E5M2FNUZ
)

func (f F8Format) String() string {
	return [...]string{"E4M3FN", "E4M3FNUZ", "E5M2", "E5M2FNUZ"}[f]
}

func (f F8Format) table() *format {
	return [...]*format{&e4m3fn, &e4m3fnuz, &e5m2, &e5m2fnuz}[f]
}

// Max returns the largest finite value of the format (448, 240, 57344, 57344).
func (f F8Format) Max() float64 { return f.table().decode(f.table().maxMag) }

var f8decode [4][256]float32

func init() {
	for k := range f8decode {
		for c := 0; c < 256; c++ {
			f8decode[k][c] = float32(F8Format(k).table().decode(uint32(c)))
		}
	}
}

// F8ToF32 decodes a float8 code.
func F8ToF32(code uint8, f F8Format) float32 { return f8decode[f][code] }

// F32ToF8 encodes v; sat selects ONNX's saturate=1 behaviour.
func F32ToF8(v float32, f F8Format, sat bool) uint8 { return uint8(f.table().encode(float64(v), sat)) }

// F64ToF8 encodes a float64 with a single rounding.
func F64ToF8(v float64, f F8Format, sat bool) uint8 { return uint8(f.table().encode(v, sat)) }

// F16ToF32 decodes an IEEE half.
func F16ToF32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	e := uint32(h>>10) & 0x1f
	m := uint32(h & 0x3ff)
	switch {
	case e == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | m<<13)
	case e == 0:
		if m == 0 {
			return math.Float32frombits(sign)
		}
		// subnormal: m * 2^-24 is exact in float32
		v := float32(m) * (1.0 / (1 << 24))
		if sign != 0 {
			v = -v
		}
		return v
	}
	return math.Float32frombits(sign | (e+112)<<23 | m<<13)
}

// F32ToF16 rounds to nearest even; overflow gives Inf, NaN stays NaN (quiet, payload kept where it fits).
func F32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7f800000 == 0x7f800000 && b&0x7fffff != 0 {
		return uint16(b>>16)&0x8000 | 0x7e00 | uint16(b>>13)&0x3ff
	}
	return uint16(half.encode(float64(f), false))
}

// F64ToF16 rounds a float64 to half in one step (no double rounding through float32).
func F64ToF16(v float64) uint16 { return uint16(half.encode(v, false)) }

// BF16ToF32 decodes a bfloat16.
func BF16ToF32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// F32ToBF16 rounds to nearest even; NaN stays a quiet NaN with its sign.
func F32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7f800000 == 0x7f800000 && b&0x7fffff != 0 {
		return uint16(b>>16) | 0x40
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}

// F64ToBF16 rounds a float64 to bfloat16 in one step.
func F64ToBF16(v float64) uint16 {
	if math.IsNaN(v) {
		return F32ToBF16(float32(v))
	}
	return uint16(bfloat.encode(v, false))
}

// F4E2M1ToF32 decodes a 4-bit E2M1 code (low nibble).
func F4E2M1ToF32(code uint8) float32 { return float32(e2m1.decode(uint32(code & 0xf))) }

// F32ToF4E2M1 encodes to E2M1 (round to nearest even). The format has no Inf
// or NaN: out-of-range values and infinities always saturate to +-6 (sat is
// ignored; ONNX's Cast has no non-saturating float4), and NaN becomes 0x8,
// the code ONNX's reference (ml_dtypes) writes, which reads back as -0.
func F32ToF4E2M1(v float32, sat bool) uint8 { return F64ToF4E2M1(float64(v)) }

// F64ToF4E2M1 is F32ToF4E2M1 for a float64, rounded once.
func F64ToF4E2M1(v float64) uint8 {
	if math.IsNaN(v) {
		return 0x8
	}
	return uint8(e2m1.encode(v, true))
}

// E8M0ToF32 decodes an E8M0 scale: 2^(code-127); 0xFF is NaN.
func E8M0ToF32(code uint8) float32 {
	if code == 0xff {
		return float32(math.NaN())
	}
	return float32(math.Ldexp(1, int(code)-127))
}

// E8M0Round is ONNX Cast's round_mode for float8e8m0.
type E8M0Round int

const (
	E8M0Up      E8M0Round = iota // the smallest power of two >= |v| (ONNX's default)
	E8M0Down                     // the largest power of two <= |v|
	E8M0Nearest                  // the nearer power of two, ties (|v| = 1.5*2^k) up
)

// ParseE8M0Round reads ONNX's round_mode attribute ("up", "down", "nearest").
func ParseE8M0Round(s string) (E8M0Round, bool) {
	switch s {
	case "up":
		return E8M0Up, true
	case "down":
		return E8M0Down, true
	case "nearest":
		return E8M0Nearest, true
	}
	return 0, false
}

// F32ToE8M0 encodes |v| as a power of two, rounding up (ONNX Cast's default
// round_mode); see F64ToE8M0.
func F32ToE8M0(v float32, sat bool) uint8 { return F64ToE8M0(float64(v), E8M0Up, sat) }

// F64ToE8M0 encodes |v| (the sign is dropped: ONNX leaves negative input
// unspecified) as 2^k, code k+127, rounding the exponent by mode as if its
// range were unbounded. Results beyond 2^127 (and +-Inf) become 0xFE (2^127)
// with sat, else NaN (0xFF); results below 2^-127 (and 0) become 0x00
// (2^-127) with sat, else NaN; NaN stays NaN. This is ONNX Cast's E8M0 table
// (saturate+up, non-saturate+nearest) extended to the other combinations.
// ONNX's Python reference differs at two edges: it turns Inf into NaN even
// with saturate, and rounds float32 subnormals up to 2^-126.
func F64ToE8M0(v float64, mode E8M0Round, sat bool) uint8 {
	if math.IsNaN(v) {
		return 0xff
	}
	a := math.Abs(v)
	var k int // the rounded exponent; k < -127 underflows, k > 127 overflows
	switch {
	case a == 0:
		k = math.MinInt32
	case math.IsInf(a, 0):
		k = math.MaxInt32
	default:
		frac, exp := math.Frexp(a) // a = frac * 2^exp, frac in [0.5, 1)
		k = exp - 1
		switch {
		case frac == 0.5: // an exact power of two
		case mode == E8M0Up:
			k++
		case mode == E8M0Nearest && frac >= 0.75:
			k++
		}
	}
	switch {
	case k > 127:
		if sat {
			return 0xfe
		}
		return 0xff
	case k < -127:
		if sat {
			return 0
		}
		return 0xff
	}
	return uint8(k + 127)
}
