package passes

import (
	"slices"

	"github.com/kilnml/kiln/ir"
)

// FloatTransformerQDQ prepares a Q/DQ transformer (ONNX Runtime's
// quantizer writes a QuantizeLinear→DequantizeLinear pair after nearly
// every op: bias Adds, GELU's Div/Erf/Mul, Softmax, Reshape/Transpose, the
// attention MatMuls of two activations, LayerNorm, its weight...) for the
// engine kiln builds from it: INT8 MatMuls with constant weights, and the
// rest in FP32 as fused layers (MatMul+bias+GELU/residual, kiln.Attention,
// kiln.LayerNorm), which is how kiln quantizes a transformer itself and
// TensorRT's advice for them.
//
// A DequantizeLinear output keeps its reader only where that reader
// quantizes: the activation or weight input of a MatMul/Gemm/Conv whose
// weight is a constant behind a DequantizeLinear. Every other reader reads
// instead the float value the pair stands for: the QuantizeLinear's input
// for an activation (the pair's rounding is dropped, so the FP32 parts are
// closer to the float model than ONNX Runtime's fake-quantized ones), or,
// for a constant (a quantized bias, LayerNorm weight or scale), the
// dequantized constant itself (its rounding is kept). Pairs left without
// readers go with dead-code elimination; the builder's explicit
// quantization then turns the remaining DQ→MatMul(←DQ weight)→Q chains into
// kiln.QMatMul.
//
// It runs only on graphs that have QuantizeLinear/DequantizeLinear nodes
// and a LayerNormalization or an attention Softmax (a transformer), so Q/DQ
// CNNs, classifier Softmax heads included, keep their INT8 residual adds
// and pools as they are.
func FloatTransformerQDQ(m *ir.Model, opt Options) (int, error) {
	r := newRewriter(m, opt)
	if !r.qdqTransformer() {
		return 0, nil
	}
	inf := r.infer(MaxFoldElements).Consts
	rewired := 0
	floatOf := map[string]string{}
	for _, d := range r.g.Nodes {
		if !isOp(d, "DequantizeLinear") || len(d.Outputs) != 1 || r.outs[d.Outputs[0]] {
			continue
		}
		out := d.Outputs[0]
		var readers []int // indices into r.cons[out] whose edge does not quantize
		for i, n := range r.cons[out] {
			if !r.quantizingReader(n, out) {
				readers = append(readers, i)
			}
		}
		if len(readers) == 0 {
			continue
		}
		src, ok := floatOf[out]
		if !ok {
			if q := r.prod[d.Inputs[0]]; isOp(q, "QuantizeLinear") && !r.constChain(q.Inputs[0]) && sameQDQParams(r, q, d) {
				src = q.Inputs[0]
			} else if r.constChain(d.Inputs[0]) {
				t := inf[out]
				if t == nil || t.DType != ir.Float32 {
					continue
				}
				src = r.addInitializer(out+"_float", t)
			} else {
				continue
			}
			floatOf[out] = src
		}
		for _, i := range readers {
			n := r.cons[out][i]
			for k, in := range n.Inputs {
				if in == out {
					n.Inputs[k] = src
					rewired++
				}
			}
		}
	}
	if rewired > 0 {
		r.logf("Q/DQ transformer: %d readers of DequantizeLinear outputs read the float values (FP32 layers)", rewired)
	}
	return rewired, nil
}

// qdqTransformer: the graph has Q/DQ nodes and a transformer op: a
// LayerNormalization, or a Softmax over attention scores (a MatMul of two
// activations, Q·Kᵀ). A classifier's Softmax after a weight MatMul/Gemm
// does not count, so a Q/DQ CNN with a Softmax head keeps its INT8 residual
// adds and pools.
func (r *rewriter) qdqTransformer() bool {
	var q, t bool
	for _, n := range r.g.Nodes {
		switch {
		case isOp(n, "QuantizeLinear"), isOp(n, "DequantizeLinear"):
			q = true
		case isOp(n, "LayerNormalization"):
			t = true
		case isOp(n, "Softmax") && len(n.Inputs) > 0 && r.attentionScores(n.Inputs[0], 8):
			t = true
		}
	}
	return q && t
}

// attentionScores: x is computed by a MatMul of two activations, through at
// most depth steps of scaling, masking, Q/DQ and reshaping.
func (r *rewriter) attentionScores(x string, depth int) bool {
	n := r.prod[x]
	if n == nil || depth == 0 || (n.Domain != "" && n.Domain != "ai.onnx") {
		return false
	}
	switch n.OpType {
	case "MatMul":
		return len(n.Inputs) == 2 && !r.weightInput(n.Inputs[0]) && !r.weightInput(n.Inputs[1])
	case "Add", "Sub", "Mul", "Div", "Where", "QuantizeLinear", "DequantizeLinear", "Reshape", "Transpose", "Cast":
		for _, in := range n.Inputs {
			if in != "" && r.attentionScores(in, depth-1) {
				return true
			}
		}
	}
	return false
}

// weightInput: name is a constant, or a constant behind Q/DQ.
func (r *rewriter) weightInput(name string) bool {
	if r.constChain(name) {
		return true
	}
	d := r.prod[name]
	return isOp(d, "DequantizeLinear") && r.constChain(d.Inputs[0])
}

// quantizingReader: n reads x as the activation or the weight of a
// MatMul/Gemm/Conv (plain or kiln-fused) whose weight is a constant behind
// a DequantizeLinear.
func (r *rewriter) quantizingReader(n *ir.Node, x string) bool {
	switch n.OpType {
	case "MatMul", "Gemm", "Conv":
	default:
		return false
	}
	if n.Domain != "" && n.Domain != "kiln" || len(n.Inputs) < 2 {
		return false
	}
	if n.Inputs[0] != x && n.Inputs[1] != x {
		return false // a bias or residual input
	}
	w := r.prod[n.Inputs[1]]
	return isOp(w, "DequantizeLinear") && r.constChain(w.Inputs[0])
}

// constChain: name is a constant, or a QuantizeLinear of one.
func (r *rewriter) constChain(name string) bool {
	if r.inits[name] != nil || isOp(r.prod[name], "Constant") {
		return true
	}
	q := r.prod[name]
	return isOp(q, "QuantizeLinear") && (r.inits[q.Inputs[0]] != nil || isOp(r.prod[q.Inputs[0]], "Constant"))
}

// sameQDQParams: q and d use the same scale and zero point (the same
// values, or the same constant values).
func sameQDQParams(r *rewriter, q, d *ir.Node) bool {
	for i := 1; i < 3; i++ {
		a, b := "", ""
		if i < len(q.Inputs) {
			a = q.Inputs[i]
		}
		if i < len(d.Inputs) {
			b = d.Inputs[i]
		}
		if a == b {
			continue
		}
		ta, tb := r.constant(a), r.constant(b)
		if ta == nil || tb == nil || ta.DType != tb.DType || !slices.Equal(ta.Dims, tb.Dims) || string(ta.Data) != string(tb.Data) {
			return false
		}
	}
	qa, err1 := q.AttrInt("axis", 1)
	da, err2 := d.AttrInt("axis", 1)
	return err1 == nil && err2 == nil && qa == da
}
