package layerdebug

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/kilnml/kiln/backend/cpu" // fast kernels: INT8 faster than FP32, as in a real build
	"github.com/kilnml/kiln/builder"
	"github.com/kilnml/kiln/datasrc"
	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/onnx"
	_ "github.com/kilnml/kiln/ops/all"
	"github.com/kilnml/kiln/quant/calib"
)

var zooPath = filepath.Join("..", "..", "..", "shared", "models", "mnist-8-zoo", "model.onnx")

// zoo loads the model zoo's MNIST CNN and calibrates it on MNIST training
// images; it skips without ../shared or the MNIST files.
func zoo(t testing.TB) (*ir.Model, map[string]float64, *calib.Stats) {
	t.Helper()
	if _, err := os.Stat(zooPath); err != nil {
		t.Skipf("skipping: %s is absent (shared test data)", zooPath)
	}
	m, err := onnx.Load(zooPath)
	if err != nil {
		t.Fatal(err)
	}
	cal, err := datasrc.Open("mnist-raw:train", m.Graph.RealInputs(), datasrc.Options{MaxBatches: 100})
	if err != nil {
		t.Skipf("skipping: MNIST is not available: %v", err)
	}
	st, ranges, err := Calibrate(m, cal, calib.Entropy2, 100)
	if err != nil {
		t.Fatal(err)
	}
	return m, ranges, st
}

func zooEval(t testing.TB, m *ir.Model, n int, metric Metric) *Eval {
	t.Helper()
	ds, err := datasrc.Open("mnist-raw:test", m.Graph.RealInputs(), datasrc.Options{MaxBatches: n})
	if err != nil {
		t.Skipf("skipping: MNIST is not available: %v", err)
	}
	ev, err := NewEval(m, ds, n, metric)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// With 2-bit weights the zoo CNN loses tens of points; the per-layer
// comparison must blame the two convolutions (their outputs carry the
// error), not the pooling or reshape steps between them.
func TestZooBlameTwoBitWeights(t *testing.T) {
	m, ranges, _ := zoo(t)
	plan, _, err := Build(m, Setting{Ranges: ranges, WeightBits: 2}, nil, builder.Config{Deterministic: true})
	if err != nil {
		t.Fatal(err)
	}
	eng, err := engine.NewEngine(plan)
	if err != nil {
		t.Fatal(err)
	}
	ds, _ := datasrc.Open("mnist-raw:test", m.Graph.RealInputs(), datasrc.Options{MaxBatches: 50})
	res, err := Compare(m, eng, ds, 50)
	if err != nil {
		t.Fatal(err)
	}
	if res.Batches != 50 || len(res.Tensors) < 5 {
		t.Fatalf("%d batches, %d tensors compared (skipped %v)", res.Batches, len(res.Tensors), res.Skipped)
	}
	top := res.Blame[0].Layer + " | " + res.Blame[1].Layer
	if !strings.Contains(top, "Convolution28") || !strings.Contains(top, "Convolution110") {
		t.Fatalf("blame table top two: %s; table %+v", top, res.Blame)
	}
	for _, b := range res.Blame[:2] {
		if b.Precision != "int8" || b.Added <= 0.01 {
			t.Errorf("%s: precision %s, added %g", b.Layer, b.Precision, b.Added)
		}
	}
	// The float graph's own engine is the float graph: no error anywhere.
	fp, _, err := builder.Build(m, nil, builder.Config{Deterministic: true})
	if err != nil {
		t.Fatal(err)
	}
	feng, _ := engine.NewEngine(fp)
	ds, _ = datasrc.Open("mnist-raw:test", m.Graph.RealInputs(), datasrc.Options{MaxBatches: 5})
	fres, err := Compare(m, feng, ds, 5)
	if err != nil {
		t.Fatal(err)
	}
	for _, te := range fres.Tensors {
		if te.Acc.SQNR() < 100 {
			t.Errorf("fp32 engine: %s SQNR %.1f dB", te.Tensor, te.Acc.SQNR())
		}
	}
}

// The search keeps the layers that matter and meets the budget; the
// report's charts decode as PNGs of the documented size.
func TestZooSearchAndReport(t *testing.T) {
	m, ranges, st := zoo(t)
	ev := zooEval(t, m, 150, Accuracy)
	s := &Searcher{Model: m, Setting: Setting{Ranges: ranges, WeightBits: 2}, Eval: ev, Runs: 5, Base: builder.Config{Deterministic: true}}
	res, err := s.Search(Budget{Metric: Accuracy, MaxDrop: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Layers) != 3 || res.Evaluated != 8 {
		t.Fatalf("%d layers, %d configurations", len(res.Layers), res.Evaluated)
	}
	if res.AllQ.Score > res.RefScore-5 {
		t.Fatalf("2-bit weights should lose accuracy: fp32 %.2f, quantized %.2f", res.RefScore, res.AllQ.Score)
	}
	if res.Best == nil || !res.Best.Meets || res.Best.Score < res.RefScore-1 {
		t.Fatalf("best %+v", res.Best)
	}
	keep := strings.Join(res.Best.Keep, ",")
	if !strings.Contains(keep, "Convolution28") || !strings.Contains(keep, "Convolution110") {
		t.Fatalf("both convolutions must stay fp32 within 1 point: kept %s", keep)
	}
	// Configurations are built through the builder with Obey: the kept
	// layers really are fp32 in the plan.
	plan, _, err := Build(m, s.Setting, setOf(res.Best.Keep), s.Base)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range plan.Steps {
		for _, mem := range st.Members {
			if strings.HasPrefix(mem, "Convolution") && st.Precision != "fp32" {
				t.Errorf("%s runs in %s", st.Name, st.Precision)
			}
		}
	}
	dir := t.TempDir()
	files, err := WriteReport(dir, ReportData{Title: "test", Model: m, Stats: st, Search: res, PerLayer: &PerLayer{Blame: []Blame{{Layer: "a", Added: 0.1}, {Layer: "b", Added: -0.01}}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(files.PNGs) < 5 {
		t.Fatalf("%d charts", len(files.PNGs))
	}
	w, h := ChartPixels()
	for _, f := range files.PNGs {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
			t.Errorf("%s: %dx%d, want %dx%d", f, b.Dx(), b.Dy(), w, h)
		}
	}
	index, err := os.ReadFile(files.Index)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files.PNGs {
		if !bytes.Contains(index, []byte(`src="`+filepath.Base(f)+`"`)) {
			t.Errorf("index.html does not show %s", filepath.Base(f))
		}
	}
}

// Harder settings go through Q/DQ: the zoo's MatMul weight is a Reshape of
// an initializer, which must be folded so that the MatMul is quantized too.
func TestExplicitSettingQuantizesEveryLayer(t *testing.T) {
	m, ranges, _ := zoo(t)
	plan, _, err := Build(m, Setting{Ranges: ranges, WeightBits: 4, PerTensorWeights: true}, nil, builder.Config{Deterministic: true})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, s := range plan.Steps {
		if s.Precision == "int8" {
			n++
		}
	}
	if n != 3 {
		t.Fatalf("%d int8 layers, want 3 (both convolutions and the MatMul)", n)
	}
}
