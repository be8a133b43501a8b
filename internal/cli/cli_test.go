package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/onnx"
	_ "github.com/kilnml/kiln/ops/all"
	"github.com/kilnml/kiln/tensorio"
)

func TestFileName(t *testing.T) {
	for in, want := range map[string]string{"input:0": "input_0", "gpu_0/data_0": "gpu_0_data_0", "x": "x", "a/b:c": "a_b_c"} {
		if got := FileName(in); got != want {
			t.Errorf("FileName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestExitCode(t *testing.T) {
	cases := []struct {
		err  error
		code int
	}{
		{nil, 0},
		{errors.New("boom"), 1},
		{Usagef("bad flag"), 2},
		{fmt.Errorf("wrapped: %w", Usagef("bad")), 2},
		{errors.New(`unknown command "x" for "kiln"`), 2},
	}
	for _, c := range cases {
		if got := ExitCode(c.err); got != c.code {
			t.Errorf("ExitCode(%v) = %d, want %d", c.err, got, c.code)
		}
	}
}

// twoInputs has real inputs "a:0" float32[batch,3] and "b/x" int64[2], with
// an initializer "w" listed between them in graph.inputs.
func twoInputs() *ir.Graph {
	w := ir.FromFloat32s([]int64{3}, []float32{1, 2, 3})
	w.Name = "w"
	return &ir.Graph{
		Inputs: []*ir.ValueInfo{
			{Name: "a:0", Type: ir.TensorType(ir.Float32, ir.Shape{ir.Sym("batch"), ir.D(3)})},
			{Name: "w", Type: ir.TensorType(ir.Float32, ir.Shape{ir.D(3)})},
			{Name: "b/x", Type: ir.TensorType(ir.Int64, ir.Shape{ir.D(2)})},
		},
		Initializers: []*ir.Tensor{w},
	}
}

func TestLoadInputsFromDirectory(t *testing.T) {
	dir := t.TempDir()
	a := ir.NewTensor(ir.Float32, []int64{5, 3}) // batch 5 fits the symbol
	b := ir.FromInt64s(ir.Int64, []int64{2}, []int64{7, 8})
	if err := tensorio.WriteNPY(filepath.Join(dir, "a_0.npy"), a); err != nil {
		t.Fatal(err)
	}
	// b is real input 1 (the initializer does not count).
	if err := onnx.WriteTensorFile(filepath.Join(dir, "input_1.pb"), b); err != nil {
		t.Fatal(err)
	}
	files, err := LoadInputs(twoInputs(), dir)
	if err != nil {
		t.Fatal(err)
	}
	feeds := Feeds(files)
	if len(feeds) != 2 || fmt.Sprint(feeds["a:0"].Dims) != "[5 3]" || feeds["b/x"].I64()[1] != 8 {
		t.Fatalf("feeds %v", feeds)
	}
	if filepath.Base(files[0].Path) != "a_0.npy" || filepath.Base(files[1].Path) != "input_1.pb" {
		t.Errorf("paths %s %s", files[0].Path, files[1].Path)
	}
}

func TestLoadInputsReportsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	a := ir.NewTensor(ir.Float32, []int64{5, 4})
	tensorio.WriteNPY(filepath.Join(dir, "a_0.npy"), a)
	_, err := LoadInputs(twoInputs(), dir)
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, want := range []string{`input "a:0"`, "[5 4]", "[batch,3]", "a_0.npy", `input "b/x" (#1)`, "input_1.pb", "b_x.npy"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q: %s", want, msg)
		}
	}
}

func TestLoadInputsFromNPZ(t *testing.T) {
	a := ir.NewTensor(ir.Float32, []int64{1, 3})
	a.Name = "a:0"
	b := ir.FromInt64s(ir.Int64, []int64{2}, []int64{7, 8})
	b.Name = "b_x" // the file-name form is accepted too
	p := filepath.Join(t.TempDir(), "in.npz")
	if err := tensorio.WriteNPZ(p, []*ir.Tensor{a, b}, false); err != nil {
		t.Fatal(err)
	}
	files, err := LoadInputs(twoInputs(), p)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 || files[1].Entry != "b_x" {
		t.Fatalf("files %+v", files)
	}
	b.DType = ir.Int32
	b.Data = b.Data[:8]
	tensorio.WriteNPZ(p, []*ir.Tensor{a, b}, false)
	if _, err := LoadInputs(twoInputs(), p); err == nil || !strings.Contains(err.Error(), "in.npz[b_x]") {
		t.Fatalf("wrong dtype in npz: %v", err)
	}
	if _, err := LoadInputs(twoInputs(), filepath.Join(t.TempDir(), "x.txt")); err == nil {
		t.Fatal("missing file accepted")
	}
}

func TestOutputsRoundTrip(t *testing.T) {
	g := &ir.Graph{Outputs: []*ir.ValueInfo{{Name: "y"}, {Name: "z"}}}
	y := ir.FromFloat32s([]int64{2}, []float32{1, 2})
	z := ir.FromInt64s(ir.Int64, nil, []int64{3})
	dir := filepath.Join(t.TempDir(), "new")
	if err := WriteOutputs(g, map[string]*ir.Tensor{"y": y, "z": z}, dir); err != nil {
		t.Fatal(err)
	}
	if y.Name != "" {
		t.Error("WriteOutputs renamed the caller's tensor")
	}
	got, err := ReadExpected(g, dir)
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Name != "y" || got[0].F32()[1] != 2 || got[1].I64()[0] != 3 {
		t.Fatalf("read back %v", got)
	}
	// An extra output file means the expectations belong to another model.
	if _, err := ReadExpected(&ir.Graph{Outputs: g.Outputs[:1]}, dir); err == nil || !strings.Contains(err.Error(), "only 1 output") {
		t.Fatalf("extra file: %v", err)
	}
	if _, err := ReadExpected(g, t.TempDir()); err == nil || !strings.Contains(err.Error(), `output "z"`) {
		t.Fatalf("missing files: %v", err)
	}
}

func TestInspectModel(t *testing.T) {
	w := ir.NewTensor(ir.Float32, []int64{4, 3})
	w.Name = "w"
	m := &ir.Model{
		IRVersion: 8, ProducerName: "test", ProducerVersion: "1",
		Opsets: []ir.OpsetImport{{Domain: "", Version: 17}, {Domain: "com.example", Version: 1}},
		Graph: &ir.Graph{
			Name:   "g",
			Inputs: []*ir.ValueInfo{{Name: "x", Type: ir.TensorType(ir.Float32, ir.Shape{ir.Sym("N"), ir.D(3), ir.Unknown()})}},
			Outputs: []*ir.ValueInfo{{Name: "y", Type: ir.TensorType(ir.Float32, ir.Shape{ir.Sym("N"), ir.D(3), ir.Unknown()})},
				{Name: "z"}},
			Initializers: []*ir.Tensor{w},
			Nodes: []*ir.Node{
				{Name: "c1", OpType: "Constant", Outputs: []string{"c1"}, Attrs: []*ir.Attribute{{Name: "value_floats", Type: ir.AttrFloats, Floats: []float32{1, 2}}}},
				{Name: "c2", OpType: "Constant", Outputs: []string{"c2"}, Attrs: []*ir.Attribute{{Name: "value", Type: ir.AttrTensor, T: ir.ScalarInt64(3)}}},
				{Name: "r1", OpType: "Relu", Inputs: []string{"x"}, Outputs: []string{"r1"}},
				{Name: "r2", OpType: "Relu", Inputs: []string{"r1"}, Outputs: []string{"y"}},
				{Name: "f1", OpType: "Frob", Domain: "com.example", Inputs: []string{"x"}, Outputs: []string{"f1"}},
				{Name: "f2", OpType: "Frob", Domain: "com.example", Inputs: []string{"f1"}, Outputs: []string{"z"}},
			},
		},
	}
	r, err := InspectModel(m)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(r.Ops) != "[{Constant 2} {Relu 2} {com.example::Frob 2}]" {
		t.Errorf("histogram %v", r.Ops)
	}
	p := r.Params
	if p.Initializers != 1 || p.InitializerElems != 12 || p.InitializerBytes != 48 ||
		p.Constants != 2 || p.ConstantElems != 3 || p.ConstantBytes != 16 || p.Elems != 15 || p.Bytes != 64 {
		t.Errorf("params %+v", p)
	}
	if len(r.Unsupported) != 1 || r.Unsupported[0].Op != "Frob" || fmt.Sprint(r.Unsupported[0].Nodes) != "[f1 f2]" {
		t.Errorf("unsupported %+v", r.Unsupported)
	}
	if len(r.InferredOutputs) != 1 || r.InferredOutputs[0].Type != "float32[N,3,?]" {
		t.Errorf("inferred %+v", r.InferredOutputs)
	}
	js, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(js), `"shape":["N",3,null]`) || !strings.Contains(string(js), `{"domain":"ai.onnx","version":17}`) {
		t.Errorf("JSON %s", js)
	}
	var text strings.Builder
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Producer:   test 1", "ai.onnx 17, com.example 1", "x  float32[N,3,?]",
		"Frob (domain com.example, opset 1)", "    f1, f2", "Parameters: 15 elements, 64 B"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, text.String())
		}
	}
}

func TestHumanUnits(t *testing.T) {
	if HumanBytes(512) != "512 B" || HumanBytes(1536) != "1.5 KiB" || HumanBytes(3<<20) != "3.0 MiB" {
		t.Error(HumanBytes(512), HumanBytes(1536), HumanBytes(3<<20))
	}
	if HumanCount(999) != "999" || HumanCount(25_600) != "25.6k" || HumanCount(3_200_000) != "3.20M" {
		t.Error(HumanCount(999), HumanCount(25_600), HumanCount(3_200_000))
	}
}
