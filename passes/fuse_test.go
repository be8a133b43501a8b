package passes_test

import (
	"math"
	"slices"
	"testing"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/passes"
)

func TestFuseConvBiasRelu(t *testing.T) {
	for _, tc := range []struct {
		name     string
		bias     []int64
		convBias bool
	}{{"1C11", []int64{1, 4, 1, 1}, false}, {"C11", []int64{4, 1, 1}, true}, {"scalar", []int64{1}, false}} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGraph(17).input("x", ir.Float32, "n", 3, 6, 6).output("y")
			g.randInit("W", 1, -1, 1, 4, 3, 3, 3).randInit("Bc", 2, -1, 1, tc.bias...)
			ins := []string{"x", "W"}
			if tc.convBias {
				g.randInit("B", 3, -1, 1, 4)
				ins = append(ins, "B")
			}
			g.node("Conv", "conv", ins, []string{"c"})
			g.node("Add", "add", []string{"Bc", "c"}, []string{"a"})
			g.node("Relu", "relu", []string{"a"}, []string{"y"})
			c, log, n := optimized(t, g.m, passes.FuseLayers, randomInputs(g.m, 2, 1))
			conv := c.Graph.Nodes[0]
			if n != 2 || opTypes(c) != "kiln.Conv" || conv.Name != "conv + add + relu" || conv.Outputs[0] != "y" ||
				attrStrings(conv, "kiln_member_ops") != "Conv,Add,Relu" || len(conv.Inputs) != 3 {
				t.Fatalf("%d: %s %+v", n, opTypes(c), conv)
			}
			if a, _ := conv.AttrString("activation", ""); a != "Relu" {
				t.Errorf("activation %q", a)
			}
			if want := []string{"Fusing conv with add", "Fusing conv + add with relu"}; !slices.Equal(log, want) {
				t.Errorf("log %q", log)
			}
		})
	}
}

// Every single-node activation fuses into MatMul + bias.
func TestFuseMatMulBiasActivation(t *testing.T) {
	for _, tc := range []struct {
		op     string
		attrs  []*ir.Attribute
		extra  []float32 // Clip bounds (inputs)
		kind   string
		alpha  float32
		beta   float32
		opset  int64
		absent bool // Clip min absent
	}{
		{op: "Relu", kind: "Relu"},
		{op: "LeakyRelu", attrs: []*ir.Attribute{floatAttr("alpha", 0.2)}, kind: "LeakyRelu", alpha: 0.2},
		{op: "Sigmoid", kind: "Sigmoid"},
		{op: "Tanh", kind: "Tanh"},
		{op: "HardSigmoid", attrs: []*ir.Attribute{floatAttr("alpha", 0.3), floatAttr("beta", 0.4)}, kind: "HardSigmoid", alpha: 0.3, beta: 0.4},
		{op: "HardSwish", kind: "HardSwish"},
		{op: "Gelu", kind: "Gelu"},
		{op: "Gelu", attrs: []*ir.Attribute{strAttr("approximate", "tanh")}, kind: "GeluTanh"},
		{op: "Clip", extra: []float32{0, 6}, kind: "Clip", alpha: 0, beta: 6},
		{op: "Clip", extra: []float32{0, 0.5}, kind: "Clip", alpha: float32(math.Inf(-1)), beta: 0.5, absent: true},
		{op: "Clip", attrs: []*ir.Attribute{floatAttr("min", -1), floatAttr("max", 1)}, kind: "Clip", alpha: -1, beta: 1, opset: 9},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			opset := tc.opset
			if opset == 0 {
				opset = 20
			}
			g := newGraph(opset).input("x", ir.Float32, "n", 3, 5).output("y")
			g.randInit("Wm", 1, -1, 1, 5, 4).randInit("bias", 2, -1, 1, 4)
			g.node("MatMul", "mm", []string{"x", "Wm"}, []string{"m"})
			g.node("Add", "add", []string{"m", "bias"}, []string{"a"})
			ins := []string{"a"}
			if tc.extra != nil {
				g.init("lo", ir.ScalarFloat32(tc.extra[0])).init("hi", ir.ScalarFloat32(tc.extra[1]))
				ins = append(ins, "lo", "hi")
				if tc.absent {
					ins[1] = ""
				}
			}
			g.node(tc.op, "act", ins, []string{"y"}, tc.attrs...)
			c, _, n := optimized(t, g.m, passes.FuseLayers, randomInputs(g.m, 2, 1))
			mm := c.Graph.Nodes[0]
			if n != 2 || opTypes(c) != "kiln.MatMul" || mm.Name != "mm + add + act" || len(mm.Inputs) != 3 {
				t.Fatalf("%d: %s %+v", n, opTypes(c), mm)
			}
			kind, _ := mm.AttrString("activation", "")
			alpha, _ := mm.AttrFloat("act_alpha", 0)
			beta, _ := mm.AttrFloat("act_beta", 0)
			if kind != tc.kind || alpha != tc.alpha || beta != tc.beta {
				t.Errorf("activation %s(%v, %v)", kind, alpha, beta)
			}
		})
	}
}

// geluGraph: MatMul then an expanded GELU written by build.
func geluGraph(build func(g *graph, x string) string) *graph {
	g := newGraph(17).input("x", ir.Float32, 2, 8).output("y")
	g.randInit("Wm", 1, -1, 1, 8, 6)
	g.node("MatMul", "mm", []string{"x", "Wm"}, []string{"m"})
	out := build(g, "m")
	g.node("Relu", "after", []string{out}, []string{"y"})
	return g
}

func scalarInit(g *graph, name string, v float64) string {
	g.init(name, ir.ScalarFloat32(float32(v)))
	return name
}

func TestFuseExpandedGelu(t *testing.T) {
	erfBert := func(g *graph, x string) string { // BERT: Div, Erf, Add, Mul(x, .), Mul(., 0.5)
		g.node("Div", "div", []string{x, scalarInit(g, "sqrt2", math.Sqrt2)}, []string{"d"})
		g.node("Erf", "erf", []string{"d"}, []string{"e"})
		g.node("Add", "add1", []string{"e", scalarInit(g, "one", 1)}, []string{"a"})
		g.node("Mul", "mul", []string{x, "a"}, []string{"p"})
		g.node("Mul", "half", []string{"p", scalarInit(g, "h", 0.5)}, []string{"gelu"})
		return "gelu"
	}
	erfHalfFirst := func(g *graph, x string) string { // (0.5·x)·(1+erf(x·(1/√2)))
		g.node("Mul", "half", []string{scalarInit(g, "h", 0.5), x}, []string{"hx"})
		g.node("Mul", "scale", []string{x, scalarInit(g, "isqrt2", 1/math.Sqrt2)}, []string{"d"})
		g.node("Erf", "erf", []string{"d"}, []string{"e"})
		g.node("Add", "add1", []string{scalarInit(g, "one", 1), "e"}, []string{"a"})
		g.node("Mul", "mul", []string{"hx", "a"}, []string{"gelu"})
		return "gelu"
	}
	tanhForm := func(pow bool) func(g *graph, x string) string {
		return func(g *graph, x string) string {
			if pow {
				g.node("Pow", "pow", []string{x, scalarInit(g, "three", 3)}, []string{"x3"})
			} else {
				g.node("Mul", "sq", []string{x, x}, []string{"x2"})
				g.node("Mul", "cube", []string{"x2", x}, []string{"x3"})
			}
			g.node("Mul", "k1", []string{"x3", scalarInit(g, "c", 0.044715)}, []string{"kx3"})
			g.node("Add", "inner", []string{x, "kx3"}, []string{"s"})
			g.node("Mul", "k2", []string{"s", scalarInit(g, "k", math.Sqrt(2/math.Pi))}, []string{"u"})
			g.node("Tanh", "tanh", []string{"u"}, []string{"th"})
			g.node("Add", "add1", []string{"th", scalarInit(g, "one", 1)}, []string{"a"})
			g.node("Mul", "mul", []string{x, "a"}, []string{"p"})
			g.node("Mul", "half", []string{"p", scalarInit(g, "h", 0.5)}, []string{"gelu"})
			return "gelu"
		}
	}
	hardSwish := func(g *graph, x string) string {
		g.node("HardSigmoid", "hsig", []string{x}, []string{"hs"}, floatAttr("alpha", 1.0/6), floatAttr("beta", 0.5))
		g.node("Mul", "mul", []string{x, "hs"}, []string{"out"})
		return "out"
	}
	relu6 := func(g *graph, x string) {
		g.node("Add", "plus3", []string{x, scalarInit(g, "three", 3)}, []string{"x3"})
		g.node("Clip", "relu6", []string{"x3", scalarInit(g, "zero", 0), scalarInit(g, "six", 6)}, []string{"r6"})
	}
	hardSwishV3 := func(g *graph, x string) string { // x·Relu6(x+3)/6
		relu6(g, x)
		g.node("Mul", "mul", []string{x, "r6"}, []string{"p"})
		g.node("Div", "div6", []string{"p", scalarInit(g, "six_", 6)}, []string{"out"})
		return "out"
	}
	hardSigmoidV3 := func(g *graph, x string) string { // Relu6(x+3)·(1/6)
		relu6(g, x)
		g.node("Mul", "sixth", []string{"r6", scalarInit(g, "s", 1.0/6)}, []string{"out"})
		return "out"
	}
	for _, tc := range []struct {
		name  string
		build func(*graph, string) string
		kind  string
		nodes int
	}{
		{"hardswish-v3", hardSwishV3, "HardSwish", 4}, {"hardsigmoid-v3", hardSigmoidV3, "HardSigmoid", 3},
		{"erf-bert", erfBert, "Gelu", 5}, {"erf-half-first", erfHalfFirst, "Gelu", 5},
		{"tanh-pow", tanhForm(true), "GeluTanh", 8}, {"tanh-cube", tanhForm(false), "GeluTanh", 9},
		{"hardswish", hardSwish, "HardSwish", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := geluGraph(tc.build)
			c, log, n := optimized(t, g.m, passes.FuseLayers, randomInputs(g.m, 1, 1))
			mm := c.Graph.Nodes[0]
			kind, _ := mm.AttrString("activation", "")
			members := mm.Attr("kiln_members")
			if n != 1 || opTypes(c) != "kiln.MatMul Relu" || kind != tc.kind || members == nil || len(members.Strings) != 1+tc.nodes {
				t.Errorf("%d: %s %q %v (%q)", n, opTypes(c), kind, members, log)
			}
			if mm.Outputs[0] != c.Graph.Nodes[1].Inputs[0] {
				t.Errorf("fused node writes %q, Relu reads %q", mm.Outputs[0], c.Graph.Nodes[1].Inputs[0])
			}
		})
	}
	// Not GELU: a wrong constant, or x read elsewhere.
	wrong := geluGraph(func(g *graph, x string) string {
		s := erfBert(g, x)
		g.m.Graph.Initializer("h").SetFloat64At(0, 0.6)
		return s
	})
	if _, _, n := optimized(t, wrong.m, passes.FuseLayers, randomInputs(wrong.m, 1, 1)); n != 0 {
		t.Errorf("0.6·x·(1+erf) fused")
	}
	shared := geluGraph(erfBert)
	shared.output("m")
	if _, _, n := optimized(t, shared.m, passes.FuseLayers, randomInputs(shared.m, 1, 1)); n != 0 {
		t.Errorf("GELU fused although its input is a graph output")
	}
}

// ResNet's block end: conv2 + Add(shortcut) + Relu becomes one kiln.Conv
// with the shortcut as Z.
func TestFuseResidual(t *testing.T) {
	g := newGraph(17).input("x", ir.Float32, "n", 4, 5, 5).output("y")
	g.randInit("W1", 1, -1, 1, 4, 4, 3, 3).randInit("W2", 2, -1, 1, 4, 4, 3, 3).randInit("B2", 3, -1, 1, 4)
	pads := ints("pads", 1, 1, 1, 1)
	g.node("Conv", "conv1", []string{"x", "W1"}, []string{"c1"}, pads)
	g.node("Relu", "relu1", []string{"c1"}, []string{"r1"})
	g.node("Conv", "conv2", []string{"r1", "W2", "B2"}, []string{"c2"}, pads)
	g.node("Add", "add", []string{"r1", "c2"}, []string{"s"})
	g.node("Relu", "relu2", []string{"s"}, []string{"y"})
	c, _, n := optimized(t, g.m, passes.FuseLayers, randomInputs(g.m, 2, 1))
	if n != 3 || opTypes(c) != "kiln.Conv kiln.Conv" {
		t.Fatalf("%d: %s", n, opTypes(c))
	}
	c2 := c.Graph.Nodes[1]
	if c2.Name != "conv2 + add + relu2" || !slices.Equal(c2.Inputs, []string{"r1", "W2", "B2", "r1"}) || c2.Outputs[0] != "y" {
		t.Errorf("%+v", c2)
	}
	// Through Optimize and with the Add's operands swapped, too.
	g.m.Graph.Nodes[3].Inputs = []string{"c2", "r1"}
	optimized(t, g.m, nil, randomInputs(g.m, 1, 1))
}

// A broadcast Add is not a residual; a Conv whose output is also a graph
// output keeps it.
func TestFuseResidualNeedsSameShape(t *testing.T) {
	g := newGraph(17).input("x", ir.Float32, 1, 4, 5, 5).output("y", "c0")
	g.randInit("W", 1, -1, 1, 4, 4, 1, 1)
	g.node("GlobalAveragePool", "gap", []string{"x"}, []string{"p"})
	g.node("Conv", "conv", []string{"x", "W"}, []string{"c"})
	g.node("Add", "add", []string{"c", "p"}, []string{"y"})
	g.node("Conv", "conv0", []string{"x", "W"}, []string{"c0"})
	g.node("Relu", "relu0", []string{"c0"}, []string{"r0"})
	g.output("r0")
	c, _, n := optimized(t, g.m, passes.FuseLayers, randomInputs(g.m, 1, 1))
	if n != 0 {
		t.Errorf("%d fusions: %s", n, opTypes(c))
	}
}

func TestFuseGemmBias(t *testing.T) {
	for _, withC := range []bool{false, true} {
		g := newGraph(17).input("x", ir.Float32, "n", 5).output("y")
		g.randInit("W", 1, -1, 1, 3, 5).randInit("bias", 2, -1, 1, 1, 3)
		ins := []string{"x", "W"}
		if withC {
			g.randInit("C", 3, -1, 1, 3)
			ins = append(ins, "C")
		}
		g.node("Gemm", "fc", ins, []string{"f"}, intAttr("transB", 1), floatAttr("beta", 0.5))
		g.node("Add", "add", []string{"f", "bias"}, []string{"a"})
		g.node("Sigmoid", "sig", []string{"a"}, []string{"y"})
		c, _, n := optimized(t, g.m, passes.FuseLayers, randomInputs(g.m, 3, 1))
		if n != 2 || opTypes(c) != "kiln.Gemm" || c.Graph.Nodes[0].Name != "fc + add + sig" {
			t.Errorf("C=%v: %d: %s", withC, n, opTypes(c))
		}
	}
}

// Clip bounds computed at run time cannot be an epilogue constant.
func TestFuseClipNeedsConstantBounds(t *testing.T) {
	g := newGraph(17).input("x", ir.Float32, 2, 5).input("hi", ir.Float32).output("y")
	g.randInit("Wm", 1, -1, 1, 5, 4)
	g.node("MatMul", "mm", []string{"x", "Wm"}, []string{"m"})
	g.node("Clip", "clip", []string{"m", "", "hi"}, []string{"y"})
	in := randomInputs(g.m, 1, 1)
	in["hi"] = ir.ScalarFloat32(0.5)
	if _, _, n := optimized(t, g.m, passes.FuseLayers, in); n != 0 {
		t.Errorf("%d fusions", n)
	}
}
