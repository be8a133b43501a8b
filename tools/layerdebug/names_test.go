package layerdebug

import (
	"testing"
	"time"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
)

func TestOriginalName(t *testing.T) {
	known := map[string]bool{"ReLU32_Output_0": true, "x_1": true, "Pooling160_Output_0_reshape0": true}
	k := func(s string) bool { return known[s] }
	for in, want := range map[string]string{
		"ReLU32_Output_0_quantized__kq1":         "ReLU32_Output_0",
		"ReLU32_Output_0":                        "ReLU32_Output_0",
		"Pooling160_Output_0_reshape0_quantized": "Pooling160_Output_0_reshape0",
		"x_1_fp16":                               "x_1",
		"ReLU32_Output_0_fp32_3":                 "ReLU32_Output_0",
		"unrelated":                              "",
	} {
		if got := OriginalName(in, k); got != want {
			t.Errorf("%s: got %q, want %q", in, got, want)
		}
	}
}

func TestScales(t *testing.T) {
	w := ir.FromFloat32s(nil, []float32{0.5})
	p := &engine.Plan{
		Values: []engine.Value{
			{Name: "x", DType: ir.Float32, Weight: -1},
			{Name: "x_scale", DType: ir.Float32, Weight: 0},
			{Name: "x_quantized", DType: ir.Int8, Weight: -1},
			{Name: "y_quantized", DType: ir.Int8, Weight: -1},
			{Name: "y_pool", DType: ir.Int8, Weight: -1},
			{Name: "z", DType: ir.Int8, Weight: -1},
		},
		Weights: []*ir.Tensor{w},
		Steps: []engine.Step{
			{Name: "q", OpTypes: []string{"QuantizeLinear"}, Inputs: []int{0, 1}, Outputs: []int{2}, Params: []byte(`{"op":"QuantizeLinear"}`)},
			{Name: "conv", OpTypes: []string{"Conv", "Relu"}, Inputs: []int{2}, Outputs: []int{3}, Params: []byte(`{"attrs":[{"name":"y_scale","f":0.25}]}`)},
			{Name: "pool", OpTypes: []string{"MaxPool"}, Inputs: []int{3}, Outputs: []int{4}},
			{Name: "conv2", OpTypes: []string{"Conv"}, Inputs: []int{4}, Outputs: []int{5}, Params: []byte(`{"quant":{"x_scale":0.25,"y_scale":0.125}}`)},
		},
	}
	sc := Scales(p)
	want := map[int]float64{2: 0.5, 3: 0.25, 4: 0.25, 5: 0.125}
	for v, s := range want {
		if sc[v] != s {
			t.Errorf("value %d: scale %v, want %v", v, sc[v], s)
		}
	}
	if _, ok := sc[0]; ok {
		t.Error("float values have no scale")
	}
}

func TestParetoAndBetter(t *testing.T) {
	pts := []Point{
		{Keep: nil, Score: 70, Latency: 100 * time.Microsecond},
		{Keep: []string{"a"}, Score: 90, Latency: 120 * time.Microsecond},
		{Keep: []string{"b"}, Score: 80, Latency: 130 * time.Microsecond}, // dominated
		{Keep: []string{"a", "b"}, Score: 99, Latency: 150 * time.Microsecond},
	}
	fr := pareto(pts)
	if len(fr) != 3 || fr[2].Score != 99 {
		t.Fatalf("%+v", fr)
	}
	// Within timing noise, fewer kept layers win.
	a := &Point{Keep: []string{"a"}, Latency: 101 * time.Microsecond}
	b := &Point{Keep: []string{"a", "b"}, Latency: 100 * time.Microsecond}
	if !better(a, b) || better(b, a) {
		t.Fatal("fewer layers within 3% should win")
	}
	if !(Budget{Metric: Accuracy, MaxDrop: 1}).Meets(98, 98.9) || (Budget{Metric: SQNR, Min: 30}).Meets(29, 0) {
		t.Fatal("budget")
	}
}

// Zero points come with the scales: a layer's y_zero, a reformat's zero,
// a QuantizeLinear's zero-point weight, inherited through pass-through ops.
func TestCodeParamsZeroPoints(t *testing.T) {
	s, z := ir.FromFloat32s(nil, []float32{0.5}), ir.NewTensor(ir.Uint8, nil)
	z.SetInt64At(0, 7)
	p := &engine.Plan{
		Values: []engine.Value{
			{Name: "x", DType: ir.Float32, Weight: -1},
			{Name: "s", DType: ir.Float32, Weight: 0},
			{Name: "z", DType: ir.Uint8, Weight: 1},
			{Name: "a", DType: ir.Uint8, Weight: -1},
			{Name: "b", DType: ir.Uint8, Weight: -1},
			{Name: "c", DType: ir.Uint8, Weight: -1},
			{Name: "d", DType: ir.Int8, Weight: -1},
		},
		Weights: []*ir.Tensor{s, z},
		Steps: []engine.Step{
			{Name: "q", OpTypes: []string{"QuantizeLinear"}, Inputs: []int{0, 1, 2}, Outputs: []int{3}},
			{Name: "pool", OpTypes: []string{"MaxPool"}, Inputs: []int{3}, Outputs: []int{4}},
			{Name: "q2", OpTypes: []string{"QuantizeLinear"}, Inputs: []int{0}, Outputs: []int{5}, Params: []byte(`{"op":"quantize","scale":0.25,"zero":128}`)},
			{Name: "conv", OpTypes: []string{"Conv"}, Inputs: []int{5}, Outputs: []int{6}, Params: []byte(`{"quant":{"x_scale":0.25,"x_zero":128,"y_scale":0.125,"y_zero":-3}}`)},
		},
	}
	got := CodeParams(p)
	for v, want := range map[int]Affine{3: {0.5, 7}, 4: {0.5, 7}, 5: {0.25, 128}, 6: {0.125, -3}} {
		if got[v] != want {
			t.Errorf("value %s: %+v, want %+v", p.Values[v].Name, got[v], want)
		}
	}
	if r := (Affine{0.1, 3}).Real(5); r != float64(float32(0.1)*2) {
		t.Errorf("Real: %v", r)
	}
}
