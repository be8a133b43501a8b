package onnx

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/kilnml/kiln/ir"
)

func TestMNISTZoo(t *testing.T) {
	needShared(t)
	dir := filepath.Join(sharedDir, "models", "mnist-8-zoo")
	m, err := Load(filepath.Join(dir, "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Opset(""); got != 8 {
		t.Errorf("opset %d, want 8", got)
	}
	if m.ProducerName != "CNTK" {
		t.Errorf("producer %q, want CNTK", m.ProducerName)
	}
	in := m.Graph.RealInputs()
	if len(in) != 1 || in[0].Name != "Input3" {
		t.Fatalf("real inputs %v, want just Input3", in)
	}
	want := ir.TensorType(ir.Float32, ir.ShapeOf([]int64{1, 1, 28, 28}))
	if d := diff(in[0].Type, want); d != "" {
		t.Errorf("Input3 type %v, want %v (%s)", in[0].Type, want, d)
	}
	if len(m.Graph.Outputs) != 1 || m.Graph.Outputs[0].Type.String() != "float32[1,10]" {
		t.Errorf("outputs %v", m.Graph.Outputs)
	}
	var ops []string
	for _, n := range m.Graph.Nodes {
		ops = append(ops, n.OpType)
	}
	for _, op := range []string{"Conv", "Relu", "MaxPool", "Reshape", "MatMul", "Add"} {
		if !slices.Contains(ops, op) {
			t.Errorf("no %s node in %v", op, ops)
		}
	}
	// The first convolution's weights: 8 filters of 1x5x5.
	var conv *ir.Node
	for _, n := range m.Graph.Nodes {
		if n.OpType == "Conv" {
			conv = n
			break
		}
	}
	w := m.Graph.Initializer(conv.Inputs[1])
	if w == nil || w.DType != ir.Float32 || !slices.Equal(w.Dims, []int64{8, 1, 5, 5}) {
		t.Fatalf("first Conv weight %v", w)
	}
	ks, err := conv.AttrInts("kernel_shape", nil)
	if err != nil || !slices.Equal(ks, []int64{5, 5}) {
		t.Errorf("kernel_shape %v %v", ks, err)
	}
	for _, v := range w.F32() {
		if math.IsNaN(float64(v)) || math.Abs(float64(v)) > 10 {
			t.Fatalf("implausible weight %v", v)
		}
	}

	x, err := ReadTensorFile(filepath.Join(dir, "test_data_set_0", "input_0.pb"))
	if err != nil {
		t.Fatal(err)
	}
	if x.DType != ir.Float32 || !slices.Equal(x.Dims, []int64{1, 1, 28, 28}) {
		t.Fatalf("input %v", x)
	}
	var lo, hi float32 = math.MaxFloat32, -math.MaxFloat32
	for _, v := range x.F32() {
		lo, hi = min(lo, v), max(hi, v)
	}
	if lo != 0 || hi < 100 || hi > 255 {
		t.Errorf("pixels range %v..%v, want 0..255", lo, hi)
	}
}

func TestInt4TestData(t *testing.T) {
	needShared(t)
	// ONNX stores int4 test data in int32_data, already packed one byte per value.
	x, err := ReadTensorFile(filepath.Join(sharedDir, "onnx-node", "test_dequantizelinear_int4", "test_data_set_0", "input_0.pb"))
	if err != nil {
		t.Fatal(err)
	}
	if x.DType != ir.Int4 || !slices.Equal(x.Dims, []int64{5}) || len(x.Data) != 3 {
		t.Fatalf("got %v with %d bytes", x, len(x.Data))
	}
	if got := x.Int64s(); !slices.Equal(got, []int64{0, 1, 7, -4, -8}) {
		t.Errorf("int4 values %v", got)
	}
	if x.Data[2]&0xF0 != 0 {
		t.Errorf("padding nibble not cleared: %#x", x.Data[2])
	}
	y, err := ReadTensorFile(filepath.Join(sharedDir, "onnx-node", "test_dequantizelinear_int4", "test_data_set_0", "output_0.pb"))
	if err != nil {
		t.Fatal(err)
	}
	if got := y.Float64s(); len(got) != 5 {
		t.Errorf("output %v", got)
	}
}

func TestTypedFields(t *testing.T) {
	f16 := []int64{0x3C00, 0xC000, 0x7C00} // 1, -2, +inf as float16 bits
	cases := []struct {
		name  string
		proto []byte
		check func(t *testing.T, x *ir.Tensor)
	}{
		{"float_data packed", tensorProto("f", 1, []int64{2, 2}, packedFloats(tensorFloatData, 1, -2, 3.5, 0)),
			func(t *testing.T, x *ir.Tensor) { eq(t, x.F32(), []float32{1, -2, 3.5, 0}) }},
		{"float_data unpacked", tensorProto("f", 1, []int64{2}, fFixed32(tensorFloatData, math.Float32bits(1.5)), fFixed32(tensorFloatData, math.Float32bits(-1))),
			func(t *testing.T, x *ir.Tensor) { eq(t, x.F32(), []float32{1.5, -1}) }},
		{"int32_data negative int8", tensorProto("i8", 3, []int64{3}, packedVarints(tensorInt32Data, -128, 127, -1)),
			func(t *testing.T, x *ir.Tensor) { eq(t, x.I8(), []int8{-128, 127, -1}) }},
		{"int32_data int32 unpacked", tensorProto("i32", 6, []int64{2}, fVarint(tensorInt32Data, uint64(0xFFFFFFFFFFFFFFFF)), fVarint(tensorInt32Data, 7)),
			func(t *testing.T, x *ir.Tensor) { eq(t, x.I32(), []int32{-1, 7}) }},
		{"int32_data float16 bits", tensorProto("h", 10, []int64{3}, packedVarints(tensorInt32Data, f16...)),
			func(t *testing.T, x *ir.Tensor) { eq(t, x.Float64s(), []float64{1, -2, math.Inf(1)}) }},
		{"int32_data bool", tensorProto("b", 9, []int64{3}, packedVarints(tensorInt32Data, 1, 0, 5)),
			func(t *testing.T, x *ir.Tensor) { eq(t, x.Data, []byte{1, 0, 1}) }},
		{"int32_data uint4 one per int32", tensorProto("u4", 21, []int64{3}, packedVarints(tensorInt32Data, 1, 15, 9)),
			func(t *testing.T, x *ir.Tensor) { eq(t, x.Data, []byte{0xF1, 0x09}) }},
		{"int32_data int2 one per int32", tensorProto("i2", 26, []int64{5}, packedVarints(tensorInt32Data, -2, 1, 0, -1, 1)),
			func(t *testing.T, x *ir.Tensor) { eq(t, x.Int64s(), []int64{-2, 1, 0, -1, 1}) }},
		{"int32_data int2 packed bytes", tensorProto("i2", 26, []int64{5}, packedVarints(tensorInt32Data, 0xC6, 0x01)),
			func(t *testing.T, x *ir.Tensor) { eq(t, x.Int64s(), []int64{-2, 1, 0, -1, 1}) }},
		{"int64_data", tensorProto("i64", 7, []int64{2}, packedVarints(tensorInt64Data, math.MinInt64, 42)),
			func(t *testing.T, x *ir.Tensor) { eq(t, x.I64(), []int64{math.MinInt64, 42}) }},
		{"uint64_data uint32", tensorProto("u32", 12, []int64{2}, packedVarints(tensorUint64Data, 0xFFFFFFFF, 3)),
			func(t *testing.T, x *ir.Tensor) { eq(t, x.U32(), []uint32{0xFFFFFFFF, 3}) }},
		{"uint64_data uint64", tensorProto("u64", 13, []int64{1}, fVarint(tensorUint64Data, math.MaxUint64)),
			func(t *testing.T, x *ir.Tensor) { eq(t, x.U64(), []uint64{math.MaxUint64}) }},
		{"double_data", tensorProto("d", 11, []int64{2}, fFixed64(tensorDoubleData, math.Float64bits(math.Pi)), fFixed64(tensorDoubleData, math.Float64bits(-0.5))),
			func(t *testing.T, x *ir.Tensor) { eq(t, x.F64(), []float64{math.Pi, -0.5}) }},
		{"complex64 float_data pairs", tensorProto("c", 14, []int64{1}, packedFloats(tensorFloatData, 1, -1)),
			func(t *testing.T, x *ir.Tensor) { eq(t, len(x.Data), 8) }},
		{"string_data", tensorProto("s", 8, []int64{3}, fStr(tensorStringData, "a"), fStr(tensorStringData, ""), fStr(tensorStringData, "héllo")),
			func(t *testing.T, x *ir.Tensor) {
				eq(t, len(x.Strings), 3)
				eq(t, string(x.Strings[0])+"|"+string(x.Strings[1])+"|"+string(x.Strings[2]), "a||héllo")
			}},
		{"raw_data scalar", tensorProto("r", 1, nil, fBytes(tensorRawData, []byte{0, 0, 0x80, 0x3F})),
			func(t *testing.T, x *ir.Tensor) { eq(t, x.F32(), []float32{1}); eq(t, len(x.Dims), 0) }},
		{"raw_data bool normalized", tensorProto("b", 9, []int64{2}, fBytes(tensorRawData, []byte{0, 7})),
			func(t *testing.T, x *ir.Tensor) { eq(t, x.Data, []byte{0, 1}) }},
		{"empty tensor", tensorProto("e", 1, []int64{0, 3}),
			func(t *testing.T, x *ir.Tensor) { eq(t, len(x.Data), 0) }},
		{"doc_string", tensorProto("d", 2, []int64{1}, fBytes(tensorRawData, []byte{9}), fStr(tensorDocString, "why")),
			func(t *testing.T, x *ir.Tensor) { eq(t, x.Doc, "why"); eq(t, x.Data, []byte{9}) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			x, err := DecodeTensor(c.proto)
			if err != nil {
				t.Fatal(err)
			}
			if err := x.Check(); err != nil {
				t.Fatal(err)
			}
			if len(x.Data) > 0 && uintptrOf(x.Data)%8 != 0 {
				t.Errorf("data not 8-byte aligned")
			}
			c.check(t, x)
			enc, err := EncodeTensor(x)
			if err != nil {
				t.Fatal(err)
			}
			back, err := DecodeTensor(enc)
			if err != nil {
				t.Fatal(err)
			}
			if d := diff(x, back); d != "" {
				t.Errorf("round trip differs at %s", d)
			}
		})
	}
}

// TestNoAliasing checks that decoded tensors own their bytes.
func TestNoAliasing(t *testing.T) {
	p := tensorProto("r", 2, []int64{4}, fBytes(tensorRawData, []byte{1, 2, 3, 4}), fStr(tensorDocString, "d"))
	x, err := DecodeTensor(p)
	if err != nil {
		t.Fatal(err)
	}
	for i := range p {
		p[i] = 0xEE
	}
	eq(t, x.Data, []byte{1, 2, 3, 4})
	eq(t, x.Name, "r")
}

// richModel uses every field kiln keeps: all attribute kinds, nested
// graphs, every type kind, metadata and raw-kept messages.
func richModel() *ir.Model {
	sub := &ir.Graph{Name: "body", Nodes: []*ir.Node{{OpType: "Identity", Inputs: []string{"a"}, Outputs: []string{"b"}}},
		Inputs:  []*ir.ValueInfo{{Name: "a", Type: ir.TensorType(ir.Float32, ir.Shape{ir.Sym("n")})}},
		Outputs: []*ir.ValueInfo{{Name: "b", Type: &ir.Type{Kind: ir.KindTensor, DType: ir.Float32}}}}
	seqT := &ir.Type{Kind: ir.KindSequence, Elem: ir.TensorType(ir.Int64, ir.Shape{ir.Unknown(), ir.D(0)}), Denot: "d"}
	mapT := &ir.Type{Kind: ir.KindMap, DType: ir.String, Elem: &ir.Type{Kind: ir.KindOptional, Elem: ir.TensorType(ir.Bool, ir.Shape{})}}
	sparseT := &ir.Type{Kind: ir.KindSparseTensor, DType: ir.Float16, Shape: ir.Shape{ir.D(3)}, HasShape: true}
	f4 := ir.NewTensor(ir.Float4E2M1, []int64{3})
	f4.Data[0], f4.Data[1] = 0x21, 0x07
	node := &ir.Node{Name: "n", OpType: "Custom", Domain: "kiln.test", Inputs: []string{"x", "", "y"}, Outputs: []string{"z"}, Doc: "node doc",
		Attrs: []*ir.Attribute{
			{Name: "f", Type: ir.AttrFloat, F: float32(math.NaN())},
			{Name: "f0", Type: ir.AttrFloat},
			{Name: "i", Type: ir.AttrInt, I: -5},
			{Name: "s", Type: ir.AttrString, S: []byte("str")},
			{Name: "t", Type: ir.AttrTensor, T: f4},
			{Name: "g", Type: ir.AttrGraph, G: sub},
			{Name: "fs", Type: ir.AttrFloats, Floats: []float32{1, float32(math.Inf(-1))}},
			{Name: "is", Type: ir.AttrInts, Ints: []int64{-1, 1 << 40}},
			{Name: "empty_is", Type: ir.AttrInts, Ints: []int64{}},
			{Name: "ss", Type: ir.AttrStrings, Strings: [][]byte{[]byte("a"), nil}},
			{Name: "ts", Type: ir.AttrTensors, Tensors: []*ir.Tensor{ir.ScalarInt64(3), ir.ScalarFloat32(2)}},
			{Name: "gs", Type: ir.AttrGraphs, Graphs: []*ir.Graph{sub, {Name: "empty"}}},
			{Name: "tp", Type: ir.AttrTypeProto, TP: seqT},
			{Name: "tps", Type: ir.AttrTypeProtos, TPs: []*ir.Type{mapT, sparseT}},
			{Name: "sp", Type: ir.AttrSparseTensor, Sparse: [][]byte{{1, 2}}},
			{Name: "sps", Type: ir.AttrSparseTensors, Sparse: [][]byte{{3}, {}}},
			{Name: "ref", Type: ir.AttrInt, RefAttrName: "outer", Doc: "attr doc"},
		}}
	m := &ir.Model{IRVersion: 10, Opsets: []ir.OpsetImport{{Domain: "", Version: 21}, {Domain: "kiln.test", Version: 1}},
		ProducerName: "kiln", ProducerVersion: "0", Domain: "d", ModelVersion: 3, Doc: "model doc",
		Metadata:  []ir.StringPair{{Key: "k", Value: "v"}},
		Functions: [][]byte{{0x0a, 0x01, 'f'}},
		Graph: &ir.Graph{Name: "main", Doc: "graph doc", Nodes: []*ir.Node{node},
			Inputs:             []*ir.ValueInfo{{Name: "x", Type: ir.TensorType(ir.Float32, ir.Shape{ir.Sym("batch"), ir.D(3)}), Doc: "in"}, {Name: "y"}},
			Outputs:            []*ir.ValueInfo{{Name: "z", Type: seqT}},
			ValueInfo:          []*ir.ValueInfo{{Name: "v", Type: mapT}},
			Initializers:       []*ir.Tensor{{Name: "y", DType: ir.String, Dims: []int64{2}, Strings: [][]byte{[]byte("p"), []byte("q")}}},
			SparseInitializers: [][]byte{{0x12, 0x00}},
			QuantAnnotations:   [][]byte{{0x0a, 0x01, 'x'}},
		}}
	return m
}

func TestAllAttributeKinds(t *testing.T) {
	m := richModel()
	enc, err := Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Decode(enc, "")
	if err != nil {
		t.Fatal(err)
	}
	if d := diff(m, back); d != "" {
		t.Fatalf("in-memory model changed at %s", d)
	}
	enc2, _ := Encode(back)
	if string(enc) != string(enc2) {
		t.Errorf("Encode not idempotent")
	}
}

func TestSaveLoad(t *testing.T) {
	dir := t.TempDir()
	m := &ir.Model{IRVersion: 9, Opsets: []ir.OpsetImport{{Version: 19}}, Graph: &ir.Graph{Name: "g",
		Initializers: []*ir.Tensor{ir.FromFloat32s([]int64{2}, []float32{1, 2})}}}
	m.Graph.Initializers[0].Name = "w"
	p := filepath.Join(dir, "m.onnx")
	if err := Save(p, m); err != nil {
		t.Fatal(err)
	}
	got, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, got.Path, p)
	got.Path = ""
	if d := diff(m, got); d != "" {
		t.Errorf("differs at %s", d)
	}
	// A failing save leaves the old file untouched and no temporary behind.
	bad := &ir.Model{Graph: &ir.Graph{Initializers: []*ir.Tensor{{Name: "w", DType: ir.Float32, Dims: []int64{3}, Data: make([]byte, 4)}}}}
	if err := Save(p, bad); err == nil {
		t.Fatal("Save of a tensor with too little data succeeded")
	}
	if again, err := Load(p); err != nil || again.Graph.Initializers[0].F32()[1] != 2 {
		t.Errorf("old file damaged: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want 1", len(entries))
	}

	tp := filepath.Join(dir, "t.pb")
	x := ir.FromInt64s(ir.Int4, []int64{3}, []int64{-8, 7, 1})
	x.Name = "x"
	if err := WriteTensorFile(tp, x); err != nil {
		t.Fatal(err)
	}
	y, err := ReadTensorFile(tp)
	if err != nil {
		t.Fatal(err)
	}
	if d := diff(x, y); d != "" {
		t.Errorf("tensor file differs at %s", d)
	}
}

func TestExternalData(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "weights"), 0o755); err != nil {
		t.Fatal(err)
	}
	payload := []byte("junkjunk\x00\x00\x80\x3f\x00\x00\x00\xc0tail")
	if err := os.WriteFile(filepath.Join(dir, "weights", "w.bin"), payload, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(filepath.Dir(dir), "outside.bin"), payload, 0o644); err != nil {
		t.Fatal(err)
	}
	ext := func(kv ...string) [][]byte {
		var out [][]byte
		for i := 0; i < len(kv); i += 2 {
			out = append(out, fBytes(tensorExternalData, cat(fStr(pairKey, kv[i]), fStr(pairValue, kv[i+1]))))
		}
		return append(out, fVarint(tensorDataLocation, 1))
	}
	write := func(name string, fields ...[]byte) string {
		p := filepath.Join(dir, name)
		model := modelProto(fBytes(graphInitializer, tensorProto("w", 1, []int64{2}, fields...)), fStr(graphName, "g"))
		if err := os.WriteFile(p, model, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}

	p := write("ok.onnx", ext("location", "weights/w.bin", "offset", "8", "length", "8")...)
	m, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	w := m.Graph.Initializers[0]
	eq(t, w.F32(), []float32{1, -2})
	if uintptrOf(w.Data)%8 != 0 {
		t.Error("external data not aligned")
	}
	// Without length: the tensor's size from the offset.
	if m, err := Load(write("nolen.onnx", ext("location", "weights/w.bin", "offset", "8")...)); err != nil {
		t.Error(err)
	} else {
		eq(t, m.Graph.Initializers[0].F32(), []float32{1, -2})
	}
	// Saving inlines the data.
	sp := filepath.Join(dir, "inline.onnx")
	if err := Save(sp, m); err != nil {
		t.Fatal(err)
	}
	if m2, err := Load(sp); err != nil {
		t.Fatal(err)
	} else {
		eq(t, m2.Graph.Initializers[0].F32(), []float32{1, -2})
	}
	if err := os.Symlink(filepath.Join(filepath.Dir(dir), "outside.bin"), filepath.Join(dir, "link.bin")); err != nil {
		t.Fatal(err)
	}

	bad := []struct {
		name string
		kv   []string
		want string
	}{
		{"abs", []string{"location", filepath.Join(dir, "weights", "w.bin")}, "must be a relative path"},
		{"dotdot", []string{"location", "../outside.bin"}, "must be a relative path"},
		{"dotdot-inner", []string{"location", "weights/../../outside.bin"}, "must be a relative path"},
		{"symlink", []string{"location", "link.bin"}, "external data"},
		{"missing", []string{"location", "nope.bin"}, "nope.bin"},
		{"nolocation", []string{"offset", "0"}, "without a location"},
		{"offset", []string{"location", "weights/w.bin", "offset", "18"}, "beyond its size"},
		{"hugeoffset", []string{"location", "weights/w.bin", "offset", "9223372036854775807"}, "beyond its size"},
		{"negoffset", []string{"location", "weights/w.bin", "offset", "-1"}, "bad offset"},
		{"length", []string{"location", "weights/w.bin", "length", "4"}, "length 4"},
		{"badlength", []string{"location", "weights/w.bin", "length", "x"}, "bad length"},
		{"dir", []string{"location", "weights"}, "not a regular file"},
	}
	for _, c := range bad {
		p := write(c.name+".onnx", ext(c.kv...)...)
		_, err := Load(p)
		wantErr(t, c.name, err, p, `graph "g"`, `tensor "w"`, c.want)
	}
	// Decode without a base directory refuses external data.
	data, _ := os.ReadFile(filepath.Join(dir, "ok.onnx"))
	_, err = Decode(data, "")
	wantErr(t, "no base dir", err, "no base directory")
}

func TestSequenceAndOptionalShared(t *testing.T) {
	needShared(t)
	read := func(p string) []byte {
		b, err := os.ReadFile(filepath.Join(sharedDir, "onnx-node", p))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if _, err := ReadSequenceFile(filepath.Join(sharedDir, "onnx-node", "test_identity_sequence/test_data_set_0/input_0.pb")); err != nil {
		t.Error(err)
	}
	if o, err := ReadOptionalFile(filepath.Join(sharedDir, "onnx-node", "test_identity_opt/test_data_set_0/output_0.pb")); err != nil || o.Empty() {
		t.Errorf("%+v %v", o, err)
	}
	_, err := ReadSequenceFile(filepath.Join(sharedDir, "onnx-node", "test_abs/test_data_set_0/input_0.pb"))
	wantErr(t, "tensor file as sequence", err, "test_abs")
	seq, err := DecodeSequence(read("test_split_to_sequence_2/test_data_set_0/output_0.pb"))
	if err != nil {
		t.Fatal(err)
	}
	if len(seq) < 2 || seq[0].DType != ir.Float32 {
		t.Errorf("sequence %v", seq)
	}
	o, err := DecodeOptional(read("test_identity_opt/test_data_set_0/input_0.pb"))
	if err != nil {
		t.Fatal(err)
	}
	if o.Empty() || !o.IsSequence || len(o.Sequence) == 0 {
		t.Errorf("optional %+v", o)
	}
}

func TestSequenceAndOptional(t *testing.T) {
	// Hand-made: an empty optional, a tensor optional, and unsupported kinds.
	if o, err := DecodeOptional(fVarint(containerElemType, elemTensor)); err != nil || !o.Empty() {
		t.Errorf("empty optional: %+v %v", o, err)
	}
	x := tensorProto("x", 7, []int64{1}, packedVarints(tensorInt64Data, 5))
	if o, err := DecodeOptional(cat(fVarint(containerElemType, elemTensor), fBytes(containerTensor, x))); err != nil || o.Tensor.I64()[0] != 5 {
		t.Errorf("tensor optional: %+v %v", o, err)
	}
	_, err := DecodeSequence(cat(fStr(containerName, "s"), fVarint(containerElemType, elemMap), fBytes(containerMap, nil)))
	wantErr(t, "seq of map", err, `sequence "s"`, "map values are unsupported")
	_, err = DecodeOptional(cat(fVarint(containerElemType, elemOptional), fBytes(containerOptional, nil)))
	wantErr(t, "opt of opt", err, "optional values are unsupported")
	_, err = DecodeSequence(cat(fVarint(containerElemType, elemTensor), fBytes(containerTensor, tensorProto("bad", 1, []int64{2}))))
	wantErr(t, "seq bad elem", err, "element 0", `tensor "bad"`, "no data")
}
