package passes

import (
	"slices"
	"strings"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops/kiln"
)

// FuseLayerNorm rewrites layer normalization into one kiln.LayerNorm:
//   - ONNX LayerNormalization (opset 17) whose Mean/InvStdDev outputs nobody
//     reads, with constant Scale/B holding one value per normalized element;
//   - its expanded form over the last axis, as older exporters write it:
//     μ = ReduceMean(x); d = x − μ; v = ReduceMean(Pow(d, 2) or d·d);
//     y = d / Sqrt(v + ε), then optionally · γ and + β (constants).
//
// LayerNorm stays FP32 inside INT8/FP8/FP16 engines (the precision step
// only quantizes Conv/Gemm/MatMul and fp16 covers no normalization).
func FuseLayerNorm(m *ir.Model, opt Options) (int, error) {
	r := newRewriter(m, opt)
	r.infer(0)
	fused := 0
	for _, n := range slices.Clone(r.g.Nodes) {
		if _, alive := r.pos[n]; !alive {
			continue
		}
		var ok bool
		switch {
		case isOp(n, "LayerNormalization"):
			ok = r.fuseLayerNormOp(n)
		case isOp(n, "Sub"):
			ok = r.fuseExpandedLayerNorm(n)
		}
		if ok {
			fused++
			r.reindex()
		}
	}
	return fused, nil
}

func (r *rewriter) fuseLayerNormOp(n *ir.Node) bool {
	for _, o := range n.Outputs[1:] {
		if o != "" && (len(r.cons[o]) > 0 || r.outs[o]) {
			return false
		}
	}
	if st, err := n.AttrInt("stash_type", 1); err != nil || st != 1 || len(n.Inputs) < 2 {
		return false
	}
	axis, err := n.AttrInt("axis", -1)
	eps, err2 := n.AttrFloat("epsilon", 1e-5)
	shape, ok := r.shapeOf(n.Inputs[0])
	if err != nil || err2 != nil || !ok || !r.floatOutput(n) {
		return false
	}
	ax := int(axis)
	if ax < 0 {
		ax += len(shape)
	}
	if ax < 0 || ax >= len(shape) {
		return false
	}
	size := int64(1)
	for _, d := range shape[ax:] {
		if !d.Known() {
			return false
		}
		size *= d.Value
	}
	for _, p := range n.Inputs[1:] {
		if p == "" {
			continue
		}
		if c := r.constant(p); c == nil || c.Len() != size {
			return false
		}
	}
	fusedNode := &ir.Node{OpType: "LayerNorm", Domain: kiln.Domain, Inputs: slices.Clone(n.Inputs[:min(3, len(n.Inputs))]),
		Outputs: []string{n.Outputs[0]}, Attrs: []*ir.Attribute{
			{Name: "axis", Type: ir.AttrInt, I: axis}, {Name: "epsilon", Type: ir.AttrFloat, F: eps}}}
	r.replaceBy(fusedNode, n)
	return true
}

// fuseExpandedLayerNorm matches the expanded form starting at d = x − μ.
func (r *rewriter) fuseExpandedLayerNorm(sub *ir.Node) bool {
	if len(sub.Inputs) != 2 || !r.floatOutput(sub) {
		return false
	}
	x, d := sub.Inputs[0], sub.Outputs[0]
	mean := r.prod[sub.Inputs[1]]
	if !r.isLastAxisMean(mean, x) || !r.internal(sub.Inputs[1]) || r.outs[d] || r.pinned[d] || len(r.cons[d]) != 2 {
		return false
	}
	shape, ok := r.shapeOf(x)
	if !ok || len(shape) == 0 || !shape[len(shape)-1].Known() {
		return false
	}
	h := shape[len(shape)-1].Value
	var sq, div *ir.Node
	for _, c := range r.cons[d] {
		switch {
		case isOp(c, "Pow") && c.Inputs[0] == d:
			if e, ok := r.scalar(input(c, 1)); ok && e == 2 {
				sq = c
			}
		case isOp(c, "Mul") && len(c.Inputs) == 2 && c.Inputs[0] == d && c.Inputs[1] == d:
			sq = c
		case isOp(c, "Div") && len(c.Inputs) == 2 && c.Inputs[0] == d:
			div = c
		}
	}
	if sq == nil || div == nil || !r.internal(sq.Outputs[0]) {
		return false
	}
	vmean := r.cons[sq.Outputs[0]][0]
	if !r.isLastAxisMean(vmean, sq.Outputs[0]) || !r.internal(vmean.Outputs[0]) {
		return false
	}
	addEps := r.cons[vmean.Outputs[0]][0]
	epsName, ok := otherInput(addEps, vmean.Outputs[0])
	eps, ok2 := r.scalar(epsName)
	if !isOp(addEps, "Add") || !ok || !ok2 || !r.internal(addEps.Outputs[0]) {
		return false
	}
	sqrt := r.cons[addEps.Outputs[0]][0]
	if !isOp(sqrt, "Sqrt") || !r.internal(sqrt.Outputs[0]) || div.Inputs[1] != sqrt.Outputs[0] {
		return false
	}
	nodes := []*ir.Node{mean, sub, sq, vmean, addEps, sqrt, div}
	out := div.Outputs[0]
	gamma, beta := "", ""
	if c := r.affine(out, "Mul", h); c != nil {
		gamma, out = r.vectorInit(c, h), c.Outputs[0]
		nodes = append(nodes, c)
	}
	if c := r.affine(out, "Add", h); c != nil {
		beta, out = r.vectorInit(c, h), c.Outputs[0]
		nodes = append(nodes, c)
	}
	if gamma == "" {
		ones := ir.NewTensor(ir.Float32, []int64{h})
		for i := range h {
			ones.SetFloat64At(i, 1)
		}
		gamma = r.addInitializer(x+"_layernorm_scale", ones)
	}
	if xt := r.typeOf(x); xt == nil || xt.DType != ir.Float32 {
		return false
	}
	in := []string{x, gamma}
	if beta != "" {
		in = append(in, beta)
	}
	fusedNode := &ir.Node{OpType: "LayerNorm", Domain: kiln.Domain, Inputs: in, Outputs: []string{out}, Attrs: []*ir.Attribute{
		{Name: "axis", Type: ir.AttrInt, I: -1}, {Name: "epsilon", Type: ir.AttrFloat, F: float32(eps)}}}
	r.replaceBy(fusedNode, nodes...)
	return true
}

// isLastAxisMean: n = ReduceMean(x) over the last axis only, keepdims.
func (r *rewriter) isLastAxisMean(n *ir.Node, x string) bool {
	if !isOp(n, "ReduceMean") || len(n.Inputs) == 0 || n.Inputs[0] != x {
		return false
	}
	if kd, err := n.AttrInt("keepdims", 1); err != nil || kd != 1 {
		return false
	}
	axes, ok := r.axesOf(n)
	shape, ok2 := r.shapeOf(x)
	return ok && ok2 && len(axes) == 1 && (axes[0] == -1 || axes[0] == int64(len(shape)-1))
}

// affine returns the only reader of v when it is op(v, c) with c a constant
// of h elements along the last axis (γ or β).
func (r *rewriter) affine(v, op string, h int64) *ir.Node {
	if !r.internal(v) {
		return nil
	}
	c := r.cons[v][0]
	other, ok := otherInput(c, v)
	if !isOp(c, op) || !ok {
		return nil
	}
	t := r.constant(other)
	if t == nil || t.DType != ir.Float32 || t.Len() != h || (t.Rank() > 0 && t.Dims[t.Rank()-1] != h) {
		return nil
	}
	return c
}

// vectorInit returns the constant input of c as an [h] initializer.
func (r *rewriter) vectorInit(c *ir.Node, h int64) string {
	for _, in := range c.Inputs {
		if t := r.constant(in); t != nil {
			if t.Rank() == 1 && r.inits[in] != nil {
				return in
			}
			v := ir.NewTensor(ir.Float32, []int64{h})
			for i := range h {
				v.SetFloat64At(i, t.Float64At(i))
			}
			return r.addInitializer(in+"_vector", v)
		}
	}
	return ""
}

// replaceBy puts fused where the last of nodes is and removes nodes; fused
// is named after them, TensorRT style, and records them as members.
func (r *rewriter) replaceBy(fused *ir.Node, nodes ...*ir.Node) {
	slices.SortFunc(nodes, func(a, b *ir.Node) int { return r.pos[a] - r.pos[b] })
	var names, opTypes []string
	for _, n := range nodes {
		nn, no := members(n)
		names = append(names, nn...)
		opTypes = append(opTypes, no...)
	}
	fused.Name = strings.Join(names, " + ")
	setAttr(fused, stringsAttr("kiln_members", names))
	setAttr(fused, stringsAttr("kiln_member_ops", opTypes))
	r.ensureKilnOpset()
	last := nodes[len(nodes)-1]
	r.g.Nodes[r.pos[last]] = fused
	r.removeNodes(nodes[:len(nodes)-1]...)
	r.fusion("Fusing %s into %s.%s", fused.Name, kiln.Domain, fused.OpType)
}
