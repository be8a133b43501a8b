package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/kilnml/kiln/builder"
	"github.com/kilnml/kiln/datasrc"
	"github.com/kilnml/kiln/internal/cli"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/quant/calib"
	"github.com/kilnml/kiln/tools/layerdebug"
	"github.com/spf13/cobra"
)

type debugPrecisionFlags struct {
	data, calibData, mnistDir, calibrator string
	batches, calibBatches, batchSize      int
	metric                                string
	budget                                float64
	int8, fp8, perTensorWeights           bool
	weightBits, runs                      int
	report                                string
	asJSON                                bool
}

func init() {
	debugCmd := &cobra.Command{
		Use:   "debug",
		Short: "Accuracy debugging tools (debug precision)",
	}
	var f debugPrecisionFlags
	cmd := &cobra.Command{
		Use:   "precision MODEL.onnx --data SRC --metric accuracy|cosine|sqnr --budget X [--int8|--fp8]",
		Short: "Find the fastest set of layers to keep in FP32 that meets an accuracy budget",
		Long: `Quantize a model (INT8 by default, --fp8 for E4M3) and find which layers to
keep in FP32 so that the metric stays within budget at the lowest latency.

Metrics (higher is better) on the --data source, against the float graph:
  accuracy  top-1 accuracy vs the source's labels, in percent; --budget is
            the largest drop allowed, in points (default 1)
  cosine    cosine similarity of the outputs; --budget is the minimum (default 0.999)
  sqnr      SQNR of the outputs in dB; --budget is the minimum (default 30)

For every quantizable layer (Conv/Gemm/MatMul with a calibrated input) it
measures the metric with only that layer in FP32 and with only it quantized,
and its time in the FP32 and quantized engines (the engine profiler). Then
it searches sets of layers to keep (any set, not only a prefix or a suffix:
every set up to 5 layers, else greedy by recovered metric per microsecond
plus local drop/swap moves), building, scoring and timing each candidate.
It prints the Pareto table (layers kept, metric, latency) and the
--layer-precisions string for kiln build; with --precision-constraints obey
the builder guarantees those precisions.

--weight-bits and --per-tensor-weights study harder quantization settings
(fewer weight bits, one weight scale per tensor), written as Q/DQ before the
build.`,
		Example: `  kiln debug precision ../shared/models/mnist-8-zoo/model.onnx --data mnist-raw:test --calib-data mnist-raw:train \
      --metric accuracy --budget 1 --weight-bits 2 --report out/`,
		Args: cli.ExactArgs(1, "one ONNX model"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return debugPrecision(cmd.OutOrStdout(), cmd.ErrOrStderr(), args[0], f, cmd.Flags().Changed("budget"))
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.data, "data", "", "evaluation data (labelled for --metric accuracy, e.g. mnist-raw:test)")
	fl.StringVar(&f.calibData, "calib-data", "", "calibration data (default: --data)")
	fl.StringVar(&f.mnistDir, "mnist-dir", "", "folder of the MNIST idx files")
	fl.StringVar(&f.calibrator, "calibrator", "", "calibrator: entropy2, minmax, percentile, mse or legacy (default: minmax for transformers, as TensorRT advises for NLP, else entropy2)")
	fl.IntVar(&f.batches, "batches", 500, "evaluation batches")
	fl.IntVar(&f.calibBatches, "calib-batches", 100, "calibration batches")
	fl.IntVar(&f.batchSize, "batch-size", 1, "samples per batch when the model's batch dimension is dynamic")
	fl.StringVar(&f.metric, "metric", "accuracy", "accuracy, cosine or sqnr")
	fl.Float64Var(&f.budget, "budget", 0, "accuracy: largest drop in points (default 1); cosine/sqnr: minimum (default 0.999 / 30 dB)")
	fl.BoolVar(&f.int8, "int8", false, "quantize to INT8 (the default)")
	fl.BoolVar(&f.fp8, "fp8", false, "quantize to FP8 E4M3")
	fl.IntVar(&f.weightBits, "weight-bits", 8, "weight bits (2..8, int8 storage)")
	fl.BoolVar(&f.perTensorWeights, "per-tensor-weights", false, "one scale per weight tensor instead of per output channel")
	fl.IntVar(&f.runs, "runs", 200, "timed runs per configuration")
	fl.StringVar(&f.report, "report", "", "write PNG charts (Pareto curve, sensitivity, activation histograms) and index.html here")
	fl.BoolVar(&f.asJSON, "json", false, "print the result as JSON")
	debugCmd.AddCommand(cmd)
	rootCmd.AddCommand(debugCmd)
}

func debugPrecision(w, errw io.Writer, path string, f debugPrecisionFlags, budgetGiven bool) error {
	metric, err := layerdebug.ParseMetric(f.metric)
	if err != nil {
		return cli.Usagef("--metric: %v", err)
	}
	if f.data == "" {
		return cli.Usagef("--data SRC is required")
	}
	if f.int8 && f.fp8 {
		return cli.Usagef("--int8 and --fp8 exclude each other")
	}
	if f.weightBits < 2 || f.weightBits > 8 || f.batches < 1 || f.calibBatches < 1 || f.runs < 1 {
		return cli.Usagef("--weight-bits must be in 2..8; --batches, --calib-batches and --runs at least 1")
	}
	if f.fp8 && (f.weightBits != 8 || f.perTensorWeights) {
		return cli.Usagef("--weight-bits and --per-tensor-weights apply to INT8")
	}
	var algo calib.Algorithm // "": by model kind, once the model is loaded
	if f.calibrator != "" {
		if algo, err = calib.ParseAlgorithm(f.calibrator); err != nil {
			return cli.Usagef("--calibrator: %v", err)
		}
	}
	budget := layerdebug.Budget{Metric: metric}
	switch {
	case metric == layerdebug.Accuracy:
		budget.MaxDrop = 1
		if budgetGiven {
			budget.MaxDrop = f.budget
		}
	case metric == layerdebug.Cosine:
		budget.Min = 0.999
	default:
		budget.Min = 30
	}
	if budgetGiven && metric != layerdebug.Accuracy {
		budget.Min = f.budget
	}
	src, err := loadSource(path)
	if err != nil {
		return err
	}
	m := src.Model
	if algo == "" {
		algo = builder.DefaultCalibrator(m)
		f.calibrator = string(algo)
	}
	open := func(spec string, n int) (*datasrc.Source, error) {
		return datasrc.Open(spec, m.Graph.RealInputs(), datasrc.Options{BatchSize: f.batchSize, MaxBatches: n, MNISTDir: f.mnistDir})
	}
	calSpec := f.calibData
	if calSpec == "" {
		calSpec = f.data
	}
	cal, err := open(calSpec, f.calibBatches)
	if err != nil {
		return err
	}
	start := time.Now()
	stats, ranges, err := layerdebug.Calibrate(m, cal, algo, f.calibBatches)
	if err != nil {
		return fmt.Errorf("calibration: %w", err)
	}
	data, err := open(f.data, f.batches)
	if err != nil {
		return err
	}
	ev, err := layerdebug.NewEval(m, data, f.batches, metric)
	if err != nil {
		return err
	}
	setting := layerdebug.Setting{Ranges: ranges, PerTensorWeights: f.perTensorWeights}
	if f.weightBits != 8 {
		setting.WeightBits = f.weightBits
	}
	if f.fp8 {
		setting.DType = ir.Float8E4M3FN
	}
	s := &layerdebug.Searcher{Model: m, Setting: setting, Eval: ev, Runs: f.runs,
		Base: builder.Config{Deterministic: true, Threads: 1}}
	if !f.asJSON {
		s.Log = func(format string, args ...any) { fmt.Fprintf(errw, format+"\n", args...) }
	}
	res, err := s.Search(budget)
	if err != nil {
		return err
	}
	if f.asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(jsonSafe(res)); err != nil {
			return err
		}
	} else {
		writeDebugPrecision(w, path, f, setting, res, time.Since(start))
	}
	if f.report != "" {
		files, err := layerdebug.WriteReport(f.report, layerdebug.ReportData{Title: "kiln debug precision: " + path, Model: m, Stats: stats, Search: res})
		if err != nil {
			return err
		}
		if !f.asJSON {
			fmt.Fprintf(w, "\nReport: %s (%d charts)\n", files.Index, len(files.PNGs))
		}
	}
	if res.Best == nil {
		return fmt.Errorf("no configuration meets the budget (%s), not even all-FP32", budget)
	}
	return nil
}

func settingText(f debugPrecisionFlags, s layerdebug.Setting) string {
	t := "int8 (per-channel weights)"
	if f.fp8 {
		t = "fp8 e4m3"
	}
	var extra []string
	if s.WeightBits != 0 {
		extra = append(extra, fmt.Sprintf("%d-bit weights", s.WeightBits))
	}
	if s.PerTensorWeights {
		extra = append(extra, "per-tensor weight scales")
	}
	if len(extra) > 0 {
		t = "int8 with " + strings.Join(extra, ", ")
	}
	return t
}

func usText(d time.Duration) string { return fmt.Sprintf("%.1f µs", float64(d.Nanoseconds())/1e3) }

func scoreText(m layerdebug.Metric, x float64) string {
	switch m {
	case layerdebug.Accuracy:
		return fmt.Sprintf("%.2f%%", x)
	case layerdebug.Cosine:
		return fmt.Sprintf("%.6f", x)
	}
	if math.IsInf(x, 1) || x >= 200 {
		return "inf dB"
	}
	return fmt.Sprintf("%.2f dB", x)
}

func writeDebugPrecision(w io.Writer, path string, f debugPrecisionFlags, s layerdebug.Setting, r *layerdebug.SearchResult, took time.Duration) {
	ew := &errWriter{w: w}
	p := ew.printf
	m := r.Budget.Metric
	p("Model:     %s\n", path)
	p("Quantized: %s; calibrator %s\n", settingText(f, s), f.calibrator)
	p("Metric:    %s on %s (%d batches); budget: %s\n", m, f.data, f.batches, r.Budget)
	p("FP32:      %s, %s\n", scoreText(m, r.FP32.Score), usText(r.FP32.Latency))
	p("All quantized: %s, %s\n", scoreText(m, r.AllQ.Score), usText(r.AllQ.Latency))
	p("\nSensitivity per layer:\n")
	rows := [][]string{{"layer", "only it fp32", "only it quantized", "time fp32", "time quantized"}}
	for _, l := range r.Layers {
		rows = append(rows, []string{l.Layer, scoreText(m, l.OnlyKept), scoreText(m, l.OnlyQuantized), usText(l.FP32Time), usText(l.QTime)})
	}
	writeTable(ew, "  ", rows)
	p("\nPareto table (%d configurations evaluated; * meets the budget):\n", r.Evaluated)
	rows = [][]string{{"", "kept in fp32", "#", m.String(), "latency"}}
	for _, pt := range r.Pareto {
		mark := ""
		if pt.Meets {
			mark = "*"
		}
		if r.Best != nil && strings.Join(pt.Keep, ",") == strings.Join(r.Best.Keep, ",") {
			mark = "* chosen"
		}
		rows = append(rows, []string{mark, orNoneList(pt.Keep), fmt.Sprint(len(pt.Keep)), scoreText(m, pt.Score), usText(pt.Latency)})
	}
	writeTable(ew, "  ", rows)
	if r.Best == nil {
		p("\nNo configuration meets the budget.\n")
		return
	}
	b := r.Best
	p("\nChosen: %d of %d layers in fp32: %s, %s (all-quantized %s, all-FP32 %s)\n", len(b.Keep), len(r.Layers), scoreText(m, b.Score), usText(b.Latency), usText(r.AllQ.Latency), usText(r.FP32.Latency))
	if len(b.Keep) == 0 {
		p("Every layer can be quantized: kiln build %s --int8 ...\n", path)
	} else {
		p("--layer-precisions '%s'\n", layerdebug.LayerPrecisionsFlag(b.Keep))
		prec := "--int8"
		if f.fp8 {
			prec = "--fp8"
		}
		p("kiln build %s %s --calib-data %s --layer-precisions '%s' --precision-constraints obey\n", path, prec, orDefault(f.calibData, f.data), layerdebug.LayerPrecisionsFlag(b.Keep))
		if s.WeightBits != 0 || s.PerTensorWeights {
			p("(kiln build quantizes weights per channel with 8 bits; the harder setting studied here is written as Q/DQ by quant/qdq)\n")
		}
	}
	p("Search time: %v\n", round(took))
}

func orNoneList(k []string) string {
	if len(k) == 0 {
		return "(none: all quantized)"
	}
	return strings.Join(k, ", ")
}

func orDefault(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
