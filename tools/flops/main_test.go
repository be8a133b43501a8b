package main

import (
	"os"
	"testing"

	"github.com/kilnml/kiln/onnx"
)

// TestSimpleCNN: the MACs of the seed's CNN, counted by hand from its
// layers: conv1 26·26·32·(1·3·3), conv2 11·11·64·(32·3·3), fc1 1600·128,
// fc2 128·10, per image.
func TestSimpleCNN(t *testing.T) {
	const path = "../../../shared/models/bench/simplecnn.fp32.onnx"
	if _, err := os.Stat(path); err != nil {
		t.Skip("../shared not present:", err)
	}
	m, err := onnx.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	per, err := Count(m, 3)
	if err != nil {
		t.Fatal(err)
	}
	conv := int64(26*26*32*9 + 11*11*64*288)
	gemm := int64(1600*128 + 128*10)
	if per["Conv"] != 3*conv || per["Gemm"]+per["MatMul"] != 3*gemm {
		t.Errorf("batch 3: %v, want Conv %d, Gemm/MatMul %d", per, 3*conv, 3*gemm)
	}
}
