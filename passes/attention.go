package passes

import (
	"math"
	"slices"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops/kiln"
)

// FuseAttention rewrites scaled dot-product attention into one
// kiln.Attention(Q, K, V, [Mask]):
//
//	S = MatMul(c₁·Q, c₂·Kᵀ) (·c₃ or /c₃)  [+ Mask]  → Softmax(last axis)
//	  [→ Where(IsNaN(P), 0, P)] → MatMul(P, V)
//
// where the constant factors c (Mul/Div by scalars, on either operand or on
// the scores: PyTorch's export scales Q and Kᵀ by √scale each) multiply into
// the layer's scale. Kᵀ is read as computed (k_transposed=1) when it comes
// from a Transpose swapping the last two axes of K only as a value; the
// layer reads it in that layout either way. The NaN guard becomes
// nan_to_zero=1. Every intermediate must be read only inside the pattern.
// The layer's Softmax stays FP32 in every precision; its two
// activation×activation products are no longer MatMuls, so INT8/FP8 engines
// keep them in float (measured in the builder's transformer tests).
func FuseAttention(m *ir.Model, opt Options) (int, error) {
	r := newRewriter(m, opt)
	r.infer(0)
	fused := 0
	for _, n := range slices.Clone(r.g.Nodes) {
		if _, alive := r.pos[n]; !alive || !isOp(n, "MatMul") || len(n.Inputs) != 2 {
			continue
		}
		if r.fuseAttention(n) {
			fused++
			r.reindex()
		}
	}
	return fused, nil
}

func (r *rewriter) fuseAttention(pv *ir.Node) bool {
	p, v := pv.Inputs[0], pv.Inputs[1]
	if !r.internal(p) || !r.floatOutput(pv) {
		return false
	}
	var nodes []*ir.Node
	nanToZero := int64(0)
	pn := r.prod[p]
	if isOp(pn, "Where") && len(pn.Inputs) == 3 {
		isnan := r.prod[pn.Inputs[0]]
		zero, ok := r.scalar(pn.Inputs[1])
		sm := pn.Inputs[2]
		if !isOp(isnan, "IsNaN") || !ok || zero != 0 || !r.internal(pn.Inputs[0]) || isnan.Inputs[0] != sm ||
			len(r.cons[sm]) != 2 || r.outs[sm] || r.pinned[sm] {
			return false
		}
		nodes = append(nodes, pn, isnan)
		nanToZero = 1
		p = sm
	} else if !r.internal(p) {
		return false
	}
	sm := r.prod[p]
	if !isOp(sm, "Softmax") || !r.lastAxisSoftmax(sm) {
		return false
	}
	nodes = append(nodes, sm)
	s := sm.Inputs[0]
	if !r.internal(s) {
		return false
	}
	// Optional additive mask.
	mask := ""
	if add := r.prod[s]; isOp(add, "Add") && len(add.Inputs) == 2 {
		for k := range 2 {
			if qk := r.prod[add.Inputs[k]]; r.internal(add.Inputs[k]) && r.scoresOf(add.Inputs[k]) != nil && qk != nil {
				mask = add.Inputs[1-k]
				s = add.Inputs[k]
				nodes = append(nodes, add)
				break
			}
		}
		if mask == "" {
			return false
		}
	}
	sc := r.scoresOf(s)
	if sc == nil {
		return false
	}
	nodes = append(nodes, sc.nodes...)
	if mt := r.typeOf(mask); mask != "" && (mt == nil || mt.DType != ir.Float32) {
		return false
	}
	if t := r.typeOf(pv.Outputs[0]); t == nil || t.DType != ir.Float32 {
		return false
	}
	inputs := []string{sc.q, sc.k, v}
	if mask != "" {
		inputs = append(inputs, mask)
	}
	at := &ir.Node{OpType: "Attention", Domain: kiln.Domain, Inputs: inputs, Outputs: []string{pv.Outputs[0]}, Attrs: []*ir.Attribute{
		{Name: "scale", Type: ir.AttrFloat, F: float32(sc.scale)},
		{Name: "k_transposed", Type: ir.AttrInt, I: 1},
		{Name: "nan_to_zero", Type: ir.AttrInt, I: nanToZero}}}
	r.replaceBy(at, append(nodes, pv)...)
	return true
}

// lastAxisSoftmax: Softmax over the last axis only.
func (r *rewriter) lastAxisSoftmax(n *ir.Node) bool {
	shape, ok := r.shapeOf(n.Inputs[0])
	if !ok || len(n.Inputs) != 1 {
		return false
	}
	def := int64(-1)
	if r.m.Opset("") < 13 {
		def = 1
	}
	axis, err := n.AttrInt("axis", def)
	return err == nil && (axis == -1 || axis == int64(len(shape)-1))
}

type scores struct {
	q, k  string // k in [.., D, Sk] layout
	scale float64
	nodes []*ir.Node
}

// scoresOf matches s = c·MatMul(c₁·Q, c₂·Kᵀ).
func (r *rewriter) scoresOf(s string) *scores {
	ps := r.asProduct(s)
	if len(ps.leaves) != 1 || !(ps.coef > 0) || math.IsInf(ps.coef, 0) {
		return nil
	}
	mmOut := ps.leaves[0]
	mm := r.prod[mmOut]
	if !isOp(mm, "MatMul") || len(mm.Inputs) != 2 || (mmOut != s && !r.internal(mmOut)) {
		return nil
	}
	sc := &scores{scale: ps.coef, nodes: append(ps.nodes, mm)}
	side := func(v string) (string, bool) {
		if !r.internal(v) {
			return v, true
		}
		p := r.asProduct(v)
		if len(p.leaves) != 1 || !(p.coef > 0) {
			return "", false
		}
		sc.scale *= p.coef
		sc.nodes = append(sc.nodes, p.nodes...)
		return p.leaves[0], true
	}
	var ok1, ok2 bool
	sc.q, ok1 = side(mm.Inputs[0])
	sc.k, ok2 = side(mm.Inputs[1])
	qs, okq := r.shapeOf(sc.q)
	ks, okk := r.shapeOf(sc.k)
	if !ok1 || !ok2 || !okq || !okk || len(qs) < 2 || len(ks) < 2 {
		return nil
	}
	return sc
}
