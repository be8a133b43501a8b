package passes

import (
	"slices"

	"math"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

// FoldBatchNorm folds an inference BatchNormalization into the Conv,
// ConvTranspose or Gemm that feeds it (when nothing else reads the layer's
// output): with s = γ/√(σ²+ε) per output channel, W' = W·s and
// b' = (b−μ)·s + β, computed in float64. A Conv or Gemm becomes its kiln
// form with the BatchNormalization as a member; a ConvTranspose keeps its
// op and takes the joined name.
func FoldBatchNorm(m *ir.Model, opt Options) (int, error) {
	r := newRewriter(m, opt)
	r.infer(0)
	folded := 0
	for _, bn := range slices.Clone(r.g.Nodes) {
		if _, alive := r.pos[bn]; !alive || !isOp(bn, "BatchNormalization") {
			continue
		}
		p, s, shift, ok := r.batchNormOf(bn)
		if !ok {
			continue
		}
		var done bool
		switch p.OpType {
		case "Conv":
			done = r.foldIntoConv(p, s, shift, false)
		case "ConvTranspose":
			done = r.foldIntoConv(p, s, shift, true)
		case "Gemm":
			done = r.foldIntoGemm(p, s, shift)
		}
		if !done {
			continue
		}
		what := label(p)
		p.Outputs[0] = bn.Outputs[0]
		r.absorb(p, bn)
		r.removeNodes(bn)
		r.reindex()
		r.fusion("Folding BatchNormalization %s into %s", label(bn), what)
		folded++
	}
	return folded, nil
}

// batchNormOf checks that bn can be folded into its producer and returns
// the producer and the per-channel scale s and shift t (y = x·s + t).
func (r *rewriter) batchNormOf(bn *ir.Node) (*ir.Node, []float64, []float64, bool) {
	if len(bn.Inputs) < 5 || len(bn.Outputs) == 0 || bn.Outputs[0] == "" {
		return nil, nil, nil, false
	}
	for _, o := range bn.Outputs[1:] {
		if o != "" && (len(r.cons[o]) > 0 || r.outs[o]) {
			return nil, nil, nil, false
		}
	}
	if tm, err := bn.AttrInt("training_mode", 0); err != nil || tm != 0 {
		return nil, nil, nil, false
	}
	if sp, err := bn.AttrInt("spatial", 1); err != nil || sp != 1 {
		return nil, nil, nil, false
	}
	x := bn.Inputs[0]
	p := r.prod[x]
	if p == nil || !r.internal(x) || p.Outputs[0] != x {
		return nil, nil, nil, false
	}
	switch {
	case anchorKind(p) == "Conv" || anchorKind(p) == "Gemm":
		if act, z := epilogue(p); act != "" || z {
			return nil, nil, nil, false
		}
	case isOp(p, "ConvTranspose"):
	default:
		return nil, nil, nil, false
	}
	eps, err := bn.AttrFloat("epsilon", 1e-5)
	if err != nil {
		return nil, nil, nil, false
	}
	var params [4][]float64 // γ, β, μ, σ²
	for i := range params {
		t := r.constant(bn.Inputs[i+1])
		if t == nil || t.Rank() != 1 || !t.DType.IsFloat() || t.Check() != nil {
			return nil, nil, nil, false
		}
		params[i] = t.Float64s()
		if len(params[i]) != len(params[0]) {
			return nil, nil, nil, false
		}
	}
	c := len(params[0])
	s, shift := make([]float64, c), make([]float64, c)
	for k := range c {
		s[k] = params[0][k] / math.Sqrt(params[3][k]+float64(eps))
		shift[k] = params[1][k] - params[2][k]*s[k]
	}
	return p, s, shift, true
}

// foldIntoConv scales the weights of a Conv (W [M, C/g, k...]) or
// ConvTranspose (W [C, M/g, k...]) per output channel and sets the bias.
func (r *rewriter) foldIntoConv(p *ir.Node, s, shift []float64, transpose bool) bool {
	w := r.constant(input(p, 1))
	if w == nil || !w.DType.IsFloat() || w.Rank() < 3 || w.Check() != nil {
		return false
	}
	group, err := p.AttrInt("group", 1)
	if err != nil || group < 1 {
		return false
	}
	m := w.Dims[0]
	if transpose {
		m = w.Dims[1] * group
	}
	if int64(len(s)) != m || (transpose && w.Dims[0]%group != 0) {
		return false
	}
	b, ok := r.biasVector(input(p, 2), m)
	if !ok {
		return false
	}
	inner := w.Len() / (w.Dims[0] * w.Dims[1])
	channel := func(i int64) int64 { // output channel of flat weight index i
		if !transpose {
			return i / (w.Len() / m)
		}
		c, j := i/(w.Dims[1]*inner), (i/inner)%w.Dims[1]
		return (c/(w.Dims[0]/group))*w.Dims[1] + j
	}
	nw := ir.NewTensor(w.DType, w.Dims)
	for i := range w.Len() {
		nw.SetFloat64At(i, w.Float64At(i)*s[channel(i)])
	}
	nb := ir.NewTensor(w.DType, []int64{m})
	for k := range m {
		nb.SetFloat64At(k, b[k]*s[k]+shift[k])
	}
	setInput(p, 1, r.addInitializer(input(p, 1)+"_bnfold", nw))
	setInput(p, 2, r.addInitializer(label(p)+"_bias_bnfold", nb))
	return true
}

// biasVector reads an optional constant bias of length n (zeros if absent).
func (r *rewriter) biasVector(name string, n int64) ([]float64, bool) {
	if name == "" {
		return make([]float64, n), true
	}
	t := r.constant(name)
	if t == nil || t.Len() != n || !t.DType.IsFloat() || t.Check() != nil {
		return nil, false
	}
	return t.Float64s(), true
}

// foldIntoGemm: Y = α·A·B + β·C, normalized over its columns: B's column
// (row, with transB) n scales by s[n]; C' = s·(β·C − 0) + t with β' = 1.
func (r *rewriter) foldIntoGemm(p *ir.Node, s, shift []float64) bool {
	w := r.constant(input(p, 1))
	if w == nil || !w.DType.IsFloat() || w.Rank() != 2 || w.Check() != nil {
		return false
	}
	transB, err1 := p.AttrInt("transB", 0)
	beta, err2 := p.AttrFloat("beta", 1)
	if err1 != nil || err2 != nil {
		return false
	}
	n := w.Dims[1]
	if transB != 0 {
		n = w.Dims[0]
	}
	if int64(len(s)) != n {
		return false
	}
	nw := ir.NewTensor(w.DType, w.Dims)
	for i := range w.Len() {
		col := i % w.Dims[1]
		if transB != 0 {
			col = i / w.Dims[1]
		}
		nw.SetFloat64At(i, w.Float64At(i)*s[col])
	}
	cdims := []int64{n}
	var c *ir.Tensor
	if name := input(p, 2); name != "" {
		if c = r.constant(name); c == nil || !c.DType.IsFloat() || c.Rank() > 2 || c.Check() != nil {
			return false
		}
		d, err := ops.BroadcastDims(c.Dims, cdims)
		if err != nil {
			return false
		}
		cdims = d
	}
	nc := ir.NewTensor(w.DType, cdims)
	bc := ops.NewBroadcast(cdims, cdims, []int64{n})
	if c != nil {
		bc = ops.NewBroadcast(cdims, c.Dims, []int64{n})
	}
	for o := range nc.Len() {
		k := bc.Index(1, o)
		v := 0.0
		if c != nil {
			v = float64(beta) * c.Float64At(bc.Index(0, o))
		}
		nc.SetFloat64At(o, v*s[k]+shift[k])
	}
	setInput(p, 1, r.addInitializer(input(p, 1)+"_bnfold", nw))
	setInput(p, 2, r.addInitializer(label(p)+"_bias_bnfold", nc))
	setAttr(p, &ir.Attribute{Name: "beta", Type: ir.AttrFloat, F: 1})
	return true
}
