package passes_test

import (
	"slices"
	"testing"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/passes"
)

func TestRemoveIdentityDropoutCast(t *testing.T) {
	g := newGraph(17).input("x", ir.Float32, "n", 4).output("y")
	g.node("Relu", "relu", []string{"x"}, []string{"r"})
	g.node("Identity", "id1", []string{"r"}, []string{"i1"})
	g.node("Dropout", "drop", []string{"i1"}, []string{"d", "mask"})
	g.node("Cast", "cast", []string{"d"}, []string{"c"}, intAttr("to", int64(ir.Float32)))
	g.node("Transpose", "tr", []string{"c"}, []string{"t"}, ints("perm", 0, 1))
	g.node("Identity", "id2", []string{"t"}, []string{"y"}) // a graph output
	c, log, n := optimized(t, g.m, passes.RemoveNoOps, randomInputs(g.m, 3, 1))
	if n != 5 || opTypes(c) != "Relu" {
		t.Fatalf("removed %d, left %s", n, opTypes(c))
	}
	// The graph output keeps its name: Relu writes it.
	if o := c.Graph.Nodes[0].Outputs[0]; o != "y" {
		t.Errorf("relu writes %q", o)
	}
	want := []string{"Removing id1", "Removing drop", "Removing cast", "Removing tr", "Removing id2"}
	if !slices.Equal(log, want) {
		t.Errorf("log %q", log)
	}
}

func TestRemoveNoOpsKeepsRealWork(t *testing.T) {
	g := newGraph(17).input("x", ir.Float32, 2, 3).output("a", "b", "c", "mask", "x2")
	g.node("Cast", "cast", []string{"x"}, []string{"a"}, intAttr("to", int64(ir.Float64)))
	g.node("Transpose", "tr", []string{"x"}, []string{"b"}, ints("perm", 1, 0))
	g.node("Dropout", "drop", []string{"x"}, []string{"c", "mask"}) // mask is read
	g.node("Identity", "id", []string{"x"}, []string{"x2"})         // input to output: a copy is needed
	c, _, n := optimized(t, g.m, passes.RemoveNoOps, randomInputs(g.m, 1, 1))
	if n != 0 || len(c.Graph.Nodes) != 4 {
		t.Errorf("removed %d: %s", n, opTypes(c))
	}
}

func TestRemoveShapeNoOps(t *testing.T) {
	g := newGraph(17).input("x", ir.Float32, "n", 6).output("y")
	g.init("same", ir.FromInt64s(ir.Int64, []int64{2}, []int64{0, 6}))
	g.node("Reshape", "rs", []string{"x", "same"}, []string{"r"})
	g.node("Flatten", "fl", []string{"r"}, []string{"f"}, intAttr("axis", 1))
	g.init("ax", ir.FromInt64s(ir.Int64, []int64{2}, []int64{1, -1}))
	g.node("Unsqueeze", "us", []string{"f", "ax"}, []string{"u"}) // [n,1,6,1]
	g.init("ax2", ir.FromInt64s(ir.Int64, []int64{2}, []int64{3, -3}))
	g.node("Squeeze", "sq", []string{"u", "ax2"}, []string{"s"})
	g.init("eshape", ir.FromInt64s(ir.Int64, []int64{2}, []int64{1, 6}))
	g.node("Expand", "ex", []string{"s", "eshape"}, []string{"e"})
	g.node("Relu", "relu", []string{"e"}, []string{"y"})
	c, log, n := optimized(t, g.m, passes.RemoveNoOps, randomInputs(g.m, 2, 1))
	if n != 4 || opTypes(c) != "Unsqueeze Relu" {
		t.Errorf("removed %d, left %s (%q)", n, opTypes(c), log)
	}
	c2, _, _ := optimized(t, g.m, nil, randomInputs(g.m, 5, 1))
	if opTypes(c2) != "Relu" || c2.Graph.Nodes[0].Inputs[0] != "x" {
		t.Errorf("after Optimize: %s", opTypes(c2))
	}
}

// Squeeze then Unsqueeze over the same axes (opset 11 attributes).
func TestRemoveSqueezeUnsqueezePair(t *testing.T) {
	g := newGraph(11).input("x", ir.Float32, 3, 1, 4).output("y")
	g.node("Squeeze", "sq", []string{"x"}, []string{"s"}, ints("axes", -2))
	g.node("Unsqueeze", "us", []string{"s"}, []string{"u"}, ints("axes", 1))
	g.node("Sigmoid", "sig", []string{"u"}, []string{"y"})
	c, _, _ := optimized(t, g.m, nil, randomInputs(g.m, 1, 1))
	if opTypes(c) != "Sigmoid" {
		t.Errorf("left %s", opTypes(c))
	}
	// Different axes are a real reshape.
	g.m.Graph.Nodes[1].Attrs = []*ir.Attribute{ints("axes", 0)}
	c, _, _ = optimized(t, g.m, nil, randomInputs(g.m, 1, 1))
	if opTypes(c) != "Squeeze Unsqueeze Sigmoid" {
		t.Errorf("left %s", opTypes(c))
	}
}
