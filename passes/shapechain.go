package passes

import (
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

// SimplifyShapeChains gives a constant shape to every Reshape whose shape
// input is computed at run time (PyTorch's x.view(x.size(0), -1) exports
// Shape→Gather→Unsqueeze→Concat) but whose symbolic value inference knows:
// known numbers stay, and a symbolic element equal to the input's dim at
// the same position becomes ONNX's 0 ("copy this dim"). The chain then dies
// in dead-code elimination, and the engine keeps its dynamic batch.
func SimplifyShapeChains(m *ir.Model, opt Options) (int, error) {
	r := newRewriter(m, opt)
	inf := r.infer(0)
	changed := 0
	for _, n := range r.g.Nodes {
		if !isOp(n, "Reshape") || len(n.Inputs) < 2 || n.Inputs[1] == "" || r.inits[n.Inputs[1]] != nil {
			continue
		}
		if az, err := n.AttrInt("allowzero", 0); err != nil || az != 0 {
			continue
		}
		v, ok := inf.Values[n.Inputs[1]]
		in, ok2 := r.shapeOf(n.Inputs[0])
		st := r.typeOf(n.Inputs[1])
		if !ok || !ok2 || st == nil || st.DType != ir.Int64 {
			continue
		}
		shape, ok := constantShape(v, in)
		if !ok {
			continue
		}
		name := r.addInitializer(label(n)+"_shape", ir.FromInt64s(ir.Int64, []int64{int64(len(shape))}, shape))
		n.Inputs[1] = name
		r.logf("Simplifying shape computation of %s to %v", label(n), shape)
		changed++
	}
	return changed, nil
}

// constantShape writes a symbolic Reshape shape with numbers and 0s, or
// reports false when an element is neither a number nor the input's dim at
// that position.
func constantShape(v, in ir.Shape) ([]int64, bool) {
	out := make([]int64, len(v))
	for j, d := range v {
		if x, ok := ops.DimValue(d); ok {
			out[j] = x
			continue
		}
		if d.Param == "" || j >= len(in) || in[j] != d {
			return nil, false
		}
		out[j] = 0
	}
	return out, true
}
