// Package qdq writes quantization into an ONNX graph as
// QuantizeLinear/DequantizeLinear pairs (explicit quantization): the form
// TensorRT 10+ and ONNX Runtime take quantized models in, and the form in
// which kiln fake-quantizes a model to measure what quantization costs.
package qdq

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/quant"
)

// Flavor selects whose placement rules to follow.
type Flavor int

const (
	// TensorRT: symmetric int8 (zero point 0) activations and per-channel
	// weights; inputs of Conv/ConvTranspose/Gemm/MatMul and both inputs of
	// residual Adds are quantized.
	TensorRT Flavor = iota
	// ORT: ONNX Runtime's CPU dtypes on TensorRT's placement minus the
	// residual Adds: asymmetric uint8 activations on the inputs of
	// Conv/ConvTranspose/Gemm/MatMul only, symmetric int8 per-channel weights
	// stored already quantized, float biases. Exporting a QAT model keeps
	// its trained codes exactly in this form.
	ORT
	// ORTStatic: ONNX Runtime's quantize_static(QuantFormat.QDQ) placement
	// with its default options (ortstatic.go): uint8 activations on their
	// own min/max (range widened to hold 0), int8 symmetric per-channel
	// weights, int32 biases (scale = input scale × weight scale); inputs
	// and outputs of Conv/Gemm/MatMul/Add/Mul/pools/Softmax/normalizations
	// quantized, Relu/Clip after a single-reader output removed (the
	// producer's Q takes their output range), Reshape/Transpose/MaxPool/
	// AveragePool/Resize/Split/Gather sharing their input's parameters, ops
	// outside ORT's registry (Sum, Flatten, ...) and Pad left in float.
	// Checked node for node against ORT-made models (ortstatic_test.go).
	ORTStatic
)

// Range is the calibrated range of an activation.
type Range struct{ Amax, Min, Max float64 }

// Options controls Insert.
type Options struct {
	Flavor Flavor
	// DType of activations and weights: Int8 (default) or Float8E4M3FN.
	DType ir.DType
	// ActivationDTypes overrides DType for named activations of a float8
	// model: Float8E5M2 for tensors whose range E4M3 cannot hold (the
	// builder's per-tensor format choice). Weights stay DType.
	ActivationDTypes map[string]ir.DType
	// ORTActivations is the ORTStatic flavour's activation type: Uint8
	// (the default, QuantType.QUInt8) or Int8 (QuantType.QInt8, ORT's
	// quantize_static default since 1.13), both asymmetric from min/max.
	ORTActivations ir.DType
	// Ranges of activations by tensor name (from calibration or QAT).
	Ranges map[string]Range
	// PerTensorWeights uses one scale per weight tensor instead of one per
	// output channel (a harder setting, for experiments).
	PerTensorWeights bool
	// WeightBits narrows weights to fewer bits (4 for int4-range weights
	// stored in int8, a harder setting); 0 = 8.
	WeightBits int
	// Skip lists node names left in float.
	Skip map[string]bool
	// QuantizedWeights stores weights as quantized initializers followed by
	// DequantizeLinear (ONNX Runtime's form) instead of float initializers
	// followed by Q and DQ (TensorRT's preferred form). ORT implies it.
	QuantizedWeights bool
	// NoResidualAdds leaves Adds in float even in the TensorRT flavour (kiln's
	// builder fuses residual adds into the conv epilogue instead).
	NoResidualAdds bool
	// QuantizeResiduals puts Q/DQ on the residual input (input 3) of kiln's
	// fused Conv when it has a range and the layer's own activation is
	// quantized, so that the builder reads it as codes (kiln.QConv's
	// z_scale) and a CNN's residual stream stays quantized. Gemm/MatMul
	// residuals (a transformer's stream, where the outliers live and a
	// LayerNorm reads it) stay float.
	QuantizeResiduals bool
	// WeightScales gives int8 weight scales by initializer name (one per
	// output channel, or one with PerTensorWeights), as quantization-aware
	// training learned or froze them, instead of max|w|/qmax.
	WeightScales map[string][]float32
}

// Insert returns a copy of m with Q/DQ pairs on the inputs of every
// Conv, ConvTranspose, Gemm and MatMul (and, for TensorRT, residual Adds)
// whose activation input has a range. The opset is raised to 13 (19 for
// float8) when lower, after checking that no op whose meaning changed
// between the two versions is present.
func Insert(m *ir.Model, opt Options) (*ir.Model, error) {
	if opt.DType == ir.Undefined {
		opt.DType = ir.Int8
	}
	if opt.DType != ir.Int8 && opt.DType != ir.Float8E4M3FN {
		return nil, fmt.Errorf("qdq: %s is not supported (int8 or float8e4m3fn)", opt.DType)
	}
	for name, dt := range opt.ActivationDTypes {
		if opt.DType != ir.Float8E4M3FN || (dt != ir.Float8E4M3FN && dt != ir.Float8E5M2) {
			return nil, fmt.Errorf("qdq: activation %q: %s with %s weights (per-tensor overrides are float8e4m3fn or float8e5m2 in float8 models)", name, dt, opt.DType)
		}
	}
	if opt.ORTActivations == ir.Undefined {
		opt.ORTActivations = ir.Uint8
	}
	if opt.Flavor == ORTStatic && opt.ORTActivations != ir.Uint8 && opt.ORTActivations != ir.Int8 {
		return nil, fmt.Errorf("qdq: ONNX Runtime activations are uint8 or int8, not %s", opt.ORTActivations)
	}
	if opt.Flavor == ORT || opt.Flavor == ORTStatic {
		opt.QuantizedWeights = true
		if opt.DType != ir.Int8 {
			return nil, fmt.Errorf("qdq: the ONNX Runtime flavour is int8/uint8 only")
		}
	}
	out := m.Clone()
	need := int64(13)
	if opt.DType == ir.Float8E4M3FN {
		need = 19
	}
	if err := raiseOpset(out, need, opt.Flavor == ORTStatic); err != nil {
		return nil, err
	}
	w := &writer{m: out, opt: opt, inits: out.Graph.InitializerMap(), dq: map[string]string{}, used: map[string]bool{}, stored: map[string]bool{}}
	for _, n := range out.Graph.Nodes {
		w.used[n.Name] = true
		for _, o := range n.Outputs {
			w.used[o] = true
		}
	}
	for _, t := range out.Graph.Initializers {
		w.used[t.Name] = true
	}
	for _, in := range out.Graph.Inputs {
		w.used[in.Name] = true
	}
	if opt.Flavor == ORTStatic {
		if err := w.insertORTStatic(); err != nil {
			return nil, err
		}
		out.Graph.Initializers = append(out.Graph.Initializers, w.newInits...)
		out.Graph.DropUnreadInitializers(func(name string) bool { return w.stored[name] })
		return out, nil
	}
	var newNodes []*ir.Node
	for _, n := range out.Graph.Nodes {
		pre, err := w.rewrite(n)
		if err != nil {
			return nil, fmt.Errorf("qdq: %s: %w", n, err)
		}
		newNodes = append(newNodes, pre...)
		newNodes = append(newNodes, n)
	}
	out.Graph.Nodes = newNodes
	out.Graph.Initializers = append(out.Graph.Initializers, w.newInits...)
	if opt.QuantizedWeights { // the float weights stored again as int8 codes, unless a float node still reads them
		out.Graph.DropUnreadInitializers(func(name string) bool { return w.stored[name] })
	}
	return out, nil
}

type writer struct {
	m        *ir.Model
	opt      Options
	inits    map[string]*ir.Tensor
	dq       map[string]string // activation -> its dequantized name (one Q/DQ pair per tensor)
	used     map[string]bool
	newInits []*ir.Tensor
	stored   map[string]bool // float weights stored again as int8 codes (QuantizedWeights)
}

func (w *writer) fresh(base string) string {
	name := base
	for i := 1; w.used[name]; i++ {
		name = fmt.Sprintf("%s_%d", base, i)
	}
	w.used[name] = true
	return name
}

// weightAxis returns the output-channel axis of a node's weight input.
func weightAxis(n *ir.Node, rank int) (input, axis int, ok bool) {
	switch n.OpType {
	case "Conv":
		return 1, 0, true
	case "ConvTranspose":
		return 1, 1, true
	case "Gemm":
		tb, _ := n.AttrInt("transB", 0)
		if tb != 0 {
			return 1, 0, true
		}
		return 1, 1, true
	case "MatMul":
		return 1, rank - 1, true
	}
	return 0, 0, false
}

func (w *writer) rewrite(n *ir.Node) ([]*ir.Node, error) {
	// kiln's fused Conv/Gemm/MatMul (domain "kiln") quantize like the ONNX
	// ops: the activation and the weight; the bias stays float, and the
	// residual too unless QuantizeResiduals.
	if w.opt.Skip[n.Name] || (n.Domain != "" && !(n.Domain == "kiln" && (n.OpType == "Conv" || n.OpType == "Gemm" || n.OpType == "MatMul"))) {
		return nil, nil
	}
	var pre []*ir.Node
	switch n.OpType {
	case "Conv", "ConvTranspose", "Gemm", "MatMul":
		wi, _, _ := weightAxis(n, 0)
		for i, in := range n.Inputs {
			if i > 1 || in == "" {
				continue // bias stays float
			}
			if t := w.inits[in]; t != nil && i == wi {
				q, err := w.weight(n, in, t)
				if err != nil {
					return nil, err
				}
				pre = append(pre, q...)
				n.Inputs[i] = q[len(q)-1].Outputs[0]
				continue
			}
			nodes, name, err := w.activation(in)
			if err != nil {
				return nil, err
			}
			pre = append(pre, nodes...)
			if name != "" {
				n.Inputs[i] = name
			}
		}
		if w.opt.QuantizeResiduals && n.Domain == "kiln" && n.OpType == "Conv" && len(n.Inputs) > 3 && n.Inputs[3] != "" && w.inits[n.Inputs[3]] == nil && w.quantized(n.Inputs[0]) {
			nodes, name, err := w.activation(n.Inputs[3])
			if err != nil {
				return nil, err
			}
			pre = append(pre, nodes...)
			if name != "" {
				n.Inputs[3] = name
			}
		}
	case "Add":
		if w.opt.Flavor != TensorRT || w.opt.NoResidualAdds {
			return nil, nil
		}
		// Residual adds: both inputs are activations with ranges.
		for _, in := range n.Inputs {
			if _, ok := w.opt.Ranges[in]; !ok || w.inits[in] != nil {
				return nil, nil
			}
		}
		for i, in := range n.Inputs {
			nodes, name, err := w.activation(in)
			if err != nil {
				return nil, err
			}
			pre = append(pre, nodes...)
			if name != "" {
				n.Inputs[i] = name
			}
		}
	}
	return pre, nil
}

// quantized says whether input name was replaced by a DequantizeLinear
// output (the layer's activation got a Q/DQ pair).
func (w *writer) quantized(name string) bool {
	for _, dq := range w.dq {
		if dq == name {
			return true
		}
	}
	return false
}

// activation quantizes a tensor once and returns the DQ output name ("" when
// the tensor has no range).
func (w *writer) activation(name string) ([]*ir.Node, string, error) {
	if dq, ok := w.dq[name]; ok {
		return nil, dq, nil
	}
	r, ok := w.opt.Ranges[name]
	if !ok {
		return nil, "", nil
	}
	var p *quant.Params
	var err error
	switch {
	case w.opt.ActivationDTypes[name] != ir.Undefined:
		p, err = quant.FromAmax(w.opt.ActivationDTypes[name], float32(r.Amax), false)
	case w.opt.DType == ir.Float8E4M3FN:
		p, err = quant.FromAmax(ir.Float8E4M3FN, float32(r.Amax), false)
	case w.opt.Flavor == ORT:
		p, err = quant.FromMinMax(ir.Uint8, float32(r.Min), float32(r.Max))
	default:
		p, err = quant.FromAmax(ir.Int8, float32(r.Amax), false)
	}
	if err != nil {
		return nil, "", fmt.Errorf("activation %q: %w", name, err)
	}
	scale, zp := w.paramTensors(name, p, nil)
	qName, dqName := w.fresh(name+"_quantized"), w.fresh(name+"_dequantized")
	q := &ir.Node{Name: w.fresh(name + "_QuantizeLinear"), OpType: "QuantizeLinear", Inputs: []string{name, scale, zp}, Outputs: []string{qName}}
	dq := &ir.Node{Name: w.fresh(name + "_DequantizeLinear"), OpType: "DequantizeLinear", Inputs: []string{qName, scale, zp}, Outputs: []string{dqName}}
	w.dq[name] = dqName
	return []*ir.Node{q, dq}, dqName, nil
}

// weight quantizes a weight initializer per output channel.
func (w *writer) weight(n *ir.Node, name string, t *ir.Tensor) ([]*ir.Node, error) {
	p, err := w.weightParams(n, name, t)
	if err != nil {
		return nil, err
	}
	return w.weightNodes(name, t, p)
}

// weightParams returns the codes' parameters of a weight initializer: per
// output channel (weightAxis) unless PerTensorWeights, from max|w| or
// WeightScales.
func (w *writer) weightParams(n *ir.Node, name string, t *ir.Tensor) (*quant.Params, error) {
	if t.DType != ir.Float32 {
		return nil, fmt.Errorf("weight %q is %s, not float32", name, t.DType)
	}
	_, axis, _ := weightAxis(n, t.Rank())
	if w.opt.PerTensorWeights {
		axis = quant.PerTensor
	}
	amax, err := quant.Amax(t.F32(), t.Dims, axis, 0)
	if err != nil {
		return nil, err
	}
	var p *quant.Params
	if w.opt.DType == ir.Float8E4M3FN {
		p, err = quant.Symmetric(ir.Float8E4M3FN, amax, axis, 0, false)
	} else {
		bits := w.opt.WeightBits
		if bits == 0 {
			bits = 8
		}
		if bits < 2 || bits > 8 {
			return nil, fmt.Errorf("weight bits %d outside 2..8", bits)
		}
		p, err = quant.Symmetric(ir.Int8, amax, axis, 0, true)
		if given, ok := w.opt.WeightScales[name]; ok && err == nil {
			if len(given) != len(p.Scale) {
				return nil, fmt.Errorf("weight %q: %d scales given, %d needed", name, len(given), len(p.Scale))
			}
			p.Scale = append([]float32(nil), given...)
			if err := p.Validate(); err != nil {
				return nil, fmt.Errorf("weight %q: %w", name, err)
			}
		} else if err == nil && bits < 8 {
			// Fewer bits in an int8 container: amax maps to the largest
			// b-bit code 2^(b-1)-1, so every code fits b bits.
			p.Scale = scaleFor(amax, float32(int(1)<<(bits-1)-1))
		}
	}
	if err != nil {
		return nil, fmt.Errorf("weight %q: %w", name, err)
	}
	return p, nil
}

// weightNodes writes a weight's DequantizeLinear (QuantizedWeights: its
// codes become an initializer) or its QuantizeLinear → DequantizeLinear.
func (w *writer) weightNodes(name string, t *ir.Tensor, p *quant.Params) ([]*ir.Node, error) {
	scale, zp := w.paramTensors(name, p, t)
	dqName := w.fresh(name + "_dequantized")
	if w.opt.QuantizedWeights {
		q, err := quant.Quantize(t, p)
		if err != nil {
			return nil, err
		}
		q.Name = w.fresh(name + "_quantized")
		w.newInits = append(w.newInits, q)
		w.stored[name] = true
		dq := &ir.Node{Name: w.fresh(name + "_DequantizeLinear"), OpType: "DequantizeLinear", Inputs: []string{q.Name, scale, zp}, Outputs: []string{dqName}}
		setAxis(dq, p)
		return []*ir.Node{dq}, nil
	}
	qName := w.fresh(name + "_quantized")
	q := &ir.Node{Name: w.fresh(name + "_QuantizeLinear"), OpType: "QuantizeLinear", Inputs: []string{name, scale, zp}, Outputs: []string{qName}}
	dq := &ir.Node{Name: w.fresh(name + "_DequantizeLinear"), OpType: "DequantizeLinear", Inputs: []string{qName, scale, zp}, Outputs: []string{dqName}}
	setAxis(q, p)
	setAxis(dq, p)
	return []*ir.Node{q, dq}, nil
}

func scaleFor(amax []float32, lvl float32) []float32 {
	s := make([]float32, len(amax))
	for i, a := range amax {
		s[i] = a / lvl
		if s[i] == 0 || a == 0 {
			s[i] = 1 / lvl
		}
	}
	return s
}

func setAxis(n *ir.Node, p *quant.Params) {
	if p.Axis != quant.PerTensor {
		n.Attrs = append(n.Attrs, &ir.Attribute{Name: "axis", Type: ir.AttrInt, I: int64(p.Axis)})
	}
}

// paramTensors adds scale and zero-point initializers for p.
func (w *writer) paramTensors(base string, p *quant.Params, _ *ir.Tensor) (string, string) {
	dims := []int64{}
	if p.Axis != quant.PerTensor {
		dims = []int64{int64(len(p.Scale))}
	}
	s := ir.FromFloat32s(dims, p.Scale)
	s.Name = w.fresh(base + "_scale")
	zp := ir.NewTensor(p.DType, dims)
	for i := range p.Scale {
		zp.SetInt64At(int64(i), int64(p.Zero(i)))
	}
	zp.Name = w.fresh(base + "_zero_point")
	w.newInits = append(w.newInits, s, zp)
	return s.Name, zp.Name
}

// keepSoftmaxMeaning rewrites every Softmax, LogSoftmax and Hardmax of an
// opset below 13 (which flattens its input to 2-D at axis, default 1, and
// normalizes over everything after) into the same computation at opset 13:
// Flatten(axis) → op(axis = 1) → Reshape to Shape(x). Classifier heads
// (ResNet-50's Softmax over [1, 1000]) then no longer block raising the
// opset for Q/DQ. It returns the rewritten nodes (2-D, axis 1: the same
// meaning in every opset). With keep2D, one reading a Gemm's output (always
// 2-D) along axis 1 or -1 already means the same and stays as it is (ONNX's
// version converter leaves it so, and ORT's quantizer then quantizes it).
func keepSoftmaxMeaning(m *ir.Model, keep2D bool) map[*ir.Node]bool {
	used := map[string]bool{}
	for _, n := range m.Graph.Nodes {
		used[n.Name] = true
		for _, v := range append(slices.Clone(n.Inputs), n.Outputs...) {
			used[v] = true
		}
	}
	for _, v := range m.Graph.Inputs {
		used[v.Name] = true
	}
	for _, t := range m.Graph.Initializers {
		used[t.Name] = true
	}
	fresh := func(base string) string {
		name := base
		for i := 1; used[name]; i++ {
			name = fmt.Sprintf("%s_%d", base, i)
		}
		used[name] = true
		return name
	}
	producer := m.Graph.Producers()
	var nodes []*ir.Node
	safe := map[*ir.Node]bool{}
	for _, n := range m.Graph.Nodes {
		switch {
		case n.Domain != "" || len(n.Inputs) != 1 || len(n.Outputs) != 1:
		case n.OpType == "Softmax", n.OpType == "LogSoftmax", n.OpType == "Hardmax":
			if axis, _ := n.AttrInt("axis", 1); keep2D && (axis == 1 || axis == -1) &&
				producer[n.Inputs[0]] != nil && producer[n.Inputs[0]].OpType == "Gemm" && producer[n.Inputs[0]].Domain == "" {
				safe[n] = true
				break
			}
			axis, _ := n.AttrInt("axis", 1)
			x, y := n.Inputs[0], n.Outputs[0]
			flat, op, shape := fresh(x+"_flat2d"), fresh(y+"_2d"), fresh(x+"_shape")
			norm := &ir.Node{Name: n.Name, OpType: n.OpType, Inputs: []string{flat}, Outputs: []string{op},
				Attrs: []*ir.Attribute{{Name: "axis", Type: ir.AttrInt, I: 1}}}
			safe[norm] = true
			nodes = append(nodes,
				&ir.Node{Name: fresh(n.Name + "_flatten"), OpType: "Flatten", Inputs: []string{x}, Outputs: []string{flat},
					Attrs: []*ir.Attribute{{Name: "axis", Type: ir.AttrInt, I: axis}}},
				norm,
				&ir.Node{Name: fresh(n.Name + "_shape"), OpType: "Shape", Inputs: []string{x}, Outputs: []string{shape}},
				&ir.Node{Name: fresh(n.Name + "_reshape"), OpType: "Reshape", Inputs: []string{op, shape}, Outputs: []string{y}})
			continue
		}
		nodes = append(nodes, n)
	}
	m.Graph.Nodes = nodes
	return safe
}

// opsChangedBy lists ops whose inputs or semantics changed between opset 7
// and 19 in ways that make raising the opset of a model unsafe.
var opsChangedBy = map[string]int64{
	"Softmax": 13, "LogSoftmax": 13, "Hardmax": 13, "ReduceSum": 13, "ReduceMean": 18, "ReduceMax": 18,
	"ReduceMin": 18, "ReduceProd": 18, "ReduceL1": 18, "ReduceL2": 18, "ReduceLogSum": 18, "ReduceLogSumExp": 18,
	"ReduceSumSquare": 18, "Split": 13, "Squeeze": 13, "Unsqueeze": 13, "Clip": 11, "Pad": 11, "Slice": 10,
	"Resize": 11, "Upsample": 10, "TopK": 10, "Dropout": 12, "Scan": 9, "Loop": 11, "If": 11,
}

func raiseOpset(m *ir.Model, need int64, keep2D bool) error {
	cur := m.Opset("")
	if cur >= need {
		return nil
	}
	var safe map[*ir.Node]bool
	if cur < 13 && need >= 13 {
		safe = keepSoftmaxMeaning(m, keep2D)
	}
	var bad []string
	seen := map[string]bool{}
	for _, n := range m.Graph.Nodes {
		if v, ok := opsChangedBy[n.OpType]; ok && n.Domain == "" && cur < v && v <= need && !seen[n.OpType] && !safe[n] {
			seen[n.OpType] = true
			bad = append(bad, n.OpType)
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return fmt.Errorf("qdq: the model uses opset %d and per-channel Q/DQ needs %d, but %s changed meaning in between; convert the model to opset %d first",
			cur, need, strings.Join(bad, ", "), need)
	}
	for i := range m.Opsets {
		if m.Opsets[i].Domain == "" || m.Opsets[i].Domain == "ai.onnx" {
			m.Opsets[i].Version = need
		}
	}
	if m.IRVersion < 7 {
		m.IRVersion = 7
	}
	if need >= 19 && m.IRVersion < 9 {
		m.IRVersion = 9
	}
	return nil
}
