package quant

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kilnml/kiln/ir"
)

func measure(t *testing.T, x []float32, p *Params) Report {
	t.Helper()
	r, err := Measure(x, []int64{int64(len(x))}, p)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Uniform data over the whole quantization range: the noise is uniform on
// [-S/2, S/2] (power S²/12) and the signal power is a²/3, so with L = 2a/S
// steps SQNR = 20·log10(L) ≈ 6.02 dB per bit.
func TestSQNRUniform(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	x := make([]float32, 200000)
	for i := range x {
		x[i] = float32(rng.Float64()*2 - 1)
	}
	p, err := FromMinMax(ir.Uint8, -1, 1) // 255 steps over [-1, 1]
	if err != nil {
		t.Fatal(err)
	}
	r := measure(t, x, p)
	want := 20 * math.Log10(255)
	if math.Abs(r.SQNR-want) > 0.1 || math.Abs(r.SQNR-6.02*8) > 0.15 {
		t.Errorf("uniform 8-bit SQNR %.3f dB, want %.3f (≈ 6.02·8)", r.SQNR, want)
	}
	if r.Saturated != 0 || r.ClippingMSE != 0 {
		t.Errorf("in-range data clipped: %v", r)
	}
	if want := float64(p.Scale[0]) * float64(p.Scale[0]) / 12; math.Abs(r.MSE-want) > 0.02*want {
		t.Errorf("MSE %g, want S²/12 = %g", r.MSE, want)
	}
	if r.MaxAbsError > float64(p.Scale[0])/2*1.0001 {
		t.Errorf("max |e| %g > S/2", r.MaxAbsError)
	}
}

// A full-scale sine: SQNR ≈ 6.02·N + 1.76 dB for N bits (2^N steps); narrow
// int8 has 254 steps over [-amax, amax], 0.068 dB less. The formula assumes
// uniform noise, which the arcsine density of a sine near its peaks (on a grid
// point here) makes slightly pessimistic, so it is checked within 0.2 dB, and
// the exact value against a float64 reference loop.
func TestSQNRSine(t *testing.T) {
	const n = 100000
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(3 * math.Sin(2*math.Pi*float64(i)*0.123456789))
	}
	for _, dt := range []ir.DType{ir.Int8, ir.Int4} {
		p, err := FromAmax(dt, 3, true)
		if err != nil {
			t.Fatal(err)
		}
		r := measure(t, x, p)
		_, hi, _ := p.Range()
		var sig, noise float64
		for _, v := range x {
			q := math.Max(math.Min(refRoundHalfEven(float64(float32(v/p.Scale[0]))), float64(hi)), -float64(hi))
			e := float64(v) - float64(float32(q*float64(p.Scale[0])))
			sig, noise = sig+float64(v)*float64(v), noise+e*e
		}
		if want := 10 * math.Log10(sig/noise); math.Abs(r.SQNR-want) > 1e-9 {
			t.Errorf("%s sine SQNR %.12f dB, reference %.12f", dt, r.SQNR, want)
		}
		if dt == ir.Int8 {
			if want := 6.02*8 + 1.76 + 20*math.Log10(254.0/256); math.Abs(r.SQNR-want) > 0.2 {
				t.Errorf("sine int8 SQNR %.3f dB, want %.3f", r.SQNR, want)
			}
		}
	}
}

// Hand-checked small case: scale 1 int8 narrow.
func TestReportParts(t *testing.T) {
	p := &Params{DType: ir.Int8, Scale: []float32{1}, Axis: PerTensor, Narrow: true}
	//            in range: e = 0.25, -0.5, 0.4 (0.4 is flushed to 0)   clipped: e = 3, -10
	x := []float32{1.25, -2.5, 0.4, 130, -137, 0, float32(math.NaN())}
	r := measure(t, x, p)
	sum := func(v ...float64) (s float64) {
		for _, e := range v {
			s += e
		}
		return s
	}
	n := 6.0
	want := Report{
		N: 6, NaNs: 1,
		RoundingMSE:   sum(0.0625, 0.25, 0.16) / n,
		ClippingMSE:   sum(9, 100) / n,
		MaxAbsError:   10,
		Saturated:     2 / n,
		FlushedToZero: 1 / n,
	}
	want.MSE = want.RoundingMSE + want.ClippingMSE
	signal := sum(1.5625, 6.25, 0.16, 16900, 18769, 0)
	want.SQNR = 10 * math.Log10(signal/(want.MSE*n))
	close := func(a, b float64) bool { return math.Abs(a-b) <= 1e-6*math.Max(1, math.Abs(b)) }
	if r.N != want.N || r.NaNs != want.NaNs || !close(r.MSE, want.MSE) || !close(r.RoundingMSE, want.RoundingMSE) ||
		!close(r.ClippingMSE, want.ClippingMSE) || !close(r.MaxAbsError, want.MaxAbsError) || !close(r.SQNR, want.SQNR) ||
		!close(r.Saturated, want.Saturated) || !close(r.FlushedToZero, want.FlushedToZero) {
		t.Errorf("report\n %v\nwant\n %v", r, want)
	}
}

func TestReportEdgeCases(t *testing.T) {
	p, _ := FromAmax(ir.Int8, 1, true)
	if r := measure(t, []float32{0, 0}, p); r.SQNR != 0 || r.MSE != 0 {
		t.Errorf("all-zero input: %v", r)
	}
	if r := measure(t, []float32{0.5, -1}, &Params{DType: ir.Int8, Scale: []float32{0.5}, Axis: PerTensor}); !math.IsInf(r.SQNR, 1) {
		t.Errorf("exact input: SQNR %v, want +Inf", r.SQNR)
	}
	if r := measure(t, nil, p); r.N != 0 || r.SQNR != 0 {
		t.Errorf("empty input: %v", r)
	}
	// float8 without saturation: overflow to NaN counts as an infinite error, clipped.
	f8 := &Params{DType: ir.Float8E4M3FN, Scale: []float32{1}, Axis: PerTensor}
	if r := measure(t, []float32{1, 1000}, f8); !math.IsInf(r.MaxAbsError, 1) || r.Saturated != 0.5 {
		t.Errorf("e4m3fn overflow: %v", r)
	}
	f8.Saturate = true
	if r := measure(t, []float32{1, 1000}, f8); r.MaxAbsError != 552 || r.Saturated != 0.5 || r.RoundingMSE != 0 {
		t.Errorf("e4m3fn saturated: %v", r)
	}
	if _, err := Measure([]float32{1}, []int64{2}, p); err == nil {
		t.Error("Measure accepted 1 value for dims [2]")
	}
}

// Per-channel parameters fit per-channel data better than one per-tensor scale.
func TestReportPerChannelBeatsPerTensor(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	dims := []int64{8, 64}
	x := make([]float32, 8*64)
	for c := 0; c < 8; c++ {
		for k := 0; k < 64; k++ {
			x[c*64+k] = float32(rng.NormFloat64() * math.Pow(4, float64(c-4)))
		}
	}
	amax, _ := Amax(x, dims, 0, 0)
	pc, _ := PerChannelFromAmax(ir.Int8, amax, 0, true)
	all, _ := Amax(x, dims, PerTensor, 0)
	pt, _ := FromAmax(ir.Int8, all[0], true)
	rc, err := Measure(x, dims, pc)
	if err != nil {
		t.Fatal(err)
	}
	rt, _ := Measure(x, dims, pt)
	if !(rc.SQNR > rt.SQNR) || !(rt.FlushedToZero > rc.FlushedToZero) {
		t.Errorf("per-channel %v\nper-tensor %v", rc, rt)
	}
}
