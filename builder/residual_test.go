package builder

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

// residualNet is a stem conv, two residual blocks (conv → relu → conv, +
// the block input, relu) and a head conv: the shape of a ResNet stage.
func residualNet() *ir.Model {
	r := rand.New(rand.NewPCG(5, 6))
	randW := func(name string, dims ...int64) *ir.Tensor { return randomWeights(r, 0.25, name, dims...) }
	pad := []*ir.Attribute{{Name: "pads", Type: ir.AttrInts, Ints: []int64{1, 1, 1, 1}}}
	return &ir.Model{IRVersion: 8, Opsets: []ir.OpsetImport{{Version: 13}}, Graph: &ir.Graph{
		Name:         "resnet_stage",
		Inputs:       []*ir.ValueInfo{{Name: "x", Type: ir.TensorType(ir.Float32, ir.Shape{ir.D(2), ir.D(8), ir.D(6), ir.D(6)})}},
		Initializers: []*ir.Tensor{randW("w0", 16, 8, 1, 1), randW("w1", 16, 16, 3, 3), randW("w2", 16, 16, 3, 3), randW("w3", 4, 16, 1, 1), randW("w4", 16, 16, 3, 3), randW("w5", 16, 16, 3, 3)},
		Nodes: []*ir.Node{
			{Name: "conv0", OpType: "Conv", Inputs: []string{"x", "w0"}, Outputs: []string{"c0"}},
			{Name: "relu0", OpType: "Relu", Inputs: []string{"c0"}, Outputs: []string{"h0"}},
			{Name: "conv1", OpType: "Conv", Inputs: []string{"h0", "w1"}, Outputs: []string{"c1"}, Attrs: pad},
			{Name: "relu1", OpType: "Relu", Inputs: []string{"c1"}, Outputs: []string{"h1"}},
			{Name: "conv2", OpType: "Conv", Inputs: []string{"h1", "w2"}, Outputs: []string{"c2"}, Attrs: pad},
			{Name: "add", OpType: "Add", Inputs: []string{"c2", "h0"}, Outputs: []string{"s"}},
			{Name: "relu2", OpType: "Relu", Inputs: []string{"s"}, Outputs: []string{"h2"}},
			{Name: "conv4", OpType: "Conv", Inputs: []string{"h2", "w4"}, Outputs: []string{"c4"}, Attrs: pad},
			{Name: "relu4", OpType: "Relu", Inputs: []string{"c4"}, Outputs: []string{"h4"}},
			{Name: "conv5", OpType: "Conv", Inputs: []string{"h4", "w5"}, Outputs: []string{"c5"}, Attrs: pad},
			{Name: "add2", OpType: "Add", Inputs: []string{"c5", "h2"}, Outputs: []string{"s2"}},
			{Name: "relu5", OpType: "Relu", Inputs: []string{"s2"}, Outputs: []string{"h5"}},
			{Name: "conv3", OpType: "Conv", Inputs: []string{"h5", "w3"}, Outputs: []string{"y"}},
		},
		Outputs: []*ir.ValueInfo{{Name: "y"}},
	}}
}

func runPlan(t *testing.T, plan *engine.Plan, in map[string]*ir.Tensor) *ir.Tensor {
	t.Helper()
	e, err := engine.NewEngine(plan)
	if err != nil {
		t.Fatal(err)
	}
	out, err := e.NewContext().Run(in)
	if err != nil {
		t.Fatal(err)
	}
	return out["y"]
}

// By default an INT8 build keeps a residual block's stream in INT8, as
// TensorRT's implicit INT8 does: the residual conv reads the block input as
// codes (z_scale), writes codes itself, and no QuantizeLinear runs between
// the blocks; --float-residuals (Config.FloatResiduals) keeps the old FP32
// stream. Both agree with the float model, and each engine with its own
// quantized graph on the reference executor.
func TestQuantizedResidualStream(t *testing.T) {
	x := randomInput(ir.Float32, []int64{2, 8, 6, 6}, 9)
	// Ranges: each activation's max |value| on this input (the float model
	// with every tensor as an output).
	all := residualNet()
	for _, n := range all.Graph.Nodes {
		all.Graph.Outputs = append(all.Graph.Outputs, &ir.ValueInfo{Name: n.Outputs[0]})
	}
	vals, err := ops.Run(all, map[string]*ir.Tensor{"x": x})
	if err != nil {
		t.Fatal(err)
	}
	vals["x"] = x
	ranges := map[string]float64{}
	for name, v := range vals {
		for i := int64(0); i < v.Len(); i++ {
			ranges[name] = max(ranges[name], math.Abs(v.Float64At(i)))
		}
	}
	fp32, _, err := Build(residualNet(), nil, Config{})
	if err != nil {
		t.Fatal(err)
	}
	ref := runPlan(t, fp32, map[string]*ir.Tensor{"x": x})
	var outs [2]*ir.Tensor
	for i, float := range []bool{false, true} {
		plan, rep, err := Build(residualNet(), nil, Config{INT8: true, DynamicRanges: ranges, FloatResiduals: float})
		if err != nil {
			t.Fatal(err)
		}
		var quantizes int
		var stream []string
		for _, s := range plan.Steps {
			if slices.Contains(s.OpTypes, "QuantizeLinear") {
				quantizes++
			}
			if slices.Contains(s.OpTypes, "Add") {
				if s.Precision != "int8" {
					t.Errorf("float=%v: the residual layer %s runs in %s", float, s.Name, s.Precision)
				}
				stream = append(stream, plan.Values[s.Inputs[len(s.Inputs)-1]].DType.String()+"→"+plan.Values[s.Outputs[0]].DType.String())
			}
		}
		// Residual layers: what each reads as its residual → what it writes
		// (the last one only feeds the head conv, so it writes codes either
		// way); QuantizeLinear steps: the input's, and in the FP32 stream
		// the stem's and the first block's outputs, re-quantized for the
		// next convs.
		want := map[bool]string{false: "int8→int8 int8→int8", true: "float32→float32 float32→int8"}[float]
		wantQ := map[bool]int{false: 1, true: 3}[float]
		if got := strings.Join(stream, " "); got != want || quantizes != wantQ {
			t.Errorf("float=%v: residual layers %q, want %q; %d QuantizeLinear steps, want %d\n%v", float, got, want, quantizes, wantQ, rep)
		}
		outs[i] = runPlan(t, plan, map[string]*ir.Tensor{"x": x})
		t.Logf("float=%v: cosine vs FP32 %.6f", float, cosine(outs[i], ref))
		if c := cosine(outs[i], ref); c < 0.999 {
			t.Errorf("float=%v: cosine vs FP32 %.6f", float, c)
		}
	}
	// The two streams differ by the residual's quantization error: the
	// option must change something.
	same := true
	for i := range outs[0].F32() {
		same = same && outs[0].F32()[i] == outs[1].F32()[i]
	}
	if same {
		t.Error("quantized and float residual streams gave identical outputs")
	}
}
