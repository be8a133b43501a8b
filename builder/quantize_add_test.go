package builder

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

// qaddNet is ONNX Runtime's quantized residual block in miniature: x is
// quantized, a conv reads DQ(x) and its output goes through Q → DQ, and the
// residual add reads that and DQ(x) again (so the input's DQ has a second
// reader, the conv, which reads codes after the conversion); the sum goes
// through [Relu] → Q → DQ to the output.
type qaddNet struct {
	op         string   // Add or Sum
	code, out  ir.DType // codes of x and the conv; codes of the sum
	zero, outZ int64
	relu       bool
	resDims    []int64 // the residual's shape when it is not x's (a broadcast)
	sumOut     bool    // the sum is also a graph output
}

func (q qaddNet) model() *ir.Model {
	zp := func(name string, dt ir.DType, v int64) *ir.Tensor {
		t := ir.NewTensor(dt, nil)
		t.SetInt64At(0, v)
		t.Name = name
		return t
	}
	sc := func(name string, v float32) *ir.Tensor {
		t := ir.FromFloat32s(nil, []float32{v})
		t.Name = name
		return t
	}
	w := ir.NewTensor(ir.Int8, []int64{4, 4, 3, 3})
	for i := range w.I8() {
		w.I8()[i] = int8((i*37)%255 - 127)
	}
	w.Name = "wq"
	inits := []*ir.Tensor{w, sc("ws", 0.011), zp("wz", ir.Int8, 0),
		sc("sx", 0.031), zp("zx", q.code, q.zero), sc("sc", 0.13), zp("zc", q.code, q.zero),
		sc("sy", 0.07), zp("zy", q.out, q.outZ)}
	node := func(name, op string, in []string, out string) *ir.Node {
		return &ir.Node{Name: name, OpType: op, Inputs: in, Outputs: []string{out}}
	}
	res := "dx"
	nodes := []*ir.Node{
		node("qx", "QuantizeLinear", []string{"x", "sx", "zx"}, "x_q"),
		node("dqx", "DequantizeLinear", []string{"x_q", "sx", "zx"}, "dx"),
		node("dqw", "DequantizeLinear", []string{"wq", "ws", "wz"}, "w"),
		{Name: "conv", OpType: "Conv", Inputs: []string{"dx", "w"}, Outputs: []string{"c"},
			Attrs: []*ir.Attribute{{Name: "pads", Type: ir.AttrInts, Ints: []int64{1, 1, 1, 1}}}},
		node("qc", "QuantizeLinear", []string{"c", "sc", "zc"}, "c_q"),
		node("dqc", "DequantizeLinear", []string{"c_q", "sc", "zc"}, "dc"),
	}
	graphIn := []*ir.ValueInfo{{Name: "x", Type: ir.TensorType(ir.Float32, ir.Shape{ir.D(1), ir.D(4), ir.D(5), ir.D(5)})}}
	if q.resDims != nil {
		var sh ir.Shape
		for _, d := range q.resDims {
			sh = append(sh, ir.D(d))
		}
		graphIn = append(graphIn, &ir.ValueInfo{Name: "r", Type: ir.TensorType(ir.Float32, sh)})
		nodes = append(nodes, node("qr", "QuantizeLinear", []string{"r", "sx", "zx"}, "r_q"),
			node("dqr", "DequantizeLinear", []string{"r_q", "sx", "zx"}, "dr"))
		res = "dr"
	}
	sum := "s"
	nodes = append(nodes, node("add", q.op, []string{"dc", res}, "s"))
	if q.relu {
		nodes = append(nodes, node("relu", "Relu", []string{"s"}, "h"))
		sum = "h"
	}
	nodes = append(nodes, node("qy", "QuantizeLinear", []string{sum, "sy", "zy"}, "y_q"),
		node("dqy", "DequantizeLinear", []string{"y_q", "sy", "zy"}, "y"))
	outs := []*ir.ValueInfo{{Name: "y"}}
	if q.sumOut {
		outs = append(outs, &ir.ValueInfo{Name: "s"})
	}
	return &ir.Model{IRVersion: 8, Opsets: []ir.OpsetImport{{Version: 13}}, Graph: &ir.Graph{
		Name: "qadd", Inputs: graphIn, Initializers: inits, Nodes: nodes, Outputs: outs}}
}

// The builder fuses DQ + DQ → Add/Sum → [Relu] → Q into kiln.QAdd where the
// inputs' shapes are equal and the sum feeds only the Q (or the Relu), for
// every code type combination, zero points at both ends and with the Relu
// before or (int8, moved by sink) after the Q; the engine's output equals
// the Q/DQ model's on the reference executor bit for bit, with inputs that
// reach every code (saturation at both ends).
func TestFuseQuantizedAdd(t *testing.T) {
	cases := []struct {
		net  qaddNet
		fuse bool
	}{
		{qaddNet{op: "Add", code: ir.Uint8, out: ir.Uint8, zero: 128, outZ: 0, relu: true}, true}, // the Relu dropped (uint8, zero 0)
		{qaddNet{op: "Sum", code: ir.Uint8, out: ir.Uint8, zero: 0, outZ: 255}, true},
		{qaddNet{op: "Add", code: ir.Uint8, out: ir.Uint8, zero: 255, outZ: 17, relu: true}, true}, // Relu before Q, fused
		{qaddNet{op: "Add", code: ir.Int8, out: ir.Int8, zero: -128, outZ: 0, relu: true}, true},   // Q moved above the Relu
		{qaddNet{op: "Sum", code: ir.Int8, out: ir.Int8, zero: 127, outZ: -128}, true},
		{qaddNet{op: "Add", code: ir.Int8, out: ir.Uint8, zero: 5, outZ: 3, relu: true}, true},
		{qaddNet{op: "Add", code: ir.Uint8, out: ir.Uint8, resDims: []int64{1, 4, 1, 1}}, false}, // broadcast
		{qaddNet{op: "Add", code: ir.Uint8, out: ir.Uint8, sumOut: true}, false},                 // the sum is read elsewhere
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%+v", tc.net), func(t *testing.T) {
			m := tc.net.model()
			plan, rep, err := Build(m, nil, Config{})
			if err != nil {
				t.Fatal(err)
			}
			fused, mid := 0, 0
			for _, s := range plan.Steps {
				if slices.Contains(s.Members, "add") && slices.Contains(s.OpTypes, "QuantizeLinear") {
					fused++
					if slices.Contains(s.Members, "conv") { // the QAdd folded into the conv (m_scale)
						mid++
					}
				}
			}
			// a conv writes its input's code type, so only then can it take the add
			if wantMid := fused * b2i(tc.net.code == tc.net.out); mid != wantMid {
				t.Errorf("%d of %d fused adds folded into the conv, want %d", mid, fused, wantMid)
			}
			if (fused == 1) != tc.fuse || fused > 1 {
				t.Fatalf("%d fused adds, want fusion %v (warnings %v)", fused, tc.fuse, rep.Warnings)
			}
			for _, s := range plan.Steps {
				if tc.fuse && slices.Contains(s.OpTypes, "Relu") && !slices.Contains(s.Members, "add") {
					t.Errorf("step %s: the Relu stayed a layer of its own", s.Name)
				}
			}
			in := map[string]*ir.Tensor{"x": rampInput([]int64{1, 4, 5, 5}, 0)}
			if tc.net.resDims != nil {
				in["r"] = rampInput(tc.net.resDims, 1)
			}
			want, err := ops.Run(m, in)
			if err != nil {
				t.Fatal(err)
			}
			e, err := engine.NewEngine(plan)
			if err != nil {
				t.Fatal(err)
			}
			got, err := e.NewContext().Run(in)
			if err != nil {
				t.Fatal(err)
			}
			for name, w := range want {
				g := got[name]
				for i := range w.F32() {
					if math.Float32bits(w.F32()[i]) != math.Float32bits(g.F32()[i]) {
						t.Fatalf("%s[%d] = %v, want %v (the Q/DQ model)", name, i, g.F32()[i], w.F32()[i])
					}
				}
			}
		})
	}
}

// rampInput spans values past every code's range (both saturations).
func rampInput(dims []int64, phase int) *ir.Tensor {
	t := ir.NewTensor(ir.Float32, dims)
	n := len(t.F32())
	for i := range t.F32() {
		t.F32()[i] = float32(((i*7+phase*3)%n)-n/2) * 12 / float32(n)
	}
	return t
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
