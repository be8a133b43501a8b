package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"

	"github.com/kilnml/kiln/builder"
	"github.com/kilnml/kiln/datasrc"
	"github.com/kilnml/kiln/internal/cli"
	"github.com/kilnml/kiln/internal/progress"
	"github.com/kilnml/kiln/ops"
	"github.com/kilnml/kiln/quant/calib"
	"github.com/spf13/cobra"
)

// calibOptions is what a calibration needs from the command line; kiln
// calibrate and kiln build --calib-data share it.
type calibOptions struct {
	data, calibrator, cache, trtVersion string
	mnistDir, shape, dtype              string
	batches, batchSize                  int
	percentile                          float64
	force                               bool
}

type calibrateFlags struct {
	calibOptions
	dynRange string
	asJSON   bool
}

func init() {
	var f calibrateFlags
	cmd := &cobra.Command{
		Use:   "calibrate MODEL.onnx --data SRC [--calibrator NAME] [--cache FILE]",
		Short: "Find INT8 ranges of every activation and write a TensorRT calibration cache",
		Long: `Run the model with kiln's reference executor over calibration data, gather
statistics of every floating-point activation in one streaming pass, choose
each tensor's range with a calibrator, and write the ranges as a TensorRT
calibration cache (header TRT-<version>-<algorithm>, one "name: <hex scale>"
line per tensor) with a sidecar <cache>.json that records what TensorRT's
format cannot: the model and data hashes, the algorithm and its parameters.

SRC is "mnist" (the MNIST training set in order, normalized as the lesson's
SimpleCNN expects), "mnist-raw" (raw pixels 0..255, as the model zoo's MNIST
CNN expects), "mnist:test" / "mnist-raw:test", a folder of .npy/.npz/.pb
files, or a raw binary file of --dtype samples of --shape.

Calibrators: entropy2 (TensorRT's EntropyCalibrator2, KL divergence),
minmax, percentile (--percentile, default 99.99), mse, legacy.

An existing cache is reused when its sidecar matches the model and the
calibrator; when it does not (a stale cache), kiln stops and says what
changed: --force recalibrates.`,
		Example: `  kiln calibrate ../shared/models/mnist-8-zoo/model.onnx --data mnist-raw \
      --batches 100 --cache zoo.cache
  kiln calibrate simplecnn.onnx --data mnist --calibrator percentile --percentile 99.9`,
		Args: cli.ExactArgs(1, "one model file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return calibrateModel(cmd.OutOrStdout(), cmd.ErrOrStderr(), args[0], f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.data, "data", "", "calibration data: mnist, mnist-raw, a folder of .npy/.npz/.pb files, or a raw file (with --shape)")
	fl.StringVar(&f.calibrator, "calibrator", "", "calibrator: entropy2, minmax, percentile, mse or legacy (default: minmax for transformers, as TensorRT advises for NLP, else entropy2)")
	fl.IntVar(&f.batches, "batches", 100, "number of batches to calibrate on (0: all the data)")
	fl.IntVar(&f.batchSize, "batch-size", 64, "samples per batch (a model with a fixed batch dimension uses its own)")
	fl.StringVar(&f.cache, "cache", "calibration.cache", "calibration cache to reuse or write (\"\": none)")
	fl.BoolVar(&f.force, "force", false, "recalibrate even when the cache exists")
	fl.StringVar(&f.trtVersion, "trt-version", "10.9.0", "TensorRT version written in the cache header")
	fl.Float64Var(&f.percentile, "percentile", 99.99, "percentile of |x| for --calibrator percentile")
	fl.StringVar(&f.mnistDir, "mnist-dir", "", "folder of the MNIST idx files (default: the GoMNIST module)")
	fl.StringVar(&f.shape, "shape", "", "raw data: dims of one sample, e.g. 1x28x28")
	fl.StringVar(&f.dtype, "dtype", "", "raw data: element type (default float32)")
	fl.StringVar(&f.dynRange, "dynamic-range", "", "also write the ranges as TensorRT's name:amax text file")
	fl.BoolVar(&f.asJSON, "json", false, "print the result as JSON")
	rootCmd.AddCommand(cmd)
}

// calibration is the outcome of runCalibration, for reports.
type calibration struct {
	*calib.Result
	Algorithm calib.Algorithm
	Source    string // what the data source reads ("" when from the cache)
	BatchSize int
	Elapsed   time.Duration
}

// runCalibration calibrates src (or reuses opt.cache), showing progress on
// progressOut.
func runCalibration(src *sourceModel, opt calibOptions, progressOut io.Writer) (*calibration, error) {
	algo := builder.DefaultCalibrator(src.Model) // MinMax for transformers, else Entropy2
	if opt.calibrator != "" {
		var err error
		if algo, err = calib.ParseAlgorithm(opt.calibrator); err != nil {
			return nil, cli.Usagef("--calibrator: %v", err)
		}
	}
	if opt.batches < 0 || opt.batchSize < 1 {
		return nil, cli.Usagef("--batches must be >= 0 and --batch-size >= 1")
	}
	if opt.percentile <= 0 || opt.percentile > 100 {
		return nil, cli.Usagef("--percentile %g is outside (0, 100]", opt.percentile)
	}
	trt, err := calib.TRTVersion(opt.trtVersion)
	if err != nil {
		return nil, cli.Usagef("--trt-version: %v", err)
	}
	sess, err := ops.NewSession(src.Model)
	if err != nil {
		return nil, err
	}
	params := calib.Params{}
	if algo == calib.Percentile {
		params.Percentile = opt.percentile
	}
	out := &calibration{Algorithm: algo}
	req := calib.Request{
		Session: sess, ModelHash: src.SHA, Algorithm: algo, Params: params,
		CachePath: opt.cache, Force: opt.force, TRTVersion: trt,
		Collect: calib.CollectOptions{MaxBatches: opt.batches},
	}
	finish := func() {} // the bar's final line, printed only on success
	// Open the data only when it will be read: a valid cache needs none.
	if opt.cache == "" || opt.force || !fileExists(opt.cache) {
		if opt.data == "" {
			if opt.cache != "" {
				return nil, cli.Usagef("no calibration data: give --data SRC (the cache %s does not exist yet)", opt.cache)
			}
			return nil, cli.Usagef("no calibration data: give --data SRC")
		}
		ds, err := datasrc.Open(opt.data, src.Model.Graph.RealInputs(), datasrc.Options{
			BatchSize: opt.batchSize, MaxBatches: opt.batches, Shape: opt.shape, DType: opt.dtype, MNISTDir: opt.mnistDir,
		})
		if err != nil {
			return nil, err
		}
		req.Source = ds
		out.Source, out.BatchSize = ds.Describe, ds.BatchSize()
		total := int64(opt.batches)
		if total == 0 {
			total = -1
		}
		bar := progress.New(total, "calibrate", progress.Options{Out: progressOut, Unit: "batches"})
		req.Collect.Progress = func(k int) { bar.Set(int64(k)) }
		finish = bar.Finish
	}
	start := time.Now()
	res, err := calib.Calibrate(req)
	if err != nil {
		if opt.cache != "" && !opt.force && fileExists(opt.cache) && !strings.Contains(err.Error(), "--force") {
			err = fmt.Errorf("%w (the cache %s was not used; --force recalibrates)", err, opt.cache)
		}
		return nil, err
	}
	finish()
	out.Result, out.Elapsed = res, time.Since(start)
	return out, nil
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

func calibrateModel(w, errw io.Writer, path string, f calibrateFlags) error {
	if f.data == "" && (f.cache == "" || f.force) {
		return cli.Usagef("give the calibration data with --data SRC")
	}
	src, err := loadSource(path)
	if err != nil {
		return err
	}
	c, err := runCalibration(src, f.calibOptions, errw)
	if err != nil {
		return err
	}
	if f.dynRange != "" {
		d := &calib.DynamicRanges{Amax: map[string]float64{}}
		for _, r := range c.Ranges {
			d.Names = append(d.Names, r.Name)
			d.Amax[r.Name] = r.Amax
		}
		if err := calib.WriteFileAtomic(f.dynRange, d.Marshal()); err != nil {
			return err
		}
	}
	for _, warn := range c.Warnings {
		fmt.Fprintf(errw, "warning: %s\n", warn)
	}
	rep := newCalibReport(src, f, c)
	if f.asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(rep)
	}
	return rep.writeText(w)
}

// calibReport is what kiln calibrate prints.
type calibReport struct {
	Model        string        `json:"model"`
	ModelSHA256  string        `json:"model_sha256"`
	Calibrator   string        `json:"calibrator"`
	Source       string        `json:"source,omitempty"`
	Batches      int           `json:"batches"`
	BatchSize    int           `json:"batch_size,omitempty"`
	FromCache    bool          `json:"from_cache"`
	Cache        string        `json:"cache,omitempty"`
	DynamicRange string        `json:"dynamic_range,omitempty"`
	Seconds      float64       `json:"seconds"`
	Tensors      []calibTensor `json:"tensors"`
	Warnings     []string      `json:"warnings"`
}

// calibTensor is one row. Saturation and SQNR come from the histogram and
// are absent (null) when the ranges were read from a cache.
type calibTensor struct {
	Name       string   `json:"name"`
	Min        float64  `json:"min"`
	Max        float64  `json:"max"`
	Amax       float64  `json:"amax"`
	Scale      float64  `json:"scale"`
	Saturation *float64 `json:"saturation_percent"`
	SQNR       *float64 `json:"sqnr_db"`
	Fallback   string   `json:"fallback,omitempty"`
}

func newCalibReport(src *sourceModel, f calibrateFlags, c *calibration) *calibReport {
	r := &calibReport{
		Model: src.Path, ModelSHA256: src.SHA, Calibrator: string(c.Algorithm), Source: c.Source,
		BatchSize: c.BatchSize, FromCache: c.FromCache, Cache: f.cache, DynamicRange: f.dynRange,
		Seconds: c.Elapsed.Seconds(), Tensors: []calibTensor{}, Warnings: append([]string{}, c.Warnings...),
	}
	if c.Stats != nil {
		r.Batches = c.Stats.Batches
	}
	for _, rg := range c.Ranges {
		t := calibTensor{Name: rg.Name, Min: finite(rg.Min), Max: finite(rg.Max), Amax: rg.Amax, Scale: rg.Scale(), Fallback: rg.Fallback}
		if !c.FromCache && rg.Fallback == "" {
			sat, sqnr := rg.Saturation*100, finite(rg.SQNR)
			t.Saturation, t.SQNR = &sat, &sqnr
		}
		r.Tensors = append(r.Tensors, t)
	}
	return r
}

// finite keeps JSON valid: ±Inf and NaN (a tensor that saw no finite
// value, an exact SQNR) become 0 and +Inf's largest float respectively.
func finite(x float64) float64 {
	switch {
	case math.IsNaN(x):
		return 0
	case math.IsInf(x, 1):
		return math.MaxFloat64
	case math.IsInf(x, -1):
		return -math.MaxFloat64
	}
	return x
}

func (r *calibReport) writeText(w io.Writer) error {
	ew := &errWriter{w: w}
	p := ew.printf
	p("Model:      %s (sha256 %.12s…)\n", r.Model, r.ModelSHA256)
	p("Calibrator: %s\n", r.Calibrator)
	switch {
	case r.FromCache:
		p("Ranges:     from the cache %s (still valid for this model and calibrator)\n", r.Cache)
	default:
		p("Data:       %s, %d batch(es) of %d, %.2fs\n", r.Source, r.Batches, r.BatchSize, r.Seconds)
		if r.Cache != "" {
			p("Cache:      %s (+ sidecar %s)\n", r.Cache, calib.SidecarPath(r.Cache))
		}
	}
	if r.DynamicRange != "" {
		p("Dynamic ranges: %s\n", r.DynamicRange)
	}
	p("\n")
	rows := [][]string{{"tensor", "min", "max", "amax", "scale", "saturation %", "SQNR dB", "note"}}
	for _, t := range r.Tensors {
		sat, sqnr := "-", "-"
		if t.Saturation != nil {
			sat = fmt.Sprintf("%.4f", *t.Saturation)
		}
		if t.SQNR != nil {
			sqnr = fmt.Sprintf("%.1f", *t.SQNR)
		}
		note := t.Fallback
		if note != "" {
			note = "fallback: " + note
		}
		rows = append(rows, []string{t.Name, g6(t.Min), g6(t.Max), g6(t.Amax), g6(t.Scale), sat, sqnr, note})
	}
	writeTable(ew, "", rows)
	p("\n%d tensor(s)\n", len(r.Tensors))
	return ew.err
}

// errWriter remembers the first write error so that report printers can
// write freely and check once.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(b []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(b)
	e.err = err
	return n, err
}

func (e *errWriter) printf(format string, args ...any) { fmt.Fprintf(e, format, args...) }

func g6(x float64) string { return fmt.Sprintf("%.6g", x) }
