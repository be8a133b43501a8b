// Package ortrun runs ONNX Runtime (CPU) through ../shared/tools/ort's
// run.js as an oracle and a speed peer. The tool must be installed (npm ci)
// in a writable copy named by KILN_ORT_DIR; scripts/test.sh does that in CI.
package ortrun

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/onnx"
)

// Dir returns the ONNX Runtime tool folder, or "" with the reason.
func Dir() (string, string) {
	d := os.Getenv("KILN_ORT_DIR")
	if d == "" {
		return "", "KILN_ORT_DIR is not set (copy ../shared/tools/ort somewhere writable and run npm ci there; scripts/test.sh does)"
	}
	if _, err := os.Stat(filepath.Join(d, "node_modules", "onnxruntime-node")); err != nil {
		return "", "KILN_ORT_DIR=" + d + " has no node_modules/onnxruntime-node (run npm ci there)"
	}
	if _, err := exec.LookPath("node"); err != nil {
		return "", "node is not installed"
	}
	return d, ""
}

// Timing is run.js's --bench summary.
type Timing struct {
	MedianMs float64 `json:"median_ms"`
	MinMs    float64 `json:"min_ms"`
	P90Ms    float64 `json:"p90_ms"`
	Threads  any     `json:"threads"`
	Version  string  `json:"ort"`
}

// Run executes model on inputs (in graph-input order) and returns the
// outputs in graph-output order. threads 0 lets ONNX Runtime choose; bench
// > 0 also times that many runs.
func Run(model string, inputs []*ir.Tensor, threads, bench int) ([]*ir.Tensor, *Timing, error) {
	return RunOpt(model, inputs, threads, bench, "")
}

// RunOpt is Run with ONNX Runtime's graph optimization level: "all" (""),
// "basic" or "disabled". ONNX Runtime's CPU QDQ fusions (level 2) turn
// float8 Q/DQ around Conv into QLinearConv, which has no float8 kernel:
// "basic" runs such models as plain Q, DQ and float ops.
func RunOpt(model string, inputs []*ir.Tensor, threads, bench int, opt string) ([]*ir.Tensor, *Timing, error) {
	dir, why := Dir()
	if dir == "" {
		return nil, nil, errors.New(why)
	}
	tmp, err := os.MkdirTemp("", "kiln-ort")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(tmp)
	in, out := filepath.Join(tmp, "in"), filepath.Join(tmp, "out")
	os.MkdirAll(in, 0o755)
	for i, t := range inputs {
		if err := onnx.WriteTensorFile(filepath.Join(in, fmt.Sprintf("input_%d.pb", i)), t); err != nil {
			return nil, nil, err
		}
	}
	abs, err := filepath.Abs(model)
	if err != nil {
		return nil, nil, err
	}
	args := []string{filepath.Join(dir, "run.js"), abs, in, out}
	if threads > 0 {
		args = append(args, "--threads", strconv.Itoa(threads))
	}
	if bench > 0 {
		args = append(args, "--bench", strconv.Itoa(bench))
	}
	if opt != "" {
		args = append(args, "--opt", opt)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, nil, fmt.Errorf("onnxruntime on %s: %v: %s", model, err, bytes.TrimSpace(stderr.Bytes()))
	}
	var outs []*ir.Tensor
	for i := 0; ; i++ {
		p := filepath.Join(out, fmt.Sprintf("output_%d.pb", i))
		if _, err := os.Stat(p); err != nil {
			break
		}
		t, err := onnx.ReadTensorFile(p)
		if err != nil {
			return nil, nil, err
		}
		outs = append(outs, t)
	}
	var tm *Timing
	if bench > 0 {
		tm = &Timing{}
		lines := bytes.Split(bytes.TrimSpace(stdout.Bytes()), []byte("\n"))
		if err := json.Unmarshal(lines[len(lines)-1], tm); err != nil {
			return nil, nil, fmt.Errorf("onnxruntime bench output %q: %w", stdout.String(), err)
		}
	}
	return outs, tm, nil
}
