package arith

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

// call runs op at opset on the inputs (nil for an absent optional input)
// through the registry, then checks that inference (with every input's
// type and value known) predicts the output's dtype and dims.
func call(op string, opset int64, attrs []*ir.Attribute, in ...*ir.Tensor) (*ir.Tensor, error) {
	impl, err := ops.Lookup("", op, opset)
	if err != nil {
		return nil, err
	}
	n := &ir.Node{Name: "n", OpType: op, Outputs: []string{"y"}, Attrs: attrs}
	types := make([]*ir.Type, len(in))
	for i, t := range in {
		name := ""
		if t != nil {
			name = fmt.Sprintf("x%d", i)
			types[i] = t.Type()
		}
		n.Inputs = append(n.Inputs, name)
	}
	c := ops.NewCtx(n, opset)
	outs, err := impl.Run(c, in)
	if aerr := c.Err(); aerr != nil {
		return nil, aerr
	}
	if err != nil {
		return nil, err
	}
	if len(outs) != 1 || outs[0] == nil {
		return nil, fmt.Errorf("kernel returned %d outputs", len(outs))
	}
	out := outs[0]
	if err := out.Check(); err != nil {
		return nil, fmt.Errorf("kernel output: %v", err)
	}
	ic := ops.NewInferCtx(n, opset, types, in, nil)
	if err := impl.Infer(ic); err != nil {
		return nil, fmt.Errorf("inference failed where the kernel ran: %v", err)
	}
	if got, want := ic.Out[0], out.Type(); got == nil || got.DType != want.DType || !got.HasShape || !got.Shape.Equal(want.Shape) {
		return nil, fmt.Errorf("inference says %v, the kernel made %v", got, want)
	}
	return out, nil
}

func mustCall(t *testing.T, op string, opset int64, attrs []*ir.Attribute, in ...*ir.Tensor) *ir.Tensor {
	t.Helper()
	out, err := call(op, opset, attrs, in...)
	if err != nil {
		t.Fatalf("%s: %v", op, err)
	}
	return out
}

// wantErr checks that the op fails with a message naming the node and
// containing each fragment.
func wantErr(t *testing.T, op string, opset int64, attrs []*ir.Attribute, frag string, in ...*ir.Tensor) {
	t.Helper()
	_, err := call(op, opset, attrs, in...)
	if err == nil {
		t.Fatalf("%s: no error, want one containing %q", op, frag)
	}
	if !strings.Contains(err.Error(), `node "n"`) || !strings.Contains(err.Error(), frag) {
		t.Fatalf("%s: error %q should name the node and contain %q", op, err, frag)
	}
}

func f32(dims []int64, v ...float64) *ir.Tensor { return ir.FromFloat64s(ir.Float32, dims, v) }
func f64(dims []int64, v ...float64) *ir.Tensor { return ir.FromFloat64s(ir.Float64, dims, v) }
func i64(dims []int64, v ...int64) *ir.Tensor   { return ir.FromInt64s(ir.Int64, dims, v) }
func ints(dt ir.DType, dims []int64, v ...int64) *ir.Tensor {
	return ir.FromInt64s(dt, dims, v)
}

func u64(dims []int64, v ...uint64) *ir.Tensor {
	t := ir.NewTensor(ir.Uint64, dims)
	copy(t.U64(), v)
	return t
}

func bools(dims []int64, v ...bool) *ir.Tensor {
	t := ir.NewTensor(ir.Bool, dims)
	for i, b := range v {
		t.Data[i] = uint8(truth[uint64](b))
	}
	return t
}

func strs(dims []int64, v ...string) *ir.Tensor {
	t := ir.NewTensor(ir.String, dims)
	for i, s := range v {
		t.Strings[i] = []byte(s)
	}
	return t
}

func dims(d ...int64) []int64 { return d }

func aInt(name string, v int64) *ir.Attribute {
	return &ir.Attribute{Name: name, Type: ir.AttrInt, I: v}
}
func aFloat(name string, v float32) *ir.Attribute {
	return &ir.Attribute{Name: name, Type: ir.AttrFloat, F: v}
}
func aStr(name, v string) *ir.Attribute {
	return &ir.Attribute{Name: name, Type: ir.AttrString, S: []byte(v)}
}
func aInts(name string, v ...int64) *ir.Attribute {
	return &ir.Attribute{Name: name, Type: ir.AttrInts, Ints: v}
}
func attrs(a ...*ir.Attribute) []*ir.Attribute { return a }

// checkFloats compares a float output with float64 expectations rounded to
// the output dtype: within 1e-6 relative for float32 (the kernel rounds once
// from float64), 1e-12 for float64, exact for NaN and infinities.
func checkFloats(t *testing.T, got *ir.Tensor, dt ir.DType, d []int64, want ...float64) {
	t.Helper()
	if got.DType != dt || !equalDims(got.Dims, d) {
		t.Fatalf("got %s%v, want %s%v", got.DType, got.Dims, dt, d)
	}
	tol := 1e-6
	if dt == ir.Float64 {
		tol = 1e-12
	}
	for i, w := range want {
		g := got.Float64At(int64(i))
		switch {
		case math.IsNaN(w) || math.IsInf(w, 0):
			if !(math.IsNaN(w) && math.IsNaN(g)) && g != w {
				t.Errorf("element %d: %v, want %v", i, g, w)
			}
		case math.Abs(g-w) > tol*math.Max(1, math.Abs(w)):
			t.Errorf("element %d: %v, want %v", i, g, w)
		}
	}
}

// checkInts compares an integer or bool output exactly.
func checkInts(t *testing.T, got *ir.Tensor, dt ir.DType, d []int64, want ...int64) {
	t.Helper()
	if got.DType != dt || !equalDims(got.Dims, d) {
		t.Fatalf("got %s%v, want %s%v", got.DType, got.Dims, dt, d)
	}
	if int64(len(want)) != got.Len() {
		t.Fatalf("got %d elements, want %d", got.Len(), len(want))
	}
	for i, w := range want {
		if g := got.Int64At(int64(i)); g != w {
			t.Errorf("element %d: %d, want %d", i, g, w)
		}
	}
}

func checkU64(t *testing.T, got *ir.Tensor, d []int64, want ...uint64) {
	t.Helper()
	if got.DType != ir.Uint64 || !equalDims(got.Dims, d) {
		t.Fatalf("got %s%v, want uint64%v", got.DType, got.Dims, d)
	}
	for i, w := range want {
		if g := got.U64()[i]; g != w {
			t.Errorf("element %d: %d, want %d", i, g, w)
		}
	}
}

var (
	inf  = math.Inf(1)
	qnan = math.NaN()
)
