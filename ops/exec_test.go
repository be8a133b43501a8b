package ops

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/kilnml/kiln/ir"
)

// A private test domain keeps these tests independent of the op families.
const testDomain = "kiln.test"

func init() {
	Register(&Op{Type: "AddOne", Domain: testDomain, Run: func(c *Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
		if in[0].DType != ir.Float32 {
			return nil, c.Errorf("want float32, got %s", in[0].DType)
		}
		out := ir.NewTensor(ir.Float32, in[0].Dims)
		for i, v := range in[0].F32() {
			out.F32()[i] = v + float32(c.Float("delta", 1))
		}
		return []*ir.Tensor{out}, nil
	}, Infer: SameAsInput(0)})
	Register(&Op{Type: "Panics", Domain: testDomain, Run: func(c *Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
		var s []int
		_ = s[3]
		return nil, nil
	}, Infer: SameAsInput(0)})
}

func chain(ops ...string) *ir.Model {
	g := &ir.Graph{Name: "g"}
	g.Inputs = []*ir.ValueInfo{{Name: "x", Type: ir.TensorType(ir.Float32, ir.Shape{ir.Sym("batch"), ir.D(2)})}}
	prev := "x"
	for i, op := range ops {
		out := "v" + string(rune('0'+i))
		g.Nodes = append(g.Nodes, &ir.Node{Name: "n" + string(rune('0'+i)), OpType: op, Domain: testDomain,
			Inputs: []string{prev}, Outputs: []string{out}})
		prev = out
	}
	g.Outputs = []*ir.ValueInfo{{Name: prev}}
	return &ir.Model{IRVersion: 8, Opsets: []ir.OpsetImport{{Domain: "", Version: 17}, {Domain: testDomain, Version: 1}}, Graph: g}
}

func TestRunChain(t *testing.T) {
	m := chain("AddOne", "AddOne")
	m.Graph.Nodes[1].Attrs = []*ir.Attribute{{Name: "delta", Type: ir.AttrFloat, F: 0.5}}
	x := ir.FromFloat32s([]int64{3, 2}, []float32{0, 1, 2, 3, 4, 5})
	var seen []string
	s, err := NewSession(m)
	if err != nil {
		t.Fatal(err)
	}
	s.Observe = func(name string, _ *ir.Tensor) { seen = append(seen, name) }
	out, err := s.Run(map[string]*ir.Tensor{"x": x})
	if err != nil {
		t.Fatal(err)
	}
	got := out["v1"].F32()
	for i, v := range got {
		if v != float32(i)+1.5 {
			t.Fatalf("element %d = %v, want %v", i, v, float32(i)+1.5)
		}
	}
	if strings.Join(seen, ",") != "x,v0,v1" {
		t.Errorf("observed %v", seen)
	}
}

func TestRunConcurrent(t *testing.T) {
	s, err := NewSession(chain("AddOne", "AddOne", "AddOne"))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			x := ir.FromFloat32s([]int64{1, 2}, []float32{float32(g), 0})
			out, err := s.Run(map[string]*ir.Tensor{"x": x})
			if err != nil || out["v2"].F32()[0] != float32(g)+3 {
				t.Errorf("goroutine %d: %v %v", g, err, out)
			}
		}(g)
	}
	wg.Wait()
}

func TestBadInputs(t *testing.T) {
	s, err := NewSession(chain("AddOne"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		in   map[string]*ir.Tensor
		want string
	}{
		{map[string]*ir.Tensor{}, `input "x" is missing`},
		{map[string]*ir.Tensor{"x": ir.NewTensor(ir.Float64, []int64{1, 2})}, `input "x": got float64, the model wants float32`},
		{map[string]*ir.Tensor{"x": ir.NewTensor(ir.Float32, []int64{1, 3})}, `input "x": got shape [1 3]`},
		{map[string]*ir.Tensor{"x": ir.NewTensor(ir.Float32, []int64{2})}, `rank 1`},
		{map[string]*ir.Tensor{"x": ir.NewTensor(ir.Float32, []int64{1, 2}), "y": ir.NewTensor(ir.Float32, nil)}, `"y" is not an input`},
		{map[string]*ir.Tensor{"x": {Name: "x", DType: ir.Float32, Dims: []int64{1, 2}, Data: make([]byte, 4)}}, `needs 8 bytes, has 4`},
	}
	for _, c := range cases {
		_, err := s.Run(c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("got %v, want error containing %q", err, c.want)
		}
	}
}

func TestKernelPanicBecomesError(t *testing.T) {
	_, err := Run(chain("Panics"), map[string]*ir.Tensor{"x": ir.NewTensor(ir.Float32, []int64{1, 2})})
	if err == nil || !strings.Contains(err.Error(), `Panics node "n0": internal error`) {
		t.Fatalf("got %v", err)
	}
}

func TestUnsupportedOpsListed(t *testing.T) {
	m := chain("AddOne", "Frobnicate", "AddOne", "Frobnicate", "Twiddle")
	_, err := NewSession(m)
	var ue *UnsupportedOpsError
	if !errors.As(err, &ue) {
		t.Fatalf("got %v, want UnsupportedOpsError", err)
	}
	if len(ue.Ops) != 2 || ue.Ops[0].OpType != "Frobnicate" || len(ue.Ops[0].Nodes) != 2 || ue.Ops[1].OpType != "Twiddle" {
		t.Fatalf("got %+v", ue.Ops)
	}
	if !strings.Contains(err.Error(), "n1, n3") {
		t.Errorf("message does not name the nodes: %v", err)
	}
}

func TestStructuralErrors(t *testing.T) {
	cyc := chain("AddOne", "AddOne")
	cyc.Graph.Nodes[0].Inputs = []string{"v1"} // v0 <- v1 <- v0
	dangling := chain("AddOne")
	dangling.Graph.Nodes[0].Inputs = []string{"nowhere"}
	dup := chain("AddOne", "AddOne")
	dup.Graph.Nodes[1].Outputs = []string{"v0"}
	noOut := chain("AddOne")
	noOut.Graph.Outputs = []*ir.ValueInfo{{Name: "ghost"}}
	for _, c := range []struct {
		m    *ir.Model
		want []string
	}{
		{cyc, []string{"cycle", "n0", "n1"}},
		{dangling, []string{`input 0 "nowhere" is not a graph input`}},
		{dup, []string{`writes "v0", which is already defined`}},
		{noOut, []string{`output "ghost" is produced by no node`}},
	} {
		_, err := NewSession(c.m)
		for _, w := range c.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("got %v, want %q", err, w)
			}
		}
	}
}

func TestOutOfOrderNodesAreSorted(t *testing.T) {
	m := chain("AddOne", "AddOne")
	n := m.Graph.Nodes
	n[0], n[1] = n[1], n[0]
	out, err := Run(m, map[string]*ir.Tensor{"x": ir.NewTensor(ir.Float32, []int64{1, 2})})
	if err != nil || out["v1"].F32()[0] != 2 {
		t.Fatalf("%v %v", err, out)
	}
}

func TestInferSymbolic(t *testing.T) {
	inf, err := Infer(chain("AddOne", "AddOne"), InferOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := inf.Types["v1"].String(); got != "float32[batch,2]" {
		t.Errorf("v1: %s", got)
	}
	inf, err = Infer(chain("AddOne"), InferOptions{InputShapes: map[string]ir.Shape{"x": {ir.D(7), ir.D(2)}}})
	if err != nil || inf.Types["v0"].String() != "float32[7,2]" {
		t.Errorf("%v %v", err, inf.Types["v0"])
	}
}

func TestBroadcastShapes(t *testing.T) {
	got, err := BroadcastShapes(ir.Shape{ir.Sym("batch"), ir.D(1), ir.D(4)}, ir.Shape{ir.D(3), ir.D(1)})
	if err != nil || got.String() != "[batch,3,4]" {
		t.Errorf("%v %v", got, err)
	}
	if _, err := BroadcastShapes(ir.Shape{ir.D(2)}, ir.Shape{ir.D(3)}); err == nil {
		t.Error("2 vs 3 broadcast")
	}
	d, err := BroadcastDims([]int64{2, 1, 3}, []int64{4, 1})
	if err != nil || len(d) != 3 || d[1] != 4 {
		t.Errorf("%v %v", d, err)
	}
	b := NewBroadcast([]int64{2, 3}, []int64{3}, []int64{2, 1})
	if b.Index(0, 4) != 1 || b.Index(1, 4) != 1 {
		t.Errorf("index: %d %d", b.Index(0, 4), b.Index(1, 4))
	}
}
