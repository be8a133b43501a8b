package ir

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Verify checks the structure of the model's main graph and returns every
// problem found (joined), or nil: empty op types, duplicate value names,
// inputs that nothing defines, outputs nothing produces, cycles, malformed
// initializers. Nodes out of file order but acyclic are accepted (TopoSort
// orders them), as ONNX Runtime does.
func (m *Model) Verify() error {
	if m.Graph == nil {
		return errors.New("model has no graph")
	}
	var errs []error
	if len(m.Opsets) == 0 && m.IRVersion >= 3 {
		errs = append(errs, errors.New("model imports no opset"))
	}
	errs = append(errs, m.Graph.verify()...)
	return errors.Join(errs...)
}

func (g *Graph) verify() []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	defined := map[string]string{} // value name -> what defines it
	for _, t := range g.Initializers {
		if t.Name == "" {
			add("graph %q: initializer without a name", g.Name)
			continue
		}
		if prev, dup := defined[t.Name]; dup {
			add("graph %q: initializer %q defined twice (also %s)", g.Name, t.Name, prev)
		}
		defined[t.Name] = "initializer"
		if err := t.Check(); err != nil {
			add("graph %q: initializer: %v", g.Name, err)
		}
	}
	seenInput := map[string]bool{}
	for _, in := range g.Inputs {
		if in.Name == "" {
			add("graph %q: input without a name", g.Name)
			continue
		}
		if seenInput[in.Name] {
			add("graph %q: input %q listed twice", g.Name, in.Name)
		}
		seenInput[in.Name] = true
		if _, ok := defined[in.Name]; !ok {
			defined[in.Name] = "graph input"
		}
	}
	for _, n := range g.Nodes {
		if n.OpType == "" {
			add("graph %q: %s has no op type", g.Name, n)
		}
		for _, o := range n.Outputs {
			if o == "" {
				continue
			}
			if prev, dup := defined[o]; dup {
				add("graph %q: %s writes %q, which is already defined by %s", g.Name, n, o, prev)
				continue
			}
			defined[o] = n.String()
		}
	}
	for _, n := range g.Nodes {
		for i, in := range n.Inputs {
			if in == "" {
				continue
			}
			if _, ok := defined[in]; !ok {
				add("graph %q: %s: input %d %q is not a graph input, an initializer or a node output", g.Name, n, i, in)
			}
		}
	}
	for _, o := range g.Outputs {
		if _, ok := defined[o.Name]; !ok {
			add("graph %q: output %q is produced by no node", g.Name, o.Name)
		}
	}
	if _, err := g.TopoSort(); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// TopoSort returns the nodes in an order where every node follows the
// producers of its inputs, keeping file order where possible. It fails on a
// cycle, naming the nodes on it. Inputs defined outside the graph (graph
// inputs, initializers, outer scopes) impose no order.
func (g *Graph) TopoSort() ([]*Node, error) {
	producer := map[string]int{}
	for i, n := range g.Nodes {
		for _, o := range n.Outputs {
			if o != "" {
				if _, dup := producer[o]; !dup {
					producer[o] = i
				}
			}
		}
	}
	indeg := make([]int, len(g.Nodes))
	users := make([][]int, len(g.Nodes))
	for i, n := range g.Nodes {
		seen := map[int]bool{}
		for _, in := range n.Inputs {
			p, ok := producer[in]
			if !ok || in == "" || seen[p] {
				continue
			}
			seen[p] = true
			indeg[i]++
			users[p] = append(users[p], i)
		}
	}
	// Kahn's algorithm with a min-heap on file position keeps file order stable.
	ready := []int{}
	for i := range g.Nodes {
		if indeg[i] == 0 {
			ready = append(ready, i)
		}
	}
	out := make([]*Node, 0, len(g.Nodes))
	for len(ready) > 0 {
		sort.Ints(ready)
		i := ready[0]
		ready = ready[1:]
		out = append(out, g.Nodes[i])
		for _, u := range users[i] {
			indeg[u]--
			if indeg[u] == 0 {
				ready = append(ready, u)
			}
		}
	}
	if len(out) != len(g.Nodes) {
		var stuck []string
		for i, n := range g.Nodes {
			if indeg[i] > 0 {
				stuck = append(stuck, n.String())
			}
		}
		if len(stuck) > 8 {
			stuck = append(stuck[:8], fmt.Sprintf("and %d more", len(stuck)-8))
		}
		return nil, fmt.Errorf("graph %q has a cycle through %s", g.Name, strings.Join(stuck, ", "))
	}
	return out, nil
}
