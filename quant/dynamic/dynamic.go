// Package dynamic is dynamic-range quantization (ONNX Runtime's
// quantize_dynamic, TFLite's dynamic range mode): weights are quantized to
// int8 once, ahead of time; activations are quantized at run time, per
// batch, from their own observed range. No calibration data is needed.
//
// Each MatMul or Gemm whose weight is a constant becomes
//
//	DynamicQuantizeLinear(A)              → A_q (uint8), A_scale, A_zero
//	MatMulInteger(A_q, W_q, A_zero)        → int32 (W_q int8 [K,N], zero point 0)
//	Cast(to float) · (A_scale · W_scale)   → float (W_scale per column, or one)
//	+ bias                                 (Gemm's C)
//
// which is exactly the graph ONNX Runtime's quantizer writes, so the result
// runs in ONNX Runtime and in kiln's reference executor.
package dynamic

import (
	"fmt"
	"strings"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/quant"
)

// Options tune Quantize.
type Options struct {
	// PerTensorWeights uses one weight scale per layer (ORT's default
	// per_channel=False) instead of one per output column.
	PerTensorWeights bool
	// Skip lists node names left in float.
	Skip map[string]bool
}

// Report lists what Quantize did.
type Report struct {
	Quantized []string // node names
	Skipped   []string // "name: reason"
}

// Quantize returns a copy of m with its constant-weight MatMul and Gemm
// nodes dynamically quantized.
func Quantize(m *ir.Model, opt Options) (*ir.Model, *Report, error) {
	if v := m.Opset(""); v < 11 {
		return nil, nil, fmt.Errorf("dynamic quantization: the model uses opset %d; DynamicQuantizeLinear needs 11 or later", v)
	}
	out := m.Clone()
	g := out.Graph
	inits := g.InitializerMap()
	for _, n := range g.Nodes {
		if n.OpType == "Constant" && n.Domain == "" && len(n.Outputs) == 1 {
			if t, _ := n.AttrTensor("value"); t != nil {
				inits[n.Outputs[0]] = t
			}
		}
	}
	used := map[string]bool{}
	for _, n := range g.Nodes {
		used[n.Name] = true
		for _, o := range n.Outputs {
			used[o] = true
		}
	}
	for name := range inits {
		used[name] = true
	}
	for _, in := range g.Inputs {
		used[in.Name] = true
	}
	fresh := func(base string) string {
		name := base
		for i := 1; used[name]; i++ {
			name = fmt.Sprintf("%s_%d", base, i)
		}
		used[name] = true
		return name
	}
	rep := &Report{}
	var nodes []*ir.Node
	for _, n := range g.Nodes {
		w, why := weightOf(n, inits)
		if opt.Skip[n.Name] {
			why = "skipped by request"
		}
		if w == nil || why != "" {
			if why != "" && (n.OpType == "MatMul" || n.OpType == "Gemm") {
				rep.Skipped = append(rep.Skipped, n.Name+": "+why)
			}
			nodes = append(nodes, n)
			continue
		}
		repl, inits2, err := rewrite(n, w, opt, fresh, inits)
		if err != nil {
			return nil, nil, fmt.Errorf("dynamic quantization of %s: %w", n, err)
		}
		nodes = append(nodes, repl...)
		g.Initializers = append(g.Initializers, inits2...)
		rep.Quantized = append(rep.Quantized, n.Name)
	}
	g.Nodes = nodes
	g.DropUnreadInitializers(nil) // the float weights that were replaced
	return out, rep, nil
}

// weightOf returns a node's constant float32 weight as [K,N] (transposed
// for Gemm with transB), or a reason why the node stays float.
func weightOf(n *ir.Node, inits map[string]*ir.Tensor) (*ir.Tensor, string) {
	if n.Domain != "" || len(n.Inputs) < 2 {
		return nil, ""
	}
	switch n.OpType {
	case "MatMul", "Gemm":
	default:
		return nil, ""
	}
	b := inits[n.Inputs[1]]
	if b == nil {
		return nil, "its second input is not a constant"
	}
	if b.DType != ir.Float32 || b.Rank() != 2 {
		return nil, fmt.Sprintf("weight %s is %s%v, not a float32 matrix", b.Name, b.DType, b.Dims)
	}
	if _, ok := inits[n.Inputs[0]]; ok {
		return nil, "its first input is a constant"
	}
	if n.OpType == "MatMul" {
		return b, ""
	}
	if ta, _ := n.AttrInt("transA", 0); ta != 0 {
		return nil, "transA=1"
	}
	alpha, _ := n.AttrFloat("alpha", 1)
	beta, _ := n.AttrFloat("beta", 1)
	if alpha != 1 || (beta != 1 && len(n.Inputs) > 2 && n.Inputs[2] != "") {
		return nil, "alpha or beta is not 1"
	}
	if tb, _ := n.AttrInt("transB", 0); tb != 0 {
		k, nn := b.Dims[1], b.Dims[0]
		t := ir.NewTensor(ir.Float32, []int64{k, nn})
		src, dst := b.F32(), t.F32()
		for i := int64(0); i < nn; i++ {
			for j := int64(0); j < k; j++ {
				dst[j*nn+i] = src[i*k+j]
			}
		}
		t.Name = b.Name
		return t, ""
	}
	return b, ""
}

func rewrite(n *ir.Node, w *ir.Tensor, opt Options, fresh func(string) string, inits map[string]*ir.Tensor) ([]*ir.Node, []*ir.Tensor, error) {
	axis := 1 // the output column of [K,N]
	if opt.PerTensorWeights {
		axis = quant.PerTensor
	}
	amax, err := quant.Amax(w.F32(), w.Dims, axis, 0)
	if err != nil {
		return nil, nil, err
	}
	p, err := quant.Symmetric(ir.Int8, amax, axis, 0, true)
	if err != nil {
		return nil, nil, err
	}
	wq, err := quant.Quantize(w, p)
	if err != nil {
		return nil, nil, err
	}
	base := strings.NewReplacer("/", "_", ":", "_").Replace(n.Name)
	if base == "" {
		base = n.Outputs[0]
	}
	wq.Name = fresh(w.Name + "_quantized")
	sdims := []int64{}
	if axis != quant.PerTensor {
		sdims = []int64{int64(len(p.Scale))}
	}
	ws := ir.FromFloat32s(sdims, p.Scale)
	ws.Name = fresh(w.Name + "_scale")
	aq, as, az := fresh(base+"_input_quantized"), fresh(base+"_input_scale"), fresh(base+"_input_zero_point")
	acc, accF, scale := fresh(base+"_int32"), fresh(base+"_int32_float"), fresh(base+"_scale")
	y := n.Outputs[0]
	hasBias := n.OpType == "Gemm" && len(n.Inputs) > 2 && n.Inputs[2] != ""
	mulOut := y
	if hasBias {
		mulOut = fresh(base + "_unbiased")
	}
	nodes := []*ir.Node{
		{Name: fresh(base + "_DynamicQuantizeLinear"), OpType: "DynamicQuantizeLinear", Inputs: []string{n.Inputs[0]}, Outputs: []string{aq, as, az}},
		{Name: fresh(base + "_MatMulInteger"), OpType: "MatMulInteger", Inputs: []string{aq, wq.Name, az}, Outputs: []string{acc}},
		{Name: fresh(base + "_Cast"), OpType: "Cast", Inputs: []string{acc}, Outputs: []string{accF},
			Attrs: []*ir.Attribute{{Name: "to", Type: ir.AttrInt, I: int64(ir.Float32)}}},
		{Name: fresh(base + "_scale_Mul"), OpType: "Mul", Inputs: []string{as, ws.Name}, Outputs: []string{scale}},
		{Name: fresh(base + "_output_Mul"), OpType: "Mul", Inputs: []string{accF, scale}, Outputs: []string{mulOut}},
	}
	if hasBias {
		nodes = append(nodes, &ir.Node{Name: fresh(base + "_bias_Add"), OpType: "Add", Inputs: []string{mulOut, n.Inputs[2]}, Outputs: []string{y}})
	}
	return nodes, []*ir.Tensor{wq, ws}, nil
}
