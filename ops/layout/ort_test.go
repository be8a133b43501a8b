package layout

import (
	"fmt"
	"math"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/onnx"
	"github.com/kilnml/kiln/ops"
)

// ortCase is one single-node model run by both kiln and ONNX Runtime.
type ortCase struct {
	op     string
	opset  int64
	in     []*ir.Tensor
	outs   []ir.DType
	attrs  []*ir.Attribute
	approx bool // floats within 1e-6 relative (accumulating ops); else bit-exact
}

// TestAgainstORT compares the ops the ONNX node data does not cover (or
// covers thinly) with ONNX Runtime on random inputs. It needs a copy of
// shared/tools/ort after npm ci: set KILN_ORT to that folder.
func TestAgainstORT(t *testing.T) {
	dir := os.Getenv("KILN_ORT")
	if dir == "" {
		t.Skip("KILN_ORT not set (a copy of shared/tools/ort after npm ci)")
	}
	r := rand.New(rand.NewSource(5))
	rf := func(d ...int64) *ir.Tensor {
		x := iota(d...)
		for i := range x.F32() {
			x.F32()[i] = float32(r.Intn(9) - 4) // small integers: ties for TopK/Unique
		}
		return x
	}
	ri := func(lo, hi int64, d ...int64) *ir.Tensor {
		n, _ := ir.NumElements(d)
		v := make([]int64, n)
		for i := range v {
			v[i] = lo + r.Int63n(hi-lo)
		}
		return i64(d, v...)
	}
	bools := func(v ...int64) *ir.Tensor { return ir.FromInt64s(ir.Bool, dims(int64(len(v))), v) }
	F, I := ir.Float32, ir.Int64
	cases := []ortCase{
		{op: "Slice", opset: 13, in: []*ir.Tensor{iota(4, 10), vec(math.MinInt64), vec(math.MinInt64), vec(1), vec(-1)}, outs: []ir.DType{F}},
		{op: "Slice", opset: 13, in: []*ir.Tensor{iota(4, 10), vec(-100), vec(-200), vec(1), vec(-3)}, outs: []ir.DType{F}},
		{op: "Slice", opset: 13, in: []*ir.Tensor{iota(4, 10), vec(100, 9), vec(-100, -100), vec(0, 1), vec(-2, -4)}, outs: []ir.DType{F}},
		{op: "Slice", opset: 13, in: []*ir.Tensor{iota(4, 10), vec(2), vec(math.MaxInt64), vec(-1), vec(math.MaxInt64)}, outs: []ir.DType{F}},
		{op: "Pad", opset: 19, in: []*ir.Tensor{iota(2, 3, 4), vec(0, 2, 2, 0, 1, -1)}, outs: []ir.DType{F}, attrs: []*ir.Attribute{aStr("mode", "reflect")}},
		{op: "Pad", opset: 19, in: []*ir.Tensor{iota(2, 3, 4), vec(1, 2, 3, 1, 3, 4)}, outs: []ir.DType{F}, attrs: []*ir.Attribute{aStr("mode", "wrap")}},
		{op: "Pad", opset: 19, in: []*ir.Tensor{iota(2, 3, 4), vec(1, -1, 2, 0, 3, -2)}, outs: []ir.DType{F}, attrs: []*ir.Attribute{aStr("mode", "edge")}},
		{op: "Pad", opset: 18, in: []*ir.Tensor{iota(2, 3, 4), vec(1, 2, 3, 4), ir.ScalarFloat32(-7), vec(-1, 0)}, outs: []ir.DType{F}},
		{op: "GatherND", opset: 13, in: []*ir.Tensor{iota(2, 3, 4, 2), ri(-2, 2, 2, 5, 2)}, outs: []ir.DType{F}, attrs: []*ir.Attribute{aInt("batch_dims", 1)}},
		{op: "GatherND", opset: 13, in: []*ir.Tensor{iota(2, 3, 4), ri(-2, 2, 2, 3, 1)}, outs: []ir.DType{F}, attrs: []*ir.Attribute{aInt("batch_dims", 2)}},
		{op: "GatherElements", opset: 13, in: []*ir.Tensor{iota(3, 4, 2), ri(-4, 4, 2, 5, 2)}, outs: []ir.DType{F}, attrs: []*ir.Attribute{aInt("axis", 1)}},
		{op: "ScatterElements", opset: 18, in: []*ir.Tensor{rf(3, 4), ri(-4, 4, 3, 3), rf(3, 3)}, outs: []ir.DType{F}, attrs: []*ir.Attribute{aInt("axis", 1), aStr("reduction", "add")}},
		{op: "ScatterElements", opset: 18, in: []*ir.Tensor{rf(3, 4), ri(-3, 3, 2, 4), rf(2, 4)}, outs: []ir.DType{F}, attrs: []*ir.Attribute{aStr("reduction", "max")}},
		{op: "ScatterElements", opset: 18, in: []*ir.Tensor{rf(3, 4), ri(0, 3, 2, 4), rf(2, 4)}, outs: []ir.DType{F}, attrs: []*ir.Attribute{aStr("reduction", "mul")}},
		{op: "ScatterND", opset: 18, in: []*ir.Tensor{rf(4, 3, 2), ri(-4, 4, 5, 1), rf(5, 3, 2)}, outs: []ir.DType{F}, attrs: []*ir.Attribute{aStr("reduction", "add")}},
		{op: "ScatterND", opset: 18, in: []*ir.Tensor{rf(4, 3, 2), ri(0, 2, 3, 2), rf(3, 2)}, outs: []ir.DType{F}, attrs: []*ir.Attribute{aStr("reduction", "min")}},
		{op: "ScatterND", opset: 13, in: []*ir.Tensor{rf(4, 3), i64(dims(2, 2), 0, 1, 3, 2), rf(2)}, outs: []ir.DType{F}},
		{op: "TopK", opset: 11, in: []*ir.Tensor{rf(3, 9), vec(4)}, outs: []ir.DType{F, I}},
		{op: "TopK", opset: 11, in: []*ir.Tensor{rf(5, 3), vec(5)}, outs: []ir.DType{F, I}, attrs: []*ir.Attribute{aInt("axis", 0), aInt("largest", 0)}},
		{op: "TopK", opset: 11, in: []*ir.Tensor{rf(2, 3, 4), vec(2)}, outs: []ir.DType{F, I}, attrs: []*ir.Attribute{aInt("axis", 1)}},
		{op: "Unique", opset: 11, in: []*ir.Tensor{rf(12)}, outs: []ir.DType{F, I, I, I}},
		{op: "Unique", opset: 11, in: []*ir.Tensor{rf(12)}, outs: []ir.DType{F, I, I, I}, attrs: []*ir.Attribute{aInt("sorted", 0)}},
		{op: "Unique", opset: 11, in: []*ir.Tensor{ri(0, 2, 5, 2)}, outs: []ir.DType{I, I, I, I}, attrs: []*ir.Attribute{aInt("axis", 0)}},
		{op: "CumSum", opset: 14, in: []*ir.Tensor{rf(3, 5), ir.ScalarInt64(1)}, outs: []ir.DType{F}, attrs: []*ir.Attribute{aInt("exclusive", 1), aInt("reverse", 1)}, approx: true},
		{op: "CumSum", opset: 14, in: []*ir.Tensor{ri(-9, 9, 3, 5), ir.ScalarInt64(-2)}, outs: []ir.DType{I}, attrs: []*ir.Attribute{aInt("reverse", 1)}},
		{op: "OneHot", opset: 11, in: []*ir.Tensor{ri(-6, 6, 2, 3), ir.ScalarInt64(5), f32(dims(2), -1, 4)}, outs: []ir.DType{F}, attrs: []*ir.Attribute{aInt("axis", 1)}},
		{op: "NonZero", opset: 13, in: []*ir.Tensor{rf(3, 4)}, outs: []ir.DType{I}},
		{op: "Trilu", opset: 14, in: []*ir.Tensor{iota(2, 4, 5), ir.ScalarInt64(-1)}, outs: []ir.DType{F}},
		{op: "Trilu", opset: 14, in: []*ir.Tensor{iota(2, 4, 5), ir.ScalarInt64(2)}, outs: []ir.DType{F}, attrs: []*ir.Attribute{aInt("upper", 0)}},
		{op: "EyeLike", opset: 9, in: []*ir.Tensor{iota(4, 6)}, outs: []ir.DType{I}, attrs: []*ir.Attribute{aInt("k", -2), aInt("dtype", int64(ir.Int64))}},
		{op: "DepthToSpace", opset: 13, in: []*ir.Tensor{iota(2, 12, 2, 3)}, outs: []ir.DType{F}, attrs: []*ir.Attribute{aInt("blocksize", 2), aStr("mode", "CRD")}},
		{op: "DepthToSpace", opset: 13, in: []*ir.Tensor{iota(2, 18, 2, 3)}, outs: []ir.DType{F}, attrs: []*ir.Attribute{aInt("blocksize", 3)}},
		{op: "SpaceToDepth", opset: 13, in: []*ir.Tensor{iota(2, 3, 4, 6)}, outs: []ir.DType{F}, attrs: []*ir.Attribute{aInt("blocksize", 2)}},
		{op: "ReverseSequence", opset: 10, in: []*ir.Tensor{iota(4, 3, 2), vec(0, 4, 2)}, outs: []ir.DType{F}},
		{op: "ReverseSequence", opset: 10, in: []*ir.Tensor{iota(3, 4, 2), vec(1, 4, 3)}, outs: []ir.DType{F}, attrs: []*ir.Attribute{aInt("batch_axis", 0), aInt("time_axis", 1)}},
		{op: "Compress", opset: 11, in: []*ir.Tensor{iota(3, 4), bools(1, 0, 1)}, outs: []ir.DType{F}, attrs: []*ir.Attribute{aInt("axis", 0)}},
		{op: "Compress", opset: 11, in: []*ir.Tensor{iota(3, 4), bools(0, 1, 1, 0, 0, 1, 0)}, outs: []ir.DType{F}},
		{op: "Range", opset: 11, in: []*ir.Tensor{ir.ScalarFloat32(0.1), ir.ScalarFloat32(3.3), ir.ScalarFloat32(0.3)}, outs: []ir.DType{F}, approx: true},
		{op: "Range", opset: 11, in: []*ir.Tensor{ir.ScalarInt64(10), ir.ScalarInt64(-7), ir.ScalarInt64(-4)}, outs: []ir.DType{I}},
		{op: "Tile", opset: 13, in: []*ir.Tensor{iota(2, 1, 3), vec(2, 3, 1)}, outs: []ir.DType{F}},
		{op: "Expand", opset: 13, in: []*ir.Tensor{iota(3, 1), vec(2, 1, 4)}, outs: []ir.DType{F}},
		{op: "Split", opset: 18, in: []*ir.Tensor{iota(2, 11)}, outs: []ir.DType{F, F, F, F}, attrs: []*ir.Attribute{aInt("axis", 1), aInt("num_outputs", 4)}},
		{op: "CenterCropPad", opset: 18, in: []*ir.Tensor{iota(5, 4, 3), vec(2, 7)}, outs: []ir.DType{F}, attrs: []*ir.Attribute{aInts("axes", 0, -1)}},
		{op: "CenterCropPad", opset: 18, in: []*ir.Tensor{iota(6, 3), vec(3, 6)}, outs: []ir.DType{F}},
		{op: "Transpose", opset: 13, in: []*ir.Tensor{ir.FromInt64s(ir.Int8, dims(2, 3, 4), make([]int64, 24))}, outs: []ir.DType{ir.Int8}, attrs: []*ir.Attribute{aInts("perm", 2, 0, 1)}},
	}
	// One model per opset (a node per case) keeps ONNX Runtime start-ups few.
	byOpset := map[int64][]int{}
	for i, c := range cases {
		byOpset[c.opset] = append(byOpset[c.opset], i)
	}
	for opset, idx := range byOpset {
		var group []ortCase
		for _, i := range idx {
			group = append(group, cases[i])
		}
		t.Run(fmt.Sprintf("opset%d", opset), func(t *testing.T) { runORT(t, dir, opset, group) })
	}
}

func runORT(t *testing.T, dir string, opset int64, cases []ortCase) {
	g := &ir.Graph{Name: "cases"}
	feeds := map[string]*ir.Tensor{}
	tmp := t.TempDir()
	for ci, c := range cases {
		n := &ir.Node{Name: fmt.Sprintf("c%d", ci), OpType: c.op, Attrs: c.attrs}
		g.Nodes = append(g.Nodes, n)
		for i, x := range c.in {
			name := fmt.Sprintf("c%d_in%d", ci, i)
			x = x.Clone()
			x.Name = name
			n.Inputs = append(n.Inputs, name)
			if err := onnx.WriteTensorFile(filepath.Join(tmp, fmt.Sprintf("input_%d.pb", len(g.Inputs))), x); err != nil {
				t.Fatal(err)
			}
			g.Inputs = append(g.Inputs, &ir.ValueInfo{Name: name, Type: x.Type()})
			feeds[name] = x
		}
		for i, dt := range c.outs {
			name := fmt.Sprintf("c%d_out%d", ci, i)
			n.Outputs = append(n.Outputs, name)
			g.Outputs = append(g.Outputs, &ir.ValueInfo{Name: name, Type: &ir.Type{Kind: ir.KindTensor, DType: dt}})
		}
	}
	m := &ir.Model{IRVersion: 9, Opsets: []ir.OpsetImport{{Version: opset}}, Graph: g}
	if err := onnx.Save(filepath.Join(tmp, "model.onnx"), m); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", filepath.Join(dir, "run.js"), filepath.Join(tmp, "model.onnx"), tmp, filepath.Join(tmp, "out"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ONNX Runtime: %v\n%s", err, out)
	}
	got, err := ops.Run(m, feeds)
	if err != nil {
		t.Fatalf("kiln: %v", err)
	}
	for oi, o := range g.Outputs {
		var ci int
		fmt.Sscanf(o.Name, "c%d_", &ci)
		c := cases[ci]
		want, err := onnx.ReadTensorFile(filepath.Join(tmp, "out", fmt.Sprintf("output_%d.pb", oi)))
		if err != nil {
			t.Fatal(err)
		}
		y := got[o.Name]
		if y.DType != want.DType || fmt.Sprint(y.Dims) != fmt.Sprint(want.Dims) {
			t.Errorf("%s %s: kiln %s%v, ORT %s%v", c.op, o.Name, y.DType, y.Dims, want.DType, want.Dims)
			continue
		}
		for k := int64(0); k < want.Len(); k++ {
			g, w := y.Float64At(k), want.Float64At(k)
			if g != w && !(c.approx && math.Abs(g-w) <= 1e-6*math.Max(1, math.Abs(w))) {
				t.Errorf("%s %s element %d: kiln %v, ORT %v\nkiln %v\nORT  %v", c.op, o.Name, k, g, w, y.Float64s(), want.Float64s())
				break
			}
		}
	}
}
