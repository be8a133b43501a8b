package passes_test

import (
	"testing"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/passes"
)

// bn adds BatchNormalization parameters for c channels.
func (g *graph) bn(prefix string, c int64, seed uint64) []string {
	g.randInit(prefix+"_scale", seed, 0.5, 1.5, c).randInit(prefix+"_b", seed+1, -1, 1, c)
	g.randInit(prefix+"_mean", seed+2, -1, 1, c).randInit(prefix+"_var", seed+3, 0.1, 2, c)
	return []string{prefix + "_scale", prefix + "_b", prefix + "_mean", prefix + "_var"}
}

func TestFoldBatchNormIntoConv(t *testing.T) {
	for _, tc := range []struct {
		name  string
		group int64
		bias  bool
	}{{"bias", 1, true}, {"nobias", 1, false}, {"grouped", 2, true}} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGraph(17).input("x", ir.Float32, "n", 4, 5, 5).output("y")
			g.randInit("W", 1, -1, 1, 6, 4/tc.group, 3, 3)
			ins := []string{"x", "W"}
			if tc.bias {
				g.randInit("B", 2, -1, 1, 6)
				ins = append(ins, "B")
			}
			g.node("Conv", "conv1", ins, []string{"c"}, intAttr("group", tc.group), ints("pads", 1, 1, 1, 1))
			g.node("BatchNormalization", "bn1", append([]string{"c"}, g.bn("bn", 6, 10)...), []string{"y"}, floatAttr("epsilon", 1e-3))
			var fusions []string
			c := g.m.Clone()
			n, err := passes.FoldBatchNorm(c, passes.Options{Fusions: &fusions})
			if err != nil || n != 1 {
				t.Fatalf("%d folds: %v", n, err)
			}
			sameOutputs(t, g.m, c, randomInputs(g.m, 2, 3), 1e-5)
			conv := findNode(c, "kiln.Conv")
			if opTypes(c) != "kiln.Conv" || conv.Name != "conv1 + bn1" || conv.Outputs[0] != "y" ||
				attrStrings(conv, "kiln_members") != "conv1,bn1" || attrStrings(conv, "kiln_member_ops") != "Conv,BatchNormalization" {
				t.Errorf("%s: %+v", opTypes(c), conv)
			}
			if c.Opset("kiln") != 1 {
				t.Errorf("kiln opset not imported: %v", c.Opsets)
			}
			if len(fusions) != 1 || fusions[0] != "Folding BatchNormalization bn1 into conv1" {
				t.Errorf("fusions %q", fusions)
			}
		})
	}
}

func TestFoldBatchNormIntoConvTranspose(t *testing.T) {
	g := newGraph(17).input("x", ir.Float32, 1, 4, 3, 3).output("y")
	g.randInit("W", 1, -1, 1, 4, 3, 2, 2) // C=4, M/g=3, g=2: M=6
	g.node("ConvTranspose", "deconv", []string{"x", "W"}, []string{"c"}, intAttr("group", 2), ints("strides", 2, 2))
	g.node("BatchNormalization", "bn", append([]string{"c"}, g.bn("bn", 6, 10)...), []string{"y"})
	c, _, n := optimized(t, g.m, passes.FoldBatchNorm, randomInputs(g.m, 1, 3))
	if n != 1 || opTypes(c) != "ConvTranspose" || c.Graph.Nodes[0].Name != "deconv + bn" {
		t.Errorf("%d: %s %q", n, opTypes(c), c.Graph.Nodes[0].Name)
	}
}

func TestFoldBatchNormIntoGemm(t *testing.T) {
	for _, transB := range []int64{0, 1} {
		g := newGraph(17).input("x", ir.Float32, "n", 5).output("y")
		if transB == 1 {
			g.randInit("W", 1, -1, 1, 4, 5)
		} else {
			g.randInit("W", 1, -1, 1, 5, 4)
		}
		g.randInit("C", 2, -1, 1, 1, 4)
		g.node("Gemm", "fc", []string{"x", "W", "C"}, []string{"c"}, intAttr("transB", transB), floatAttr("beta", 0.5), floatAttr("alpha", 2))
		g.node("BatchNormalization", "bn", append([]string{"c"}, g.bn("bn", 4, 10)...), []string{"y"})
		c, _, n := optimized(t, g.m, passes.FoldBatchNorm, randomInputs(g.m, 3, 3))
		if n != 1 || opTypes(c) != "kiln.Gemm" {
			t.Errorf("transB=%d: %d: %s", transB, n, opTypes(c))
		}
	}
}

// A conv output read elsewhere cannot change: no folding.
func TestFoldBatchNormNeedsSoleReader(t *testing.T) {
	g := newGraph(17).input("x", ir.Float32, 1, 2, 4, 4).output("y", "c")
	g.randInit("W", 1, -1, 1, 3, 2, 1, 1)
	g.node("Conv", "conv", []string{"x", "W"}, []string{"c"})
	g.node("BatchNormalization", "bn", append([]string{"c"}, g.bn("bn", 3, 10)...), []string{"y"})
	_, _, n := optimized(t, g.m, passes.FoldBatchNorm, randomInputs(g.m, 1, 3))
	if n != 0 {
		t.Errorf("%d folds", n)
	}
}
