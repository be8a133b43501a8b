package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// shared is ../shared seen from the repository root.
var shared = filepath.Join("..", "..", "..", "shared")

func needShared(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(shared); err != nil {
		t.Skipf("skipping: %s is absent (shared test data)", shared)
	}
}

// kiln runs the CLI in-process and returns its exit code and output.
// Cobra keeps flag values between Executes, so every flag is reset first.
func kiln(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	resetFlags(rootCmd)
	var out, errb bytes.Buffer
	code = execute(args, &out, &errb)
	return code, out.String(), errb.String()
}

func resetFlags(c *cobra.Command) {
	reset := func(f *pflag.Flag) {
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			sv.Replace(nil)
		} else {
			f.Value.Set(f.DefValue)
		}
		f.Changed = false
	}
	c.Flags().VisitAll(reset)
	c.PersistentFlags().VisitAll(reset)
	for _, sub := range c.Commands() {
		resetFlags(sub)
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := kiln(t, "--version")
	if code != 0 || !strings.Contains(out, "kiln version") {
		t.Fatalf("code %d, output %q", code, out)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"run"},                     // no model
		{"run", "a.onnx", "b.onnx"}, // two models
		{"run", "--no-such-flag", "m.onnx"},
		{"run", "m.onnx", "--atol", "abc"},
		{"inspect"},
		{"no-such-verb"},
	} {
		code, out, errs := kiln(t, args...)
		if code != 2 {
			t.Errorf("%v: exit code %d, want 2 (stderr %q)", args, code, errs)
		}
		if strings.Count(errs, "kiln: ") != 1 || !strings.Contains(errs, "--help") {
			t.Errorf("%v: want the error once and a hint, got stderr %q", args, errs)
		}
		if out != "" {
			t.Errorf("%v: unexpected stdout %q", args, out)
		}
	}
}

func TestMissingModel(t *testing.T) {
	code, _, errs := kiln(t, "inspect", "/no/such/model.onnx")
	if code != 1 || !strings.Contains(errs, "/no/such/model.onnx") || strings.Count(errs, "kiln: ") != 1 {
		t.Fatalf("code %d, stderr %q", code, errs)
	}
}

// Every verb from DESIGN.md that exists must be reachable from the root.
func TestVerbsRegistered(t *testing.T) {
	for _, verb := range []string{"run", "inspect", "calibrate", "build", "bench"} {
		if c, _, err := rootCmd.Find([]string{verb}); err != nil || c.Name() != verb {
			t.Errorf("verb %q is not registered", verb)
		}
	}
}
