package layerdebug

import (
	"bytes"
	"io"
	"math/rand"
	"strings"
	"testing"

	"github.com/kilnml/kiln/builder"
	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
)

// batchList yields fixed batches.
type batchList []map[string]*ir.Tensor

func (b *batchList) Next() (map[string]*ir.Tensor, error) {
	if len(*b) == 0 {
		return nil, io.EOF
	}
	x := (*b)[0]
	*b = (*b)[1:]
	return x, nil
}

// poolHeadQDQ is the head of ONNX Runtime's quantized ResNet-50 in
// miniature: Q → DQ → Conv → Relu → Q → DQ → pool → Reshape → Q → DQ. The
// builder moves the last Q above the Reshape (builder/quantize.go's sink),
// so the engine quantizes the pool's float output, a tensor the reference
// graph never quantizes under that name. zero is the last Q's zero point.
func poolHeadQDQ(pool string, zero int64) *ir.Model {
	sc := func(name string, v float32) *ir.Tensor {
		t := ir.FromFloat32s(nil, []float32{v})
		t.Name = name
		return t
	}
	zp := func(name string, dt ir.DType, v int64) *ir.Tensor {
		t := ir.NewTensor(dt, nil)
		t.SetInt64At(0, v)
		t.Name = name
		return t
	}
	w := ir.NewTensor(ir.Int8, []int64{8, 4, 3, 3})
	for i := range w.I8() {
		w.I8()[i] = int8((i*37)%255 - 127)
	}
	w.Name = "wq"
	shape := ir.FromInt64s(ir.Int64, []int64{2}, []int64{1, 8})
	shape.Name = "shape"
	node := func(name, op string, in []string, out string) *ir.Node {
		return &ir.Node{Name: name, OpType: op, Inputs: in, Outputs: []string{out}}
	}
	pn := node("pool", pool, []string{"dr"}, "p")
	if pool == "AveragePool" {
		pn.Attrs = []*ir.Attribute{{Name: "kernel_shape", Type: ir.AttrInts, Ints: []int64{6, 6}}}
	}
	nodes := []*ir.Node{
		node("qx", "QuantizeLinear", []string{"x", "sx", "zx"}, "x_q"),
		node("dqx", "DequantizeLinear", []string{"x_q", "sx", "zx"}, "dx"),
		node("dqw", "DequantizeLinear", []string{"wq", "ws", "wz"}, "w"),
		{Name: "conv", OpType: "Conv", Inputs: []string{"dx", "w"}, Outputs: []string{"c"},
			Attrs: []*ir.Attribute{{Name: "pads", Type: ir.AttrInts, Ints: []int64{1, 1, 1, 1}}}},
		node("relu", "Relu", []string{"c"}, "r"),
		node("qr", "QuantizeLinear", []string{"r", "sr", "zr"}, "r_q"),
		node("dqr", "DequantizeLinear", []string{"r_q", "sr", "zr"}, "dr"),
		pn,
		node("reshape", "Reshape", []string{"p", "shape"}, "f"),
		node("qf", "QuantizeLinear", []string{"f", "sf", "zf"}, "f_q"),
		node("dqf", "DequantizeLinear", []string{"f_q", "sf", "zf"}, "y"),
	}
	inits := []*ir.Tensor{w, sc("ws", 0.011), zp("wz", ir.Int8, 0), sc("sx", 0.031), zp("zx", ir.Uint8, 128),
		sc("sr", 0.13), zp("zr", ir.Uint8, 0), sc("sf", 0.0123), zp("zf", ir.Uint8, zero), shape}
	return &ir.Model{IRVersion: 8, Opsets: []ir.OpsetImport{{Version: 13}}, Graph: &ir.Graph{Name: "poolhead",
		Inputs:       []*ir.ValueInfo{{Name: "x", Type: ir.TensorType(ir.Float32, ir.Shape{ir.D(1), ir.D(4), ir.D(6), ir.D(6)})}},
		Initializers: inits, Nodes: nodes, Outputs: []*ir.ValueInfo{{Name: "y"}}}}
}

func poolHeadBatches(n int) *batchList {
	rng := rand.New(rand.NewSource(3))
	var bs batchList
	for range n {
		x := ir.NewTensor(ir.Float32, []int64{1, 4, 6, 6})
		for i := range x.F32() {
			x.F32()[i] = float32(rng.NormFloat64())
		}
		bs = append(bs, map[string]*ir.Tensor{"x": x})
	}
	return &bs
}

// --per-layer on a Q/DQ model whose Q the builder moved above a Reshape,
// onto an average pool's output: a correct engine compares equal at every
// step (codes included, with zero points), the moved Q against the pool's
// output quantized by that Q's parameters; a wrong engine still differs.
func TestCompareMovedQuantize(t *testing.T) {
	for _, pool := range []string{"GlobalAveragePool", "AveragePool"} {
		for _, zero := range []int64{0, 100} {
			m := poolHeadQDQ(pool, zero)
			plan, _, err := builder.Build(m, nil, builder.Config{Deterministic: true})
			if err != nil {
				t.Fatal(err)
			}
			moved := -1
			for si, s := range plan.Steps {
				if strings.HasPrefix(s.Name, "qf__kq") {
					moved = si
				}
			}
			if moved < 0 || plan.Values[plan.Steps[moved].Inputs[0]].Name != "p" {
				t.Fatalf("%s: the builder did not move qf onto the pool's output (the case this test is about)", pool)
			}
			res := compareOn(t, m, plan)
			if len(res.Skipped) != 0 {
				t.Errorf("%s zero %d: skipped %q", pool, zero, res.Skipped)
			}
			found := false
			for _, e := range res.Tensors {
				if e.Acc.N == 0 || e.Acc.MaxAbs != 0 {
					t.Errorf("%s zero %d: %s (%s) vs %s: %d values, max |err| %g, want 0", pool, zero, e.Layer, e.Value, e.ShownTensor(), e.Acc.N, e.Acc.MaxAbs)
				}
				if e.Step == moved {
					found = e.Tensor == "p" && e.QuantizedBy == "qf" && e.ShownTensor() == "qf(p)"
				}
			}
			if !found || len(res.Tensors) != len(plan.Steps) {
				t.Errorf("%s zero %d: %d of %d steps compared, moved Q as qf(p): %v", pool, zero, len(res.Tensors), len(plan.Steps), found)
			}

			// A wrong engine: the moved Q with another scale, or the pool's
			// input dequantized with another scale.
			for _, bad := range []struct{ step, from, to string }{
				{"qf__kq", `"scale":0.0123`, `"scale":0.0125`},
				{"dqr", `"scale":0.13`, `"scale":0.14`},
			} {
				wrong := *plan
				wrong.Steps = append([]engine.Step(nil), plan.Steps...)
				hit := -1
				for si := range wrong.Steps {
					s := &wrong.Steps[si]
					if strings.HasPrefix(s.Name, bad.step) && bytes.Contains(s.Params, []byte(bad.from)) {
						s.Params = bytes.Replace(s.Params, []byte(bad.from), []byte(bad.to), 1)
						hit = si
					}
				}
				if hit < 0 {
					t.Fatalf("no step %s with %s", bad.step, bad.from)
				}
				res := compareOn(t, m, &wrong)
				for _, e := range res.Tensors {
					if e.Step >= hit && e.Step <= moved && e.Acc.MaxAbs == 0 {
						t.Errorf("%s zero %d, %s %s: %s (%s) vs %s equal", pool, zero, bad.step, bad.to, e.Layer, e.Value, e.ShownTensor())
					}
				}
			}
		}
	}
}

func compareOn(t *testing.T, m *ir.Model, plan *engine.Plan) *PerLayer {
	t.Helper()
	eng, err := engine.NewEngine(plan)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Compare(m, eng, poolHeadBatches(3), 0)
	if err != nil {
		t.Fatal(err)
	}
	return res
}
