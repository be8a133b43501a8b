package train

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/kilnml/kiln/train/safetensors"
)

// SaveCheckpoint writes the model's parameters to a safetensors file (F32,
// PyTorch's names and shapes, so torch.load_state_dict-style tools can read
// it), with metadata, through a temporary file and a rename.
func SaveCheckpoint(path string, model *Sequential, metadata map[string]string) error {
	f := &safetensors.File{Metadata: metadata}
	for _, p := range model.Params() {
		shape := make([]int64, len(p.T.Shape))
		for i, d := range p.T.Shape {
			shape[i] = int64(d)
		}
		data := make([]byte, 4*len(p.T.Data))
		for i, v := range p.T.Data {
			binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(v))
		}
		f.Tensors = append(f.Tensors, safetensors.Tensor{Name: p.Name, DType: "F32", Shape: shape, Data: data})
	}
	if err := safetensors.WriteFile(path, f); err != nil {
		return fmt.Errorf("saving checkpoint: %w", err)
	}
	return nil
}

// LoadCheckpoint reads a safetensors file into the model's parameters. Every
// parameter must be present with the same shape and dtype F32, and the file
// must hold nothing else; all mismatches are reported together and the model
// is left unchanged on error. It returns the file's metadata.
func LoadCheckpoint(path string, model *Sequential) (map[string]string, error) {
	f, err := safetensors.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("loading checkpoint: %w", err)
	}
	var problems []string
	params := model.Params()
	known := map[string]bool{}
	for _, p := range params {
		known[p.Name] = true
		t := f.Get(p.Name)
		if t == nil {
			problems = append(problems, fmt.Sprintf("missing tensor %q (want F32%v)", p.Name, p.T.Shape))
			continue
		}
		want := make([]int64, len(p.T.Shape))
		for i, d := range p.T.Shape {
			want[i] = int64(d)
		}
		if t.DType != "F32" || !slices.Equal(t.Shape, want) {
			problems = append(problems, fmt.Sprintf("tensor %q is %s%v, want F32%v", p.Name, t.DType, t.Shape, want))
		}
	}
	for _, t := range f.Tensors {
		if !known[t.Name] {
			problems = append(problems, fmt.Sprintf("unexpected tensor %q (%s%v)", t.Name, t.DType, t.Shape))
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("loading checkpoint %s: it does not match the model:\n  %s", path, strings.Join(problems, "\n  "))
	}
	for _, p := range params {
		data := f.Get(p.Name).Data
		for i := range p.T.Data {
			p.T.Data[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
		}
	}
	return f.Metadata, nil
}
