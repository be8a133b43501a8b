package main

import (
	"fmt"
	"io"
	"math"
	"strings"
	"sync"

	"github.com/kilnml/kiln/builder"
	"github.com/kilnml/kiln/internal/cli"
	"github.com/spf13/pflag"
)

// buildFlags are the builder options shared by kiln build and kiln bench
// (which builds an engine on the fly from an .onnx file), as trtexec shares
// them between building and timing.
type buildFlags struct {
	fp16, bf16, int8, fp8, best bool

	calibCache, calibData, calibrator string
	calibBatches, calibBatchSize      int
	mnistDir, dynRange                string
	force                             bool

	layerPrecisions, constraints    string
	minShapes, optShapes, maxShapes string
	shapes                          string
	timingCache                     string
	deterministic, verbose          bool
	fp16Safety                      bool
	weightBits                      int
	perTensorWeights                bool
	floatResiduals                  bool
	dynamicINT8                     bool
	smoothQuant                     float64 // α; 0: off
	workspaceMiB                    int64
}

func (f *buildFlags) register(fl *pflag.FlagSet) {
	fl.BoolVar(&f.fp16, "fp16", false, "allow FP16 layers")
	fl.BoolVar(&f.bf16, "bf16", false, "allow BF16 layers")
	fl.BoolVar(&f.int8, "int8", false, "allow INT8 layers (ranges from --calib-cache, --calib-data or the model's Q/DQ nodes)")
	fl.BoolVar(&f.fp8, "fp8", false, "allow FP8 (E4M3) layers")
	fl.BoolVar(&f.best, "best", false, "allow every precision; the fastest wins per layer")
	fl.StringVar(&f.calibCache, "calib-cache", "", "INT8 calibration cache (TensorRT format) to read, or to write with --calib-data")
	fl.StringVar(&f.calibData, "calib-data", "", "calibrate on this data first (mnist, mnist-raw, a folder, a raw file)")
	fl.StringVar(&f.calibrator, "calibrator", "", "calibrator for --calib-data: entropy2, minmax, percentile, mse or legacy (default: minmax for transformers, as TensorRT advises for NLP, else entropy2)")
	fl.IntVar(&f.calibBatches, "calib-batches", 100, "batches to calibrate on with --calib-data")
	fl.IntVar(&f.calibBatchSize, "calib-batch-size", 64, "samples per calibration batch")
	fl.StringVar(&f.mnistDir, "mnist-dir", "", "folder of the MNIST idx files for --calib-data mnist")
	fl.BoolVar(&f.force, "force", false, "recalibrate with --calib-data even when --calib-cache exists and matches")
	fl.StringVar(&f.dynRange, "dynamic-range", "", "per-tensor ranges as TensorRT's name:amax text file (instead of calibration)")
	fl.StringVar(&f.layerPrecisions, "layer-precisions", "", "per-layer precisions, e.g. 'conv1:fp32,fc2:int8' ('*' for every layer)")
	fl.StringVar(&f.constraints, "precision-constraints", "none", "how --layer-precisions are honoured: none, prefer or obey")
	fl.StringVar(&f.minShapes, "min-shapes", "", "smallest input shapes of the profile, e.g. input:1x1x28x28")
	fl.StringVar(&f.optShapes, "opt-shapes", "", "input shapes to optimize (time tactics) for")
	fl.StringVar(&f.maxShapes, "max-shapes", "", "largest input shapes of the profile")
	fl.StringVar(&f.shapes, "shapes", "", "input shapes for min, opt and max at once (e.g. input:8x1x28x28)")
	fl.StringVar(&f.timingCache, "timing-cache", "", "timing cache file to read and update")
	fl.BoolVar(&f.deterministic, "deterministic", false, "no tactic timing: pick the first valid tactic")
	fl.BoolVar(&f.verbose, "verbose", false, "print the builder's log (fusions, tactics) while building")
	fl.Int64Var(&f.workspaceMiB, "workspace", 0, "scratch memory a tactic may use, MiB (0: unlimited), as trtexec's --memPoolSize=workspace")
	fl.BoolVar(&f.dynamicINT8, "int8-dynamic", false, "quantize MatMuls with constant weights per token at run time (no calibration; for transformers)")
	registerSmoothQuant(fl, &f.smoothQuant)
	fl.IntVar(&f.weightBits, "weight-bits", 8, "INT8 weights quantized to this many bits (2..8; fewer is an experiment in accuracy loss)")
	fl.BoolVar(&f.perTensorWeights, "per-tensor-weights", false, "one INT8 weight scale per tensor instead of per output channel (an experiment in accuracy loss)")
	fl.BoolVar(&f.floatResiduals, "float-residuals", false, "keep residual inputs of INT8/FP8 layers in FP32 (default: quantized, as TensorRT's implicit INT8)")
	fl.BoolVar(&f.fp16Safety, "fp16-safety", true, "with --fp16/--best and --calib-data: keep layers whose calibrated ranges overflow (or mostly underflow) FP16 in FP32")
}

// registerSmoothQuant adds --smoothquant[=α] (kiln build, kiln bench,
// kiln quantize): alone it means α = 0.5.
func registerSmoothQuant(fl *pflag.FlagSet, alpha *float64) {
	fl.Float64Var(alpha, "smoothquant", 0, "SmoothQuant before INT8/FP8 calibration: move activation outliers into the weights per input channel, s = max|X|^α / max|W|^(1-α); --smoothquant alone is α 0.5 (needs --calib-data)")
	fl.Lookup("smoothquant").NoOptDefVal = "0.5"
}

func checkSmoothQuant(alpha float64) error {
	if alpha < 0 || alpha > 1 || math.IsNaN(alpha) {
		return cli.Usagef("--smoothquant=%g: α must be in (0, 1] (--smoothquant alone is 0.5)", alpha)
	}
	return nil
}

// quantized reports whether any precision flag needs ranges.
func (f *buildFlags) quantized() bool { return f.int8 || f.fp8 || f.best }

// config turns the flags into a builder configuration; log receives the
// builder's messages with --verbose.
func (f *buildFlags) config(log io.Writer, threads int) (builder.Config, error) {
	cfg := builder.Config{
		FP16: f.fp16, BF16: f.bf16, INT8: f.int8, FP8: f.fp8, Best: f.best,
		TimingCache: f.timingCache, Deterministic: f.deterministic, Threads: threads,
		WeightBits: f.weightBits, PerTensorWeights: f.perTensorWeights, FloatResiduals: f.floatResiduals, DynamicINT8: f.dynamicINT8,
		WorkspaceLimit: f.workspaceMiB << 20,
	}
	if f.weightBits < 2 || f.weightBits > 8 {
		return cfg, cli.Usagef("--weight-bits %d: want 2 to 8", f.weightBits)
	}
	if err := checkSmoothQuant(f.smoothQuant); err != nil {
		return cfg, err
	}
	if f.smoothQuant > 0 {
		if f.calibData == "" {
			return cfg, cli.Usagef("--smoothquant needs --calib-data SRC: its per-channel statistics come from the data")
		}
		cfg.SmoothQuant, cfg.SmoothQuantAlpha = true, f.smoothQuant
	}
	var err error
	if cfg.LayerPrecisions, err = builder.ParseLayerPrecisions(f.layerPrecisions); err != nil {
		return cfg, cli.Usagef("--layer-precisions: %v", err)
	}
	if cfg.Constraints, err = builder.ParseConstraint(f.constraints); err != nil {
		return cfg, cli.Usagef("--precision-constraints: %v", err)
	}
	prof, err := f.profile()
	if err != nil {
		return cfg, err
	}
	if prof != nil {
		cfg.Profiles = []builder.Profile{prof}
	}
	if f.verbose && log != nil {
		var mu sync.Mutex // the builder may log from several goroutines
		cfg.Log = func(format string, args ...any) {
			mu.Lock()
			defer mu.Unlock()
			fmt.Fprintf(log, "[V] %s\n", strings.TrimRight(fmt.Sprintf(format, args...), "\n"))
		}
	}
	return cfg, nil
}

// profile reads --shapes or --min/--opt/--max-shapes; nil when none given.
func (f *buildFlags) profile() (builder.Profile, error) {
	parse := func(flag, s string) (map[string][]int64, error) {
		m, err := builder.ParseShapes(s)
		if err != nil {
			return nil, cli.Usagef("--%s: %v", flag, err)
		}
		return m, nil
	}
	if f.shapes != "" {
		if f.minShapes != "" || f.optShapes != "" || f.maxShapes != "" {
			return nil, cli.Usagef("--shapes sets min, opt and max at once: do not combine it with --min/--opt/--max-shapes")
		}
		s, err := parse("shapes", f.shapes)
		if err != nil {
			return nil, err
		}
		return builder.ProfileFromShapes(s, s, s)
	}
	if f.minShapes == "" && f.optShapes == "" && f.maxShapes == "" {
		return nil, nil
	}
	mn, err := parse("min-shapes", f.minShapes)
	if err != nil {
		return nil, err
	}
	opt, err := parse("opt-shapes", f.optShapes)
	if err != nil {
		return nil, err
	}
	mx, err := parse("max-shapes", f.maxShapes)
	if err != nil {
		return nil, err
	}
	p, err := builder.ProfileFromShapes(mn, opt, mx)
	if err != nil {
		return nil, cli.Usagef("%v", err)
	}
	return p, nil
}
