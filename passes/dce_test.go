package passes_test

import (
	"testing"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/passes"
)

func TestEliminateDeadCode(t *testing.T) {
	g := newGraph(17).input("x", ir.Float32, 2, 3).input("unused", ir.Float32, 1).output("y")
	g.randInit("w", 1, -1, 1, 3).randInit("dead_w", 2, -1, 1, 3)
	// An initializer that is also listed as a graph input (older exports).
	g.randInit("old", 3, -1, 1, 3)
	g.m.Graph.Inputs = append(g.m.Graph.Inputs, &ir.ValueInfo{Name: "old", Type: ir.TensorType(ir.Float32, ir.Shape{ir.D(3)})})
	g.node("Mul", "mul", []string{"x", "w"}, []string{"y"})
	g.node("Add", "dead1", []string{"x", "dead_w"}, []string{"d1"})
	g.node("Sub", "dead2", []string{"d1", "old"}, []string{"d2"})
	g.m.Graph.ValueInfo = []*ir.ValueInfo{{Name: "d2"}, {Name: "y"}}
	c, log, n := optimized(t, g.m, passes.EliminateDeadCode, randomInputs(g.m, 1, 1))
	if n != 4 || opTypes(c) != "Mul" || len(c.Graph.Initializers) != 1 {
		t.Errorf("%d removed: %s, %d initializers", n, opTypes(c), len(c.Graph.Initializers))
	}
	var names []string
	for _, in := range c.Graph.Inputs {
		names = append(names, in.Name)
	}
	if len(names) != 2 || names[0] != "x" || names[1] != "unused" {
		t.Errorf("inputs %v (real inputs must stay)", names)
	}
	if len(c.Graph.ValueInfo) != 1 || c.Graph.ValueInfo[0].Name != "y" {
		t.Errorf("value info %v", c.Graph.ValueInfo)
	}
	if len(log) != 2 {
		t.Errorf("log %q", log)
	}
}

// A value read only inside a subgraph (If branch) is live and is never
// renamed away.
func TestSubgraphReadsKeepValues(t *testing.T) {
	g := newGraph(17).input("x", ir.Float32, 2).input("cond", ir.Bool).output("y")
	g.node("Relu", "relu", []string{"x"}, []string{"r"})
	g.node("Identity", "id", []string{"r"}, []string{"r2"})
	branch := func(name string) *ir.Graph {
		return &ir.Graph{Name: name, Outputs: []*ir.ValueInfo{{Name: name + "_out"}},
			Nodes: []*ir.Node{{OpType: "Neg", Inputs: []string{"r2"}, Outputs: []string{name + "_out"}}}}
	}
	g.node("If", "if", []string{"cond"}, []string{"y"},
		&ir.Attribute{Name: "then_branch", Type: ir.AttrGraph, G: branch("then")},
		&ir.Attribute{Name: "else_branch", Type: ir.AttrGraph, G: branch("else")})
	c := g.m.Clone()
	if err := passes.Optimize(c, passes.Options{}); err != nil {
		t.Fatal(err)
	}
	if opTypes(c) != "Relu Identity If" {
		t.Errorf("left %s", opTypes(c))
	}
}

// Optimize reaches a fixed point: a second run changes nothing.
func TestOptimizeIsIdempotent(t *testing.T) {
	g := flattenChain(-1)
	c, _, _ := optimized(t, g.m, nil, randomInputs(g.m, 2, 1))
	for _, p := range passes.Pipeline() {
		n, err := p.Run(c, passes.Options{})
		if err != nil || n != 0 {
			t.Errorf("%s: %d rewrites after Optimize (%v)", p.Name, n, err)
		}
	}
}
