package onnx

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kilnml/kiln/ir"
)

// TestRoundTripSharedModels loads every shared model, encodes it, decodes
// the result and checks that the model is unchanged (every tensor byte
// included) and that encoding is idempotent.
func TestRoundTripSharedModels(t *testing.T) {
	for _, path := range sharedModels(t) {
		m, err := Load(path)
		if err != nil {
			t.Errorf("Load: %v", err)
			continue
		}
		if m.Path != path || m.Graph == nil {
			t.Errorf("%s: Path %q, graph %v", path, m.Path, m.Graph != nil)
			continue
		}
		enc, err := Encode(m)
		if err != nil {
			t.Errorf("%s: Encode: %v", path, err)
			continue
		}
		m2, err := Decode(enc, filepath.Dir(path))
		if err != nil {
			t.Errorf("%s: Decode(Encode): %v", path, err)
			continue
		}
		m2.Path = m.Path
		if d := diff(m, m2); d != "" {
			t.Errorf("%s: round trip changed the model at %s", path, d)
			continue
		}
		enc2, err := Encode(m2)
		if err != nil {
			t.Errorf("%s: second Encode: %v", path, err)
			continue
		}
		if !bytes.Equal(enc, enc2) {
			t.Errorf("%s: Encode not idempotent (%d vs %d bytes)", path, len(enc), len(enc2))
		}
	}
}

// TestSharedTestData decodes every input_*.pb/output_*.pb next to the shared
// models, as a tensor, sequence or optional according to the graph's
// declared type, checks the tensors against the declared element type and
// shape, and round-trips each tensor through EncodeTensor.
func TestSharedTestData(t *testing.T) {
	var checked, tensors int
	for _, modelPath := range sharedModels(t) {
		dir := filepath.Dir(modelPath)
		pbs, _ := filepath.Glob(filepath.Join(dir, "test_data_set_*", "*.pb"))
		// Polygraphy's models keep ONNX Runtime's reference data in ortref/<model>/.
		stem := strings.TrimSuffix(filepath.Base(modelPath), ".onnx")
		ort, _ := filepath.Glob(filepath.Join(dir, "ortref", stem, "ortref_data_set_*", "*.pb"))
		pbs = append(pbs, ort...)
		if len(pbs) == 0 {
			continue
		}
		m, err := Load(modelPath)
		if err != nil {
			t.Errorf("Load: %v", err)
			continue
		}
		for _, pb := range pbs {
			var vi *ir.ValueInfo
			base := filepath.Base(pb)
			var idx int
			switch {
			case strings.HasPrefix(base, "input_"):
				if _, err := fmt.Sscanf(base, "input_%d.pb", &idx); err == nil && idx < len(m.Graph.RealInputs()) {
					vi = m.Graph.RealInputs()[idx]
				}
			case strings.HasPrefix(base, "output_"):
				if _, err := fmt.Sscanf(base, "output_%d.pb", &idx); err == nil && idx < len(m.Graph.Outputs) {
					vi = m.Graph.Outputs[idx]
				}
			}
			if vi == nil {
				t.Errorf("%s: no matching graph input/output", pb)
				continue
			}
			data, err := os.ReadFile(pb)
			if err != nil {
				t.Fatal(err)
			}
			checked++
			var ts []*ir.Tensor
			var elemType *ir.Type = vi.Type
			switch {
			case vi.Type != nil && vi.Type.Kind == ir.KindSequence:
				seq, err := DecodeSequence(data)
				if err != nil {
					t.Errorf("%s: %v", pb, err)
					continue
				}
				ts, elemType = seq, vi.Type.Elem
			case vi.Type != nil && vi.Type.Kind == ir.KindOptional:
				o, err := DecodeOptional(data)
				if err != nil {
					t.Errorf("%s: %v", pb, err)
					continue
				}
				elemType = vi.Type.Elem
				if o.Tensor != nil {
					ts = []*ir.Tensor{o.Tensor}
				}
				if o.IsSequence {
					ts = o.Sequence
					if elemType != nil {
						elemType = elemType.Elem
					}
				}
			default:
				tt, err := ReadTensorFile(pb)
				if err != nil {
					t.Errorf("%v", err)
					continue
				}
				ts = []*ir.Tensor{tt}
			}
			for _, tt := range ts {
				tensors++
				if err := tt.Check(); err != nil {
					t.Errorf("%s: %v", pb, err)
				}
				if elemType != nil && elemType.Kind == ir.KindTensor && elemType.DType != ir.Undefined {
					if tt.DType != elemType.DType {
						t.Errorf("%s: dtype %s, graph declares %s", pb, tt.DType, elemType.DType)
					}
					// (Polygraphy's residual_block declares an empty shape
					// for its 4-D output: only non-empty shapes are checked.)
					if elemType.HasShape && len(elemType.Shape) > 0 {
						if len(tt.Dims) != len(elemType.Shape) {
							t.Errorf("%s: dims %v, graph declares %v", pb, tt.Dims, elemType.Shape)
						} else {
							for i, d := range elemType.Shape {
								if d.Known() && d.Value != tt.Dims[i] {
									t.Errorf("%s: dims %v, graph declares %v", pb, tt.Dims, elemType.Shape)
									break
								}
							}
						}
					}
				}
				enc, err := EncodeTensor(tt)
				if err != nil {
					t.Errorf("%s: EncodeTensor: %v", pb, err)
					continue
				}
				back, err := DecodeTensor(enc)
				if err != nil {
					t.Errorf("%s: DecodeTensor(EncodeTensor): %v", pb, err)
					continue
				}
				if d := diff(tt, back); d != "" {
					t.Errorf("%s: tensor round trip differs at %s", pb, d)
				}
			}
		}
	}
	if checked < 2500 {
		t.Errorf("only %d test data files checked", checked)
	}
	t.Logf("%d test data files, %d tensors", checked, tensors)
}
