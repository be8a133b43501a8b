package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kilnml/kiln/builder"
	"github.com/kilnml/kiln/internal/cli"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/onnx"
	"github.com/kilnml/kiln/tensorio"
)

// buildPlan builds model into a temporary plan file and returns its path.
func buildPlan(t *testing.T, model string, args ...string) (plan, out string) {
	t.Helper()
	plan = filepath.Join(t.TempDir(), "m.plan")
	code, out, errs := kiln(t, append([]string{"build", model, "--save-engine", plan}, args...)...)
	if code != 0 {
		t.Fatalf("build: exit %d\n%s%s", code, out, errs)
	}
	return plan, out
}

func TestBuildZooAndRunPlan(t *testing.T) {
	model, set := mnist(t)
	plan, out := buildPlan(t, model)
	for _, want := range []string{"Layers (", "Convolution28", "Plus214", "fp32", "kernel", "Activation memory:", "naive sum",
		"Build time:", "Saved engine: " + plan, "Input3 min 1x1x28x28, opt 1x1x28x28, max 1x1x28x28"} {
		if !strings.Contains(out, want) {
			t.Errorf("build report lacks %q:\n%s", want, out)
		}
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.TrimRight(line, " ") != line {
			t.Errorf("trailing blanks in %q", line)
		}
	}
	// The engine reproduces the zoo's reference outputs.
	for i := 0; i < 3; i++ {
		code, out, errs := kiln(t, "run", plan, "--inputs", set(i), "--compare", set(i))
		if code != 0 || !strings.Contains(out, "(engine)") || !strings.Contains(out, "PASS") {
			t.Fatalf("run plan on set %d: exit %d\n%s%s", i, code, out, errs)
		}
	}
}

// A dynamic-batch engine on a batch the model was never given in a test
// set: its outputs match the reference executor's through --compare.
func TestBuildDynamicSimpleCNN(t *testing.T) {
	model := simpleCNN(t)
	plan, out := buildPlan(t, model, "--min-shapes", "input:1x1x28x28", "--opt-shapes", "input:4x1x28x28", "--max-shapes", "input:16x1x28x28")
	if !strings.Contains(out, "input min 1x1x28x28, opt 4x1x28x28, max 16x1x28x28") {
		t.Errorf("profile missing:\n%s", out)
	}
	in := t.TempDir()
	x := ir.NewTensor(ir.Float32, []int64{3, 1, 28, 28})
	for i, f := 0, x.F32(); i < len(f); i++ {
		f[i] = float32((i*37)%101)/50 - 1
	}
	if err := tensorio.WriteNPY(filepath.Join(in, "input.npy"), x); err != nil {
		t.Fatal(err)
	}
	ref := t.TempDir()
	if code, out, errs := kiln(t, "run", model, "--inputs", in, "--outputs", ref); code != 0 {
		t.Fatalf("reference run: exit %d\n%s%s", code, out, errs)
	}
	code, out, errs := kiln(t, "run", plan, "--inputs", in, "--compare", ref, "--rtol", "1e-5", "--atol", "1e-6")
	if code != 0 || !strings.Contains(out, "float32[3,10]") {
		t.Fatalf("plan run: exit %d\n%s%s", code, out, errs)
	}
	// Outside the profile: a clear error, not a panic.
	big := t.TempDir()
	tensorio.WriteNPY(filepath.Join(big, "input.npy"), ir.NewTensor(ir.Float32, []int64{17, 1, 28, 28}))
	if code, out, errs := kiln(t, "run", plan, "--inputs", big); code != 1 || strings.Count(errs, "kiln: ") != 1 {
		t.Fatalf("batch 17 on a max-16 engine: exit %d\n%s%s", code, out, errs)
	}
}

func TestInspectPlan(t *testing.T) {
	model := simpleCNN(t)
	plan, _ := buildPlan(t, model, "--shapes", "input:2x1x28x28")
	code, out, errs := kiln(t, "inspect", plan)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	for _, want := range []string{"Plan:", "kiln 0.", "simplecnn.fp32.onnx", "precisions=fp32", "Backend:     cpu",
		"input  float32[batch,1,28,28]", "output  float32[batch,10]", "min 2x1x28x28, opt 2x1x28x28, max 2x1x28x28",
		"activation arena", "naive sum", "/conv1/Conv", "precision: fp32, kernel ", "Weights:     ",
		"in:        input float32[batch,1,28,28]", "out:       output float32[batch,10]"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect lacks %q:\n%s", want, out)
		}
	}
	code, out, errs = kiln(t, "inspect", plan, "--json")
	if code != 0 {
		t.Fatalf("--json: exit %d\n%s", code, errs)
	}
	var r cli.PlanReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	data, _ := os.ReadFile(model)
	sum := sha256.Sum256(data)
	if r.Kind != "plan" || r.Meta.SourceSHA != hex.EncodeToString(sum[:]) || len(r.Steps) < 5 || len(r.Profiles) != 1 ||
		r.Profiles[0].ArenaBytes <= 0 || r.Profiles[0].ArenaBytes > r.Profiles[0].NaiveBytes || r.LoadError != "" {
		t.Fatalf("report %+v", r)
	}
	if fmt.Sprint(r.Profiles[0].Inputs[0].Max) != "[2 1 28 28]" || r.Steps[0].Outputs[0].Type != "float32[batch,32,13,13]" { // conv1+relu1+pool1 fused
		t.Errorf("profile %+v, first step %+v", r.Profiles[0], r.Steps[0])
	}
}

// A damaged plan is refused with engine.FormatError's reason, by run and
// inspect alike.
func TestDamagedPlan(t *testing.T) {
	model, set := mnist(t)
	plan, _ := buildPlan(t, model)
	data, err := os.ReadFile(plan)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	flipped := filepath.Join(dir, "flipped.plan")
	bad := append([]byte(nil), data...)
	bad[len(bad)/2] ^= 0x40
	os.WriteFile(flipped, bad, 0o644)
	truncated := filepath.Join(dir, "truncated.plan")
	os.WriteFile(truncated, data[:len(data)*2/3], 0o644)
	newer := filepath.Join(dir, "newer.plan")
	nv := append([]byte(nil), data...)
	nv[8] = 99 // format version
	os.WriteFile(newer, nv, 0o644)
	for file, want := range map[string]string{flipped: "corrupt", truncated: "truncated", newer: "version 99"} {
		for _, verb := range [][]string{{"inspect", file}, {"run", file, "--inputs", set(0)}} {
			code, out, errs := kiln(t, verb...)
			if code != 1 || !strings.Contains(errs, file+": ") || !strings.Contains(errs, want) || strings.Count(errs, "kiln: ") != 1 {
				t.Errorf("%v: exit %d, want 1 and %q\n%s%s", verb, code, want, out, errs)
			}
		}
	}
	// A foreign file is not mistaken for a plan.
	foreign := filepath.Join(dir, "foreign.plan")
	os.WriteFile(foreign, []byte("PK\x03\x04 this is not a plan"), 0o644)
	if code, _, errs := kiln(t, "inspect", foreign); code != 1 || !strings.Contains(errs, foreign) {
		t.Errorf("foreign file: exit %d, %s", code, errs)
	}
}

func TestNewVerbsNeedAModel(t *testing.T) {
	for _, verb := range []string{"build", "bench", "calibrate"} {
		code, _, errs := kiln(t, verb)
		if code != 2 || !strings.Contains(errs, "--help") {
			t.Errorf("%s without a model: exit %d, %s", verb, code, errs)
		}
	}
}

func TestBuildFlagErrors(t *testing.T) {
	model, _ := mnist(t)
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--shapes", "Input3:1x1x28x28", "--min-shapes", "Input3:1x1x28x28"}, "--shapes"},
		{[]string{"--min-shapes", "Input3:1x1xAx28"}, "--min-shapes"},
		{[]string{"--min-shapes", "Input3:2x1x28x28", "--max-shapes", "Input3:1x1x28x28"}, "min <= opt <= max"},
		{[]string{"--layer-precisions", "conv:fp12"}, "--layer-precisions"},
		{[]string{"--precision-constraints", "always"}, "--precision-constraints"},
		{[]string{"--int8", "--calib-data", "mnist-raw", "--calibrator", "magic"}, "--calibrator"},
		{[]string{"--int8", "--calib-cache", filepath.Join(dir, "none.cache")}, "does not exist"},
		{[]string{"--threads", "-1"}, "--threads"},
	} {
		code, out, errs := kiln(t, append([]string{"build", model}, c.args...)...)
		if code != 2 || !strings.Contains(errs, c.want) {
			t.Errorf("%v: exit %d, want 2 and %q\n%s%s", c.args, code, c.want, out, errs)
		}
	}
	// A profile for an input the model does not have is the builder's
	// error (exit 1), naming the input.
	if code, _, errs := kiln(t, "build", model, "--shapes", "nosuch:1x2"); code != 1 || !strings.Contains(errs, "nosuch") {
		t.Errorf("unknown input in --shapes: exit %d, %s", code, errs)
	}
}

// --int8 with --calib-data calibrates (in the builder) and writes the
// cache; the INT8 engine still classifies the zoo's test sets as the FP32
// model does; the cache is then reused, and refused for another model.
func TestBuildCalibration(t *testing.T) {
	model, set := mnist(t)
	cnn := simpleCNN(t)
	needMNIST(t)
	dir := t.TempDir()
	cache, plan := filepath.Join(dir, "zoo.cache"), filepath.Join(dir, "zoo.int8.plan")
	code, out, errs := kiln(t, "build", model, "--int8", "--calib-data", "mnist-raw", "--calib-batches", "20",
		"--calib-batch-size", "1", "--calib-cache", cache, "--calibrator", "minmax", "--save-engine", plan)
	if code != 0 || !fileExists(cache) || !strings.Contains(errs, "calibrate: 20/20") {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	if !strings.Contains(out, "fp32,int8") || !strings.Contains(out, " int8 ") {
		t.Errorf("no int8 layer in the report:\n%s", out)
	}
	for i := 0; i < 3; i++ {
		got := filepath.Join(dir, fmt.Sprint("out", i))
		if code, out, errs := kiln(t, "run", plan, "--inputs", set(i), "--outputs", got); code != 0 {
			t.Fatalf("run INT8 plan: exit %d\n%s%s", code, out, errs)
		}
		if a, b := argmax(t, filepath.Join(got, "output_0.pb")), argmax(t, filepath.Join(set(i), "output_0.pb")); a != b {
			t.Errorf("test set %d: INT8 engine says %d, the reference %d", i, a, b)
		}
	}
	// The cache alone: read with the algorithm its header names.
	if code, out, errs := kiln(t, "build", model, "--int8", "--calib-cache", cache); code != 0 || strings.Contains(errs, "calibrate:") {
		t.Fatalf("cache only: exit %d\n%s%s", code, out, errs)
	}
	code, _, errs = kiln(t, "build", cnn, "--int8", "--calib-cache", cache)
	if code != 1 || !strings.Contains(errs, "stale") || !strings.Contains(errs, "--force") {
		t.Fatalf("another model's cache: exit %d, %s", code, errs)
	}
	// Dynamic ranges from kiln calibrate serve as well.
	ranges := filepath.Join(dir, "zoo.ranges")
	if code, out, errs := kiln(t, "calibrate", model, "--data", "mnist-raw", "--batches", "2", "--batch-size", "1",
		"--cache", filepath.Join(dir, "other.cache"), "--dynamic-range", ranges); code != 0 {
		t.Fatalf("calibrate: exit %d\n%s%s", code, out, errs)
	}
	if code, out, errs := kiln(t, "build", model, "--int8", "--dynamic-range", ranges); code != 0 || !strings.Contains(out, " int8 ") {
		t.Fatalf("--dynamic-range: exit %d\n%s%s", code, out, errs)
	}
	// So does kiln calibrate's cache, made on the unoptimized graph.
	if code, out, errs := kiln(t, "build", model, "--int8", "--calib-cache", filepath.Join(dir, "other.cache")); code != 0 || !strings.Contains(out, " int8 ") {
		t.Fatalf("kiln calibrate's cache: exit %d\n%s%s", code, out, errs)
	}
	// INT8 without any source of ranges is the builder's clear error.
	if code, _, errs := kiln(t, "build", model, "--int8"); code != 1 || !strings.Contains(errs, "--calib-data") {
		t.Fatalf("--int8 alone: exit %d, %s", code, errs)
	}
}

func argmax(t *testing.T, file string) int {
	t.Helper()
	x, err := onnx.ReadTensorFile(file)
	if err != nil {
		t.Fatal(err)
	}
	best := 0
	for i, v := range x.F32() {
		if v > x.F32()[best] {
			best = i
		}
	}
	return best
}

// --verbose streams what the builder logs, as it logs it.
func TestBuildVerbose(t *testing.T) {
	model, _ := mnist(t)
	saved := builder.Passes
	t.Cleanup(func() { builder.Passes = saved })
	builder.Passes = append(append([]builder.Pass{}, saved...), builder.Pass{Name: "cli-test", Run: func(m *ir.Model, cfg *builder.Config, _ *builder.Report) error {
		if cfg.Log != nil {
			cfg.Log("cli-test pass saw %d nodes", len(m.Graph.Nodes))
		}
		return nil
	}})
	code, out, errs := kiln(t, "build", model, "--verbose")
	if code != 0 || !strings.Contains(out, "[V] cli-test pass saw ") {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	code, out, _ = kiln(t, "build", model)
	if code != 0 || strings.Contains(out, "cli-test") {
		t.Fatalf("without --verbose: exit %d\n%s", code, out)
	}
}
