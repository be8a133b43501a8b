package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

// call runs op at opset through the registry with nOut outputs, then checks
// that inference (every input's type and value known) predicts the dtype
// and dims of every output the kernel made.
func call(op string, opset int64, nOut int, attrs []*ir.Attribute, in ...*ir.Tensor) ([]*ir.Tensor, error) {
	impl, err := ops.Lookup("", op, opset)
	if err != nil {
		return nil, err
	}
	n := &ir.Node{Name: "n", OpType: op, Attrs: attrs}
	for k := 0; k < nOut; k++ {
		n.Outputs = append(n.Outputs, fmt.Sprintf("y%d", k))
	}
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
	if len(outs) < 1 || len(outs) > nOut || outs[0] == nil {
		return nil, fmt.Errorf("kernel returned %d outputs for %d", len(outs), nOut)
	}
	ic := ops.NewInferCtx(n, opset, types, in, nil)
	if err := impl.Infer(ic); err != nil {
		return nil, fmt.Errorf("inference failed where the kernel ran: %v", err)
	}
	for k, out := range outs {
		if out == nil {
			continue
		}
		if err := out.Check(); err != nil {
			return nil, fmt.Errorf("kernel output %d: %v", k, err)
		}
		got, want := ic.Out[k], out.Type()
		if got == nil || got.DType != want.DType || !got.HasShape || !got.Shape.Equal(want.Shape) {
			return nil, fmt.Errorf("output %d: inference says %v, the kernel made %v", k, got, want)
		}
	}
	return outs, nil
}

func mustCall(t *testing.T, op string, opset int64, attrs []*ir.Attribute, in ...*ir.Tensor) *ir.Tensor {
	t.Helper()
	outs, err := call(op, opset, 1, attrs, in...)
	if err != nil {
		t.Fatalf("%s: %v", op, err)
	}
	return outs[0]
}

// wantErr checks that the op fails, without panicking, with a message that
// names the node and contains frag.
func wantErr(t *testing.T, op string, opset int64, attrs []*ir.Attribute, frag string, in ...*ir.Tensor) {
	t.Helper()
	var err error
	func() {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("panic: %v", r)
				t.Fatalf("%s panicked: %v", op, r)
			}
		}()
		_, err = call(op, opset, 1, attrs, in...)
	}()
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
func dims(d ...int64) []int64                   { return d }

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

// randT makes a float64 tensor of uniform values in [-1, 1).
func randT(r *rand.Rand, d ...int64) *ir.Tensor {
	n := prod(d)
	v := make([]float64, n)
	for i := range v {
		v[i] = r.Float64()*2 - 1
	}
	return ir.FromFloat64s(ir.Float64, d, v)
}

// near checks got against want elementwise: |got-want| <= tol·(1+|want|).
func near(t *testing.T, what string, got *ir.Tensor, wantDims []int64, want []float64, tol float64) {
	t.Helper()
	if !equalDims(got.Dims, wantDims) {
		t.Fatalf("%s: dims %v, want %v", what, got.Dims, wantDims)
	}
	g := got.Float64s()
	if len(g) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(g), len(want))
	}
	for i := range g {
		if math.IsNaN(want[i]) && math.IsNaN(g[i]) {
			continue
		}
		if !(math.Abs(g[i]-want[i]) <= tol*(1+math.Abs(want[i]))) {
			t.Fatalf("%s: element %d is %v, want %v (dims %v)", what, i, g[i], want[i], wantDims)
		}
	}
}
