package main

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kilnml/kiln/onnx"
	"github.com/kilnml/kiln/train"
	"github.com/kilnml/kiln/train/safetensors"
)

func TestTrainMNISTUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"train", "mnist", "--optimizer", "rmsprop"},
		{"train", "mnist", "--batch-size", "0"},
		{"train", "mnist", "--lr", "-1"},
		{"train", "mnist", "--epochs", "-2"},
		{"train", "mnist", "extra"},
	} {
		if code, _, errOut := kiln(t, args...); code != 2 {
			t.Errorf("%v: exit code %d, want 2 (%s)", args, code, errOut)
		}
	}
}

// A short run on a subset writes a checkpoint and an ONNX model that load,
// and --resume with --epochs 0 reproduces the same test accuracy.
func TestTrainMNISTSmallRun(t *testing.T) {
	needMNIST(t)
	dir := t.TempDir()
	onnxPath, ckpt := filepath.Join(dir, "m.onnx"), filepath.Join(dir, "m.safetensors")
	code, out, errOut := kiln(t, "train", "mnist", "--epochs", "1", "--limit", "512", "--batch-size", "64",
		"--out", onnxPath, "--checkpoint", ckpt)
	if code != 0 {
		t.Fatalf("exit %d: %s%s", code, out, errOut)
	}
	for _, want := range []string{"epoch 1/1", "images/s", "test accuracy: ", "wrote " + ckpt, "wrote " + onnxPath} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	m, err := onnx.Load(onnxPath)
	if err != nil || m.Opset("") != 13 {
		t.Fatalf("ONNX model: %v", err)
	}
	f, err := safetensors.ReadFile(ckpt)
	if err != nil || f.Get("conv1.weight") == nil || f.Metadata["model"] != "SimpleCNN" {
		t.Fatalf("checkpoint: %v", err)
	}
	acc := out[strings.Index(out, "test accuracy: "):]
	acc = acc[:strings.Index(acc, "\n")]
	code, out2, errOut := kiln(t, "train", "mnist", "--epochs", "0", "--limit", "512", "--resume", ckpt, "--out", "", "--checkpoint", "")
	if code != 0 || !strings.Contains(out2, acc) {
		t.Fatalf("resume: exit %d, want %q in:\n%s%s", code, acc, out2, errOut)
	}
}

func TestTrainMNISTBadInputs(t *testing.T) {
	dir := t.TempDir()
	onnxPath, ckpt := filepath.Join(dir, "m.onnx"), filepath.Join(dir, "m.safetensors")
	code, _, errOut := kiln(t, "train", "mnist", "--mnist-dir", dir, "--out", onnxPath, "--checkpoint", ckpt)
	if code != 1 || !strings.Contains(errOut, dir) || !strings.Contains(errOut, "train-images-idx3-ubyte") {
		t.Fatalf("missing data: exit %d, %s", code, errOut)
	}
	needMNIST(t)
	// A checkpoint of another model.
	other := &train.Sequential{Layers: []train.Layer{train.NewLinear("fc1", 3, 2, rand.New(rand.NewPCG(1, 1)))}}
	bad := filepath.Join(dir, "other.safetensors")
	if err := train.SaveCheckpoint(bad, other, nil); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = kiln(t, "train", "mnist", "--epochs", "0", "--limit", "64", "--resume", bad, "--out", onnxPath, "--checkpoint", ckpt)
	if code != 1 || !strings.Contains(errOut, `tensor "fc1.weight" is F32[2 3], want F32[128 1600]`) || !strings.Contains(errOut, `missing tensor "conv1.weight"`) {
		t.Fatalf("mismatched checkpoint: exit %d, %s", code, errOut)
	}
	// A diverging run stops with the step and writes nothing.
	code, _, errOut = kiln(t, "train", "mnist", "--epochs", "1", "--limit", "256", "--batch-size", "64", "--lr", "1e30", "--out", onnxPath, "--checkpoint", ckpt)
	if code != 1 || !strings.Contains(errOut, "step") || !strings.Contains(errOut, "NaN") {
		t.Fatalf("NaN: exit %d, %s", code, errOut)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("files left behind: %v", ents)
	}
}
