package passes

import (
	"slices"
	"strings"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

// FuseLayers fuses into each Conv, Gemm and MatMul, in this order and as
// far as the graph allows:
//   - a bias Add of a constant (Conv: [C,1,1] or [1,C,1,1] folded into B;
//     MatMul: a vector over the last axis, kiln.MatMul's Bias; Gemm: into C);
//   - a residual Add (or two-input Sum) whose other input is a computed
//     tensor of exactly the layer's output shape (the Z input);
//   - an activation: Relu, Clip with constant bounds, LeakyRelu, Sigmoid,
//     Tanh, Gelu (the op, its Erf and its tanh expansions), HardSwish (the op
//     or x·HardSigmoid(x)), HardSigmoid.
//
// Each step needs the layer's output to be read by the absorbed node only
// and not to be a graph output. The fused node writes the last member's
// output and is named after its members ("conv1 + relu1").
func FuseLayers(m *ir.Model, opt Options) (int, error) {
	r := newRewriter(m, opt)
	r.infer(0)
	fused := 0
	for _, n := range slices.Clone(r.g.Nodes) {
		if anchorKind(n) == "" || len(n.Outputs) != 1 || !r.floatOutput(n) || n.Attr("pool") != nil { // nothing follows a fused pool
			continue
		}
		// An expanded activation is tried first: Relu6(x+3)/6 starts with
		// an Add that would otherwise pass for a bias.
		for r.fuseExpandedActivation(n) || r.fuseBias(n) || r.fuseResidual(n) || r.fuseActivation(n) {
			fused++
			r.reindex()
		}
	}
	return fused, nil
}

func (r *rewriter) floatOutput(n *ir.Node) bool {
	t := r.typeOf(n.Outputs[0])
	return t != nil && t.DType.IsFloat()
}

// consumer returns the only node reading the anchor's output, if it may be
// absorbed.
func (r *rewriter) consumer(n *ir.Node) *ir.Node {
	x := n.Outputs[0]
	if !r.internal(x) {
		return nil
	}
	return r.cons[x][0]
}

// merge makes anchor absorb the given nodes (members in graph order); it
// takes the place of last, one of them, and writes its output.
func (r *rewriter) merge(anchor, last *ir.Node, absorbed ...*ir.Node) {
	slices.SortFunc(absorbed, func(a, b *ir.Node) int { return r.pos[a] - r.pos[b] })
	old := label(anchor)
	var names []string
	for _, a := range absorbed {
		names = append(names, label(a))
	}
	r.absorb(anchor, absorbed...)
	anchor.Outputs[0] = last.Outputs[0]
	r.moveTo(anchor, last)
	r.removeNodes(slices.DeleteFunc(absorbed, func(n *ir.Node) bool { return n == last })...)
	r.fusion("Fusing %s with %s", old, strings.Join(names, " + "))
}

// otherInput returns the input of a binary node that is not x.
func otherInput(n *ir.Node, x string) (string, bool) {
	if len(n.Inputs) != 2 {
		return "", false
	}
	switch {
	case n.Inputs[0] == x && n.Inputs[1] != x:
		return n.Inputs[1], true
	case n.Inputs[1] == x && n.Inputs[0] != x:
		return n.Inputs[0], true
	}
	return "", false
}

// fuseBias absorbs an Add of a constant that is a per-channel bias.
func (r *rewriter) fuseBias(n *ir.Node) bool {
	if act, z := epilogue(n); act != "" || z {
		return false
	}
	add := r.consumer(n)
	if !isOp(add, "Add") {
		return false
	}
	x := n.Outputs[0]
	cname, ok := otherInput(add, x)
	c := r.constant(cname)
	shape, ok2 := r.shapeOf(x)
	xt := r.typeOf(x)
	if !ok || !ok2 || c == nil || xt == nil || c.DType != xt.DType || c.Rank() > len(shape) || c.Check() != nil {
		return false
	}
	switch anchorKind(n) {
	case "Conv":
		return r.convBias(n, add, c, shape)
	case "MatMul":
		return r.matmulBias(n, add, c, shape)
	case "Gemm":
		return r.gemmBias(n, add, c, shape)
	}
	return false
}

// channelVector reads c as a vector along axis ax of a rank-len(shape)
// output with n channels: every other dim of c must be 1.
func channelVector(c *ir.Tensor, rank, ax int, n int64) ([]float64, bool) {
	off := rank - c.Rank()
	per := int64(1)
	for i, d := range c.Dims {
		switch {
		case off+i == ax && (d == n || d == 1):
			per = d
		case d != 1:
			return nil, false
		}
	}
	v := make([]float64, n)
	for k := range v {
		v[k] = c.Float64At(int64(k) % per)
	}
	return v, true
}

// addBias sets input k of n to (its constant value or zeros) + v.
func (r *rewriter) addBias(n *ir.Node, k int, v []float64, dt ir.DType) bool {
	b, ok := r.biasVector(input(n, k), int64(len(v)))
	if !ok {
		return false
	}
	t := ir.NewTensor(dt, []int64{int64(len(v))})
	for i := range v {
		t.SetFloat64At(int64(i), b[i]+v[i])
	}
	setInput(n, k, r.addInitializer(label(n)+"_bias", t))
	return true
}

func (r *rewriter) convBias(n, add *ir.Node, c *ir.Tensor, shape ir.Shape) bool {
	if len(shape) < 3 {
		return false
	}
	ch := int64(-1)
	if w := r.constant(input(n, 1)); w != nil && w.Rank() >= 1 {
		ch = w.Dims[0]
	} else if shape[1].Known() {
		ch = shape[1].Value
	}
	v, ok := channelVector(c, len(shape), 1, ch)
	if ch < 0 || !ok || !r.addBias(n, 2, v, c.DType) {
		return false
	}
	r.merge(n, add, add)
	return true
}

func (r *rewriter) matmulBias(n, add *ir.Node, c *ir.Tensor, shape ir.Shape) bool {
	if len(shape) < 1 || !shape[len(shape)-1].Known() {
		return false
	}
	v, ok := channelVector(c, len(shape), len(shape)-1, shape[len(shape)-1].Value)
	if !ok || !r.addBias(n, 2, v, c.DType) {
		return false
	}
	r.merge(n, add, add)
	return true
}

// gemmBias: C' = β·C + c on their broadcast shape, which must still
// broadcast to the output [M, N] without growing it; β' = 1.
func (r *rewriter) gemmBias(n, add *ir.Node, c *ir.Tensor, shape ir.Shape) bool {
	if len(shape) != 2 {
		return false
	}
	beta, err := n.AttrFloat("beta", 1)
	if err != nil {
		return false
	}
	dims := c.Dims
	var old *ir.Tensor
	if name := input(n, 2); name != "" {
		if old = r.constant(name); old == nil || old.DType != c.DType || old.Check() != nil {
			return false
		}
		if dims, err = ops.BroadcastDims(old.Dims, c.Dims); err != nil {
			return false
		}
	}
	if len(dims) > 2 {
		return false
	}
	off := 2 - len(dims)
	for i, d := range dims {
		if d != 1 && !(shape[off+i].Known() && shape[off+i].Value == d) {
			return false
		}
	}
	t := ir.NewTensor(c.DType, dims)
	oldDims := dims
	if old != nil {
		oldDims = old.Dims
	}
	bc := ops.NewBroadcast(dims, oldDims, c.Dims)
	for o := range t.Len() {
		v := c.Float64At(bc.Index(1, o))
		if old != nil {
			v += float64(beta) * old.Float64At(bc.Index(0, o))
		}
		t.SetFloat64At(o, v)
	}
	setInput(n, 2, r.addInitializer(label(n)+"_bias", t))
	setAttr(n, &ir.Attribute{Name: "beta", Type: ir.AttrFloat, F: 1})
	r.merge(n, add, add)
	return true
}

// fuseResidual absorbs Add(y, z) (or Sum) where z is computed elsewhere
// with exactly y's shape: Z input of the fused op.
func (r *rewriter) fuseResidual(n *ir.Node) bool {
	if act, z := epilogue(n); act != "" || z {
		return false
	}
	add := r.consumer(n)
	if !isOp(add, "Add") && !isOp(add, "Sum") {
		return false
	}
	x := n.Outputs[0]
	z, ok := otherInput(add, x)
	if !ok || r.constant(z) != nil {
		return false
	}
	a, ok1 := r.shapeOf(x)
	b, ok2 := r.shapeOf(z)
	if !ok1 || !ok2 || !provenEqual(a, b) || r.typeOf(x).DType != r.typeOf(z).DType {
		return false
	}
	// When z is itself a layer that could take this Add, let the later of
	// the two take it (as TensorRT fuses the shortcut into the last conv).
	if p := r.prod[z]; p != nil && anchorKind(p) != "" && r.internal(z) && r.pos[p] > r.pos[n] {
		if act, hz := epilogue(p); act == "" && !hz && r.floatOutput(p) {
			return false
		}
	}
	setInput(n, 3, z)
	r.merge(n, add, add)
	return true
}

// fuseActivation absorbs a single activation node reading the anchor's
// output.
func (r *rewriter) fuseActivation(n *ir.Node) bool {
	if act, _ := epilogue(n); act != "" {
		return false
	}
	if c := r.consumer(n); c != nil {
		if a, ok := r.activationNode(c); ok {
			r.setActivation(n, a)
			r.merge(n, c, c)
			return true
		}
	}
	return false
}

// fuseExpandedActivation absorbs an activation written out in elementary
// ops (Gelu, HardSwish, HardSigmoid) reading the anchor's output.
func (r *rewriter) fuseExpandedActivation(n *ir.Node) bool {
	x := n.Outputs[0]
	if act, _ := epilogue(n); act != "" || r.outs[x] || r.pinned[x] || len(r.cons[x]) == 0 {
		return false
	}
	a, root, nodes, ok := r.expandedActivation(x)
	if !ok {
		return false
	}
	r.setActivation(n, a)
	r.merge(n, root, nodes...)
	return true
}
