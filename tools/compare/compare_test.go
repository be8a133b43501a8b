package compare

import (
	"math"
	"strings"
	"testing"

	"github.com/kilnml/kiln/ir"
)

func f32(vals ...float64) *ir.Tensor {
	return ir.FromFloat64s(ir.Float32, []int64{int64(len(vals))}, vals)
}

func TestAllows(t *testing.T) {
	tol := ONNXTest
	nan, inf := math.NaN(), math.Inf(1)
	cases := []struct {
		a, e float64
		ok   bool
	}{
		{1, 1, true},
		{1.0009, 1, true},  // within rtol
		{1.0011, 1, false}, // outside rtol
		{0, 1e-7, true},    // within atol
		{0, 2e-7, false},
		{-1000.9, -1000, true}, // rtol scales with |expected|
		{nan, nan, true},
		{nan, 1, false},
		{1, nan, false},
		{inf, inf, true},
		{-inf, inf, false},
		{1e300, inf, false},
	}
	for _, c := range cases {
		if got := tol.Allows(c.a, c.e); got != c.ok {
			t.Errorf("Allows(%v, %v) = %v, want %v", c.a, c.e, got, c.ok)
		}
	}
}

func TestTensorsFloat(t *testing.T) {
	r := Tensors("y", f32(1, 2.001, 0, math.NaN()), f32(1, 2, 0, math.NaN()), ONNXTest)
	if !r.Pass() || r.N != 4 {
		t.Fatalf("got %v", r)
	}
	if math.Abs(r.MaxAbs-0.001) > 1e-6 || math.Abs(r.MaxRel-0.0005) > 1e-6 {
		t.Errorf("max abs %v, max rel %v", r.MaxAbs, r.MaxRel)
	}
	r = Tensors("y", f32(1, 3, 0, 5), f32(1, 2, 0, 4), ONNXTest)
	if r.Pass() || r.Mismatches != 2 || r.First != 1 || r.Actual != "3" || r.Expected != "2" {
		t.Fatalf("got %+v", r)
	}
	if r.MaxAbs != 1 || r.MaxRel != 0.5 {
		t.Errorf("max abs %v, max rel %v", r.MaxAbs, r.MaxRel)
	}
	if s := r.String(); !strings.Contains(s, "FAIL") || !strings.Contains(s, "2 of 4") {
		t.Errorf("String: %s", s)
	}
	// A looser tolerance passes the same data.
	if r := Tensors("y", f32(1, 3, 0, 5), f32(1, 2, 0, 4), Tolerance{ATol: 1}); !r.Pass() {
		t.Errorf("atol 1: %v", r)
	}
}

func TestTensorsExactTypes(t *testing.T) {
	a := ir.FromInt64s(ir.Int64, []int64{3}, []int64{1, 2, 3})
	b := ir.FromInt64s(ir.Int64, []int64{3}, []int64{1, 2, 4})
	if r := Tensors("i", a, a.Clone(), Tolerance{ATol: 10, RTol: 10}); !r.Pass() {
		t.Errorf("equal ints: %v", r)
	}
	if r := Tensors("i", a, b, Tolerance{ATol: 10, RTol: 10}); r.Pass() || r.First != 2 {
		t.Errorf("ints compare exactly whatever the tolerance: %v", r)
	}
	u1 := ir.NewTensor(ir.Uint64, []int64{1})
	u2 := ir.NewTensor(ir.Uint64, []int64{1})
	u1.U64()[0], u2.U64()[0] = math.MaxUint64, math.MaxUint64-1
	if r := Tensors("u", u1, u2, ONNXTest); r.Pass() || r.Actual != "18446744073709551615" {
		t.Errorf("uint64: %v", r)
	}
	s1 := &ir.Tensor{DType: ir.String, Dims: []int64{2}, Strings: [][]byte{[]byte("a"), []byte("b")}}
	s2 := &ir.Tensor{DType: ir.String, Dims: []int64{2}, Strings: [][]byte{[]byte("a"), []byte("c")}}
	if r := Tensors("s", s1, s2, ONNXTest); r.Pass() || r.First != 1 {
		t.Errorf("strings: %v", r)
	}
}

func TestTensorsStructural(t *testing.T) {
	if r := Tensors("y", f32(1, 2), f32(1, 2, 3), ONNXTest); r.Pass() || !strings.Contains(r.Problem, "shape") {
		t.Errorf("shape: %v", r)
	}
	i := ir.FromInt64s(ir.Int32, []int64{2}, []int64{1, 2})
	if r := Tensors("y", f32(1, 2), i, ONNXTest); r.Pass() || !strings.Contains(r.Problem, "dtype float32, expected int32") {
		t.Errorf("dtype: %v", r)
	}
}
