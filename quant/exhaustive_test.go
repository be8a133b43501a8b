package quant

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kilnml/kiln/ir"
)

// floatParams returns per-tensor parameters for a float format with scale s.
func floatParams(dt ir.DType, s float32, sat bool) *Params {
	return &Params{DType: dt, Scale: []float32{s}, Axis: PerTensor, Saturate: sat}
}

// codeTensor holds every code of a format once (as raw bits).
func codeTensor(t *testing.T, r refFloat) *ir.Tensor {
	n := int64(1) << r.bits()
	q := ir.NewTensor(r.dt, []int64{n})
	f, _ := formatOf(r.dt)
	for c := int64(0); c < n; c++ {
		f.storeCode(q, c, c)
	}
	return q
}

// TestFloatCodesExhaustive dequantizes every code of each float format and
// quantizes the result back: every finite code must come back, infinities
// follow ONNX's saturation table, NaN codes must stay NaN, and the dequantized
// value must equal the reference decoding times the scale.
func TestFloatCodesExhaustive(t *testing.T) {
	for _, r := range refFloats {
		scales := []float32{1, 0.25, 0.5} // powers of two keep x/S and (q·S) exact
		if r.bits() == 16 {
			scales = scales[:2]
		}
		for _, s := range scales {
			for _, sat := range []bool{true, false} {
				p := floatParams(r.dt, s, sat)
				q := codeTensor(t, r)
				x, err := Dequantize(q, p)
				if err != nil {
					t.Fatal(err)
				}
				back, err := Quantize(x, p)
				if err != nil {
					t.Fatal(err)
				}
				f, _ := formatOf(r.dt)
				bad := 0
				for c, v := range x.F32() {
					want := r.decode(int64(c)) * float64(s)
					got := f.loadCode(back, int64(c))
					wantCode := int64(c)
					if math.IsInf(want, 0) {
						wantCode = r.encode(want, sat && r.bits() == 8)
					}
					switch {
					case math.IsNaN(want):
						if v == v || !r.isNaN(got) {
							t.Errorf("%s code %#x (NaN): dequantized %v, requantized %#x", r.dt, c, v, got)
							bad++
						}
					case float64(v) != want || math.Signbit(float64(v)) != math.Signbit(want):
						t.Errorf("%s scale %v code %#x: dequantized %v, want %v", r.dt, s, c, v, want)
						bad++
					case got != wantCode:
						t.Errorf("%s scale %v sat %v code %#x: value %v quantizes to %#x, want %#x", r.dt, s, sat, c, v, got, wantCode)
						bad++
					}
					if bad > 10 {
						t.Fatalf("%s: too many errors", r.dt)
					}
				}
			}
		}
	}
}

// TestFloatRoundingAgainstReference quantizes midpoints between neighbouring
// codes (ties go to the even code), points just off the midpoints, values
// beyond the range with and without saturation, and random values.
func TestFloatRoundingAgainstReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, r := range refFloats {
		f, _ := formatOf(r.dt)
		var xs []float32
		for mag := int64(0); mag <= r.maxMag(); mag++ {
			lo, hi := float32(r.magValue(mag)), float32(r.magValue(mag+1))
			mid := float32((float64(lo) + float64(hi)) / 2) // exact: one more bit than the format
			for _, v := range []float32{lo, mid, math.Nextafter32(mid, lo), math.Nextafter32(mid, hi)} {
				xs = append(xs, v, -v)
			}
		}
		maxv := r.magValue(r.maxMag())
		for i := 0; i < 20000; i++ {
			v := float32(maxv * math.Pow(2, -rng.Float64()*30) * (1 + rng.Float64()))
			if rng.IntN(2) == 0 {
				v = -v
			}
			xs = append(xs, v)
		}
		xs = append(xs, float32(maxv*1.5), float32(-maxv*4), float32(math.Inf(1)), float32(math.Inf(-1)), 0, float32(math.Copysign(0, -1)),
			float32(math.NaN()), float32(math.Copysign(math.NaN(), -1)))
		for _, sat := range []bool{true, false} {
			p := floatParams(r.dt, 1, sat)
			q, err := QuantizeSlice(xs, []int64{int64(len(xs))}, p)
			if err != nil {
				t.Fatal(err)
			}
			bad := 0
			refSat := sat && r.bits() == 8 // float16/bfloat16 overflow to Inf as IEEE
			for i, x := range xs {
				want := r.encode(float64(x), refSat)
				if got := f.loadCode(q, int64(i)); got != want {
					t.Errorf("%s sat=%v: %v (%#x) quantizes to %#x, want %#x", r.dt, sat, x, math.Float32bits(x), got, want)
					if bad++; bad > 10 {
						t.FailNow()
					}
				}
			}
		}
	}
}

// TestIntCodesExhaustive sends every code of the integer types through
// quantize(dequantize(code)) for several scales and zero points, and checks
// the dequantized values against (q − Z)·S in float64.
func TestIntCodesExhaustive(t *testing.T) {
	for _, dt := range []ir.DType{ir.Int8, ir.Uint8, ir.Int4, ir.Uint4, ir.Int16, ir.Uint16, ir.Int2, ir.Uint2} {
		lo, hi := dt.IntRange()
		for _, s := range []float32{1, 0.05, 3.7, 1e-6} {
			for _, z := range []int64{0, lo, hi, (lo + hi) / 2} {
				p := &Params{DType: dt, Scale: []float32{s}, ZeroPoint: []int32{int32(z)}, Axis: PerTensor}
				n := hi - lo + 1
				codes := make([]int64, n)
				for i := range codes {
					codes[i] = lo + int64(i)
				}
				q := ir.FromInt64s(dt, []int64{n}, codes)
				x, err := Dequantize(q, p)
				if err != nil {
					t.Fatal(err)
				}
				back, err := Quantize(x, p)
				if err != nil {
					t.Fatal(err)
				}
				for i, c := range codes {
					if want := float32(float64(c-z) * float64(s)); x.F32()[i] != want {
						t.Fatalf("%s S=%v Z=%d: code %d dequantizes to %v, want %v", dt, s, z, c, x.F32()[i], want)
					}
					if got := back.Int64At(int64(i)); got != c {
						t.Fatalf("%s S=%v Z=%d: code %d → %v → %d", dt, s, z, c, x.F32()[i], got)
					}
				}
			}
		}
	}
}

// TestIntRandomAgainstReference compares random values, exact midpoints and
// out-of-range values with the reference rounding for every integer type,
// narrow and full range.
func TestIntRandomAgainstReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, dt := range []ir.DType{ir.Int8, ir.Uint8, ir.Int4, ir.Uint4, ir.Int16, ir.Uint16, ir.Int32, ir.Int2, ir.Uint2} {
		for _, narrow := range []bool{false, true} {
			lo, hi, err := IntRange(dt, narrow)
			if err != nil {
				t.Fatal(err)
			}
			s := float32(0.125)
			z := int32((lo + hi) / 2)
			p := &Params{DType: dt, Scale: []float32{s}, ZeroPoint: []int32{z}, Axis: PerTensor, Narrow: narrow}
			span := float64(hi-lo) * float64(s)
			var xs []float32
			for i := 0; i < 5000; i++ {
				xs = append(xs, float32((rng.Float64()*1.4-0.7)*span))
				xs = append(xs, float32(float64(rng.IntN(200)-100)+0.5)*s) // exact ties
			}
			xs = append(xs, float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), 3e38, -3e38)
			q, err := QuantizeSlice(xs, []int64{int64(len(xs))}, p)
			if err != nil {
				t.Fatal(err)
			}
			for i, x := range xs {
				want := refQuantizeInt(x, s, z, lo, hi)
				if got := q.Int64At(int64(i)); got != want {
					t.Fatalf("%s narrow=%v: %v quantizes to %d, want %d", dt, narrow, x, got, want)
				}
			}
		}
	}
}

// TestFloat4Codes checks all 16 float4e2m1 codes (0, 0.5, 1, 1.5, 2, 3, 4, 6
// and their negatives; no Inf or NaN): they come back, except -0, which
// quantizes to +0 as in ONNX's reference (it adds the zero point), and
// overflow saturates.
func TestFloat4Codes(t *testing.T) {
	vals := []float32{0, 0.5, 1, 1.5, 2, 3, 4, 6}
	p := floatParams(ir.Float4E2M1, 0.5, false)
	q := ir.NewTensor(ir.Float4E2M1, []int64{16})
	f, _ := formatOf(ir.Float4E2M1)
	for c := int64(0); c < 16; c++ {
		f.storeCode(q, c, c)
	}
	x, err := Dequantize(q, p)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Quantize(x, p)
	if err != nil {
		t.Fatal(err)
	}
	for c := int64(0); c < 16; c++ {
		want := vals[c&7] * 0.5
		if c >= 8 {
			want = -want
		}
		wantCode := c
		if c == 8 {
			wantCode = 0
		}
		if got := x.F32()[c]; got != want {
			t.Errorf("code %#x dequantizes to %v, want %v", c, got, want)
		}
		if got := f.loadCode(back, c); got != wantCode {
			t.Errorf("code %#x → %v → %#x, want %#x", c, x.F32()[c], got, wantCode)
		}
	}
	// 1.25 and 1.75 are ties (→ 1 and 2, the even codes), 7 saturates, 5 is a tie → 4.
	codes := codesOf(t, []float32{0.625, 0.875, 3.5, -2.5, 100}, p)
	wantCodes(t, "float4 rounding", codes, []int64{0x2, 0x4, 0x7, 0xe, 0x7})
}
