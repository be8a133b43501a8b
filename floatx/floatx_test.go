package floatx

import (
	"math"
	"testing"
)

// The tests compare floatx with a reference written separately from it:
// refFormat decodes a code from its bit fields with a textbook formula, and
// the special codes of every format are listed by hand from the format's
// definition (IEEE 754 for half and bfloat16, the OCP/ONNX float8 and MX
// definitions for the rest). Encoding is then checked by exhaustive
// round-trips, midpoints between neighbouring codes and hand-written tables.

type refFormat struct {
	name               string
	bits, ebits, mbits int
	bias               int
	special            func(code uint32) (v float64, ok bool) // NaN/Inf codes
}

func (r refFormat) value(code uint32) float64 {
	if v, ok := r.special(code); ok {
		return v
	}
	sign := 1.0
	if code>>(r.bits-1)&1 == 1 {
		sign = -1
	}
	e := int(code>>r.mbits) & (1<<r.ebits - 1)
	m := float64(code & (1<<r.mbits - 1))
	scale := math.Pow(2, float64(r.mbits))
	if e == 0 {
		return sign * m / scale * math.Pow(2, float64(1-r.bias))
	}
	return sign * (1 + m/scale) * math.Pow(2, float64(e-r.bias))
}

func none(uint32) (float64, bool) { return 0, false }

// ieeeSpecial: exponent all ones is Inf (mantissa 0) or NaN.
func ieeeSpecial(bits, ebits, mbits int) func(uint32) (float64, bool) {
	return func(c uint32) (float64, bool) {
		e := int(c>>mbits) & (1<<ebits - 1)
		if e != 1<<ebits-1 {
			return 0, false
		}
		if c&(1<<mbits-1) != 0 {
			return math.NaN(), true
		}
		if c>>(bits-1) == 1 {
			return math.Inf(-1), true
		}
		return math.Inf(1), true
	}
}

var (
	refHalf = refFormat{"float16", 16, 5, 10, 15, ieeeSpecial(16, 5, 10)}
	refBF16 = refFormat{"bfloat16", 16, 8, 7, 127, ieeeSpecial(16, 8, 7)}
	refF8   = map[F8Format]refFormat{
		// E4M3FN: no Inf; S.1111.111 is NaN.
		E4M3FN: {"E4M3FN", 8, 4, 3, 7, func(c uint32) (float64, bool) {
			return math.NaN(), c&0x7f == 0x7f
		}},
		// FNUZ: no Inf, no -0; 0x80 is the only NaN.
		E4M3FNUZ: {"E4M3FNUZ", 8, 4, 3, 8, func(c uint32) (float64, bool) { return math.NaN(), c == 0x80 }},
		E5M2:     {"E5M2", 8, 5, 2, 15, ieeeSpecial(8, 5, 2)},
		E5M2FNUZ: {"E5M2FNUZ", 8, 5, 2, 16, func(c uint32) (float64, bool) { return math.NaN(), c == 0x80 }},
	}
	refE2M1 = refFormat{"E2M1", 4, 2, 1, 1, none}
)

// sameBits compares floats including NaN (any NaN equals any NaN) and the sign of zero.
func sameValue(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return a == b && math.Signbit(a) == math.Signbit(b)
}

func TestHalfDecodeAll(t *testing.T) {
	for c := 0; c < 1<<16; c++ {
		want := refHalf.value(uint32(c))
		if got := float64(F16ToF32(uint16(c))); !sameValue(got, want) {
			t.Fatalf("F16ToF32(%#04x) = %v, want %v", c, got, want)
		}
	}
}

func TestBF16DecodeAll(t *testing.T) {
	for c := 0; c < 1<<16; c++ {
		want := refBF16.value(uint32(c))
		if got := float64(BF16ToF32(uint16(c))); !sameValue(got, want) {
			t.Fatalf("BF16ToF32(%#04x) = %v, want %v", c, got, want)
		}
	}
}

func TestF8DecodeAll(t *testing.T) {
	for f, ref := range refF8 {
		for c := 0; c < 256; c++ {
			want := ref.value(uint32(c))
			if got := float64(F8ToF32(uint8(c), f)); !sameValue(got, want) {
				t.Fatalf("%s: F8ToF32(%#02x) = %v, want %v", ref.name, c, got, want)
			}
		}
	}
}

func TestE2M1DecodeAll(t *testing.T) {
	want := []float64{0, 0.5, 1, 1.5, 2, 3, 4, 6}
	for c := 0; c < 16; c++ {
		w := want[c&7]
		if c&8 != 0 {
			w = -w
		}
		if r := refE2M1.value(uint32(c)); !sameValue(r, w) {
			t.Fatalf("reference formula disagrees with the E2M1 table at %#x: %v vs %v", c, r, w)
		}
		if got := float64(F4E2M1ToF32(uint8(c))); !sameValue(got, w) {
			t.Fatalf("F4E2M1ToF32(%#x) = %v, want %v", c, got, w)
		}
	}
}

// codec is one encoder under test with its reference format.
type codec struct {
	name    string
	ref     refFormat
	enc64   func(float64) uint32
	enc32   func(float32) uint32 // nil when there is no float32 entry point
	satMax  bool                 // overflow saturates (else it gives Inf or NaN)
	hasNegZ bool
}

func codecs() []codec {
	cs := []codec{
		{"float16", refHalf, func(v float64) uint32 { return uint32(F64ToF16(v)) },
			func(v float32) uint32 { return uint32(F32ToF16(v)) }, false, true},
		{"bfloat16", refBF16, func(v float64) uint32 { return uint32(F64ToBF16(v)) },
			func(v float32) uint32 { return uint32(F32ToBF16(v)) }, false, true},
		{"E2M1", refE2M1, func(v float64) uint32 { return uint32(F64ToF4E2M1(v)) },
			func(v float32) uint32 { return uint32(F32ToF4E2M1(v, true)) }, true, true},
	}
	for _, f := range []F8Format{E4M3FN, E4M3FNUZ, E5M2, E5M2FNUZ} {
		for _, sat := range []bool{true, false} {
			name := f.String() + "/nosat"
			if sat {
				name = f.String() + "/sat"
			}
			cs = append(cs, codec{name, refF8[f],
				func(v float64) uint32 { return uint32(F64ToF8(v, f, sat)) },
				func(v float32) uint32 { return uint32(F32ToF8(v, f, sat)) }, sat, f == E4M3FN || f == E5M2})
		}
	}
	return cs
}

// TestRoundTrip: encode(decode(c)) == c for every non-NaN code.
func TestRoundTrip(t *testing.T) {
	for _, cd := range codecs() {
		for c := uint32(0); c < 1<<cd.ref.bits; c++ {
			v := cd.ref.value(c)
			if math.IsNaN(v) || (math.IsInf(v, 0) && cd.satMax) {
				continue
			}
			if got := cd.enc64(v); got != c {
				t.Fatalf("%s: encode64(%v) = %#x, want %#x", cd.name, v, got, c)
			}
			if got := cd.enc32(float32(v)); got != c {
				t.Fatalf("%s: encode32(%v) = %#x, want %#x", cd.name, v, got, c)
			}
		}
	}
}

// TestMidpoints: the exact midpoint between two neighbouring finite codes
// rounds to the even code; one float64 ulp either side rounds to the nearer.
func TestMidpoints(t *testing.T) {
	for _, cd := range codecs() {
		n := uint32(1) << (cd.ref.bits - 1) // positive codes; negatives by symmetry below
		for c := uint32(0); c+1 < n; c++ {
			lo, hi := cd.ref.value(c), cd.ref.value(c+1)
			if math.IsNaN(hi) || math.IsInf(hi, 0) {
				break
			}
			mid := (lo + hi) / 2
			even := c
			if c&1 == 1 {
				even = c + 1
			}
			for _, sign := range []float64{1, -1} {
				signBit := uint32(0)
				if sign < 0 {
					signBit = n
				}
				wantEven, wantLo, wantHi := even|signBit, c|signBit, (c+1)|signBit
				if sign < 0 && c == 0 && !cd.hasNegZ {
					wantLo = 0 // no -0: rounds to +0
					if even == 0 {
						wantEven = 0
					}
				}
				m := sign * mid
				if got := cd.enc64(m); got != wantEven {
					t.Fatalf("%s: encode64(midpoint %v) = %#x, want even %#x", cd.name, m, got, wantEven)
				}
				if got := cd.enc32(float32(m)); float64(float32(m)) == m && got != wantEven {
					t.Fatalf("%s: encode32(midpoint %v) = %#x, want even %#x", cd.name, m, got, wantEven)
				}
				below := sign * math.Nextafter(mid, lo)
				above := sign * math.Nextafter(mid, hi)
				if got := cd.enc64(below); got != wantLo {
					t.Fatalf("%s: encode64(%v) = %#x, want %#x", cd.name, below, got, wantLo)
				}
				if got := cd.enc64(above); got != wantHi {
					t.Fatalf("%s: encode64(%v) = %#x, want %#x", cd.name, above, got, wantHi)
				}
			}
		}
	}
}

// TestOverflow: values beyond the largest finite value, rounded, give Inf
// for IEEE half/bfloat16 and follow ONNX's float8 table otherwise.
func TestOverflow(t *testing.T) {
	cases := []struct {
		name     string
		max, ulp float64 // largest finite value and the code spacing at it
		enc      func(float64) uint32
		maxCode  uint32
		overCode uint32 // what a positive overflow gives
	}{
		{"float16", 65504, 32, func(v float64) uint32 { return uint32(F64ToF16(v)) }, 0x7bff, 0x7c00},
		{"bfloat16", float64(math.Float32frombits(0x7f7f0000)), math.Ldexp(1, 127-7),
			func(v float64) uint32 { return uint32(F64ToBF16(v)) }, 0x7f7f, 0x7f80},
		{"E4M3FN/sat", 448, 32, func(v float64) uint32 { return uint32(F64ToF8(v, E4M3FN, true)) }, 0x7e, 0x7e},
		{"E4M3FN/nosat", 448, 32, func(v float64) uint32 { return uint32(F64ToF8(v, E4M3FN, false)) }, 0x7e, 0x7f},
		{"E4M3FNUZ/sat", 240, 16, func(v float64) uint32 { return uint32(F64ToF8(v, E4M3FNUZ, true)) }, 0x7f, 0x7f},
		{"E4M3FNUZ/nosat", 240, 16, func(v float64) uint32 { return uint32(F64ToF8(v, E4M3FNUZ, false)) }, 0x7f, 0x80},
		{"E5M2/sat", 57344, 8192, func(v float64) uint32 { return uint32(F64ToF8(v, E5M2, true)) }, 0x7b, 0x7b},
		{"E5M2/nosat", 57344, 8192, func(v float64) uint32 { return uint32(F64ToF8(v, E5M2, false)) }, 0x7b, 0x7c},
		{"E5M2FNUZ/sat", 57344, 8192, func(v float64) uint32 { return uint32(F64ToF8(v, E5M2FNUZ, true)) }, 0x7f, 0x7f},
		{"E5M2FNUZ/nosat", 57344, 8192, func(v float64) uint32 { return uint32(F64ToF8(v, E5M2FNUZ, false)) }, 0x7f, 0x80},
		{"E2M1", 6, 2, func(v float64) uint32 { return uint32(F64ToF4E2M1(v)) }, 0x7, 0x7},
	}
	for _, c := range cases {
		// max+ulp/2 is a tie between max and the next (unrepresentable) code:
		// it goes to max when max's code is even (E4M3FN: 448 is 1.110b*2^8), else it overflows.
		half := c.max + c.ulp/2
		below, over := math.Nextafter(half, 0), []float64{c.max + c.ulp, c.max * 1e3, math.Inf(1)}
		if c.maxCode&1 == 0 {
			below = half
			over = append(over, math.Nextafter(half, math.Inf(1)))
		} else {
			over = append(over, half)
		}
		if got := c.enc(below); got != c.maxCode {
			t.Errorf("%s: encode(%v) = %#x, want %#x", c.name, below, got, c.maxCode)
		}
		for _, v := range over {
			if got := c.enc(v); got != c.overCode {
				t.Errorf("%s: encode(%v) = %#x, want %#x", c.name, v, got, c.overCode)
			}
		}
	}
}

// TestONNXCastTable checks the special rows of ONNX Cast's float8 tables
// (opset 24 doc; the conformance data of every opset agrees): saturate and
// non-saturate, for 0, -0, NaN, -NaN, +-Inf and +-out-of-range.
func TestONNXCastTable(t *testing.T) {
	negNaN := math.Copysign(math.NaN(), -1)
	in := []float64{0, math.Copysign(0, -1), math.NaN(), negNaN, math.Inf(1), math.Inf(-1), 1e6, -1e6}
	want := map[F8Format]map[bool][]uint8{
		E4M3FN: {
			true:  {0x00, 0x80, 0x7f, 0xff, 0x7e, 0xfe, 0x7e, 0xfe},
			false: {0x00, 0x80, 0x7f, 0xff, 0x7f, 0xff, 0x7f, 0xff},
		},
		E4M3FNUZ: {
			true:  {0x00, 0x00, 0x80, 0x80, 0x7f, 0xff, 0x7f, 0xff},
			false: {0x00, 0x00, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80},
		},
		E5M2: {
			true:  {0x00, 0x80, 0x7e, 0xfe, 0x7b, 0xfb, 0x7b, 0xfb},
			false: {0x00, 0x80, 0x7e, 0xfe, 0x7c, 0xfc, 0x7c, 0xfc},
		},
		E5M2FNUZ: {
			true:  {0x00, 0x00, 0x80, 0x80, 0x7f, 0xff, 0x7f, 0xff},
			false: {0x00, 0x00, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80},
		},
	}
	for f, bySat := range want {
		for sat, codes := range bySat {
			for i, v := range in {
				if got := F64ToF8(v, f, sat); got != codes[i] {
					t.Errorf("%s sat=%v: F64ToF8(%v) = %#02x, want %#02x", f, sat, v, got, codes[i])
				}
				if got := F32ToF8(float32(v), f, sat); got != codes[i] {
					t.Errorf("%s sat=%v: F32ToF8(%v) = %#02x, want %#02x", f, sat, v, got, codes[i])
				}
			}
		}
	}
	// E2M1 has neither: always saturates; NaN is written as 0x8 (ONNX's reference).
	for v, c := range map[float64]uint8{math.Inf(1): 0x7, math.Inf(-1): 0xf, 1e6: 0x7, -7: 0xf, math.NaN(): 0x8} {
		if got := F64ToF4E2M1(v); got != c {
			t.Errorf("F64ToF4E2M1(%v) = %#x, want %#x", v, got, c)
		}
	}
}

// TestHalfIEEE spot-checks IEEE facts the exhaustive tests build on.
func TestHalfIEEE(t *testing.T) {
	cases := map[float64]uint16{
		1: 0x3c00, -2: 0xc000, 65504: 0x7bff, math.Ldexp(1, -24): 0x0001, math.Ldexp(1, -14): 0x0400,
		math.Ldexp(1, -25): 0x0000, math.Ldexp(3, -26): 0x0001, 0.1: 0x2e66, math.Inf(-1): 0xfc00,
	}
	for v, c := range cases {
		if got := F64ToF16(v); got != c {
			t.Errorf("F64ToF16(%v) = %#04x, want %#04x", v, got, c)
		}
	}
	// A float64 just above a half midpoint must not be double-rounded through float32.
	v := 1 + math.Ldexp(1, -11) + math.Ldexp(1, -40) // rounds up to 1+2^-10 in one step
	if got := F64ToF16(v); got != 0x3c01 {
		t.Errorf("F64ToF16(1+2^-11+2^-40) = %#04x, want 0x3c01", got)
	}
	if got := F16ToF32(F32ToF16(float32(math.NaN()))); !math.IsNaN(float64(got)) {
		t.Error("NaN does not survive float16")
	}
	if got := BF16ToF32(F32ToBF16(float32(math.NaN()))); !math.IsNaN(float64(got)) {
		t.Error("NaN does not survive bfloat16")
	}
}

func TestE8M0(t *testing.T) {
	for c := 0; c < 256; c++ {
		got := float64(E8M0ToF32(uint8(c)))
		if c == 0xff {
			if !math.IsNaN(got) {
				t.Fatalf("E8M0ToF32(0xff) = %v, want NaN", got)
			}
			continue
		}
		want := math.Pow(2, float64(c-127))
		if got != want {
			t.Fatalf("E8M0ToF32(%#x) = %v, want %v", c, got, want)
		}
		// exact powers of two encode to themselves in every mode
		for _, m := range []E8M0Round{E8M0Up, E8M0Down, E8M0Nearest} {
			for _, sat := range []bool{true, false} {
				if e := F64ToE8M0(want, m, sat); e != uint8(c) {
					t.Fatalf("F64ToE8M0(%v, %d, %v) = %#x, want %#x", want, m, sat, e, c)
				}
			}
		}
		if c >= 0xfe {
			continue
		}
		// between 2^k and 2^(k+1): up, down, nearest with ties (1.5*2^k) up
		lo := want
		type tc struct {
			v    float64
			m    E8M0Round
			code int
		}
		for _, x := range []tc{
			{lo * 1.25, E8M0Up, c + 1}, {lo * 1.25, E8M0Down, c}, {lo * 1.25, E8M0Nearest, c},
			{lo * 1.5, E8M0Nearest, c + 1}, {math.Nextafter(lo*1.5, 0), E8M0Nearest, c},
			{math.Nextafter(lo, math.Inf(1)), E8M0Up, c + 1}, {math.Nextafter(2*lo, 0), E8M0Down, c},
			{-lo * 1.25, E8M0Up, c + 1}, // sign dropped
		} {
			if e := F64ToE8M0(x.v, x.m, true); int(e) != x.code {
				t.Fatalf("F64ToE8M0(%v, %d) = %#x, want %#x", x.v, x.m, e, x.code)
			}
		}
	}
	// range ends (ONNX's E8M0 table)
	type tc struct {
		v    float64
		m    E8M0Round
		sat  bool
		code uint8
	}
	for _, x := range []tc{
		{0, E8M0Up, true, 0x00}, {0, E8M0Nearest, false, 0xff},
		{math.NaN(), E8M0Up, true, 0xff}, {math.NaN(), E8M0Nearest, false, 0xff},
		{math.Inf(1), E8M0Up, true, 0xfe}, {math.Inf(1), E8M0Nearest, false, 0xff},
		{math.Ldexp(1.5, 127), E8M0Up, true, 0xfe}, {math.Ldexp(1.5, 127), E8M0Up, false, 0xff},
		{math.Ldexp(1.5, 127), E8M0Down, false, 0xfe}, {math.Ldexp(1, 200), E8M0Nearest, false, 0xff},
		{math.Ldexp(1, -130), E8M0Up, true, 0x00}, {math.Ldexp(1, -130), E8M0Nearest, false, 0xff},
		{math.Ldexp(1.5, -128), E8M0Up, false, 0x00}, {math.Ldexp(1.5, -128), E8M0Down, false, 0xff},
	} {
		if e := F64ToE8M0(x.v, x.m, x.sat); e != x.code {
			t.Errorf("F64ToE8M0(%v, %d, sat=%v) = %#x, want %#x", x.v, x.m, x.sat, e, x.code)
		}
	}
	if F32ToE8M0(0.124, true) != 0x7c || F32ToE8M0(1.1, true) != 0x80 { // ONNX conformance values
		t.Error("F32ToE8M0 does not round up")
	}
	for s, m := range map[string]E8M0Round{"up": E8M0Up, "down": E8M0Down, "nearest": E8M0Nearest} {
		if got, ok := ParseE8M0Round(s); !ok || got != m {
			t.Errorf("ParseE8M0Round(%q) = %v, %v", s, got, ok)
		}
	}
	if _, ok := ParseE8M0Round("zero"); ok {
		t.Error("ParseE8M0Round accepts an unknown mode")
	}
}

func TestMax(t *testing.T) {
	for f, want := range map[F8Format]float64{E4M3FN: 448, E4M3FNUZ: 240, E5M2: 57344, E5M2FNUZ: 57344} {
		if got := f.Max(); got != want {
			t.Errorf("%s.Max() = %v, want %v", f, got, want)
		}
	}
}
