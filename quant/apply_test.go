package quant

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/kilnml/kiln/ir"
)

func mustQuantize(t *testing.T, x []float32, dims []int64, p *Params) *ir.Tensor {
	t.Helper()
	q, err := QuantizeSlice(x, dims, p)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func TestRoundHalfEvenAtMidpoints(t *testing.T) {
	p := &Params{DType: ir.Int8, Scale: []float32{0.5}, Axis: PerTensor}
	// x/S = -3.5 -2.5 -1.5 -0.5 0.5 1.5 2.5 3.5
	x := []float32{-1.75, -1.25, -0.75, -0.25, 0.25, 0.75, 1.25, 1.75}
	want := []int64{-4, -2, -2, 0, 0, 2, 2, 4}
	q := mustQuantize(t, x, []int64{8}, p)
	for i, w := range want {
		if got := q.Int64At(int64(i)); got != w {
			t.Errorf("%v/0.5 = %v rounds to %d, want %d (half to even)", x[i], x[i]/0.5, got, w)
		}
	}
	// the zero point is added after rounding: 2.5 → 2, + 3 = 5 (not round(5.5) = 6)
	p = &Params{DType: ir.Uint8, Scale: []float32{1}, ZeroPoint: []int32{3}, Axis: PerTensor}
	if got := mustQuantize(t, []float32{2.5}, []int64{1}, p).Int64At(0); got != 5 {
		t.Errorf("round(2.5)+3 = %d, want 5", got)
	}
}

func TestSaturationBothEnds(t *testing.T) {
	x := []float32{-1000, -128.6, -128.5, -127.5, -127.4, 126.5, 127.4, 127.5, 1000}
	for _, tc := range []struct {
		narrow bool
		want   []int64
	}{
		{false, []int64{-128, -128, -128, -128, -127, 126, 127, 127, 127}},
		{true, []int64{-127, -127, -127, -127, -127, 126, 127, 127, 127}},
	} {
		p := &Params{DType: ir.Int8, Scale: []float32{1}, Axis: PerTensor, Narrow: tc.narrow}
		q := mustQuantize(t, x, []int64{int64(len(x))}, p)
		for i, w := range tc.want {
			if got := q.Int64At(int64(i)); got != w {
				t.Errorf("narrow=%v: %v → %d, want %d", tc.narrow, x[i], got, w)
			}
		}
	}
	p := &Params{DType: ir.Uint8, Scale: []float32{0.1}, ZeroPoint: []int32{10}, Axis: PerTensor}
	q := mustQuantize(t, []float32{-5, -1, -0.96, 24.5, 24.6, 100}, []int64{6}, p)
	for i, w := range []int64{0, 0, 0, 255, 255, 255} {
		if got := q.Int64At(int64(i)); got != w {
			t.Errorf("uint8 element %d → %d, want %d", i, got, w)
		}
	}
	// float8 E4M3FN, scale 2: 1000/2 = 500 > 448 saturates to 448 (code 0x7e), or NaN (0x7f) without.
	for _, sat := range []bool{true, false} {
		p := &Params{DType: ir.Float8E4M3FN, Scale: []float32{2}, Axis: PerTensor, Saturate: sat}
		q := mustQuantize(t, []float32{1000, -1000}, []int64{2}, p)
		want := []uint8{0x7e, 0xfe}
		if !sat {
			want = []uint8{0x7f, 0xff}
		}
		if q.Data[0] != want[0] || q.Data[1] != want[1] {
			t.Errorf("e4m3fn sat=%v: codes %#x, want %#x", sat, q.Data, want)
		}
	}
}

// checkAgainstReference quantizes x under p and compares every element with
// the reference computed from its explicit multi-index.
func checkAgainstReference(t *testing.T, x []float32, dims []int64, p *Params) {
	t.Helper()
	q := mustQuantize(t, x, dims, p)
	deq, err := Dequantize(q, p)
	if err != nil {
		t.Fatal(err)
	}
	fq := make([]float32, len(x))
	if err := FakeQuantize(fq, x, dims, p); err != nil {
		t.Fatal(err)
	}
	lo, hi, _ := p.Range()
	for i, v := range x {
		g := refGroup(int64(i), dims, p.Axis, p.BlockSize)
		s, z := p.Scale[g], p.Zero(int(g))
		want := refQuantizeInt(v, s, z, lo, hi)
		if got := q.Int64At(int64(i)); got != want {
			t.Fatalf("%s dims %v: element %d (%v, group %d) → %d, want %d", p, dims, i, v, g, got, want)
		}
		wantX := float32(float64(want-int64(z)) * float64(s))
		if deq.F32()[i] != wantX || fq[i] != wantX {
			t.Fatalf("%s: element %d dequantizes to %v, fake-quantizes to %v, want %v", p, i, deq.F32()[i], fq[i], wantX)
		}
	}
}

func randomData(rng *rand.Rand, n int64, scale float64) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64() * scale)
	}
	return x
}

func TestPerChannelAnyAxis(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	dims := []int64{3, 4, 5, 2}
	x := randomData(rng, 120, 2)
	for axis := range dims {
		for _, dt := range []ir.DType{ir.Int8, ir.Uint8, ir.Int4} {
			amax, err := Amax(x, dims, axis, 0)
			if err != nil {
				t.Fatal(err)
			}
			sym, err := PerChannelFromAmax(dt, amax, axis, true)
			if err != nil {
				t.Fatal(err)
			}
			checkAgainstReference(t, x, dims, sym)
			min, max, err := MinMax(x, dims, axis, 0)
			if err != nil {
				t.Fatal(err)
			}
			asym, err := PerChannelFromMinMax(dt, min, max, axis)
			if err != nil {
				t.Fatal(err)
			}
			checkAgainstReference(t, x, dims, asym)
			// Each channel's own extremes are representable: amax maps to ±qmax.
			for c := range amax {
				if got := sym.FakeQuantizeValue(amax[c], c); math.Abs(float64(got-amax[c])) > 1e-6*float64(amax[c]) {
					t.Errorf("axis %d channel %d: amax %v fake-quantizes to %v", axis, c, amax[c], got)
				}
			}
		}
	}
}

func TestBlocked(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	dims := []int64{2, 7, 3}
	x := randomData(rng, 42, 1)
	for axis := range dims {
		for _, block := range []int{1, 2, 3, 4, 8} {
			min, max, err := MinMax(x, dims, axis, block)
			if err != nil {
				t.Fatal(err)
			}
			p, err := Asymmetric(ir.Uint8, min, max, axis, block)
			if err != nil {
				t.Fatal(err)
			}
			sd, err := p.ScaleDims(dims)
			if err != nil {
				t.Fatal(err)
			}
			want := append([]int64{}, dims...)
			want[axis] = (dims[axis] + int64(block) - 1) / int64(block)
			if n, _ := ir.NumElements(sd); n != int64(len(p.Scale)) || !equalDims(sd, want) {
				t.Fatalf("axis %d block %d: scale dims %v, want %v (%d scales)", axis, block, sd, want, len(p.Scale))
			}
			checkAgainstReference(t, x, dims, p)
			// A block's min and max are its own: the largest and smallest
			// element of every block must be representable within half a step.
			for i, v := range x {
				g := refGroup(int64(i), dims, axis, block)
				if v == min[g] || v == max[g] {
					if e := math.Abs(float64(p.FakeQuantizeValue(v, int(g)) - v)); e > float64(p.Scale[g])/2*1.0001 {
						t.Errorf("axis %d block %d: block extreme %v has error %v > S/2", axis, block, v, e)
					}
				}
			}
		}
	}
}

func equalDims(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestInt4Packing(t *testing.T) {
	p := &Params{DType: ir.Int4, Scale: []float32{1}, Axis: PerTensor}
	x := []float32{1, -1, 7, -8, 100, -100, 3}
	q := mustQuantize(t, x, []int64{7}, p)
	// low nibble first: (1, -1) → 0xF1, (7, -8) → 0x87, (7, -8) → 0x87, (3, pad 0) → 0x03
	want := []byte{0xf1, 0x87, 0x87, 0x03}
	if string(q.Data) != string(want) {
		t.Fatalf("int4 bytes % x, want % x", q.Data, want)
	}
	for i, w := range []int64{1, -1, 7, -8, 7, -8, 3} {
		if got := q.Int64At(int64(i)); got != w {
			t.Errorf("int4 element %d = %d, want %d", i, got, w)
		}
	}
	u := &Params{DType: ir.Uint4, Scale: []float32{1}, ZeroPoint: []int32{8}, Axis: PerTensor}
	q = mustQuantize(t, []float32{-8, 7, 0}, []int64{3}, u)
	if want := []byte{0xf0, 0x08}; string(q.Data) != string(want) {
		t.Fatalf("uint4 bytes % x, want % x", q.Data, want)
	}
	back, err := Dequantize(q, u)
	if err != nil {
		t.Fatal(err)
	}
	if got := back.F32(); got[0] != -8 || got[1] != 7 || got[2] != 0 {
		t.Errorf("uint4 round trip %v", got)
	}
}

func TestFakeQuantizeInPlaceAndValue(t *testing.T) {
	p, err := FromAmax(ir.Int8, 1, true)
	if err != nil {
		t.Fatal(err)
	}
	x := []float32{0.5, -0.25, 2, -2, 0.001}
	want := make([]float32, len(x))
	for i, v := range x {
		want[i] = p.FakeQuantizeValue(v, 0)
	}
	if err := FakeQuantize(x, x, []int64{5}, p); err != nil {
		t.Fatal(err)
	}
	for i := range x {
		if x[i] != want[i] {
			t.Errorf("in place %d: %v, FakeQuantizeValue %v", i, x[i], want[i])
		}
	}
	if x[2] != 1 || x[3] != -1 || x[4] != 0 {
		t.Errorf("saturation/flush: %v", x)
	}
}

func TestQuantizeTensorErrors(t *testing.T) {
	p, _ := FromAmax(ir.Int8, 1, false)
	good := ir.FromFloat32s([]int64{2, 3}, make([]float32, 6))
	good.Name = "act"
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"int input", func() error { _, err := Quantize(ir.NewTensor(ir.Int32, []int64{2}), p); return err }(), "quantization takes float32"},
		{"nil", func() error { _, err := Quantize(nil, p); return err }(), "nil tensor"},
		{"count", func() error { _, err := QuantizeSlice(make([]float32, 5), []int64{2, 3}, p); return err }(), "5 values for dims [2 3]"},
		{"bad dims", func() error { _, err := QuantizeSlice(nil, []int64{-1}, p); return err }(), ""},
		{"axis", func() error {
			_, err := Quantize(good, &Params{DType: ir.Int8, Scale: []float32{1, 1}, Axis: 2})
			return err
		}(), `tensor "act": quant: axis 2 out of range`},
		{"channels", func() error {
			_, err := Quantize(good, &Params{DType: ir.Int8, Scale: []float32{1, 1}, Axis: 1})
			return err
		}(), "2 scales for axis 1 of length 3"},
		{"blocks", func() error {
			_, err := Quantize(good, &Params{DType: ir.Int8, Scale: []float32{1, 1}, Axis: 1, BlockSize: 2})
			return err
		}(), "need 4 scales"},
		{"dequantize dtype", func() error { _, err := Dequantize(ir.NewTensor(ir.Uint8, []int64{2}), p); return err }(), "parameters are for int8"},
		{"dequantize short data", func() error {
			q := ir.NewTensor(ir.Int8, []int64{4})
			q.Data = q.Data[:3]
			_, err := Dequantize(q, p)
			return err
		}(), "needs 4 bytes"},
		{"dequantize into", DequantizeInto(make([]float32, 3), ir.NewTensor(ir.Int8, []int64{2}), p), "into 3 values"},
		{"fake lengths", FakeQuantize(make([]float32, 2), make([]float32, 3), []int64{3}, p), "into 2 values (mask 0) from 3"},
		{"mask length", FakeQuantizeClipped(make([]float32, 3), make([]bool, 2), make([]float32, 3), []int64{3}, p), "(mask 2)"},
	} {
		if tc.err == nil || !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, tc.err, tc.want)
		}
	}
}

func TestFakeQuantizeClippedMask(t *testing.T) {
	x := []float32{0.5, 1.2, -1.01, -0.99, float32(math.NaN()), 1.0039}
	for _, tc := range []struct {
		p    *Params
		want []bool
	}{
		{mustParams(t)(FromAmax(ir.Int8, 1, true)), []bool{false, true, true, false, true, false}}, // 1.0039·127 = 127.49 rounds in range
		{mustParams(t)(FromAmax(ir.Float8E4M3FN, 1, false)), []bool{false, true, true, false, true, true}},
	} {
		dst := make([]float32, len(x))
		mask := make([]bool, len(x))
		if err := FakeQuantizeClipped(dst, mask, x, []int64{6}, tc.p); err != nil {
			t.Fatal(err)
		}
		for i := range x {
			if mask[i] != tc.want[i] {
				t.Errorf("%s: %v clipped=%v, want %v", tc.p, x[i], mask[i], tc.want[i])
			}
		}
	}
}

func TestEmptyTensors(t *testing.T) {
	pc := &Params{DType: ir.Int4, Scale: []float32{1, 2, 3}, Axis: 1}
	for _, dims := range [][]int64{{0, 3}, {2, 3, 0}} {
		q := mustQuantize(t, nil, dims, pc)
		if q.Len() != 0 || len(q.Data) != 0 {
			t.Errorf("dims %v: %v", dims, q)
		}
		if _, err := Dequantize(q, pc); err != nil {
			t.Error(err)
		}
		if r, err := Measure(nil, dims, pc); err != nil || r.N != 0 {
			t.Errorf("dims %v: %v %v", dims, r, err)
		}
	}
}
