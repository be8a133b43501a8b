package calib

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
	_ "github.com/kilnml/kiln/ops/all"
)

// tinyModel: x[N,4] -> MatMul W -> Relu -> Mul 2 -> y, plus a dead-zero
// branch (x*0) to exercise the all-zero fallback.
func tinyModel(t *testing.T) *ops.Session {
	w := ir.FromFloat32s([]int64{4, 3}, []float32{1, -1, 0.5, 2, 0, -0.5, -1, 1, 1, 0.25, 0.5, -2})
	w.Name = "W"
	two := ir.ScalarFloat32(2)
	two.Name = "two"
	zero := ir.ScalarFloat32(0)
	zero.Name = "zero"
	g := &ir.Graph{
		Name:         "tiny",
		Inputs:       []*ir.ValueInfo{{Name: "x", Type: ir.TensorType(ir.Float32, ir.Shape{ir.Sym("N"), ir.D(4)})}},
		Initializers: []*ir.Tensor{w, two, zero},
		Nodes: []*ir.Node{
			{Name: "mm", OpType: "MatMul", Inputs: []string{"x", "W"}, Outputs: []string{"h"}},
			{Name: "relu", OpType: "Relu", Inputs: []string{"h"}, Outputs: []string{"r"}},
			{Name: "scale", OpType: "Mul", Inputs: []string{"r", "two"}, Outputs: []string{"y"}},
			{Name: "dead", OpType: "Mul", Inputs: []string{"x", "zero"}, Outputs: []string{"z"}},
			{Name: "wx2", OpType: "Mul", Inputs: []string{"W", "two"}, Outputs: []string{"w2"}},
		},
		Outputs: []*ir.ValueInfo{{Name: "y"}, {Name: "z"}, {Name: "w2"}},
	}
	m := &ir.Model{IRVersion: 8, Opsets: []ir.OpsetImport{{Version: 17}}, Graph: g}
	s, err := ops.NewSession(m)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func batches(n int, seed uint64) []map[string]*ir.Tensor {
	r := rand.New(rand.NewPCG(seed, 1))
	var out []map[string]*ir.Tensor
	for b := 0; b < n; b++ {
		v := make([]float32, 8*4)
		for i := range v {
			v[i] = float32(r.NormFloat64() * float64(1+b%3))
		}
		out = append(out, map[string]*ir.Tensor{"x": ir.FromFloat32s([]int64{8, 4}, v)})
	}
	return out
}

func TestCollectEveryActivation(t *testing.T) {
	s := tinyModel(t)
	st, err := Collect(s, &SliceStream{Batches: batches(5, 1)}, CollectOptions{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(st.Order, ","); got != "x,h,r,y,z" {
		t.Fatalf("tensors %s (weights and values derived from them must be left out)", got)
	}
	if st.Batches != 5 || st.Tensors["x"].Count != 5*32 {
		t.Fatalf("batches %d count %d", st.Batches, st.Tensors["x"].Count)
	}
	if st.Tensors["r"].Min < 0 {
		t.Error("relu output has a negative minimum")
	}
	ranges, err := ComputeRanges(st, Entropy2, Params{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range ranges {
		if (r.Name == "z") != (r.Fallback != "") {
			t.Errorf("%s: fallback %q", r.Name, r.Fallback)
		}
	}
}

// The same data gives identical statistics whatever the worker count.
func TestCollectDeterministicAcrossWorkers(t *testing.T) {
	s := tinyModel(t)
	var ref *Stats
	for _, w := range []int{1, 2, 3} {
		st, err := Collect(s, &SliceStream{Batches: batches(9, 2)}, CollectOptions{Workers: w})
		if err != nil {
			t.Fatal(err)
		}
		if ref == nil {
			ref = st
			continue
		}
		if st.DataHash != ref.DataHash {
			t.Errorf("workers %d: data hash differs", w)
		}
		for name, a := range ref.Tensors {
			b := st.Tensors[name]
			if a.Min != b.Min || a.Max != b.Max || a.Count != b.Count || a.Hist.Width != b.Hist.Width || len(a.Hist.Counts) != len(b.Hist.Counts) {
				t.Fatalf("workers %d, %s: stats differ", w, name)
			}
			for i := range a.Hist.Counts {
				if a.Hist.Counts[i] != b.Hist.Counts[i] {
					t.Fatalf("workers %d, %s: bin %d differs", w, name, i)
				}
			}
		}
	}
}

func TestCollectBadSources(t *testing.T) {
	s := tinyModel(t)
	if _, err := Collect(s, &SliceStream{}, CollectOptions{}); err == nil || !strings.Contains(err.Error(), "no batches") {
		t.Errorf("empty source: %v", err)
	}
	bad := batches(3, 3)
	bad[1] = map[string]*ir.Tensor{"x": ir.NewTensor(ir.Float32, []int64{8, 5})}
	if _, err := Collect(s, &SliceStream{Batches: bad}, CollectOptions{}); err == nil || !strings.Contains(err.Error(), `calibration batch 1: input "x": got shape [8 5]`) {
		t.Errorf("wrong shape: %v", err)
	}
	bad[1] = map[string]*ir.Tensor{"x": ir.NewTensor(ir.Float64, []int64{8, 4})}
	if _, err := Collect(s, &SliceStream{Batches: bad}, CollectOptions{}); err == nil || !strings.Contains(err.Error(), "float64") {
		t.Errorf("wrong dtype: %v", err)
	}
	bad[1] = map[string]*ir.Tensor{}
	if _, err := Collect(s, &SliceStream{Batches: bad}, CollectOptions{}); err == nil || !strings.Contains(err.Error(), `no data for input "x"`) {
		t.Errorf("missing input: %v", err)
	}
}

func TestCalibrateWritesAndReusesCache(t *testing.T) {
	s := tinyModel(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "calibration.cache")
	req := Request{Session: s, ModelHash: "abc", Source: &SliceStream{Batches: batches(4, 4)}, Algorithm: Entropy2, CachePath: path}
	first, err := Calibrate(req)
	if err != nil {
		t.Fatal(err)
	}
	if first.FromCache || len(first.Ranges) != 5 {
		t.Fatalf("%+v", first)
	}
	data, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(data), "TRT-100900-EntropyCalibration2\nx: ") {
		t.Fatalf("cache:\n%s", data)
	}
	// Reuse: the same ranges bit for bit (fresh ranges are rounded through
	// the cache's float32 scale), no data needed.
	req.Source = nil
	again, err := Calibrate(req)
	if err != nil {
		t.Fatal(err)
	}
	if !again.FromCache || len(again.Ranges) != 5 {
		t.Fatalf("%+v", again)
	}
	for i, r := range again.Ranges {
		if f := first.Ranges[i]; r.Amax != f.Amax || r.Min != f.Min || r.Max != f.Max {
			t.Errorf("%s: read back amax %g [%g, %g], calibrated %g [%g, %g]", r.Name, r.Amax, r.Min, r.Max, f.Amax, f.Min, f.Max)
		}
	}
	// A different model or algorithm is reported as stale.
	req.ModelHash = "def"
	if _, err := Calibrate(req); err == nil || !strings.Contains(err.Error(), "stale") || !strings.Contains(err.Error(), "model changed") {
		t.Errorf("stale model: %v", err)
	}
	req.ModelHash = "abc"
	req.Algorithm = MinMax
	if _, err := Calibrate(req); err == nil || !strings.Contains(err.Error(), "EntropyCalibration2") {
		t.Errorf("other algorithm: %v", err)
	}
	// --force recalibrates and rewrites the cache.
	req.Force, req.Source = true, &SliceStream{Batches: batches(2, 5)}
	forced, err := Calibrate(req)
	if err != nil || forced.FromCache {
		t.Fatalf("%v %+v", err, forced)
	}
	data, _ = os.ReadFile(path)
	if !strings.HasPrefix(string(data), "TRT-100900-MinMaxCalibration\n") {
		t.Errorf("forced cache:\n%s", data)
	}
	// Without a sidecar the cache is used with a warning.
	os.Remove(SidecarPath(path))
	req.Force, req.Source = false, nil
	noSide, err := Calibrate(req)
	if err != nil || len(noSide.Warnings) == 0 {
		t.Errorf("no sidecar: %v %v", err, noSide)
	}
}
