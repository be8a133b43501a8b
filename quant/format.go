package quant

import (
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
	float  bool
	lo, hi int64   // integer types: full range
	max    float64 // float types: largest finite value
	enc    func(v float32, sat bool) uint32
	dec    func(code uint32) float32
	// addZP: ONNX's reference adds the (float, zero) zero point to x/S before
	// encoding float4e2m1 (not float8), which turns -0 into +0.
	addZP bool
}

func f8format(dt ir.DType) format {
	ff := ir.F8Format(dt)
	return format{float: true, max: ff.Max(),
		enc: func(v float32, sat bool) uint32 { return uint32(floatx.F32ToF8(v, ff, sat)) },
		dec: func(c uint32) float32 { return floatx.F8ToF32(uint8(c), ff) }}
}

var formats = func() map[ir.DType]format {
	m := map[ir.DType]format{
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
		m[dt] = format{lo: lo, hi: hi}
	}
	return m
}()

func formatOf(dt ir.DType) (*format, bool) {
	f, ok := formats[dt]
	return &f, ok
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
// the zero point (integers) or NaN (float types that have it).
func (f *format) quantizeOne(x, s float32, z int32, lo, hi int64, sat bool) (code int64, clipped bool) {
	v := float32(x / s)
	if f.float {
		if f.addZP {
			v += 0
		}
		return int64(f.enc(v, sat)), math.Abs(float64(v)) > f.max
	}
	if v != v {
		return int64(z), false
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
// floats, computed exactly and rounded once to float32 (as ONNX's reference,
// whose integer path promotes to float64).
func (f *format) dequantizeOne(code int64, s float32, z int32) float32 {
	if f.float {
		return float32(float64(f.dec(uint32(code))) * float64(s))
	}
	return float32(float64(code-int64(z)) * float64(s))
}

// storeCode writes a code into element i of a tensor of the format's type.
func (f *format) storeCode(t *ir.Tensor, i, code int64) {
	if !f.float {
		t.SetInt64At(i, code) // packs int4/uint4/int2/uint2, low bits first
		return
	}
	switch t.DType.Bits() {
	case 16:
		t.U16()[i] = uint16(code)
	case 8:
		t.Data[i] = uint8(code)
	case 4:
		sh := uint(i%2) * 4
		t.Data[i/2] = t.Data[i/2]&^(0xf<<sh) | uint8(code&0xf)<<sh
	}
}

// loadCode reads element i of a quantized tensor as a code.
func (f *format) loadCode(t *ir.Tensor, i int64) int64 {
	if !f.float {
		return t.Int64At(i)
	}
	switch t.DType.Bits() {
	case 16:
		return int64(t.U16()[i])
	case 8:
		return int64(t.Data[i])
	}
	return int64(t.Data[i/2]>>(uint(i%2)*4)) & 0xf
}
