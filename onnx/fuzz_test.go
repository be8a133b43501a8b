package onnx

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/kilnml/kiln/ir"
)

// Small shared files used as fuzz seeds (skipped quietly where absent; the
// hand-made seeds below always apply).
var (
	fuzzModelSeeds = []string{
		"onnx-node/test_constant/model.onnx",
		"onnx-node/test_dequantizelinear_int4/model.onnx",
		"onnx-node/test_identity_opt/model.onnx",
		"onnx-node/test_split_to_sequence_2/model.onnx",
		"onnx-node/test_conv_with_autopad_same/model.onnx",
		"models/onnx-backend-simple/test_strnorm_model_monday_casesensintive_lower/model.onnx",
	}
	fuzzTensorSeeds = []string{
		"onnx-node/test_dequantizelinear_int4/test_data_set_0/input_0.pb",
		"onnx-node/test_quantizelinear_int2/test_data_set_0/output_0.pb",
		"onnx-node/test_cast_FLOAT_to_STRING/test_data_set_0/output_0.pb",
		"onnx-node/test_identity_sequence/test_data_set_0/input_0.pb",
		"onnx-node/test_identity_opt/test_data_set_0/input_0.pb",
		"onnx-node/test_abs/test_data_set_0/input_0.pb",
	}
)

func addSeeds(f *testing.F, paths []string, extra ...[]byte) {
	for _, p := range paths {
		data, err := os.ReadFile(filepath.Join(sharedDir, p))
		if err != nil {
			continue
		}
		if len(data) > 4096 {
			data = data[:4096] // keep seeds small: a cut file is a good hostile seed too
		}
		extra = append(extra, data)
	}
	for _, d := range extra {
		f.Add(d)
		f.Add(d[:len(d)/2])
		f.Add(d[:len(d)*9/10])
	}
}

// allocBound is what decoding may allocate for n input bytes: the largest
// ir struct (an Attribute, ~320 bytes) per 2-byte empty message, with room.
func allocBound(n int) uint64 { return uint64(512*n + 1<<20) }

func FuzzDecodeModel(f *testing.F) {
	rich, err := Encode(richModel())
	if err != nil {
		f.Fatal(err)
	}
	addSeeds(f, fuzzModelSeeds, rich,
		modelProto(constantNode("c", tensorProto("v", 22, []int64{3}, packedVarints(tensorInt32Data, 1, 2)))),
		modelProto(fBytes(graphInitializer, tensorProto("w", 1, []int64{2}, packedFloats(tensorFloatData, 1, 2)))))
	f.Fuzz(func(t *testing.T, data []byte) {
		var m *ir.Model
		var err error
		n := allocated(func() { m, err = Decode(data, "") })
		if n > allocBound(len(data)) {
			t.Fatalf("decoding %d bytes allocated %d", len(data), n)
		}
		if err != nil {
			if m != nil {
				t.Fatal("model returned with an error")
			}
			return
		}
		enc, err := Encode(m)
		if err != nil {
			t.Fatalf("Encode of a decoded model: %v", err)
		}
		back, err := Decode(enc, "")
		if err != nil {
			t.Fatalf("Decode of an encoded model: %v", err)
		}
		if d := diff(m, back); d != "" {
			t.Fatalf("round trip changed the model at %s", d)
		}
		enc2, err := Encode(back)
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("Encode not idempotent: %v", err)
		}
	})
}

func FuzzDecodeTensor(f *testing.F) {
	addSeeds(f, fuzzTensorSeeds,
		tensorProto("a", 1, []int64{2, 2}, packedFloats(tensorFloatData, 1, -2, 3.5, 0)),
		tensorProto("b", 21, []int64{3}, packedVarints(tensorInt32Data, 1, 15, 9)),
		tensorProto("c", 8, []int64{2}, fStr(tensorStringData, "x"), fStr(tensorStringData, "")),
		tensorProto("d", 11, []int64{1}, fFixed64(tensorDoubleData, 42)),
		cat(fVarint(containerElemType, elemTensor), fBytes(containerTensor, tensorProto("s", 7, []int64{1}, packedVarints(tensorInt64Data, 5)))))
	f.Fuzz(func(t *testing.T, data []byte) {
		// The same bytes as a sequence or an optional must not crash either.
		_, _ = DecodeSequence(data)
		_, _ = DecodeOptional(data)
		var tt *ir.Tensor
		var err error
		n := allocated(func() { tt, err = DecodeTensor(data) })
		if n > allocBound(len(data)) {
			t.Fatalf("decoding %d bytes allocated %d", len(data), n)
		}
		if err != nil {
			if tt != nil {
				t.Fatal("tensor returned with an error")
			}
			return
		}
		if err := tt.Check(); err != nil {
			t.Fatalf("decoded tensor fails Check: %v", err)
		}
		if len(tt.Data) > 0 && uintptrOf(tt.Data)%8 != 0 {
			t.Fatal("data not aligned")
		}
		enc, err := EncodeTensor(tt)
		if err != nil {
			t.Fatalf("EncodeTensor: %v", err)
		}
		back, err := DecodeTensor(enc)
		if err != nil {
			t.Fatalf("DecodeTensor(EncodeTensor): %v", err)
		}
		if d := diff(tt, back); d != "" {
			t.Fatalf("round trip differs at %s", d)
		}
		enc2, _ := EncodeTensor(back)
		if !bytes.Equal(enc, enc2) {
			t.Fatal("EncodeTensor not idempotent")
		}
	})
}
