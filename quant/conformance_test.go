package quant

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/onnx"
)

const onnxNodeDir = "../../shared/onnx-node"

// conformanceCase loads one ONNX node test: its single node, inputs and outputs.
func conformanceCase(t *testing.T, dir string) (*ir.Node, []*ir.Tensor, []*ir.Tensor) {
	t.Helper()
	m, err := onnx.Load(filepath.Join(dir, "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Graph.Nodes) != 1 {
		t.Fatalf("%s: %d nodes, want 1", dir, len(m.Graph.Nodes))
	}
	read := func(prefix string, n int) []*ir.Tensor {
		var ts []*ir.Tensor
		for i := 0; i < n; i++ {
			tt, err := onnx.ReadTensorFile(filepath.Join(dir, "test_data_set_0", prefix+"_"+string(rune('0'+i))+".pb"))
			if err != nil {
				t.Fatal(err)
			}
			ts = append(ts, tt)
		}
		return ts
	}
	node := m.Graph.Nodes[0]
	return node, read("input", len(node.Inputs)), read("output", len(node.Outputs))
}

func qdqOf(t *testing.T, node *ir.Node, in []*ir.Tensor, dt ir.DType) *Params {
	t.Helper()
	axis, _ := node.AttrInt("axis", 1)
	block, _ := node.AttrInt("block_size", 0)
	sat, _ := node.AttrInt("saturate", 1)
	if od, _ := node.AttrInt("output_dtype", 0); od != 0 {
		dt = ir.DType(od)
	}
	q := QDQ{DType: dt, Scale: in[1], Axis: axis, BlockSize: block, Saturate: sat != 0, Rank: in[0].Rank()}
	if len(in) > 2 && node.Inputs[2] != "" {
		q.ZeroPoint = in[2]
	}
	p, err := FromQDQ(q)
	if err != nil {
		t.Fatalf("%s: %v", node.OpType, err)
	}
	return p
}

// sameCodes compares two quantized tensors element by element (sub-byte
// padding bits are not compared).
func sameCodes(t *testing.T, name string, got, want *ir.Tensor) {
	t.Helper()
	if got.DType != want.DType || !equalDims(got.Dims, want.Dims) {
		t.Fatalf("%s: got %s%v, want %s%v", name, got.DType, got.Dims, want.DType, want.Dims)
	}
	f, _ := formatOf(want.DType)
	for i := int64(0); i < want.Len(); i++ {
		if g, w := f.loadCode(got, i), f.loadCode(want, i); g != w {
			t.Errorf("%s: element %d is %#x, want %#x", name, i, g, w)
		}
	}
}

// TestONNXConformance runs the QuantizeLinear, DequantizeLinear and
// DynamicQuantizeLinear node tests of ../shared/onnx-node through quant,
// comparing bit for bit.
func TestONNXConformance(t *testing.T) {
	dirs, _ := filepath.Glob(filepath.Join(onnxNodeDir, "test_*quantizelinear*"))
	if len(dirs) == 0 {
		t.Skipf("no ONNX node tests in %s (../shared absent)", onnxNodeDir)
	}
	ran := 0
	for _, dir := range dirs {
		name := filepath.Base(dir)
		if strings.HasSuffix(name, "_expanded") {
			continue // the same data through a function body of other ops
		}
		if _, err := os.Stat(filepath.Join(dir, "test_data_set_0")); err != nil {
			continue
		}
		t.Run(name, func(t *testing.T) {
			node, in, out := conformanceCase(t, dir)
			switch node.OpType {
			case "QuantizeLinear":
				if in[0].DType != ir.Float32 {
					t.Skipf("x is %s: quant quantizes float32", in[0].DType)
				}
				dt := ir.Undefined
				if len(in) < 3 {
					dt = out[0].DType
				}
				p := qdqOf(t, node, in, dt)
				q, err := Quantize(in[0], p)
				if err != nil {
					t.Fatal(err)
				}
				sameCodes(t, name, q, out[0])
			case "DequantizeLinear":
				p := qdqOf(t, node, in, in[0].DType)
				y, err := Dequantize(in[0], p)
				if err != nil {
					t.Fatal(err)
				}
				if out[0].DType != ir.Float32 {
					t.Skipf("output is %s", out[0].DType)
				}
				for i, w := range out[0].F32() {
					if g := y.F32()[i]; math.Float32bits(g) != math.Float32bits(w) && !(g != g && w != w) {
						t.Errorf("element %d: %v, want %v", i, g, w)
					}
				}
			case "DynamicQuantizeLinear":
				x := in[0].F32()
				min, max, err := MinMax(x, in[0].Dims, PerTensor, 0)
				if err != nil {
					t.Fatal(err)
				}
				p, err := FromMinMax(ir.Uint8, min[0], max[0])
				if err != nil {
					t.Fatal(err)
				}
				if s := out[1].F32()[0]; p.Scale[0] != s || int64(p.Zero(0)) != out[2].Int64At(0) {
					t.Errorf("%s, want scale %v zero point %d", p, s, out[2].Int64At(0))
				}
				q, err := Quantize(in[0], p)
				if err != nil {
					t.Fatal(err)
				}
				sameCodes(t, name, q, out[0])
			default:
				t.Skipf("op %s", node.OpType)
			}
			ran++
		})
	}
	if ran < 20 {
		t.Errorf("only %d conformance cases ran", ran)
	}
}

// TestQDQTensorsRoundTrip exports parameters as ONNX tensors and reads them back.
func TestQDQTensorsRoundTrip(t *testing.T) {
	dims := []int64{2, 6, 4}
	for _, p := range []*Params{
		{DType: ir.Uint8, Scale: []float32{0.5}, ZeroPoint: []int32{3}, Axis: PerTensor},
		{DType: ir.Int8, Scale: []float32{1, 2, 3, 4, 5, 6}, Axis: 1},
		{DType: ir.Int4, Scale: make([]float32, 2*3*4), ZeroPoint: make([]int32, 24), Axis: 1, BlockSize: 2},
		{DType: ir.Float8E4M3FN, Scale: []float32{2}, Axis: PerTensor, Saturate: true},
	} {
		for i := range p.Scale {
			if p.Scale[i] == 0 {
				p.Scale[i] = float32(i+1) / 8
				p.ZeroPoint[i] = int32(i%15) - 7
			}
		}
		s, z, axis, block, err := p.QDQTensors(dims)
		if err != nil {
			t.Fatal(err)
		}
		back, err := FromQDQ(QDQ{Scale: s, ZeroPoint: z, Axis: axis, BlockSize: block, Saturate: p.Saturate, Rank: len(dims)})
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if back.String() != p.String() || back.Axis != p.Axis || back.BlockSize != p.BlockSize {
			t.Errorf("round trip %s → %s", p, back)
		}
		for i := range p.Scale {
			if back.Scale[i] != p.Scale[i] || back.Zero(i) != p.Zero(i) {
				t.Errorf("%s: group %d: %v/%d → %v/%d", p, i, p.Scale[i], p.Zero(i), back.Scale[i], back.Zero(i))
			}
		}
	}
	// ONNX's negative axes count from the end; a [1] scale is per-tensor.
	neg, err := FromQDQ(QDQ{Scale: ir.FromFloat32s([]int64{4}, []float32{1, 2, 3, 4}), Axis: -1, Rank: 3, Saturate: true})
	if err != nil || neg.Axis != 2 || neg.DType != ir.Uint8 {
		t.Errorf("axis -1 of rank 3: %v %v", neg, err)
	}
	one, err := FromQDQ(QDQ{Scale: ir.FromFloat32s([]int64{1}, []float32{0.5}), Axis: 1, Rank: 3})
	if err != nil || one.Axis != PerTensor {
		t.Errorf("[1] scale: %v %v", one, err)
	}
	half, err := FromQDQ(QDQ{Scale: ir.FromFloat64s(ir.Float16, nil, []float64{0.125}), ZeroPoint: ir.FromInt64s(ir.Int4, nil, []int64{-3})})
	if err != nil || half.Scale[0] != 0.125 || half.Zero(0) != -3 || half.DType != ir.Int4 {
		t.Errorf("float16 scale, int4 zero point: %v %v", half, err)
	}
	bad := []QDQ{
		{},
		{Scale: ir.FromInt64s(ir.Int32, nil, []int64{1})},
		{Scale: ir.FromFloat32s([]int64{2}, []float32{1, 1}), ZeroPoint: ir.FromInt64s(ir.Uint8, []int64{3}, []int64{1, 2, 3}), Rank: 2},
		{Scale: ir.FromFloat32s([]int64{2, 2}, []float32{1, 1, 1, 1}), Rank: 2},
		{Scale: ir.FromFloat32s([]int64{2}, []float32{1, 1}), Axis: 3, Rank: 2},
		{Scale: ir.FromFloat32s(nil, []float32{1}), ZeroPoint: ir.FromFloat64s(ir.Float8E4M3FN, nil, []float64{1})},
		{Scale: ir.FromFloat32s(nil, []float32{1}), DType: ir.Int8, ZeroPoint: ir.FromInt64s(ir.Uint8, nil, []int64{1})},
		{Scale: ir.FromFloat32s(nil, []float32{-1})},
	}
	for i, q := range bad {
		if _, err := FromQDQ(q); err == nil {
			t.Errorf("bad Q/DQ %d accepted", i)
		}
	}
}
