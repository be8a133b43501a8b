package passes

import (
	"math"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops/kiln"
)

// activationNode recognizes a single-node activation that kiln's fused ops
// can apply in their epilogue.
func (r *rewriter) activationNode(n *ir.Node) (kiln.Activation, bool) {
	if n.Domain != "" && n.Domain != "ai.onnx" || len(n.Inputs) == 0 || len(n.Outputs) != 1 || n.Outputs[0] == "" {
		return kiln.Activation{}, false
	}
	opset := r.m.Opset("")
	f := func(name string, def float32) (float32, bool) {
		v, err := n.AttrFloat(name, def)
		return v, err == nil
	}
	switch n.OpType {
	case "Relu", "Sigmoid", "Tanh", "HardSwish":
		return kiln.Activation{Kind: n.OpType}, len(n.Inputs) == 1
	case "LeakyRelu":
		a, ok := f("alpha", 0.01)
		return kiln.Activation{Kind: "LeakyRelu", Alpha: a}, ok
	case "HardSigmoid":
		a, ok1 := f("alpha", 0.2)
		b, ok2 := f("beta", 0.5)
		return kiln.Activation{Kind: "HardSigmoid", Alpha: a, Beta: b}, ok1 && ok2
	case "Gelu":
		approx, err := n.AttrString("approximate", "none")
		switch {
		case err != nil:
		case approx == "none":
			return kiln.Activation{Kind: "Gelu"}, true
		case approx == "tanh":
			return kiln.Activation{Kind: "GeluTanh"}, true
		}
	case "Clip":
		lo, hi := float32(math.Inf(-1)), float32(math.Inf(1))
		if opset < 11 {
			var ok1, ok2 bool
			lo, ok1 = f("min", lo)
			hi, ok2 = f("max", hi)
			return kiln.Activation{Kind: "Clip", Alpha: lo, Beta: hi}, ok1 && ok2
		}
		for k, dst := range []*float32{&lo, &hi} {
			name := input(n, k+1)
			if name == "" {
				continue
			}
			v, ok := r.scalar(name)
			if !ok {
				return kiln.Activation{}, false
			}
			*dst = float32(v)
		}
		return kiln.Activation{Kind: "Clip", Alpha: lo, Beta: hi}, true
	}
	return kiln.Activation{}, false
}

// setActivation writes the epilogue activation attributes of a kiln node.
func (r *rewriter) setActivation(n *ir.Node, a kiln.Activation) {
	for _, at := range a.Attrs() {
		setAttr(n, at)
	}
}

// product is a value seen as coef · Π leaves, through Mul nodes and Div by
// constants whose intermediate results nobody else reads.
type product struct {
	coef   float64
	leaves []string
	nodes  []*ir.Node
}

// asProduct expands v (the root may have other readers) into a product.
func (r *rewriter) asProduct(v string) product {
	p := product{coef: 1}
	r.expandProduct(v, true, &p)
	return p
}

func (r *rewriter) expandProduct(v string, root bool, p *product) {
	n := r.prod[v]
	if n == nil || (!root && !r.internal(v)) || len(n.Inputs) != 2 || len(n.Outputs) != 1 {
		p.leaves = append(p.leaves, v)
		return
	}
	switch {
	case isOp(n, "Mul"):
		p.nodes = append(p.nodes, n)
		for _, in := range n.Inputs {
			if c, ok := r.scalar(in); ok {
				p.coef *= c
			} else {
				r.expandProduct(in, false, p)
			}
		}
	case isOp(n, "Div"):
		c, ok := r.scalar(n.Inputs[1])
		if !ok || c == 0 {
			p.leaves = append(p.leaves, v)
			return
		}
		p.nodes = append(p.nodes, n)
		p.coef /= c
		r.expandProduct(n.Inputs[0], false, p)
	default:
		p.leaves = append(p.leaves, v)
	}
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-4*math.Abs(b) }

// onlyLeaf reports whether p is coef·x for the given coefficient.
func (p product) is(coef float64, leaves ...string) bool {
	if !near(p.coef, coef) || len(p.leaves) != len(leaves) {
		return false
	}
	used := make([]bool, len(p.leaves))
outer:
	for _, want := range leaves {
		for i, l := range p.leaves {
			if !used[i] && l == want {
				used[i] = true
				continue outer
			}
		}
		return false
	}
	return true
}

// onePlus matches v = 1 + f(...) where f is an op of the given type
// reading one value: returns the node of f and the Add.
func (r *rewriter) onePlus(v, op string) (*ir.Node, *ir.Node, bool) {
	add := r.prod[v]
	if !isOp(add, "Add") || !r.internal(v) || len(add.Inputs) != 2 {
		return nil, nil, false
	}
	for k := range 2 {
		if c, ok := r.scalar(add.Inputs[1-k]); ok && near(c, 1) {
			f := r.prod[add.Inputs[k]]
			if isOp(f, op) && r.internal(add.Inputs[k]) && len(f.Inputs) == 1 {
				return f, add, true
			}
		}
	}
	return nil, nil, false
}

// expandedActivation finds an activation written out in elementary ops
// whose input is x and which reads x nowhere else: Gelu as
// 0.5·x·(1+Erf(x/√2)) or 0.5·x·(1+Tanh(√(2/π)·(x+0.044715·x³))), HardSwish
// as x·HardSigmoid(x) (α=1/6, β=0.5) or x·Clip(x+3, 0, 6)/6, HardSigmoid as
// Clip(x+3, 0, 6)/6. It returns the node computing the
// result and every node to absorb.
func (r *rewriter) expandedActivation(x string) (kiln.Activation, *ir.Node, []*ir.Node, bool) {
	// The root is a Mul or Div at most 5 steps below x.
	seen := map[*ir.Node]bool{}
	frontier := []string{x}
	for depth := 0; depth < 6 && len(frontier) > 0; depth++ {
		var next []string
		for _, v := range frontier {
			for _, c := range r.cons[v] {
				if seen[c] {
					continue
				}
				seen[c] = true
				if isOp(c, "Mul") || isOp(c, "Div") {
					if a, nodes, ok := r.matchActivation(x, c.Outputs[0]); ok {
						return a, c, nodes, true
					}
				}
				next = append(next, c.Outputs...)
			}
		}
		frontier = next
	}
	return kiln.Activation{}, nil, nil, false
}

// matchActivation checks whether root computes an activation of x and
// every reader of x is inside the pattern.
func (r *rewriter) matchActivation(x, root string) (kiln.Activation, []*ir.Node, bool) {
	p := r.asProduct(root)
	if len(p.leaves) == 1 && near(p.coef, 1.0/6) {
		// HardSigmoid as Relu6(x+3)/6.
		nodes, ok := r.relu6Plus3(x, p.leaves[0])
		if !ok || !r.onlyReaders(x, append(nodes, p.nodes...)) {
			return kiln.Activation{}, nil, false
		}
		return kiln.Activation{Kind: "HardSigmoid", Alpha: 1.0 / 6, Beta: 0.5}, append(nodes, p.nodes...), true
	}
	if len(p.leaves) != 2 {
		return kiln.Activation{}, nil, false
	}
	other := p.leaves[0]
	if other == x {
		other = p.leaves[1]
	}
	nodes := append([]*ir.Node{}, p.nodes...)
	var act kiln.Activation
	switch {
	case p.is(0.5, x, other):
		if erf, add, ok := r.onePlus(other, "Erf"); ok {
			d := r.asProduct(erf.Inputs[0])
			if !r.internal(erf.Inputs[0]) || !d.is(1/math.Sqrt2, x) {
				return act, nil, false
			}
			act = kiln.Activation{Kind: "Gelu"}
			nodes = append(append(nodes, add, erf), d.nodes...)
			break
		}
		tanh, add, ok := r.onePlus(other, "Tanh")
		if !ok {
			return act, nil, false
		}
		inner, ok := r.geluTanhInner(x, tanh.Inputs[0])
		if !ok {
			return act, nil, false
		}
		act = kiln.Activation{Kind: "GeluTanh"}
		nodes = append(append(nodes, add, tanh), inner...)
	case p.is(1.0/6, x, other):
		// HardSwish as x·Relu6(x+3)/6 (MobileNetV3's export).
		more, ok := r.relu6Plus3(x, other)
		if !ok {
			return act, nil, false
		}
		act = kiln.Activation{Kind: "HardSwish"}
		nodes = append(nodes, more...)
	case p.is(1, x, other):
		hs := r.prod[other]
		if !isOp(hs, "HardSigmoid") || !r.internal(other) || hs.Inputs[0] != x {
			return act, nil, false
		}
		a, ok := r.activationNode(hs)
		if !ok || !near(float64(a.Alpha), 1.0/6) || !near(float64(a.Beta), 0.5) {
			return act, nil, false
		}
		act = kiln.Activation{Kind: "HardSwish"}
		nodes = append(nodes, hs)
	default:
		return act, nil, false
	}
	if !r.onlyReaders(x, nodes) {
		return act, nil, false
	}
	return act, nodes, true
}

// onlyReaders reports whether every reader of x is one of nodes.
func (r *rewriter) onlyReaders(x string, nodes []*ir.Node) bool {
	in := map[*ir.Node]bool{}
	for _, n := range nodes {
		in[n] = true
	}
	for _, c := range r.cons[x] {
		if !in[c] {
			return false
		}
	}
	return true
}

// relu6Plus3 matches v = Clip(x + 3, 0, 6), returning the Clip and the Add.
func (r *rewriter) relu6Plus3(x, v string) ([]*ir.Node, bool) {
	clip := r.prod[v]
	if !isOp(clip, "Clip") || !r.internal(v) {
		return nil, false
	}
	if a, ok := r.activationNode(clip); !ok || a.Alpha != 0 || a.Beta != 6 {
		return nil, false
	}
	add := r.prod[clip.Inputs[0]]
	if !isOp(add, "Add") || !r.internal(clip.Inputs[0]) {
		return nil, false
	}
	three, ok := otherInput(add, x)
	if c, isConst := r.scalar(three); !ok || !isConst || c != 3 {
		return nil, false
	}
	return []*ir.Node{clip, add}, true
}

// geluTanhInner matches u = √(2/π)·(x + 0.044715·x³), with x³ as Pow(x, 3)
// or x·x·x, returning its nodes.
func (r *rewriter) geluTanhInner(x, u string) ([]*ir.Node, bool) {
	if !r.internal(u) {
		return nil, false
	}
	pu := r.asProduct(u)
	if len(pu.leaves) != 1 || !near(pu.coef, math.Sqrt(2/math.Pi)) {
		return nil, false
	}
	s := pu.leaves[0]
	add := r.prod[s]
	if !isOp(add, "Add") || !r.internal(s) {
		return nil, false
	}
	cube, ok := otherInput(add, x)
	if !ok || !r.internal(cube) {
		return nil, false
	}
	nodes := append(pu.nodes, add)
	pc := r.asProduct(cube)
	switch {
	case pc.is(0.044715, x, x, x):
	case len(pc.leaves) == 1 && near(pc.coef, 0.044715):
		pw := r.prod[pc.leaves[0]]
		if c, ok := r.scalar(input(pw, 1)); !isOp(pw, "Pow") || !ok || c != 3 || pw.Inputs[0] != x || (pc.leaves[0] != cube && !r.internal(pc.leaves[0])) {
			return nil, false
		}
		nodes = append(nodes, pw)
	default:
		return nil, false
	}
	return append(nodes, pc.nodes...), true
}
