package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	mnistdata "github.com/kilnml/kiln/data/mnist"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/quant/calib"
	"github.com/kilnml/kiln/tensorio"
)

func needMNIST(t *testing.T) {
	t.Helper()
	if _, err := mnistdata.DefaultDir(); err != nil {
		t.Skipf("skipping: MNIST data not available: %v", err)
	}
}

func simpleCNN(t *testing.T) string {
	needShared(t)
	return filepath.Join(shared, "models", "bench", "simplecnn.fp32.onnx")
}

func TestCalibrateZooMNIST(t *testing.T) {
	model, _ := mnist(t)
	needMNIST(t)
	dir := t.TempDir()
	cache, dr := filepath.Join(dir, "zoo.cache"), filepath.Join(dir, "zoo.ranges")
	args := []string{"calibrate", model, "--data", "mnist-raw", "--batches", "2", "--batch-size", "1", "--cache", cache}
	code, out, errs := kiln(t, append(args, "--dynamic-range", dr)...)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	for _, want := range []string{"entropy2", "2 batch(es) of 1", "Input3", "Plus214_Output_0", "saturation %", "SQNR dB"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errs, "calibrate: 2/2 batches") {
		t.Errorf("no progress on stderr: %q", errs)
	}
	c, err := calib.ReadCacheFile(cache)
	if err != nil {
		t.Fatal(err)
	}
	if c.Version != "100900" || c.Algorithm != "EntropyCalibration2" {
		t.Errorf("cache header %s-%s", c.Version, c.Algorithm)
	}
	// The input holds raw pixels: its observed range is within 0..255.
	side, err := calib.ReadSidecar(calib.SidecarPath(cache))
	if err != nil || side == nil {
		t.Fatalf("sidecar: %v", err)
	}
	in := side.Tensors["Input3"]
	if in.Min < 0 || in.Max > 255 || in.Max < 100 {
		t.Errorf("Input3 range %+v, want raw pixels", in)
	}
	data, _ := os.ReadFile(model)
	sum := sha256.Sum256(data)
	if side.ModelSHA256 != hex.EncodeToString(sum[:]) || side.Batches != 2 || side.BatchSize != 1 {
		t.Errorf("sidecar: model %s batches %d size %d", side.ModelSHA256, side.Batches, side.BatchSize)
	}
	// The dynamic-range file carries the same amax as the cache (which
	// stores amax/127 as float32).
	text, _ := os.ReadFile(dr)
	d, err := calib.ParseDynamicRanges(text, dr)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Names) != len(c.Names) || len(d.Names) == 0 {
		t.Fatalf("dynamic ranges for %d tensors, cache for %d", len(d.Names), len(c.Names))
	}
	for _, n := range c.Names {
		amax, _ := c.Amax(n)
		if got := d.Amax[n]; math.Abs(got-amax) > 1e-6*amax {
			t.Errorf("%s: dynamic range %g, cache %g", n, got, amax)
		}
	}

	// Again: the cache is reused.
	code, out, errs = kiln(t, args...)
	if code != 0 || !strings.Contains(out, "from the cache") || strings.Contains(errs, "calibrate:") {
		t.Fatalf("reuse: exit %d\n%s%s", code, out, errs)
	}
	// Another calibrator: the cache does not fit; --force recalibrates.
	code, _, errs = kiln(t, append(args, "--calibrator", "minmax")...)
	if code != 1 || !strings.Contains(errs, "--force") || !strings.Contains(errs, "EntropyCalibration2") {
		t.Fatalf("other calibrator on the cache: exit %d, %s", code, errs)
	}
	code, out, errs = kiln(t, append(args, "--calibrator", "minmax", "--force", "--trt-version", "8.6.1")...)
	if code != 0 {
		t.Fatalf("--force: exit %d\n%s%s", code, out, errs)
	}
	if c, err := calib.ReadCacheFile(cache); err != nil || c.Algorithm != "MinMaxCalibration" || c.Version != "8601" {
		t.Fatalf("after --force: %+v, %v", c, err)
	}
}

// A cache made for one model is stale for another: the message says what
// changed and how to recalibrate.
func TestCalibrateStaleCache(t *testing.T) {
	zoo, _ := mnist(t)
	cnn := simpleCNN(t)
	needMNIST(t)
	cache := filepath.Join(t.TempDir(), "c.cache")
	if code, out, errs := kiln(t, "calibrate", zoo, "--data", "mnist-raw", "--batches", "1", "--batch-size", "1", "--cache", cache); code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	code, out, errs := kiln(t, "calibrate", cnn, "--data", "mnist", "--batches", "1", "--batch-size", "2", "--cache", cache)
	if code != 1 || !strings.Contains(errs, "stale") || !strings.Contains(errs, "model changed") || !strings.Contains(errs, "--force") {
		t.Fatalf("stale cache: exit %d\n%s%s", code, out, errs)
	}
	if code, out, errs := kiln(t, "calibrate", cnn, "--data", "mnist", "--batches", "1", "--batch-size", "2", "--cache", cache, "--force"); code != 0 {
		t.Fatalf("--force: exit %d\n%s%s", code, out, errs)
	}
}

func TestCalibrateSimpleCNNJSON(t *testing.T) {
	model := simpleCNN(t)
	needMNIST(t)
	cache := filepath.Join(t.TempDir(), "cnn.cache")
	code, out, errs := kiln(t, "calibrate", model, "--data", "mnist", "--batches", "2", "--batch-size", "8",
		"--calibrator", "percentile", "--percentile", "99.9", "--cache", cache, "--json")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	var r calibReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if r.Calibrator != "percentile" || r.Batches != 2 || r.BatchSize != 8 || r.FromCache || len(r.Tensors) < 5 {
		t.Fatalf("report %+v", r)
	}
	// The normalized MNIST input spans (0-0.1307)/0.3081 .. (1-0.1307)/0.3081.
	in := r.Tensors[0]
	if in.Name != "input" || math.Abs(in.Min-(-0.1307/0.3081)) > 1e-4 || math.Abs(in.Max-(0.8693/0.3081)) > 1e-4 {
		t.Errorf("input tensor %+v", in)
	}
	for _, tt := range r.Tensors {
		if tt.Amax <= 0 || math.Abs(tt.Scale-tt.Amax/127) > 1e-12 || tt.Saturation == nil || tt.SQNR == nil {
			t.Errorf("tensor %+v", tt)
		}
		if *tt.Saturation < 0 || *tt.Saturation > 100 {
			t.Errorf("%s: saturation %g%%", tt.Name, *tt.Saturation)
		}
	}
}

func TestCalibrateBadData(t *testing.T) {
	model, _ := mnist(t)
	dir := t.TempDir()
	cache := filepath.Join(dir, "c.cache")
	// A folder with one sample of the wrong shape.
	wrong := filepath.Join(dir, "wrong")
	os.Mkdir(wrong, 0o755)
	if err := tensorio.WriteNPY(filepath.Join(wrong, "a.npy"), ir.NewTensor(ir.Float32, []int64{1, 1, 27, 28})); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	os.Mkdir(empty, 0o755)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--data", filepath.Join(dir, "nope")}, 1, "nope"},
		{[]string{"--data", wrong}, 1, "a.npy"},
		{[]string{"--data", empty}, 1, ""},
		{[]string{"--data", "mnist", "--calibrator", "magic"}, 2, "unknown calibrator"},
		{[]string{"--data", "mnist", "--percentile", "120"}, 2, "--percentile"},
		{[]string{"--data", "mnist", "--trt-version", "ten"}, 2, "--trt-version"},
		{[]string{}, 2, "--data"},
	} {
		args := append([]string{"calibrate", model, "--cache", cache}, c.args...)
		code, out, errs := kiln(t, args...)
		if code != c.code || !strings.Contains(errs, c.want) || strings.Count(errs, "kiln: ") != 1 {
			t.Errorf("%v: exit %d (want %d)\n%s%s", c.args, code, c.code, out, errs)
		}
		if fileExists(cache) {
			t.Fatalf("%v: a failed calibration wrote %s", c.args, cache)
		}
	}
}
