package qdq

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
	_ "github.com/kilnml/kiln/ops/all"
)

func randT(dims []int64, seed uint64) *ir.Tensor {
	r := rand.New(rand.NewPCG(seed, 1))
	t := ir.NewTensor(ir.Float32, dims)
	for i := range t.F32() {
		t.F32()[i] = float32(r.NormFloat64())
	}
	return t
}

// x[N,2,5,5] -> Conv(3x3) -> Relu -> Flatten -> Gemm(transB) -> y
func convNet(opset int64) *ir.Model {
	w := randT([]int64{4, 2, 3, 3}, 1)
	w.Name = "conv.w"
	b := randT([]int64{4}, 2)
	b.Name = "conv.b"
	fw := randT([]int64{3, 36}, 3)
	fw.Name = "fc.w"
	return &ir.Model{IRVersion: 8, Opsets: []ir.OpsetImport{{Version: opset}}, Graph: &ir.Graph{
		Name:         "net",
		Inputs:       []*ir.ValueInfo{{Name: "x", Type: ir.TensorType(ir.Float32, ir.Shape{ir.Sym("N"), ir.D(2), ir.D(5), ir.D(5)})}},
		Initializers: []*ir.Tensor{w, b, fw},
		Nodes: []*ir.Node{
			{Name: "conv", OpType: "Conv", Inputs: []string{"x", "conv.w", "conv.b"}, Outputs: []string{"c"}},
			{Name: "relu", OpType: "Relu", Inputs: []string{"c"}, Outputs: []string{"r"}},
			{Name: "flat", OpType: "Flatten", Inputs: []string{"r"}, Outputs: []string{"f"}},
			{Name: "fc", OpType: "Gemm", Inputs: []string{"f", "fc.w"}, Outputs: []string{"y"}, Attrs: []*ir.Attribute{{Name: "transB", Type: ir.AttrInt, I: 1}}},
		},
		Outputs: []*ir.ValueInfo{{Name: "y"}},
	}}
}

func ranges(t *testing.T, m *ir.Model, x *ir.Tensor) map[string]Range {
	s, err := ops.NewSession(m)
	if err != nil {
		t.Fatal(err)
	}
	r := map[string]Range{}
	_, err = s.RunObserved(map[string]*ir.Tensor{"x": x}, func(name string, v *ir.Tensor) {
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, f := range v.F32() {
			lo, hi = math.Min(lo, float64(f)), math.Max(hi, float64(f))
		}
		r[name] = Range{Amax: math.Max(-lo, hi), Min: lo, Max: hi}
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestInsertTensorRTAndORT(t *testing.T) {
	m := convNet(13)
	x := randT([]int64{2, 2, 5, 5}, 9)
	want, err := ops.Run(m, map[string]*ir.Tensor{"x": x})
	if err != nil {
		t.Fatal(err)
	}
	rg := ranges(t, m, x)
	for _, opt := range []Options{{Flavor: TensorRT}, {Flavor: ORT}, {Flavor: TensorRT, QuantizedWeights: true}, {Flavor: TensorRT, DType: ir.Float8E4M3FN}} {
		opt.Ranges = rg
		q, err := Insert(m, opt)
		if err != nil {
			t.Fatal(err)
		}
		count := map[string]int{}
		for _, n := range q.Graph.Nodes {
			count[n.OpType]++
			if n.OpType == "DequantizeLinear" && strings.HasPrefix(n.Inputs[0], "conv.w") {
				if a := n.Attr("axis"); a == nil || a.I != 0 {
					t.Errorf("conv weight DQ axis: %+v", a)
				}
			}
		}
		wantDQ := 4 // x, conv.w, f, fc.w
		if count["DequantizeLinear"] != wantDQ {
			t.Errorf("%+v: %v", opt.Flavor, count)
		}
		got, err := ops.Run(q, map[string]*ir.Tensor{"x": x})
		if err != nil {
			t.Fatal(err)
		}
		// Quantization error relative to the output's range: int8 keeps
		// it within a few percent, E4M3's 3-bit mantissa within ~10%.
		tol := 0.04
		if opt.DType == ir.Float8E4M3FN {
			tol = 0.1
		}
		span := 0.0
		for _, v := range want["y"].F32() {
			span = math.Max(span, math.Abs(float64(v)))
		}
		for i, v := range want["y"].F32() {
			g := got["y"].F32()[i]
			if math.Abs(float64(g-v)) > tol*span {
				t.Errorf("%+v: y[%d] = %v, float %v", opt.Flavor, i, g, v)
			}
		}
		if q.Opset("") < 13 {
			t.Errorf("opset %d", q.Opset(""))
		}
	}
	if m.Graph.Nodes[0].Inputs[0] != "x" || len(m.Graph.Nodes) != 4 {
		t.Error("Insert modified its input model")
	}
}

func TestWeightBitsAndPerTensor(t *testing.T) {
	m := convNet(13)
	x := randT([]int64{1, 2, 5, 5}, 4)
	q, err := Insert(m, Options{Ranges: ranges(t, m, x), WeightBits: 4, PerTensorWeights: true, QuantizedWeights: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, init := range q.Graph.Initializers {
		if init.DType == ir.Int8 && strings.HasSuffix(init.Name, "_quantized") {
			for _, v := range init.I8() {
				if v < -7 || v > 7 {
					t.Fatalf("%s has code %d outside 4 bits", init.Name, v)
				}
			}
		}
	}
}

func TestOpsetRaiseRefusedWhenUnsafe(t *testing.T) {
	m := convNet(11)
	// (Softmax-like ops are rewritten to keep their meaning: opset_test.go)
	m.Graph.Nodes = append(m.Graph.Nodes, &ir.Node{Name: "sq", OpType: "Squeeze", Inputs: []string{"y"}, Outputs: []string{"p"}})
	m.Graph.Outputs = []*ir.ValueInfo{{Name: "p"}}
	_, err := Insert(m, Options{Ranges: map[string]Range{"x": {Amax: 1}}})
	if err == nil || !strings.Contains(err.Error(), "Squeeze") {
		t.Fatalf("got %v", err)
	}
	m.Graph.Nodes = m.Graph.Nodes[:4]
	m.Graph.Outputs = []*ir.ValueInfo{{Name: "y"}}
	q, err := Insert(m, Options{Ranges: map[string]Range{"x": {Amax: 1}}})
	if err != nil || q.Opset("") != 13 {
		t.Fatalf("%v %v", err, q)
	}
}

// TestQuantizedWeightsDropFloatCopies: with int8 weights stored behind
// DequantizeLinear, the float initializers they replace leave the model
// (and its graph inputs), a weight a float node still reads stays, and the
// model still runs.
func TestQuantizedWeightsDropFloatCopies(t *testing.T) {
	m := convNet(13)
	// An extra float reader of fc.w that Insert leaves alone (an Identity
	// to a second graph output).
	m.Graph.Nodes = append(m.Graph.Nodes, &ir.Node{Name: "keep", OpType: "Identity", Inputs: []string{"fc.w"}, Outputs: []string{"fcw_copy"}})
	m.Graph.Outputs = append(m.Graph.Outputs, &ir.ValueInfo{Name: "fcw_copy"})
	m.Graph.Inputs = append(m.Graph.Inputs, &ir.ValueInfo{Name: "conv.w"}) // initializer listed as an input, opset 8 style
	x := randT([]int64{1, 2, 5, 5}, 4)
	for _, flavor := range []Flavor{TensorRT, ORT} {
		q, err := Insert(m, Options{Flavor: flavor, Ranges: ranges(t, m, x), QuantizedWeights: true})
		if err != nil {
			t.Fatal(err)
		}
		inits := q.Graph.InitializerMap()
		if _, ok := inits["conv.w"]; ok {
			t.Errorf("flavor %v: conv.w still stored in float beside its int8 codes", flavor)
		}
		for _, in := range q.Graph.Inputs {
			if in.Name == "conv.w" {
				t.Errorf("flavor %v: graph input conv.w left without its initializer", flavor)
			}
		}
		if w, ok := inits["fc.w"]; !ok || w.DType != ir.Float32 {
			t.Errorf("flavor %v: fc.w, still read by a float node, was dropped", flavor)
		}
		if _, err := ops.Run(q, map[string]*ir.Tensor{"x": x}); err != nil {
			t.Fatalf("flavor %v: %v", flavor, err)
		}
	}
	if _, ok := m.Graph.InitializerMap()["conv.w"]; !ok {
		t.Error("Insert modified its input model")
	}
}
