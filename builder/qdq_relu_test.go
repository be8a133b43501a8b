package builder

import (
	"math/rand/v2"
	"testing"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
	"github.com/kilnml/kiln/quant/qdq"
)

// ONNX Runtime's Q/DQ convention puts a uint8 QuantizeLinear (zero point 0
// after a Relu) behind Relu → MaxPool (ResNet's residual Relus); sinking it
// through the pool meets the Relu: ONNX's Relu has no uint8 form, so the
// Relu is dropped (negative values saturate to code 0 anyway) instead of
// moving onto the codes; the engine builds, runs its conv in INT8, and
// matches the Q/DQ model on the reference executor.
func TestORTFlavorReluBeforeUint8Quantize(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	randW := func(name string, dims ...int64) *ir.Tensor { return randomWeights(r, 0.3, name, dims...) }
	m := &ir.Model{IRVersion: 8, Opsets: []ir.OpsetImport{{Version: 13}}, Graph: &ir.Graph{
		Name:         "net",
		Inputs:       []*ir.ValueInfo{{Name: "x", Type: ir.TensorType(ir.Float32, ir.Shape{ir.D(1), ir.D(3), ir.D(8), ir.D(8)})}},
		Initializers: []*ir.Tensor{randW("w2", 4, 3, 3, 3)},
		Nodes: []*ir.Node{ // a Relu no layer takes as its activation (here on the input)
			{Name: "relu1", OpType: "Relu", Inputs: []string{"x"}, Outputs: []string{"r1"}},
			{Name: "pool1", OpType: "MaxPool", Inputs: []string{"r1"}, Outputs: []string{"p1"}, Attrs: []*ir.Attribute{
				{Name: "kernel_shape", Type: ir.AttrInts, Ints: []int64{2, 2}}, {Name: "strides", Type: ir.AttrInts, Ints: []int64{2, 2}}}},
			{Name: "conv2", OpType: "Conv", Inputs: []string{"p1", "w2"}, Outputs: []string{"y"}},
		},
		Outputs: []*ir.ValueInfo{{Name: "y"}},
	}}
	x := randomInput(ir.Float32, []int64{1, 3, 8, 8}, 5)
	ranges := map[string]qdq.Range{"p1": {Amax: 1, Min: 0, Max: 1}}
	q, err := qdq.Insert(m, qdq.Options{Flavor: qdq.ORT, Ranges: ranges})
	if err != nil {
		t.Fatal(err)
	}
	plan, rep, err := Build(q, nil, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if n := countPrecision(plan, "int8"); n < 1 {
		t.Fatalf("no int8 step: %v", rep.Warnings)
	}
	want, err := ops.Run(q, map[string]*ir.Tensor{"x": x})
	if err != nil {
		t.Fatal(err)
	}
	e, err := engine.NewEngine(plan)
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.NewContext().Run(map[string]*ir.Tensor{"x": x})
	if err != nil {
		t.Fatal(err)
	}
	if c := cosine(got["y"], want["y"]); c < 0.9999 {
		t.Fatalf("cosine vs the Q/DQ model %.6f", c)
	}
}
