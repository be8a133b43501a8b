package builder

import (
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/quant/calib"
)

// DefaultCalibrator is the calibration algorithm to use when the user names
// none: MinMax for transformers (TensorRT's advice for NLP: their activation
// outliers carry meaning, and entropy calibration clips them), Entropy2
// otherwise. A model looks like a transformer when it has a LayerNorm
// (ONNX LayerNormalization, kiln.LayerNorm, or the expanded form's
// ReduceMean feeding a Sub), attention (kiln.Attention, ONNX Attention, or
// a Softmax between two MatMuls) or Erf/Gelu next to MatMuls. The CLI calls
// it for --calibrator's default before building.
func DefaultCalibrator(m *ir.Model) calib.Algorithm {
	if LooksLikeTransformer(m) {
		return calib.MinMax
	}
	return calib.Entropy2
}

// LooksLikeTransformer reports the transformer markers DefaultCalibrator
// uses.
func LooksLikeTransformer(m *ir.Model) bool {
	g := m.Graph
	prod := g.Producers()
	cons := g.Consumers()
	is := func(n *ir.Node, ops ...string) bool {
		if n == nil {
			return false
		}
		for _, op := range ops {
			if n.OpType == op {
				return true
			}
		}
		return false
	}
	for _, n := range g.Nodes {
		switch {
		case is(n, "LayerNormalization", "LayerNorm", "Attention", "MultiHeadAttention", "SkipLayerNormalization"):
			return true
		case is(n, "ReduceMean") && len(n.Outputs) == 1:
			for _, c := range cons[n.Outputs[0]] {
				if is(c, "Sub") {
					return true
				}
			}
		case is(n, "Softmax") && len(n.Inputs) > 0:
			// MatMul (maybe through a scale, a mask Add) → Softmax → MatMul.
			readsMatMul := false
			for v, k := n.Inputs[0], 0; k < 3; k++ {
				p := prod[v]
				if is(p, "MatMul") {
					readsMatMul = true
					break
				}
				if !is(p, "Add", "Mul", "Div") || len(p.Inputs) == 0 {
					break
				}
				v = p.Inputs[0]
			}
			if !readsMatMul {
				continue
			}
			for _, o := range n.Outputs {
				for _, c := range cons[o] {
					if is(c, "MatMul", "Where") {
						return true
					}
				}
			}
		}
	}
	return false
}
