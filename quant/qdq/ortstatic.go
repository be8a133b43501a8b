package qdq

import (
	"fmt"
	"math"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/quant"
)

// ONNX Runtime's quantize_static (QuantFormat.QDQ, the default options) walks
// the graph once in node order and marks tensors by op type, following its
// QDQ registry (onnxruntime/python/tools/quantization/registry.py and
// operators/*.py); then it writes one Q/DQ pair per marked activation (shared
// by all its readers), a DequantizeLinear per weight (int8 codes stored) and
// per bias (int32 codes, scale = input scale × weight scale). ORTStatic
// reproduces that placement; the handlers below name the ORT class each
// mirrors.

// ortHandler says how ORT's QDQ quantizer treats an op type.
type ortHandler int

const (
	ortNone       ortHandler = iota // not in op_types_to_quantize: left in float (Sum, Flatten, Shape, Erf, ...)
	ortConv                         // QDQConv: input, output, per-channel weight, int32 bias
	ortGemm                         // QDQGemm: the same, bias only when constant, scaled by beta
	ortMatMul                       // QDQMatMul: a constant B as the weight, the other inputs and the output as activations
	ortRemovable                    // QDQRemovableActivation (Relu, Clip): folded into the producer's output Q
	ortDirect8Bit                   // QDQDirect8BitOp: the output shares the input's Q parameters, if the input is quantized
	ortAllTensors                   // QDQOperatorBase: every input and output quantized on its own range
	ortNorm                         // QDQNormalization: input, scale (int8 weight), bias (int32), outputs
	ortGather                       // QDQGather: constant data quantized (activation type), the output sharing its parameters
	ortWhere                        // QDQWhere: the output, when both data inputs are quantized
	ortSplit                        // QDQSplit: the input, every output sharing its parameters
)

// ortHandlers is ORT 1.30's op_types_to_quantize default (the QLinearOps and
// QDQ registries) with each op's QDQ class. Pad (QDQPad, which also folds
// the pad value) is the one op of the QDQ registry kiln does not reproduce
// yet: it is left in float.
var ortHandlers = map[string]ortHandler{
	"Conv": ortConv, "ConvTranspose": ortConv,
	"Gemm":   ortGemm,
	"MatMul": ortMatMul,
	"Relu":   ortRemovable, "Clip": ortRemovable,
	"Reshape": ortDirect8Bit, "Transpose": ortDirect8Bit, "Squeeze": ortDirect8Bit, "Unsqueeze": ortDirect8Bit,
	"AveragePool": ortDirect8Bit, "Slice": ortDirect8Bit, "MaxPool": ortDirect8Bit, "Resize": ortDirect8Bit,
	"LayerNormalization": ortNorm, "InstanceNormalization": ortNorm, "BatchNormalization": ortNorm,
	"Gather": ortGather, "GatherElements": ortGather,
	"Where": ortWhere,
	"Split": ortSplit,
	"Add":   ortAllTensors, "Mul": ortAllTensors, "LeakyRelu": ortAllTensors, "Sigmoid": ortAllTensors,
	"GlobalAveragePool": ortAllTensors, "Softmax": ortAllTensors, "Concat": ortAllTensors, "ArgMax": ortAllTensors,
}

// ortMark is one tensor chosen for quantization.
type ortMark struct {
	name     string
	shareOf  string   // ortDirect8Bit outputs: quantized with this tensor's parameters
	weight   *ir.Node // a constant read as a weight by this node (per-channel codes)
	normAxis int      // a normalization's scale: quant.PerTensor or axis 1 (ORT's default for ranks above 1)
}

// ortBias is a constant bias to store as int32 codes.
type ortBias struct {
	node                *ir.Node
	bias, input, weight string
	beta                float32
}

type ortPlacer struct {
	w       *writer
	ranges  map[string]Range // Options.Ranges after ORT's adjustments (adjustRanges)
	g       *ir.Graph
	readers map[string]int
	gin     map[string]bool
	gout    map[string]bool
	marks   map[string]*ortMark
	order   []string
	biases  []ortBias
	biasOf  map[string]bool
	removed map[*ir.Node]bool
}

// insertORTStatic rewrites out (a copy, opset already raised) in place.
func (w *writer) insertORTStatic() error {
	g := w.m.Graph
	p := &ortPlacer{w: w, g: g, readers: map[string]int{}, gin: map[string]bool{}, gout: map[string]bool{},
		marks: map[string]*ortMark{}, biasOf: map[string]bool{}, removed: map[*ir.Node]bool{}}
	for _, n := range g.Nodes {
		for _, in := range n.Inputs {
			p.readers[in]++
		}
	}
	for _, v := range g.Inputs {
		p.gin[v.Name] = true
	}
	for _, v := range g.Outputs {
		p.gout[v.Name] = true
	}
	p.adjustRanges()
	for _, n := range g.Nodes {
		if n.Domain != "" || w.opt.Skip[n.Name] {
			continue
		}
		if err := p.visit(n); err != nil {
			return fmt.Errorf("qdq: %s: %w", n, err)
		}
	}
	return p.write()
}

// adjustRanges applies ORT's adjust_tensor_ranges: a Relu's or Clip's
// input read by it alone takes the activation's output range, and a
// Softmax's output is [0, 1] whatever was observed.
func (p *ortPlacer) adjustRanges() {
	p.ranges = make(map[string]Range, len(p.w.opt.Ranges))
	for k, v := range p.w.opt.Ranges {
		p.ranges[k] = v
	}
	for _, n := range p.g.Nodes {
		if n.Domain != "" || p.w.opt.Skip[n.Name] || len(n.Inputs) == 0 || len(n.Outputs) == 0 {
			continue
		}
		x, y := n.Inputs[0], n.Outputs[0]
		switch n.OpType {
		case "Relu", "Clip":
			_, okx := p.ranges[x]
			r, oky := p.ranges[y]
			if okx && oky && p.readers[x] == 1 {
				p.ranges[x] = r
			}
		case "Softmax":
			if _, ok := p.ranges[y]; ok {
				p.ranges[y] = Range{Amax: 1, Min: 0, Max: 1}
			}
		}
	}
}

// quantizable: a float32 constant, or an activation with a calibrated
// range (calibration observes every non-constant float tensor; ORT would
// stop on a marked tensor without one, kiln leaves it in float).
func (p *ortPlacer) quantizable(name string) bool {
	if name == "" {
		return false
	}
	if t := p.w.inits[name]; t != nil {
		return t.DType == ir.Float32
	}
	_, ok := p.ranges[name]
	return ok
}

func (p *ortPlacer) mark(name string, m *ortMark) {
	if _, ok := p.marks[name]; !ok {
		p.order = append(p.order, name)
	}
	p.marks[name] = m
}

// activation marks a tensor once on its own range (ORT's
// quantize_activation_tensor).
func (p *ortPlacer) activation(name string) {
	if p.quantizable(name) && p.marks[name] == nil {
		p.mark(name, &ortMark{name: name})
	}
}

// weight marks a constant weight input of n (per-channel unless
// PerTensorWeights); a non-constant one is left alone, as ORT's per-channel
// path does.
func (p *ortPlacer) weight(n *ir.Node, name string) {
	if t := p.w.inits[name]; t != nil && t.DType == ir.Float32 && p.marks[name] == nil {
		p.mark(name, &ortMark{name: name, weight: n})
	}
}

func (p *ortPlacer) visit(n *ir.Node) error {
	in := func(i int) string {
		if i < len(n.Inputs) {
			return n.Inputs[i]
		}
		return ""
	}
	out0 := ""
	if len(n.Outputs) > 0 {
		out0 = n.Outputs[0]
	}
	switch ortHandlers[n.OpType] {
	case ortConv, ortGemm:
		p.activation(in(0))
		p.activation(out0)
		p.weight(n, in(1))
		beta := float32(1)
		if n.OpType == "Gemm" {
			var err error
			if beta, err = n.AttrFloat("beta", 1); err != nil {
				return err
			}
		}
		p.addBias(n, in(2), in(0), in(1), beta)
	case ortMatMul:
		for i, t := range n.Inputs {
			if p.w.inits[t] != nil && i == 1 {
				p.weight(n, t)
			} else {
				p.activation(t)
			}
		}
		p.activation(out0)
	case ortRemovable:
		x := in(0)
		if p.marks[x] == nil {
			return nil // input not quantized: the activation stays
		}
		if p.replaceUpstream(x, out0) {
			p.removed[n] = true
		} else {
			p.activation(x)
		}
		p.activation(out0)
	case ortDirect8Bit:
		if (n.OpType == "MaxPool" && p.w.m.Opset("") < 12) || (n.OpType == "Resize" && p.w.m.Opset("") < 11) {
			return nil // no 8-bit MaxPool before opset 12, Resize before 11
		}
		p.share(out0, in(0))
	case ortNorm:
		p.activation(in(0))
		if t := p.w.inits[in(1)]; t != nil && t.DType == ir.Float32 {
			if p.marks[in(1)] == nil {
				axis := quant.PerTensor // ORT's default axis 1 is no axis of a 1-D scale
				if t.Rank() > 1 {
					axis = 1
				}
				p.mark(in(1), &ortMark{name: in(1), weight: n, normAxis: axis})
			}
		} else {
			p.activation(in(1))
		}
		p.addBias(n, in(2), in(0), in(1), 1)
		for _, t := range n.Outputs {
			p.activation(t)
		}
	case ortGather:
		if t := p.w.inits[in(0)]; t != nil && t.DType == ir.Float32 {
			p.activation(in(0))
		}
		p.share(out0, in(0))
	case ortWhere:
		if p.marks[in(1)] != nil && p.marks[in(2)] != nil {
			for _, t := range n.Outputs {
				p.activation(t)
			}
		}
	case ortSplit:
		p.activation(in(0))
		for _, t := range n.Outputs {
			p.share(t, in(0))
		}
	case ortAllTensors:
		for _, t := range n.Inputs {
			p.activation(t)
		}
		for _, t := range n.Outputs {
			p.activation(t)
		}
	}
	return nil
}

// share marks out to be quantized with x's parameters when x is marked
// (ORT's quantize_output_same_as_input).
func (p *ortPlacer) share(out, x string) {
	if p.marks[x] != nil && p.quantizable(out) {
		p.mark(out, &ortMark{name: out, shareOf: x})
	}
}

// addBias marks a constant bias b of n for int32 codes on input × weight
// scales; the first reader's scales win, as in ORT.
func (p *ortPlacer) addBias(n *ir.Node, b, input, weight string, beta float32) {
	if b != "" && p.w.inits[b] != nil && p.w.inits[b].DType == ir.Float32 && !p.biasOf[b] {
		p.biasOf[b] = true
		p.biases = append(p.biases, ortBias{node: n, bias: b, input: input, weight: weight, beta: beta})
	}
}

// replaceUpstream is ORT's try_replacing_upstream_output: when the
// activation's input x has no other reader and is no graph input or output,
// and the activation's output y has a range, x's producer writes y directly
// (the activation is dropped; y's Q clamps to its range instead).
func (p *ortPlacer) replaceUpstream(x, y string) bool {
	if _, ok := p.ranges[y]; !ok || p.readers[x] != 1 || p.gin[x] || p.gout[x] || p.w.inits[x] != nil {
		return false
	}
	for _, n := range p.g.Nodes {
		for i, o := range n.Outputs {
			if o == x {
				n.Outputs[i] = y
				delete(p.marks, x)
				return true
			}
		}
	}
	return false
}

// write emits the marked tensors' Q/DQ nodes and initializers: constants'
// DequantizeLinear first in the graph, an activation's pair right after its
// producer (graph inputs' first), then drops the removed activations.
func (p *ortPlacer) write() error {
	w, g := p.w, p.g
	params := map[string]*quant.Params{}
	scaleZP := map[string][2]string{}
	var front []*ir.Node
	after := map[*ir.Node][]*ir.Node{} // pairs written right after their producer
	dqOf := map[string]string{}

	producer := map[string]*ir.Node{}
	for _, n := range g.Nodes {
		if p.removed[n] {
			continue
		}
		for _, o := range n.Outputs {
			producer[o] = n
		}
	}
	activation := func(m *ortMark, par *quant.Params, sz [2]string) {
		name := m.name
		qName, dqName := w.fresh(name+"_quantized"), w.fresh(name+"_dequantized")
		src := name
		if p.gout[name] { // ORT keeps the graph output's name on the DQ
			src = w.fresh(name + "_prequantize")
			if prod := producer[name]; prod != nil {
				for i, o := range prod.Outputs {
					if o == name {
						prod.Outputs[i] = src
					}
				}
			}
			dqName = name
		}
		q := &ir.Node{Name: w.fresh(name + "_QuantizeLinear"), OpType: "QuantizeLinear", Inputs: []string{src, sz[0], sz[1]}, Outputs: []string{qName}}
		dq := &ir.Node{Name: w.fresh(name + "_DequantizeLinear"), OpType: "DequantizeLinear", Inputs: []string{qName, sz[0], sz[1]}, Outputs: []string{dqName}}
		if prod := producer[name]; prod != nil {
			after[prod] = append(after[prod], q, dq)
		} else {
			front = append(front, q, dq)
		}
		params[name], scaleZP[name] = par, sz
		if dqName != name {
			dqOf[name] = dqName
		}
	}
	// Own-range tensors first, then the ones that share a provider's
	// parameters (a chain of them resolves in turn).
	var shared []*ortMark
	for _, name := range p.order {
		m := p.marks[name]
		if m == nil {
			continue
		}
		if m.shareOf != "" {
			shared = append(shared, m)
			continue
		}
		t := w.inits[name]
		switch {
		case t != nil && m.weight != nil:
			var par *quant.Params
			var err error
			if ortHandlers[m.weight.OpType] == ortNorm {
				par, err = normScaleParams(t, m.normAxis)
			} else {
				par, err = w.weightParams(m.weight, name, t)
			}
			if err == nil && w.opt.WeightScales[name] == nil {
				err = zeroRangeScaleOne(t, par)
			}
			if err != nil {
				return err
			}
			nodes, err := w.weightNodes(name, t, par)
			if err != nil {
				return err
			}
			front = append(front, nodes...)
			params[name], dqOf[name] = par, nodes[len(nodes)-1].Outputs[0]
		case t != nil:
			dq, par, err := p.constantAsActivation(name, t)
			if err != nil {
				return err
			}
			front = append(front, dq)
			params[name], dqOf[name] = par, dq.Outputs[0]
			scaleZP[name] = [2]string{dq.Inputs[1], dq.Inputs[2]} // a Gather's output shares them
		default:
			r := p.ranges[name]
			par, err := quant.FromMinMax(w.opt.ORTActivations, float32(r.Min), float32(r.Max))
			if err != nil {
				return fmt.Errorf("qdq: activation %q: %w", name, err)
			}
			if (math.Max(r.Max, 0)-math.Min(r.Min, 0))/255 < 0x1p-126 {
				par.Scale[0], par.ZeroPoint[0] = 1, 0 // ORT's scale for an empty range (kiln's default: 1/255)
			}
			s, z := w.paramTensors(name, par, nil)
			activation(m, par, [2]string{s, z})
		}
	}
	for len(shared) > 0 {
		var left []*ortMark
		for _, m := range shared {
			if sz, ok := scaleZP[m.shareOf]; ok {
				activation(m, params[m.shareOf], sz)
			} else if _, pending := p.marks[m.shareOf]; pending && m.shareOf != m.name {
				left = append(left, m)
			}
		}
		if len(left) == len(shared) {
			break // providers that were never quantized: these stay float
		}
		shared = left
	}
	for _, b := range p.biases {
		nodes, err := p.bias(b, params)
		if err != nil {
			return err
		}
		if nodes != nil {
			front = append(front, nodes)
			dqOf[b.bias] = nodes.Outputs[0]
		}
	}
	// Every reader of a quantized tensor reads its DequantizeLinear.
	for _, n := range g.Nodes {
		for i, in := range n.Inputs {
			if dq, ok := dqOf[in]; ok {
				n.Inputs[i] = dq
			}
		}
	}
	nodes := append([]*ir.Node(nil), front...)
	for _, n := range g.Nodes {
		if p.removed[n] {
			continue
		}
		nodes = append(nodes, n)
		nodes = append(nodes, after[n]...)
	}
	g.Nodes = nodes
	return nil
}

// zeroRangeScaleOne gives an all-zero weight channel (or tensor) scale 1,
// as ORT's compute_scale_zp does for a range narrower than the smallest
// normal float (kiln's Symmetric uses 1/127); the codes are 0 either way,
// but a bias on that channel gets ORT's scale.
func zeroRangeScaleOne(t *ir.Tensor, par *quant.Params) error {
	amax, err := quant.Amax(t.F32(), t.Dims, par.Axis, 0)
	if err != nil {
		return err
	}
	for i, a := range amax {
		if float64(a)*2/254 < 0x1p-126 && i < len(par.Scale) { // below float32's smallest normal
			par.Scale[i] = 1
		}
	}
	return nil
}

// normScaleParams quantizes a normalization's scale as ORT's weights: int8
// symmetric, [-127, 127], per tensor or per index of axis.
func normScaleParams(t *ir.Tensor, axis int) (*quant.Params, error) {
	amax, err := quant.Amax(t.F32(), t.Dims, axis, 0)
	if err != nil {
		return nil, err
	}
	return quant.Symmetric(ir.Int8, amax, axis, 0, true)
}

// constantAsActivation stores a float constant read by an ortAllTensors op
// (an Add's or Mul's constant operand) as ORT's quantize_initializer does
// with the activation type and its symmetric weight setting: range [-m, m]
// with m = max|x| over the codes [0, 255] (uint8: scale 2m/255, zero point
// round-half-even(127.5) = 128) or [-127, 127] (int8: scale m/127, zero
// point 0).
func (p *ortPlacer) constantAsActivation(name string, t *ir.Tensor) (*ir.Node, *quant.Params, error) {
	m := 0.0
	for _, v := range t.F32() {
		m = math.Max(m, math.Abs(float64(v)))
	}
	dt := p.w.opt.ORTActivations
	qmin, qmax := 0.0, 255.0
	if dt == ir.Int8 {
		qmin, qmax = -127, 127
	}
	s := float32(2 * m / (qmax - qmin))
	if !(s >= math.SmallestNonzeroFloat32) || math.IsInf(float64(s), 0) {
		s = 1 // ORT's scale for an all-zero range
	}
	par := &quant.Params{DType: dt, Scale: []float32{s}, ZeroPoint: []int32{int32(math.RoundToEven((qmin + qmax) / 2))}, Axis: quant.PerTensor}
	q, err := quant.Quantize(t, par)
	if err != nil {
		return nil, nil, err
	}
	q.Name = p.w.fresh(name + "_quantized")
	p.w.newInits = append(p.w.newInits, q)
	p.w.stored[name] = true
	sc, zp := p.w.paramTensors(name, par, nil)
	dq := &ir.Node{Name: p.w.fresh(name + "_DequantizeLinear"), OpType: "DequantizeLinear", Inputs: []string{q.Name, sc, zp},
		Outputs: []string{p.w.fresh(name + "_dequantized")}}
	return dq, par, nil
}

// bias stores a constant bias as int32 codes with scale input scale × weight
// scale × beta per output channel (ORT's quantize_bias_static): the codes are
// round-half-even(b / scale) in float64, clipped to int32. It returns nil
// (the bias stays float) when the input or the weight was not quantized.
// Not reproduced: ORT 1.20+ enlarges a weight's scale where the bias would
// not fit int32 at input × weight scale (QDQDisableWeightAdjustForInt32Bias
// off); kiln clips those codes instead. (ResNet-50's 27,560 int32 bias
// codes are within one code of ORT 1.30's own model's, so it did not
// trigger there.)
func (p *ortPlacer) bias(b ortBias, params map[string]*quant.Params) (*ir.Node, error) {
	in, wt := params[b.input], params[b.weight]
	t := p.w.inits[b.bias]
	if in == nil || wt == nil || t == nil || len(in.Scale) != 1 {
		return nil, nil
	}
	vals := t.F32()
	scales := make([]float32, len(wt.Scale))
	for i, s := range wt.Scale {
		scales[i] = in.Scale[0] * s * b.beta // float32, as numpy multiplies the float32 scales
	}
	perChannel := wt.Axis != quant.PerTensor
	if perChannel && len(scales) != len(vals) {
		return nil, nil // e.g. a grouped ConvTranspose's weight channels: ORT's scale would not broadcast either
	}
	codes := ir.NewTensor(ir.Int32, t.Dims)
	for i, v := range vals {
		s := scales[0]
		if perChannel {
			s = scales[i]
		}
		q := math.RoundToEven(float64(v) / float64(s))
		codes.I32()[i] = int32(math.Max(math.MinInt32, math.Min(math.MaxInt32, q)))
	}
	codes.Name = p.w.fresh(b.bias + "_quantized")
	p.w.newInits = append(p.w.newInits, codes)
	p.w.stored[b.bias] = true
	par := &quant.Params{DType: ir.Int32, Scale: scales, Axis: quant.PerTensor}
	if perChannel {
		par.Axis = 0
	}
	sc, zp := p.w.paramTensors(b.bias, par, nil)
	dq := &ir.Node{Name: p.w.fresh(b.bias + "_DequantizeLinear"), OpType: "DequantizeLinear", Inputs: []string{codes.Name, sc, zp},
		Outputs: []string{p.w.fresh(b.bias + "_dequantized")}}
	setAxis(dq, par)
	return dq, nil
}
