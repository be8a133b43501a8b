package ir

// Clone copies the model's structure deeply: nodes, attributes, value infos
// and tensor headers. Tensor data is shared (tensors are treated as
// immutable throughout kiln), so cloning a large model is cheap.
func (m *Model) Clone() *Model {
	c := *m
	c.Opsets = append([]OpsetImport(nil), m.Opsets...)
	c.Metadata = append([]StringPair(nil), m.Metadata...)
	c.Functions = append([][]byte(nil), m.Functions...)
	c.Graph = m.Graph.Clone()
	return &c
}

// Clone copies a graph (see Model.Clone).
func (g *Graph) Clone() *Graph {
	if g == nil {
		return nil
	}
	c := *g
	c.Nodes = make([]*Node, len(g.Nodes))
	for i, n := range g.Nodes {
		c.Nodes[i] = n.Clone()
	}
	c.Inputs = cloneVIs(g.Inputs)
	c.Outputs = cloneVIs(g.Outputs)
	c.ValueInfo = cloneVIs(g.ValueInfo)
	c.Initializers = make([]*Tensor, len(g.Initializers))
	for i, t := range g.Initializers {
		tc := *t
		tc.Dims = append([]int64(nil), t.Dims...)
		c.Initializers[i] = &tc
	}
	c.SparseInitializers = append([][]byte(nil), g.SparseInitializers...)
	c.QuantAnnotations = append([][]byte(nil), g.QuantAnnotations...)
	return &c
}

// Clone copies a node and its attributes (tensor data shared).
func (n *Node) Clone() *Node {
	c := *n
	c.Inputs = append([]string(nil), n.Inputs...)
	c.Outputs = append([]string(nil), n.Outputs...)
	c.Attrs = make([]*Attribute, len(n.Attrs))
	for i, a := range n.Attrs {
		ac := *a
		ac.Floats = append([]float32(nil), a.Floats...)
		ac.Ints = append([]int64(nil), a.Ints...)
		if a.G != nil {
			ac.G = a.G.Clone()
		}
		c.Attrs[i] = &ac
	}
	return &c
}

func cloneVIs(vs []*ValueInfo) []*ValueInfo {
	out := make([]*ValueInfo, len(vs))
	for i, v := range vs {
		vc := *v
		vc.Type = v.Type.Clone()
		out[i] = &vc
	}
	return out
}
