package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	cudabackend "github.com/kilnml/kiln/backend/cuda"
	"github.com/kilnml/kiln/builder"
	"github.com/kilnml/kiln/datasrc"
	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/onnx"
	"github.com/kilnml/kiln/quant/calib"
)

// gemmShapes are the FP8 GEMMs of issue 10: bert4's MatMuls (hidden 256,
// FFN 1024, sequence 128) at batch 32 and 256, and ResNet-50's convolutions
// as GEMMs at batch 256 (M = batch·OH·OW, N = output channels, K =
// Cin·KH·KW).
var gemmShapes = []struct {
	what    string
	m, n, k int64
}{
	{"bert4 qkv/out b32", 4096, 256, 256},
	{"bert4 ffn1 b32", 4096, 1024, 256},
	{"bert4 ffn2 b32", 4096, 256, 1024},
	{"bert4 qkv/out b256", 32768, 256, 256},
	{"bert4 ffn1 b256", 32768, 1024, 256},
	{"bert4 ffn2 b256", 32768, 256, 1024},
	{"resnet50 res2 1x1 64→256", 802816, 256, 64},
	{"resnet50 res2 3x3 64", 802816, 64, 576},
	{"resnet50 res3 3x3 128", 200704, 128, 1152},
	{"resnet50 res4 3x3 256", 50176, 256, 2304},
	{"resnet50 res5 3x3 512", 12544, 512, 4608},
	{"resnet50 res5 1x1 512→2048", 12544, 2048, 512},
}

// cnnOnlyModels limits -cnn to these models (-cnnmodels; nil: all).
var cnnOnlyModels []string

// cnn builds ResNet-50 light (random weights, batch made dynamic) and
// mobilenetv2 on the GPU in FP32, FP16, INT8 and FP8 and times them at
// batch. Tactics are timed at batch too (the profile's opt; cnnSetup).
func cnn(models string, batch, iters int, precs []string, nhwc []bool) {
	was := cudabackend.NHWC()
	defer cudabackend.SetNHWC(was)
	for _, c := range []struct{ bench, file string }{
		{"resnet50", "onnx-light-cnns/resnet50/model.onnx"},
		{"mobilenetv2", "bench/mobilenetv2.fp32.onnx"},
	} {
		if cnnOnlyModels != nil && !slices.Contains(cnnOnlyModels, c.bench) {
			continue
		}
		for _, prec := range precs {
			for _, on := range nhwc {
				cudabackend.SetNHWC(on)
				r, err := cnnOne(filepath.Join(models, c.file), c.bench, prec, batch, iters)
				r.Bench, r.Prec, r.Batch = c.bench, prec, batch
				if len(nhwc) > 1 {
					r.Prec += map[bool]string{false: " nhwc=off", true: " nhwc=on"}[on]
				}
				if err != nil {
					r.Err = err.Error()
				}
				emit(r)
			}
		}
	}
}

func cnnOne(path, bench, prec string, batch, iters int) (result, error) {
	m, input, shape, cfg, err := cnnSetup(path, bench, prec, batch)
	if err != nil {
		return result{}, err
	}
	return modelTimed(m, input, shape, cfg, iters)
}

// cnnSetup loads a bench CNN and its build config: ResNet-50 light made
// batch-dynamic, opset 13 and random weights; INT8/FP8 calibrated (MinMax)
// on 4 random images; tactics timed at the benchmark's batch (the
// profile's opt shape, as trtexec builds a static shape for the shape it
// runs). Timing at batch 16 (session 7's setting, "+opt16") took a fifth
// of the build time but picked tactics that lose at batch 256: ResNet-50
// INT8 5.89 ms against 5.50 (H200, 2026-11-26).
func cnnSetup(path, bench, prec string, batch int) (*ir.Model, string, []int64, builder.Config, error) {
	m, err := onnx.Load(path)
	if err != nil {
		return nil, "", nil, builder.Config{}, err
	}
	input := "input"
	if bench == "resnet50" {
		input = "gpu_0/data_0"
		if err := cudabackend.BatchDynamic(m); err != nil {
			return nil, "", nil, builder.Config{}, err
		}
		if err := cudabackend.Opset13(m); err != nil {
			return nil, "", nil, builder.Config{}, err
		}
		cudabackend.RandomWeights(m, 1)
	}
	shape := []int64{int64(batch), 3, 224, 224}
	opt := slices.Clone(shape)
	// A precision set like "int8+fp16" (TensorRT's --int8 --fp16: layers
	// left out of INT8 run in FP16 instead of FP32).
	allowed := map[string]bool{}
	for _, p := range strings.Split(prec, "+") {
		allowed[p] = true
		// "+optN": tactics timed at batch N instead of the benchmark's
		if n, err := strconv.Atoi(strings.TrimPrefix(p, "opt")); err == nil && strings.HasPrefix(p, "opt") && n > 0 {
			opt[0] = min(int64(n), int64(batch))
		}
	}
	// "+floatres" keeps the FP32 residual stream of quantized builds
	// (Config.FloatResiduals); "+nof8mma" builds without the FP8-MMA conv
	// tactics (cudabackend.SetFP8MMA), "+f8only" offers them alone for E4M3
	// convs (SetFP8MMAOnly); "+exact" offers the exact 8-bit epilogues only
	// (SetExactEpilogue); the settings stay for that build only.
	cfg := builder.Config{FP16: allowed["fp16"], INT8: allowed["int8"], FP8: allowed["fp8"], FloatResiduals: allowed["floatres"]}
	cudabackend.SetExactEpilogue(allowed["exact"] || os.Getenv("KILN_CUDA_EXACT") == "1")
	cudabackend.SetFP8MMA(!allowed["nof8mma"] && os.Getenv("KILN_CUDA_FP8MMA") != "0")
	cudabackend.SetFP8MMAOnly(allowed["f8only"] || os.Getenv("KILN_CUDA_FP8MMA") == "only")
	if cfg.INT8 || cfg.FP8 {
		cfg.Calibration = &builder.Calibration{Source: &cudabackend.RandomStream{Input: input, Shape: []int64{4, 3, 224, 224}, Batches: 1}, Algorithm: calib.MinMax}
	}
	cfg.Profiles = []builder.Profile{{input: {Min: []int64{1, 3, 224, 224}, Opt: opt, Max: shape}}}
	return m, input, shape, cfg, nil
}

// convTactics counts the tactics of the plan's GPU convolutions and GEMMs.
func convTactics(p *engine.Plan) string {
	cnt := map[string]int{}
	for _, s := range p.Steps {
		if s.Kernel == cudabackend.KernelGemm {
			cnt[s.Tactic]++
		}
	}
	var names []string
	for n := range cnt {
		names = append(names, n)
	}
	sort.Strings(names)
	var b []string
	for _, n := range names {
		b = append(b, fmt.Sprintf("%s×%d", n, cnt[n]))
	}
	return strings.Join(b, " ")
}

// mnistAccuracy runs the zoo MNIST model on the GPU in FP32, INT8 and FP8
// over the whole MNIST test set (10000 images) and reports top-1 accuracy.
func mnistAccuracy(models, mnistDir string) {
	m, err := onnx.Load(filepath.Join(models, "mnist-8-zoo", "model.onnx"))
	if err != nil {
		emit(result{Bench: "mnist", Err: err.Error()})
		return
	}
	for _, prec := range []string{"fp32", "int8", "fp8"} {
		r := result{Bench: "mnist-zoo accuracy", Prec: prec, Batch: 1}
		cfg := builder.Config{INT8: prec == "int8", FP8: prec == "fp8"}
		if prec != "fp32" {
			src, err := datasrc.Open("mnist-raw:train", m.Graph.RealInputs(), datasrc.Options{MaxBatches: 64, MNISTDir: mnistDir})
			if err != nil {
				r.Err = err.Error()
				emit(r)
				continue
			}
			alg := calib.Entropy2
			if prec == "fp8" {
				alg = calib.MinMax
			}
			cfg.Calibration = &builder.Calibration{Source: src, Algorithm: alg}
		}
		acc, n, on, err := mnistRun(m, cfg, mnistDir)
		r.Acc, r.Images, r.Steps = acc, n, on
		if err != nil {
			r.Err = err.Error()
		}
		emit(r)
	}
}

func mnistRun(m *ir.Model, cfg builder.Config, dir string) (float64, int, string, error) {
	p, _, err := builder.Build(m, nil, cfg)
	if err != nil {
		return 0, 0, "", err
	}
	on, total := 0, 0
	for _, s := range p.Steps {
		if !s.ShapeStep {
			total++
			if strings.HasPrefix(s.Kernel, "cuda.") {
				on++
			}
		}
	}
	e, err := engine.NewEngine(p)
	if err != nil {
		return 0, 0, "", err
	}
	test, err := datasrc.Open("mnist-raw:test", m.Graph.RealInputs(), datasrc.Options{MaxBatches: 10000, MNISTDir: dir})
	if err != nil {
		return 0, 0, "", err
	}
	ctx := e.NewContext()
	right, seen := 0, 0
	for {
		b, err := test.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, seen, "", err
		}
		out, err := ctx.Run(b)
		if err != nil {
			return 0, seen, "", err
		}
		for _, o := range out {
			best := 0
			for k := int64(1); k < o.Len(); k++ {
				if o.Float64At(k) > o.Float64At(int64(best)) {
					best = int(k)
				}
			}
			if best == test.Labels()[0] {
				right++
			}
		}
		seen++
	}
	return 100 * float64(right) / float64(max(seen, 1)), seen, fmt.Sprintf("%d/%d on GPU", on, total), nil
}
