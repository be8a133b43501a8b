package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kilnml/kiln/internal/ortrun"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/onnx"
	"github.com/kilnml/kiln/ops"
	"github.com/kilnml/kiln/tensorio"
)

// outlierBlock writes a small transformer block to dir: h = LayerNorm(x)
// with γ outliers on channels 3, 17, 29 (as real transformers carry them),
// y = h·W1 + h (a residual reader, so smoothing h needs a Mul), and
// calibration inputs (4 .npy files of [1,16,32]); it returns the model
// path, the data folder and one more input for evaluation.
func outlierBlock(t *testing.T, dir string) (model, data string, eval *ir.Tensor) {
	t.Helper()
	rng := rand.New(rand.NewPCG(3, 4))
	randT := func(scale float64, dims ...int64) *ir.Tensor {
		x := ir.NewTensor(ir.Float32, dims)
		for i := range x.Len() {
			x.SetFloat64At(i, scale*rng.NormFloat64())
		}
		return x
	}
	gamma := randT(0.1, 32)
	for j := range int64(32) {
		gamma.SetFloat64At(j, 1+gamma.Float64At(j))
	}
	gamma.SetFloat64At(3, 40)
	gamma.SetFloat64At(17, -25)
	gamma.SetFloat64At(29, 60)
	beta, w1 := randT(0.1, 32), randT(0.2, 32, 32)
	gamma.Name, beta.Name, w1.Name = "gamma", "beta", "w1"
	g := &ir.Graph{Name: "block", Initializers: []*ir.Tensor{gamma, beta, w1}}
	g.Inputs = []*ir.ValueInfo{{Name: "input", Type: ir.TensorType(ir.Float32, ir.Shape{ir.D(1), ir.D(16), ir.D(32)})}}
	g.Nodes = []*ir.Node{
		{Name: "ln", OpType: "LayerNormalization", Inputs: []string{"input", "gamma", "beta"}, Outputs: []string{"h"}},
		{Name: "fc", OpType: "MatMul", Inputs: []string{"h", "w1"}, Outputs: []string{"a"}},
		{Name: "res", OpType: "Add", Inputs: []string{"a", "h"}, Outputs: []string{"output"}},
	}
	g.Outputs = []*ir.ValueInfo{{Name: "output", Type: ir.TensorType(ir.Float32, ir.Shape{ir.D(1), ir.D(16), ir.D(32)})}}
	model = filepath.Join(dir, "block.onnx")
	if err := onnx.Save(model, &ir.Model{IRVersion: 8, Opsets: []ir.OpsetImport{{Version: 17}}, Graph: g}); err != nil {
		t.Fatal(err)
	}
	data = filepath.Join(dir, "calib")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		if err := tensorio.WriteNPY(filepath.Join(data, fmt.Sprintf("x%d.npy", i)), randT(1, 1, 16, 32)); err != nil {
			t.Fatal(err)
		}
	}
	return model, data, randT(1, 1, 16, 32)
}

func cosineT(a, b *ir.Tensor) float64 {
	var ab, aa, bb float64
	for i := range a.Len() {
		x, y := a.Float64At(i), b.Float64At(i)
		ab, aa, bb = ab+x*y, aa+x*x, bb+y*y
	}
	return ab / math.Sqrt(aa*bb)
}

// kiln quantize --smoothquant writes a Q/DQ model that computes closer to
// the float model than the plain Q/DQ export (both calibrated with the
// transformer default, minmax); kiln build --smoothquant[=α] reports the
// smoothing; bad values and missing data are usage errors.
func TestSmoothQuantCLI(t *testing.T) {
	dir := t.TempDir()
	model, data, x := outlierBlock(t, dir)
	ref, err := onnx.Load(model)
	if err != nil {
		t.Fatal(err)
	}
	want, err := ops.Run(ref, map[string]*ir.Tensor{"input": x})
	if err != nil {
		t.Fatal(err)
	}
	cos := map[bool]float64{}
	for _, sq := range []bool{false, true} {
		out := filepath.Join(dir, fmt.Sprintf("q%v.onnx", sq))
		args := []string{"quantize", model, "--calib-data", data, "-o", out}
		if sq {
			args = append(args, "--smoothquant")
		}
		code, stdout, stderr := kiln(t, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d\n%s%s", args, code, stdout, stderr)
		}
		if !strings.Contains(stdout, "with minmax") || sq != strings.Contains(stdout, "SmoothQuant (α 0.50): 1 activations smoothed for 1 layers") {
			t.Errorf("%v:\n%s", args, stdout)
		}
		q, err := onnx.Load(out)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ops.Run(q, map[string]*ir.Tensor{"input": x})
		if err != nil {
			t.Fatal(err)
		}
		cos[sq] = cosineT(got["output"], want["output"])
		t.Logf("kiln quantize, SmoothQuant %v: Q/DQ model vs float cosine %.6f", sq, cos[sq])
		// The export is an ordinary ONNX file: ONNX Runtime runs it as kiln's reference does.
		if d, _ := ortrun.Dir(); d != "" {
			o, _, err := ortrun.Run(out, []*ir.Tensor{x}, 1, 0)
			if err != nil {
				t.Fatal(err)
			}
			c := cosineT(o[0], got["output"])
			t.Logf("SmoothQuant %v: ONNX Runtime vs kiln on the Q/DQ model: cosine %.7f", sq, c)
			if c < 0.9999 {
				t.Errorf("SmoothQuant %v: ONNX Runtime vs kiln on the Q/DQ model: cosine %.6f", sq, c)
			}
		}
	}
	if !(cos[true] > cos[false]) {
		t.Errorf("SmoothQuant did not help the Q/DQ export: cosine %.6f -> %.6f", cos[false], cos[true])
	}
	for alpha, line := range map[string]string{"": "SmoothQuant (α 0.50)", "=0.8": "SmoothQuant (α 0.80)"} {
		code, stdout, stderr := kiln(t, "build", model, "--int8", "--calib-data", data, "--smoothquant"+alpha)
		if code != 0 || !strings.Contains(stdout, line) || !strings.Contains(stdout, " int8 ") {
			t.Errorf("build --smoothquant%s: exit %d\n%s%s", alpha, code, stdout, stderr)
		}
		// The smoothing Mul (a row broadcast) runs on a CPU kernel, as does everything else.
		if !strings.Contains(stdout, "h_smooth ") || strings.Contains(stdout, "ref.op") {
			t.Errorf("build --smoothquant%s: the smoothing Mul is missing or a layer runs on the reference:\n%s", alpha, stdout)
		}
	}
	for _, args := range [][]string{
		{"build", model, "--int8", "--calib-data", data, "--smoothquant=1.5"},
		{"build", model, "--int8", "--smoothquant"},
		{"quantize", model, "--dynamic", "--smoothquant", "-o", filepath.Join(dir, "d.onnx")},
		{"quantize", model, "--calib-data", data, "--smoothquant=-1", "-o", filepath.Join(dir, "d.onnx")},
	} {
		if code, _, stderr := kiln(t, args...); code != 2 || !strings.Contains(stderr, "smoothquant") {
			t.Errorf("%v: exit %d, %s", args, code, stderr)
		}
	}
}

// The transformer defaults through the CLI: a model with a LayerNorm is
// calibrated with minmax by kiln build, kiln calibrate and kiln debug
// precision when no --calibrator is given; kiln build --int8-dynamic needs no data and runs
// the MatMul per token in int8 on the CPU kernel.
func TestTransformerDefaultsCLI(t *testing.T) {
	dir := t.TempDir()
	model, data, _ := outlierBlock(t, dir)
	code, stdout, stderr := kiln(t, "build", model, "--int8", "--calib-data", data, "--verbose")
	if code != 0 || !strings.Contains(stdout, "batches with minmax") {
		t.Errorf("build --int8: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = kiln(t, "calibrate", model, "--data", data, "--cache", filepath.Join(dir, "c.cache"))
	if code != 0 || !strings.Contains(stdout, "minmax") || strings.Contains(stdout, "entropy") {
		t.Errorf("calibrate: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = kiln(t, "debug", "precision", model, "--data", data, "--metric", "cosine", "--batches", "2", "--calib-batches", "2", "--runs", "1")
	if code != 0 || !strings.Contains(stdout, "calibrator minmax") {
		t.Errorf("debug precision: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = kiln(t, "build", model, "--int8-dynamic")
	if code != 0 || !strings.Contains(stdout, "cpu.dynqmatmul") || !strings.Contains(stdout, " int8 ") {
		t.Errorf("build --int8-dynamic: exit %d\n%s%s", code, stdout, stderr)
	}
}

// A calibration cache written by a --smoothquant build holds the smoothed
// tensors' ranges: the same build reads it back, a build without
// --smoothquant (or with another α) finds it stale instead of misusing it.
func TestSmoothQuantCalibrationCache(t *testing.T) {
	dir := t.TempDir()
	model, data, _ := outlierBlock(t, dir)
	cache := filepath.Join(dir, "sq.cache")
	build := func(extra ...string) (int, string, string) {
		return kiln(t, append([]string{"build", model, "--int8", "--calib-data", data, "--calib-cache", cache, "--verbose"}, extra...)...)
	}
	if code, stdout, stderr := build("--smoothquant"); code != 0 || !fileExists(cache) || strings.Contains(stdout, "Using calibration cache") {
		t.Fatalf("first build: exit %d\n%s%s", code, stdout, stderr)
	}
	if code, stdout, stderr := build("--smoothquant"); code != 0 || !strings.Contains(stdout, "Using calibration cache") {
		t.Errorf("same build again: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, extra := range [][]string{nil, {"--smoothquant=0.8"}} {
		if code, _, stderr := build(extra...); code != 1 || !strings.Contains(stderr, "stale") {
			t.Errorf("build %v with the smoothed cache: exit %d, %s", extra, code, stderr)
		}
	}
}
