package passes_test

import (
	"math/rand/v2"
	"testing"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
	"github.com/kilnml/kiln/passes"
)

func TestFoldConstants(t *testing.T) {
	g := newGraph(17).input("x", ir.Float32, 2, 3).output("y", "shape")
	g.randInit("a", 1, -1, 1, 3).randInit("b", 2, -1, 1, 3)
	g.node("Constant", "k", nil, []string{"k"}, &ir.Attribute{Name: "value", Type: ir.AttrTensor, T: ir.FromFloat32s([]int64{3}, []float32{2, 3, 4})})
	g.node("Add", "ab", []string{"a", "b"}, []string{"ab"})
	g.node("Mul", "abk", []string{"ab", "k"}, []string{"abk"})
	g.node("Mul", "y", []string{"x", "abk"}, []string{"y"})
	// Shape of a static input is known: folded into an initializer.
	g.node("Shape", "shape", []string{"x"}, []string{"shape"})
	c, log, n := optimized(t, g.m, passes.FoldConstants, randomInputs(g.m, 1, 3))
	if n != 4 || opTypes(c) != "Mul" {
		t.Errorf("folded %d, left %s", n, opTypes(c))
	}
	if s := c.Graph.Initializer("shape"); s == nil || s.DType != ir.Int64 || len(s.Int64s()) != 2 {
		t.Errorf("graph output shape: %v", s)
	}
	if len(log) != 1 || log[0] != "Constant folding: 4 nodes" {
		t.Errorf("log %q", log)
	}
}

// Random ops are never folded, even with constant inputs; nor are outputs
// above the size bound.
func TestFoldConstantsKeepsRandomAndHuge(t *testing.T) {
	if _, err := ops.Lookup("", "RandomUniformLike", 17); err != nil {
		// A stand-in kernel so that inference could evaluate the op.
		ops.Register(&ops.Op{Type: "RandomUniformLike", Run: func(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
			out := ir.NewTensor(in[0].DType, in[0].Dims)
			for i := range out.Len() {
				out.SetFloat64At(i, rand.Float64())
			}
			return []*ir.Tensor{out}, nil
		}, Infer: ops.SameAsInput(0)})
	}
	g := newGraph(17).input("x", ir.Float32, 2).output("r", "big")
	g.randInit("a", 1, -1, 1, 2)
	g.node("RandomUniformLike", "rnd", []string{"a"}, []string{"r"})
	g.init("bigshape", ir.FromInt64s(ir.Int64, []int64{2}, []int64{4097, 4097}))
	g.node("ConstantOfShape", "cos", []string{"bigshape"}, []string{"big"})
	c := g.m.Clone()
	n, err := passes.FoldConstants(c, passes.Options{})
	if err != nil || n != 0 || opTypes(c) != "RandomUniformLike ConstantOfShape" {
		t.Errorf("folded %d (%v): %s", n, err, opTypes(c))
	}
}
