package passes_test

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
	"github.com/kilnml/kiln/ops/kiln"
	"github.com/kilnml/kiln/passes"
)

var pool2x2 = []*ir.Attribute{ints("kernel_shape", 2, 2), ints("strides", 2, 2)}

// convPoolGraph: x[n,3,9,11] → Conv 3×3 (→ Relu) → MaxPool(attrs) → y; the
// conv output is 7×9, so the pool drops a row and a column (floor).
func convPoolGraph(relu bool, poolAttrs ...*ir.Attribute) *graph {
	g := newGraph(17).input("x", ir.Float32, "n", 3, 9, 11).output("y")
	g.randInit("W", 1, -1, 1, 4, 3, 3, 3).randInit("B", 2, -1, 1, 4)
	g.node("Conv", "conv", []string{"x", "W", "B"}, []string{"c"})
	in := "c"
	if relu {
		g.node("Relu", "relu", []string{"c"}, []string{"r"})
		in = "r"
	}
	g.node("MaxPool", "pool", []string{in}, []string{"y"}, poolAttrs...)
	return g
}

func TestFusePools(t *testing.T) {
	for _, tc := range []struct {
		name  string
		relu  bool
		attrs []*ir.Attribute
	}{
		{"relu", true, pool2x2},
		{"plain", false, pool2x2},
		{"explicit defaults", true, append([]*ir.Attribute{ints("pads", 0, 0, 0, 0), ints("dilations", 1, 1), intAttr("ceil_mode", 0),
			intAttr("storage_order", 0), strAttr("auto_pad", "NOTSET")}, pool2x2...)},
		{"valid", true, append([]*ir.Attribute{strAttr("auto_pad", "VALID")}, pool2x2...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := convPoolGraph(tc.relu, tc.attrs...)
			in := randomInputs(g.m, 2, 5)
			fusedLayers, _, _ := optimized(t, g.m, nil, in)
			c, log, n := optimized(t, fusedLayers, passes.FusePools, in)
			conv := c.Graph.Nodes[0]
			if n != 1 || len(c.Graph.Nodes) != 1 || opTypes(c) != "kiln.Conv" || conv.Outputs[0] != "y" {
				t.Fatalf("%d fusions: %s %+v", n, opTypes(c), conv)
			}
			if pool, err := kiln.PoolOf(conv); !pool || err != nil {
				t.Fatalf("pool attribute: %v %v", pool, err)
			}
			want := "Fusing conv with pool"
			if tc.relu {
				want = "Fusing conv + relu with pool"
			}
			if len(log) != 1 || log[0] != want {
				t.Errorf("log %q", log)
			}
			inf, err := ops.Infer(c, ops.InferOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if s := inf.Types["y"].Shape; len(s) != 4 || s[2].Value != 3 || s[3].Value != 4 {
				t.Errorf("inferred output %v, want [n 4 3 4]", s)
			}
		})
	}
}

// Pools that are not exactly 2×2/2 unpadded floor-mode stay separate, as
// do pools of a conv output that has other readers or is a graph output.
func TestFusePoolsRefuses(t *testing.T) {
	cases := map[string]*graph{
		"stride 1":    convPoolGraph(true, ints("kernel_shape", 2, 2)),
		"3x3":         convPoolGraph(true, ints("kernel_shape", 3, 3), ints("strides", 2, 2)),
		"pads":        convPoolGraph(true, append([]*ir.Attribute{ints("pads", 0, 0, 1, 1)}, pool2x2...)...),
		"ceil":        convPoolGraph(true, append([]*ir.Attribute{intAttr("ceil_mode", 1)}, pool2x2...)...),
		"dilations":   convPoolGraph(true, append([]*ir.Attribute{ints("dilations", 2, 2)}, pool2x2...)...),
		"same":        convPoolGraph(true, append([]*ir.Attribute{strAttr("auto_pad", "SAME_UPPER")}, pool2x2...)...),
		"storage":     convPoolGraph(true, append([]*ir.Attribute{intAttr("storage_order", 1)}, pool2x2...)...),
		"no strides":  convPoolGraph(true, ints("kernel_shape", 2, 2), ints("strides", 2, 2), ints("strides", 2, 2)),
		"two readers": convPoolGraph(true, pool2x2...),
		"graph out":   convPoolGraph(true, pool2x2...),
		"indices":     convPoolGraph(true, pool2x2...),
	}
	cases["no strides"].m.Graph.Nodes[2].Attrs = []*ir.Attribute{ints("kernel_shape", 2, 2)}
	g := cases["two readers"]
	g.node("Neg", "neg", []string{"r"}, []string{"z"}).output("z")
	cases["graph out"].output("r")
	ix := cases["indices"]
	ix.m.Graph.Nodes[2].Outputs = []string{"y", "idx"}
	ix.output("idx")
	for name, g := range cases {
		t.Run(name, func(t *testing.T) {
			in := randomInputs(g.m, 2, 6)
			fusedLayers, _, _ := optimized(t, g.m, nil, in)
			c, _, n := optimized(t, fusedLayers, passes.FusePools, in)
			if n != 0 {
				t.Fatalf("fused: %s", opTypes(c))
			}
		})
	}
}

// A quantized conv writing int8 codes fuses with the MaxPool over them;
// the fused reference equals the unfused graph bit for bit.
func TestFusePoolsQConv(t *testing.T) {
	for _, dt := range []ir.DType{ir.Int8, ir.Uint8} {
		g := newGraph(17).input("x", dt, 2, 3, 10, 9).output("y")
		g.m.Opsets = append(g.m.Opsets, ir.OpsetImport{Domain: kiln.Domain, Version: 1})
		r := rand.New(rand.NewPCG(9, 10))
		w := ir.NewTensor(ir.Int8, []int64{5, 3, 3, 3})
		for i := range w.I8() {
			w.I8()[i] = int8(r.IntN(255) - 127)
		}
		g.init("W", w)
		attrs := []*ir.Attribute{floatAttr("x_scale", 0.02), {Name: "w_scales", Type: ir.AttrFloats, Floats: []float32{0.01, 0.02, 0.015, 0.01, 0.03}},
			floatAttr("y_scale", 0.05), strAttr("activation", "Relu")}
		if dt == ir.Uint8 {
			attrs = append(attrs, intAttr("x_zero", 128), intAttr("y_zero", 3))
		}
		g.m.Graph.Nodes = append(g.m.Graph.Nodes, &ir.Node{Name: "qconv", Domain: kiln.Domain, OpType: "QConv",
			Inputs: []string{"x", "W"}, Outputs: []string{"c"}, Attrs: attrs})
		g.node("MaxPool", "pool", []string{"c"}, []string{"y"}, pool2x2...)
		x := ir.NewTensor(dt, []int64{2, 3, 10, 9})
		for i := range x.Data {
			x.Data[i] = byte(r.IntN(256))
		}
		in := map[string]*ir.Tensor{"x": x}
		c := g.m.Clone()
		n, err := passes.FusePools(c, passes.Options{})
		if err != nil || n != 1 || opTypes(c) != "kiln.QConv" {
			t.Fatalf("%s: %d fusions, %v: %s", dt, n, err, opTypes(c))
		}
		want, err := ops.Run(g.m, in)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ops.Run(c, in)
		if err != nil {
			t.Fatal(err)
		}
		if got["y"].DType != dt || !bytes.Equal(got["y"].Data, want["y"].Data) {
			t.Fatalf("%s: fused %v differs from unfused %v", dt, got["y"].Dims, want["y"].Dims)
		}
	}
}
