package ops

import (
	"fmt"
	"sort"
	"strings"

	"github.com/kilnml/kiln/ir"
)

// UnsupportedOp is one op kiln cannot run, with every node that uses it.
type UnsupportedOp struct {
	Domain, OpType string
	Opset          int64
	Reason         string
	Nodes          []string
}

// UnsupportedOpsError lists every unsupported op of a model at once.
type UnsupportedOpsError struct {
	Model string // file, when known
	Ops   []UnsupportedOp
}

func (e *UnsupportedOpsError) Error() string {
	var b strings.Builder
	if e.Model != "" {
		fmt.Fprintf(&b, "%s: ", e.Model)
	}
	fmt.Fprintf(&b, "%d unsupported op(s):", len(e.Ops))
	for _, op := range e.Ops {
		d := op.Domain
		if d == "" {
			d = "ai.onnx"
		}
		nodes := op.Nodes
		more := ""
		if len(nodes) > 5 {
			more = fmt.Sprintf(" and %d more", len(nodes)-5)
			nodes = nodes[:5]
		}
		fmt.Fprintf(&b, "\n  %s (domain %s, opset %d) %s; used by %s%s", op.OpType, d, op.Opset, op.Reason,
			strings.Join(nodes, ", "), more)
	}
	return b.String()
}

// CheckSupported returns an *UnsupportedOpsError naming every op of the
// main graph that has no kernel at the model's opset, or nil.
func CheckSupported(m *ir.Model) error {
	byKey := map[string]*UnsupportedOp{}
	var order []string
	for _, n := range m.Graph.Nodes {
		opset := m.Opset(n.Domain)
		if _, err := Lookup(n.Domain, n.OpType, opset); err != nil {
			ue := err.(*UnsupportedError)
			k := key(n.Domain, n.OpType)
			u := byKey[k]
			if u == nil {
				u = &UnsupportedOp{Domain: n.Domain, OpType: n.OpType, Opset: opset, Reason: ue.Reason}
				if m.Opset(n.Domain) == 0 && n.Domain != "" {
					u.Reason = "is in a domain the model does not import"
				}
				byKey[k] = u
				order = append(order, k)
			}
			name := n.Name
			if name == "" {
				name = fmt.Sprintf("(output %q)", firstOutput(n))
			}
			u.Nodes = append(u.Nodes, name)
		}
	}
	if len(order) == 0 {
		return nil
	}
	sort.Strings(order)
	e := &UnsupportedOpsError{Model: m.Path}
	for _, k := range order {
		e.Ops = append(e.Ops, *byKey[k])
	}
	return e
}

func firstOutput(n *ir.Node) string {
	if len(n.Outputs) > 0 {
		return n.Outputs[0]
	}
	return ""
}
