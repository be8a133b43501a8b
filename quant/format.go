package quant

import (
	"encoding/binary"
	"math"
	"sort"
	"strings"

	"github.com/kilnml/kiln/floatx"
	"github.com/kilnml/kiln/ir"
)

// format is what quantization needs to know about a target type. Integer
// types are described by their range; float types by an encoder, a decoder
// and their largest finite value. Codes are int64: the integer value for
// integer types, the bit pattern for float types.
type format struct {
	bits   int // storage bits per element
	float  bool
	lo, hi int64   // integer types: full range
	max    float64 // float types: largest finite value
	enc    func(v float32, sat bool) uint32
	dec    func(code uint32) float32
	// addZP: ONNX's reference adds the (float, zero) zero point to x/S before
	// encoding float4e2m1 (not float8), which turns -0 into +0.
	addZP bool
}

func f8format(dt ir.DType) *format {
	ff := ir.F8Format(dt)
	return &format{float: true, max: ff.Max(),
		enc: func(v float32, sat bool) uint32 { return uint32(floatx.F32ToF8(v, ff, sat)) },
		dec: func(c uint32) float32 { return floatx.F8ToF32(uint8(c), ff) }}
}

var formats = func() map[ir.DType]*format {
	m := map[ir.DType]*format{
		ir.Float16: {float: true, max: 65504,
			enc: func(v float32, _ bool) uint32 { return uint32(floatx.F32ToF16(v)) },
			dec: func(c uint32) float32 { return floatx.F16ToF32(uint16(c)) }},
		ir.BFloat16: {float: true, max: float64(math.Float32frombits(0x7f7f0000)),
			enc: func(v float32, _ bool) uint32 { return uint32(floatx.F32ToBF16(v)) },
			dec: func(c uint32) float32 { return floatx.BF16ToF32(uint16(c)) }},
		ir.Float4E2M1: {float: true, max: 6, addZP: true,
			enc: func(v float32, sat bool) uint32 { return uint32(floatx.F32ToF4E2M1(v, sat)) },
			dec: func(c uint32) float32 { return floatx.F4E2M1ToF32(uint8(c)) }},
	}
	for _, dt := range []ir.DType{ir.Float8E4M3FN, ir.Float8E4M3FNUZ, ir.Float8E5M2, ir.Float8E5M2FNUZ} {
		m[dt] = f8format(dt)
	}
	for _, dt := range []ir.DType{ir.Int8, ir.Uint8, ir.Int16, ir.Uint16, ir.Int32, ir.Int4, ir.Uint4, ir.Int2, ir.Uint2} {
		lo, hi := dt.IntRange()
		m[dt] = &format{lo: lo, hi: hi}
	}
	for dt, f := range m {
		f.bits = dt.Bits()
	}
	return m
}()

// formatOf returns the shared (read-only) description of dt, or a zero
// format and false when dt is not a quantization type.
func formatOf(dt ir.DType) (*format, bool) {
	if f, ok := formats[dt]; ok {
		return f, true
	}
	return &format{}, false
}

// Supported reports whether dt can be a quantization target.
func Supported(dt ir.DType) bool { _, ok := formats[dt]; return ok }

func supportedNames() string {
	var names []string
	for dt := range formats {
		names = append(names, dt.String())
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// quantizeOne maps one value to a code. For integer types it returns
// clamp(roundHalfEven(x/s) + z, lo, hi); for float types the encoding of x/s.
// x/s is computed in float32 (the explicit conversion keeps the compiler from
// fusing it with later operations), as ONNX's reference and ONNX Runtime do.
// clipped reports that the value lay beyond the representable range (an
// integer outside [lo, hi] after rounding; a float beyond ±max). NaN maps to
// the lowest code (integers) or NaN (float types that have it).
func (f *format) quantizeOne(x, s float32, z int32, lo, hi int64, sat bool) (code int64, clipped bool) {
	v := float32(x / s)
	if f.float {
		if f.addZP {
			v += 0
		}
		return int64(f.enc(v, sat)), !(math.Abs(float64(v)) <= f.max)
	}
	if v != v {
		return lo, true // as ONNX Runtime and ONNX's reference (on x86) compute it
	}
	r := math.RoundToEven(float64(v)) + float64(z)
	switch {
	case r < float64(lo):
		return lo, true
	case r > float64(hi):
		return hi, true
	}
	return int64(r), false
}

// dequantizeOne maps a code back: (q − z)·s for integers, decode(q)·s for
// floats, computed exactly and rounded once to float32, as ONNX's reference
// and ONNX Runtime do for every type up to 16 bits. (For int32 codes beyond
// 2^24 ONNX's reference first rounds q to float32; kiln does not.)
func (f *format) dequantizeOne(code int64, s float32, z int32) float32 {
	if f.float {
		return float32(float64(f.dec(uint32(code))) * float64(s))
	}
	return float32(float64(code-int64(z)) * float64(s))
}

// storeCode writes the low bits of a code (two's complement for signed
// integers, the bit pattern for floats) into element i of packed
// little-endian data; sub-byte types are packed low bits first.
func (f *format) storeCode(t *ir.Tensor, i, code int64) {
	d := t.Data
	switch f.bits {
	case 8:
		d[i] = uint8(code)
	case 16:
		binary.LittleEndian.PutUint16(d[2*i:], uint16(code))
	case 32:
		binary.LittleEndian.PutUint32(d[4*i:], uint32(code))
	default: // 4 or 2
		per := 8 / int64(f.bits)
		sh := uint(i%per) * uint(f.bits)
		m := uint8(1)<<f.bits - 1
		d[i/per] = d[i/per]&^(m<<sh) | (uint8(code)&m)<<sh
	}
}

// loadCode reads element i of a quantized tensor as a code (sign-extended for
// signed integer types).
func (f *format) loadCode(t *ir.Tensor, i int64) int64 {
	d := t.Data
	var u uint64
	switch f.bits {
	case 8:
		u = uint64(d[i])
	case 16:
		u = uint64(binary.LittleEndian.Uint16(d[2*i:]))
	case 32:
		u = uint64(binary.LittleEndian.Uint32(d[4*i:]))
	default:
		per := 8 / int64(f.bits)
		u = uint64(d[i/per]>>(uint(i%per)*uint(f.bits))) & (1<<f.bits - 1)
	}
	if !f.float && f.lo < 0 && u >= 1<<(f.bits-1) {
		return int64(u) - 1<<f.bits
	}
	return int64(u)
}
