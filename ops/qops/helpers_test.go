package qops

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

func aInt(name string, v int64) *ir.Attribute {
	return &ir.Attribute{Name: name, Type: ir.AttrInt, I: v}
}
func aInts(name string, v ...int64) *ir.Attribute {
	return &ir.Attribute{Name: name, Type: ir.AttrInts, Ints: v}
}
func aStr(name, v string) *ir.Attribute {
	return &ir.Attribute{Name: name, Type: ir.AttrString, S: []byte(v)}
}

// run calls op's kernel at opset with the inputs (nil = absent).
func run(opset int64, op string, attrs []*ir.Attribute, in ...*ir.Tensor) ([]*ir.Tensor, error) {
	n := &ir.Node{Name: "node1", OpType: op, Attrs: attrs, Outputs: []string{"y"}}
	if op == "DynamicQuantizeLinear" {
		n.Outputs = []string{"y", "y_scale", "y_zero_point"}
	}
	for i, t := range in {
		name := ""
		if t != nil {
			name = fmt.Sprintf("in%d", i)
		}
		n.Inputs = append(n.Inputs, name)
	}
	o, err := ops.Lookup("", op, opset)
	if err != nil {
		return nil, err
	}
	c := ops.NewCtx(n, opset)
	outs, err := o.Run(c, in)
	if err == nil {
		err = c.Err()
	}
	return outs, err
}

// mustRun fails the test on error and returns output 0.
func mustRun(t *testing.T, opset int64, op string, attrs []*ir.Attribute, in ...*ir.Tensor) *ir.Tensor {
	t.Helper()
	outs, err := run(opset, op, attrs, in...)
	if err != nil {
		t.Fatalf("%s: %v", op, err)
	}
	if err := outs[0].Check(); err != nil {
		t.Fatalf("%s: bad output: %v", op, err)
	}
	return outs[0]
}

// wantErr checks that the op fails with an error naming the node and containing frag.
func wantErr(t *testing.T, frag string, opset int64, op string, attrs []*ir.Attribute, in ...*ir.Tensor) {
	t.Helper()
	_, err := run(opset, op, attrs, in...)
	if err == nil {
		t.Fatalf("%s: no error, want one containing %q", op, frag)
	}
	if !strings.Contains(err.Error(), "node1") || !strings.Contains(err.Error(), frag) {
		t.Fatalf("%s: error %q should name the node and contain %q", op, err, frag)
	}
}

func f32(dims []int64, v ...float64) *ir.Tensor { return ir.FromFloat64s(ir.Float32, dims, v) }
func ints(dt ir.DType, dims []int64, v ...int64) *ir.Tensor {
	return ir.FromInt64s(dt, dims, v)
}

func checkInts(t *testing.T, what string, got *ir.Tensor, dt ir.DType, dims []int64, want ...int64) {
	t.Helper()
	if got.DType != dt || !sameDims(got.Dims, dims) {
		t.Fatalf("%s: got %v%v, want %v%v", what, got.DType, got.Dims, dt, dims)
	}
	for i, w := range want {
		if g := got.Int64At(int64(i)); g != w {
			t.Fatalf("%s: element %d = %d, want %d", what, i, g, w)
		}
	}
}

func checkFloats(t *testing.T, what string, got *ir.Tensor, dt ir.DType, dims []int64, want ...float64) {
	t.Helper()
	if got.DType != dt || !sameDims(got.Dims, dims) {
		t.Fatalf("%s: got %v%v, want %v%v", what, got.DType, got.Dims, dt, dims)
	}
	for i, w := range want {
		g := got.Float64At(int64(i))
		if !(g == w && math.Signbit(g) == math.Signbit(w)) && !(math.IsNaN(g) && math.IsNaN(w)) {
			t.Fatalf("%s: element %d = %v, want %v", what, i, g, w)
		}
	}
}

func checkCodes(t *testing.T, what string, got *ir.Tensor, want ...uint64) {
	t.Helper()
	for i, w := range want {
		if g := rawCode(got, int64(i)); g != w {
			t.Fatalf("%s: element %d has code %#x, want %#x", what, i, g, w)
		}
	}
}
