package qops

import (
	"math"
	"testing"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

func to(d ir.DType) *ir.Attribute { return aInt("to", int64(d)) }

func TestCastFloatToInt(t *testing.T) {
	nan := math.NaN()
	// truncation toward zero; NaN gives 0; out of range wraps after truncation
	y := mustRun(t, 13, "Cast", []*ir.Attribute{to(ir.Int8)}, f32([]int64{7}, -2.7, -0.5, 0.5, 2.7, nan, 300, -129))
	checkInts(t, "float->int8", y, ir.Int8, []int64{7}, -2, 0, 0, 2, 0, 44, 127)
	y = mustRun(t, 13, "Cast", []*ir.Attribute{to(ir.Uint8)}, f32([]int64{3}, -1.5, 255.9, 256))
	checkInts(t, "float->uint8", y, ir.Uint8, []int64{3}, 255, 255, 0)
	// int4 from float wraps like ONNX's conformance data (15 -> -1, -9 -> 7)
	y = mustRun(t, 21, "Cast", []*ir.Attribute{to(ir.Int4)}, f32([]int64{4}, -9, 7.9, 8, 15))
	checkInts(t, "float->int4", y, ir.Int4, []int64{4}, 7, 7, -8, -1)
	y = mustRun(t, 13, "Cast", []*ir.Attribute{to(ir.Int64)}, f32([]int64{3}, 1e30, -1e30, math.Inf(1)))
	checkInts(t, "float->int64 saturates", y, ir.Int64, []int64{3}, math.MaxInt64, math.MinInt64, math.MaxInt64)
}

func TestCastIntToInt(t *testing.T) {
	// the spec's example: 200 (int16) -> -56 (int8)
	y := mustRun(t, 13, "Cast", []*ir.Attribute{to(ir.Int8)}, ints(ir.Int16, []int64{3}, 200, -200, 32767))
	checkInts(t, "int16->int8", y, ir.Int8, []int64{3}, -56, 56, -1)
	y = mustRun(t, 13, "Cast", []*ir.Attribute{to(ir.Int32)}, ints(ir.Int64, []int64{2}, math.MinInt64, 1<<32+5))
	checkInts(t, "int64->int32", y, ir.Int32, []int64{2}, 0, 5)
	u := ir.NewTensor(ir.Uint64, []int64{1})
	u.U64()[0] = math.MaxUint64
	y = mustRun(t, 13, "Cast", []*ir.Attribute{to(ir.Float32)}, u)
	checkFloats(t, "uint64->float", y, ir.Float32, []int64{1}, 18446744073709551616)
	y = mustRun(t, 13, "Cast", []*ir.Attribute{to(ir.Int64)}, u)
	checkInts(t, "uint64->int64", y, ir.Int64, []int64{1}, -1)
	y = mustRun(t, 21, "Cast", []*ir.Attribute{to(ir.Int8)}, ints(ir.Uint4, []int64{3}, 15, 0, 9))
	checkInts(t, "uint4->int8", y, ir.Int8, []int64{3}, 15, 0, 9)
}

func TestCastBool(t *testing.T) {
	y := mustRun(t, 13, "Cast", []*ir.Attribute{to(ir.Bool)}, f32([]int64{5}, 0, math.Copysign(0, -1), math.NaN(), 2, -0.1))
	checkInts(t, "float->bool", y, ir.Bool, []int64{5}, 0, 0, 1, 1, 1)
	y = mustRun(t, 13, "Cast", []*ir.Attribute{to(ir.Float32)}, ints(ir.Bool, []int64{2}, 1, 0))
	checkFloats(t, "bool->float", y, ir.Float32, []int64{2}, 1, 0)
}

func TestCastFloats(t *testing.T) {
	// float64 -> float16 rounds once: 1 + 2^-11 + 2^-40 is above the midpoint
	d := ir.FromFloat64s(ir.Float64, []int64{2}, []float64{1 + math.Ldexp(1, -11) + math.Ldexp(1, -40), 65520})
	y := mustRun(t, 13, "Cast", []*ir.Attribute{to(ir.Float16)}, d)
	checkCodes(t, "double->half", y, 0x3c01, 0x7c00)
	// float64 -> bfloat16 goes through float32 (ONNX Runtime, Eigen): the
	// float32 rounding lands on a tie that then goes to even.
	d = ir.FromFloat64s(ir.Float64, []int64{1}, []float64{1 + math.Ldexp(1, -8) + math.Ldexp(1, -30)})
	y = mustRun(t, 13, "Cast", []*ir.Attribute{to(ir.BFloat16)}, d)
	checkCodes(t, "double->bfloat16", y, 0x3f80)
}

func TestCastFloat8Saturate(t *testing.T) {
	x := f32([]int64{4}, 1e6, 448, 464, 465)
	y := mustRun(t, 19, "Cast", []*ir.Attribute{to(ir.Float8E4M3FN), aInt("saturate", 0)}, x)
	checkCodes(t, "no saturate", y, 0x7f, 0x7e, 0x7e, 0x7f)
	y = mustRun(t, 19, "Cast", []*ir.Attribute{to(ir.Float8E4M3FN)}, x)
	checkCodes(t, "saturate (default)", y, 0x7e, 0x7e, 0x7e, 0x7e)
	y = mustRun(t, 19, "Cast", []*ir.Attribute{to(ir.Float8E5M2), aInt("saturate", 0)}, f32([]int64{2}, math.Inf(-1), 1e6))
	checkCodes(t, "E5M2 no saturate", y, 0xfc, 0x7c)
	y = mustRun(t, 19, "Cast", []*ir.Attribute{to(ir.Float8E5M2FNUZ)}, f32([]int64{2}, math.Inf(-1), math.Copysign(0, -1)))
	checkCodes(t, "E5M2FNUZ saturate", y, 0xff, 0x00)
	y = mustRun(t, 19, "Cast", []*ir.Attribute{to(ir.Float32)}, ints(ir.Float8E4M3FN, []int64{3}, 1, 2, 3))
	// ints() stores values: 1, 2, 3 encoded as float8 read back exactly
	checkFloats(t, "E4M3FN->float", y, ir.Float32, []int64{3}, 1, 2, 3)
}

func TestCastE8M0(t *testing.T) {
	x := f32([]int64{4}, 3, 2.9, 2.1, 0.5)
	y := mustRun(t, 24, "Cast", []*ir.Attribute{to(ir.Float8E8M0)}, x)
	checkCodes(t, "up (default)", y, 0x81, 0x81, 0x81, 0x7e)
	y = mustRun(t, 24, "Cast", []*ir.Attribute{to(ir.Float8E8M0), aStr("round_mode", "down")}, x)
	checkCodes(t, "down", y, 0x80, 0x80, 0x80, 0x7e)
	y = mustRun(t, 24, "Cast", []*ir.Attribute{to(ir.Float8E8M0), aStr("round_mode", "nearest")}, x)
	checkCodes(t, "nearest", y, 0x81, 0x80, 0x80, 0x7e)
	wantErr(t, "round_mode", 24, "Cast", []*ir.Attribute{to(ir.Float8E8M0), aStr("round_mode", "sideways")}, x)
}

func TestCastStrings(t *testing.T) {
	s := ir.NewTensor(ir.String, []int64{6})
	for i, v := range []string{"3.5", "1e-5", "+INF", "-inf", "NaN", " 7 "} {
		s.Strings[i] = []byte(v)
	}
	y := mustRun(t, 13, "Cast", []*ir.Attribute{to(ir.Float32)}, s)
	checkFloats(t, "string->float", y, ir.Float32, []int64{6}, 3.5, float64(float32(1e-5)), math.Inf(1), math.Inf(-1), math.NaN(), 7)

	s = ir.NewTensor(ir.String, []int64{4})
	for i, v := range []string{"100", "-7", "2.7", "9223372036854775807"} {
		s.Strings[i] = []byte(v)
	}
	y = mustRun(t, 13, "Cast", []*ir.Attribute{to(ir.Int64)}, s)
	checkInts(t, "string->int64", y, ir.Int64, []int64{4}, 100, -7, 2, math.MaxInt64)

	s.Strings[1] = []byte("hello")
	wantErr(t, "not a number", 13, "Cast", []*ir.Attribute{to(ir.Int64)}, s)

	x := f32([]int64{10}, 0.5, 1, 1e-7, 1e16, 123.25, math.Copysign(0, -1), math.NaN(), 0.1, 1e-4, -2.5e-5)
	y = mustRun(t, 13, "Cast", []*ir.Attribute{to(ir.String)}, x)
	// float32(1e-4) is just below 1e-4, so numpy (comparing the exact value) prints it in scientific form
	want := []string{"0.5", "1.0", "1e-07", "1e+16", "123.25", "-0.0", "nan", "0.1", "1e-04", "-2.5e-05"}
	for i, w := range want {
		if g := string(y.Strings[i]); g != w {
			t.Errorf("float->string %d: %q, want %q", i, g, w)
		}
	}
	h := ir.FromFloat64s(ir.Float16, []int64{2}, []float64{0.1, 1000})
	y = mustRun(t, 13, "Cast", []*ir.Attribute{to(ir.String)}, h)
	if g := string(y.Strings[0]) + " " + string(y.Strings[1]); g != "0.1 1000.0" {
		t.Errorf("float16->string: %q, want the shortest half forms \"0.1 1000.0\"", g)
	}
	y = mustRun(t, 13, "Cast", []*ir.Attribute{to(ir.String)}, s)
	if g := string(y.Strings[1]); g != "hello" {
		t.Errorf("string->string: %q", g)
	}
	b := ints(ir.Bool, []int64{2}, 1, 0)
	y = mustRun(t, 13, "Cast", []*ir.Attribute{to(ir.String)}, b)
	if g := string(y.Strings[0]) + string(y.Strings[1]); g != "TrueFalse" {
		t.Errorf("bool->string: %q", g)
	}
}

func TestCastErrors(t *testing.T) {
	x := f32([]int64{1}, 1)
	wantErr(t, "'to' is required", 13, "Cast", nil, x)
	wantErr(t, "cannot cast to", 13, "Cast", []*ir.Attribute{to(999)}, x)
	wantErr(t, "cannot cast to", 13, "Cast", []*ir.Attribute{to(ir.Complex64)}, x)
	wantErr(t, "missing", 13, "Cast", []*ir.Attribute{to(ir.Int8)}, nil)
	bad := &ir.Tensor{DType: ir.Float32, Dims: []int64{3}, Data: make([]byte, 4)}
	wantErr(t, "needs 12 bytes", 13, "Cast", []*ir.Attribute{to(ir.Int8)}, bad)
	wantErr(t, "target_type", 15, "CastLike", nil, x, nil)
}

func TestCastLike(t *testing.T) {
	like := ir.NewTensor(ir.Float16, []int64{0})
	y := mustRun(t, 15, "CastLike", nil, ints(ir.Int32, []int64{2}, 3, -70000), like)
	checkFloats(t, "int32->float16 like", y, ir.Float16, []int64{2}, 3, math.Inf(-1))
	y = mustRun(t, 19, "CastLike", []*ir.Attribute{aInt("saturate", 0)}, f32([]int64{1}, 1e6), ir.NewTensor(ir.Float8E4M3FNUZ, nil))
	checkCodes(t, "castlike saturate=0", y, 0x80)
}

func TestCastInfer(t *testing.T) {
	n := &ir.Node{Name: "node1", OpType: "Cast", Attrs: []*ir.Attribute{to(ir.Int32)}, Inputs: []string{"x"}, Outputs: []string{"y"}}
	in := []*ir.Type{ir.TensorType(ir.Int64, ir.Shape{ir.D(3)})}
	val := []ir.Shape{{ir.Sym("batch"), ir.D(3), ir.D(224)}}
	c := ops.NewInferCtx(n, 13, in, []*ir.Tensor{nil}, val)
	if err := castInfer(c); err != nil {
		t.Fatal(err)
	}
	if got := c.Out[0].String(); got != "int32[3]" {
		t.Errorf("type %s, want int32[3]", got)
	}
	if !c.OutValue[0].Equal(val[0]) {
		t.Errorf("symbolic value %v lost: %v", val[0], c.OutValue[0])
	}
	n = &ir.Node{Name: "node1", OpType: "CastLike", Inputs: []string{"x", "l"}, Outputs: []string{"y"}}
	in = []*ir.Type{ir.TensorType(ir.Float32, ir.Shape{ir.Sym("n"), ir.D(2)}), ir.TensorType(ir.Float16, ir.Shape{ir.D(0)})}
	c = ops.NewInferCtx(n, 15, in, make([]*ir.Tensor, 2), make([]ir.Shape, 2))
	if err := castLikeInfer(c); err != nil {
		t.Fatal(err)
	}
	if got := c.Out[0].String(); got != "float16[n,2]" {
		t.Errorf("type %s, want float16[n,2]", got)
	}
}
