package qdq

import (
	"testing"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

// Raising an opset-9 model with Softmax/LogSoftmax/Hardmax to 13 keeps
// their meaning (flatten to 2-D at axis, normalize over the rest), checked
// by running both models on the reference executor.
func TestRaiseOpsetKeepsSoftmaxMeaning(t *testing.T) {
	for _, op := range []string{"Softmax", "LogSoftmax", "Hardmax"} {
		for _, axis := range []int64{0, 1, 2} {
			m := &ir.Model{IRVersion: 4, Opsets: []ir.OpsetImport{{Version: 9}}, Graph: &ir.Graph{
				Name:   "sm",
				Inputs: []*ir.ValueInfo{{Name: "x", Type: ir.TensorType(ir.Float32, ir.Shape{ir.D(2), ir.D(3), ir.D(4)})}},
				Nodes: []*ir.Node{{Name: "sm", OpType: op, Inputs: []string{"x"}, Outputs: []string{"y"},
					Attrs: []*ir.Attribute{{Name: "axis", Type: ir.AttrInt, I: axis}}}},
				Outputs: []*ir.ValueInfo{{Name: "y"}},
			}}
			raised := m.Clone()
			if err := raiseOpset(raised, 13, false); err != nil {
				t.Fatalf("%s axis %d: %v", op, axis, err)
			}
			if raised.Opset("") != 13 || len(raised.Graph.Nodes) != 4 {
				t.Fatalf("%s axis %d: opset %d, %d nodes", op, axis, raised.Opset(""), len(raised.Graph.Nodes))
			}
			x := randT([]int64{2, 3, 4}, uint64(axis+1))
			want, err := ops.Run(m, map[string]*ir.Tensor{"x": x})
			if err != nil {
				t.Fatal(err)
			}
			got, err := ops.Run(raised, map[string]*ir.Tensor{"x": x})
			if err != nil {
				t.Fatal(err)
			}
			w, g := want["y"], got["y"]
			if !sameDims(w.Dims, g.Dims) {
				t.Fatalf("%s axis %d: dims %v, want %v", op, axis, g.Dims, w.Dims)
			}
			for i, v := range w.F32() {
				if g.F32()[i] != v {
					t.Fatalf("%s axis %d: y[%d] = %v, want %v", op, axis, i, g.F32()[i], v)
				}
			}
		}
	}
}

func sameDims(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
