package onnx

import (
	"os"
	"path/filepath"
	"testing"
)

func benchModel(b *testing.B) []byte {
	needShared(b)
	data, err := os.ReadFile(filepath.Join(sharedDir, "models", "bench", "mobilenetv2.fp32.onnx"))
	if err != nil {
		b.Fatal(err)
	}
	return data
}

func BenchmarkDecode(b *testing.B) {
	data := benchModel(b)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Decode(data, ""); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncode(b *testing.B) {
	m, err := Decode(benchModel(b), "")
	if err != nil {
		b.Fatal(err)
	}
	var n int
	for b.Loop() {
		enc, err := Encode(m)
		if err != nil {
			b.Fatal(err)
		}
		n = len(enc)
	}
	b.SetBytes(int64(n))
}
