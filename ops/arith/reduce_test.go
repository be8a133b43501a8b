package arith

import (
	"math"
	"testing"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

func TestReduceAxesAndKeepdims(t *testing.T) {
	x := f32(dims(2, 3), 1, 2, 3, 4, 5, 6)
	// ReduceSum takes axes as an attribute before opset 13, as an input after.
	checkFloats(t, mustCall(t, "ReduceSum", 11, attrs(aInts("axes", 1)), x), ir.Float32, dims(2, 1), 6, 15)
	checkFloats(t, mustCall(t, "ReduceSum", 13, nil, x, i64(dims(1), 1)), ir.Float32, dims(2, 1), 6, 15)
	checkFloats(t, mustCall(t, "ReduceSum", 13, attrs(aInt("keepdims", 0)), x, i64(dims(1), 0)), ir.Float32, dims(3), 5, 7, 9)
	checkFloats(t, mustCall(t, "ReduceSum", 13, attrs(aInt("keepdims", 0)), x, i64(dims(1), -2)), ir.Float32, dims(3), 5, 7, 9)
	// No axes: everything; with noop_with_empty_axes, nothing.
	checkFloats(t, mustCall(t, "ReduceSum", 13, nil, x), ir.Float32, dims(1, 1), 21)
	checkFloats(t, mustCall(t, "ReduceSum", 13, attrs(aInt("keepdims", 0)), x, i64(dims(0))), ir.Float32, nil, 21)
	checkFloats(t, mustCall(t, "ReduceSum", 13, attrs(aInt("noop_with_empty_axes", 1)), x, i64(dims(0))), ir.Float32, dims(2, 3), 1, 2, 3, 4, 5, 6)
	checkFloats(t, mustCall(t, "ReduceSum", 13, attrs(aInt("noop_with_empty_axes", 1)), x), ir.Float32, dims(2, 3), 1, 2, 3, 4, 5, 6)
	// A reduction over no axes reduces each element alone (as ONNX Runtime does).
	z := f32(dims(2, 2), -1, 2, -3, 0.5)
	noop := attrs(aInt("noop_with_empty_axes", 1))
	checkFloats(t, mustCall(t, "ReduceL1", 18, noop, z), ir.Float32, dims(2, 2), 1, 2, 3, 0.5)
	checkFloats(t, mustCall(t, "ReduceL2", 18, noop, z, i64(dims(0))), ir.Float32, dims(2, 2), 1, 2, 3, 0.5)
	checkFloats(t, mustCall(t, "ReduceSumSquare", 18, noop, z), ir.Float32, dims(2, 2), 1, 4, 9, 0.25)
	checkFloats(t, mustCall(t, "ReduceLogSum", 18, noop, z), ir.Float32, dims(2, 2), qnan, math.Ln2, qnan, -math.Ln2)
	checkFloats(t, mustCall(t, "ReduceLogSumExp", 18, noop, z), ir.Float32, dims(2, 2), -1, 2, -3, 0.5)
	checkFloats(t, mustCall(t, "ReduceMean", 18, noop, z), ir.Float32, dims(2, 2), -1, 2, -3, 0.5)
	// The other reductions switch at opset 18.
	checkFloats(t, mustCall(t, "ReduceMean", 13, attrs(aInts("axes", 0, 1)), x), ir.Float32, dims(1, 1), 3.5)
	checkFloats(t, mustCall(t, "ReduceMean", 18, nil, x, i64(dims(2), 1, 0)), ir.Float32, dims(1, 1), 3.5)
	// Rank 3, middle axis; a scalar reduces to itself.
	y := f64(dims(2, 2, 2), 1, 2, 3, 4, 5, 6, 7, 8)
	checkFloats(t, mustCall(t, "ReduceMax", 18, attrs(aInt("keepdims", 0)), y, i64(dims(1), 1)), ir.Float64, dims(2, 2), 3, 4, 7, 8)
	checkFloats(t, mustCall(t, "ReduceProd", 18, nil, y, i64(dims(2), 0, 2)), ir.Float64, dims(1, 2, 1), 1*2*5*6, 3*4*7*8)
	checkFloats(t, mustCall(t, "ReduceSum", 13, nil, f32(nil, 7)), ir.Float32, nil, 7)
}

func TestReduceKinds(t *testing.T) {
	x := f64(dims(2, 3), 1, -2, 3, -4, 5, -6)
	ax := i64(dims(1), 1)
	keep0 := attrs(aInt("keepdims", 0))
	want := map[string][]float64{
		"ReduceSum":       {2, -5},
		"ReduceMean":      {2.0 / 3, -5.0 / 3},
		"ReduceMax":       {3, 5},
		"ReduceMin":       {-2, -6},
		"ReduceProd":      {-6, 120},
		"ReduceL1":        {6, 15},
		"ReduceL2":        {math.Sqrt(14), math.Sqrt(77)},
		"ReduceSumSquare": {14, 77},
		"ReduceLogSum":    {math.Ln2, qnan},
		"ReduceLogSumExp": {3.1328452337275756, 5.000140101690177}, // Python's math
	}
	for op, w := range want {
		checkFloats(t, mustCall(t, op, 18, keep0, x, ax), ir.Float64, dims(2), w...)
		// The same op before opset 18 takes an attribute.
		checkFloats(t, mustCall(t, op, 13, attrs(aInt("keepdims", 0), aInts("axes", 1)), x), ir.Float64, dims(2), w...)
	}
	// LogSumExp stays finite for large inputs and handles infinities.
	checkFloats(t, mustCall(t, "ReduceLogSumExp", 18, keep0, f32(dims(3, 2), 1000, 1000, -inf, -inf, inf, 1), ax), ir.Float32, dims(3),
		1000.6931471805599, -inf, inf)
	// NaN propagates through Max and Min.
	checkFloats(t, mustCall(t, "ReduceMax", 18, keep0, f32(dims(2, 2), qnan, 1, 1, qnan), ax), ir.Float32, dims(2), qnan, qnan)
	checkFloats(t, mustCall(t, "ReduceMin", 18, keep0, f32(dims(2, 2), qnan, 1, 1, qnan), ax), ir.Float32, dims(2), qnan, qnan)
}

func TestReduceIntegersExact(t *testing.T) {
	keep0 := attrs(aInt("keepdims", 0))
	checkInts(t, mustCall(t, "ReduceSum", 13, keep0, i64(dims(3), 1<<53, 1, 1)), ir.Int64, nil, 1<<53+2)
	checkInts(t, mustCall(t, "ReduceMax", 18, keep0, i64(dims(2), 1<<53+1, 1<<53)), ir.Int64, nil, 1<<53+1)
	checkU64(t, mustCall(t, "ReduceProd", 18, keep0, u64(dims(2), 1<<32, 1<<31)), nil, 1<<63)
	checkU64(t, mustCall(t, "ReduceMin", 18, keep0, u64(dims(2), math.MaxUint64, math.MaxUint64-1)), nil, math.MaxUint64-1)
	checkU64(t, mustCall(t, "ReduceSumSquare", 18, keep0, u64(dims(2), 1<<31, 1<<31)), nil, 1<<63)
	checkInts(t, mustCall(t, "ReduceL1", 18, keep0, ints(ir.Int32, dims(2), -5, 7)), ir.Int32, nil, 12)
	checkInts(t, mustCall(t, "ReduceMean", 18, keep0, ints(ir.Int32, dims(2, 2), -7, 0, 7, 0), i64(dims(1), 1)), ir.Int32, dims(2), -3, 3)
	// Reductions with no integer form are taken in float64 and truncated.
	checkInts(t, mustCall(t, "ReduceL2", 18, keep0, ints(ir.Int32, dims(2, 2), 3, 4, 1, 1), i64(dims(1), 1)), ir.Int32, dims(2), 5, 1)
	checkInts(t, mustCall(t, "ReduceLogSum", 18, keep0, i64(dims(2), 5, 5)), ir.Int64, nil, 2)
	// Narrow integer sums wrap.
	checkInts(t, mustCall(t, "ReduceSum", 13, keep0, ints(ir.Uint8, dims(3), 200, 100, 1)), ir.Uint8, nil, 45)
	// Bool max is any, min is all.
	b := bools(dims(2, 2), true, false, false, false)
	checkInts(t, mustCall(t, "ReduceMax", 20, keep0, b, i64(dims(1), 1)), ir.Bool, dims(2), 1, 0)
	checkInts(t, mustCall(t, "ReduceMin", 20, keep0, b, i64(dims(1), 0)), ir.Bool, dims(2), 0, 0)
	wantErr(t, "ReduceSum", 13, nil, "does not accept bool", b)
}

func TestReduceEmptySet(t *testing.T) {
	x := f32(dims(2, 0))
	ax := i64(dims(1), 1)
	want := map[string]float64{
		"ReduceSum": 0, "ReduceProd": 1, "ReduceMax": -inf, "ReduceMin": inf, "ReduceMean": qnan,
		"ReduceL1": 0, "ReduceL2": 0, "ReduceSumSquare": 0, "ReduceLogSum": -inf, "ReduceLogSumExp": -inf,
	}
	for op, w := range want {
		checkFloats(t, mustCall(t, op, 18, nil, x, ax), ir.Float32, dims(2, 1), w, w)
	}
	// Integer identities are the type's extremes.
	checkInts(t, mustCall(t, "ReduceMax", 18, nil, ints(ir.Int8, dims(0)), nil), ir.Int8, dims(1), -128)
	checkInts(t, mustCall(t, "ReduceMin", 18, nil, ints(ir.Int8, dims(0)), nil), ir.Int8, dims(1), 127)
	checkInts(t, mustCall(t, "ReduceMin", 18, nil, ints(ir.Uint16, dims(0)), nil), ir.Uint16, dims(1), 65535)
	checkU64(t, mustCall(t, "ReduceMin", 18, nil, u64(dims(0)), nil), dims(1), math.MaxUint64)
	checkInts(t, mustCall(t, "ReduceMax", 18, nil, i64(dims(0)), nil), ir.Int64, dims(1), math.MinInt64)
	checkInts(t, mustCall(t, "ReduceProd", 18, nil, ints(ir.Int32, dims(3, 0)), ax), ir.Int32, dims(3, 1), 1, 1, 1)
	checkInts(t, mustCall(t, "ReduceMean", 18, nil, ints(ir.Int32, dims(0)), nil), ir.Int32, dims(1), 0)
	checkInts(t, mustCall(t, "ReduceMax", 20, nil, bools(dims(0)), nil), ir.Bool, dims(1), 0)
	checkInts(t, mustCall(t, "ReduceMin", 20, nil, bools(dims(0)), nil), ir.Bool, dims(1), 1)
	// A zero-sized axis that is not reduced gives an empty output.
	checkFloats(t, mustCall(t, "ReduceSum", 13, nil, f32(dims(0, 3)), ax), ir.Float32, dims(0, 1))
}

func TestReduceBadInputs(t *testing.T) {
	x := f32(dims(2, 3), 1, 2, 3, 4, 5, 6)
	wantErr(t, "ReduceSum", 13, nil, "repeated", x, i64(dims(2), 1, -1))
	wantErr(t, "ReduceSum", 13, nil, "out of range", x, i64(dims(1), 2))
	wantErr(t, "ReduceMean", 13, attrs(aInts("axes", -3)), "out of range", x)
	wantErr(t, "ReduceSum", 13, nil, "axes must be int64", x, ints(ir.Int32, dims(1), 1))
	wantErr(t, "ReduceSum", 13, nil, "axes must be int64", x, strs(dims(1), "1"))
	wantErr(t, "ReduceL2", 18, nil, "axes must be int64", x, f32(dims(1), 1))
	wantErr(t, "ReduceMax", 18, nil, "does not accept string", strs(dims(1), "a"))
	wantErr(t, "ReduceSum", 13, attrs(aInts("keepdims", 1)), "keepdims", x)
}

func TestReduceInferSymbolic(t *testing.T) {
	op, _ := ops.Lookup("", "ReduceMean", 18)
	in := ir.TensorType(ir.Float32, ir.Shape{ir.Sym("batch"), ir.Sym("seq"), ir.D(1), ir.D(256)})
	n := &ir.Node{Name: "n", OpType: "ReduceMean", Inputs: []string{"x", "axes"}, Outputs: []string{"y"}}
	axesT := ir.TensorType(ir.Int64, ir.Shape{ir.D(1)})
	c := ops.NewInferCtx(n, 18, []*ir.Type{in, axesT}, []*ir.Tensor{nil, i64(dims(1), -1)}, nil)
	if err := op.Infer(c); err != nil {
		t.Fatal(err)
	}
	if want := "float32[batch,seq,1,1]"; c.Out[0].String() != want {
		t.Errorf("keepdims: %v, want %s", c.Out[0], want)
	}
	n.Attrs = attrs(aInt("keepdims", 0))
	c = ops.NewInferCtx(n, 18, []*ir.Type{in, axesT}, []*ir.Tensor{nil, i64(dims(2), 2, 3)}, nil)
	if err := op.Infer(c); err != nil {
		t.Fatal(err)
	}
	if want := "float32[batch,seq]"; c.Out[0].String() != want {
		t.Errorf("keepdims 0: %v, want %s", c.Out[0], want)
	}
	// Axes known only at run time: with keepdims the rank survives.
	n.Attrs = nil
	c = ops.NewInferCtx(n, 18, []*ir.Type{in, axesT}, nil, nil)
	if err := op.Infer(c); err != nil {
		t.Fatal(err)
	}
	if want := "float32[?,?,1,?]"; c.Out[0].String() != want {
		t.Errorf("unknown axes: %v, want %s", c.Out[0], want)
	}
	n.Attrs = attrs(aInt("keepdims", 0))
	c = ops.NewInferCtx(n, 18, []*ir.Type{in, axesT}, nil, nil)
	if err := op.Infer(c); err != nil {
		t.Fatal(err)
	}
	if want := "float32[?,?,?]"; c.Out[0].String() != want {
		t.Errorf("unknown axes, keepdims 0: %v, want %s (one axis)", c.Out[0], want)
	}
	c = ops.NewInferCtx(n, 18, []*ir.Type{in, ir.TensorType(ir.Int64, ir.Shape{ir.Sym("k")})}, nil, nil)
	if err := op.Infer(c); err != nil {
		t.Fatal(err)
	}
	if c.Out[0].HasShape || c.Out[0].DType != ir.Float32 {
		t.Errorf("unknown number of axes, keepdims 0: %v, want float32 of unknown rank", c.Out[0])
	}
}

func TestArgMaxArgMin(t *testing.T) {
	x := f32(dims(2, 3), 2, 1, 2, 0, 5, 5)
	last := aInt("select_last_index", 1)
	checkInts(t, mustCall(t, "ArgMax", 13, attrs(aInt("axis", 1)), x), ir.Int64, dims(2, 1), 0, 1)
	checkInts(t, mustCall(t, "ArgMax", 13, attrs(aInt("axis", -1), last), x), ir.Int64, dims(2, 1), 2, 2)
	checkInts(t, mustCall(t, "ArgMin", 13, attrs(aInt("axis", 1)), x), ir.Int64, dims(2, 1), 1, 0)
	checkInts(t, mustCall(t, "ArgMin", 13, attrs(aInt("axis", 1), last), x), ir.Int64, dims(2, 1), 1, 0)
	checkInts(t, mustCall(t, "ArgMax", 13, attrs(aInt("keepdims", 0)), x), ir.Int64, dims(3), 0, 1, 1)
	checkInts(t, mustCall(t, "ArgMin", 13, attrs(aInt("keepdims", 0), last), f32(dims(3), 1, 1, 1)), ir.Int64, nil, 2)
	// NaN wins both, as in numpy.
	n := f64(dims(4), 1, qnan, 3, qnan)
	checkInts(t, mustCall(t, "ArgMax", 13, nil, n), ir.Int64, dims(1), 1)
	checkInts(t, mustCall(t, "ArgMin", 13, nil, n), ir.Int64, dims(1), 1)
	checkInts(t, mustCall(t, "ArgMax", 13, attrs(last), n), ir.Int64, dims(1), 3)
	// Exact integer comparisons.
	checkInts(t, mustCall(t, "ArgMax", 13, nil, i64(dims(2), 1<<53, 1<<53+1)), ir.Int64, dims(1), 1)
	checkInts(t, mustCall(t, "ArgMin", 13, nil, u64(dims(2), math.MaxUint64, math.MaxUint64-1)), ir.Int64, dims(1), 1)
	wantErr(t, "ArgMax", 13, attrs(aInt("axis", 2)), "out of range", x)
	wantErr(t, "ArgMax", 13, attrs(aInt("axis", 1)), "empty axis", f32(dims(2, 0)))
	wantErr(t, "ArgMin", 13, nil, "does not accept string", strs(dims(1), "a"))
}

func TestSoftmaxFamily(t *testing.T) {
	x := f64(dims(1, 3), 1, 2, 3)
	checkFloats(t, mustCall(t, "Softmax", 13, nil, x), ir.Float64, dims(1, 3), 0.09003057317038046, 0.24472847105479764, 0.6652409557748218)
	checkFloats(t, mustCall(t, "LogSoftmax", 13, nil, x), ir.Float64, dims(1, 3), -2.40760596444438, -1.4076059644443804, -0.40760596444438046)
	// Subtracting the max keeps large inputs finite.
	checkFloats(t, mustCall(t, "Softmax", 13, nil, f32(dims(2), 1000, 1001)), ir.Float32, dims(2), 0.2689414213699951, 0.7310585786300049)
	checkFloats(t, mustCall(t, "LogSoftmax", 13, nil, f32(dims(2), 1000, 1000)), ir.Float32, dims(2), -math.Ln2, -math.Ln2)
	// Before opset 13 the input is a 2-D [prod(dims[:axis]), prod(dims[axis:])]
	// matrix; from 13 on, axis is one axis.
	y := f64(dims(1, 2, 2), 1, 2, 3, 4)
	checkFloats(t, mustCall(t, "Softmax", 11, nil, y), ir.Float64, dims(1, 2, 2),
		0.03205860328008499, 0.08714431874203257, 0.23688281808991013, 0.6439142598879724)
	checkFloats(t, mustCall(t, "Softmax", 13, attrs(aInt("axis", 1)), y), ir.Float64, dims(1, 2, 2),
		0.11920292202211755, 0.11920292202211755, 0.8807970779778823, 0.8807970779778823)
	checkFloats(t, mustCall(t, "Softmax", 11, attrs(aInt("axis", 2)), y), ir.Float64, dims(1, 2, 2),
		0.2689414213699951, 0.7310585786300049, 0.2689414213699951, 0.7310585786300049)
	h := f32(dims(2, 3), 1, 3, 3, 2, 1, 0)
	checkFloats(t, mustCall(t, "Hardmax", 13, nil, h), ir.Float32, dims(2, 3), 0, 1, 0, 1, 0, 0)
	checkFloats(t, mustCall(t, "Hardmax", 11, attrs(aInt("axis", 0)), h), ir.Float32, dims(2, 3), 0, 1, 0, 0, 0, 0)
	checkFloats(t, mustCall(t, "Softmax", 13, nil, f32(dims(0, 3))), ir.Float32, dims(0, 3))
	wantErr(t, "Softmax", 13, attrs(aInt("axis", 2)), "out of range", x)
	wantErr(t, "LogSoftmax", 13, nil, "does not accept int64", i64(dims(1), 1))
}
