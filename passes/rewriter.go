package passes

import (
	"fmt"
	"slices"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

// rewriter indexes a graph for one pass: producers, consumers, graph
// outputs, inferred types. Every mutation goes through its methods, and
// reindex refreshes the maps after a structural change.
type rewriter struct {
	m     *ir.Model
	g     *ir.Graph
	opt   Options
	inits map[string]*ir.Tensor
	prod  map[string]*ir.Node
	cons  map[string][]*ir.Node // distinct reading nodes, including nodes whose subgraphs read the value
	pos   map[*ir.Node]int
	outs  map[string]bool // graph outputs
	// pinned values are read from inside a subgraph: never renamed away.
	pinned map[string]bool
	names  map[string]bool // every value name in use
	inf    *ops.Inference
	count  int
}

func newRewriter(m *ir.Model, opt Options) *rewriter {
	r := &rewriter{m: m, g: m.Graph, opt: opt}
	r.reindex()
	return r
}

func (r *rewriter) reindex() {
	g := r.g
	r.inits = g.InitializerMap()
	r.prod = g.Producers()
	r.cons = map[string][]*ir.Node{}
	r.pos = map[*ir.Node]int{}
	r.outs = map[string]bool{}
	r.pinned = map[string]bool{}
	r.names = map[string]bool{}
	for _, t := range g.Initializers {
		r.names[t.Name] = true
	}
	for _, in := range g.Inputs {
		r.names[in.Name] = true
	}
	for _, o := range g.Outputs {
		r.outs[o.Name] = true
	}
	for i, n := range g.Nodes {
		r.pos[n] = i
		seen := map[string]bool{}
		for _, in := range n.Inputs {
			if in != "" && !seen[in] {
				seen[in] = true
				r.cons[in] = append(r.cons[in], n)
			}
		}
		for _, ref := range subgraphRefs(n) {
			r.pinned[ref] = true
			if !seen[ref] {
				seen[ref] = true
				r.cons[ref] = append(r.cons[ref], n)
			}
		}
		for _, o := range n.Outputs {
			if o != "" {
				r.names[o] = true
			}
		}
	}
}

// subgraphRefs lists the outer values a node's subgraphs (If, Loop, Scan
// bodies) read.
func subgraphRefs(n *ir.Node) []string {
	var out []string
	for _, a := range n.Attrs {
		gs := a.Graphs
		if a.G != nil {
			gs = append([]*ir.Graph{a.G}, gs...)
		}
		for _, sg := range gs {
			defined := map[string]bool{}
			for _, in := range sg.Inputs {
				defined[in.Name] = true
			}
			for _, t := range sg.Initializers {
				defined[t.Name] = true
			}
			for _, sn := range sg.Nodes {
				for _, o := range sn.Outputs {
					defined[o] = true
				}
			}
			for _, sn := range sg.Nodes {
				refs := append(append([]string{}, sn.Inputs...), subgraphRefs(sn)...)
				for _, in := range refs {
					if in != "" && !defined[in] {
						out = append(out, in)
					}
				}
			}
			for _, o := range sg.Outputs {
				if !defined[o.Name] {
					out = append(out, o.Name)
				}
			}
		}
	}
	return out
}

// infer runs type/shape inference once per pass (types of surviving values
// do not change under the rewrites, which keep value names).
func (r *rewriter) infer(foldLimit int64) *ops.Inference {
	if r.inf == nil {
		inf, _ := ops.Infer(r.m, ops.InferOptions{FoldLimit: foldLimit})
		if inf == nil {
			inf = &ops.Inference{Types: map[string]*ir.Type{}, Consts: map[string]*ir.Tensor{}, Values: map[string]ir.Shape{}}
		}
		r.inf = inf
	}
	return r.inf
}

func (r *rewriter) logf(format string, args ...any) {
	if r.opt.Log != nil {
		r.opt.Log(format, args...)
	}
}

// fusion logs a rewrite that merges nodes into a layer and records it.
func (r *rewriter) fusion(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	r.logf("%s", line)
	if r.opt.Fusions != nil {
		*r.opt.Fusions = append(*r.opt.Fusions, line)
	}
}

// constant returns the value of name when known at build time.
func (r *rewriter) constant(name string) *ir.Tensor {
	if name == "" {
		return nil
	}
	if t := r.inits[name]; t != nil {
		return t
	}
	// Only Constant nodes count besides initializers: a value inference
	// folds through other nodes (DequantizeLinear of int8 weights, which
	// constant folding keeps for the builder) is not a plain weight.
	if p := r.prod[name]; r.inf != nil && isOp(p, "Constant") {
		return r.inf.Consts[name]
	}
	return nil
}

// scalar returns a constant single-element floating-point value.
func (r *rewriter) scalar(name string) (float64, bool) {
	t := r.constant(name)
	if t == nil || t.Len() != 1 || !t.DType.IsFloat() || t.Check() != nil {
		return 0, false
	}
	return t.Float64At(0), true
}

// typeOf returns the inferred tensor type of a value, or nil.
func (r *rewriter) typeOf(name string) *ir.Type {
	if r.inf == nil {
		return nil
	}
	t := r.inf.Types[name]
	if t == nil || t.Kind != ir.KindTensor {
		return nil
	}
	return t
}

// shapeOf returns a value's inferred shape when its rank is known.
func (r *rewriter) shapeOf(name string) (ir.Shape, bool) {
	t := r.typeOf(name)
	if t == nil || !t.HasShape {
		return nil, false
	}
	return t.Shape, true
}

// provenEqual: two shapes are the same at run time for every input: same
// rank, each dim the same number or the same named symbol.
func provenEqual(a, b ir.Shape) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] || (!a[i].Known() && a[i].Param == "") {
			return false
		}
		if _, isValue := ops.DimValue(a[i]); !a[i].Known() && isValue {
			return false
		}
	}
	return true
}

// internal reports whether a value is read by exactly one node and is not
// a graph output (so that node may absorb its producer).
func (r *rewriter) internal(name string) bool {
	return name != "" && len(r.cons[name]) == 1 && !r.outs[name] && !r.pinned[name]
}

// uniqueName returns base, or base with a numeric suffix, unused so far.
func (r *rewriter) uniqueName(base string) string {
	name := base
	for i := 1; r.names[name]; i++ {
		name = fmt.Sprintf("%s_%d", base, i)
	}
	r.names[name] = true
	return name
}

// addInitializer adds t under a fresh name derived from base and returns it.
func (r *rewriter) addInitializer(base string, t *ir.Tensor) string {
	c := *t
	c.Name = r.uniqueName(base)
	r.g.Initializers = append(r.g.Initializers, &c)
	r.inits[c.Name] = &c
	return c.Name
}

// removeNodes drops nodes from the graph.
func (r *rewriter) removeNodes(drop ...*ir.Node) {
	set := map[*ir.Node]bool{}
	for _, n := range drop {
		set[n] = true
	}
	r.g.Nodes = slices.DeleteFunc(r.g.Nodes, func(n *ir.Node) bool { return set[n] })
}

// renameUses makes every node that reads from read to instead.
func (r *rewriter) renameUses(from, to string) {
	for _, n := range r.g.Nodes {
		for i, in := range n.Inputs {
			if in == from {
				n.Inputs[i] = to
			}
		}
	}
}

// bypass removes node n, whose output out carries the same value as its
// input in. Readers of out read in instead; when out is a graph output, in's
// producer writes out directly (the graph output keeps its name). It
// reports false, changing nothing, when that is impossible.
func (r *rewriter) bypass(n *ir.Node, in, out string) bool {
	if in == "" || out == "" || r.pinned[out] {
		return false
	}
	if !r.outs[out] {
		r.renameUses(out, in)
		r.removeNodes(n)
		r.reindex()
		return true
	}
	p := r.prod[in]
	if p == nil || r.outs[in] || r.pinned[in] {
		return false
	}
	for k, o := range p.Outputs {
		if o == in {
			p.Outputs[k] = out
		}
	}
	r.removeNodes(n)
	r.renameUses(in, out)
	if r.inf != nil {
		if t, ok := r.inf.Types[in]; ok {
			r.inf.Types[out] = t
		}
	}
	r.reindex()
	return true
}

// label names a node in logs and member lists: its name, or what the
// builder calls unnamed layers.
func label(n *ir.Node) string {
	if n.Name != "" {
		return n.Name
	}
	for _, o := range n.Outputs {
		if o != "" {
			return n.OpType + "(" + o + ")"
		}
	}
	return n.OpType
}

// isOp reports whether n is the default-domain op of that type.
func isOp(n *ir.Node, opType string) bool {
	return n != nil && n.OpType == opType && (n.Domain == "" || n.Domain == "ai.onnx")
}

// axesOf reads the axes of Squeeze/Unsqueeze/Reduce*: an attribute before
// opset 13, a constant input after. ok is false when they are not known.
func (r *rewriter) axesOf(n *ir.Node) ([]int64, bool) {
	if a := n.Attr("axes"); a != nil {
		return a.Ints, a.Type == ir.AttrInts
	}
	if len(n.Inputs) > 1 && n.Inputs[1] != "" {
		t := r.constant(n.Inputs[1])
		if t == nil || !t.DType.IsInteger() || t.Check() != nil {
			return nil, false
		}
		return t.Int64s(), true
	}
	return nil, false
}
