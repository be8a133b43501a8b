package arith

import (
	"math"
	"testing"

	"github.com/kilnml/kiln/floatx"
	"github.com/kilnml/kiln/ir"
)

// Expectations below are closed forms or values computed independently with
// Python's math module (float attributes rounded to float32 first).
func TestUnaryFloat(t *testing.T) {
	x := []float64{-2, -0.5, 0, 0.5, 2}
	d := dims(5)
	cases := []struct {
		op    string
		opset int64
		attrs []*ir.Attribute
		want  []float64
	}{
		{"Relu", 14, nil, []float64{0, 0, 0, 0.5, 2}},
		{"Abs", 13, nil, []float64{2, 0.5, 0, 0.5, 2}},
		{"Neg", 13, nil, []float64{2, 0.5, 0, -0.5, -2}},
		{"Sign", 13, nil, []float64{-1, -1, 0, 1, 1}},
		{"Floor", 13, nil, []float64{-2, -1, 0, 0, 2}},
		{"Ceil", 13, nil, []float64{-2, -0, 0, 1, 2}},
		{"Reciprocal", 13, nil, []float64{-0.5, -2, inf, 2, 0.5}},
		{"Exp", 13, nil, []float64{0.1353352832366127, 0.6065306597126334, 1, 1.6487212707001282, 7.38905609893065}},
		{"Sigmoid", 13, nil, []float64{0.11920292202211755, 0.3775406687981454, 0.5, 0.6224593312018546, 0.8807970779778823}},
		{"Tanh", 13, nil, []float64{-0.9640275800758169, -0.46211715726000974, 0, 0.46211715726000974, 0.9640275800758169}},
		{"Erf", 13, nil, []float64{-0.9953222650189527, -0.5204998778130465, 0, 0.5204998778130465, 0.9953222650189527}},
		{"Softplus", 1, nil, []float64{0.12692801104297263, 0.47407698418010663, 0.6931471805599453, 0.9740769841801067, 2.1269280110429727}},
		{"Softsign", 1, nil, []float64{-2.0 / 3, -1.0 / 3, 0, 1.0 / 3, 2.0 / 3}},
		{"LeakyRelu", 16, nil, []float64{-2 * a32(0.01), -0.5 * a32(0.01), 0, 0.5, 2}},
		{"LeakyRelu", 16, attrs(aFloat("alpha", 0.5)), []float64{-1, -0.25, 0, 0.5, 2}},
		{"HardSigmoid", 22, nil, []float64{0.5 - 2*a32(0.2), 0.5 - 0.5*a32(0.2), 0.5, 0.5 + 0.5*a32(0.2), 0.5 + 2*a32(0.2)}},
		{"HardSigmoid", 22, attrs(aFloat("alpha", 0.5), aFloat("beta", 0.25)), []float64{0, 0, 0.25, 0.5, 1}},
		{"HardSwish", 22, nil, []float64{-2 * (0.5 - 2.0/6), -0.5 * (0.5 - 0.5/6), 0, 0.5 * (0.5 + 0.5/6), 2 * (0.5 + 2.0/6)}},
		{"Elu", 6, nil, []float64{-0.8646647167633873, -0.3934693402873666, 0, 0.5, 2}},
		{"Elu", 6, attrs(aFloat("alpha", 2)), []float64{-1.7293294335267746, -0.7869386805747332, 0, 0.5, 2}},
		{"Selu", 6, nil, []float64{-1.5201664733475926, -0.6917581899652426, 0, 0.5253505110740662, 2.1014020442962646}},
		{"Celu", 12, nil, []float64{-0.8646647167633873, -0.3934693402873666, 0, 0.5, 2}},
		{"Celu", 12, attrs(aFloat("alpha", 2)), []float64{-1.2642411176571153, -0.44239843385719024, 0, 0.5, 2}},
		{"ThresholdedRelu", 10, nil, []float64{0, 0, 0, 0, 2}},
		{"ThresholdedRelu", 10, attrs(aFloat("alpha", 0.25)), []float64{0, 0, 0, 0.5, 2}},
		{"Shrink", 9, nil, []float64{-2, 0, 0, 0, 2}},
		{"Shrink", 9, attrs(aFloat("lambd", 1), aFloat("bias", 0.5)), []float64{-1.5, 0, 0, 0, 1.5}},
		{"Mish", 18, nil, []float64{-0.2525014826957089, -0.22074377465173, 0, 0.3752452113048951, 1.9439589595339946}},
		{"Swish", 24, nil, []float64{-0.2384058440442351, -0.1887703343990727, 0, 0.3112296656009273, 1.7615941559557646}},
		{"Swish", 24, attrs(aFloat("alpha", 2)), []float64{-0.03597241992418312, -0.13447071068499755, 0, 0.36552928931500245, 1.964027580075817}},
		{"Gelu", 20, nil, []float64{-0.04550026389635842, -0.15426876936299344, 0, 0.34573123063700656, 1.9544997361036416}},
		{"Gelu", 20, attrs(aStr("approximate", "tanh")), []float64{-0.04540230591222494, -0.15428599017485606, 0, 0.34571400982514394, 1.954597694087775}},
		{"Sin", 7, nil, []float64{-0.9092974268256817, -0.479425538604203, 0, 0.479425538604203, 0.9092974268256817}},
		{"Cos", 7, nil, []float64{-0.4161468365471424, 0.8775825618903728, 1, 0.8775825618903728, -0.4161468365471424}},
		{"Tan", 7, nil, []float64{2.185039863261519, -0.5463024898437905, 0, 0.5463024898437905, -2.185039863261519}},
		{"Atan", 7, nil, []float64{-1.1071487177940904, -0.4636476090008061, 0, 0.4636476090008061, 1.1071487177940904}},
		{"Sinh", 9, nil, []float64{-3.626860407847019, -0.5210953054937474, 0, 0.5210953054937474, 3.626860407847019}},
		{"Cosh", 9, nil, []float64{3.7621956910836314, 1.1276259652063807, 1, 1.1276259652063807, 3.7621956910836314}},
		{"Asinh", 9, nil, []float64{-1.4436354751788103, -0.48121182505960347, 0, 0.48121182505960347, 1.4436354751788103}},
		{"Asin", 7, nil, []float64{qnan, -0.5235987755982989, 0, 0.5235987755982989, qnan}},
		{"Acos", 7, nil, []float64{qnan, 2.0943951023931957, 1.5707963267948966, 1.0471975511965979, qnan}},
		{"Atanh", 9, nil, []float64{qnan, -0.5493061443340549, 0, 0.5493061443340549, qnan}},
		{"Acosh", 9, nil, []float64{qnan, qnan, qnan, qnan, 1.3169578969248166}},
		{"Sqrt", 13, nil, []float64{qnan, qnan, 0, 0.7071067811865476, 1.4142135623730951}},
		{"Log", 13, nil, []float64{qnan, qnan, -inf, -0.6931471805599453, 0.6931471805599453}},
		{"Round", 11, nil, []float64{-2, -0, 0, 0, 2}},
	}
	for _, c := range cases {
		t.Run(c.op, func(t *testing.T) {
			checkFloats(t, mustCall(t, c.op, c.opset, c.attrs, f64(d, x...)), ir.Float64, d, c.want...)
			// float32 rounds the same float64 result once.
			checkFloats(t, mustCall(t, c.op, c.opset, c.attrs, f32(d, x...)), ir.Float32, d, c.want...)
		})
	}
}

// a32 is v rounded to float32, as float attributes are stored.
func a32(v float64) float64 { return float64(float32(v)) }

func TestUnaryEdgeCases(t *testing.T) {
	// Round is half to even.
	checkFloats(t, mustCall(t, "Round", 11, nil, f32(dims(7), 0.5, 1.5, 2.5, -0.5, -1.5, 2.4999, qnan)), ir.Float32, dims(7),
		0, 2, 2, 0, -2, 2, qnan)
	// Stable for large magnitudes: no Inf/NaN from exp overflow.
	big := f64(dims(4), -1000, 1000, qnan, inf)
	checkFloats(t, mustCall(t, "Sigmoid", 13, nil, big), ir.Float64, dims(4), 0, 1, qnan, 1)
	checkFloats(t, mustCall(t, "Softplus", 1, nil, big), ir.Float64, dims(4), 0, 1000, qnan, inf)
	checkFloats(t, mustCall(t, "Mish", 18, nil, big), ir.Float64, dims(4), 0, 1000, qnan, inf)
	// NaN passes through Relu, Sign and Abs.
	checkFloats(t, mustCall(t, "Relu", 14, nil, big), ir.Float64, dims(4), 0, 1000, qnan, inf)
	checkFloats(t, mustCall(t, "Sign", 13, nil, big), ir.Float64, dims(4), -1, 1, qnan, 1)
	checkInts(t, mustCall(t, "IsNaN", 13, nil, big), ir.Bool, dims(4), 0, 0, 1, 0)
	v := f32(dims(4), -inf, inf, qnan, 1)
	checkInts(t, mustCall(t, "IsInf", 10, nil, v), ir.Bool, dims(4), 1, 1, 0, 0)
	checkInts(t, mustCall(t, "IsInf", 10, attrs(aInt("detect_negative", 0)), v), ir.Bool, dims(4), 0, 1, 0, 0)
	checkInts(t, mustCall(t, "IsInf", 10, attrs(aInt("detect_positive", 0)), v), ir.Bool, dims(4), 1, 0, 0, 0)
	checkInts(t, mustCall(t, "Not", 1, nil, bools(dims(2, 1), true, false)), ir.Bool, dims(2, 1), 0, 1)
	// Empty and scalar tensors.
	checkFloats(t, mustCall(t, "Exp", 13, nil, f32(dims(0, 2))), ir.Float32, dims(0, 2))
	checkFloats(t, mustCall(t, "Exp", 13, nil, f32(nil, 0)), ir.Float32, nil, 1)
}

func TestUnaryIntegers(t *testing.T) {
	x := []int64{math.MinInt64 + 1, -3, 0, 5, math.MaxInt64}
	d := dims(5)
	checkInts(t, mustCall(t, "Abs", 13, nil, i64(d, x...)), ir.Int64, d, math.MaxInt64, 3, 0, 5, math.MaxInt64)
	checkInts(t, mustCall(t, "Neg", 13, nil, i64(d, x...)), ir.Int64, d, math.MaxInt64, 3, 0, -5, math.MinInt64+1)
	checkInts(t, mustCall(t, "Sign", 13, nil, i64(d, x...)), ir.Int64, d, -1, -1, 0, 1, 1)
	checkInts(t, mustCall(t, "Relu", 14, nil, i64(d, x...)), ir.Int64, d, 0, 0, 0, 5, math.MaxInt64)
	checkInts(t, mustCall(t, "Abs", 13, nil, ints(ir.Int8, dims(2), -128, -7)), ir.Int8, dims(2), -128, 7) // wraps like C
	checkU64(t, mustCall(t, "Abs", 13, nil, u64(dims(2), math.MaxUint64, 0)), dims(2), math.MaxUint64, 0)
	checkU64(t, mustCall(t, "Sign", 13, nil, u64(dims(2), math.MaxUint64, 0)), dims(2), 1, 0)
	checkInts(t, mustCall(t, "Shrink", 9, attrs(aFloat("lambd", 1.5), aFloat("bias", 1)), ints(ir.Int8, dims(5), -3, -1, 0, 2, 100)), ir.Int8, dims(5),
		-2, 0, 0, 1, 99)
}

func TestUnaryNarrowFloats(t *testing.T) {
	// float16: exp(1) = 2.71828... rounds once to half 2.71875 (0x4170).
	h := ir.FromFloat64s(ir.Float16, dims(1), []float64{1})
	got := mustCall(t, "Exp", 13, nil, h)
	if got.DType != ir.Float16 || got.U16()[0] != 0x4170 {
		t.Fatalf("exp(1) in float16: %s %#x, want 0x4170", got.DType, got.U16()[0])
	}
	// bfloat16 rounds once from float64: 1 + 2^-8 + 2^-30 is above the
	// halfway point between bf16 1 and 1+2^-7, but float32 would first round
	// it to exactly halfway and then to even (1).
	b := ir.FromFloat64s(ir.BFloat16, dims(1), []float64{1})
	got = mustCall(t, "Mul", 14, nil, b, ir.FromFloat64s(ir.BFloat16, dims(1), []float64{1}))
	if got.U16()[0] != floatx.F64ToBF16(1) {
		t.Fatalf("bf16 1*1 = %#x", got.U16()[0])
	}
	v := store(ir.BFloat16, dims(1), []float64{1 + 1.0/256 + 1.0/(1<<30)})
	if g, w := v.U16()[0], uint16(0x3f81); g != w {
		t.Fatalf("bf16 rounding: %#x, want %#x", g, w)
	}
}

func TestUnaryBadInputs(t *testing.T) {
	wantErr(t, "Sqrt", 13, nil, "does not accept int32", ints(ir.Int32, nil, 4))
	wantErr(t, "Not", 1, nil, "does not accept float32", f32(nil, 1))
	wantErr(t, "Neg", 13, nil, "does not accept uint8", ints(ir.Uint8, nil, 1))
	wantErr(t, "Relu", 14, nil, "does not accept bool", bools(nil, true))
	wantErr(t, "Gelu", 20, attrs(aStr("approximate", "fast")), "approximate", f32(nil, 1))
	wantErr(t, "Exp", 13, nil, "takes 1 inputs", f32(nil, 1), f32(nil, 1))
	wantErr(t, "LeakyRelu", 16, attrs(aInt("alpha", 1)), "alpha", f32(nil, 1))
	wantErr(t, "Exp", 13, nil, "does not accept string", strs(nil, "e"))
}
