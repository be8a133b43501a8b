package layout

import (
	"fmt"
	"strings"
	"testing"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

// attr builders
func aInt(name string, v int64) *ir.Attribute {
	return &ir.Attribute{Name: name, Type: ir.AttrInt, I: v}
}
func aInts(name string, v ...int64) *ir.Attribute {
	return &ir.Attribute{Name: name, Type: ir.AttrInts, Ints: v}
}
func aFloat(name string, v float32) *ir.Attribute {
	return &ir.Attribute{Name: name, Type: ir.AttrFloat, F: v}
}
func aStr(name, v string) *ir.Attribute {
	return &ir.Attribute{Name: name, Type: ir.AttrString, S: []byte(v)}
}
func aTensor(name string, t *ir.Tensor) *ir.Attribute {
	return &ir.Attribute{Name: name, Type: ir.AttrTensor, T: t}
}

// mkNode makes a node named "n" with inputs in0..in(k-1) (empty where the
// input is nil) and nOut outputs.
func mkNode(op string, in []*ir.Tensor, nOut int, attrs ...*ir.Attribute) *ir.Node {
	n := &ir.Node{Name: "n", OpType: op, Attrs: attrs}
	for i, t := range in {
		name := ""
		if t != nil {
			name = fmt.Sprintf("in%d", i)
		}
		n.Inputs = append(n.Inputs, name)
	}
	for k := 0; k < nOut; k++ {
		n.Outputs = append(n.Outputs, fmt.Sprintf("out%d", k))
	}
	return n
}

// runOp runs a registered op's kernel through the registry and checks
// that its inference agrees with what the kernel produced when every
// input is known.
func runOp(t *testing.T, op string, opset int64, nOut int, in []*ir.Tensor, attrs ...*ir.Attribute) ([]*ir.Tensor, error) {
	t.Helper()
	n := mkNode(op, in, nOut, attrs...)
	o, err := ops.Lookup("", op, opset)
	if err != nil {
		t.Fatal(err)
	}
	c := ops.NewCtx(n, opset)
	outs, err := o.Run(c, in)
	if err == nil {
		err = c.Err()
	}
	if err != nil {
		return nil, err
	}
	if len(outs) != nOut {
		t.Fatalf("%s: %d outputs, want %d", op, len(outs), nOut)
	}
	for k, o := range outs {
		if o == nil {
			t.Fatalf("%s: output %d is nil", op, k)
		}
		if err := o.Check(); err != nil {
			t.Fatalf("%s: output %d: %v", op, k, err)
		}
	}
	// Inference with every input's type and value known must agree.
	types := make([]*ir.Type, len(in))
	for i, x := range in {
		if x != nil {
			types[i] = x.Type()
		}
	}
	ic := ops.NewInferCtx(n, opset, types, in, make([]ir.Shape, len(in)))
	if err := o.Infer(ic); err != nil {
		t.Fatalf("%s: inference failed where the kernel ran: %v", op, err)
	}
	for k, o := range outs {
		got := ic.Out[k]
		if got == nil {
			t.Fatalf("%s: inference gave no type for output %d", op, k)
		}
		if got.DType != o.DType {
			t.Fatalf("%s: inferred %s for output %d, kernel made %s", op, got, k, o.DType)
		}
		if got.HasShape {
			if len(got.Shape) != o.Rank() {
				t.Fatalf("%s: inferred %s for output %d, kernel made %v", op, got, k, o.Dims)
			}
			for i, d := range got.Shape {
				if d.Known() && d.Value != o.Dims[i] {
					t.Fatalf("%s: inferred %s for output %d, kernel made %v", op, got, k, o.Dims)
				}
			}
		}
		if v := ic.OutValue[k]; v != nil {
			if want := ops.ValueOf(o); want != nil && !v.Equal(want) {
				t.Fatalf("%s: inferred value %v for output %d, kernel made %v", op, v, k, want)
			}
		}
	}
	return outs, nil
}

// must runs an op that must succeed.
func must(t *testing.T, op string, opset int64, nOut int, in []*ir.Tensor, attrs ...*ir.Attribute) []*ir.Tensor {
	t.Helper()
	outs, err := runOp(t, op, opset, nOut, in, attrs...)
	if err != nil {
		t.Fatalf("%s: %v", op, err)
	}
	return outs
}

// mustFail runs an op that must fail with an error naming the node and containing want.
func mustFail(t *testing.T, want string, op string, opset int64, nOut int, in []*ir.Tensor, attrs ...*ir.Attribute) {
	t.Helper()
	_, err := runOp(t, op, opset, nOut, in, attrs...)
	if err == nil {
		t.Fatalf("%s: no error, want one containing %q", op, want)
	}
	if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), `"n"`) {
		t.Fatalf("%s: error %q should name the node and contain %q", op, err, want)
	}
}

func f32(dims []int64, v ...float32) *ir.Tensor { return ir.FromFloat32s(dims, v) }
func i64(dims []int64, v ...int64) *ir.Tensor   { return ir.FromInt64s(ir.Int64, dims, v) }
func vec(v ...int64) *ir.Tensor                 { return i64([]int64{int64(len(v))}, v...) }
func dims(d ...int64) []int64                   { return d }

// iota returns a float32 tensor 0, 1, 2, ... of the given dims.
func iota(d ...int64) *ir.Tensor {
	n, _ := ir.NumElements(d)
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(i)
	}
	return f32(d, v...)
}

func expectF32(t *testing.T, got *ir.Tensor, d []int64, want ...float32) {
	t.Helper()
	if got.DType != ir.Float32 || fmt.Sprint(got.Dims) != fmt.Sprint(d) {
		t.Fatalf("got %s%v, want float32%v", got.DType, got.Dims, d)
	}
	if fmt.Sprint(got.F32()) != fmt.Sprint(want) {
		t.Fatalf("got %v\nwant %v", got.F32(), want)
	}
}

func expectInts(t *testing.T, got *ir.Tensor, d []int64, want ...int64) {
	t.Helper()
	if fmt.Sprint(got.Dims) != fmt.Sprint(d) {
		t.Fatalf("got dims %v, want %v", got.Dims, d)
	}
	if fmt.Sprint(got.Int64s()) != fmt.Sprint(want) {
		t.Fatalf("got %v\nwant %v", got.Int64s(), want)
	}
}

// naiveGather is an independent reference: out[coord] = x[srcOf(coord)],
// computed with explicit coordinates.
func naiveGather(x *ir.Tensor, outDims []int64, srcOf func(c []int64) []int64) *ir.Tensor {
	out := ir.NewTensor(x.DType, outDims)
	n := out.Len()
	c := make([]int64, len(outDims))
	xs := ops.Strides(x.Dims)
	for o := int64(0); o < n; o++ {
		rem := o
		for k := len(outDims) - 1; k >= 0; k-- {
			c[k] = rem % outDims[k]
			rem /= outDims[k]
		}
		s := srcOf(c)
		flat := int64(0)
		for k := range s {
			flat += s[k] * xs[k]
		}
		out.SetFloat64At(o, x.Float64At(flat))
	}
	return out
}
