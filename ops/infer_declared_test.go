package ops

import (
	"strings"
	"testing"

	"github.com/kilnml/kiln/ir"
)

// A graph output declared with an empty shape (a scalar) that comes out
// with rank > 0 is merged leniently, with a warning, as ONNX Runtime does;
// any other disagreement of rank or known dims stays an error.
func TestDeclaredOutputShapes(t *testing.T) {
	model := func(declared *ir.Type) *ir.Model {
		return &ir.Model{IRVersion: 8, Opsets: []ir.OpsetImport{{Version: 17}, {Domain: testDomain, Version: 1}}, Graph: &ir.Graph{
			Name:    "net",
			Inputs:  []*ir.ValueInfo{{Name: "x", Type: ir.TensorType(ir.Float32, ir.Shape{ir.D(2), ir.D(3)})}},
			Nodes:   []*ir.Node{{Name: "add", OpType: "AddOne", Domain: testDomain, Inputs: []string{"x"}, Outputs: []string{"y"}}},
			Outputs: []*ir.ValueInfo{{Name: "y", Type: declared}},
		}}
	}
	for _, c := range []struct {
		name     string
		declared *ir.Type
		err      bool
		warnings int
	}{
		{"scalar declared", ir.TensorType(ir.Float32, ir.Shape{}), false, 1},
		{"matching", ir.TensorType(ir.Float32, ir.Shape{ir.D(2), ir.D(3)}), false, 0},
		{"rank 1 declared", ir.TensorType(ir.Float32, ir.Shape{ir.D(6)}), true, 0},
		{"other dim declared", ir.TensorType(ir.Float32, ir.Shape{ir.D(2), ir.D(4)}), true, 0},
		{"other dtype declared", ir.TensorType(ir.Float16, ir.Shape{}), true, 0},
	} {
		inf, err := Infer(model(c.declared), InferOptions{})
		if (err != nil) != c.err {
			t.Errorf("%s: error %v, want one: %v", c.name, err, c.err)
		}
		if inf == nil || len(inf.Warnings) != c.warnings {
			t.Errorf("%s: warnings %v, want %d", c.name, inf.Warnings, c.warnings)
		} else if c.warnings > 0 && !strings.Contains(inf.Warnings[0], `graph output "y"`) {
			t.Errorf("%s: warning %q does not name the output", c.name, inf.Warnings[0])
		}
	}
}
