package qdq

import (
	"fmt"
	"math"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/onnx"
	"github.com/kilnml/kiln/ops"
)

// qdqStructure describes every node of m except Q, DQ and Constant, in graph
// order, by its op type, where each input comes from and who reads each
// output, independent of tensor names and scale values:
//
//	Conv(DQ(Q uint8 of MaxPool), DQ(int8/axis0), DQ(int32/axis0)) -> QuantizeLinear
//
// reads an activation quantized to uint8 after a MaxPool, int8 weights and
// int32 biases (per channel, axis 0), and its output goes to a Q alone.
func qdqStructure(m *ir.Model) []string {
	g := m.Graph
	prod := g.Producers()
	inits := g.InitializerMap()
	readers := map[string][]string{}
	for _, n := range g.Nodes {
		for _, in := range n.Inputs {
			readers[in] = append(readers[in], n.OpType)
		}
	}
	origin := func(t string) string {
		switch {
		case prod[t] != nil:
			return prod[t].OpType
		case inits[t] != nil:
			return "const " + inits[t].DType.String()
		}
		return "input"
	}
	input := func(t string) string {
		dq := prod[t]
		if dq == nil || dq.OpType != "DequantizeLinear" {
			return origin(t)
		}
		axis := ""
		if a := dq.Attr("axis"); a != nil {
			axis = fmt.Sprintf("/axis%d", a.I)
		}
		if c := inits[dq.Inputs[0]]; c != nil {
			return "DQ(" + c.DType.String() + axis + ")"
		}
		q := prod[dq.Inputs[0]]
		if q == nil || q.OpType != "QuantizeLinear" || len(q.Inputs) < 3 || inits[q.Inputs[2]] == nil {
			return "DQ(?)"
		}
		return "DQ(Q " + inits[q.Inputs[2]].DType.String() + " of " + origin(q.Inputs[0]) + ")"
	}
	var out []string
	for _, n := range g.Nodes {
		if n.OpType == "QuantizeLinear" || n.OpType == "DequantizeLinear" || n.OpType == "Constant" {
			continue
		}
		var ins, outs []string
		for _, t := range n.Inputs {
			ins = append(ins, input(t))
		}
		for _, o := range n.Outputs {
			r := append([]string(nil), readers[o]...)
			sort.Strings(r)
			outs = append(outs, strings.Join(r, "+"))
		}
		out = append(out, fmt.Sprintf("%s(%s) -> %s", n.OpType, strings.Join(ins, ", "), strings.Join(outs, "; ")))
	}
	return out
}

// nonConstantRanges gives every tensor calibration would observe (graph
// inputs and outputs of nodes that read something other than constants) the
// range [-1, 1]: the placement depends on which tensors have ranges, not on
// their values.
func nonConstantRanges(m *ir.Model) map[string]Range {
	constant := map[string]bool{}
	for _, t := range m.Graph.Initializers {
		constant[t.Name] = true
	}
	r := map[string]Range{}
	for _, v := range m.Graph.Inputs {
		if !constant[v.Name] {
			r[v.Name] = Range{Amax: 1, Min: -1, Max: 1}
		}
	}
	for _, n := range m.Graph.Nodes {
		all := true
		for _, in := range n.Inputs {
			if in != "" && !constant[in] {
				all = false
			}
		}
		for _, o := range n.Outputs {
			if all {
				constant[o] = true
			} else {
				r[o] = Range{Amax: 1, Min: -1, Max: 1}
			}
		}
	}
	return r
}

func sameLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d nodes, want %d", what, len(got), len(want))
	}
	for i := 0; i < len(got) && i < len(want); i++ {
		if got[i] != want[i] {
			t.Errorf("%s: node %d is\n\t%s\nwant\n\t%s", what, i, got[i], want[i])
		}
	}
}

// checkBiasScales: every int32 bias DQ of a Conv/Gemm has the scale
// input scale × weight scale per output channel (ORT's bias rule) and
// zero point 0.
func checkBiasScales(t *testing.T, what string, m *ir.Model) int {
	t.Helper()
	prod, inits := m.Graph.Producers(), m.Graph.InitializerMap()
	checked := 0
	for _, n := range m.Graph.Nodes {
		if (n.OpType != "Conv" && n.OpType != "Gemm" && n.OpType != "LayerNormalization") || len(n.Inputs) < 3 {
			continue
		}
		bdq, xdq, wdq := prod[n.Inputs[2]], prod[n.Inputs[0]], prod[n.Inputs[1]]
		if bdq == nil || bdq.OpType != "DequantizeLinear" || xdq == nil || wdq == nil {
			continue
		}
		if c := inits[bdq.Inputs[0]]; c == nil || c.DType != ir.Int32 {
			t.Errorf("%s: %s's bias codes are not int32", what, n.Name)
			continue
		}
		bs, xs, ws := inits[bdq.Inputs[1]].F32(), inits[xdq.Inputs[1]].F32(), inits[wdq.Inputs[1]].F32()
		for c := range bs {
			w := ws[0] // a per-tensor weight (a LayerNormalization's 1-D scale)
			if len(ws) > 1 {
				w = ws[c]
			}
			if bs[c] != xs[0]*w {
				t.Fatalf("%s: %s bias scale[%d] = %g, want %g × %g", what, n.Name, c, bs[c], xs[0], w)
			}
		}
		for _, z := range inits[bdq.Inputs[2]].I32() {
			if z != 0 {
				t.Fatalf("%s: %s bias zero point %d", what, n.Name, z)
			}
		}
		checked++
	}
	return checked
}

// weightCodes lists the int8 weight codes and scales of every Conv and Gemm
// in graph order.
func weightCodes(m *ir.Model) (codes [][]int8, scales [][]float32) {
	prod, inits := m.Graph.Producers(), m.Graph.InitializerMap()
	for _, n := range m.Graph.Nodes {
		if n.OpType != "Conv" && n.OpType != "Gemm" {
			continue
		}
		if dq := prod[n.Inputs[1]]; dq != nil && dq.OpType == "DequantizeLinear" && inits[dq.Inputs[0]] != nil {
			codes = append(codes, inits[dq.Inputs[0]].I8())
			scales = append(scales, inits[dq.Inputs[1]].F32())
		}
	}
	return codes, scales
}

// sharedBenchPair loads ../shared/models/bench/NAME.fp32.onnx and the
// ONNX Runtime-quantized NAME.int8.qdq.onnx beside it (skipping the test
// where ../shared is absent).
func sharedBenchPair(t *testing.T, name string) (fp32, ref *ir.Model) {
	t.Helper()
	const dir = "../../../shared/models/bench/"
	if _, err := os.Stat(dir + name + ".int8.qdq.onnx"); err != nil {
		t.Skip("../shared not present:", err)
	}
	fp32, err := onnx.Load(dir + name + ".fp32.onnx")
	if err != nil {
		t.Fatal(err)
	}
	if ref, err = onnx.Load(dir + name + ".int8.qdq.onnx"); err != nil {
		t.Fatal(err)
	}
	return fp32, ref
}

// TestORTStaticMobileNetV2 compares kiln's ORTStatic placement with the
// shared mobilenetv2.int8.qdq.onnx, which ONNX Runtime's quantize_static
// (QDQ, per-channel, MinMax) made from mobilenetv2.fp32.onnx with int8
// activations (its zero points are int8): the same nodes (35 Clips removed,
// every Conv's and Add's output, the pool's and the Gemm's quantized, the
// Flatten in float between Q/DQ pairs, the Identity copies of a shared zero
// bias reading the first reader's int32 DQ) and the same int8 weights; the
// activation scales differ (its calibration data is unknown).
func TestORTStaticMobileNetV2(t *testing.T) {
	fp32, ref := sharedBenchPair(t, "mobilenetv2")
	got, err := Insert(fp32, Options{Flavor: ORTStatic, Ranges: nonConstantRanges(fp32), ORTActivations: ir.Int8})
	if err != nil {
		t.Fatal(err)
	}
	want := qdqStructure(ref)
	sameLines(t, "int8 activations vs ORT's model", qdqStructure(got), want)
	if n := checkBiasScales(t, "ORT's model", ref); n != 14 {
		t.Errorf("ORT's model: %d int32 biases checked, want 14", n)
	}
	if n := checkBiasScales(t, "kiln's", got); n != 14 {
		t.Errorf("kiln's: %d int32 biases checked, want 14", n)
	}
	gc, gs := weightCodes(got)
	rc, rs := weightCodes(ref)
	if len(gc) != 53 || len(rc) != 53 {
		t.Fatalf("%d and %d quantized weights, want 53", len(gc), len(rc))
	}
	for i := range gc {
		for c := range gs[i] {
			if gs[i][c] != rs[i][c] {
				t.Fatalf("layer %d: weight scale[%d] %g, ORT's %g", i, c, gs[i][c], rs[i][c])
			}
		}
		for k := range gc[i] {
			if gc[i][k] != rc[i][k] {
				t.Fatalf("layer %d: weight code %d is %d, ORT's %d", i, k, gc[i][k], rc[i][k])
			}
		}
	}
	// The default uint8 activations: the same placement.
	u8, err := Insert(fp32, Options{Flavor: ORTStatic, Ranges: nonConstantRanges(fp32)})
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		want[i] = strings.ReplaceAll(want[i], "Q int8 of", "Q uint8 of")
	}
	sameLines(t, "uint8 activations", qdqStructure(u8), want)
}

// observedRanges runs m on x and records the range of every float tensor
// (as calibration does; integer shape arithmetic gets none).
func observedRanges(t *testing.T, m *ir.Model, input string, x *ir.Tensor) map[string]Range {
	s, err := ops.NewSession(m)
	if err != nil {
		t.Fatal(err)
	}
	consts := map[string]bool{}
	for _, c := range m.Graph.Initializers {
		consts[c.Name] = true
	}
	r := map[string]Range{}
	_, err = s.RunObserved(map[string]*ir.Tensor{input: x}, func(name string, v *ir.Tensor) {
		if v.DType != ir.Float32 || consts[name] {
			return
		}
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, f := range v.F32() {
			lo, hi = math.Min(lo, float64(f)), math.Max(hi, float64(f))
		}
		r[name] = Range{Amax: math.Max(-lo, hi), Min: lo, Max: hi}
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestORTStaticSimpleCNN: the shared simplecnn.int8.qdq.onnx (ORT's
// quantize_static, int8 activations) against kiln's from ranges observed on
// one random batch: the same nodes (Relus removed, MaxPool sharing the
// conv's Q, the Shape/Gather/Concat shape arithmetic untouched, Reshape
// sharing the pool's Q) and the same int8 weights.
func TestORTStaticSimpleCNN(t *testing.T) {
	fp32, ref := sharedBenchPair(t, "simplecnn")
	in := fp32.Graph.RealInputs()[0].Name
	got, err := Insert(fp32, Options{Flavor: ORTStatic, ORTActivations: ir.Int8,
		Ranges: observedRanges(t, fp32, in, randT([]int64{2, 1, 28, 28}, 5))})
	if err != nil {
		t.Fatal(err)
	}
	sameLines(t, "simplecnn", qdqStructure(got), qdqStructure(ref))
	gc, _ := weightCodes(got)
	rc, _ := weightCodes(ref)
	if len(gc) != 4 || len(rc) != 4 {
		t.Fatalf("%d and %d quantized weights, want 4", len(gc), len(rc))
	}
	for i := range gc {
		if fmt.Sprint(gc[i]) != fmt.Sprint(rc[i]) {
			t.Errorf("layer %d: int8 weight codes differ from ORT's", i)
		}
	}
	if n := checkBiasScales(t, "kiln's", got); n != 4 {
		t.Errorf("%d int32 biases checked, want 4", n)
	}
	for _, c := range []struct {
		what string
		m    *ir.Model
	}{{"ORT's", ref}, {"kiln's", got}} {
		if n := sharedOutputQs(t, c.what, c.m); n != 3 {
			t.Errorf("%s: %d MaxPool/Reshape outputs on their input's Q parameters, want 3", c.what, n)
		}
	}
}

// sharedOutputQs checks that every MaxPool/Reshape/Transpose/AveragePool
// between a DQ and a Q quantizes its output with its input's scale and zero
// point (ORT's QDQDirect8BitOp: the same scale and zero-point tensors), and
// returns how many it checked.
func sharedOutputQs(t *testing.T, what string, m *ir.Model) int {
	t.Helper()
	prod := m.Graph.Producers()
	checked := 0
	for _, n := range m.Graph.Nodes {
		switch n.OpType {
		case "MaxPool", "Reshape", "Transpose", "AveragePool":
		default:
			continue
		}
		dq := prod[n.Inputs[0]]
		if dq == nil || dq.OpType != "DequantizeLinear" {
			continue
		}
		for _, q := range m.Graph.Nodes {
			if q.OpType != "QuantizeLinear" || q.Inputs[0] != n.Outputs[0] {
				continue
			}
			// The same initializers, as ORT writes them (equal values
			// alone would not tell: a max pool keeps its input's range).
			if q.Inputs[1] != dq.Inputs[1] || q.Inputs[2] != dq.Inputs[2] {
				t.Errorf("%s: %s quantizes its output with %v, its input with %v", what, n.Name, q.Inputs[1:], dq.Inputs[1:])
			}
			checked++
		}
	}
	return checked
}

// TestORTStaticBERT: the shared bert4.int8.qdq.onnx (ORT's quantize_static,
// int8 activations) against kiln's from ranges observed on one random
// batch: the same nodes as a multiset (ORT's output lists them in another
// order): MatMul inputs, weights and outputs, Add/Mul/Softmax on all their
// tensors, Transpose/Reshape sharing their input's Q, LayerNormalization
// with its input, int8 scale, int32 bias (where they are constants) and
// output, a Gather of a constant table quantized and shared, the Where of
// the attention mask and the shape arithmetic left alone.
func TestORTStaticBERT(t *testing.T) {
	fp32, ref := sharedBenchPair(t, "bert4")
	in := fp32.Graph.RealInputs()[0].Name
	got, err := Insert(fp32, Options{Flavor: ORTStatic, ORTActivations: ir.Int8,
		Ranges: observedRanges(t, fp32, in, randT([]int64{1, 128, 256}, 6))})
	if err != nil {
		t.Fatal(err)
	}
	g, r := qdqStructure(got), qdqStructure(ref)
	sort.Strings(g)
	sort.Strings(r)
	sameLines(t, "bert4 (sorted)", g, r)
	for _, c := range []struct {
		what string
		m    *ir.Model
	}{{"ORT's", ref}, {"kiln's", got}} {
		if n := checkBiasScales(t, c.what, c.m); n != 1 {
			t.Errorf("%s: %d int32 biases checked, want 1 (the LayerNormalization with constant γ and β)", c.what, n)
		}
	}
}

// resnetBlocks is a small ResNet: stem Conv→Relu→MaxPool, a bottleneck-like
// block with a projection shortcut (two convs with a Relu between, a 1×1
// shortcut conv, Sum, Relu), one with an identity shortcut, then
// AveragePool→Reshape→Gemm→Softmax, as in onnx-light-cnns' ResNet-50 after
// batch-norm folding.
func resnetBlocks() *ir.Model {
	var inits []*ir.Tensor
	seed := uint64(10)
	add := func(name string, dims ...int64) string {
		seed++
		t := randT(dims, seed)
		for i := range t.F32() {
			t.F32()[i] *= 0.3
		}
		t.Name = name
		inits = append(inits, t)
		return name
	}
	shape := ir.FromInt64s(ir.Int64, []int64{2}, []int64{1, 16})
	shape.Name = "shape"
	inits = append(inits, shape)
	ints := func(name string, v ...int64) *ir.Attribute {
		return &ir.Attribute{Name: name, Type: ir.AttrInts, Ints: v}
	}
	conv := func(name, x, y string, cout, cin, k int64) *ir.Node {
		n := &ir.Node{Name: name, OpType: "Conv", Inputs: []string{x, add(name+".w", cout, cin, k, k), add(name+".b", cout)}, Outputs: []string{y}}
		if k == 3 {
			n.Attrs = []*ir.Attribute{ints("pads", 1, 1, 1, 1)}
		}
		return n
	}
	node := func(op, name string, in []string, out string, attrs ...*ir.Attribute) *ir.Node {
		return &ir.Node{Name: name, OpType: op, Inputs: in, Outputs: []string{out}, Attrs: attrs}
	}
	nodes := []*ir.Node{
		conv("stem", "x", "c0", 8, 3, 3),
		node("Relu", "stem_relu", []string{"c0"}, "r0"),
		node("MaxPool", "pool", []string{"r0"}, "p0", ints("kernel_shape", 2, 2), ints("strides", 2, 2)),
		conv("a1", "p0", "ca", 8, 8, 1),
		node("Relu", "a1_relu", []string{"ca"}, "ra"),
		conv("a2", "ra", "cb", 16, 8, 3),
		conv("proj", "p0", "cs", 16, 8, 1),
		node("Sum", "sum1", []string{"cb", "cs"}, "s1"),
		node("Relu", "sum1_relu", []string{"s1"}, "r1"),
		conv("b1", "r1", "cd", 8, 16, 1),
		node("Relu", "b1_relu", []string{"cd"}, "rd"),
		conv("b2", "rd", "ce", 16, 8, 1),
		node("Sum", "sum2", []string{"ce", "r1"}, "s2"),
		node("Relu", "sum2_relu", []string{"s2"}, "r2"),
		node("AveragePool", "avg", []string{"r2"}, "ap", ints("kernel_shape", 8, 8)),
		node("Reshape", "flat", []string{"ap", "shape"}, "f"),
		{Name: "fc", OpType: "Gemm", Inputs: []string{"f", add("fc.w", 10, 16), add("fc.b", 10)}, Outputs: []string{"g"},
			Attrs: []*ir.Attribute{{Name: "transB", Type: ir.AttrInt, I: 1}}},
		node("Softmax", "prob", []string{"g"}, "y", &ir.Attribute{Name: "axis", Type: ir.AttrInt, I: 1}),
	}
	return &ir.Model{IRVersion: 8, Opsets: []ir.OpsetImport{{Version: 13}}, Graph: &ir.Graph{
		Name:         "resnet_blocks",
		Inputs:       []*ir.ValueInfo{{Name: "x", Type: ir.TensorType(ir.Float32, ir.Shape{ir.D(1), ir.D(3), ir.D(16), ir.D(16)})}},
		Initializers: inits,
		Nodes:        nodes,
		Outputs:      []*ir.ValueInfo{{Name: "y"}},
	}}
}

// TestORTStaticResNetBlocks: the placement ONNX Runtime 1.30's
// quantize_static (QDQ, per_channel, MinMax, QUInt8 activations, QInt8
// weights) gave ResNet-50 (onnx-light-cnns, opset 13 after ONNX's version
// converter and quant_pre_process; the session's .tmp/ortq/r50.ort.qdq.onnx,
// not committed: 25 MB). Each expected line below occurs in that model's
// qdqStructure: the Relu after every Conv removed (the conv's output Q takes
// the Relu's range, zero point 0), every Conv's output quantized, also the
// block-final ones that feed the Sum; Sum (not in ORT's list) reads DQs and
// stays float, so does the Relu after it, whose output gets a Q only where
// a Conv reads it; MaxPool's output shares its input's Q parameters; the
// last Relu → AveragePool → Reshape stay float (AveragePool quantizes only a
// quantized input), the Reshape's output is quantized for the Gemm; the Gemm
// and the Softmax (range [0, 1]) outputs are quantized; biases are int32.
func TestORTStaticResNetBlocks(t *testing.T) {
	m := resnetBlocks()
	x := randT([]int64{1, 3, 16, 16}, 3)
	rg := ranges(t, m, x)
	q, err := Insert(m, Options{Flavor: ORTStatic, Ranges: rg})
	if err != nil {
		t.Fatal(err)
	}
	conv := func(from string) string {
		return "Conv(DQ(Q uint8 of " + from + "), DQ(int8/axis0), DQ(int32/axis0)) -> QuantizeLinear"
	}
	sameLines(t, "ResNet blocks", qdqStructure(q), []string{
		conv("input"),
		"MaxPool(DQ(Q uint8 of Conv)) -> QuantizeLinear",
		conv("MaxPool"),
		conv("Conv"),
		conv("MaxPool"),
		"Sum(DQ(Q uint8 of Conv), DQ(Q uint8 of Conv)) -> Relu",
		"Relu(Sum) -> QuantizeLinear",
		conv("Relu"),
		conv("Conv"),
		"Sum(DQ(Q uint8 of Conv), DQ(Q uint8 of Relu)) -> Relu",
		"Relu(Sum) -> AveragePool",
		"AveragePool(Relu) -> Reshape",
		"Reshape(AveragePool, const int64) -> QuantizeLinear",
		"Gemm(DQ(Q uint8 of Reshape), DQ(int8/axis0), DQ(int32/axis0)) -> QuantizeLinear",
		"Softmax(DQ(Q uint8 of Gemm)) -> QuantizeLinear",
	})
	if n := checkBiasScales(t, "ResNet blocks", q); n != 7 {
		t.Errorf("%d int32 biases checked, want 7", n)
	}
	prod, inits := q.Graph.Producers(), q.Graph.InitializerMap()
	quantOf := func(tensor string) *ir.Node { // the Q reading tensor
		for _, n := range q.Graph.Nodes {
			if n.OpType == "QuantizeLinear" && n.Inputs[0] == tensor {
				return n
			}
		}
		t.Fatalf("no QuantizeLinear reads %s", tensor)
		return nil
	}
	// The stem's Relu is gone: the conv writes r0, quantized on r0's range
	// (min 0, so zero point 0), and MaxPool's Q shares those parameters.
	if p := prod["r0"]; p == nil || p.OpType != "Conv" {
		t.Fatalf("r0 is written by %v, want the stem Conv", p)
	}
	stemQ, poolQ := quantOf("r0"), quantOf("p0")
	if stemQ.Inputs[1] != poolQ.Inputs[1] || stemQ.Inputs[2] != poolQ.Inputs[2] {
		t.Errorf("MaxPool's Q %v does not share the stem's %v", poolQ.Inputs, stemQ.Inputs)
	}
	if z := inits[stemQ.Inputs[2]]; z.DType != ir.Uint8 || z.U8()[0] != 0 {
		t.Errorf("stem zero point %v (after a removed Relu the range starts at 0)", z.U8())
	}
	if s := inits[stemQ.Inputs[1]].F32()[0]; s != float32(rg["r0"].Max/255) {
		t.Errorf("stem scale %g, want r0's max/255 = %g", s, rg["r0"].Max/255)
	}
	// The Softmax output keeps its graph-output name on the DQ; its Q
	// covers [0, 1].
	if p := prod["y"]; p == nil || p.OpType != "DequantizeLinear" {
		t.Fatalf("graph output y is written by %v, want a DequantizeLinear", p)
	}
	yq := prod[prod["y"].Inputs[0]]
	if s, z := inits[yq.Inputs[1]].F32()[0], inits[yq.Inputs[2]].U8()[0]; s != float32(1.0/255) || z != 0 {
		t.Errorf("Softmax output scale %g zero point %d, want 1/255 and 0", s, z)
	}
	// The Q/DQ model computes nearly what the float model does.
	want, err := ops.Run(m, map[string]*ir.Tensor{"x": x})
	if err != nil {
		t.Fatal(err)
	}
	got, err := ops.Run(q, map[string]*ir.Tensor{"x": x})
	if err != nil {
		t.Fatal(err)
	}
	const tol = 0.02 // probabilities on the 1/255 grid of the output Q, plus int8 noise
	for i, v := range want["y"].F32() {
		if d := math.Abs(float64(got["y"].F32()[i] - v)); d > tol {
			t.Errorf("y[%d] = %v, float %v", i, got["y"].F32()[i], v)
		}
	}
	if len(m.Graph.Nodes) != 18 || m.Graph.Nodes[1].Inputs[0] != "c0" {
		t.Error("Insert modified its input model")
	}
}

// TestORTStaticRules: the rules ResNet and mobilenetv2 do not reach. A Relu
// on a graph input stays (nothing quantized its input) and its output is
// quantized for the Conv; a Relu whose input has a second reader stays
// between Q/DQ pairs; Add and Mul quantize every input and output, a Mul's
// constant operand as uint8 codes on [-m, m] (zero point 128); Transpose
// shares its input's Q; Flatten (not in ORT's list) stays float between
// pairs; MatMul's constant B is int8 per output column (axis 1); the graph
// output keeps its name on the last DequantizeLinear; a Where whose two
// data inputs are quantized quantizes its output (here a graph output);
// Split's and Resize's outputs share their quantized input's parameters.
func TestORTStaticRules(t *testing.T) {
	w1 := randT([]int64{3, 2, 1, 1}, 21)
	w1.Name = "w1"
	k := ir.FromFloat32s([]int64{4}, []float32{-0.75, 0.3, 0, 0.6}) // broadcast over a's last axis
	k.Name = "k"
	wm := randT([]int64{48, 5}, 22)
	wm.Name = "wm"
	cond := ir.NewTensor(ir.Bool, []int64{4})
	cond.SetInt64At(0, 1)
	cond.SetInt64At(2, 1)
	cond.Name = "cond"
	scales := ir.FromFloat32s([]int64{4}, []float32{1, 1, 2, 2})
	scales.Name = "scales"
	node := func(op string, in []string, out string, attrs ...*ir.Attribute) *ir.Node {
		return &ir.Node{Name: out + "_" + op, OpType: op, Inputs: in, Outputs: []string{out}, Attrs: attrs}
	}
	m := &ir.Model{IRVersion: 8, Opsets: []ir.OpsetImport{{Version: 13}}, Graph: &ir.Graph{
		Name:         "rules",
		Inputs:       []*ir.ValueInfo{{Name: "x", Type: ir.TensorType(ir.Float32, ir.Shape{ir.D(1), ir.D(2), ir.D(4), ir.D(4)})}},
		Initializers: []*ir.Tensor{w1, k, wm, cond, scales},
		Nodes: []*ir.Node{
			node("Relu", []string{"x"}, "rx"),
			node("Conv", []string{"rx", "w1"}, "c1"),
			node("Relu", []string{"c1"}, "r1"),
			node("Add", []string{"r1", "c1"}, "a"),
			node("Mul", []string{"a", "k"}, "mk"),
			node("Transpose", []string{"mk"}, "tr", &ir.Attribute{Name: "perm", Type: ir.AttrInts, Ints: []int64{0, 2, 3, 1}}),
			node("Flatten", []string{"tr"}, "f"),
			node("MatMul", []string{"f", "wm"}, "y"),
			node("Where", []string{"cond", "a", "r1"}, "y2"),
			{Name: "split", OpType: "Split", Inputs: []string{"a"}, Outputs: []string{"y3", "y4", "y5"},
				Attrs: []*ir.Attribute{{Name: "axis", Type: ir.AttrInt, I: 1}}},
			node("Resize", []string{"a", "", "scales"}, "y6"),
		},
		Outputs: []*ir.ValueInfo{{Name: "y"}, {Name: "y2"}, {Name: "y3"}, {Name: "y4"}, {Name: "y5"}, {Name: "y6"}},
	}}
	x := randT([]int64{1, 2, 4, 4}, 23)
	q, err := Insert(m, Options{Flavor: ORTStatic, Ranges: ranges(t, m, x)})
	if err != nil {
		t.Fatal(err)
	}
	sameLines(t, "rules", qdqStructure(q), []string{
		"Relu(input) -> QuantizeLinear",
		"Conv(DQ(Q uint8 of Relu), DQ(int8/axis0)) -> QuantizeLinear",
		"Relu(DQ(Q uint8 of Conv)) -> QuantizeLinear",
		"Add(DQ(Q uint8 of Relu), DQ(Q uint8 of Conv)) -> QuantizeLinear",
		"Mul(DQ(Q uint8 of Add), DQ(uint8)) -> QuantizeLinear",
		"Transpose(DQ(Q uint8 of Mul)) -> QuantizeLinear",
		"Flatten(DQ(Q uint8 of Transpose)) -> QuantizeLinear",
		"MatMul(DQ(Q uint8 of Flatten), DQ(int8/axis1)) -> QuantizeLinear",
		"Where(const bool, DQ(Q uint8 of Add), DQ(Q uint8 of Relu)) -> QuantizeLinear",
		"Split(DQ(Q uint8 of Add)) -> QuantizeLinear; QuantizeLinear; QuantizeLinear",
		"Resize(DQ(Q uint8 of Add), input, const float32) -> QuantizeLinear",
	})
	prod, inits := q.Graph.Producers(), q.Graph.InitializerMap()
	kdq := prod[prod["mk"].Inputs[1]]
	// m = 0.75: scale 1.5/255; codes round-half-even(x/scale) + 128:
	// -127.5 → -128 → 0, 51 → 179, 0 → 128, 102 → 230.
	codes, sc, z := inits[kdq.Inputs[0]].U8(), inits[kdq.Inputs[1]].F32()[0], inits[kdq.Inputs[2]].U8()[0]
	if sc != float32(2*0.75/255.0) || z != 128 || fmt.Sprint(codes) != "[0 179 128 230]" {
		t.Errorf("Mul constant: codes %v scale %g zero point %d, want [0 179 128 230], 2·0.75/255, 128", codes, sc, z)
	}
	var trQ, mkQ *ir.Node
	for _, n := range q.Graph.Nodes {
		if n.OpType == "QuantizeLinear" && n.Inputs[0] == "tr" {
			trQ = n
		}
		if n.OpType == "QuantizeLinear" && n.Inputs[0] == "mk" {
			mkQ = n
		}
	}
	if trQ == nil || mkQ == nil || trQ.Inputs[1] != mkQ.Inputs[1] || trQ.Inputs[2] != mkQ.Inputs[2] {
		t.Errorf("Transpose's Q %v does not share the Mul's %v", trQ, mkQ)
	}
	// Split's and Resize's outputs (graph outputs: their Q reads the
	// renamed producer output) share the Add's parameters.
	var addQ *ir.Node
	for _, n := range q.Graph.Nodes {
		if n.OpType == "QuantizeLinear" && n.Inputs[0] == "a" {
			addQ = n
		}
	}
	for _, y := range []string{"y3", "y4", "y5", "y6"} {
		yq := prod[prod[y].Inputs[0]]
		if addQ == nil || yq.Inputs[1] != addQ.Inputs[1] || yq.Inputs[2] != addQ.Inputs[2] {
			t.Errorf("%s's Q %v does not share the Add's %v", y, yq.Inputs, addQ)
		}
	}
	if p := prod["y"]; p == nil || p.OpType != "DequantizeLinear" {
		t.Fatalf("graph output y is written by %v, want a DequantizeLinear", p)
	}
	want, err := ops.Run(m, map[string]*ir.Tensor{"x": x})
	if err != nil {
		t.Fatal(err)
	}
	got, err := ops.Run(q, map[string]*ir.Tensor{"x": x})
	if err != nil {
		t.Fatal(err)
	}
	span := 0.0
	for _, v := range want["y"].F32() {
		span = math.Max(span, math.Abs(float64(v)))
	}
	const tol = 0.05 // of the output's range: a chain of eight uint8/int8 roundings
	for i, v := range want["y"].F32() {
		if d := math.Abs(float64(got["y"].F32()[i] - v)); d > tol*span {
			t.Errorf("y[%d] = %v, float %v", i, got["y"].F32()[i], v)
		}
	}
}

// TestORTStaticEmptyRanges: ORT's compute_scale_zp gives a range narrower
// than float32's smallest normal the scale 1 (zero point 0): an all-zero
// weight channel (and the bias scale built on it) and an activation that
// was 0 throughout calibration.
func TestORTStaticEmptyRanges(t *testing.T) {
	w := randT([]int64{3, 2, 1, 1}, 31)
	w.Name = "w"
	w.F32()[2], w.F32()[3] = 0, 0 // output channel 1
	b := ir.FromFloat32s([]int64{3}, []float32{0.5, 0.25, -0.5})
	b.Name = "b"
	m := &ir.Model{IRVersion: 8, Opsets: []ir.OpsetImport{{Version: 13}}, Graph: &ir.Graph{
		Name:         "empty",
		Inputs:       []*ir.ValueInfo{{Name: "x", Type: ir.TensorType(ir.Float32, ir.Shape{ir.D(1), ir.D(2), ir.D(3), ir.D(3)})}},
		Initializers: []*ir.Tensor{w, b},
		Nodes:        []*ir.Node{{Name: "conv", OpType: "Conv", Inputs: []string{"x", "w", "b"}, Outputs: []string{"y"}}},
		Outputs:      []*ir.ValueInfo{{Name: "y"}},
	}}
	q, err := Insert(m, Options{Flavor: ORTStatic, Ranges: map[string]Range{"x": {Amax: 2, Min: -1, Max: 2}, "y": {}}})
	if err != nil {
		t.Fatal(err)
	}
	prod, inits := q.Graph.Producers(), q.Graph.InitializerMap()
	var c *ir.Node
	for _, n := range q.Graph.Nodes {
		if n.OpType == "Conv" {
			c = n
		}
	}
	ws := inits[prod[c.Inputs[1]].Inputs[1]].F32()
	if ws[1] != 1 || ws[0] == 1 || ws[2] == 1 {
		t.Errorf("weight scales %v, want 1 for the all-zero channel 1 only", ws)
	}
	xs := inits[prod[c.Inputs[0]].Inputs[1]].F32()[0]
	if bs := inits[prod[c.Inputs[2]].Inputs[1]].F32(); bs[1] != xs {
		t.Errorf("bias scale[1] %g, want the input scale %g × 1", bs[1], xs)
	}
	yq := prod[prod["y"].Inputs[0]]
	if s, z := inits[yq.Inputs[1]].F32()[0], inits[yq.Inputs[2]].U8()[0]; s != 1 || z != 0 {
		t.Errorf("empty-range output: scale %g zero point %d, want 1 and 0", s, z)
	}
}
