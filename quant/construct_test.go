package quant

import (
	"math"
	"strings"
	"testing"

	"github.com/kilnml/kiln/ir"
)

func codesOf(t *testing.T, x []float32, p *Params) []int64 {
	t.Helper()
	q := mustQuantize(t, x, []int64{int64(len(x))}, p)
	f, _ := formatOf(p.DType)
	out := make([]int64, len(x))
	for i := range out {
		out[i] = f.loadCode(q, int64(i))
	}
	return out
}

func wantCodes(t *testing.T, what string, got, want []int64) {
	t.Helper()
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("%s: codes %v, want %v", what, got, want)
			return
		}
	}
}

func TestSymmetricScales(t *testing.T) {
	for _, tc := range []struct {
		dt     ir.DType
		amax   float32
		narrow bool
		scale  float32
		zp     int32
		x      []float32
		codes  []int64
	}{
		// int8: amax/127 in both ranges; -128 only below -127.5·S in full range
		{ir.Int8, 127, true, 1, 0, []float32{-127, -128, 127, 0.5, 1.5}, []int64{-127, -127, 127, 0, 2}},
		{ir.Int8, 127, false, 1, 0, []float32{-127, -127.5, -128, 128}, []int64{-127, -128, -128, 127}},
		{ir.Int8, 2.54, true, 0.02, 0, []float32{2.54, -2.54, 0.01, 0.03}, []int64{127, -127, 0, 2}},
		{ir.Int4, 14, true, 2, 0, []float32{14, -14, -16, 3}, []int64{7, -7, -7, 2}},
		{ir.Int4, 14, false, 2, 0, []float32{-16, -17}, []int64{-8, -8}},
		{ir.Int16, 32767, true, 1, 0, []float32{-40000, 40000}, []int64{-32767, 32767}},
		// unsigned: the signed grid shifted by 2^(bits-1)
		{ir.Uint8, 127, false, 1, 128, []float32{-128, -127, 0, 127, 200}, []int64{0, 1, 128, 255, 255}},
		{ir.Uint8, 127, true, 1, 128, []float32{-128, -127, 0, 127}, []int64{1, 1, 128, 255}},
		{ir.Uint4, 7, true, 1, 8, []float32{-8, 7}, []int64{1, 15}},
		// float8: amax / the format's max
		{ir.Float8E4M3FN, 896, false, 2, 0, []float32{896, -896, 2000}, []int64{0x7e, 0xfe, 0x7e}},
		{ir.Float8E4M3FNUZ, 240, false, 1, 0, []float32{240, -240}, []int64{0x7f, 0xff}},
		{ir.Float8E5M2, 57344, false, 1, 0, []float32{57344, 1e6}, []int64{0x7b, 0x7b}},
		{ir.Float8E5M2FNUZ, 57344 * 4, false, 4, 0, []float32{57344 * 4}, []int64{0x7f}},
		{ir.Float4E2M1, 3, false, 0.5, 0, []float32{3, -3, 0.5}, []int64{0x7, 0xf, 0x2}},
		// float16 and bfloat16: a plain cast
		{ir.Float16, 1000, false, 1, 0, []float32{1, 65504, 1e6}, []int64{0x3c00, 0x7bff, 0x7c00}},
		{ir.BFloat16, 1000, false, 1, 0, []float32{1, -2}, []int64{0x3f80, 0xc000}},
		// amax 0 (an all-zero tensor) and amax too small for a normal scale: amax = 1
		{ir.Int8, 0, true, float32(1.0 / 127), 0, []float32{0, 1}, []int64{0, 127}},
		{ir.Int8, 1e-40, true, float32(1.0 / 127), 0, []float32{0, 1e-40}, []int64{0, 0}},
		{ir.Uint8, 0, false, float32(1.0 / 127), 128, []float32{0}, []int64{128}},
		{ir.Float8E4M3FN, 0, false, float32(1.0 / 448), 0, []float32{0}, []int64{0}},
	} {
		p, err := FromAmax(tc.dt, tc.amax, tc.narrow)
		if err != nil {
			t.Fatalf("%s amax %v: %v", tc.dt, tc.amax, err)
		}
		if p.Scale[0] != tc.scale || p.Zero(0) != tc.zp || p.Axis != PerTensor || !p.Saturate {
			t.Errorf("%s amax %v narrow %v: %s, want scale %v zp %d", tc.dt, tc.amax, tc.narrow, p, tc.scale, tc.zp)
			continue
		}
		wantCodes(t, p.String(), codesOf(t, tc.x, p), tc.codes)
	}
}

// The three DynamicQuantizeLinear examples of the ONNX operator docs (also in
// ../shared/onnx-node, checked in conformance_test.go).
func TestAsymmetricMatchesDynamicQuantizeLinear(t *testing.T) {
	for _, tc := range []struct {
		x     []float32
		scale float32
		zp    int32
		codes []int64
	}{
		{[]float32{0, 2, -3, -2.5, 1.34, 0.5}, float32(5.0 / 255), 153, []int64{153, 255, 0, 26, 221, 179}},
		{[]float32{-1.0, -2.1, -1.3, -2.5, -3.34, -4.0}, float32(4.0 / 255), 255, []int64{191, 121, 172, 96, 42, 0}},
		{[]float32{1, 2.1, 1.3, 2.5, 3.34, 4.0, 1.5, 2.6, 3.9, 4.0, 3.0, 2.345}, float32(4.0 / 255), 0,
			[]int64{64, 134, 83, 159, 213, 255, 96, 166, 249, 255, 191, 149}},
	} {
		min, max, err := MinMax(tc.x, []int64{int64(len(tc.x))}, PerTensor, 0)
		if err != nil {
			t.Fatal(err)
		}
		p, err := FromMinMax(ir.Uint8, min[0], max[0])
		if err != nil {
			t.Fatal(err)
		}
		if p.Scale[0] != tc.scale || p.Zero(0) != tc.zp {
			t.Errorf("x %v: %s, want scale %v zp %d", tc.x, p, tc.scale, tc.zp)
		}
		wantCodes(t, p.String(), codesOf(t, tc.x, p), tc.codes)
	}
}

func TestAsymmetricCases(t *testing.T) {
	for _, tc := range []struct {
		dt       ir.DType
		min, max float32
		scale    float32
		zp       int32
	}{
		{ir.Uint8, 0, 0, float32(1.0 / 255), 0},                  // empty range, as DynamicQuantizeLinear
		{ir.Uint8, 1, 2, float32(2.0 / 255), 0},                  // extended to [0, 2]
		{ir.Int8, -1, 3, float32(4.0 / 255), -64},                // -128 + 63.75 → -64
		{ir.Int8, -2, 2, float32(4.0 / 255), -1},                 // float32 as DynamicQuantizeLinear: 2/S = 127.49999, -128 + 127.49999 → -1
		{ir.Uint8, -1e-40, 1e-40, float32(1.0 / 255), 0},         // scale would be subnormal: empty range
		{ir.Uint16, -1, 1, float32(2.0 / 65535), 32768},          // 32767.5 → 32768
		{ir.Int4, -1, 14, 1, -7},                                 // -8 + 1
		{ir.Uint8, -100, -50, float32(100.0 / 255), 255},         // extended to [-100, 0]
		{ir.Int32, -1, 1, float32(2.0 / 4294967295), 0},          // bias-like range
		{ir.Uint8, -3e38, 0, float32(3e38 / 255), 255},           // large but finite
		{ir.Uint8, 0, math.MaxFloat32, math.MaxFloat32 / 255, 0}, // the widest representable range
	} {
		p, err := FromMinMax(tc.dt, tc.min, tc.max)
		if err != nil {
			t.Fatalf("%s [%v, %v]: %v", tc.dt, tc.min, tc.max, err)
		}
		if p.Scale[0] != tc.scale || p.Zero(0) != tc.zp {
			t.Errorf("%s [%v, %v]: %s, want scale %v zp %d", tc.dt, tc.min, tc.max, p, tc.scale, tc.zp)
		}
		// zero is exact
		if got := p.FakeQuantizeValue(0, 0); got != 0 {
			t.Errorf("%s [%v, %v]: 0 fake-quantizes to %v", tc.dt, tc.min, tc.max, got)
		}
	}
}

func TestConstructorErrors(t *testing.T) {
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"negative amax", func() error { _, err := FromAmax(ir.Int8, -1, true); return err }(), "amax[0] = -1"},
		{"NaN amax", func() error { _, err := FromAmax(ir.Int8, nan, true); return err }(), "amax must be finite"},
		{"Inf amax", func() error { _, err := FromAmax(ir.Int8, inf, true); return err }(), "amax must be finite"},
		{"float32 target", func() error { _, err := FromAmax(ir.Float32, 1, false); return err }(), "cannot quantize to float32"},
		{"narrow float8", func() error { _, err := FromAmax(ir.Float8E4M3FN, 1, true); return err }(), "narrow range applies to integer types"},
		{"asymmetric float8", func() error { _, err := FromMinMax(ir.Float8E4M3FN, -1, 1); return err }(), "needs an integer type"},
		{"min > max", func() error { _, err := FromMinMax(ir.Uint8, 2, 1); return err }(), "min <= max"},
		{"NaN min", func() error { _, err := FromMinMax(ir.Uint8, nan, 1); return err }(), "finite"},
		{"overflowing width", func() error { _, err := FromMinMax(ir.Uint8, -3e38, 3e38); return err }(), "overflows float32"},
		{"lengths", func() error { _, err := PerChannelFromMinMax(ir.Uint8, []float32{0}, []float32{1, 2}, 0); return err }(), "1 minima for 2 maxima"},
		{"negative axis", func() error { _, err := PerChannelFromAmax(ir.Int8, []float32{1, 2}, -1, true); return err }(), "exactly one scale"},
		{"axis -2", func() error { _, err := PerChannelFromAmax(ir.Int8, []float32{1, 2}, -2, true); return err }(), "normalize ONNX's negative axes"},
		{"no amax", func() error { _, err := PerChannelFromAmax(ir.Int8, nil, 0, true); return err }(), "no scale"},
	} {
		if err := tc.err; err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}

func TestValidate(t *testing.T) {
	ok := Params{DType: ir.Uint8, Scale: []float32{0.1, 0.2}, ZeroPoint: []int32{0, 255}, Axis: 1}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		edit func(p *Params)
		want string
	}{
		{"zero scale", func(p *Params) { p.Scale[1] = 0 }, "scale[1] = 0: scales must be positive"},
		{"negative scale", func(p *Params) { p.Scale[0] = -1 }, "scale[0] = -1"},
		{"NaN scale", func(p *Params) { p.Scale[0] = float32(math.NaN()) }, "scale[0] = NaN"},
		{"Inf scale", func(p *Params) { p.Scale[0] = float32(math.Inf(1)) }, "positive and finite"},
		{"zero point count", func(p *Params) { p.ZeroPoint = []int32{0} }, "1 zero points for 2 scales"},
		{"zero point range", func(p *Params) { p.ZeroPoint[1] = 256 }, "zero_point[1] = 256 is outside uint8's range [0, 255]"},
		{"narrow zero point", func(p *Params) { p.DType, p.Narrow, p.ZeroPoint = ir.Int8, true, []int32{0, -128} }, "outside int8's range [-127, 127]"},
		{"float8 zero point", func(p *Params) { p.DType, p.ZeroPoint = ir.Float8E5M2, []int32{0, 1} }, "takes no zero point"},
		{"unsupported", func(p *Params) { p.DType = ir.Float64 }, "cannot quantize to float64"},
		{"per-tensor count", func(p *Params) { p.Axis = PerTensor }, "exactly one scale"},
		{"per-tensor block", func(p *Params) { p.Axis, p.Scale, p.ZeroPoint, p.BlockSize = PerTensor, []float32{1}, nil, 4 }, "no block size"},
		{"negative block", func(p *Params) { p.BlockSize = -2 }, "negative block size"},
		{"no scales", func(p *Params) { p.Scale, p.ZeroPoint = nil, nil }, "no scale"},
	} {
		p := ok.Clone()
		tc.edit(p)
		if err := p.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
	if ok.Scale[1] != 0.2 || ok.ZeroPoint[1] != 255 {
		t.Errorf("Clone shares memory: %v", ok)
	}
}

func TestScaleDimsAndString(t *testing.T) {
	dims := []int64{4, 6, 5}
	pt, _ := FromAmax(ir.Int8, 1, true)
	pc, _ := PerChannelFromAmax(ir.Int8, make([]float32, 6), 1, true)
	bl, _ := Symmetric(ir.Int4, make([]float32, 4*2*5), 1, 4, false)
	for _, tc := range []struct {
		p    *Params
		dims []int64
		str  string
	}{
		{pt, []int64{}, "int8 narrow per-tensor scale=0.007874016 zp=0"},
		{pc, []int64{6}, "int8 narrow per-channel(axis=1) 6 scales"},
		{bl, []int64{4, 2, 5}, "int4 blocked(axis=1, block=4) 40 scales"},
	} {
		sd, err := tc.p.ScaleDims(dims)
		if err != nil || !equalDims(sd, tc.dims) {
			t.Errorf("%s: scale dims %v (%v), want %v", tc.p, sd, err, tc.dims)
		}
		if s := tc.p.String(); s != tc.str {
			t.Errorf("String %q, want %q", s, tc.str)
		}
	}
	if _, _, err := IntRange(ir.Float16, false); err == nil {
		t.Error("IntRange(float16) succeeded")
	}
	if lo, hi, _ := IntRange(ir.Uint8, true); lo != 1 || hi != 255 {
		t.Errorf("narrow uint8 range [%d, %d]", lo, hi)
	}
	if !Supported(ir.Int4) || Supported(ir.Float32) {
		t.Error("Supported")
	}
}
