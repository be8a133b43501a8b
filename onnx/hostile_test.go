package onnx

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

// allocated returns the bytes allocated while running fn.
func allocated(fn func()) uint64 {
	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)
	fn()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

func TestHostileModels(t *testing.T) {
	goodTensor := tensorProto("t", 1, []int64{1}, packedFloats(tensorFloatData, 1))
	cases := []struct {
		name  string
		data  []byte
		parts []string
	}{
		{"empty", nil, []string{"no graph"}},
		{"not protobuf", []byte("hello, world"), []string{"field"}},
		{"field number zero", []byte{0x00, 0x01}, []string{"tag"}},
		{"graph as varint", fVarint(modelGraph, 1), []string{"graph", "wire type varint, want bytes"}},
		{"ir_version as bytes", cat(fStr(modelIRVersion, "x"), modelProto()), []string{"ir_version", "wire type bytes"}},
		{"length beyond buffer", cat(protowire.AppendTag(nil, modelGraph, protowire.BytesType), []byte{0xE8, 0x07, 1, 2, 3}), []string{"field 7"}},
		{"huge length", cat(protowire.AppendTag(nil, modelGraph, protowire.BytesType), protowire.AppendVarint(nil, 1<<62)), []string{"field 7"}},
		{"truncated varint", []byte{0x08, 0xFF, 0xFF}, []string{"field 1"}},
		{"end group", protowire.AppendTag(nil, 3, protowire.EndGroupType), []string{"wire type"}},
		{"wire type 7", []byte{0x0F}, []string{"unexpected wire type"}},
		{"node name wrong type", modelProto(fStr(graphName, "g"), fBytes(graphNode, cat(fStr(nodeOpType, "Relu"), fVarint(nodeName, 3)))),
			[]string{`graph "g"`, "node #0", "(Relu)", "field name"}},
		{"bad initializer", modelProto(fStr(graphName, "g"), fBytes(graphInitializer, tensorProto("w", 1, []int64{4}, fBytes(tensorRawData, []byte{1, 2, 3})))),
			[]string{`graph "g"`, "initializer", `tensor "w"`, "raw_data has 3 bytes", "needs 16"}},
		{"constant with bad tensor", modelProto(constantNode("c1", tensorProto("v", 1, []int64{2}, packedFloats(tensorFloatData, 1))), fStr(graphName, "main")),
			[]string{`graph "main"`, `node #0 "c1" (Constant)`, `attribute "value"`, `tensor "v"`, "float_data has 1 values", "needs 2"}},
		{"dims overflow", modelProto(fStr(graphName, "g"), fBytes(graphInitializer, tensorProto("big", 1, []int64{1 << 40, 1 << 40}, fBytes(tensorRawData, make([]byte, 4))))),
			[]string{`tensor "big"`, "overflow"}},
		{"negative dim", modelProto(fBytes(graphInitializer, tensorProto("neg", 1, []int64{-3}))), []string{`tensor "neg"`, "negative dimension"}},
		{"segment", modelProto(fBytes(graphInitializer, tensorProto("seg", 1, []int64{1}, fBytes(tensorSegment, nil)))),
			[]string{`tensor "seg"`, "segmented tensors unsupported"}},
		{"unknown dtype", modelProto(fBytes(graphInitializer, tensorProto("u", 99, []int64{1}))), []string{`tensor "u"`, "data_type 99"}},
		{"undefined dtype", modelProto(fBytes(graphInitializer, tensorProto("u", 0, []int64{1}))), []string{`tensor "u"`, "data_type 0"}},
		{"two data fields", modelProto(fBytes(graphInitializer, tensorProto("two", 1, []int64{1}, packedFloats(tensorFloatData, 1), fBytes(tensorRawData, make([]byte, 4))))),
			[]string{`tensor "two"`, "several fields", "float_data", "raw_data"}},
		{"wrong typed field", modelProto(fBytes(graphInitializer, tensorProto("f", 1, []int64{1}, packedVarints(tensorInt64Data, 1)))),
			[]string{`tensor "f"`, "float32 tensor has int64_data"}},
		{"strings for float", modelProto(fBytes(graphInitializer, tensorProto("f", 1, []int64{1}, fStr(tensorStringData, "x")))),
			[]string{`tensor "f"`, "string_data"}},
		{"string count", modelProto(fBytes(graphInitializer, tensorProto("s", 8, []int64{3}, fStr(tensorStringData, "x")))),
			[]string{`tensor "s"`, "1 strings for dims [3]"}},
		{"no data", modelProto(fBytes(graphInitializer, tensorProto("nd", 7, []int64{2, 2}))), []string{`tensor "nd"`, "no data", "4 elements"}},
		{"packed float length", modelProto(fBytes(graphInitializer, tensorProto("pf", 1, []int64{1}, fBytes(tensorFloatData, []byte{1, 2, 3, 4, 5})))),
			[]string{`tensor "pf"`, "float_data", "not a multiple of 4"}},
		{"packed varint truncated", modelProto(fBytes(graphInitializer, tensorProto("pv", 7, []int64{1}, fBytes(tensorInt64Data, []byte{0x80})))),
			[]string{`tensor "pv"`, "int64_data", "truncated"}},
		{"float_data as varint", modelProto(fBytes(graphInitializer, tensorProto("fv", 1, []int64{1}, fVarint(tensorFloatData, 1)))),
			[]string{`tensor "fv"`, "float_data", "wire type varint"}},
		{"data_location unknown", modelProto(fBytes(graphInitializer, tensorProto("dl", 1, []int64{1}, fVarint(tensorDataLocation, 7)))),
			[]string{`tensor "dl"`, "data_location 7"}},
		{"attribute ints wrong wire", modelProto(fStr(graphName, "g"), fBytes(graphNode, cat(fStr(nodeName, "n"), fBytes(nodeAttribute, cat(fStr(attrName, "axes"), fFixed64(attrInts, 1)))))),
			[]string{`graph "g"`, `node #0 "n"`, `attribute "axes"`, "ints", "wire type fixed64"}},
		{"attribute f as varint", modelProto(fBytes(graphNode, fBytes(nodeAttribute, cat(fStr(attrName, "alpha"), fVarint(attrF, 1))))),
			[]string{`attribute "alpha"`, "field f (2)"}},
		{"input type wrong", modelProto(fBytes(graphInput, cat(fStr(valueInfoName, "x"), fVarint(valueInfoType, 1)))),
			[]string{`input "x"`, "field type"}},
		{"dim_value as bytes", modelProto(fBytes(graphOutput, cat(fStr(valueInfoName, "y"), fBytes(valueInfoType,
			fBytes(typeTensor, fBytes(tensorTypeShape, fBytes(shapeDim, fStr(dimValue, "3")))))))),
			[]string{`output "y"`, "tensor_type", "shape", "dim 0", "dim_value"}},
		{"opset version as bytes", cat(fBytes(modelOpsetImport, fStr(opsetVersion, "x")), modelProto()), []string{"opset_import", "version"}},
		{"truncated nested", modelProto(fBytes(graphNode, fBytes(nodeAttribute, []byte{0x0A, 0x09, 'a'}))), []string{"node #0", "attribute", "field 1"}},
		{"tensor in sequence attr", modelProto(fBytes(graphNode, fBytes(nodeAttribute, cat(fStr(attrName, "ts"), fBytes(attrTensors, goodTensor), fBytes(attrTensors, tensorProto("bad", 1, []int64{3})))))),
			[]string{`attribute "ts"`, `tensor "bad"`}},
	}
	for _, c := range cases {
		m, err := Decode(c.data, "")
		if m != nil {
			t.Errorf("%s: got a model along with error %v", c.name, err)
		}
		wantErr(t, c.name, err, c.parts...)
	}
}

func TestHostileNesting(t *testing.T) {
	// Graph -> node -> attribute g -> graph ... deeper than allowed.
	nest := func(depth int) []byte {
		g := fStr(graphName, "leaf")
		for range depth {
			g = cat(fBytes(graphNode, cat(fStr(nodeOpType, "If"), fBytes(nodeAttribute, cat(fStr(attrName, "then_branch"), fVarint(attrType, 5), fBytes(attrG, g))))), fStr(graphName, "b"))
		}
		return cat(fVarint(modelIRVersion, 8), fBytes(modelGraph, g))
	}
	if _, err := Decode(nest(maxDepth-1), ""); err != nil {
		t.Errorf("%d nested graphs: %v", maxDepth, err)
	}
	_, err := Decode(nest(maxDepth), "")
	wantErr(t, "deep graphs", err, "nested more than 64", `attribute "then_branch"`)
	_, err = Decode(nest(1000), "")
	wantErr(t, "very deep graphs", err, "nested more than 64")

	// Sequence of sequence of ... types.
	ty := fBytes(typeTensor, fVarint(tensorTypeElemType, 1))
	for range 100 {
		ty = fBytes(typeSequence, fBytes(seqElemType, ty))
	}
	_, err = Decode(modelProto(fBytes(graphInput, cat(fStr(valueInfoName, "x"), fBytes(valueInfoType, ty)))), "")
	wantErr(t, "deep types", err, `input "x"`, "types nested more than 64")
}

// TestHostileSizes checks that declared sizes are checked against the bytes
// present before anything is allocated.
func TestHostileSizes(t *testing.T) {
	cases := []struct {
		name  string
		proto []byte
		parts []string
	}{
		{"raw claims 2^32 floats", tensorProto("r", 1, []int64{1 << 32}, fBytes(tensorRawData, make([]byte, 16))), []string{`tensor "r"`, "raw_data has 16 bytes"}},
		{"float_data claims 2^34", tensorProto("f", 1, []int64{1 << 17, 1 << 17}, packedFloats(tensorFloatData, 1, 2)), []string{`tensor "f"`, "float_data has 2 values"}},
		{"int32_data claims 2^40 int4", tensorProto("q", 22, []int64{1 << 40}, packedVarints(tensorInt32Data, 1)), []string{`tensor "q"`, "int32_data has 1 values"}},
		{"strings claim 2^30", tensorProto("s", 8, []int64{1 << 30}, fStr(tensorStringData, "x")), []string{`tensor "s"`, "1 strings"}},
		{"complex128 2^58", tensorProto("c", 15, []int64{1 << 58}, fBytes(tensorRawData, make([]byte, 16))), []string{`tensor "c"`, "too many"}},
		{"external 2^40", tensorProto("e", 1, []int64{1 << 40}, fBytes(tensorExternalData, cat(fStr(pairKey, "location"), fStr(pairValue, "x.bin"))), fVarint(tensorDataLocation, 1)),
			[]string{`tensor "e"`, "no base directory"}},
	}
	for _, c := range cases {
		var err error
		n := allocated(func() { _, err = DecodeTensor(c.proto) })
		wantErr(t, c.name, err, c.parts...)
		if n > 1<<20 {
			t.Errorf("%s: allocated %d bytes for a %d-byte input", c.name, n, len(c.proto))
		}
	}

	// External data claiming far more than the file holds.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "x.bin"), make([]byte, 64), 0o644); err != nil {
		t.Fatal(err)
	}
	ext := tensorProto("e", 1, []int64{1 << 40}, fBytes(tensorExternalData, cat(fStr(pairKey, "location"), fStr(pairValue, "x.bin"))), fVarint(tensorDataLocation, 1))
	p := filepath.Join(dir, "m.onnx")
	if err := os.WriteFile(p, modelProto(fBytes(graphInitializer, ext)), 0o644); err != nil {
		t.Fatal(err)
	}
	var err error
	n := allocated(func() { _, err = Load(p) })
	wantErr(t, "external claim", err, p, `tensor "e"`, "beyond its size 64")
	if n > 1<<20 {
		t.Errorf("external claim: allocated %d bytes", n)
	}
}

// TestHostileCounts feeds many tiny repeated fields and checks that memory
// stays within a small multiple of the input: the size of the ir struct each
// 2-byte message becomes (an Attribute is ~320 bytes), and a few bytes per
// input byte for tensor data.
func TestHostileCounts(t *testing.T) {
	const count = 200000
	cases := []struct {
		name   string
		data   []byte
		tensor bool
		ratio  int
	}{
		{"node inputs", modelProto(fBytes(graphNode, []byte(strings.Repeat("\x0a\x00", count)))), false, 64},
		{"empty nodes", modelProto([]byte(strings.Repeat("\x0a\x00", count))), false, 100},
		{"empty attributes", modelProto(fBytes(graphNode, []byte(strings.Repeat("\x2a\x00", count)))), false, 200},
		{"unpacked attribute ints", modelProto(fBytes(graphNode, fBytes(nodeAttribute, []byte(strings.Repeat("\x40\x01", count))))), false, 32},
		{"opsets", cat([]byte(strings.Repeat("\x42\x00", count)), modelProto()), false, 100},
		{"unknown fields", cat([]byte(strings.Repeat("\x98\x06\x01", count)), modelProto()), false, 2},
		{"dims", cat(packedVarints(tensorDims, make([]int64, count)...), fVarint(tensorDataType, 1)), true, 32},
		{"unpacked int64_data", cat(fVarint(tensorDataType, 7), packedVarints(tensorDims, count), []byte(strings.Repeat("\x38\x01", count))), true, 8},
		{"unpacked float_data", cat(fVarint(tensorDataType, 1), packedVarints(tensorDims, count), []byte(strings.Repeat("\x25\x00\x00\x80\x3f", count))), true, 2},
		{"empty strings", cat(fVarint(tensorDataType, 8), packedVarints(tensorDims, count), []byte(strings.Repeat("\x32\x00", count))), true, 16},
	}
	for _, c := range cases {
		var err error
		n := allocated(func() {
			if c.tensor {
				_, err = DecodeTensor(c.data)
			} else {
				_, err = Decode(c.data, "")
			}
		})
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
		if n > uint64(c.ratio*len(c.data)) {
			t.Errorf("%s: allocated %d bytes for %d input bytes (%.0fx, want <= %dx)", c.name, n, len(c.data), float64(n)/float64(len(c.data)), c.ratio)
		}
	}
}

func TestLoadErrorsNamePath(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "bad.onnx")
	if err := os.WriteFile(p, modelProto(fStr(graphName, "g"), fBytes(graphInitializer, tensorProto("w", 1, []int64{3}))), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(p)
	wantErr(t, "Load", err, p+": ", `graph "g"`, `tensor "w"`)
	_, err = Load(filepath.Join(dir, "missing.onnx"))
	wantErr(t, "missing", err, "missing.onnx")
	tp := filepath.Join(dir, "bad.pb")
	if err := os.WriteFile(tp, tensorProto("x", 1, []int64{2}, fBytes(tensorRawData, []byte{1})), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = ReadTensorFile(tp)
	wantErr(t, "ReadTensorFile", err, tp+": ", `tensor "x"`, "raw_data has 1 bytes")
}

// TestTruncatedSharedFiles cuts real files at many points: decoding must
// fail cleanly or succeed, never panic, and a cut inside the graph must fail.
func TestTruncatedSharedFiles(t *testing.T) {
	needShared(t)
	for _, p := range []string{"models/mnist-8-zoo/model.onnx", "onnx-node/test_constant/model.onnx", "onnx-node/test_conv_with_autopad_same/model.onnx", "models/bench/simplecnn.int8.qdq.onnx"} {
		data, err := os.ReadFile(filepath.Join(sharedDir, p))
		if err != nil {
			t.Fatal(err)
		}
		step := max(1, len(data)/300)
		for cut := 0; cut < len(data); cut += step {
			m, err := Decode(data[:cut], "")
			if err == nil && m.Graph == nil {
				t.Errorf("%s cut at %d: nil graph without error", p, cut)
			}
		}
	}
	data, _ := os.ReadFile(filepath.Join(sharedDir, "models/mnist-8-zoo/model.onnx"))
	_, err := Decode(data[:len(data)/2], "")
	wantErr(t, "half mnist", err, "field")
}

func TestGroupsRejectedForKnownFields(t *testing.T) {
	group := func(num protowire.Number) []byte {
		b := protowire.AppendTag(nil, num, protowire.StartGroupType)
		b = append(b, fVarint(1, 1)...)
		return protowire.AppendTag(b, num, protowire.EndGroupType)
	}
	// An unknown field as a group is skipped.
	if _, err := Decode(cat(group(99), modelProto()), ""); err != nil {
		t.Errorf("unknown group: %v", err)
	}
	_, err := Decode(cat(modelProto(fBytes(graphInitializer, tensorProto("g", 1, []int64{1}, group(tensorFloatData))))), "")
	wantErr(t, "float_data group", err, `tensor "g"`, "float_data", "wire type group")
	_, err = Decode(modelProto(fBytes(graphNode, group(nodeName))), "")
	wantErr(t, "name group", err, "node #0", "field name (3)", "wire type group")
	_, err = Decode(cat(protowire.AppendTag(nil, 5, protowire.StartGroupType), modelProto()), "")
	wantErr(t, "unterminated group", err, "field 5")
}
