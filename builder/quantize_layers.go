package builder

import (
	"fmt"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

// weightAxis is the output-channel axis of a layer's weight (input 1).
func weightAxis(n *ir.Node, rank int) int {
	switch n.OpType {
	case "Conv":
		return 0
	case "Gemm":
		if tb, _ := n.AttrInt("transB", 0); tb != 0 {
			return 0
		}
		return 1
	}
	return rank - 1 // MatMul
}

func isFloat8(dt ir.DType) bool { return dt == ir.Float8E4M3FN || dt == ir.Float8E5M2 }

func isQuantizable(n *ir.Node) bool {
	switch n.OpType {
	case "Conv", "Gemm", "MatMul":
		return n.Domain == "" || n.Domain == "kiln"
	}
	return false
}

// layers rewrites every matching Conv/Gemm/MatMul into a kiln.Q* layer.
func (c *qdqConv) layers() error {
	g := c.m.Graph
	for i, n := range g.Nodes {
		if !isQuantizable(n) || len(n.Inputs) < 2 {
			continue
		}
		a, ok := c.dqInput(n.Inputs[0])
		if !ok {
			continue // not quantized: stays float, nothing to report
		}
		q, why := c.quantLayer(n, a)
		if q == nil {
			c.rep.Warnings = append(c.rep.Warnings, fmt.Sprintf("layer %q stays in float: %s", layerName(n), why))
			continue
		}
		g.Nodes[i] = q
		c.logf("Quantizing %s (%s)", layerName(n), describeQ(q))
	}
	c.index()
	return nil
}

func describeQ(q *ir.Node) string {
	xs, _ := q.AttrFloat("x_scale", 0)
	ws, _ := q.AttrFloats("w_scales", nil)
	return fmt.Sprintf("activation scale %g, %d weight scale(s)", xs, len(ws))
}

// quantLayer builds the kiln.Q* node for n, or says why it cannot.
func (c *qdqConv) quantLayer(n *ir.Node, a *qdqParams) (*ir.Node, string) {
	sa, za, ok := a.perTensor()
	if !ok {
		return nil, "its activation quantization is not per-tensor int8/uint8/E4M3/E5M2 with a supported zero point"
	}
	wantW := ir.Int8
	if isFloat8(a.dtype) {
		wantW = ir.Float8E4M3FN // E5M2 activations too: weights are E4M3 in kiln's engines
	}
	b, ok := c.dqInput(n.Inputs[1])
	if !ok {
		return nil, "its weight input is not dequantized"
	}
	var wName string
	var wScales []float32
	if codes, isConst := c.constWeight(b); isConst {
		if codes.DType != wantW {
			return nil, fmt.Sprintf("weights are %s, activations %s", codes.DType, a.dtype)
		}
		if b.zero != nil {
			for i := int64(0); i < b.zero.Len(); i++ {
				if b.zero.Int64At(i) != 0 {
					return nil, "weights have a non-zero zero point"
				}
			}
		}
		if len(b.scale) > 1 {
			ax := b.axis
			if ax < 0 {
				ax += int64(codes.Rank())
			}
			if int(ax) != weightAxis(n, codes.Rank()) {
				return nil, fmt.Sprintf("weights are quantized along axis %d, not the output-channel axis", b.axis)
			}
		}
		wName = b.node.Inputs[0]
		if c.cst[wName] != codes {
			codes.Name = c.fresh(n.Inputs[1] + "_codes")
			c.m.Graph.Initializers = append(c.m.Graph.Initializers, codes)
			wName = codes.Name
		}
		wScales = b.scale
	} else {
		if n.OpType != "MatMul" {
			return nil, "its weight is not a constant"
		}
		sb, zb, ok := b.perTensor()
		if !ok || zb != 0 || (b.dtype != wantW && !(isFloat8(b.dtype) && isFloat8(wantW))) || a.dtype == ir.Uint8 {
			return nil, "its second activation is not per-tensor symmetric " + wantW.String()
		}
		wName, wScales = b.node.Inputs[0], []float32{sb}
	}
	q := &ir.Node{Name: n.Name, OpType: "Q" + n.OpType, Domain: "kiln", Outputs: n.Outputs, Doc: n.Doc}
	inputs := []string{a.node.Inputs[0], wName, "", ""}
	for _, at := range n.Attrs {
		if at.Name == "beta" && n.OpType == "Gemm" {
			continue // folded into the bias below
		}
		q.Attrs = append(q.Attrs, at)
	}
	switch n.OpType {
	case "Gemm":
		if ta, _ := n.AttrInt("transA", 0); ta != 0 {
			return nil, "transA is set"
		}
		if len(n.Inputs) > 2 && n.Inputs[2] != "" {
			bias, why := c.gemmBias(n)
			if bias == nil {
				return nil, why
			}
			inputs[2] = bias.Name
		}
		if len(n.Inputs) > 3 {
			inputs[3] = n.Inputs[3]
		}
	default:
		for k := 2; k < len(n.Inputs) && k < 4; k++ {
			inputs[k] = n.Inputs[k]
		}
	}
	for len(inputs) > 2 && inputs[len(inputs)-1] == "" {
		inputs = inputs[:len(inputs)-1]
	}
	zAttrs := c.codeResidual(n.OpType, inputs)
	q.Inputs = inputs
	q.Attrs = append(q.Attrs,
		&ir.Attribute{Name: "x_scale", Type: ir.AttrFloat, F: sa},
		&ir.Attribute{Name: "w_scales", Type: ir.AttrFloats, Floats: append([]float32(nil), wScales...)},
		&ir.Attribute{Name: "y_scale", Type: ir.AttrFloat, F: 0})
	if za != 0 {
		q.Attrs = append(q.Attrs, &ir.Attribute{Name: "x_zero", Type: ir.AttrInt, I: int64(za)})
	}
	q.Attrs = append(q.Attrs, zAttrs...)
	if q.Attr("kiln_members") == nil {
		q.Attrs = append(q.Attrs,
			&ir.Attribute{Name: "kiln_members", Type: ir.AttrStrings, Strings: [][]byte{[]byte(layerName(n))}},
			&ir.Attribute{Name: "kiln_member_ops", Type: ir.AttrStrings, Strings: [][]byte{[]byte(n.OpType)}})
	}
	return q, ""
}

// codeResidual makes a convolution's residual input (inputs[3]) that a
// per-tensor DequantizeLinear produces read that DQ's codes instead
// (kiln.QConv's z_scale/z_zero: exactly the DQ's value, see ops/kilnq), so
// the residual stream stays quantized; it returns the attributes to add.
// QGemm/QMatMul could take them too, but their CPU kernels read float
// residuals only so far.
func (c *qdqConv) codeResidual(op string, inputs []string) []*ir.Attribute {
	if c.floatResiduals || op != "Conv" || len(inputs) < 4 || inputs[3] == "" {
		return nil
	}
	dq, ok := c.dqInput(inputs[3])
	if !ok {
		return nil
	}
	zs, zz, ok := dq.perTensor()
	if !ok {
		return nil
	}
	inputs[3] = dq.node.Inputs[0]
	attrs := []*ir.Attribute{{Name: "z_scale", Type: ir.AttrFloat, F: zs}}
	if zz != 0 {
		attrs = append(attrs, &ir.Attribute{Name: "z_zero", Type: ir.AttrInt, I: int64(zz)})
	}
	return attrs
}

// gemmBias turns Gemm's C into a 1-D float bias multiplied by beta.
func (c *qdqConv) gemmBias(n *ir.Node) (*ir.Tensor, string) {
	cv := c.constValue(n.Inputs[2])
	if cv == nil || cv.DType != ir.Float32 {
		return nil, "its bias is not a float32 constant"
	}
	nOut := cv.Len()
	if cv.Rank() > 1 {
		for _, d := range cv.Dims[:cv.Rank()-1] {
			if d != 1 {
				return nil, fmt.Sprintf("its bias %v is not a vector", cv.Dims)
			}
		}
	}
	beta, _ := n.AttrFloat("beta", 1)
	b := ir.NewTensor(ir.Float32, []int64{nOut})
	for i, v := range cv.F32() {
		b.F32()[i] = beta * v
	}
	b.Name = c.fresh(n.Inputs[2] + "_bias")
	c.m.Graph.Initializers = append(c.m.Graph.Initializers, b)
	return b, ""
}

// fuseOutputs makes a quantized layer write codes when its only reader
// quantizes its output to its own code type.
func (c *qdqConv) fuseOutputs() {
	g := c.m.Graph
	drop := map[*ir.Node]bool{}
	for _, n := range g.Nodes {
		if n.Domain != "kiln" || len(n.OpType) < 2 || n.OpType[0] != 'Q' {
			continue
		}
		y := n.Outputs[0]
		readers := c.cons[y]
		if len(readers) != 1 || c.outs[y] || readers[0].OpType != "QuantizeLinear" || readers[0].Domain != "" {
			continue
		}
		q := readers[0]
		qp, ok := c.params(q)
		if !ok {
			continue
		}
		s, z, ok := qp.perTensor()
		x := c.prod[n.Inputs[0]]
		inType := ir.Undefined
		if x != nil && x.OpType == "QuantizeLinear" {
			if xp, ok := c.params(x); ok {
				inType = xp.dtype
			}
		} else if t := c.codeType(n.Inputs[0]); t != ir.Undefined {
			inType = t
		}
		if !ok || qp.dtype != inType {
			continue
		}
		setAttr(n, &ir.Attribute{Name: "y_scale", Type: ir.AttrFloat, F: s})
		if z != 0 {
			setAttr(n, &ir.Attribute{Name: "y_zero", Type: ir.AttrInt, I: int64(z)})
		}
		n.Outputs = []string{q.Outputs[0]}
		drop[q] = true
		c.logf("Fusing %s with %s (requantizing output)", n.Name, q.Name)
	}
	c.removeNodes(drop)
}

// codeType finds the code dtype of a value produced by a quantized layer
// or by an op that carries codes through.
func (c *qdqConv) codeType(name string) ir.DType {
	for i := 0; i < 64; i++ {
		p := c.prod[name]
		if p == nil {
			return ir.Undefined
		}
		switch {
		case p.OpType == "QuantizeLinear" && p.Domain == "":
			if qp, ok := c.params(p); ok {
				return qp.dtype
			}
			return ir.Undefined
		case p.Domain == "" && commutesWithQ[p.OpType]:
			name = p.Inputs[0]
		default:
			return ir.Undefined
		}
	}
	return ir.Undefined
}

func setAttr(n *ir.Node, a *ir.Attribute) {
	for i, old := range n.Attrs {
		if old.Name == a.Name {
			n.Attrs[i] = a
			return
		}
	}
	n.Attrs = append(n.Attrs, a)
}

// cancelPairs replaces Q(DQ(q)) by q when both use the same parameters.
func (c *qdqConv) cancelPairs() {
	g := c.m.Graph
	rename := map[string]string{}
	drop := map[*ir.Node]bool{}
	for _, q := range g.Nodes {
		if q.OpType != "QuantizeLinear" || q.Domain != "" || c.outs[q.Outputs[0]] {
			continue
		}
		dq := c.prod[q.Inputs[0]]
		if dq == nil || dq.OpType != "DequantizeLinear" || dq.Domain != "" {
			continue
		}
		a, ok1 := c.params(q)
		b, ok2 := c.params(dq)
		if ok1 && ok2 && sameParams(a, b) {
			rename[q.Outputs[0]] = dq.Inputs[0]
			drop[q] = true
		}
	}
	for _, n := range g.Nodes {
		for i, in := range n.Inputs {
			if r, ok := rename[in]; ok {
				n.Inputs[i] = r
			}
		}
	}
	c.removeNodes(drop)
}

func (c *qdqConv) removeNodes(drop map[*ir.Node]bool) {
	if len(drop) == 0 {
		return
	}
	g := c.m.Graph
	kept := g.Nodes[:0]
	for _, n := range g.Nodes {
		if !drop[n] {
			kept = append(kept, n)
		}
	}
	g.Nodes = kept
	c.index()
}

// dce removes nodes and initializers nothing reads.
func (c *qdqConv) dce() {
	g := c.m.Graph
	for {
		drop := map[*ir.Node]bool{}
		for _, n := range g.Nodes {
			used := false
			for _, o := range n.Outputs {
				if o != "" && (len(c.cons[o]) > 0 || c.outs[o]) {
					used = true
				}
			}
			if !used {
				drop[n] = true
			}
		}
		if len(drop) == 0 {
			break
		}
		c.removeNodes(drop)
	}
	kept := g.Initializers[:0]
	removed := map[string]bool{}
	for _, t := range g.Initializers {
		if len(c.cons[t.Name]) > 0 || c.outs[t.Name] {
			kept = append(kept, t)
		} else {
			removed[t.Name] = true
		}
	}
	g.Initializers = kept
	// Old IR versions also list initializers among the graph inputs.
	ins := g.Inputs[:0]
	for _, in := range g.Inputs {
		if !removed[in.Name] {
			ins = append(ins, in)
		}
	}
	g.Inputs = ins
	c.index()
}

// constValue returns a constant, also one computed by a DequantizeLinear of
// constants (ONNX Runtime stores biases as int32 codes behind one).
func (c *qdqConv) constValue(name string) *ir.Tensor {
	if t := c.cst[name]; t != nil {
		return t
	}
	p := c.prod[name]
	if p == nil || p.OpType != "DequantizeLinear" || p.Domain != "" {
		return nil
	}
	in := make([]*ir.Tensor, len(p.Inputs))
	for i, x := range p.Inputs {
		if x == "" {
			continue
		}
		if in[i] = c.cst[x]; in[i] == nil {
			return nil
		}
	}
	op, err := ops.Lookup("", p.OpType, c.m.Opset(""))
	if err != nil {
		return nil
	}
	kc := ops.NewCtx(p, c.m.Opset(""))
	outs, err := op.Run(kc, in)
	if err != nil || kc.Err() != nil || len(outs) == 0 {
		return nil
	}
	c.cst[name] = outs[0]
	return outs[0]
}
