package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/onnx"
	"github.com/kilnml/kiln/tensorio"
)

func mnist(t *testing.T) (model string, set func(i int) string) {
	needShared(t)
	dir := filepath.Join(shared, "models", "mnist-8-zoo")
	return filepath.Join(dir, "model.onnx"), func(i int) string { return filepath.Join(dir, fmt.Sprintf("test_data_set_%d", i)) }
}

func TestRunMNISTTestSets(t *testing.T) {
	model, set := mnist(t)
	for i := 0; i < 3; i++ {
		code, out, errs := kiln(t, "run", model, "--inputs", set(i), "--compare", set(i))
		if code != 0 {
			t.Fatalf("test set %d: exit %d\n%s%s", i, code, out, errs)
		}
		for _, want := range []string{"Input3", "float32[1,1,28,28]", "Plus214_Output_0", "max abs", "PASS", "Run:"} {
			if !strings.Contains(out, want) {
				t.Errorf("test set %d: output lacks %q:\n%s", i, want, out)
			}
		}
	}
}

func TestRunWritesOutputs(t *testing.T) {
	model, set := mnist(t)
	dir := t.TempDir()
	if code, out, errs := kiln(t, "run", model, "--inputs", set(1), "--outputs", dir); code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	got, err := onnx.ReadTensorFile(filepath.Join(dir, "output_0.pb"))
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "Plus214_Output_0" || fmt.Sprint(got.Dims) != "[1 10]" {
		t.Fatalf("wrote %s", got)
	}
	// What we wrote must compare equal with itself through the CLI, with
	// zero tolerance.
	code, out, errs := kiln(t, "run", model, "--inputs", set(1), "--compare", dir, "--atol", "0", "--rtol", "0")
	if code != 0 || !strings.Contains(out, "max abs 0, max rel 0: PASS") {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
}

func TestRunCompareMismatch(t *testing.T) {
	model, set := mnist(t)
	dir := t.TempDir()
	want, err := onnx.ReadTensorFile(filepath.Join(set(0), "output_0.pb"))
	if err != nil {
		t.Fatal(err)
	}
	want.F32()[3] += 100
	if err := onnx.WriteTensorFile(filepath.Join(dir, "output_0.pb"), want); err != nil {
		t.Fatal(err)
	}
	code, out, errs := kiln(t, "run", model, "--inputs", set(0), "--compare", dir)
	if code != 1 || !strings.Contains(out, "FAIL: 1 of 10 elements differ (first at 3") ||
		!strings.Contains(errs, "1 of 1 output(s) differ") {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	// A tolerance wider than the change passes.
	if code, out, errs := kiln(t, "run", model, "--inputs", set(0), "--compare", dir, "--atol", "101"); code != 0 {
		t.Fatalf("--atol 101: exit %d\n%s%s", code, out, errs)
	}
	if code, _, errs := kiln(t, "run", model, "--inputs", set(0), "--compare", dir, "--rtol", "-1"); code != 2 {
		t.Fatalf("negative rtol: exit %d, %s", code, errs)
	}
}

func readInput(t *testing.T, dir string) *ir.Tensor {
	t.Helper()
	x, err := onnx.ReadTensorFile(filepath.Join(dir, "input_0.pb"))
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func TestRunRejectsWrongInputs(t *testing.T) {
	model, set := mnist(t)
	x := readInput(t, set(0))

	wrongShape := t.TempDir()
	y := ir.NewTensor(ir.Float32, []int64{1, 1, 28, 27})
	onnx.WriteTensorFile(filepath.Join(wrongShape, "input_0.pb"), y)

	wrongType := t.TempDir()
	z := ir.FromFloat64s(ir.Float64, x.Dims, x.Float64s())
	tensorio.WriteNPY(filepath.Join(wrongType, "Input3.npy"), z)

	cases := []struct {
		dir  string
		want []string
	}{
		{wrongShape, []string{`input "Input3"`, "[1 1 28 27]", "[1,1,28,28]", "input_0.pb"}},
		{wrongType, []string{`input "Input3"`, "float64", "float32", "Input3.npy"}},
		{t.TempDir(), []string{`input "Input3"`, "Input3.npy", "input_0.pb", "found neither"}},
	}
	for _, c := range cases {
		code, _, errs := kiln(t, "run", model, "--inputs", c.dir)
		if code != 1 {
			t.Errorf("%v: exit %d, want 1", c.want, code)
		}
		for _, w := range c.want {
			if !strings.Contains(errs, w) {
				t.Errorf("error lacks %q: %s", w, errs)
			}
		}
	}
}

func TestRunNumPyInputs(t *testing.T) {
	model, set := mnist(t)
	x := readInput(t, set(2))
	dir := t.TempDir()
	if err := tensorio.WriteNPY(filepath.Join(dir, "Input3.npy"), x); err != nil {
		t.Fatal(err)
	}
	code, out, errs := kiln(t, "run", model, "--inputs", dir, "--compare", set(2))
	if code != 0 || !strings.Contains(out, "Input3.npy") || !strings.Contains(out, "PASS") {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	// The same input from an .npz archive.
	x.Name = "Input3"
	npz := filepath.Join(t.TempDir(), "inputs.npz")
	if err := tensorio.WriteNPZ(npz, []*ir.Tensor{x}, true); err != nil {
		t.Fatal(err)
	}
	code, out, errs = kiln(t, "run", model, "--inputs", npz, "--compare", set(2))
	if code != 0 || !strings.Contains(out, "PASS") {
		t.Fatalf("npz: exit %d\n%s%s", code, out, errs)
	}
}

func TestRunBadNPY(t *testing.T) {
	model, _ := mnist(t)
	dir := t.TempDir()
	p := filepath.Join(dir, "Input3.npy")
	os.WriteFile(p, []byte("\x93NUMPY\x01\x00\x20\x00{'descr': '<f4', 'shape': (1,}"), 0o644)
	code, _, errs := kiln(t, "run", model, "--inputs", dir)
	if code != 1 || !strings.Contains(errs, p) {
		t.Fatalf("exit %d, stderr %s", code, errs)
	}
}

// A symbolic batch dimension accepts any size, and the outputs follow it.
func TestRunSymbolicBatch(t *testing.T) {
	needShared(t)
	model := filepath.Join(shared, "models", "bench", "simplecnn.fp32.onnx")
	x := ir.NewTensor(ir.Float32, []int64{3, 1, 28, 28})
	for i := range x.F32() {
		x.F32()[i] = float32(i%17) / 17
	}
	dir := t.TempDir()
	if err := tensorio.WriteNPY(filepath.Join(dir, "input.npy"), x); err != nil {
		t.Fatal(err)
	}
	code, out, errs := kiln(t, "run", model, "--inputs", dir)
	if code != 0 || !strings.Contains(out, "output  float32[3,10]") {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	// The fixed dimensions still must match.
	y := ir.NewTensor(ir.Float32, []int64{3, 2, 28, 28})
	tensorio.WriteNPY(filepath.Join(dir, "input.npy"), y)
	if code, _, errs := kiln(t, "run", model, "--inputs", dir); code != 1 || !strings.Contains(errs, "dimension 1 differs") {
		t.Fatalf("exit %d, %s", code, errs)
	}
}
