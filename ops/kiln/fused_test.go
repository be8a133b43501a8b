package kiln_test

import (
	"math"
	"testing"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
	_ "github.com/kilnml/kiln/ops/all"
	. "github.com/kilnml/kiln/ops/kiln"
)

func model(nodes []*ir.Node, inits []*ir.Tensor, in *ir.ValueInfo, out string) *ir.Model {
	return &ir.Model{IRVersion: 8, Opsets: []ir.OpsetImport{{Version: 17}, {Domain: Domain, Version: 1}},
		Graph: &ir.Graph{Name: "g", Nodes: nodes, Initializers: inits, Inputs: []*ir.ValueInfo{in}, Outputs: []*ir.ValueInfo{{Name: out}}}}
}

func named(t *ir.Tensor, name string) *ir.Tensor { t.Name = name; return t }

// A fused kiln.Conv equals Conv → Add(residual) → Relu node by node.
func TestFusedConvMatchesUnfused(t *testing.T) {
	w := named(ir.FromFloat32s([]int64{2, 1, 2, 2}, []float32{1, -1, 0.5, 2, -0.25, 1, 1, -2}), "W")
	b := named(ir.FromFloat32s([]int64{2}, []float32{0.5, -1}), "B")
	z := named(ir.FromFloat32s([]int64{1, 2, 2, 2}, []float32{1, -2, 3, -4, 0.5, 0.5, -0.5, -3}), "Z")
	in := &ir.ValueInfo{Name: "x", Type: ir.TensorType(ir.Float32, ir.Shape{ir.D(1), ir.D(1), ir.D(3), ir.D(3)})}
	x := ir.FromFloat32s([]int64{1, 1, 3, 3}, []float32{1, 2, -3, 4, 5, -6, 7, 8, 9})
	unfused := model([]*ir.Node{
		{Name: "conv", OpType: "Conv", Inputs: []string{"x", "W", "B"}, Outputs: []string{"c"}},
		{Name: "add", OpType: "Add", Inputs: []string{"c", "Z"}, Outputs: []string{"a"}},
		{Name: "relu", OpType: "Relu", Inputs: []string{"a"}, Outputs: []string{"y"}},
	}, []*ir.Tensor{w, b, z}, in, "y")
	fused := model([]*ir.Node{{Name: "conv + add + relu", OpType: "Conv", Domain: Domain, Inputs: []string{"x", "W", "B", "Z"}, Outputs: []string{"y"},
		Attrs: Activation{Kind: "Relu"}.Attrs()}}, []*ir.Tensor{w, b, z}, in, "y")
	want, err := ops.Run(unfused, map[string]*ir.Tensor{"x": x})
	if err != nil {
		t.Fatal(err)
	}
	got, err := ops.Run(fused, map[string]*ir.Tensor{"x": x})
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range want["y"].F32() {
		if g := got["y"].F32()[i]; math.Abs(float64(g-v)) > 1e-6 {
			t.Errorf("element %d: fused %v, unfused %v", i, g, v)
		}
	}
	types, err := ops.InferTypes(fused)
	if err != nil || types["y"].String() != "float32[1,2,2,2]" {
		t.Errorf("inference: %v %v", types["y"], err)
	}
}

func TestFusedMatMulBiasGelu(t *testing.T) {
	bm := named(ir.FromFloat32s([]int64{2, 3}, []float32{1, 2, 3, -1, 0.5, 2}), "Bm")
	bias := named(ir.FromFloat32s([]int64{3}, []float32{0.1, -0.2, 0.3}), "bias")
	in := &ir.ValueInfo{Name: "x", Type: ir.TensorType(ir.Float32, ir.Shape{ir.Sym("n"), ir.D(2)})}
	m := model([]*ir.Node{{Name: "mm", OpType: "MatMul", Domain: Domain, Inputs: []string{"x", "Bm", "bias"}, Outputs: []string{"y"},
		Attrs: Activation{Kind: "Gelu"}.Attrs()}}, []*ir.Tensor{bm, bias}, in, "y")
	out, err := ops.Run(m, map[string]*ir.Tensor{"x": ir.FromFloat32s([]int64{1, 2}, []float32{1, -2})})
	if err != nil {
		t.Fatal(err)
	}
	for j, acc := range []float64{1*1 + -2*-1 + 0.1, 2*1 + -2*0.5 - 0.2, 3*1 + -2*2 + 0.3} {
		want := 0.5 * acc * (1 + math.Erf(acc/math.Sqrt2))
		if g := float64(out["y"].F32()[j]); math.Abs(g-want) > 1e-6 {
			t.Errorf("col %d: %v want %v", j, g, want)
		}
	}
}

func TestActivations(t *testing.T) {
	for _, c := range []struct {
		a    Activation
		x, y float64
	}{
		{Activation{Kind: "Relu"}, -1, 0}, {Activation{Kind: "Clip", Alpha: 0, Beta: 6}, 7, 6},
		{Activation{Kind: "LeakyRelu", Alpha: 0.1}, -2, -0.2}, {Activation{Kind: "HardSwish"}, 1, 1 * (1.0/6 + 0.5)},
		{Activation{Kind: "Sigmoid"}, 0, 0.5}, {Activation{}, -3, -3},
	} {
		if got := c.a.Apply(c.x); math.Abs(got-c.y) > 1e-7 { // alpha/beta are float32
			t.Errorf("%s(%v) = %v, want %v", c.a.Kind, c.x, got, c.y)
		}
	}
	bad := &ir.Node{Name: "n", Attrs: []*ir.Attribute{{Name: "activation", Type: ir.AttrString, S: []byte("Swoosh")}}}
	if _, err := ActivationOf(bad); err == nil {
		t.Error("unknown activation accepted")
	}
}
