package builder

import (
	"fmt"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

// fp16Ops run in FP16 storage with --fp16 (math inside kernels stays at
// least FP32). Softmax, normalizations, reductions and Exp/Log/Pow stay in
// FP32: their ranges and accumulations are where FP16 loses accuracy.
var fp16Ops = map[string]bool{
	"Conv": true, "ConvTranspose": true, "Gemm": true, "MatMul": true, "Relu": true, "LeakyRelu": true, "Sigmoid": true,
	"Tanh": true, "Clip": true, "Add": true, "Sub": true, "Mul": true, "MaxPool": true, "AveragePool": true,
	"GlobalAveragePool": true, "GlobalMaxPool": true, "Concat": true, "Reshape": true, "Flatten": true, "Transpose": true,
	"Squeeze": true, "Unsqueeze": true, "Gelu": true, "HardSwish": true, "HardSigmoid": true, "Identity": true,
	"Resize": true, "PRelu": true, "Slice": true, "Split": true, "Gather": true, "Pad": true,
}

// toFP16 rewrites eligible float32 layers to Float16 tensors: their float32
// weights become fp16 initializers, activations crossing into and out of
// fp16 regions get Cast reformats, and graph outputs keep their type.
func (b *build) toFP16() error {
	if !b.cfg.FP16 && !b.cfg.BF16 {
		return nil
	}
	half := ir.Float16
	if b.cfg.BF16 && !b.cfg.FP16 {
		half = ir.BFloat16
	}
	inf, err := ops.Infer(b.m, ops.InferOptions{})
	if inf == nil {
		return err
	}
	g := b.m.Graph
	init := g.InitializerMap()
	isHalf := map[*ir.Node]bool{}
	for _, n := range g.Nodes {
		if !fp16Ops[n.OpType] || !(n.Domain == "" || n.Domain == "kiln") || b.forcedFP32(n) {
			continue
		}
		ok := false
		for _, o := range n.Outputs {
			if t := inf.Types[o]; t != nil && t.DType == ir.Float32 {
				ok = true
			}
		}
		isHalf[n] = ok
	}
	outs := map[string]bool{}
	for _, o := range g.Outputs {
		outs[o.Name] = true
	}
	halfName := map[string]string{}  // float32 value -> its fp16 version
	floatName := map[string]string{} // fp16 value -> float32 version for float consumers
	renamed := map[string]string{}   // original output name -> fp16 output name
	var nodes []*ir.Node
	cast := func(in, out string, to ir.DType) *ir.Node {
		return &ir.Node{Name: fmt.Sprintf("Reformatting CopyNode for %s", in), OpType: "Cast", Inputs: []string{in}, Outputs: []string{out},
			Attrs: []*ir.Attribute{{Name: "to", Type: ir.AttrInt, I: int64(to)}}}
	}
	count := 0
	for _, n := range g.Nodes {
		// Inputs: fp16 nodes read fp16, float nodes read float32.
		for i, in := range n.Inputs {
			if in == "" {
				continue
			}
			t := inf.Types[in]
			if r, ok := renamed[in]; ok {
				in = r // the producer writes fp16 now
				if !isHalf[n] {
					if f, ok := floatName[in]; ok {
						n.Inputs[i] = f
						continue
					}
					f := in + "_fp32"
					nodes = append(nodes, cast(in, f, ir.Float32))
					floatName[in] = f
					n.Inputs[i] = f
					continue
				}
				n.Inputs[i] = in
				continue
			}
			if !isHalf[n] || t == nil || t.DType != ir.Float32 {
				continue
			}
			if h, ok := halfName[in]; ok {
				n.Inputs[i] = h
				continue
			}
			h := in + "_" + half.String()
			if c := init[in]; c != nil {
				hc := ir.NewTensor(half, c.Dims)
				for k := int64(0); k < c.Len(); k++ {
					hc.SetFloat64At(k, c.Float64At(k))
				}
				hc.Name = h
				g.Initializers = append(g.Initializers, hc)
			} else {
				nodes = append(nodes, cast(in, h, half))
			}
			halfName[in] = h
			n.Inputs[i] = h
		}
		nodes = append(nodes, n)
		if !isHalf[n] {
			continue
		}
		count++
		for k, o := range n.Outputs {
			if o == "" {
				continue
			}
			h := o + "_" + half.String()
			renamed[o] = h
			n.Outputs[k] = h
			if outs[o] {
				nodes = append(nodes, cast(h, o, ir.Float32))
				floatName[h] = o
			}
		}
	}
	g.Nodes = nodes
	b.cfg.logf("Running %d layers in %s", count, half)
	return nil
}

// forcedFP32 reports layers the user pinned to fp32 (or to int8/fp8, which
// the quantization step already handled).
func (b *build) forcedFP32(n *ir.Node) bool {
	names, _ := members(n)
	for _, nm := range append(names, n.Name) {
		if p, ok := b.cfg.LayerPrecisions[nm]; ok && p != engine.FP16 && p != engine.BF16 {
			return true
		}
	}
	return false
}
