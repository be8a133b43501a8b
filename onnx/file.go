package onnx

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/kilnml/kiln/ir"
)

// Load reads an ONNX model file, resolving external tensor data relative to
// the file's directory, and sets m.Path. Errors start with the path.
func Load(path string) (*ir.Model, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m, err := Decode(data, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	m.Path = path
	return m, nil
}

// Save encodes m and writes it to path atomically: the bytes go to a
// temporary file in the same directory which is renamed over path only once
// complete, so a failure never leaves a half-written model.
func Save(path string, m *ir.Model) error {
	data, err := Encode(m)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return writeAtomic(path, data)
}

// ReadTensorFile reads a serialized TensorProto (ONNX test data such as
// input_0.pb). External data is resolved relative to the file's directory.
func ReadTensorFile(path string) (*ir.Tensor, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	d := &decoder{baseDir: filepath.Dir(path)}
	t, err := d.tensor(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// ReadSequenceFile reads a serialized SequenceProto of tensors (ONNX test
// data for sequence-typed values).
func ReadSequenceFile(path string) ([]*ir.Tensor, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	seq, err := DecodeSequence(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return seq, nil
}

// ReadOptionalFile reads a serialized OptionalProto (ONNX test data for
// optional-typed values).
func ReadOptionalFile(path string) (*Optional, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	o, err := DecodeOptional(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return o, nil
}

// WriteTensorFile writes t as a serialized TensorProto, atomically.
func WriteTensorFile(path string, t *ir.Tensor) error {
	data, err := EncodeTensor(t)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return writeAtomic(path, data)
}

func writeAtomic(path string, data []byte) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Chmod(0o644); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	// Make the rename itself durable where the platform allows it.
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
