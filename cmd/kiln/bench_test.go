package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	cudabackend "github.com/kilnml/kiln/backend/cuda"
	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/tensorio"
	"github.com/kilnml/kiln/tools/benchstat"
)

// quick are bench flags that keep tests short: no warm-up, no minimum
// duration, a few runs.
var quick = []string{"--warmup", "0", "--duration", "0"}

func benchJSON(t *testing.T, args ...string) benchResult {
	t.Helper()
	code, out, errs := kiln(t, append(append([]string{"bench"}, args...), "--json")...)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	var r benchResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	return r
}

// The summary is consistent with the exported per-run times under
// trtexec's rules, and throughput is batch × runs / wall time.
func TestBenchONNXSummary(t *testing.T) {
	model := simpleCNN(t)
	times := filepath.Join(t.TempDir(), "times.json")
	args := append([]string{model, "--batch", "2", "--iterations", "5", "--threads", "1", "--export-times", times}, quick...)
	r := benchJSON(t, args...)
	if r.Plan || r.Runs != 5 || r.Batch != 2 || r.Threads != 1 || len(r.Inputs) != 1 || r.Inputs[0] != "input float32[2,1,28,28]" {
		t.Fatalf("result %+v", r)
	}
	if want := 2 * 5 / r.WallSeconds; math.Abs(r.ThroughputQPS-want) > 1e-9*want {
		t.Errorf("qps %g, want batch×runs/wall = %g", r.ThroughputQPS, want)
	}
	data, err := os.ReadFile(times)
	if err != nil {
		t.Fatal(err)
	}
	var runs []runTime
	if err := json.Unmarshal(data, &runs); err != nil || len(runs) != 5 {
		t.Fatalf("times: %v, %d runs", err, len(runs))
	}
	var lat []float64
	for i, x := range runs {
		lat = append(lat, x.LatencyMs)
		if math.Abs(x.EndMs-x.StartMs-x.LatencyMs) > 1e-9 || (i > 0 && x.StartMs < runs[i-1].EndMs) {
			t.Errorf("run %d: %+v", i, x)
		}
	}
	want := benchstat.Summarize(lat, []float64{90, 95, 99})
	const eps = 1e-9
	l := r.Latency
	if l.N != 5 || math.Abs(l.Median-want.Median) > eps || math.Abs(l.Min-want.Min) > eps || math.Abs(l.Max-want.Max) > eps ||
		math.Abs(l.Mean-want.Mean) > eps || math.Abs(l.CoV-want.CoV) > eps || len(l.Percentiles) != 3 {
		t.Fatalf("latency %+v, from the exported times %+v", l, want)
	}
	for i, pv := range l.Percentiles {
		if pv.P != want.Percentiles[i].P || math.Abs(pv.Value-want.Percentiles[i].Value) > eps {
			t.Errorf("percentile %+v, want %+v", pv, want.Percentiles[i])
		}
	}
	if l.Unstable != (l.CoV > 0.025) {
		t.Errorf("unstable flag %v with CoV %g", l.Unstable, l.CoV)
	}
}

func TestBenchPlanText(t *testing.T) {
	model, _ := mnist(t)
	plan, _ := buildPlan(t, model)
	code, out, errs := kiln(t, append([]string{"bench", plan, "--iterations", "3", "--percentile", "50,99"}, quick...)...)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	for _, want := range []string{"(plan; precisions fp32)", "Input3 float32[1,1,28,28] (random, seed 1)", "=== Performance summary ===",
		"Throughput:", "qps (batch 1 × 3 runs", "median = ", "percentile(50%) = ", "percentile(99%) = ", "Coefficient of variation:"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "percentile(90%)") {
		t.Errorf("--percentile 50,99 still printed p90:\n%s", out)
	}
}

func TestBenchProfile(t *testing.T) {
	model, set := mnist(t)
	plan, _ := buildPlan(t, model)
	p, err := engine.ReadPlanFile(plan)
	if err != nil {
		t.Fatal(err)
	}
	layers := 0 // shape steps run in the shape pass, not per inference
	for _, s := range p.Steps {
		if !s.ShapeStep {
			layers++
		}
	}
	prof := filepath.Join(t.TempDir(), "profile.json")
	code, out, errs := kiln(t, append([]string{"bench", plan, "--iterations", "4", "--inputs", set(0), "--dump-profile", "--export-profile", prof}, quick...)...)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	for _, want := range []string{"=== Profile (4 runs) ===", "Time (ms)", "Avg. (ms)", "Median (ms)", "Min (ms)", "Time (%)", "Convolution28", "Plus214",
		fmt.Sprintf("Total (%d layers, 4 runs)", layers), "(" + set(0) + ")"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	data, err := os.ReadFile(prof)
	if err != nil {
		t.Fatal(err)
	}
	var recs []map[string]any
	if err := json.Unmarshal(data, &recs); err != nil || len(recs) != layers+1 {
		t.Fatalf("profile: %v, %d records", err, len(recs))
	}
	if recs[0]["count"] != 4.0 {
		t.Errorf("first record %v", recs[0])
	}
	sum := 0.0
	for _, r := range recs[1:] {
		sum += r["percent"].(float64)
		if tot, avg := r["time_ms"].(float64), r["average_ms"].(float64); math.Abs(tot/4-avg) > 1e-9 {
			t.Errorf("%v: average is not time/runs", r)
		}
		if low, ok := r["min_ms"].(float64); !ok || low <= 0 || low > r["median_ms"].(float64) || low > r["average_ms"].(float64) {
			t.Errorf("%v: min_ms missing or above the median or average", r)
		}
	}
	if math.Abs(sum-100) > 1e-6 {
		t.Errorf("percentages add up to %g", sum)
	}
}

func TestBenchFlagErrors(t *testing.T) {
	model, _ := mnist(t)
	plan, _ := buildPlan(t, model)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{model, "--iterations", "0"}, "--iterations"},
		{[]string{model, "--rounds", "3"}, "needs --compare-ort"},
		{[]string{model, "--rounds", "0", "--compare-ort"}, "--rounds must be at least 1"},
		{[]string{model, "--percentile", "90,101"}, "--percentile"},
		{[]string{model, "--warmup", "-1"}, "--warmup"},
		{[]string{model, "--batch", "4"}, "fixed batch of 1"},
		{[]string{model, "--batch", "2", "--shapes", "Input3:2x1x28x28"}, "--batch"},
		{[]string{plan, "--int8"}, "is a plan"},
		{[]string{plan, "--shapes", "nosuch:1x2"}, "no input \"nosuch\""},
		{[]string{plan, "--batch", "3"}, "fixed batch"},
		{[]string{plan, "--batch", "1", "--inputs", "somewhere"}, "--inputs"},
	} {
		code, out, errs := kiln(t, append(append([]string{"bench"}, quick...), c.args...)...)
		if code != 2 || !strings.Contains(errs, c.want) {
			t.Errorf("%v: exit %d, want 2 and %q\n%s%s", c.args, code, c.want, out, errs)
		}
	}
}

// Shapes outside the engine's profile fail with the engine's message.
func TestBenchShapesOutsideProfile(t *testing.T) {
	model := simpleCNN(t)
	plan, _ := buildPlan(t, model, "--shapes", "input:2x1x28x28")
	code, _, errs := kiln(t, append([]string{"bench", plan, "--batch", "3"}, quick...)...)
	if code != 1 || strings.Count(errs, "kiln: ") != 1 {
		t.Fatalf("exit %d, %s", code, errs)
	}
	r := benchJSON(t, append([]string{plan, "--iterations", "2"}, quick...)...)
	if r.Batch != 2 || !r.Plan {
		t.Fatalf("opt shape not used: %+v", r)
	}
}

// An .onnx model benched on given inputs is built for their shapes.
func TestBenchONNXInputs(t *testing.T) {
	model := simpleCNN(t)
	in := t.TempDir()
	x := ir.NewTensor(ir.Float32, []int64{3, 1, 28, 28})
	if err := tensorio.WriteNPY(filepath.Join(in, "input.npy"), x); err != nil {
		t.Fatal(err)
	}
	r := benchJSON(t, append([]string{model, "--inputs", in, "--iterations", "2"}, quick...)...)
	if r.Batch != 3 || r.InputSource != in || r.Runs != 2 {
		t.Fatalf("result %+v", r)
	}
}

func TestBenchCompareORT(t *testing.T) {
	model, _ := mnist(t)
	if os.Getenv("KILN_ORT_DIR") == "" {
		t.Setenv("KILN_ORT_DIR", "")
		r := benchJSON(t, append([]string{model, "--iterations", "2", "--compare-ort"}, quick...)...)
		if r.ORT != nil || !strings.Contains(strings.Join(r.Warnings, "\n"), "KILN_ORT_DIR is not set") {
			t.Fatalf("without ONNX Runtime: %+v", r)
		}
		t.Skip("skipping the ONNX Runtime comparison: KILN_ORT_DIR is not set")
	}
	r := benchJSON(t, append([]string{model, "--iterations", "3", "--threads", "1", "--compare-ort"}, quick...)...)
	if r.ORT == nil || r.ORT.MedianMs <= 0 || r.ORT.Threads != 1 || math.Abs(r.ORT.Ratio-r.Latency.Median/r.ORT.MedianMs) > 1e-12 {
		t.Fatalf("ORT result %+v", r.ORT)
	}
	// --rounds alternates the two: one ratio per round, their median reported.
	r = benchJSON(t, append([]string{model, "--iterations", "4", "--threads", "1", "--compare-ort", "--rounds", "3"}, quick...)...)
	if r.ORT == nil || len(r.ORT.Rounds) != 3 || r.Runs < 3 {
		t.Fatalf("--rounds 3: %d runs, ORT %+v", r.Runs, r.ORT)
	}
	var ratios, medians []float64
	for _, rd := range r.ORT.Rounds {
		if rd.KilnMedianMs <= 0 || rd.ORTMedianMs <= 0 || math.Abs(rd.Ratio-rd.KilnMedianMs/rd.ORTMedianMs) > 1e-12 {
			t.Fatalf("round %+v", rd)
		}
		ratios, medians = append(ratios, rd.Ratio), append(medians, rd.ORTMedianMs)
	}
	slices.Sort(ratios)
	slices.Sort(medians)
	if r.ORT.Ratio != ratios[1] || r.ORT.MedianMs != medians[1] {
		t.Fatalf("--rounds 3: ratio %v, median %v; rounds' ratios %v, medians %v", r.ORT.Ratio, r.ORT.MedianMs, ratios, medians)
	}
	// A plan is compared through its source model.
	plan, _ := buildPlan(t, model)
	r = benchJSON(t, append([]string{plan, "--iterations", "2", "--compare-ort"}, quick...)...)
	if r.ORT == nil {
		t.Fatalf("plan: no ORT result, warnings %v", r.Warnings)
	}
}

func TestLayerLabel(t *testing.T) {
	for _, c := range []struct {
		l    layerTime
		want string
	}{
		{layerTime{Name: "conv1 + relu1", Members: []string{"conv1", "relu1"}, Ops: []string{"Conv", "Relu"}}, "conv1 + relu1 [Conv+Relu]"},
		{layerTime{Name: "block1", Members: []string{"conv1", "relu1"}}, "block1 [conv1 + relu1]"},
		{layerTime{Name: "conv1", Members: []string{"conv1"}, Ops: []string{"Conv"}}, "conv1"},
	} {
		if got := layerLabel(c.l); got != c.want {
			t.Errorf("%+v: %q, want %q", c.l, got, c.want)
		}
	}
}

// Without the CUDA backend, bench inputs stay in Go memory: pinFeeds
// reports nothing pinned and leaves every feed as it was.
func TestPinFeedsWithoutCUDA(t *testing.T) {
	x := ir.NewTensor(ir.Float32, []int64{2, 3})
	feeds := map[string]*ir.Tensor{"x": x}
	pinned, release, err := pinFeeds(feeds)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if pinned || feeds["x"] != x {
		t.Fatalf("pinFeeds moved an input with the CUDA backend off (pinned=%v)", pinned)
	}
}

// kiln bench on the GPU reports the CUDA steps' time per timed run (the
// totals of the timed windows over their runs), and nothing without them.
func TestBenchGPUPerRun(t *testing.T) {
	var g gpuTotals
	if g.perRun() != nil {
		t.Fatal("a per-run GPU summary without CUDA steps")
	}
	ms := time.Millisecond
	g.add(cudabackend.Timing{H2D: 2 * ms, Compute: 4 * ms, D2H: ms, Staging: 3 * ms, Steps: 10}, 2)
	g.add(cudabackend.Timing{H2D: 1 * ms, Compute: 2 * ms, D2H: ms, Steps: 5}, 1)
	p := g.perRun()
	want := gpuPerRun{Runs: 3, H2DMs: 1, ComputeMs: 2, D2HMs: 2.0 / 3, StagingMs: 1, StepsPerRun: 5}
	if p == nil || *p != want {
		t.Fatalf("perRun = %+v, want %+v", p, want)
	}
	r := &benchResult{Model: "m.onnx", Batch: 1, Runs: 3, GPU: p, Warnings: []string{}}
	var b strings.Builder
	if err := r.writeText(&b, false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "GPU per run: H2D = 1") || !strings.Contains(b.String(), "GPU compute = 2") {
		t.Errorf("the text summary lacks the per-run GPU line:\n%s", b.String())
	}
}
