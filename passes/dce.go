package passes

import (
	"slices"

	"github.com/kilnml/kiln/ir"
)

// EliminateDeadCode removes nodes none of whose outputs is read (by a live
// node, a subgraph or the graph outputs), then initializers nothing reads
// (and their entries in the graph inputs) and annotations of values that no
// longer exist. Real graph inputs stay: they are the model's interface.
func EliminateDeadCode(m *ir.Model, opt Options) (int, error) {
	r := newRewriter(m, opt)
	g := r.g
	order, err := g.TopoSort()
	if err != nil {
		return 0, err
	}
	live := map[string]bool{}
	for _, o := range g.Outputs {
		live[o.Name] = true
	}
	keep := map[*ir.Node]bool{}
	for i := len(order) - 1; i >= 0; i-- {
		n := order[i]
		for _, o := range n.Outputs {
			if o != "" && live[o] {
				keep[n] = true
			}
		}
		if !keep[n] {
			continue
		}
		for _, in := range n.Inputs {
			live[in] = true
		}
		for _, in := range subgraphRefs(n) {
			live[in] = true
		}
	}
	before := len(g.Nodes)
	var dead []string
	g.Nodes = slices.DeleteFunc(g.Nodes, func(n *ir.Node) bool {
		if !keep[n] {
			dead = append(dead, label(n))
		}
		return !keep[n]
	})
	nodes := before - len(g.Nodes)
	unused := map[string]bool{}
	g.Initializers = slices.DeleteFunc(g.Initializers, func(t *ir.Tensor) bool {
		unused[t.Name] = !live[t.Name]
		return !live[t.Name]
	})
	inits := 0
	for _, u := range unused {
		if u {
			inits++
		}
	}
	g.Inputs = slices.DeleteFunc(g.Inputs, func(v *ir.ValueInfo) bool { return unused[v.Name] })
	defined := map[string]bool{}
	for _, v := range g.Inputs {
		defined[v.Name] = true
	}
	for _, t := range g.Initializers {
		defined[t.Name] = true
	}
	for _, n := range g.Nodes {
		for _, o := range n.Outputs {
			defined[o] = true
		}
	}
	g.ValueInfo = slices.DeleteFunc(g.ValueInfo, func(v *ir.ValueInfo) bool { return !defined[v.Name] })
	if nodes > 0 {
		r.logf("Dead-code elimination: removed %d nodes (%s)", nodes, summarize(dead))
	}
	if inits > 0 {
		r.logf("Dead-code elimination: removed %d unused initializers", inits)
	}
	return nodes + inits, nil
}

// summarize lists a few names for a log line.
func summarize(names []string) string {
	const most = 5
	s := ""
	for i, n := range names {
		if i == most {
			return s + ", ..."
		}
		if i > 0 {
			s += ", "
		}
		s += n
	}
	return s
}
