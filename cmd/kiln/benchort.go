package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/onnx"
)

// ortResult is ONNX Runtime's timing of the same model, inputs and threads
// (from ../shared/tools/ort's run.js --bench).
type ortResult struct {
	Version    string  `json:"version"`
	Threads    int     `json:"threads"`
	Iterations int     `json:"iterations"`
	MedianMs   float64 `json:"median_ms"`
	MinMs      float64 `json:"min_ms"`
	P90Ms      float64 `json:"p90_ms"`
	// Ratio is kiln's median over ONNX Runtime's: below 1, kiln is faster.
	// With --rounds, it is the median of the rounds' ratios, and MedianMs
	// the median of ONNX Runtime's round medians.
	Ratio  float64    `json:"kiln_over_ort_median"`
	Rounds []ortRound `json:"rounds,omitempty"`
}

// ortRound is one of --rounds' alternations: kiln timed, then ONNX Runtime
// for as many runs, so both see the same minute of the machine's load.
type ortRound struct {
	KilnMedianMs float64 `json:"kiln_median_ms"`
	ORTMedianMs  float64 `json:"ort_median_ms"`
	Ratio        float64 `json:"ratio"`
}

func (o *ortResult) verdict() string {
	if o.Ratio < 1 {
		return fmt.Sprintf("kiln %.2f× faster", 1/o.Ratio)
	}
	return fmt.Sprintf("kiln %.2f× slower", o.Ratio)
}

// compareORT times ONNX Runtime on the ONNX model behind path (the model
// itself, or the source of a plan when that file is still there and
// unchanged). Where that is impossible it adds a warning and returns nil.
func compareORT(path string, src *sourceModel, p *engine.Plan, feeds map[string]*ir.Tensor, threads int, res *benchResult) (*ortResult, error) {
	dir := os.Getenv("KILN_ORT_DIR")
	skip := func(why string) (*ortResult, error) {
		res.Warnings = append(res.Warnings, "--compare-ort: "+why)
		return nil, nil
	}
	if dir == "" {
		return skip("KILN_ORT_DIR is not set (a folder with run.js and node_modules/onnxruntime-node: copy ../shared/tools/ort and run npm ci there)")
	}
	model := path
	if src == nil {
		m := p.Meta.SourceName
		data, err := os.ReadFile(m)
		if m == "" || err != nil {
			return skip(fmt.Sprintf("the plan's source model %q is not readable", m))
		}
		if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != p.Meta.SourceSHA {
			return skip(fmt.Sprintf("the plan's source model %s changed since the build", m))
		}
		model = m
	}
	abs, err := filepath.Abs(model)
	if err != nil {
		return nil, err
	}
	in, err := os.MkdirTemp("", "kiln-bench-ort")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(in)
	for i, b := range p.Inputs {
		t := *feeds[b.Name]
		t.Name = b.Name
		if err := onnx.WriteTensorFile(filepath.Join(in, fmt.Sprintf("input_%d.pb", i)), &t); err != nil {
			return nil, err
		}
	}
	iters := min(max(res.Runs, 10), 100000)
	// ONNX Runtime gets as long as kiln took, and then some, to finish.
	limit := 2*time.Duration(res.WallSeconds*float64(time.Second)) + 2*time.Minute
	cx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(cx, "node", filepath.Join(dir, "run.js"), abs, in, "--threads", fmt.Sprint(threads), "--bench", fmt.Sprint(iters))
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("--compare-ort: node run.js: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	var out struct {
		Median float64 `json:"median_ms"`
		Min    float64 `json:"min_ms"`
		P90    float64 `json:"p90_ms"`
		Iter   int     `json:"iterations"`
		ORT    string  `json:"ort"`
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &out); err != nil || out.Median <= 0 {
		return nil, fmt.Errorf("--compare-ort: unexpected output from run.js: %q", stdout.String())
	}
	return &ortResult{Version: out.ORT, Threads: threads, Iterations: out.Iter, MedianMs: out.Median, MinMs: out.Min, P90Ms: out.P90}, nil
}
