// Package floatx converts between float32/float64 and the small float
// formats kiln stores: IEEE half (float16), bfloat16, the four float8 formats
// of ONNX (E4M3FN, E4M3FNUZ, E5M2, E5M2FNUZ), float8 E8M0 and float4 E2M1.
//
// All conversions to a narrow format round to nearest, ties to even, on the
// exact value (float64 input is rounded once, never through float32). The
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
	nanMag       uint32 // magnitude code written for NaN (ignored when uz)
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
	return mag == f.nanMag
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
// set, else +-Inf where the format has it, else NaN.
func (f *format) encode(v float64, sat bool) uint32 {
	sign := uint32(0)
	if math.Signbit(v) {
		sign = 1 << f.signShift()
	}
	if math.IsNaN(v) {
		if f.uz {
			return 1 << f.signShift()
		}
		return sign | f.nanMag
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
		default:
			return sign | f.nanMag
		}
	}
	if math.IsInf(a, 0) {
		if f.uz && sat {
			// ONNX: with saturation, +-Inf becomes NaN in the FNUZ formats
			// (they have no infinity to saturate from); finite overflow saturates.
			return 1 << f.signShift()
		}
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
	e5m2     = format{ebits: 5, mbits: 2, bias: 15, maxMag: 0x7b, infMag: 0x7c, nanMag: 0x7f, ieeeNaN: true}
	e5m2fnuz = format{ebits: 5, mbits: 2, bias: 16, maxMag: 0x7f, infMag: -1, uz: true}
	e2m1     = format{ebits: 2, mbits: 1, bias: 1, maxMag: 0x7, infMag: -1, nanMag: 0x7}
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

// F32ToF4E2M1 encodes to E2M1; the format has no Inf/NaN, so out-of-range
// values saturate to +-6 and NaN becomes the positive maximum code.
func F32ToF4E2M1(v float32, sat bool) uint8 {
	return uint8(e2m1.encode(float64(v), true))
}

// E8M0ToF32 decodes an E8M0 scale: 2^(code-127); 0xFF is NaN.
func E8M0ToF32(code uint8) float32 {
	if code == 0xff {
		return float32(math.NaN())
	}
	return float32(math.Ldexp(1, int(code)-127))
}

// F32ToE8M0 encodes |v| as a power of two, rounding up (ONNX Cast's default
// round_mode "up"); the sign is dropped. Out of range saturates to 0xFE with
// sat, else becomes NaN (0xFF).
func F32ToE8M0(v float32, sat bool) uint8 {
	b := math.Float32bits(v)
	e := (b >> 23) & 0xff
	m := b & 0x7fffff
	if e == 0xff {
		if m != 0 || !sat {
			return 0xff
		}
		return 0xfe
	}
	if e == 0 {
		// float32 subnormals: round up to 2^-127 (code 0) or to 2^-126 (code 1)
		if m > 0x400000 {
			return 1
		}
		return 0
	}
	if m != 0 {
		e++
	}
	if e > 0xfe {
		if sat {
			return 0xfe
		}
		return 0xff
	}
	return uint8(e)
}
