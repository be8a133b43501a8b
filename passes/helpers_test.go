package passes_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
	_ "github.com/kilnml/kiln/ops/all"
	"github.com/kilnml/kiln/passes"
)

// graph builds a small test model (opset 17 unless given).
type graph struct {
	m *ir.Model
}

func newGraph(opset int64) *graph {
	return &graph{m: &ir.Model{IRVersion: 8, Opsets: []ir.OpsetImport{{Version: opset}}, Graph: &ir.Graph{Name: "g"}}}
}

func (g *graph) input(name string, dt ir.DType, dims ...any) *graph {
	var s ir.Shape
	for _, d := range dims {
		switch v := d.(type) {
		case int:
			s = append(s, ir.D(int64(v)))
		case string:
			s = append(s, ir.Sym(v))
		}
	}
	g.m.Graph.Inputs = append(g.m.Graph.Inputs, &ir.ValueInfo{Name: name, Type: ir.TensorType(dt, s)})
	return g
}

func (g *graph) output(names ...string) *graph {
	for _, n := range names {
		g.m.Graph.Outputs = append(g.m.Graph.Outputs, &ir.ValueInfo{Name: n})
	}
	return g
}

func (g *graph) init(name string, t *ir.Tensor) *graph {
	t.Name = name
	g.m.Graph.Initializers = append(g.m.Graph.Initializers, t)
	return g
}

// randInit adds a float32 initializer of random values in [lo, hi).
func (g *graph) randInit(name string, seed uint64, lo, hi float64, dims ...int64) *graph {
	return g.init(name, randTensor(seed, lo, hi, dims...))
}

func (g *graph) node(op, name string, ins, outs []string, attrs ...*ir.Attribute) *graph {
	g.m.Graph.Nodes = append(g.m.Graph.Nodes, &ir.Node{Name: name, OpType: op, Inputs: ins, Outputs: outs, Attrs: attrs})
	return g
}

func ints(name string, v ...int64) *ir.Attribute {
	return &ir.Attribute{Name: name, Type: ir.AttrInts, Ints: v}
}
func intAttr(name string, v int64) *ir.Attribute {
	return &ir.Attribute{Name: name, Type: ir.AttrInt, I: v}
}
func floatAttr(name string, v float32) *ir.Attribute {
	return &ir.Attribute{Name: name, Type: ir.AttrFloat, F: v}
}
func strAttr(name, v string) *ir.Attribute {
	return &ir.Attribute{Name: name, Type: ir.AttrString, S: []byte(v)}
}

func randTensor(seed uint64, lo, hi float64, dims ...int64) *ir.Tensor {
	rng := rand.New(rand.NewPCG(seed, 7))
	t := ir.NewTensor(ir.Float32, dims)
	for i := range t.Len() {
		t.SetFloat64At(i, lo+(hi-lo)*rng.Float64())
	}
	return t
}

// randomInputs makes inputs for every real graph input (symbolic dims = sym).
func randomInputs(m *ir.Model, sym int64, seed uint64) map[string]*ir.Tensor {
	in := map[string]*ir.Tensor{}
	for k, v := range m.Graph.RealInputs() {
		var dims []int64
		for _, d := range v.Type.Shape {
			if d.Known() {
				dims = append(dims, d.Value)
			} else {
				dims = append(dims, sym)
			}
		}
		in[v.Name] = randTensor(seed+uint64(k), -2, 2, dims...)
		if v.Type.DType != ir.Float32 {
			t := ir.NewTensor(v.Type.DType, dims)
			for i := range t.Len() {
				t.SetFloat64At(i, in[v.Name].Float64At(i))
			}
			in[v.Name] = t
		}
	}
	return in
}

// optimized runs one pass (or Optimize when pass is nil) on a clone and
// checks that the graph verifies and computes what the original did.
func optimized(t *testing.T, m *ir.Model, pass func(*ir.Model, passes.Options) (int, error), inputs map[string]*ir.Tensor) (*ir.Model, []string, int) {
	t.Helper()
	c := m.Clone()
	var log []string
	opt := passes.Options{Log: func(f string, a ...any) { log = append(log, fmt.Sprintf(f, a...)) }}
	n := 0
	var err error
	if pass == nil {
		err = passes.Optimize(c, opt)
	} else {
		n, err = pass(c, opt)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Verify(); err != nil {
		t.Fatalf("rewritten graph does not verify: %v", err)
	}
	sameOutputs(t, m, c, inputs, 1e-5)
	return c, log, n
}

// sameOutputs runs both models and compares every graph output of a.
func sameOutputs(t *testing.T, a, b *ir.Model, inputs map[string]*ir.Tensor, rtol float64) {
	t.Helper()
	want, err := ops.Run(a, inputs)
	if err != nil {
		t.Fatalf("original: %v", err)
	}
	got, err := ops.Run(b, inputs)
	if err != nil {
		t.Fatalf("rewritten: %v", err)
	}
	for name, w := range want {
		gt := got[name]
		if gt == nil {
			t.Errorf("output %q missing after the rewrite", name)
			continue
		}
		if err := closeTo(gt, w, rtol); err != nil {
			t.Errorf("output %q: %v", name, err)
		}
	}
}

// closeTo: same dtype and dims; |g-w| <= rtol·max(|w|, scale) where scale
// is the output's largest magnitude (so cancellation near 0 is not held to
// a relative bound).
func closeTo(g, w *ir.Tensor, rtol float64) error {
	if g.DType != w.DType || fmt.Sprint(g.Dims) != fmt.Sprint(w.Dims) {
		return fmt.Errorf("got %s%v, want %s%v", g.DType, g.Dims, w.DType, w.Dims)
	}
	scale := 0.0
	for i := range w.Len() {
		scale = math.Max(scale, math.Abs(w.Float64At(i)))
	}
	for i := range w.Len() {
		gv, wv := g.Float64At(i), w.Float64At(i)
		if math.Abs(gv-wv) > rtol*math.Max(math.Abs(wv), scale*1e-2)+1e-30 {
			return fmt.Errorf("element %d: %g, want %g", i, gv, wv)
		}
	}
	return nil
}

// ops of the graph, in order, "Domain.Op" for non-default domains.
func opTypes(m *ir.Model) string {
	var s []string
	for _, n := range m.Graph.Nodes {
		op := n.OpType
		if n.Domain != "" {
			op = n.Domain + "." + op
		}
		s = append(s, op)
	}
	return strings.Join(s, " ")
}

func findNode(m *ir.Model, op string) *ir.Node {
	for _, n := range m.Graph.Nodes {
		if n.OpType == op || n.Domain+"."+n.OpType == op {
			return n
		}
	}
	return nil
}

func attrStrings(n *ir.Node, name string) string {
	a := n.Attr(name)
	if a == nil {
		return ""
	}
	var s []string
	for _, b := range a.Strings {
		s = append(s, string(b))
	}
	return strings.Join(s, ",")
}
