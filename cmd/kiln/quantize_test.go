package main

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kilnml/kiln/builder"
	"github.com/kilnml/kiln/datasrc"
	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/internal/ortrun"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/onnx"
	"github.com/kilnml/kiln/ops"
)

func TestQuantizeUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"quantize", "m.onnx", "--calib-data", "mnist"},                                       // no -o
		{"quantize", "m.onnx", "--calib-data", "mnist", "-o", "x.onnx", "--flavor", "tflite"}, // bad flavour
		{"quantize", "m.onnx", "--calib-data", "mnist", "-o", "x.onnx", "--fp8", "--flavor", "ort"},
		{"quantize", "m.onnx", "--calib-data", "mnist", "-o", "x.onnx", "--weight-bits", "9"},
		{"quantize", "m.onnx", "--calib-data", "mnist", "-o", "x.onnx", "--flavor", "ort", "--ort-activations", "int16"},
		{"quantize", "m.onnx", "--calib-data", "mnist", "-o", "x.onnx", "--ort-activations", "int8"}, // TensorRT flavour
		{"train", "mnist", "--from", "x.safetensors"},                                                // --from without --qat
		{"train", "mnist", "--qat", "--out", ""},                                                     // --qat without --from
		{"train", "mnist", "--qat", "--from", "x", "--weight-bits", "1"},
	} {
		if code, _, errOut := kiln(t, args...); code != 2 {
			t.Errorf("%v: exit code %d, want 2 (%s)", args, code, errOut)
		}
	}
}

// quantMNISTTest returns the first n test images and labels.
func quantMNISTTest(t *testing.T, m *ir.Model, n int) (*ir.Tensor, []int) {
	t.Helper()
	src, err := datasrc.Open("mnist:test", m.Graph.RealInputs(), datasrc.Options{BatchSize: n, MaxBatches: 1})
	if err != nil {
		t.Fatal(err)
	}
	b, err := src.Next()
	if err != nil {
		t.Fatal(err)
	}
	return b["input"], append([]int(nil), src.Labels()...)
}

func quantAccuracy(logits *ir.Tensor, labels []int) float64 {
	ok := 0
	c := int(logits.Dims[1])
	v := logits.F32()
	for i, l := range labels {
		best := 0
		for j := 1; j < c; j++ {
			if v[i*c+j] > v[i*c+best] {
				best = j
			}
		}
		if best == l {
			ok++
		}
	}
	return 100 * float64(ok) / float64(len(labels))
}

// quantAgreement is the share of examples whose top-1 class is the same.
func quantAgreement(a, b *ir.Tensor) float64 {
	c := int(a.Dims[1])
	n := int(a.Dims[0])
	same := 0
	for i := 0; i < n; i++ {
		ta, tb := quantArgmax(a.F32()[i*c:(i+1)*c]), quantArgmax(b.F32()[i*c:(i+1)*c])
		if ta == tb {
			same++
		}
	}
	return float64(same) / float64(n)
}

func quantArgmax(v []float32) int {
	best := 0
	for j := range v {
		if v[j] > v[best] {
			best = j
		}
	}
	return best
}

// quantEngineOutput builds path into an engine (explicit quantization for Q/DQ
// models), checks it has at least four steps of the given precision (the
// four conv/gemm layers), and runs it on x.
func quantEngineOutput(t *testing.T, path string, x *ir.Tensor, precision string) *ir.Tensor {
	t.Helper()
	m, err := onnx.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	shape := x.Dims
	plan, rep, err := builder.Build(m, nil, builder.Config{Deterministic: true, Profiles: []builder.Profile{{"input": {Min: shape, Opt: shape, Max: shape}}}})
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if precision != "" {
		n := 0
		for _, s := range plan.Steps {
			if s.Precision == precision {
				n++
			}
		}
		if n < 4 {
			t.Errorf("%s: %d %s steps, want the 4 conv/gemm layers (%v)", path, n, precision, rep.Warnings)
		}
	}
	e, err := engine.NewEngine(plan)
	if err != nil {
		t.Fatal(err)
	}
	out, err := e.NewContext().Run(map[string]*ir.Tensor{"input": x})
	if err != nil {
		t.Fatal(err)
	}
	return out["output"]
}

// quantORTOutput runs path in ONNX Runtime; float8 models run without ONNX
// Runtime's QDQ fusions (its QLinearConv has no float8 kernel).
func quantORTOutput(t *testing.T, path string, x *ir.Tensor, fp8 bool) *ir.Tensor {
	t.Helper()
	opt := ""
	if fp8 {
		opt = "basic"
	}
	o, _, err := ortrun.RunOpt(path, []*ir.Tensor{x}, 0, 0, opt)
	if err != nil {
		t.Fatal(err)
	}
	return o[0]
}

// The flow on a small subset: train FP32 briefly, quantize it (PTQ:
// TensorRT and ONNX Runtime flavours, FP8, dynamic) and fine-tune it (QAT);
// kiln builds every Q/DQ model into a quantized engine, and ONNX Runtime
// (when installed) classifies like kiln's engine. (A barely trained model
// has many near ties, so this checks top-1 agreement; the 0.1-point
// accuracy check on the full test set is TestQDQFullMNIST.)
func TestQuantizeAndQATMNIST(t *testing.T) {
	needMNIST(t)
	dir := t.TempDir()
	fp32, ckpt := filepath.Join(dir, "m.onnx"), filepath.Join(dir, "m.safetensors")
	if code, out, errOut := kiln(t, "train", "mnist", "--epochs", "1", "--limit", "256", "--batch-size", "64", "--out", fp32, "--checkpoint", ckpt); code != 0 {
		t.Fatalf("train: %s%s", out, errOut)
	}
	models := map[string]string{} // path → engine precision
	const fourLayers = "4 layers quantized: conv1, conv2, fc1, fc2"
	for _, c := range []struct {
		name   string
		args   []string
		prec   string
		layers string
	}{
		{"trt.onnx", nil, "int8", fourLayers},
		// ONNX Runtime's placement also quantizes the pools' and Flatten's
		// inputs (the convs' outputs, the pools' outputs).
		{"ort.onnx", []string{"--flavor", "ort", "--calibrator", "minmax"}, "int8", "7 layers quantized: conv1, conv2, fc1, fc2, flatten, pool1, pool2"},
		{"w4.onnx", []string{"--weight-bits", "4", "--per-tensor-weights", "--calibrator", "percentile"}, "int8", fourLayers},
		{"fp8.onnx", []string{"--fp8"}, "fp8", fourLayers},
	} {
		p := filepath.Join(dir, c.name)
		args := append([]string{"quantize", fp32, "--calib-data", "mnist", "--calib-batches", "2", "-o", p}, c.args...)
		code, out, errOut := kiln(t, args...)
		if code != 0 || !strings.Contains(out, c.layers) {
			t.Fatalf("%v: exit %d\n%s%s", args, code, out, errOut)
		}
		models[p] = c.prec
	}
	qat := filepath.Join(dir, "qat.onnx")
	code, out, errOut := kiln(t, "train", "mnist", "--qat", "--epochs", "1", "--limit", "128", "--batch-size", "64", "--calib-batches", "2",
		"--from", ckpt, "--out", qat)
	if code != 0 || !strings.Contains(out, "QAT epoch 1/1") || !strings.Contains(out, "wrote "+qat) {
		t.Fatalf("train --qat: exit %d\n%s%s", code, out, errOut)
	}
	models[qat] = "int8"

	m, _ := onnx.Load(fp32)
	x, labels := quantMNISTTest(t, m, 200)
	ortDir, why := ortrun.Dir()
	if ortDir == "" {
		t.Logf("ONNX Runtime parts skipped: %s", why)
	}
	for p, prec := range models {
		got := quantEngineOutput(t, p, x, prec)
		if ortDir == "" {
			continue
		}
		o := quantORTOutput(t, p, x, prec == "fp8")
		a := quantAgreement(got, o)
		t.Logf("%s: kiln %.1f%%, ONNX Runtime %.1f%%, top-1 agreement %.1f%%", filepath.Base(p), quantAccuracy(got, labels), quantAccuracy(o, labels), 100*a)
		if a < 0.98 {
			t.Errorf("%s: kiln and ONNX Runtime agree on only %.1f%% of the top-1 classes", p, 100*a)
		}
	}

	// Dynamic-range quantization: fc1 and fc2 (the Gemms) only.
	dyn := filepath.Join(dir, "dyn.onnx")
	code, out, errOut = kiln(t, "quantize", fp32, "--dynamic", "-o", dyn)
	if code != 0 || !strings.Contains(out, "2 layers (fc1, fc2)") {
		t.Fatalf("quantize --dynamic: exit %d\n%s%s", code, out, errOut)
	}
	dm, err := onnx.Load(dyn)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := ops.Run(dm, map[string]*ir.Tensor{"input": x})
	if err != nil {
		t.Fatal(err)
	}
	fref, _ := ops.Run(m, map[string]*ir.Tensor{"input": x})
	if a := quantAgreement(ref["output"], fref["output"]); a < 0.97 {
		t.Errorf("dynamic vs FP32: top-1 agreement %.1f%%", 100*a)
	}
	if ortDir != "" {
		if a := quantAgreement(ref["output"], quantORTOutput(t, dyn, x, false)); a < 0.98 {
			t.Errorf("dynamic: kiln and ONNX Runtime agree on %.1f%%", 100*a)
		}
	}
}

// TestQDQFullMNIST checks the bound on the whole MNIST test set for
// the Q/DQ models listed in KILN_QDQ_EVAL (comma-separated; made by kiln
// quantize or kiln train mnist --qat from a trained SimpleCNN): kiln's
// engine and ONNX Runtime agree on accuracy within 0.1 points.
func TestQDQFullMNIST(t *testing.T) {
	list := os.Getenv("KILN_QDQ_EVAL")
	if list == "" {
		t.Skip("set KILN_QDQ_EVAL=a.qdq.onnx,b.qdq.onnx to check trained models on the full MNIST test set")
	}
	needMNIST(t)
	if d, why := ortrun.Dir(); d == "" {
		t.Skip(why)
	}
	for _, p := range strings.Split(list, ",") {
		m, err := onnx.Load(p)
		if err != nil {
			t.Fatal(err)
		}
		x, labels := quantMNISTTest(t, m, 10000)
		prec := "int8"
		if m.Opset("") >= 19 {
			prec = "fp8"
		}
		k, o := quantAccuracy(quantEngineOutput(t, p, x, prec), labels), quantAccuracy(quantORTOutput(t, p, x, prec == "fp8"), labels)
		t.Logf("%s: kiln %.2f%%, ONNX Runtime %.2f%%", p, k, o)
		if math.Abs(k-o) > 0.1+1e-9 {
			t.Errorf("%s: kiln %.2f%% vs ONNX Runtime %.2f%%: more than 0.1 points apart", p, k, o)
		}
	}
}
