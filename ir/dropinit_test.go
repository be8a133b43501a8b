package ir

import (
	"slices"
	"testing"
)

// TestDropUnreadInitializers: unread initializers go (with their graph-input
// entries), read ones and graph outputs stay, and only limits the drop.
func TestDropUnreadInitializers(t *testing.T) {
	mk := func() *Graph {
		return &Graph{
			Nodes:        []*Node{{OpType: "Add", Inputs: []string{"x", "a"}, Outputs: []string{"y"}}},
			Inputs:       []*ValueInfo{{Name: "x"}, {Name: "b"}, {Name: "c"}},
			Outputs:      []*ValueInfo{{Name: "y"}, {Name: "d"}},
			Initializers: []*Tensor{{Name: "a"}, {Name: "b"}, {Name: "c"}, {Name: "d"}},
		}
	}
	names := func(g *Graph) (inits, ins []string) {
		for _, t := range g.Initializers {
			inits = append(inits, t.Name)
		}
		for _, v := range g.Inputs {
			ins = append(ins, v.Name)
		}
		return
	}
	g := mk()
	g.DropUnreadInitializers(nil)
	if inits, ins := names(g); !slices.Equal(inits, []string{"a", "d"}) || !slices.Equal(ins, []string{"x"}) {
		t.Errorf("all: initializers %v, inputs %v; want [a d], [x]", inits, ins)
	}
	g = mk()
	g.DropUnreadInitializers(func(name string) bool { return name == "b" })
	if inits, ins := names(g); !slices.Equal(inits, []string{"a", "c", "d"}) || !slices.Equal(ins, []string{"x", "c"}) {
		t.Errorf("only b: initializers %v, inputs %v; want [a c d], [x c]", inits, ins)
	}
}
