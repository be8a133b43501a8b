package ir

import (
	"math"
	"strings"
	"testing"
)

func TestDTypeTable(t *testing.T) {
	for _, c := range []struct {
		d     DType
		name  string
		bits  int
		bytes int64 // for 5 elements
	}{
		{Float32, "float32", 32, 20}, {Int4, "int4", 4, 3}, {Uint2, "uint2", 2, 2}, {Bool, "bool", 8, 5},
		{Float8E5M2FNUZ, "float8e5m2fnuz", 8, 5}, {BFloat16, "bfloat16", 16, 10},
	} {
		if c.d.String() != c.name || c.d.Bits() != c.bits || c.d.ByteSize(5) != c.bytes {
			t.Errorf("%v: %s %d %d", c.d, c.d.String(), c.d.Bits(), c.d.ByteSize(5))
		}
	}
	if d, err := ParseDType("FLOAT"); err != nil || d != Float32 {
		t.Error(d, err)
	}
	if Float32.ONNXName() != "FLOAT" || Float8E4M3FN.ONNXName() != "FLOAT8E4M3FN" {
		t.Error(Float32.ONNXName(), Float8E4M3FN.ONNXName())
	}
	if lo, hi := Int4.IntRange(); lo != -8 || hi != 7 {
		t.Error(lo, hi)
	}
	if _, err := ParseDType("float7"); err == nil {
		t.Error("float7 parsed")
	}
}

func TestTensorElements(t *testing.T) {
	x := NewTensor(Int4, []int64{5})
	for i, v := range []int64{-8, 7, -1, 0, 3} {
		x.SetInt64At(int64(i), v)
	}
	if got := x.Int64s(); got[0] != -8 || got[1] != 7 || got[2] != -1 || got[4] != 3 {
		t.Errorf("int4 %v", got)
	}
	if x.Data[0] != 0x78 { // low nibble first: -8 = 0x8, 7 = 0x7
		t.Errorf("packing %#x", x.Data[0])
	}
	h := NewTensor(Float16, []int64{3})
	h.SetFloat64At(0, 1.0/3)
	h.SetFloat64At(1, 70000) // overflows half
	h.SetFloat64At(2, math.Copysign(0, -1))
	if v := h.Float64At(0); math.Abs(v-1.0/3) > 1e-3 || !math.IsInf(h.Float64At(1), 1) || !math.Signbit(h.Float64At(2)) {
		t.Errorf("float16 %v", h.Float64s())
	}
	i8 := NewTensor(Int8, []int64{3})
	i8.SetFloat64At(0, 2.5) // half to even
	i8.SetFloat64At(1, 300) // saturates
	i8.SetFloat64At(2, math.NaN())
	if got := i8.I8(); got[0] != 2 || got[1] != 127 || got[2] != 0 {
		t.Errorf("int8 %v", got)
	}
	if err := (&Tensor{Name: "w", DType: Float32, Dims: []int64{2, 3}, Data: make([]byte, 20)}).Check(); err == nil || !strings.Contains(err.Error(), `"w"`) {
		t.Errorf("check: %v", err)
	}
	if _, err := NumElements([]int64{1 << 40, 1 << 40}); err == nil {
		t.Error("overflow not caught")
	}
	if _, err := NumElements([]int64{2, -1}); err == nil {
		t.Error("negative dim not caught")
	}
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "float32") {
			t.Errorf("wrong view: %v", r)
		}
	}()
	_ = i8.F32()
}

func TestShapes(t *testing.T) {
	s, err := ParseShape("batch,3,224,224")
	if err != nil || s.String() != "[batch,3,224,224]" {
		t.Errorf("%v %v", s, err)
	}
	if _, ok := s.Concrete(); ok {
		t.Error("symbolic shape concrete")
	}
	if d, ok := ShapeOf([]int64{1, 2}).Concrete(); !ok || d[1] != 2 {
		t.Error(d)
	}
	if _, err := ParseShape("1x-2"); err == nil {
		t.Error("negative accepted")
	}
}

func TestVerifyReportsEveryProblem(t *testing.T) {
	m := &Model{IRVersion: 8, Opsets: []OpsetImport{{Version: 17}}, Graph: &Graph{
		Name:   "g",
		Inputs: []*ValueInfo{{Name: "x"}},
		Nodes: []*Node{
			{Name: "a", OpType: "Relu", Inputs: []string{"x"}, Outputs: []string{"y"}},
			{Name: "b", OpType: "Relu", Inputs: []string{"ghost"}, Outputs: []string{"y"}},
			{Name: "c", OpType: "", Inputs: []string{"y"}, Outputs: []string{"z"}},
		},
		Outputs:      []*ValueInfo{{Name: "z"}, {Name: "w"}},
		Initializers: []*Tensor{{Name: "bad", DType: Float32, Dims: []int64{4}, Data: make([]byte, 3)}},
	}}
	err := m.Verify()
	for _, want := range []string{`"ghost" is not a graph input`, `writes "y", which is already defined`, "has no op type", `output "w" is produced by no node`, `needs 16 bytes, has 3`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in %v", want, err)
		}
	}
}

func TestCloneIsDeep(t *testing.T) {
	m := &Model{Opsets: []OpsetImport{{Version: 13}}, Graph: &Graph{Nodes: []*Node{{Name: "n", OpType: "Relu", Inputs: []string{"x"}, Outputs: []string{"y"},
		Attrs: []*Attribute{{Name: "ints", Type: AttrInts, Ints: []int64{1, 2}}}}}}}
	c := m.Clone()
	c.Graph.Nodes[0].Inputs[0] = "changed"
	c.Graph.Nodes[0].Attrs[0].Ints[0] = 9
	c.Opsets[0].Version = 19
	if m.Graph.Nodes[0].Inputs[0] != "x" || m.Graph.Nodes[0].Attrs[0].Ints[0] != 1 || m.Opsets[0].Version != 13 {
		t.Error("clone shares structure with the original")
	}
}
