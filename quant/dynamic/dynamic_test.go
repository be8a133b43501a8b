package dynamic

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/kilnml/kiln/internal/ortrun"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/onnx"
	"github.com/kilnml/kiln/ops"
	_ "github.com/kilnml/kiln/ops/all"
)

func randT(name string, dims []int64, seed uint64, scale float64) *ir.Tensor {
	r := rand.New(rand.NewPCG(seed, 1))
	t := ir.NewTensor(ir.Float32, dims)
	for i := range t.F32() {
		t.F32()[i] = float32(r.NormFloat64() * scale)
	}
	t.Name = name
	return t
}

// x[N,16] → Gemm(transB, bias) → Relu → MatMul → y[N,5]
func mlp() *ir.Model {
	return &ir.Model{IRVersion: 8, Opsets: []ir.OpsetImport{{Version: 13}}, Graph: &ir.Graph{
		Name:   "mlp",
		Inputs: []*ir.ValueInfo{{Name: "x", Type: ir.TensorType(ir.Float32, ir.Shape{ir.Sym("N"), ir.D(16)})}},
		Initializers: []*ir.Tensor{randT("fc1.w", []int64{32, 16}, 1, 0.25), randT("fc1.b", []int64{32}, 2, 0.1),
			randT("fc2.w", []int64{32, 5}, 3, 0.2)},
		Nodes: []*ir.Node{
			{Name: "fc1", OpType: "Gemm", Inputs: []string{"x", "fc1.w", "fc1.b"}, Outputs: []string{"h"}, Attrs: []*ir.Attribute{{Name: "transB", Type: ir.AttrInt, I: 1}}},
			{Name: "relu", OpType: "Relu", Inputs: []string{"h"}, Outputs: []string{"r"}},
			{Name: "fc2", OpType: "MatMul", Inputs: []string{"r", "fc2.w"}, Outputs: []string{"y"}},
		},
		Outputs: []*ir.ValueInfo{{Name: "y", Type: ir.TensorType(ir.Float32, ir.Shape{ir.Sym("N"), ir.D(5)})}},
	}}
}

func maxRelErr(a, b []float32) float64 {
	mag, d := 0.0, 0.0
	for i := range a {
		mag = math.Max(mag, math.Abs(float64(a[i])))
		d = math.Max(d, math.Abs(float64(a[i]-b[i])))
	}
	return d / mag
}

// The dynamic graph has ONNX Runtime's form, stays close to FP32 (int8
// weights, per-batch uint8 activations), and ONNX Runtime computes what
// kiln's reference computes.
func TestQuantizeMLP(t *testing.T) {
	m := mlp()
	x := randT("x", []int64{6, 16}, 9, 1)
	want, err := ops.Run(m, map[string]*ir.Tensor{"x": x})
	if err != nil {
		t.Fatal(err)
	}
	for _, opt := range []Options{{}, {PerTensorWeights: true}} {
		q, rep, err := Quantize(m, opt)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Quantized) != 2 {
			t.Fatalf("quantized %v, skipped %v", rep.Quantized, rep.Skipped)
		}
		count := map[string]int{}
		for _, n := range q.Graph.Nodes {
			count[n.OpType]++
		}
		if count["DynamicQuantizeLinear"] != 2 || count["MatMulInteger"] != 2 || count["Gemm"]+count["MatMul"] != 0 {
			t.Fatalf("node counts %v", count)
		}
		for _, init := range q.Graph.Initializers {
			if init.Name == "fc1.w" || init.Name == "fc2.w" {
				t.Errorf("float weight %s left in the graph", init.Name)
			}
		}
		got, err := ops.Run(q, map[string]*ir.Tensor{"x": x})
		if err != nil {
			t.Fatal(err)
		}
		if e := maxRelErr(want["y"].F32(), got["y"].F32()); e > 0.03 || e == 0 {
			t.Errorf("%+v: max error vs FP32 %.4f of the output range", opt, e)
		}
		if d, why := ortrun.Dir(); d == "" {
			t.Log(why)
		} else {
			path := filepath.Join(t.TempDir(), "dyn.onnx")
			if err := onnx.Save(path, q); err != nil {
				t.Fatal(err)
			}
			o, _, err := ortrun.Run(path, []*ir.Tensor{x}, 1, 0)
			if err != nil {
				t.Fatal(err)
			}
			if e := maxRelErr(got["y"].F32(), o[0].F32()); e > 1e-5 {
				t.Errorf("%+v: ONNX Runtime differs from kiln by %.2g of the range", opt, e)
			}
		}
	}
}

// Per batch: a batch with a larger range gets a coarser scale, which a
// static quantization could not do.
func TestRangeIsPerBatch(t *testing.T) {
	m := mlp()
	q, _, err := Quantize(m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []float64{0.01, 100} {
		x := randT("x", []int64{3, 16}, 4, s)
		want, _ := ops.Run(m, map[string]*ir.Tensor{"x": x})
		got, err := ops.Run(q, map[string]*ir.Tensor{"x": x})
		if err != nil {
			t.Fatal(err)
		}
		if e := maxRelErr(want["y"].F32(), got["y"].F32()); e > 0.03 {
			t.Errorf("inputs of scale %g: error %.4f", s, e)
		}
	}
}

func TestRejects(t *testing.T) {
	m := mlp()
	m.Opsets[0].Version = 10
	if _, _, err := Quantize(m, Options{}); err == nil {
		t.Error("opset 10 accepted")
	}
	m = mlp()
	_, rep, err := Quantize(m, Options{Skip: map[string]bool{"fc2": true}})
	if err != nil || len(rep.Quantized) != 1 || len(rep.Skipped) != 1 {
		t.Errorf("skip: %v %+v", err, rep)
	}
}
