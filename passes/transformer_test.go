package passes_test

import (
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/onnx"
	"github.com/kilnml/kiln/passes"
)

func scalar32(g *graph, name string, v float64) *graph {
	scalarInit(g, name, v)
	return g
}

func TestFuseLayerNormOp(t *testing.T) {
	g := newGraph(17).input("x", ir.Float32, "n", 5, 8).randInit("g", 1, 0.5, 1.5, 8).randInit("b", 2, -1, 1, 8).
		node("LayerNormalization", "ln", []string{"x", "g", "b"}, []string{"y"}, floatAttr("epsilon", 1e-3)).output("y")
	m, _, n := optimized(t, g.m, passes.FuseLayerNorm, randomInputs(g.m, 3, 1))
	if n != 1 || opTypes(m) != "kiln.LayerNorm" {
		t.Fatalf("%d fusions, ops %s", n, opTypes(m))
	}
	if e, _ := m.Graph.Nodes[0].AttrFloat("epsilon", 0); e != 1e-3 {
		t.Errorf("epsilon %v", e)
	}
}

// expandedLayerNorm writes LayerNorm as exporters before opset 17 do; sq
// picks Pow(d,2) or d·d, affine adds γ and β.
func expandedLayerNorm(opset int64, sq string, affine bool) *graph {
	g := newGraph(opset).input("x", ir.Float32, "n", 4, 16)
	mean := func(name, in, out string) {
		if opset >= 18 {
			g.init(name+"_axes", ir.FromInt64s(ir.Int64, []int64{1}, []int64{-1}))
			g.node("ReduceMean", name, []string{in, name + "_axes"}, []string{out})
		} else {
			g.node("ReduceMean", name, []string{in}, []string{out}, ints("axes", -1))
		}
	}
	mean("mean", "x", "mu")
	g.node("Sub", "sub", []string{"x", "mu"}, []string{"d"})
	if sq == "pow" {
		scalar32(g, "two", 2).node("Pow", "pow", []string{"d", "two"}, []string{"d2"})
	} else {
		g.node("Mul", "sq", []string{"d", "d"}, []string{"d2"})
	}
	mean("var", "d2", "v")
	scalar32(g, "eps", 1e-5).node("Add", "addeps", []string{"v", "eps"}, []string{"ve"})
	g.node("Sqrt", "sqrt", []string{"ve"}, []string{"sd"})
	g.node("Div", "div", []string{"d", "sd"}, []string{"nx"})
	out := "nx"
	if affine {
		g.randInit("gamma", 3, 0.5, 1.5, 16).node("Mul", "mulg", []string{"nx", "gamma"}, []string{"gx"})
		g.randInit("beta", 4, -1, 1, 1, 16).node("Add", "addb", []string{"beta", "gx"}, []string{"y"})
		out = "y"
	}
	return g.node("Relu", "relu", []string{out}, []string{"z"}).output("z")
}

func TestFuseExpandedLayerNorm(t *testing.T) {
	for _, c := range []struct {
		opset  int64
		sq     string
		affine bool
	}{{13, "pow", true}, {18, "mul", true}, {13, "pow", false}} {
		g := expandedLayerNorm(c.opset, c.sq, c.affine)
		m, _, n := optimized(t, g.m, passes.FuseLayerNorm, randomInputs(g.m, 3, 2))
		if n != 1 || opTypes(m) != "kiln.LayerNorm Relu" {
			t.Fatalf("%+v: %d fusions, ops %s", c, n, opTypes(m))
		}
		members := attrStrings(m.Graph.Nodes[0], "kiln_member_ops")
		want := "ReduceMean,Sub," + map[string]string{"pow": "Pow", "mul": "Mul"}[c.sq] + ",ReduceMean,Add,Sqrt,Div"
		if c.affine {
			want += ",Mul,Add"
		}
		if members != want {
			t.Errorf("%+v: members %s, want %s", c, members, want)
		}
	}
}

func TestFuseExpandedLayerNormKeepsSharedValues(t *testing.T) {
	g := expandedLayerNorm(13, "pow", true)
	g.output("d") // d is read outside the pattern: no fusion
	c := g.m.Clone()
	if n, err := passes.FuseLayerNorm(c, passes.Options{}); err != nil || n != 0 {
		t.Fatalf("fused %d (%v) though d is a graph output", n, err)
	}
	g = expandedLayerNorm(13, "pow", true)
	g.m.Graph.Nodes[0].Attrs = []*ir.Attribute{ints("axes", 1)} // axis 1 of 3, not the last
	if n, _ := passes.FuseLayerNorm(g.m.Clone(), passes.Options{}); n != 0 {
		t.Fatal("fused a mean over a middle axis")
	}
}

// attentionGraph is PyTorch's export of scaled_dot_product_attention with a
// boolean mask: Q·√s, Kᵀ·√s, MatMul, + Where(mask, 0, -inf), Softmax,
// Where(IsNaN(P), 0, P), MatMul with V.
func attentionGraph(withMask, nanGuard bool) *graph {
	g := newGraph(17).input("q", ir.Float32, "b", 2, 6, 8).input("k", ir.Float32, "b", 2, 6, 8).input("v", ir.Float32, "b", 2, 6, 4)
	s := math.Sqrt(1 / math.Sqrt(8))
	scalarInit(g, "sq", s)
	scalarInit(g, "sk", s)
	g.node("Transpose", "kt", []string{"k"}, []string{"kT"}, ints("perm", 0, 1, 3, 2))
	g.node("Mul", "mulq", []string{"q", "sq"}, []string{"qs"})
	g.node("Mul", "mulk", []string{"kT", "sk"}, []string{"ks"})
	g.node("MatMul", "qk", []string{"qs", "ks"}, []string{"s"})
	scores := "s"
	if withMask {
		g.input("keep", ir.Bool, "b", 1, 6, 6)
		scalarInit(g, "zero", 0)
		scalarInit(g, "ninf", math.Inf(-1))
		g.node("Where", "maskw", []string{"keep", "zero", "ninf"}, []string{"mask"})
		g.node("Add", "addmask", []string{"s", "mask"}, []string{"sm"})
		scores = "sm"
	}
	g.node("Softmax", "softmax", []string{scores}, []string{"p"}, intAttr("axis", -1))
	probs := "p"
	if nanGuard {
		scalarInit(g, "pz", 0)
		g.node("IsNaN", "isnan", []string{"p"}, []string{"nan"})
		g.node("Where", "guard", []string{"nan", "pz", "p"}, []string{"pg"})
		probs = "pg"
	}
	return g.node("MatMul", "pv", []string{probs, "v"}, []string{"y"}).output("y")
}

func TestFuseAttention(t *testing.T) {
	for _, c := range []struct{ mask, guard bool }{{true, true}, {false, false}, {true, false}} {
		g := attentionGraph(c.mask, c.guard)
		in := randomInputs(g.m, 3, 5)
		if c.mask {
			// Every other query of batch 1 sees no key at all: a NaN row
			// without the guard, zeros with it (same in both graphs).
			keep := ir.NewTensor(ir.Bool, []int64{3, 1, 6, 6})
			for i := range keep.Len() {
				row := (i / 6) % 6
				b := i / 36
				v := 1.0
				if (i%6)%3 == 2 || (b == 1 && row%2 == 1) {
					v = 0
				}
				keep.SetFloat64At(i, v)
			}
			in["keep"] = keep
		}
		if !c.guard && c.mask {
			// NaN rows do not compare: check structure only.
			m := g.m.Clone()
			if n, err := passes.FuseAttention(m, passes.Options{}); n != 1 || err != nil {
				t.Fatalf("%+v: %d fusions %v", c, n, err)
			}
			continue
		}
		m, _, n := optimized(t, g.m, passes.FuseAttention, in)
		want := "Transpose kiln.Attention"
		if c.mask {
			want = "Transpose Where kiln.Attention"
		}
		if n != 1 || opTypes(m) != want {
			t.Fatalf("%+v: %d fusions, ops %s", c, n, opTypes(m))
		}
		at := findNode(m, "Attention")
		if sc, _ := at.AttrFloat("scale", 0); math.Abs(float64(sc)-1/math.Sqrt(8)) > 1e-6 {
			t.Errorf("scale %v", sc)
		}
		if nz, _ := at.AttrInt("nan_to_zero", -1); (nz == 1) != c.guard {
			t.Errorf("nan_to_zero %d", nz)
		}
	}
}

func TestFuseAttentionLeavesSharedScores(t *testing.T) {
	g := attentionGraph(true, true).output("p") // probabilities are an output
	if n, _ := passes.FuseAttention(g.m.Clone(), passes.Options{}); n != 0 {
		t.Fatal("fused attention whose probabilities are a graph output")
	}
	g = attentionGraph(false, false)
	g.m.Graph.Nodes[4].Attrs = []*ir.Attribute{intAttr("axis", 2)} // softmax over queries
	if n, _ := passes.FuseAttention(g.m.Clone(), passes.Options{}); n != 0 {
		t.Fatal("fused a softmax over a middle axis")
	}
}

// TestBert4TransformerFusions: after Optimize, bert4's 9 LayerNormalization
// and 4 attention blocks become kiln.LayerNorm and kiln.Attention, outputs
// unchanged.
func TestBert4TransformerFusions(t *testing.T) {
	path := filepath.Join(sharedModels(t), "bench", "bert4.fp32.onnx")
	m, err := onnx.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	c := m.Clone()
	if err := passes.Optimize(c, passes.Options{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []func(*ir.Model, passes.Options) (int, error){passes.FuseLayerNorm, passes.FuseAttention} {
		if _, err := p(c, passes.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	count := map[string]int{}
	for _, n := range c.Graph.Nodes {
		count[n.Domain+"."+n.OpType]++
		if n.OpType == "Softmax" || n.OpType == "LayerNormalization" {
			t.Errorf("%s left: %s", n.OpType, n.Name)
		}
	}
	if count["kiln.LayerNorm"] != 9 || count["kiln.Attention"] != 4 {
		t.Errorf("fused ops %v", count)
	}
	for _, n := range c.Graph.Nodes {
		if n.OpType == "Attention" && !strings.Contains(attrStrings(n, "kiln_member_ops"), "Softmax,IsNaN,Where,MatMul") {
			t.Errorf("attention members %s", attrStrings(n, "kiln_member_ops"))
		}
	}
	sameOutputs(t, m, c, randomInputs(m, 1, 3), 1e-4)
}

// GELU after an op that has no epilogue (an Add of two inputs) becomes one
// kiln.Gelu, in both expansions; after Optimize, a MatMul's GELU still goes
// into its epilogue.
func TestFuseGelu(t *testing.T) {
	for _, approx := range []string{"none", "tanh"} {
		g := newGraph(13).input("a", ir.Float32, "n", 16).input("b", ir.Float32, "n", 16)
		g.node("Add", "add", []string{"a", "b"}, []string{"x"})
		if approx == "none" {
			g.node("Div", "div", []string{"x", scalarInit(g, "sqrt2", math.Sqrt2)}, []string{"d"})
			g.node("Erf", "erf", []string{"d"}, []string{"e"})
			g.node("Add", "add1", []string{"e", scalarInit(g, "one", 1)}, []string{"e1"})
			g.node("Mul", "mul", []string{"x", "e1"}, []string{"m"})
			g.node("Mul", "half", []string{"m", scalarInit(g, "h", 0.5)}, []string{"y"})
		} else {
			g.node("Pow", "cube", []string{"x", scalarInit(g, "three", 3)}, []string{"x3"})
			g.node("Mul", "c", []string{"x3", scalarInit(g, "k", 0.044715)}, []string{"x3k"})
			g.node("Add", "inner", []string{"x", "x3k"}, []string{"u"})
			g.node("Mul", "s", []string{"u", scalarInit(g, "sq", math.Sqrt(2/math.Pi))}, []string{"us"})
			g.node("Tanh", "tanh", []string{"us"}, []string{"th"})
			g.node("Add", "add1", []string{"th", scalarInit(g, "one", 1)}, []string{"t1"})
			g.node("Mul", "half", []string{"x", scalarInit(g, "h", 0.5)}, []string{"xh"})
			g.node("Mul", "mul", []string{"xh", "t1"}, []string{"y"})
		}
		g.output("y")
		m, _, n := optimized(t, g.m, passes.FuseGelu, randomInputs(g.m, 3, 4))
		if n != 1 || opTypes(m) != "Add kiln.Gelu" {
			t.Fatalf("%s: %d fusions, ops %s", approx, n, opTypes(m))
		}
		if a, _ := m.Graph.Nodes[1].AttrString("approximate", ""); a != approx {
			t.Errorf("approximate %q, want %q", a, approx)
		}
	}
}
