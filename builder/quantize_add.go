package builder

import (
	"math"
	"strings"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

// fuseAdds turns ONNX Runtime's quantized residual add, DQ(a) + DQ(b) →
// [Relu] → Q (Add or two-input Sum; per-tensor int8/uint8 on every side),
// into one kiln.QAdd that reads both inputs' codes and writes the Q's codes,
// bit-exact with the chain (ops/kilnq). The Relu may also come after the Q,
// on its codes, where sink moved the Q above it (zero point 0, so
// max(Q(s), 0) = Q(max(s, 0))). The DequantizeLinear nodes stay while
// something else reads them. Inputs whose shapes are not known to be equal
// are left alone: the fused op broadcasts, but the fast kernels do not.
func (c *qdqConv) fuseAdds() {
	c.dce() // sink leaves dropped Relus reading the sums until then
	g := c.m.Graph
	var shapes map[string]*ir.Type
	drop := map[*ir.Node]bool{}
	for i, n := range g.Nodes {
		if n.Domain != "" || (n.OpType != "Add" && n.OpType != "Sum") || len(n.Inputs) != 2 || len(n.Outputs) != 1 {
			continue
		}
		var in [2]*qdqParams
		ok := true
		for k := range in {
			in[k], ok = c.codeInput(n.Inputs[k])
			if !ok {
				break
			}
		}
		if !ok {
			continue
		}
		members := []*ir.Node{n}
		relu := false
		y := n.Outputs[0]
		r := c.onlyReader(y)
		if r != nil && r.OpType == "Relu" && r.Domain == "" {
			members, relu, y = append(members, r), true, r.Outputs[0]
			r = c.onlyReader(y)
		}
		if r == nil || r.OpType != "QuantizeLinear" || r.Domain != "" {
			continue
		}
		q, ok := c.codeParams(r)
		if !ok {
			continue
		}
		members, y = append(members, r), r.Outputs[0]
		_, yz, _ := q.perTensor()
		if after := c.onlyReader(y); !relu && yz == 0 && after != nil && after.OpType == "Relu" && after.Domain == "" {
			members, relu, y = append(members, after), true, after.Outputs[0]
		}
		if shapes == nil {
			shapes = c.types()
		}
		ta, tb := shapes[n.Inputs[0]], shapes[n.Inputs[1]]
		if ta == nil || tb == nil || !ta.HasShape || !tb.HasShape || !ta.Shape.Equal(tb.Shape) {
			c.logf("Not fusing %s into kiln.QAdd: its inputs' shapes are not known to be equal", n.Name)
			continue
		}
		g.Nodes[i] = qaddNode(in, q, relu, members, y)
		for _, m := range members {
			drop[m] = true
		}
		c.logf("Fusing %s into kiln.QAdd (codes in, codes out)", g.Nodes[i].Name)
	}
	c.removeNodes(drop)
}

// QAddFusionVeto is implemented by a backend that must not see kiln.QAdd
// while it is enabled (no kernel for it): the builder then leaves the
// residual add's DQ/Add/Q chain as it is. A backend that vetoes the pool
// fusion (builder.PoolFusionVeto: the CUDA backend) and does not implement
// this interface is taken to veto kiln.QAdd as well.
type QAddFusionVeto interface {
	VetoesQAddFusion() bool
}

func qaddVetoed() bool {
	for _, bk := range engine.Backends() {
		if v, ok := bk.(QAddFusionVeto); ok {
			if v.VetoesQAddFusion() {
				return true
			}
			continue
		}
		if v, ok := bk.(PoolFusionVeto); ok && v.VetoesPoolFusion() {
			return true
		}
	}
	return false
}

// codeInput returns the per-tensor int8/uint8 DequantizeLinear producing
// name, with a finite scale.
func (c *qdqConv) codeInput(name string) (*qdqParams, bool) {
	p, ok := c.dqInput(name)
	if !ok {
		return nil, false
	}
	return p, c.isCodeParams(p)
}

// codeParams is codeInput for a QuantizeLinear node.
func (c *qdqConv) codeParams(q *ir.Node) (*qdqParams, bool) {
	p, ok := c.params(q)
	return p, ok && c.isCodeParams(p)
}

func (c *qdqConv) isCodeParams(p *qdqParams) bool {
	s, _, ok := p.perTensor()
	return ok && (p.dtype == ir.Int8 || p.dtype == ir.Uint8) && !math.IsInf(float64(s), 0) && p.node.Attr("precision") == nil
}

// onlyReader is the one node reading value name, or nil (several readers,
// none, or a graph output).
func (c *qdqConv) onlyReader(name string) *ir.Node {
	if rs := c.cons[name]; len(rs) == 1 && !c.outs[name] {
		return rs[0]
	}
	return nil
}

// types infers the graph's value types as it stands (nil map entries for
// what inference cannot tell).
func (c *qdqConv) types() map[string]*ir.Type {
	m := *c.m // the kiln.Q* layers need the kiln opset, which quantize adds after the conversion
	if m.Opset("kiln") == 0 {
		m.Opsets = append(append([]ir.OpsetImport(nil), m.Opsets...), ir.OpsetImport{Domain: "kiln", Version: 1})
	}
	inf, _ := ops.Infer(&m, ops.InferOptions{FoldLimit: 1 << 24})
	if inf == nil {
		return map[string]*ir.Type{}
	}
	return inf.Types
}

// qaddNode builds the kiln.QAdd of a fused chain writing y.
func qaddNode(in [2]*qdqParams, q *qdqParams, relu bool, members []*ir.Node, y string) *ir.Node {
	names := make([]string, len(members))
	var mn, mo [][]byte
	for i, m := range members {
		names[i] = layerName(m)
		mn, mo = append(mn, []byte(names[i])), append(mo, []byte(m.OpType))
	}
	n := &ir.Node{Name: strings.Join(names, " + "), OpType: "QAdd", Domain: "kiln",
		Inputs: []string{in[0].node.Inputs[0], in[1].node.Inputs[0]}, Outputs: []string{y}}
	add := func(p *qdqParams, prefix string) {
		s, z, _ := p.perTensor()
		n.Attrs = append(n.Attrs, &ir.Attribute{Name: prefix + "_scale", Type: ir.AttrFloat, F: s})
		if z != 0 {
			n.Attrs = append(n.Attrs, &ir.Attribute{Name: prefix + "_zero", Type: ir.AttrInt, I: int64(z)})
		}
	}
	add(in[0], "a")
	add(in[1], "b")
	add(q, "y")
	n.Attrs = append(n.Attrs, &ir.Attribute{Name: "y_type", Type: ir.AttrInt, I: int64(q.dtype)})
	if relu {
		n.Attrs = append(n.Attrs, &ir.Attribute{Name: "activation", Type: ir.AttrString, S: []byte("Relu")})
	}
	n.Attrs = append(n.Attrs,
		&ir.Attribute{Name: "kiln_members", Type: ir.AttrStrings, Strings: mn},
		&ir.Attribute{Name: "kiln_member_ops", Type: ir.AttrStrings, Strings: mo})
	return n
}
