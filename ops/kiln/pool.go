package kiln

import (
	"fmt"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

// Fused output pool of kiln.Conv and kiln.QConv: the attribute pool = [2, 2]
// means the layer's output (after its epilogue and, for quantized layers,
// after output quantization) goes through ONNX's MaxPool with kernel_shape
// [2, 2], strides [2, 2], no pads, no dilation, floor mode. A layer without
// the attribute writes its output as is. The reference applies exactly
// that MaxPool (ops' own kernel), so a fused graph is bit-identical to the
// unfused one; max over codes equals quantizing the max because output
// quantization is monotone, and the unfused quantized graph pools codes.

// PoolAttr is the attribute name.
const PoolAttr = "pool"

// PoolOf reads the fused pool of a node: (false, nil) when absent.
func PoolOf(n *ir.Node) (bool, error) {
	a := n.Attr(PoolAttr)
	if a == nil {
		return false, nil
	}
	v, err := n.AttrInts(PoolAttr, nil)
	if err != nil {
		return false, err
	}
	if len(v) != 2 || v[0] != 2 || v[1] != 2 {
		return false, fmt.Errorf("%s: pool %v: only a fused 2×2 stride-2 max pool ([2, 2]) is defined", n, v)
	}
	return true, nil
}

// PoolAttribute is the attribute that marks a fused 2×2/2 max pool.
func PoolAttribute() *ir.Attribute {
	return &ir.Attribute{Name: PoolAttr, Type: ir.AttrInts, Ints: []int64{2, 2}}
}

// poolNode is the MaxPool the attribute stands for.
func poolNode(n *ir.Node) *ir.Node {
	return &ir.Node{Name: n.Name, OpType: "MaxPool", Inputs: []string{"x"}, Outputs: []string{"y"}, Attrs: []*ir.Attribute{
		{Name: "kernel_shape", Type: ir.AttrInts, Ints: []int64{2, 2}},
		{Name: "strides", Type: ir.AttrInts, Ints: []int64{2, 2}},
	}}
}

const poolOpset = 12

// ApplyPool runs the fused pool of node n on its unpooled output y.
func ApplyPool(n *ir.Node, y *ir.Tensor) (*ir.Tensor, error) {
	if y.Rank() != 4 {
		return nil, fmt.Errorf("%s: a fused pool needs a 2-D convolution (output %v)", n, y.Dims)
	}
	op, err := ops.Lookup("", "MaxPool", poolOpset)
	if err != nil {
		return nil, err
	}
	pn := poolNode(n)
	c := ops.NewCtx(pn, poolOpset)
	outs, err := op.Run(c, []*ir.Tensor{y})
	if err == nil {
		err = c.Err()
	}
	if err != nil {
		return nil, fmt.Errorf("%s: fused pool: %w", n, err)
	}
	return outs[0], nil
}

// InferPool is the type of the pooled output given the unpooled one.
func InferPool(n *ir.Node, y *ir.Type) (*ir.Type, error) {
	if y == nil || y.Kind != ir.KindTensor || !y.HasShape || len(y.Shape) != 4 {
		return nil, fmt.Errorf("%s: a fused pool needs a 4-D output", n)
	}
	op, err := ops.Lookup("", "MaxPool", poolOpset)
	if err != nil {
		return nil, err
	}
	ic := ops.NewInferCtx(poolNode(n), poolOpset, []*ir.Type{y}, make([]*ir.Tensor, 1), make([]ir.Shape, 1))
	if err := op.Infer(ic); err != nil {
		return nil, err
	}
	if err := ic.Err(); err != nil {
		return nil, err
	}
	return ic.Out[0], nil
}
