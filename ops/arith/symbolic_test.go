package arith

import (
	"testing"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

// inferValue runs op's inference on inputs given by value (nil values are
// unknown) and returns the output's value.
func inferValue(t *testing.T, op string, opset int64, in []*ir.Type, cst []*ir.Tensor, val []ir.Shape) ir.Shape {
	t.Helper()
	impl, err := ops.Lookup("", op, opset)
	if err != nil {
		t.Fatal(err)
	}
	n := &ir.Node{Name: "n", OpType: op, Outputs: []string{"y"}}
	for range in {
		n.Inputs = append(n.Inputs, "x")
	}
	c := ops.NewInferCtx(n, opset, in, cst, val)
	if err := impl.Infer(c); err != nil {
		t.Fatal(err)
	}
	return c.OutValue[0]
}

func vec(dt ir.DType, n int64) *ir.Type { return ir.TensorType(dt, ir.Shape{ir.D(n)}) }

// PyTorch exports Expand(x, shape) as Where(Equal(shape, Mul(ConstantOfShape(1), -1)), ones, shape);
// the batch symbol must come through.
func TestSymbolicExpandPattern(t *testing.T) {
	shape := ir.Shape{ir.Sym("batch"), ir.D(128)}
	ones := ir.Shape{ir.D(1), ir.D(1)}
	neg := inferValue(t, "Mul", 14, []*ir.Type{vec(ir.Int64, 2), ir.TensorType(ir.Int64, ir.Shape{})},
		[]*ir.Tensor{nil, i64(nil, -1)}, []ir.Shape{ones, nil})
	if neg.String() != "[-1,-1]" {
		t.Fatalf("Mul value %v, want [-1,-1]", neg)
	}
	eq := inferValue(t, "Equal", 13, []*ir.Type{vec(ir.Int64, 2), vec(ir.Int64, 2)}, nil, []ir.Shape{shape, neg})
	if eq.String() != "[0,0]" {
		t.Fatalf("Equal value %v, want [0,0]", eq)
	}
	w := inferValue(t, "Where", 16, []*ir.Type{vec(ir.Bool, 2), vec(ir.Int64, 2), vec(ir.Int64, 2)}, nil, []ir.Shape{eq, ones, shape})
	if w.String() != "[batch,128]" {
		t.Fatalf("Where value %v, want [batch,128]", w)
	}
	// With a -1 in the shape the condition picks the 1.
	w = inferValue(t, "Where", 16, []*ir.Type{vec(ir.Bool, 2), vec(ir.Int64, 2), vec(ir.Int64, 2)},
		[]*ir.Tensor{bools(dims(2), false, true)}, []ir.Shape{nil, ones, {ir.Sym("batch"), ops.ValueDim(-1)}})
	if w.String() != "[batch,1]" {
		t.Fatalf("Where value %v, want [batch,1]", w)
	}
}

func TestSymbolicArithmetic(t *testing.T) {
	b, s := ir.Sym("batch"), ir.Sym("seq")
	scalar := ir.TensorType(ir.Int64, ir.Shape{})
	cases := []struct {
		op   string
		a, b ir.Shape
		want string
	}{
		{"Add", ir.Shape{b, ir.D(3)}, ir.Shape{ir.D(0), ir.D(4)}, "[batch,7]"},
		{"Sub", ir.Shape{b, s}, ir.Shape{b, ir.D(0)}, "[0,seq]"},
		{"Mul", ir.Shape{b, s}, ir.Shape{ir.D(1), ir.D(2)}, "[batch,?]"},
		{"Div", ir.Shape{b, ir.D(256)}, ir.Shape{b, ir.D(4)}, "[1,64]"},
		{"Div", ir.Shape{ir.D(7)}, ir.Shape{ir.D(0)}, "[?]"}, // no panic on a zero divisor
		{"Max", ir.Shape{b, ops.ValueDim(-1)}, ir.Shape{ir.D(0), ir.D(5)}, "[batch,5]"},
		{"Min", ir.Shape{b, s}, ir.Shape{ir.D(0), s}, "[0,seq]"},
		{"Equal", ir.Shape{b, s}, ir.Shape{b, b}, "[1,?]"},
		{"Less", ir.Shape{ir.D(2), ops.ValueDim(-3)}, ir.Shape{ir.D(3), ir.D(-3 + 3)}, "[1,1]"},
	}
	for _, c := range cases {
		got := inferValue(t, c.op, 14, []*ir.Type{vec(ir.Int64, int64(len(c.a))), vec(ir.Int64, int64(len(c.b)))}, nil, []ir.Shape{c.a, c.b})
		if got.String() != c.want {
			t.Errorf("%s(%v, %v) = %v, want %s", c.op, c.a, c.b, got, c.want)
		}
	}
	// A scalar broadcasts; a value is only tracked for rank <= 1 integer outputs.
	got := inferValue(t, "Mul", 14, []*ir.Type{vec(ir.Int64, 3), scalar}, nil, []ir.Shape{{b, ir.D(2), ir.D(3)}, {ir.D(2)}})
	if got.String() != "[?,4,6]" {
		t.Errorf("Mul by scalar: %v", got)
	}
	if v := inferValue(t, "Add", 14, []*ir.Type{vec(ir.Float32, 1), vec(ir.Float32, 1)}, []*ir.Tensor{f32(dims(1), 1), f32(dims(1), 2)}, nil); v != nil {
		t.Errorf("float Add got a value %v", v)
	}
	// int32 values wrap as the kernel does.
	if v := inferValue(t, "Add", 14, []*ir.Type{vec(ir.Int32, 1), vec(ir.Int32, 1)}, nil, []ir.Shape{{ir.D(1<<31 - 1)}, {ir.D(1)}}); v.String() != "[-2147483648]" {
		t.Errorf("int32 wrap: %v", v)
	}
	// Variadic ops fold.
	if v := inferValue(t, "Max", 13, []*ir.Type{vec(ir.Int64, 2), vec(ir.Int64, 2), vec(ir.Int64, 1)}, nil,
		[]ir.Shape{{b, ir.D(1)}, {b, ir.D(7)}, {ir.D(0)}}); v.String() != "[batch,7]" {
		t.Errorf("Max fold: %v", v)
	}
}

// ops.BroadcastInfer with no indices must look at each node's own inputs
// (it once kept the first node's input list for every later node).
func TestBroadcastInferPerNode(t *testing.T) {
	f := ops.BroadcastInfer(ir.Undefined)
	for _, n := range []int{2, 3} {
		node := &ir.Node{Name: "n", OpType: "X", Outputs: []string{"y"}}
		var types []*ir.Type
		for i := 0; i < n; i++ {
			node.Inputs = append(node.Inputs, "x")
			types = append(types, ir.TensorType(ir.Float32, ir.Shape{ir.D(int64(1 + i*(i-1)))}))
		}
		c := ops.NewInferCtx(node, 13, types, nil, nil)
		if err := f(c); err != nil {
			t.Fatal(err)
		}
		want := map[int]string{2: "float32[1]", 3: "float32[3]"}[n]
		if c.Out[0].String() != want {
			t.Fatalf("%d inputs: %v, want %s", n, c.Out[0], want)
		}
	}
}

// Ops on known (but not constant) values are evaluated at inference time.
func TestFoldKnownValues(t *testing.T) {
	v := inferValue(t, "ReduceProd", 18, []*ir.Type{vec(ir.Int64, 3)}, nil, []ir.Shape{{ir.D(3), ir.D(224), ir.D(224)}})
	if v.String() != "[150528]" {
		t.Errorf("ReduceProd value %v, want [150528]", v)
	}
	v = inferValue(t, "Neg", 13, []*ir.Type{ir.TensorType(ir.Int64, ir.Shape{})}, nil, []ir.Shape{{ir.D(5)}})
	if v.String() != "[-5]" {
		t.Errorf("Neg value %v, want [-5]", v)
	}
	// With constant bounds.
	v = inferValue(t, "Clip", 13, []*ir.Type{vec(ir.Int64, 2), ir.TensorType(ir.Int64, ir.Shape{})}, []*ir.Tensor{nil, i64(nil, 4)}, []ir.Shape{{ir.D(3), ir.D(9)}})
	if v.String() != "[4,9]" {
		t.Errorf("Clip value %v, want [4,9]", v)
	}
	// A symbol stops folding; nothing is invented.
	if v = inferValue(t, "ReduceProd", 18, []*ir.Type{vec(ir.Int64, 2)}, nil, []ir.Shape{{ir.Sym("b"), ir.D(3)}}); v != nil {
		t.Errorf("ReduceProd of a symbol: %v", v)
	}
}
