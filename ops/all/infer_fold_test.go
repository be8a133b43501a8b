package all_test

import (
	"testing"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
	_ "github.com/kilnml/kiln/ops/all"
)

// A hostile model asks ConstantOfShape for 2^40 elements from an 8-byte
// constant. Inference must give the output its type without evaluating it
// (the old rule looked only at input sizes and allocated at build time).
func TestInferDoesNotFoldHugeOutputs(t *testing.T) {
	for _, tc := range []struct {
		dims []int64
		fold bool
	}{
		{[]int64{1 << 20, 1 << 20}, false},
		{[]int64{1 << 14, 1 << 14}, false}, // 2^28 elements: over the default limit
		{[]int64{4, 8}, true},
	} {
		g := &ir.Graph{Name: "g"}
		g.Initializers = []*ir.Tensor{ir.FromInt64s(ir.Int64, []int64{int64(len(tc.dims))}, tc.dims)}
		g.Initializers[0].Name = "shape"
		g.Nodes = []*ir.Node{{Name: "fill", OpType: "ConstantOfShape", Inputs: []string{"shape"}, Outputs: []string{"y"}}}
		g.Outputs = []*ir.ValueInfo{{Name: "y"}}
		m := &ir.Model{IRVersion: 8, Opsets: []ir.OpsetImport{{Domain: "", Version: 17}}, Graph: g}
		inf, err := ops.Infer(m, ops.InferOptions{})
		if err != nil {
			t.Fatalf("%v: %v", tc.dims, err)
		}
		typ := inf.Types["y"]
		if typ == nil || !typ.Shape.Equal(ir.Shape{ir.D(tc.dims[0]), ir.D(tc.dims[1])}) {
			t.Fatalf("%v: type %v", tc.dims, typ)
		}
		if got := inf.Consts["y"] != nil; got != tc.fold {
			t.Errorf("%v: folded=%v, want %v", tc.dims, got, tc.fold)
		}
	}
}
