package arith

import (
	"math"
	"testing"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

func TestArithmeticFloatBroadcast(t *testing.T) {
	a := f32(dims(2, 3), 1, 2, 3, 4, 5, 6)
	row := f32(dims(3), 10, 20, 30)
	col := f32(dims(2, 1), 2, 4)
	checkFloats(t, mustCall(t, "Add", 14, nil, a, row), ir.Float32, dims(2, 3), 11, 22, 33, 14, 25, 36)
	checkFloats(t, mustCall(t, "Sub", 14, nil, row, a), ir.Float32, dims(2, 3), 9, 18, 27, 6, 15, 24)
	checkFloats(t, mustCall(t, "Mul", 14, nil, a, col), ir.Float32, dims(2, 3), 2, 4, 6, 16, 20, 24)
	checkFloats(t, mustCall(t, "Div", 14, nil, a, col), ir.Float32, dims(2, 3), 0.5, 1, 1.5, 1, 1.25, 1.5)
	// [2,1] against [3] broadcasts both ways to [2,3].
	checkFloats(t, mustCall(t, "Add", 14, nil, col, row), ir.Float32, dims(2, 3), 12, 22, 32, 14, 24, 34)
	// A scalar, and a rank-3 shape against rank 1.
	checkFloats(t, mustCall(t, "Mul", 14, nil, f32(nil, 3), row), ir.Float32, dims(3), 30, 60, 90)
	b3 := f32(dims(2, 1, 2), 1, 2, 3, 4)
	checkFloats(t, mustCall(t, "Sub", 14, nil, b3, f32(dims(3, 1), 1, 2, 3)), ir.Float32, dims(2, 3, 2),
		0, 1, -1, 0, -2, -1, 2, 3, 1, 2, 0, 1)
	// A zero-sized dimension broadcasts to an empty result.
	checkFloats(t, mustCall(t, "Add", 14, nil, f32(dims(0, 3)), row), ir.Float32, dims(0, 3))
	// IEEE division: x/0 is Inf, 0/0 NaN; NaN propagates through Add.
	checkFloats(t, mustCall(t, "Div", 14, nil, f64(dims(3), 1, -1, 0), f64(nil, 0)), ir.Float64, dims(3), inf, -inf, qnan)
	checkFloats(t, mustCall(t, "Add", 14, nil, f64(dims(2), qnan, inf), f64(dims(2), 1, -inf)), ir.Float64, dims(2), qnan, qnan)
}

func TestArithmeticIntegersExact(t *testing.T) {
	// 2^53+1 is not a float64: int64 must not go through float64.
	big := int64(1<<53 + 1)
	checkInts(t, mustCall(t, "Add", 14, nil, i64(dims(2), big, math.MaxInt64), i64(dims(2), 2, 1)), ir.Int64, dims(2),
		big+2, math.MinInt64) // wraps like Go/C
	checkInts(t, mustCall(t, "Mul", 14, nil, i64(nil, 3037000499), i64(nil, 3037000499)), ir.Int64, nil, 9223372030926249001)
	// Narrow types wrap.
	checkInts(t, mustCall(t, "Add", 14, nil, ints(ir.Int8, dims(2), 127, -128), ints(ir.Int8, dims(2), 1, -1)), ir.Int8, dims(2), -128, 127)
	checkInts(t, mustCall(t, "Sub", 14, nil, ints(ir.Uint8, dims(2), 3, 200), ints(ir.Uint8, nil, 5)), ir.Uint8, dims(2), 254, 195)
	checkInts(t, mustCall(t, "Mul", 14, nil, ints(ir.Int16, dims(1), 300), ints(ir.Int16, dims(1), 300)), ir.Int16, dims(1), 90000-65536)
	// Integer division truncates toward zero.
	checkInts(t, mustCall(t, "Div", 14, nil, ints(ir.Int32, dims(4), 7, -7, 7, -7), ints(ir.Int32, dims(4), 2, 2, -2, -2)), ir.Int32, dims(4),
		3, -3, -3, 3)
	// uint64 above 2^63 must not go through int64 or float64.
	u := uint64(math.MaxUint64)
	checkU64(t, mustCall(t, "Div", 14, nil, u64(dims(2), u, u-1), u64(dims(2), 2, 1<<63)), dims(2), u/2, 1)
	checkU64(t, mustCall(t, "Sub", 14, nil, u64(dims(2), u, 0), u64(dims(2), 1, 1)), dims(2), u-1, u)
	checkU64(t, mustCall(t, "Add", 14, nil, u64(nil, 1<<53+1), u64(nil, 1<<63)), nil, 1<<53+1+1<<63)
}

func TestIntegerDivisionByZero(t *testing.T) {
	wantErr(t, "Div", 14, nil, "division by zero", i64(dims(2), 1, 2), i64(dims(2), 1, 0))
	wantErr(t, "Div", 14, nil, "division by zero", u64(dims(1), 1), u64(dims(1), 0))
	wantErr(t, "Mod", 13, nil, "division by zero", ints(ir.Int8, dims(1), 1), ints(ir.Int8, dims(1), 0))
}

func TestMod(t *testing.T) {
	a, b := i64(dims(4), -7, 7, -7, 7), i64(dims(4), 3, -3, -3, 3)
	// fmod=0: the sign of the divisor (Python's %).
	checkInts(t, mustCall(t, "Mod", 13, nil, a, b), ir.Int64, dims(4), 2, -2, -1, 1)
	// fmod=1: the sign of the dividend (C's fmod).
	checkInts(t, mustCall(t, "Mod", 13, attrs(aInt("fmod", 1)), a, b), ir.Int64, dims(4), -1, 1, -1, 1)
	fa, fb := f32(dims(3), -7.5, 7.5, 5), f32(dims(3), 2, -2, 2.5)
	checkFloats(t, mustCall(t, "Mod", 13, attrs(aInt("fmod", 1)), fa, fb), ir.Float32, dims(3), -1.5, 1.5, 0)
	checkFloats(t, mustCall(t, "Mod", 13, nil, fa, fb), ir.Float32, dims(3), 0.5, -0.5, 0)
	checkInts(t, mustCall(t, "Mod", 13, nil, ints(ir.Uint32, dims(2), 7, 4000000000), ints(ir.Uint32, nil, 3)), ir.Uint32, dims(2), 1, 1)
	wantErr(t, "Mod", 13, attrs(aInt("fmod", 2)), "fmod", a, b)
}

func TestPow(t *testing.T) {
	checkFloats(t, mustCall(t, "Pow", 15, nil, f32(dims(3), 2, 4, -8), f32(dims(3), 3, 0.5, 1.0/3)), ir.Float32, dims(3), 8, 2, qnan)
	// Float base, integer exponent (and the reverse) keep the base's dtype.
	checkFloats(t, mustCall(t, "Pow", 15, nil, f32(dims(2), 2, 1.5), i64(dims(2), 3, -2)), ir.Float32, dims(2), 8, 1/2.25)
	checkInts(t, mustCall(t, "Pow", 15, nil, i64(dims(3), 2, 3, 5), f32(dims(3), 0.5, 2, -1)), ir.Int64, dims(3), 1, 9, 0)
	// Integer powers are exact: 3^39 and 7^22 are beyond float64's 53 bits.
	checkInts(t, mustCall(t, "Pow", 15, nil, i64(dims(2), 3, 7), i64(dims(2), 39, 22)), ir.Int64, dims(2),
		4052555153018976267, 3909821048582988049)
	checkInts(t, mustCall(t, "Pow", 15, nil, i64(dims(4), -1, -1, 1, 2), ints(ir.Int32, dims(4), -3, -2, -5, -1)), ir.Int64, dims(4), -1, 1, 1, 0)
	checkInts(t, mustCall(t, "Pow", 15, nil, ints(ir.Int32, dims(2), -2, 10), ints(ir.Int32, dims(1), 3)), ir.Int32, dims(2), -8, 1000)
	checkU64(t, mustCall(t, "Pow", 15, nil, u64(dims(1), 2), u64(dims(1), 63)), dims(1), 1<<63)
	checkInts(t, mustCall(t, "Pow", 15, nil, ints(ir.Uint8, dims(1), 2), ints(ir.Uint8, dims(1), 9)), ir.Uint8, dims(1), 0) // wraps
	// Broadcast exponent.
	checkFloats(t, mustCall(t, "Pow", 15, nil, f64(dims(2, 2), 1, 2, 3, 4), f64(dims(2), 2, 3)), ir.Float64, dims(2, 2), 1, 8, 9, 64)
	wantErr(t, "Pow", 15, nil, "power", bools(dims(1), true), f32(dims(1), 2))
	wantErr(t, "Pow", 15, nil, "0 to a negative power", ints(ir.Int32, dims(2), 2, 0), ints(ir.Int32, dims(1), -1))
}

func TestBitShift(t *testing.T) {
	checkInts(t, mustCall(t, "BitShift", 11, attrs(aStr("direction", "LEFT")), ints(ir.Uint8, dims(3), 1, 255, 1), ints(ir.Uint8, dims(3), 3, 1, 8)),
		ir.Uint8, dims(3), 8, 254, 0)
	checkU64(t, mustCall(t, "BitShift", 11, attrs(aStr("direction", "RIGHT")), u64(dims(2), 1<<63, 16), u64(nil, 4)), dims(2), 1<<59, 1)
	wantErr(t, "BitShift", 11, attrs(aStr("direction", "UP")), "direction", u64(nil, 1), u64(nil, 1))
	wantErr(t, "BitShift", 11, attrs(aStr("direction", "LEFT")), "does not accept int32", ints(ir.Int32, nil, 1), ints(ir.Int32, nil, 1))
}

func TestLogic(t *testing.T) {
	a := bools(dims(2, 2), true, true, false, false)
	b := bools(dims(2), true, false)
	checkInts(t, mustCall(t, "And", 7, nil, a, b), ir.Bool, dims(2, 2), 1, 0, 0, 0)
	checkInts(t, mustCall(t, "Or", 7, nil, a, b), ir.Bool, dims(2, 2), 1, 1, 1, 0)
	checkInts(t, mustCall(t, "Xor", 7, nil, a, b), ir.Bool, dims(2, 2), 0, 1, 1, 0)
	wantErr(t, "And", 7, nil, "does not accept float32", f32(nil, 1), f32(nil, 1))
	wantErr(t, "Xor", 7, nil, "does not accept uint8", ints(ir.Uint8, nil, 1), ints(ir.Uint8, nil, 1))
}

func TestComparisons(t *testing.T) {
	a := f32(dims(2, 3), 1, 2, 3, qnan, 5, -inf)
	b := f32(dims(3), 2, 2, 2)
	checkInts(t, mustCall(t, "Equal", 19, nil, a, b), ir.Bool, dims(2, 3), 0, 1, 0, 0, 0, 0)
	checkInts(t, mustCall(t, "Less", 13, nil, a, b), ir.Bool, dims(2, 3), 1, 0, 0, 0, 0, 1)
	checkInts(t, mustCall(t, "LessOrEqual", 16, nil, a, b), ir.Bool, dims(2, 3), 1, 1, 0, 0, 0, 1)
	checkInts(t, mustCall(t, "Greater", 13, nil, a, b), ir.Bool, dims(2, 3), 0, 0, 1, 0, 1, 0)
	checkInts(t, mustCall(t, "GreaterOrEqual", 16, nil, a, b), ir.Bool, dims(2, 3), 0, 1, 1, 0, 1, 0)
	// Exact integer comparisons: 2^53 and 2^53+1 are one float64.
	checkInts(t, mustCall(t, "Less", 13, nil, i64(dims(2), 1<<53, -5), i64(dims(2), 1<<53+1, -6)), ir.Bool, dims(2), 1, 0)
	checkInts(t, mustCall(t, "Greater", 13, nil, u64(dims(2), 1<<63, 1), u64(dims(2), 1, 1<<63)), ir.Bool, dims(2), 1, 0)
	checkInts(t, mustCall(t, "Equal", 13, nil, bools(dims(2), true, false), bools(nil, false)), ir.Bool, dims(2), 0, 1)
	checkInts(t, mustCall(t, "Equal", 19, nil, strs(dims(2, 2), "a", "b", "c", ""), strs(dims(2), "a", "")), ir.Bool, dims(2, 2), 1, 0, 0, 1)
	wantErr(t, "Less", 13, nil, "does not accept string", strs(nil, "a"), strs(nil, "b"))
	if _, err := ops.Lookup("", "LessOrEqual", 11); err == nil {
		t.Error("LessOrEqual exists only from opset 12")
	}
}

func TestBinaryBadInputs(t *testing.T) {
	wantErr(t, "Add", 14, nil, "different dtypes", f32(nil, 1), f64(nil, 1))
	wantErr(t, "Add", 14, nil, "cannot be broadcast", f32(dims(2), 1, 2), f32(dims(3), 1, 2, 3))
	// Broadcasting small tensors to a huge output is refused, not attempted.
	huge := &ir.Tensor{DType: ir.Float32, Dims: dims(1<<20, 1), Data: make([]byte, 4<<20)}
	wantErr(t, "Mul", 14, nil, "too large", huge, &ir.Tensor{DType: ir.Float32, Dims: dims(1 << 20), Data: make([]byte, 4<<20)})
	wantErr(t, "Mul", 14, nil, "takes 2 inputs", f32(nil, 1))
	wantErr(t, "Sub", 14, nil, "input 1 is required", f32(nil, 1), nil)
	wantErr(t, "Add", 14, nil, "does not accept bool", bools(nil, true), bools(nil, true))
	wantErr(t, "Div", 14, nil, "does not accept string", strs(nil, "a"), strs(nil, "b"))
}

func TestBinaryInferSymbolic(t *testing.T) {
	op, _ := ops.Lookup("", "Less", 13)
	n := &ir.Node{Name: "n", OpType: "Less", Inputs: []string{"a", "b"}, Outputs: []string{"y"}}
	c := ops.NewInferCtx(n, 13, []*ir.Type{
		ir.TensorType(ir.Float32, ir.Shape{ir.Sym("batch"), ir.D(1), ir.D(4)}),
		ir.TensorType(ir.Float32, ir.Shape{ir.D(3), ir.D(1)}),
	}, nil, nil)
	if err := op.Infer(c); err != nil {
		t.Fatal(err)
	}
	want := ir.TensorType(ir.Bool, ir.Shape{ir.Sym("batch"), ir.D(3), ir.D(4)})
	if c.Out[0].String() != want.String() {
		t.Fatalf("inferred %v, want %v", c.Out[0], want)
	}
	c = ops.NewInferCtx(n, 13, []*ir.Type{ir.TensorType(ir.Float32, nil), ir.TensorType(ir.Int32, nil)}, nil, nil)
	if err := op.Infer(c); err == nil {
		t.Fatal("inference accepted float32 < int32")
	}
}
