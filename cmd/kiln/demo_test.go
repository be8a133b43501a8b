package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/kilnml/kiln/demo"
)

func TestDemoMNISTUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"demo", "mnist", "--epochs", "-1"},
		{"demo", "mnist", "--batch-sizes", "0"},
		{"demo", "mnist", "--calib-batches", "1,-2"},
		{"demo", "mnist", "--ort", "sometimes"},
		{"demo", "mnist", "extra"},
	} {
		if code, _, errOut := kiln(t, args...); code != 2 {
			t.Errorf("%v: exit code %d, want 2 (%s)", args, code, errOut)
		}
	}
}

// The whole demo on a tiny configuration with --json: the result on
// stdout, the narration on stderr, the temporary artifacts removed.
func TestDemoMNISTJSONCleansUp(t *testing.T) {
	needMNIST(t)
	code, out, errOut := kiln(t, "demo", "mnist", "--json", "--epochs", "1", "--train-limit", "320", "--train-batch-size", "32",
		"--test-limit", "128", "--baseline-images", "64", "--batch-sizes", "32,64", "--calib-batches", "1,2",
		"--calib-batch-size", "16", "--threads", "2", "--ort", "off")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, errOut)
	}
	var res demo.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, out)
	}
	if len(res.Tables) != 2 || res.Tables[0].BatchSize != 32 || res.Tables[1].BatchSize != 64 {
		t.Fatalf("tables: %+v", res.Tables)
	}
	for _, tb := range res.Tables {
		if len(tb.Rows) != 5 || tb.Rows[0].Images != 64 || tb.Rows[1].Images != 128 {
			t.Errorf("batch %d rows: %+v", tb.BatchSize, tb.Rows)
		}
	}
	if len(res.Calibrations) != 2 || res.Calibrations[0].Batches != 1 || res.Calibrations[1].Images != 32 {
		t.Errorf("calibrations: %+v", res.Calibrations)
	}
	if res.Artifacts.Kept || res.Artifacts.Dir == "" {
		t.Errorf("artifacts: %+v", res.Artifacts)
	}
	if _, err := os.Stat(res.Artifacts.Dir); !os.IsNotExist(err) {
		t.Errorf("the temporary folder %s is still there (%v)", res.Artifacts.Dir, err)
	}
	if !strings.Contains(errOut, "calibrate (2 batches)") || !strings.Contains(errOut, "removed "+res.Artifacts.Dir) {
		t.Errorf("stderr lacks the narration:\n%s", errOut)
	}
	if strings.Contains(out, "epoch 1/1") {
		t.Errorf("narration leaked into stdout")
	}
}
