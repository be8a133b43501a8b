package passes_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/passes"
)

// randomConvNet builds a random chain of the patterns the passes rewrite
// (convs, BatchNormalization, bias Adds, activations, residual Adds, no-ops)
// over a [n,4,5,5] tensor, sometimes exposing intermediate values as graph
// outputs or reading them twice.
func randomConvNet(seed uint64) *graph {
	rng := rand.New(rand.NewPCG(seed, 11))
	g := newGraph(17).input("x", ir.Float32, "n", 4, 5, 5)
	cur, k := "x", 0
	var earlier []string
	fresh := func(p string) string { k++; return fmt.Sprintf("%s%d", p, k) }
	for range 4 + rng.IntN(8) {
		out := fresh("v")
		name := fresh("node")
		switch rng.IntN(10) {
		case 0, 1:
			w := fresh("W")
			group := int64(1 + rng.IntN(2))
			g.randInit(w, seed+uint64(k), -0.5, 0.5, 4, 4/group, 3, 3)
			ins := []string{cur, w}
			if rng.IntN(2) == 0 {
				b := fresh("B")
				g.randInit(b, seed+uint64(k)+1, -1, 1, 4)
				ins = append(ins, b)
			}
			g.node("Conv", name, ins, []string{out}, ints("pads", 1, 1, 1, 1), intAttr("group", group))
		case 2:
			g.node("BatchNormalization", name, append([]string{cur}, g.bn(fresh("bn"), 4, seed+uint64(k))...), []string{out})
		case 3:
			b := fresh("bias")
			dims := [][]int64{{4, 1, 1}, {1, 4, 1, 1}, {1}}[rng.IntN(3)]
			g.randInit(b, seed+uint64(k), -1, 1, dims...)
			ins := []string{cur, b}
			if rng.IntN(2) == 0 {
				ins[0], ins[1] = b, cur
			}
			g.node("Add", name, ins, []string{out})
		case 4, 5:
			acts := []struct {
				op    string
				attrs []*ir.Attribute
			}{{"Relu", nil}, {"Sigmoid", nil}, {"Tanh", nil}, {"HardSwish", nil},
				{"LeakyRelu", []*ir.Attribute{floatAttr("alpha", 0.1)}},
				{"HardSigmoid", []*ir.Attribute{floatAttr("alpha", 0.25)}}}
			if rng.IntN(4) == 0 {
				lo, hi := fresh("lo"), fresh("hi")
				g.init(lo, ir.ScalarFloat32(0)).init(hi, ir.ScalarFloat32(1.5))
				g.node("Clip", name, []string{cur, lo, hi}, []string{out})
				break
			}
			a := acts[rng.IntN(len(acts))]
			g.node(a.op, name, []string{cur}, []string{out}, a.attrs...)
		case 6:
			if len(earlier) == 0 {
				g.node("Identity", name, []string{cur}, []string{out})
				break
			}
			g.node([]string{"Add", "Sum"}[rng.IntN(2)], name, []string{earlier[rng.IntN(len(earlier))], cur}, []string{out})
		case 7:
			g.node([]string{"Identity", "Dropout"}[rng.IntN(2)], name, []string{cur}, []string{out})
		case 8:
			s := fresh("shape")
			g.init(s, ir.FromInt64s(ir.Int64, []int64{4}, []int64{0, 4, 5, -1}))
			g.node("Reshape", name, []string{cur, s}, []string{out})
		case 9:
			g.output(cur)
			continue
		}
		earlier = append(earlier, cur)
		cur = out
	}
	g.output(cur)
	seen := map[string]bool{}
	outs := g.m.Graph.Outputs[:0]
	for _, o := range g.m.Graph.Outputs {
		if !seen[o.Name] && o.Name != "x" {
			seen[o.Name] = true
			outs = append(outs, o)
		}
	}
	g.m.Graph.Outputs = outs
	return g
}

// Optimize on random conv nets: every graph output survives with the same
// values, and the result verifies.
func TestOptimizeRandomConvNets(t *testing.T) {
	n := 300
	if testing.Short() {
		n = 60
	}
	fused := 0
	for seed := range uint64(n) {
		g := randomConvNet(seed)
		if len(g.m.Graph.Outputs) == 0 {
			continue
		}
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			c := g.m.Clone()
			if err := passes.Optimize(c, passes.Options{}); err != nil {
				t.Fatal(err)
			}
			// Folding a bias or a BatchNormalization removes a float32
			// rounding of the pre-add value, which may be much larger than
			// the result after cancellation: a bug is off by far more.
			sameOutputs(t, g.m, c, randomInputs(g.m, 2, seed), 1e-4)
			fused += len(fusedCounts(c))
			if t.Failed() {
				t.Logf("original: %s\noptimized: %s", opTypes(g.m), opTypes(c))
			}
		})
	}
	if fused == 0 {
		t.Error("no random net was fused at all")
	}
}
