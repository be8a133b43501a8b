package passes

import (
	"slices"
	"strings"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops/kiln"
)

// Helpers for kiln's fused nodes (docs/ENGINE.md, "Fused ops").

// anchorKind returns "Conv", "Gemm" or "MatMul" for nodes that can absorb
// a bias, residual and activation: the ONNX op or its kiln form.
func anchorKind(n *ir.Node) string {
	switch {
	case n.Domain == kiln.Domain || n.Domain == "" || n.Domain == "ai.onnx":
	default:
		return ""
	}
	switch n.OpType {
	case "Conv", "Gemm", "MatMul":
		return n.OpType
	}
	return ""
}

// epilogue describes what a (possibly fused) anchor already computes.
func epilogue(n *ir.Node) (act string, hasZ bool) {
	if n.Domain != kiln.Domain {
		return "", false
	}
	act, _ = n.AttrString("activation", "")
	return act, len(n.Inputs) > 3 && n.Inputs[3] != ""
}

// members returns the original names and op types a node stands for.
func members(n *ir.Node) (names, opTypes []string) {
	if a := n.Attr("kiln_members"); a != nil {
		for _, s := range a.Strings {
			names = append(names, string(s))
		}
		if o := n.Attr("kiln_member_ops"); o != nil {
			for _, s := range o.Strings {
				opTypes = append(opTypes, string(s))
			}
		}
		return names, opTypes
	}
	return []string{label(n)}, []string{n.OpType}
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

func stringsAttr(name string, vals []string) *ir.Attribute {
	a := &ir.Attribute{Name: name, Type: ir.AttrStrings}
	for _, v := range vals {
		a.Strings = append(a.Strings, []byte(v))
	}
	return a
}

// absorb turns anchor into its kiln form (if it is not already) and adds
// the given nodes as members, named TensorRT style ("conv1 + relu1"). The
// caller rewires inputs and outputs.
func (r *rewriter) absorb(anchor *ir.Node, add ...*ir.Node) {
	names, opTypes := members(anchor)
	for _, n := range add {
		nn, no := members(n)
		names = append(names, nn...)
		opTypes = append(opTypes, no...)
	}
	if anchor.OpType != "ConvTranspose" {
		anchor.Domain = kiln.Domain
		r.ensureKilnOpset()
		setAttr(anchor, stringsAttr("kiln_members", names))
		setAttr(anchor, stringsAttr("kiln_member_ops", opTypes))
	}
	anchor.Name = strings.Join(names, " + ")
}

func (r *rewriter) ensureKilnOpset() {
	if r.m.Opset(kiln.Domain) == 0 {
		r.m.Opsets = append(r.m.Opsets, ir.OpsetImport{Domain: kiln.Domain, Version: 1})
	}
}

// moveTo places anchor where node at is (removing at), so that every input
// the anchor gained from the absorbed nodes is computed before it.
func (r *rewriter) moveTo(anchor, at *ir.Node) {
	nodes := slices.DeleteFunc(r.g.Nodes, func(n *ir.Node) bool { return n == anchor })
	i := slices.Index(nodes, at)
	nodes[i] = anchor
	r.g.Nodes = nodes
}

// setInput sets input k, padding with absent inputs.
func setInput(n *ir.Node, k int, name string) {
	for len(n.Inputs) <= k {
		n.Inputs = append(n.Inputs, "")
	}
	n.Inputs[k] = name
	for len(n.Inputs) > 0 && n.Inputs[len(n.Inputs)-1] == "" {
		n.Inputs = n.Inputs[:len(n.Inputs)-1]
	}
}

func input(n *ir.Node, k int) string {
	if k < len(n.Inputs) {
		return n.Inputs[k]
	}
	return ""
}
