package passes

import (
	"slices"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops/kiln"
)

// FusePools folds a 2×2 stride-2 max pool into the convolution it reads
// (kiln.Conv or kiln.QConv, with or without a fused activation): the conv
// gets kiln's pool attribute (ops/kiln/pool.go) and writes the pool's
// output, so kernels can pool each block of rows while it is in cache
// instead of writing the whole conv output and reading it back.
//
// It runs after precision assignment (builder/pools.go), so that a
// quantized conv (QConv → MaxPool over codes) fuses too and calibration
// sees the unfused graph. Only exactly this MaxPool qualifies:
// kernel_shape [2, 2], strides [2, 2], pads absent or zero, auto_pad
// NOTSET or VALID (the same windows), dilations absent or [1, 1],
// ceil_mode 0, storage_order 0, one output (no Indices). The conv must be
// 2-D without a residual input, write float32, int8 or uint8, and have the
// pool as its only reader (not a graph output).
func FusePools(m *ir.Model, opt Options) (int, error) {
	r := newRewriter(m, opt)
	r.infer(0)
	fused := 0
	for _, n := range slices.Clone(r.g.Nodes) {
		if r.fusePool(n) {
			fused++
			r.reindex()
		}
	}
	return fused, nil
}

// poolAnchor reports whether n is a conv that may take a fused pool.
func (r *rewriter) poolAnchor(n *ir.Node) bool {
	switch {
	case (n.Domain == "" || n.Domain == "ai.onnx") && n.OpType == "Conv":
	case n.Domain == kiln.Domain && (n.OpType == "Conv" || n.OpType == "QConv"):
		if n.Attr(kiln.PoolAttr) != nil || input(n, 3) != "" {
			return false
		}
	default:
		return false
	}
	if len(n.Outputs) != 1 {
		return false
	}
	t := r.typeOf(n.Outputs[0])
	if t == nil || !t.HasShape || len(t.Shape) != 4 {
		return false
	}
	switch t.DType {
	case ir.Float32, ir.Int8, ir.Uint8:
		return true
	}
	return false
}

func (r *rewriter) fusePool(n *ir.Node) bool {
	if !r.poolAnchor(n) {
		return false
	}
	p := r.consumer(n)
	if !isOp(p, "MaxPool") || !isPool2x2(p) {
		return false
	}
	setAttr(n, kiln.PoolAttribute())
	r.merge(n, p, p)
	return true
}

// isPool2x2 checks a MaxPool for exactly the 2×2/2 unpadded floor-mode
// pool, with every attribute it carries accounted for.
func isPool2x2(p *ir.Node) bool {
	if len(p.Inputs) != 1 || len(p.Outputs) != 1 || p.Outputs[0] == "" {
		return false
	}
	ints := func(a *ir.Attribute, want ...int64) bool {
		return a.Type == ir.AttrInts && slices.Equal(a.Ints, want)
	}
	seen := map[string]bool{}
	for _, a := range p.Attrs {
		seen[a.Name] = true
		ok := false
		switch a.Name {
		case "kernel_shape":
			ok = ints(a, 2, 2)
		case "strides":
			ok = ints(a, 2, 2)
		case "pads":
			ok = ints(a, 0, 0, 0, 0) || ints(a)
		case "dilations":
			ok = ints(a, 1, 1) || ints(a)
		case "auto_pad":
			s := string(a.S)
			ok = a.Type == ir.AttrString && (s == "NOTSET" || s == "VALID" || s == "")
		case "ceil_mode", "storage_order":
			ok = a.Type == ir.AttrInt && a.I == 0
		}
		if !ok {
			return false
		}
	}
	return seen["kernel_shape"] && seen["strides"]
}
