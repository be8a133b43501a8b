package datasrc

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/onnx"
	"github.com/kilnml/kiln/tensorio"
)

func input(batch ir.Dim) []*ir.ValueInfo {
	return []*ir.ValueInfo{{Name: "x", Type: ir.TensorType(ir.Float32, ir.Shape{batch, ir.D(2), ir.D(3)})}}
}

func seq(n int, start float32) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = start + float32(i)
	}
	return v
}

func drain(t *testing.T, s *Source) []*ir.Tensor {
	var out []*ir.Tensor
	for {
		b, err := s.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b["x"])
	}
}

func TestFolderRebatches(t *testing.T) {
	dir := t.TempDir()
	// a batch of 3 samples (npy), one sample (pb), a batch of 2 (npz)
	if err := tensorio.WriteNPY(filepath.Join(dir, "a.npy"), ir.FromFloat32s([]int64{3, 2, 3}, seq(18, 0))); err != nil {
		t.Fatal(err)
	}
	if err := onnx.WriteTensorFile(filepath.Join(dir, "b.pb"), ir.FromFloat32s([]int64{2, 3}, seq(6, 18))); err != nil {
		t.Fatal(err)
	}
	z := ir.FromFloat32s([]int64{2, 2, 3}, seq(12, 24))
	z.Name = "x"
	if err := tensorio.WriteNPZ(filepath.Join(dir, "c.npz"), []*ir.Tensor{z}, false); err != nil {
		t.Fatal(err)
	}
	s, err := Open(dir, input(ir.Sym("N")), Options{BatchSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	bs := drain(t, s)
	if len(bs) != 2 || bs[0].Dims[0] != 4 || bs[1].Dims[0] != 2 {
		t.Fatalf("batches %v", bs)
	}
	if bs[1].F32()[11] != 35 || bs[0].F32()[0] != 0 || bs[0].F32()[23] != 23 {
		t.Errorf("data out of order: %v %v", bs[0].F32(), bs[1].F32())
	}
	// A fixed batch of 4 drops the partial batch.
	s, _ = Open(dir, input(ir.D(4)), Options{BatchSize: 64})
	if bs := drain(t, s); len(bs) != 1 {
		t.Errorf("fixed batch: %d batches", len(bs))
	}
	s, _ = Open(dir, input(ir.Sym("N")), Options{BatchSize: 1, MaxBatches: 3})
	if bs := drain(t, s); len(bs) != 3 {
		t.Errorf("max batches: %d", len(bs))
	}
}

func TestRawFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data.bin")
	x := ir.FromFloat32s([]int64{5, 2, 3}, seq(30, 0))
	os.WriteFile(path, x.Data, 0o644)
	s, err := Open(path, input(ir.Sym("N")), Options{BatchSize: 2, Shape: "2x3"})
	if err != nil {
		t.Fatal(err)
	}
	if bs := drain(t, s); len(bs) != 3 || bs[2].Dims[0] != 1 || bs[2].F32()[0] != 24 {
		t.Fatalf("%v", bs)
	}
	os.WriteFile(path, x.Data[:10], 0o644)
	if _, err := Open(path, input(ir.Sym("N")), Options{}); err == nil || !strings.Contains(err.Error(), "not a whole number") {
		t.Errorf("ragged raw file: %v", err)
	}
	if _, err := Open(path, input(ir.Sym("N")), Options{Shape: "4x4"}); err == nil {
		t.Error("wrong --shape accepted")
	}
}

func TestBadSources(t *testing.T) {
	dir := t.TempDir()
	tensorio.WriteNPY(filepath.Join(dir, "a.npy"), ir.FromFloat32s([]int64{2, 2, 4}, seq(16, 0)))
	s, err := Open(dir, input(ir.Sym("N")), Options{})
	if err == nil {
		_, err = s.Next()
	}
	if err == nil || !strings.Contains(err.Error(), "does not fit input") {
		t.Errorf("wrong shape: %v", err)
	}
	tensorio.WriteNPY(filepath.Join(dir, "a.npy"), ir.FromInt64s(ir.Int64, []int64{1, 2, 3}, make([]int64, 6)))
	s, _ = Open(dir, input(ir.Sym("N")), Options{})
	if _, err := s.Next(); err == nil || !strings.Contains(err.Error(), "int64") {
		t.Errorf("wrong dtype: %v", err)
	}
	if _, err := Open(t.TempDir(), input(ir.Sym("N")), Options{}); err == nil || !strings.Contains(err.Error(), "no .npy") {
		t.Errorf("empty folder: %v", err)
	}
	if _, err := Open("mnist", input(ir.Sym("N")), Options{}); err == nil || !strings.Contains(err.Error(), "784") {
		t.Errorf("mnist for a non-mnist input: %v", err)
	}
}

func TestMNIST(t *testing.T) {
	in := []*ir.ValueInfo{{Name: "input", Type: ir.TensorType(ir.Float32, ir.Shape{ir.Sym("batch"), ir.D(1), ir.D(28), ir.D(28)})}}
	s, err := Open("mnist:test", in, Options{BatchSize: 100, MaxBatches: 2})
	if err != nil {
		t.Skipf("MNIST not available: %v", err)
	}
	b, err := s.Next()
	if err != nil {
		t.Fatal(err)
	}
	if b["input"].Dims[0] != 100 || len(s.Labels()) != 100 || s.Labels()[0] != 7 {
		t.Errorf("dims %v, first label %v", b["input"].Dims, s.Labels()[:1])
	}
	raw, _ := Open("mnist-raw:test", in, Options{BatchSize: 1})
	rb, _ := raw.Next()
	mx := float32(0)
	for _, v := range rb["input"].F32() {
		mx = max(mx, v)
	}
	if mx != 255 {
		t.Errorf("raw max %v", mx)
	}
}

// Rewind serves the same batches again, mid-way or after the end, for
// folders and raw files (SmoothQuant reads calibration data twice).
func TestRewind(t *testing.T) {
	dir := t.TempDir()
	if err := tensorio.WriteNPY(filepath.Join(dir, "a.npy"), ir.FromFloat32s([]int64{5, 2, 3}, seq(30, 0))); err != nil {
		t.Fatal(err)
	}
	raw := filepath.Join(t.TempDir(), "data.bin")
	os.WriteFile(raw, ir.FromFloat32s([]int64{5, 2, 3}, seq(30, 0)).Data, 0o644)
	for _, spec := range []string{dir, raw} {
		s, err := Open(spec, input(ir.Sym("N")), Options{BatchSize: 2, MaxBatches: 2, Shape: map[bool]string{true: "2x3"}[spec == raw]})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Next(); err != nil { // part-way
			t.Fatal(err)
		}
		if err := s.Rewind(); err != nil {
			t.Fatal(err)
		}
		first := drain(t, s)
		if err := s.Rewind(); err != nil {
			t.Fatal(err)
		}
		second := drain(t, s)
		if len(first) != 2 || len(second) != 2 || first[0].F32()[0] != 0 || second[1].F32()[11] != 23 {
			t.Errorf("%s: batches %v then %v", spec, first, second)
		}
	}
}

// An ONNX test-data folder (input_0.pb beside output_0.pb) serves its
// inputs only: the expected output is not a sample.
func TestONNXTestDataFolderServesInputs(t *testing.T) {
	dir := t.TempDir()
	if err := onnx.WriteTensorFile(filepath.Join(dir, "input_0.pb"), ir.FromFloat32s([]int64{1, 2, 3}, seq(6, 0))); err != nil {
		t.Fatal(err)
	}
	if err := onnx.WriteTensorFile(filepath.Join(dir, "output_0.pb"), ir.FromFloat32s([]int64{1, 10}, seq(10, 0))); err != nil {
		t.Fatal(err)
	}
	s, err := Open(dir, input(ir.Sym("N")), Options{BatchSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	bs := drain(t, s)
	if len(bs) != 1 || bs[0].F32()[5] != 5 {
		t.Fatalf("batches %v, want input_0.pb's one sample", bs)
	}
}
