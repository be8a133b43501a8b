package arith

import (
	"math"
	"testing"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

func TestVariadic(t *testing.T) {
	a := f32(dims(2, 1), 1, 5)
	b := f32(dims(3), 4, 0, 2)
	c := f32(nil, 3)
	checkFloats(t, mustCall(t, "Max", 13, nil, a, b, c), ir.Float32, dims(2, 3), 4, 3, 3, 5, 5, 5)
	checkFloats(t, mustCall(t, "Min", 13, nil, a, b, c), ir.Float32, dims(2, 3), 1, 0, 1, 3, 0, 2)
	checkFloats(t, mustCall(t, "Sum", 13, nil, a, b, c), ir.Float32, dims(2, 3), 8, 4, 6, 12, 8, 10)
	checkFloats(t, mustCall(t, "Mean", 13, nil, a, b, c), ir.Float32, dims(2, 3), 8.0/3, 4.0/3, 2, 4, 8.0/3, 10.0/3)
	// One input passes through.
	checkFloats(t, mustCall(t, "Sum", 13, nil, b), ir.Float32, dims(3), 4, 0, 2)
	checkFloats(t, mustCall(t, "Max", 13, nil, b), ir.Float32, dims(3), 4, 0, 2)
	// NaN wins in Max and Min, in either position.
	n := f64(dims(2), qnan, 1)
	m := f64(dims(2), 0, qnan)
	checkFloats(t, mustCall(t, "Max", 13, nil, n, m), ir.Float64, dims(2), qnan, qnan)
	checkFloats(t, mustCall(t, "Min", 13, nil, m, n), ir.Float64, dims(2), qnan, qnan)
	// Exact integers.
	checkInts(t, mustCall(t, "Max", 13, nil, i64(dims(2), 1<<53, -1), i64(dims(2), 1<<53+1, -2)), ir.Int64, dims(2), 1<<53+1, -1)
	checkU64(t, mustCall(t, "Min", 13, nil, u64(dims(2), math.MaxUint64, 1<<63), u64(dims(2), math.MaxUint64-1, 1<<63+1)), dims(2), math.MaxUint64-1, 1<<63)
	checkInts(t, mustCall(t, "Sum", 13, nil, ints(ir.Int8, dims(1), 100), ints(ir.Int8, dims(1), 100)), ir.Int8, dims(1), -56)
	checkInts(t, mustCall(t, "Mean", 13, nil, ints(ir.Int32, dims(2), 7, -7), ints(ir.Int32, dims(2), 0, 0)), ir.Int32, dims(2), 3, -3)
	wantErr(t, "Max", 13, nil, "input 1 is int32", f32(nil, 1), ints(ir.Int32, nil, 1))
	wantErr(t, "Sum", 13, nil, "cannot be broadcast", f32(dims(2), 1, 2), f32(dims(3), 1, 2, 3), f32(nil, 1))
	wantErr(t, "Min", 13, nil, "does not accept bool", bools(nil, true))
	wantErr(t, "Mean", 13, nil, "at least one input")
}

// The inference of variadic ops must see every input of every node, however
// many inputs earlier nodes had.
func TestVariadicInferInputCounts(t *testing.T) {
	op, _ := ops.Lookup("", "Max", 13)
	for _, n := range []int{1, 3, 2, 4} {
		node := &ir.Node{Name: "n", OpType: "Max", Outputs: []string{"y"}}
		var types []*ir.Type
		for i := 0; i < n; i++ {
			node.Inputs = append(node.Inputs, "x")
			s := ir.Shape{ir.D(1)}
			if i == n-1 {
				s = ir.Shape{ir.D(int64(n)), ir.Sym("b")}
			}
			types = append(types, ir.TensorType(ir.Float32, s))
		}
		c := ops.NewInferCtx(node, 13, types, nil, nil)
		if err := op.Infer(c); err != nil {
			t.Fatal(err)
		}
		if want := ir.TensorType(ir.Float32, ir.Shape{ir.D(int64(n)), ir.Sym("b")}); c.Out[0].String() != want.String() {
			t.Fatalf("%d inputs: inferred %v, want %v", n, c.Out[0], want)
		}
	}
}

func TestClip(t *testing.T) {
	x := f32(dims(5), -3, -1, 0, 2, qnan)
	// Before opset 11, bounds are attributes.
	checkFloats(t, mustCall(t, "Clip", 6, attrs(aFloat("min", -1.5), aFloat("max", 1)), x), ir.Float32, dims(5), -1.5, -1, 0, 1, qnan)
	checkFloats(t, mustCall(t, "Clip", 6, attrs(aFloat("max", 1)), x), ir.Float32, dims(5), -3, -1, 0, 1, qnan)
	// From opset 11, optional scalar inputs.
	checkFloats(t, mustCall(t, "Clip", 13, nil, x, f32(nil, -1.5), f32(nil, 1)), ir.Float32, dims(5), -1.5, -1, 0, 1, qnan)
	checkFloats(t, mustCall(t, "Clip", 13, nil, x, nil, f32(nil, 1)), ir.Float32, dims(5), -3, -1, 0, 1, qnan)
	checkFloats(t, mustCall(t, "Clip", 13, nil, x, f32(nil, 0)), ir.Float32, dims(5), 0, 0, 0, 2, qnan)
	checkFloats(t, mustCall(t, "Clip", 13, nil, x), ir.Float32, dims(5), -3, -1, 0, 2, qnan)
	// min > max gives max everywhere.
	checkFloats(t, mustCall(t, "Clip", 13, nil, x, f32(nil, 2), f32(nil, 1)), ir.Float32, dims(5), 1, 1, 1, 1, qnan)
	// Integers, exactly.
	checkInts(t, mustCall(t, "Clip", 13, nil, ints(ir.Int8, dims(4), -128, -5, 5, 127), ints(ir.Int8, nil, -10), ints(ir.Int8, nil, 10)),
		ir.Int8, dims(4), -10, -5, 5, 10)
	checkInts(t, mustCall(t, "Clip", 13, nil, i64(dims(2), 1<<53+1, 1<<53+3), nil, i64(dims(1), 1<<53+2)), ir.Int64, dims(2), 1<<53+1, 1<<53+2)
	checkU64(t, mustCall(t, "Clip", 13, nil, u64(dims(2), 1, math.MaxUint64), u64(nil, 1<<63)), dims(2), 1<<63, math.MaxUint64)
	wantErr(t, "Clip", 13, nil, "must be a scalar", x, f32(dims(2), 0, 1))
	wantErr(t, "Clip", 13, nil, "input 1 is float64", x, f64(nil, 0))
	wantErr(t, "Clip", 6, nil, "before opset 11", i64(nil, 1))
	wantErr(t, "Clip", 6, nil, "as attributes before opset 11", x, f32(nil, 0))
	wantErr(t, "Clip", 11, attrs(aFloat("min", 0)), "as inputs from opset 11", x)
	wantErr(t, "Clip", 13, nil, "does not accept bool", bools(nil, true))
}

func TestPRelu(t *testing.T) {
	x := f32(dims(2, 3), -1, -2, 3, -4, 5, -6)
	checkFloats(t, mustCall(t, "PRelu", 16, nil, x, f32(dims(3), 0.5, 0.25, 2)), ir.Float32, dims(2, 3), -0.5, -0.5, 3, -2, 5, -12)
	checkFloats(t, mustCall(t, "PRelu", 16, nil, x, f32(nil, 0.1)), ir.Float32, dims(2, 3), -0.1, -0.2, 3, -0.4, 5, -0.6)
	checkFloats(t, mustCall(t, "PRelu", 16, nil, x, f32(dims(2, 1), 1, 2)), ir.Float32, dims(2, 3), -1, -2, 3, -8, 5, -12)
	checkInts(t, mustCall(t, "PRelu", 16, nil, i64(dims(3), -3, 0, 3), i64(dims(1), 2)), ir.Int64, dims(3), -6, 0, 3)
	checkU64(t, mustCall(t, "PRelu", 16, nil, u64(dims(2), 3, math.MaxUint64), u64(dims(1), 2)), dims(2), 3, math.MaxUint64)
	// The slope broadcasts to x, never the other way.
	wantErr(t, "PRelu", 16, nil, "does not broadcast", f32(dims(3), 1, 2, 3), f32(dims(2, 3), 1, 2, 3, 4, 5, 6))
	wantErr(t, "PRelu", 16, nil, "does not broadcast", x, f32(dims(2), 1, 2))
	wantErr(t, "PRelu", 16, nil, "slope is float64", x, f64(nil, 1))
}

func TestWhere(t *testing.T) {
	cond := bools(dims(2, 1), true, false)
	x := f32(dims(3), 1, 2, 3)
	y := f32(nil, -1)
	checkFloats(t, mustCall(t, "Where", 16, nil, cond, x, y), ir.Float32, dims(2, 3), 1, 2, 3, -1, -1, -1)
	checkFloats(t, mustCall(t, "Where", 16, nil, bools(dims(3), true, false, true), x, y), ir.Float32, dims(3), 1, -1, 3)
	checkInts(t, mustCall(t, "Where", 16, nil, cond, i64(dims(1), math.MaxInt64), i64(dims(2), 1<<53+1, 7)), ir.Int64, dims(2, 2),
		math.MaxInt64, math.MaxInt64, 1<<53+1, 7)
	s := mustCall(t, "Where", 16, nil, cond, strs(dims(2), "a", "b"), strs(nil, "z"))
	if s.DType != ir.String || string(s.Strings[0])+string(s.Strings[1])+string(s.Strings[2])+string(s.Strings[3]) != "abzz" {
		t.Fatalf("Where on strings: %v %q", s.Dims, s.Strings)
	}
	q := mustCall(t, "Where", 16, nil, cond, ints(ir.Int4, dims(1), -3), ints(ir.Int4, dims(2), 5, 6))
	checkInts(t, q, ir.Int4, dims(2, 2), -3, -3, 5, 6)
	checkFloats(t, mustCall(t, "Where", 16, nil, bools(dims(0), nil...), f32(dims(1), 1), y), ir.Float32, dims(0))
	wantErr(t, "Where", 16, nil, "condition must be bool", ints(ir.Uint8, nil, 1), x, y)
	wantErr(t, "Where", 16, nil, "different dtypes", cond, x, f64(nil, 1))
	wantErr(t, "Where", 16, nil, "cannot be broadcast", bools(dims(2), true, false), x, y)
}
