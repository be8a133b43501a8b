package builder

import (
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops/kiln"
	"github.com/kilnml/kiln/ops/kilnq"
)

// The mid scales the CPU INT8 epilogue takes (kernels/avx.MidOK:
// Markstein's correction); outside them the fused layer would fall back
// to the reference kernel, so the builder keeps the kiln.QAdd instead.
const (
	midMinScale = 0x1p-40
	midMaxScale = 0x1p40
)

// fuseMids folds a kiln.QAdd into the kiln.QConv that produces one of its
// inputs, where that conv writes codes read by the QAdd alone and has no
// residual, activation or pool of its own: the conv then quantizes its
// output with the codes' scale (kilnq's m_scale/m_zero, exactly the
// QuantizeLinear → DequantizeLinear the QAdd's input went through), adds
// the QAdd's other input as a code residual (z_scale/z_zero: its
// DequantizeLinear), applies the QAdd's Relu and writes the QAdd's codes.
// Bit-exact with the pair (ops/kilnq's tests); it saves the QAdd's pass
// over the block's output (ONNX Runtime's ResNet residual blocks).
func (c *qdqConv) fuseMids() {
	c.dce() // the DQs the QAdds replaced still read the conv codes until then
	g := c.m.Graph
	var types map[string]*ir.Type
	drop := map[*ir.Node]bool{}
	for i, q := range g.Nodes {
		if q.Domain != "kiln" || q.OpType != "QAdd" || len(q.Inputs) != 2 {
			continue
		}
		if types == nil {
			types = c.types()
		}
		ta, tb := types[q.Inputs[0]], types[q.Inputs[1]]
		if ta == nil || tb == nil {
			continue
		}
		add, err := kilnq.ParseQAdd(q, ta.DType, tb.DType)
		if err != nil {
			continue
		}
		for k := range 2 {
			p := c.prod[q.Inputs[k]]
			if p == nil || drop[p] || p.Domain != "kiln" || p.OpType != "QConv" || c.onlyReader(q.Inputs[k]) != q {
				continue
			}
			if len(p.Inputs) > 3 && p.Inputs[3] != "" || p.Attr(kiln.PoolAttr) != nil || q.Inputs[0] == q.Inputs[1] {
				continue
			}
			tx := types[p.Inputs[0]]
			if tx == nil {
				continue
			}
			l, err := kilnq.ParseLayerMid(p, tx.DType)
			if err != nil || l.MScale != 0 || l.Act.Kind != "" || l.YScale == 0 || l.OutType != add.YType {
				continue
			}
			scale, zero, rscale, rzero := add.AScale, add.AZero, add.BScale, add.BZero
			if k == 1 {
				scale, zero, rscale, rzero = add.BScale, add.BZero, add.AScale, add.AZero
			}
			if l.YScale != scale || l.YZero != zero || !(l.YScale >= midMinScale && l.YScale <= midMaxScale) {
				continue
			}
			g.Nodes[i] = midNode(p, q, l, add, q.Inputs[1-k], rscale, rzero)
			drop[p] = true
			c.logf("Fusing %s into %s (quantize, dequantize, add the residual codes in the epilogue)", q.Name, p.Name)
			break
		}
	}
	c.removeNodes(drop)
}

// midNode is conv p with QAdd q folded in (see fuseMids).
func midNode(p, q *ir.Node, l *kilnq.Layer, add *kilnq.QAddLayer, resid string, rscale float32, rzero int32) *ir.Node {
	n := p.Clone()
	for len(n.Inputs) < 3 {
		n.Inputs = append(n.Inputs, "")
	}
	n.Inputs = append(n.Inputs[:3], resid)
	n.Outputs = append([]string(nil), q.Outputs...)
	set := func(name string, f float32, i int64, isInt bool) {
		var kept []*ir.Attribute
		for _, a := range n.Attrs {
			if a.Name != name {
				kept = append(kept, a)
			}
		}
		n.Attrs = kept
		switch {
		case isInt && i != 0:
			n.Attrs = append(n.Attrs, &ir.Attribute{Name: name, Type: ir.AttrInt, I: i})
		case !isInt:
			n.Attrs = append(n.Attrs, &ir.Attribute{Name: name, Type: ir.AttrFloat, F: f})
		}
	}
	set("m_scale", l.YScale, 0, false)
	set("m_zero", 0, int64(l.YZero), true)
	set("z_scale", rscale, 0, false)
	set("z_zero", 0, int64(rzero), true)
	set("y_scale", add.YScale, 0, false)
	set("y_zero", 0, int64(add.YZero), true)
	if add.Relu {
		n.Attrs = append(n.Attrs, &ir.Attribute{Name: "activation", Type: ir.AttrString, S: []byte("Relu")})
	}
	pm, po := members(p)
	qm, qo := members(q)
	var mn, mo [][]byte
	for i := range pm {
		mn = append(mn, []byte(pm[i]))
	}
	for i := range qm {
		mn = append(mn, []byte(qm[i]))
	}
	for _, o := range append(po, qo...) {
		mo = append(mo, []byte(o))
	}
	set("kiln_members", 0, 0, true) // drop, then add the joined lists
	set("kiln_member_ops", 0, 0, true)
	n.Attrs = append(n.Attrs, &ir.Attribute{Name: "kiln_members", Type: ir.AttrStrings, Strings: mn},
		&ir.Attribute{Name: "kiln_member_ops", Type: ir.AttrStrings, Strings: mo})
	n.Name = p.Name + " + " + q.Name
	return n
}
