package demo

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kilnml/kiln/data/mnist"
)

func needMNIST(t *testing.T) {
	t.Helper()
	if _, err := mnist.DefaultDir(); err != nil {
		t.Skipf("MNIST data not available: %v", err)
	}
}

// tiny is the whole flow on a small configuration: 640 training images in
// 20 steps, 2 calibration batches of 32, 256 test images at batch 64.
func tiny(keep string) MNISTConfig {
	plain := false
	return MNISTConfig{
		Epochs: 1, TrainBatch: 32, TrainLimit: 640, TestLimit: 256, BaselineImages: -1,
		BatchSizes: []int{64}, CalibBatches: []int{2}, CalibBatchSize: 32, Threads: 2,
		ORT: "off", Keep: keep, Log: &bytes.Buffer{}, Terminal: &plain,
	}
}

func TestDemoMNISTTinyKeep(t *testing.T) {
	needMNIST(t)
	dir := filepath.Join(t.TempDir(), "artifacts")
	// A stale cache from an earlier run is removed before calibrating.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, CacheFile), []byte("TRT-0-Bogus\nx: 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := tiny(dir)
	res, err := RunMNIST(cfg)
	if err != nil {
		t.Fatalf("%v\nlog:\n%s", err, cfg.Log)
	}
	log := cfg.Log.(*bytes.Buffer).String()
	for _, want := range []string{"epoch 1/1", "removed old calibration cache", "calibrate (2 batches)", "fp32 @64", "int8 @64", "built the fp8 engine"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q", want)
		}
	}

	// Artifacts stay in --keep.
	for _, f := range []string{CheckpointFile, ONNXFile, CacheFile, CacheFile + ".json",
		PlanFile("fp32"), PlanFile("fp16"), PlanFile("int8"), PlanFile("fp8")} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("artifact %s: %v", f, err)
		}
	}
	cache, _ := os.ReadFile(filepath.Join(dir, CacheFile))
	if !strings.HasPrefix(string(cache), "TRT-") || !strings.Contains(string(cache), "EntropyCalibration2") {
		t.Errorf("the calibration cache was not rewritten by the entropy calibrator:\n%s", cache)
	}
	if !res.Artifacts.Kept || res.Artifacts.Dir != dir || len(res.Artifacts.Files) < 8 {
		t.Errorf("artifacts: %+v", res.Artifacts)
	}

	// One table with every mode but ONNX Runtime (off), sane numbers.
	if len(res.Tables) != 1 || res.Tables[0].BatchSize != 64 {
		t.Fatalf("tables: %+v", res.Tables)
	}
	rows := map[string]Row{}
	var keys []string
	for _, r := range res.Tables[0].Rows {
		rows[r.Key] = r
		keys = append(keys, r.Key)
		if r.Images != 256 || r.TimedBatches != 4 || !(r.AvgMs > 0) || !(r.Speedup > 0) {
			t.Errorf("row %s: %+v", r.Key, r)
		}
	}
	if got := strings.Join(keys, ","); got != "baseline,fp32,fp16,int8,fp8" {
		t.Errorf("modes %s", got)
	}
	if rows["baseline"].Speedup != 1 {
		t.Errorf("baseline speedup %v", rows["baseline"].Speedup)
	}
	fp32 := rows["fp32"].Accuracy
	if fp32 < 50 {
		t.Errorf("FP32 accuracy %.2f%%: the tiny training should reach well above chance", fp32)
	}
	// The engines classify the same images as the reference executor: FP32
	// and FP16 agree closely, INT8/FP8 after only 2 calibration batches of
	// 32 within a few points (the entropy calibrator once clipped the
	// normalized input at its background value: 22 points lost here).
	for key, band := range map[string]float64{"baseline": 0.5, "fp16": 1, "int8": 4, "fp8": 4} {
		if d := math.Abs(rows[key].Accuracy - fp32); d > band {
			t.Errorf("%s accuracy %.2f%% is %.2f points from FP32's %.2f%% (band %.1f)", key, rows[key].Accuracy, d, fp32, band)
		}
	}
	if len(res.Calibrations) != 1 || res.Calibrations[0].Batches != 2 || res.Calibrations[0].Images != 64 ||
		res.Calibrations[0].Accuracy != rows["int8"].Accuracy {
		t.Errorf("calibrations: %+v", res.Calibrations)
	}

	var text bytes.Buffer
	if err := WriteText(&text, res); err != nil {
		t.Fatal(err)
	}
	out := text.String()
	for _, want := range []string{"| mode | accuracy (%) | avg time / batch (ms) | speedup vs baseline |",
		"| reference executor FP32 (baseline) |", "| kiln INT8 engine |", "1.00x", "artifacts kept in"} {
		if !strings.Contains(out, want) {
			t.Errorf("text lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "\n| "); n != 6 { // header and 5 modes (the rule is "|---")
		t.Errorf("table has %d lines, want 6:\n%s", n, out)
	}

	var js bytes.Buffer
	if err := WriteJSON(&js, res); err != nil {
		t.Fatal(err)
	}
	var back Result
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatalf("JSON: %v\n%s", err, js.String())
	}
	if len(back.Tables) != 1 || len(back.Tables[0].Rows) != 5 || back.Tables[0].Rows[3].Key != "int8" {
		t.Errorf("JSON round trip: %+v", back.Tables)
	}
}

func TestDemoMNISTConfigErrors(t *testing.T) {
	for _, cfg := range []MNISTConfig{
		{Epochs: -1},
		{BatchSizes: []int{0}},
		{CalibBatches: []int{-3}},
		{Calibrator: "magic"},
		{ORT: "maybe"},
	} {
		cfg.Log = &bytes.Buffer{}
		if _, err := RunMNIST(cfg); err == nil {
			t.Errorf("%+v: no error", cfg)
		}
	}
}
