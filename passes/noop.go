package passes

import (
	"slices"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

// RemoveNoOps removes nodes that pass their input through unchanged:
// Identity; Dropout in inference mode whose mask nobody reads; Cast to the
// input's own type; Transpose with the identity permutation; Reshape,
// Flatten, Squeeze, Unsqueeze and Expand whose output shape provably equals
// the input's; Squeeze(Unsqueeze(x)) and Unsqueeze(Squeeze(x)) over the
// same axes. A graph output keeps its name (the producer is renamed).
func RemoveNoOps(m *ir.Model, opt Options) (int, error) {
	r := newRewriter(m, opt)
	r.infer(0)
	removed := 0
	for _, n := range slices.Clone(r.g.Nodes) {
		if _, alive := r.pos[n]; !alive || len(n.Inputs) == 0 || len(n.Outputs) == 0 || (n.Domain != "" && n.Domain != "ai.onnx") {
			continue
		}
		in, ok := r.passThrough(n)
		if !ok {
			continue
		}
		if r.bypass(n, in, n.Outputs[0]) {
			r.logf("Removing %s", label(n))
			removed++
		}
	}
	return removed, nil
}

// passThrough reports whether n's first output equals one of its inputs
// (returned).
func (r *rewriter) passThrough(n *ir.Node) (string, bool) {
	x, y := n.Inputs[0], n.Outputs[0]
	if x == "" || y == "" {
		return "", false
	}
	switch n.OpType {
	case "Identity":
		return x, true
	case "Dropout":
		for _, o := range n.Outputs[1:] {
			if o != "" && (len(r.cons[o]) > 0 || r.outs[o]) {
				return "", false
			}
		}
		if len(n.Inputs) > 2 && n.Inputs[2] != "" {
			t := r.constant(n.Inputs[2])
			if t == nil || t.Len() != 1 || t.Int64At(0) != 0 {
				return "", false
			}
		}
		return x, true
	case "Cast":
		to, err := n.AttrInt("to", -1)
		t := r.typeOf(x)
		return x, err == nil && t != nil && t.DType != ir.Undefined && int64(t.DType) == to
	case "Transpose":
		perm, err := n.AttrInts("perm", nil)
		if err != nil {
			return "", false
		}
		if perm == nil {
			s, ok := r.shapeOf(x)
			return x, ok && len(s) <= 1
		}
		for i, p := range perm {
			if p != int64(i) {
				return "", false
			}
		}
		return x, true
	case "Squeeze", "Unsqueeze":
		if src, ok := r.inversePair(n); ok {
			return src, true
		}
		return x, r.sameShape(x, y)
	case "Reshape", "Flatten", "Expand":
		return x, r.sameShape(x, y)
	}
	return "", false
}

// sameShape: a shape-only op whose output shape provably equals its input's.
func (r *rewriter) sameShape(x, y string) bool {
	a, ok1 := r.shapeOf(x)
	b, ok2 := r.shapeOf(y)
	return ok1 && ok2 && provenEqual(a, b)
}

// inversePair matches Squeeze(Unsqueeze(x, axes), axes) and
// Unsqueeze(Squeeze(x, axes), axes), returning x.
func (r *rewriter) inversePair(n *ir.Node) (string, bool) {
	p := r.prod[n.Inputs[0]]
	want := "Unsqueeze"
	if n.OpType == "Unsqueeze" {
		want = "Squeeze"
	}
	if !isOp(p, want) || len(p.Outputs) == 0 || p.Inputs[0] == "" {
		return "", false
	}
	a1, ok1 := r.axesOf(p)
	a2, ok2 := r.axesOf(n)
	if !ok1 || !ok2 || len(a1) == 0 {
		return "", false
	}
	// The wider side of the pair: Unsqueeze's output, Squeeze's input.
	wide := n.Inputs[0]
	if n.OpType == "Unsqueeze" {
		wide = p.Inputs[0]
	}
	rank := -1
	if s, ok := r.shapeOf(wide); ok {
		rank = len(s)
	}
	norm := func(axes []int64) ([]int64, bool) {
		out := make([]int64, len(axes))
		for i, a := range axes {
			if a < 0 {
				if rank < 0 {
					return nil, false
				}
				na, err := ops.NormAxis(a, rank)
				if err != nil {
					return nil, false
				}
				a = int64(na)
			}
			out[i] = a
		}
		slices.Sort(out)
		return out, true
	}
	n1, ok1 := norm(a1)
	n2, ok2 := norm(a2)
	if !ok1 || !ok2 || !slices.Equal(n1, n2) {
		return "", false
	}
	return p.Inputs[0], true
}
