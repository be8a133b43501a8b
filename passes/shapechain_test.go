package passes_test

import (
	"fmt"
	"testing"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/passes"
)

// flattenChain is PyTorch's x.view(x.size(0), -1) on a [batch,4,3,2] input.
func flattenChain(shapeTail int64) *graph {
	g := newGraph(17).input("x", ir.Float32, "batch", 4, 3, 2).output("y")
	g.node("Relu", "relu", []string{"x"}, []string{"r"})
	g.node("Shape", "shape", []string{"r"}, []string{"s"})
	g.init("zero", ir.ScalarInt64(0))
	g.node("Gather", "gather", []string{"s", "zero"}, []string{"b"}, intAttr("axis", 0))
	g.init("axes", ir.FromInt64s(ir.Int64, []int64{1}, []int64{0}))
	g.node("Unsqueeze", "unsq", []string{"b", "axes"}, []string{"b1"})
	g.init("tail", ir.FromInt64s(ir.Int64, []int64{1}, []int64{shapeTail}))
	g.node("Concat", "concat", []string{"b1", "tail"}, []string{"shp"}, intAttr("axis", 0))
	g.node("Reshape", "reshape", []string{"r", "shp"}, []string{"y"})
	return g
}

func TestSimplifyShapeChain(t *testing.T) {
	g := flattenChain(-1)
	for _, batch := range []int64{1, 3} {
		c, log, n := optimized(t, g.m, passes.SimplifyShapeChains, randomInputs(g.m, batch, 1))
		rs := findNode(c, "Reshape")
		if s := c.Graph.Initializer(rs.Inputs[1]); n != 1 || s == nil || fmt.Sprint(s.Int64s()) != "[0 -1]" {
			t.Fatalf("%d rewrites, shape %v (%q)", n, s, log)
		}
	}
	c, _, _ := optimized(t, g.m, nil, randomInputs(g.m, 2, 1))
	if opTypes(c) != "Relu Reshape" {
		t.Errorf("after Optimize: %s", opTypes(c))
	}
	// The output keeps the symbolic batch.
	if y := c.Graph.Outputs[0]; y.Name != "y" {
		t.Errorf("output %q", y.Name)
	}
}

// A symbolic element that is not the input's dim at the same position
// cannot be written with 0: the chain stays.
func TestSimplifyShapeChainNeedsSamePosition(t *testing.T) {
	g := newGraph(17).input("x", ir.Float32, "batch", 6).output("y")
	g.node("Shape", "shape", []string{"x"}, []string{"s"})
	g.init("zero", ir.ScalarInt64(0))
	g.node("Gather", "gather", []string{"s", "zero"}, []string{"b"}, intAttr("axis", 0))
	g.init("axes", ir.FromInt64s(ir.Int64, []int64{1}, []int64{0}))
	g.node("Unsqueeze", "unsq", []string{"b", "axes"}, []string{"b1"})
	g.init("head", ir.FromInt64s(ir.Int64, []int64{1}, []int64{6}))
	g.node("Concat", "concat", []string{"head", "b1"}, []string{"shp"}, intAttr("axis", 0))
	g.node("Reshape", "reshape", []string{"x", "shp"}, []string{"y"})
	_, _, n := optimized(t, g.m, passes.SimplifyShapeChains, randomInputs(g.m, 2, 1))
	if n != 0 {
		t.Errorf("%d rewrites", n)
	}
}
