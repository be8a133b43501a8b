package train_test

import (
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kilnml/kiln/data/mnist"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/onnx"
	"github.com/kilnml/kiln/ops"
	_ "github.com/kilnml/kiln/ops/all"
	"github.com/kilnml/kiln/train"
)

// exportFixture returns a SimpleCNN trained for a few steps (so the weights
// are not just their initialization), n input images (MNIST test images when
// the data set is available, else noise) and the trainer's logits for them.
func exportFixture(t *testing.T, n int) (*train.Sequential, []float32, []float32) {
	t.Helper()
	m := train.NewSimpleCNN(11)
	r := rand.New(rand.NewPCG(5, 5))
	x := make([]float32, max(n, 32)*28*28) // the training steps below use 32
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	if dir, err := mnist.DefaultDir(); err == nil {
		if test, err := mnist.LoadSplit(dir, mnist.TestImagesFile, mnist.TestLabelsFile); err == nil {
			for i := 0; i < max(n, 32); i++ {
				mnist.FillNormalized(x[i*784:(i+1)*784], test.Images.Image(i))
			}
		}
	}
	tr := train.NewTrainer(m, train.NewAdam(m.Params(), 1e-3), 32, 2, 1, 28, 28)
	labels := make([]int, 32)
	for i := range labels {
		labels[i] = i % 10
	}
	for s := 0; s < 3; s++ {
		if _, _, err := tr.Step(x[:32*784], labels); err != nil {
			t.Fatal(err)
		}
	}
	return m, x[:n*784], train.Logits(train.NewCtx(2), m, x, n, 1, 28, 28)
}

func maxAbsDiff(a, b []float32) float64 {
	d := 0.0
	for i := range a {
		d = max(d, math.Abs(float64(a[i])-float64(b[i])))
	}
	return d
}

func TestExportStructure(t *testing.T) {
	m := train.NewSimpleCNN(1)
	model, err := train.ExportONNX(m, []int{1, 28, 28}, 10)
	if err != nil {
		t.Fatal(err)
	}
	g := model.Graph
	if model.Opset("") != 13 || len(g.Inputs) != 1 || g.Inputs[0].Name != "input" || len(g.Outputs) != 1 || g.Outputs[0].Name != "output" {
		t.Fatalf("opset %d, inputs %v, outputs %v", model.Opset(""), g.Inputs, g.Outputs)
	}
	if got := g.Inputs[0].Type.String(); got != "float32[batch,1,28,28]" {
		t.Fatalf("input type %s", got)
	}
	if got := g.Outputs[0].Type.String(); got != "float32[batch,10]" {
		t.Fatalf("output type %s", got)
	}
	var ops []string
	for _, n := range g.Nodes {
		ops = append(ops, n.OpType)
	}
	if s := strings.Join(ops, ","); s != "Conv,Relu,MaxPool,Conv,Relu,MaxPool,Flatten,Gemm,Relu,Gemm" {
		t.Fatalf("nodes %s", s)
	}
	var names []string
	for _, in := range g.Initializers {
		names = append(names, in.Name+ir.ShapeOf(in.Dims).String())
	}
	want := "conv1.weight[32,1,3,3],conv1.bias[32],conv2.weight[64,32,3,3],conv2.bias[64],fc1.weight[128,1600],fc1.bias[128],fc2.weight[10,128],fc2.bias[10]"
	if s := strings.Join(names, ","); s != want {
		t.Fatalf("initializers %s", s)
	}
}

// The exported file, encoded and decoded, runs in kiln's reference executor
// with the trainer's logits.
func TestExportMatchesReferenceExecutor(t *testing.T) {
	n := 100
	if train.RaceEnabled {
		n = 8 // the reference executor under the race detector is slow
	}
	m, x, want := exportFixture(t, n)
	model, err := train.ExportONNX(m, []int{1, 28, 28}, 10)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "cnn.onnx")
	if err := onnx.Save(path, model); err != nil {
		t.Fatal(err)
	}
	loaded, err := onnx.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, batch := range []int{n, 1} {

		out, err := ops.Run(loaded, map[string]*ir.Tensor{"input": ir.FromFloat32s([]int64{int64(batch), 1, 28, 28}, x[:batch*784])})
		if err != nil {
			t.Fatal(err)
		}
		got := out["output"]
		if got == nil || len(got.Dims) != 2 || got.Dims[0] != int64(batch) || got.Dims[1] != 10 {
			t.Fatalf("output %v", got)
		}
		if d := maxAbsDiff(got.F32(), want[:batch*10]); d >= 1e-4 {
			t.Fatalf("batch %d: max abs diff %g between ops.Run and the trainer", batch, d)
		}
	}
}

// ortDir finds a copy of ../shared/tools/ort where npm ci has run:
// KILN_ORT_DIR, or .tmp/ort in the repository root.
func ortDir(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node not found: skipping the ONNX Runtime comparison")
	}
	dirs := []string{os.Getenv("KILN_ORT_DIR"), filepath.Join("..", ".tmp", "ort")}
	for _, d := range dirs {
		if d == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(d, "node_modules", "onnxruntime-node")); err == nil {
			if _, err := os.Stat(filepath.Join(d, "run.js")); err == nil {
				return d
			}
		}
	}
	t.Skip("ONNX Runtime not installed: copy ../shared/tools/ort to .tmp/ort (or set KILN_ORT_DIR) and run npm ci there")
	return ""
}

// The exported file gives the trainer's logits in ONNX Runtime too.
func TestExportMatchesONNXRuntime(t *testing.T) {
	dir := ortDir(t)
	const n = 100
	m, x, want := exportFixture(t, n)
	model, err := train.ExportONNX(m, []int{1, 28, 28}, 10)
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	modelPath := filepath.Join(work, "cnn.onnx")
	if err := onnx.Save(modelPath, model); err != nil {
		t.Fatal(err)
	}
	in, out := filepath.Join(work, "in"), filepath.Join(work, "out")
	os.MkdirAll(in, 0o755)
	if err := onnx.WriteTensorFile(filepath.Join(in, "input_0.pb"), ir.FromFloat32s([]int64{n, 1, 28, 28}, x)); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", filepath.Join(dir, "run.js"), modelPath, in, out, "--threads", "1")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ONNX Runtime failed: %v\n%s", err, b)
	}
	got, err := onnx.ReadTensorFile(filepath.Join(out, "output_0.pb"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Dims) != 2 || got.Dims[0] != n || got.Dims[1] != 10 {
		t.Fatalf("ORT output dims %v", got.Dims)
	}
	if d := maxAbsDiff(got.F32(), want); d >= 1e-4 {
		t.Fatalf("max abs diff %g between ONNX Runtime and the trainer", d)
	}
	t.Logf("ONNX Runtime matches the trainer on %d images", n)
}
