package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func sharedModels(t *testing.T) []string {
	needShared(t)
	var models []string
	filepath.Walk(filepath.Join(shared, "models"), func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && strings.HasSuffix(p, ".onnx") {
			models = append(models, p)
		}
		return nil
	})
	if len(models) < 40 {
		t.Fatalf("found only %d models under %s", len(models), shared)
	}
	return models
}

func TestInspectEverySharedModel(t *testing.T) {
	for _, m := range sharedModels(t) {
		code, text, errs := kiln(t, "inspect", m)
		if code != 0 || errs != "" {
			t.Errorf("%s: exit %d, stderr %q", m, code, errs)
			continue
		}
		for _, want := range []string{"Producer:", "IR version:", "Opsets:     ai.onnx", "Inputs (", "Outputs (", "Nodes: ", "Parameters: "} {
			if !strings.Contains(text, want) {
				t.Errorf("%s: output lacks %q:\n%s", m, want, text)
			}
		}
		if strings.Contains(text, "invalid") {
			t.Errorf("%s: reported invalid:\n%s", m, text)
		}

		code, out, errs := kiln(t, "inspect", "--json", m)
		if code != 0 || errs != "" {
			t.Errorf("%s --json: exit %d, stderr %q", m, code, errs)
			continue
		}
		var r struct {
			Kind    string
			Outputs []struct{ Name, DType string }
			Ops     []struct {
				Op    string
				Count int
			}
			Unsupported []struct {
				Op    string
				Nodes []string
			} `json:"unsupported_ops"`
		}
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Errorf("%s: bad JSON: %v", m, err)
			continue
		}
		if r.Kind != "onnx" || len(r.Outputs) == 0 || len(r.Ops) == 0 {
			t.Errorf("%s: JSON report is missing parts: %+v", m, r)
		}
		// The text lists every unsupported op and every node using it.
		_, list, _ := strings.Cut(text, "\nUnsupported ops")
		for _, u := range r.Unsupported {
			if len(u.Nodes) == 0 || !strings.Contains(list, "  "+u.Op+" (") {
				t.Errorf("%s: unsupported op %s not listed with its nodes", m, u.Op)
			}
			for _, n := range u.Nodes {
				if !strings.Contains(list, n) {
					t.Errorf("%s: node %s of unsupported op %s not listed", m, n, u.Op)
				}
			}
		}
	}
}

func TestInspectMNIST(t *testing.T) {
	needShared(t)
	code, out, _ := kiln(t, "inspect", filepath.Join(shared, "models", "mnist-8-zoo", "model.onnx"))
	if code != 0 {
		t.Fatal(code)
	}
	// Facts about the zoo model, checked by hand against the file.
	for _, want := range []string{
		"Producer:   CNTK 2.5.1", "IR version: 3", "ai.onnx 8",
		"Input3  float32[1,1,28,28]", "Plus214_Output_0  float32[1,10]",
		"Nodes: 12", "3  Add", "2  Conv", "1  MatMul",
		"Parameters: 5998 elements, 23.4 KiB (8 initializers",
		"Every op is supported",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestInspectSymbolicShapes(t *testing.T) {
	needShared(t)
	code, out, _ := kiln(t, "inspect", "--json", filepath.Join(shared, "models", "bench", "simplecnn.fp32.onnx"))
	if code != 0 {
		t.Fatal(code)
	}
	var r struct {
		Inputs []struct {
			Shape []any
		}
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Inputs) != 1 || len(r.Inputs[0].Shape) != 4 || r.Inputs[0].Shape[0] != "batch" || r.Inputs[0].Shape[1] != 1.0 {
		t.Fatalf("input shape in JSON: %+v", r.Inputs)
	}
}
