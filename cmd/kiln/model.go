package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/onnx"
)

// sourceModel is an ONNX model with the bytes it was read from: the builder
// and the calibration sidecar hash the file, not the decoded graph.
type sourceModel struct {
	Path  string
	Bytes []byte
	Model *ir.Model
	SHA   string // sha256 of Bytes, hex
}

// loadSource reads and decodes an ONNX file once, keeping its bytes.
func loadSource(path string) (*sourceModel, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m, err := onnx.Decode(data, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	m.Path = path
	sum := sha256.Sum256(data)
	return &sourceModel{Path: path, Bytes: data, Model: m, SHA: hex.EncodeToString(sum[:])}, nil
}
