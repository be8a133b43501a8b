package passes_test

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/onnx"
	"github.com/kilnml/kiln/ops"
	"github.com/kilnml/kiln/passes"
)

// qdqChain: x → Q → DQ → op, for a tiny Q/DQ graph.
func qdqPair(g *graph, x, name string) string {
	g.node("QuantizeLinear", name+"_q", []string{x, "s", "z"}, []string{name + "_qo"})
	g.node("DequantizeLinear", name+"_dq", []string{name + "_qo", "s", "z"}, []string{name + "_dqo"})
	return name + "_dqo"
}

// A small Q/DQ block as ONNX Runtime writes it: X → Q/DQ → MatMul (weight
// DQ of int8) → Q/DQ → Add(bias behind Q/DQ) → Q/DQ → head. With a
// LayerNormalization head (a transformer), the Add and the LayerNorm read
// float values, the MatMul keeps its DQ input and weight; with a Relu or a
// classifier's Softmax head nothing changes.
func qdqBlock(head string) *ir.Model {
	g := newGraph(17).input("x", ir.Float32, 4, 8).output("y")
	g.init("s", ir.FromFloat32s(nil, []float32{0.02}))
	g.init("z", ir.FromInt64s(ir.Int8, nil, []int64{0}))
	w := ir.NewTensor(ir.Int8, []int64{8, 6})
	for i := range w.Len() {
		w.SetInt64At(i, int64(i%13-6))
	}
	g.init("w", w)
	g.init("ws", ir.FromFloat32s(nil, []float32{0.05}))
	g.randInit("bias", 7, -1, 1, 6)
	g.node("DequantizeLinear", "w_dq", []string{"w", "ws", "z"}, []string{"wf"})
	xd := qdqPair(g, "x", "x")
	g.node("MatMul", "mm", []string{xd, "wf"}, []string{"mm_o"})
	md := qdqPair(g, "mm_o", "mm")
	bd := qdqPair(g, "bias", "bias")
	g.node("Add", "add", []string{md, bd}, []string{"add_o"})
	ad := qdqPair(g, "add_o", "add")
	switch head {
	case "layernorm":
		g.randInit("gamma", 8, 0.5, 1.5, 6)
		g.randInit("beta", 9, -0.5, 0.5, 6)
		g.node("LayerNormalization", "sm", []string{ad, "gamma", "beta"}, []string{"y"})
	case "softmax":
		g.node("Softmax", "sm", []string{ad}, []string{"y"})
	default:
		g.node("Relu", "relu", []string{ad}, []string{"y"})
	}
	return g.m
}

// Attention scores: Softmax(Q/DQ(X)·Q/DQ(X)ᵀ / 4) make a graph a transformer.
func qdqAttention() *ir.Model {
	g := newGraph(17).input("x", ir.Float32, 4, 8).output("y")
	g.init("s", ir.FromFloat32s(nil, []float32{0.02}))
	g.init("z", ir.FromInt64s(ir.Int8, nil, []int64{0}))
	g.init("four", ir.FromFloat32s(nil, []float32{4}))
	xd := qdqPair(g, "x", "x")
	g.node("Transpose", "kt", []string{xd}, []string{"kt_o"})
	ktd := qdqPair(g, "kt_o", "kt")
	g.node("MatMul", "qk", []string{xd, ktd}, []string{"qk_o"})
	g.node("Div", "scale", []string{"qk_o", "four"}, []string{"sc_o"})
	g.node("Softmax", "sm", []string{"sc_o"}, []string{"y"})
	return g.m
}

func TestFloatTransformerQDQ(t *testing.T) {
	m := qdqBlock("layernorm")
	c := m.Clone()
	n, err := passes.FloatTransformerQDQ(c, passes.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Verify(); err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("%d readers rewired, want 3 (Add's two inputs, LayerNormalization)", n)
	}
	for _, nd := range c.Graph.Nodes {
		switch nd.Name {
		case "mm":
			if nd.Inputs[0] != "x_dqo" || nd.Inputs[1] != "wf" {
				t.Errorf("MatMul reads %v, want its DQ inputs", nd.Inputs)
			}
		case "add":
			if nd.Inputs[0] != "mm_o" || c.Graph.Initializer(nd.Inputs[1]) == nil {
				t.Errorf("Add reads %v, want the MatMul output and a float bias constant", nd.Inputs)
			}
		case "sm":
			if nd.Inputs[0] != "add_o" {
				t.Errorf("LayerNormalization reads %v", nd.Inputs)
			}
		}
	}
	// The bias keeps ONNX Runtime's rounding (0.02 steps); the outputs
	// differ from the fake-quantized graph by at most the dropped rounding.
	for _, nd := range c.Graph.Nodes {
		if nd.Name == "add" {
			b := c.Graph.Initializer(nd.Inputs[1]).F32()
			for _, v := range b {
				if r := float64(v) / 0.02; math.Abs(r-math.Round(r)) > 1e-4 {
					t.Errorf("bias %g is not on the 0.02 grid", v)
				}
			}
		}
	}
	in := randomInputs(m, 1, 5)
	want, err := ops.Run(m, in)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ops.Run(c, in)
	if err != nil {
		t.Fatal(err)
	}
	// LayerNorm divides by each row's spread, so compare whole rows: the
	// dropped rounding (≤ 0.01 on each of the MatMul and Add outputs, on
	// values of spread ~1) moves a normalized row by a few percent.
	var d2, w2 float64
	for i := range want["y"].Len() {
		g, w := got["y"].Float64At(i), want["y"].Float64At(i)
		d2 += (g - w) * (g - w)
		w2 += w * w
	}
	if rel := math.Sqrt(d2 / w2); rel > 0.05 || rel == 0 {
		t.Errorf("rewritten block vs fake-quantized: relative L2 difference %g, want in (0, 0.05]", rel)
	} else {
		t.Logf("relative L2 difference to the fake-quantized block: %.4f", rel)
	}
	// No transformer op: nothing changes, a classifier's Softmax included.
	for _, head := range []string{"relu", "softmax"} {
		cnn := qdqBlock(head)
		if n, err := passes.FloatTransformerQDQ(cnn, passes.Options{}); err != nil || n != 0 {
			t.Errorf("CNN-like Q/DQ graph, %s head: %d rewrites, %v", head, n, err)
		}
	}
	// A Softmax over attention scores is a transformer: the Div reads the
	// scores and the Transpose the float X.
	att := qdqAttention()
	if n, err := passes.FloatTransformerQDQ(att, passes.Options{}); err != nil || n == 0 {
		t.Errorf("attention Q/DQ graph: %d rewrites, %v", n, err)
	}
}

// ONNX Runtime's Q/DQ bert4 after Optimize: the same fused layers as the
// FP32 model (4 attention, 9 LayerNorm, 4 MatMul+GELU), DequantizeLinear
// left only in front of MatMuls (and the graph output), and the reference
// output within cosine 0.999 of the FP32 model.
func TestBert4QDQFusions(t *testing.T) {
	dir := filepath.Join(sharedModels(t), "bench")
	m, err := onnx.Load(filepath.Join(dir, "bert4.int8.qdq.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	fp32, err := onnx.Load(filepath.Join(dir, "bert4.fp32.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	c := m.Clone()
	if err := passes.Optimize(c, passes.Options{}); err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	prod := c.Graph.Producers()
	for _, n := range c.Graph.Nodes {
		count[n.Domain+"."+n.OpType]++
		if n.Domain == "" && (n.OpType == "Softmax" || n.OpType == "Erf" || n.OpType == "LayerNormalization") {
			t.Errorf("%s left: %s", n.OpType, n.Name)
		}
		for i, in := range n.Inputs {
			if p := prod[in]; p != nil && p.OpType == "DequantizeLinear" && n.OpType != "MatMul" {
				t.Errorf("%s (%s) input %d still reads DequantizeLinear %s", n.Name, n.OpType, i, p.Name)
			}
		}
	}
	gelu := 0
	for _, n := range c.Graph.Nodes {
		if n.Domain == "kiln" && n.OpType == "MatMul" && func() bool { s, _ := n.AttrString("activation", ""); return s == "Gelu" }() {
			gelu++
		}
	}
	if count["kiln.Attention"] != 4 || count["kiln.LayerNorm"] != 9 || gelu != 4 {
		t.Errorf("fused: %d attention, %d layernorm, %d MatMul+GELU (%v)", count["kiln.Attention"], count["kiln.LayerNorm"], gelu, count)
	}
	in := randomInputs(m, 1, 3)
	want, err := ops.Run(fp32, in)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ops.Run(c, in)
	if err != nil {
		t.Fatal(err)
	}
	if cos := cosine(got["output"], want["output"]); cos < 0.999 {
		t.Errorf("rewritten Q/DQ bert4 vs FP32: cosine %.6f < 0.999", cos)
	} else {
		t.Logf("rewritten Q/DQ bert4 vs FP32 model: cosine %.6f", cos)
	}
}

func cosine(a, b *ir.Tensor) float64 {
	var ab, aa, bb float64
	for i := range a.Len() {
		x, y := a.Float64At(i), b.Float64At(i)
		ab, aa, bb = ab+x*y, aa+x*x, bb+y*y
	}
	return ab / math.Sqrt(aa*bb)
}
