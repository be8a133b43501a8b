// Package demo runs the lesson's hands-on end to end (../shared/LESSON.txt,
// `kiln demo mnist`): train the SimpleCNN on MNIST in Go, export ONNX with a
// dynamic batch axis, build FP32, FP16, INT8 (entropy calibration on 100
// batches of 64 training images, in order, through a fresh calibration
// cache) and FP8 engines, then compare accuracy and time per batch on the
// 10,000 test images against the unoptimized FP32 reference executor (the
// lesson's PyTorch FP32 baseline) and, when it is installed, ONNX Runtime
// FP32 on the same ONNX file.
package demo

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	_ "github.com/kilnml/kiln/backend/cpu" // the fast kernels: what makes an engine faster than the baseline
	"github.com/kilnml/kiln/builder"
	"github.com/kilnml/kiln/data/mnist"
	"github.com/kilnml/kiln/datasrc"
	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/internal/progress"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/onnx"
	"github.com/kilnml/kiln/quant/calib"
	"github.com/kilnml/kiln/train"
)

// Artifact file names, after the lesson's (the checkpoint is safetensors
// rather than a .pth pickle).
const (
	CheckpointFile = "cnn_mnist_fp32.safetensors"
	ONNXFile       = "cnn_mnist.onnx"
	CacheFile      = "calibration.cache"
)

// PlanFile is the engine file of a precision ("fp32", "int8", ...).
func PlanFile(precision string) string { return "cnn_mnist_" + precision + ".plan" }

// MNISTConfig is what `kiln demo mnist` asks for. The zero value of every
// field but Epochs means the lesson's default.
type MNISTConfig struct {
	Epochs     int     // training epochs (the lesson: 5)
	TrainBatch int     // images per training step (256)
	LR         float64 // Adam learning rate (1e-3)
	Seed       uint64  // initialization and shuffling (0: 1)
	Resume     string  // start from this safetensors checkpoint (with Epochs 0: skip training)

	// BatchSizes are the inference batch sizes, one table each (256).
	BatchSizes []int
	// CalibBatches are calibration batch counts (100); the INT8 engine of
	// the tables uses the last, and with several counts each gets its own
	// calibration, engine and accuracy.
	CalibBatches   []int
	CalibBatchSize int    // images per calibration batch (64)
	Calibrator     string // entropy2 (TensorRT's IInt8EntropyCalibrator2), minmax, percentile, mse, legacy

	Threads  int    // kernel threads for every engine, the reference executor and ONNX Runtime (0: GOMAXPROCS)
	MNISTDir string // the four idx files ("" finds the GoMNIST module)
	Keep     string // keep the artifacts in this folder ("" uses a temporary one, removed at the end)

	// TrainLimit, TestLimit: use only the first N training / test images
	// (0: all). For quick runs and tests.
	TrainLimit, TestLimit int
	// BaselineImages bounds the test images the reference executor runs on
	// (it is slow): whole batches covering at least this many (0: 2560;
	// negative: all).
	BaselineImages int
	// ORT: "auto" (use ONNX Runtime when KILN_ORT_DIR has it), "off".
	ORT string

	// Log receives the narration and progress (os.Stdout when nil);
	// Terminal forces the progress style (nil: detect from Log).
	Log      io.Writer
	Terminal *bool
}

func (c *MNISTConfig) defaults() error {
	if c.Epochs < 0 {
		return fmt.Errorf("epochs must not be negative")
	}
	if c.TrainBatch == 0 {
		c.TrainBatch = 256
	}
	if c.LR == 0 {
		c.LR = 1e-3
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if len(c.BatchSizes) == 0 {
		c.BatchSizes = []int{256}
	}
	if len(c.CalibBatches) == 0 {
		c.CalibBatches = []int{100}
	}
	if c.CalibBatchSize == 0 {
		c.CalibBatchSize = 64
	}
	if c.Calibrator == "" {
		c.Calibrator = "entropy2"
	}
	if c.Threads == 0 {
		c.Threads = runtime.GOMAXPROCS(0)
	}
	if c.BaselineImages == 0 {
		c.BaselineImages = 2560
	}
	if c.ORT == "" {
		c.ORT = "auto"
	}
	if c.Log == nil {
		c.Log = os.Stdout
	}
	switch {
	case c.TrainBatch < 1 || c.CalibBatchSize < 1 || c.Threads < 1:
		return fmt.Errorf("the training batch, the calibration batch size and the threads must be positive")
	case !(c.LR > 0):
		return fmt.Errorf("the learning rate must be positive")
	case c.TrainLimit < 0 || c.TestLimit < 0:
		return fmt.Errorf("image limits must not be negative")
	case c.ORT != "auto" && c.ORT != "off":
		return fmt.Errorf("ORT must be auto or off, not %q", c.ORT)
	}
	for _, b := range c.BatchSizes {
		if b < 1 {
			return fmt.Errorf("batch sizes must be positive (got %d)", b)
		}
	}
	for _, b := range c.CalibBatches {
		if b < 1 {
			return fmt.Errorf("calibration batch counts must be positive (got %d)", b)
		}
	}
	if _, err := calib.ParseAlgorithm(c.Calibrator); err != nil {
		return err
	}
	return nil
}

// Result is everything the demo measured (its JSON form is `--json`).
type Result struct {
	Epochs        int         `json:"epochs"`
	TrainImages   int         `json:"train_images"`
	TestImages    int         `json:"test_images"`
	Threads       int         `json:"threads"`
	Calibrator    string      `json:"calibrator"`
	CalibBatches  int         `json:"calib_batches"`
	CalibBatchSz  int         `json:"calib_batch_size"`
	TrainAccuracy float64     `json:"trainer_test_accuracy"` // the Go trainer's own evaluation, in %
	Tables        []Table     `json:"tables"`
	Calibrations  []CalibRun  `json:"calibrations"`
	Stages        []Stage     `json:"stages"`
	Artifacts     Artifacts   `json:"artifacts"`
	ORT           *ORTInfo    `json:"onnxruntime,omitempty"`
	Notes         []string    `json:"notes,omitempty"`
	Builds        []BuildInfo `json:"builds"`
	Machine       MachineInfo `json:"machine"`
	Seconds       float64     `json:"seconds"`
}

// Table is the comparison at one batch size.
type Table struct {
	BatchSize int   `json:"batch_size"`
	Rows      []Row `json:"rows"`
}

// Row is one mode of a table.
type Row struct {
	Mode     string  `json:"mode"`
	Key      string  `json:"key"`      // baseline, fp32, fp16, int8, fp8, ort
	Accuracy float64 `json:"accuracy"` // % of Images classified correctly
	Images   int     `json:"images"`   // test images the accuracy is over
	// AvgMs is the mean time of one Execute (SetInput + Execute) over the
	// TimedBatches full batches; ONNX Runtime's is its --bench median.
	AvgMs        float64 `json:"avg_ms"`
	MedianMs     float64 `json:"median_ms"`
	TimedBatches int     `json:"timed_batches"`
	Speedup      float64 `json:"speedup_vs_baseline"` // baseline AvgMs / AvgMs
	Note         string  `json:"note,omitempty"`
}

// CalibRun is one calibration (one count of batches).
type CalibRun struct {
	Batches  int     `json:"batches"`
	Images   int     `json:"images"`
	Seconds  float64 `json:"seconds"` // calibration + INT8 engine build
	Accuracy float64 `json:"accuracy"`
	Cache    string  `json:"cache"`
}

// Stage is the wall time of one step of the demo.
type Stage struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"`
}

// BuildInfo says what one engine build did.
type BuildInfo struct {
	Precision string   `json:"precision"`
	Plan      string   `json:"plan"`
	Layers    []string `json:"layers"` // "name precision kernel"
	Seconds   float64  `json:"seconds"`
}

// Artifacts are the files the demo wrote.
type Artifacts struct {
	Dir   string   `json:"dir"`
	Kept  bool     `json:"kept"`
	Files []string `json:"files"`
}

// ORTInfo describes the ONNX Runtime run (or why there was none).
type ORTInfo struct {
	Used    bool   `json:"used"`
	Version string `json:"version,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// MachineInfo names where the numbers come from.
type MachineInfo struct {
	CPU        string `json:"cpu"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	GOARCH     string `json:"goarch"`
}

// run is one demo in progress.
type run struct {
	cfg   MNISTConfig
	dir   string
	res   *Result
	start time.Time

	ortAcc *measurement // ONNX Runtime's accuracy, computed once
}

func (r *run) logf(format string, args ...any) { fmt.Fprintf(r.cfg.Log, format, args...) }

func (r *run) path(name string) string { return filepath.Join(r.dir, name) }

// stage runs f and records its wall time under name.
func (r *run) stage(name string, f func() error) error {
	t0 := time.Now()
	err := f()
	r.res.Stages = append(r.res.Stages, Stage{Name: name, Seconds: time.Since(t0).Seconds()})
	return err
}

func (r *run) bar(total int, desc, unit string) *progress.Bar {
	return progress.New(int64(total), desc, progress.Options{Out: r.cfg.Log, Terminal: r.cfg.Terminal, Unit: unit})
}

// RunMNIST runs the whole demo and returns its measurements; the narration
// and progress go to cfg.Log.
func RunMNIST(cfg MNISTConfig) (res *Result, err error) {
	if err := cfg.defaults(); err != nil {
		return nil, fmt.Errorf("demo mnist: %w", err)
	}
	r := &run{cfg: cfg, start: time.Now(), res: &Result{
		Epochs: cfg.Epochs, Threads: cfg.Threads, Calibrator: cfg.Calibrator,
		CalibBatches: cfg.CalibBatches[len(cfg.CalibBatches)-1], CalibBatchSz: cfg.CalibBatchSize,
		Machine: MachineInfo{CPU: cpuModel(), GOMAXPROCS: runtime.GOMAXPROCS(0), GOARCH: runtime.GOARCH},
	}}
	if cfg.Keep != "" {
		if err := os.MkdirAll(cfg.Keep, 0o755); err != nil {
			return nil, err
		}
		r.dir = cfg.Keep
		r.res.Artifacts = Artifacts{Dir: cfg.Keep, Kept: true}
	} else {
		if r.dir, err = os.MkdirTemp("", "kiln-demo-mnist-"); err != nil {
			return nil, err
		}
		r.res.Artifacts = Artifacts{Dir: r.dir}
		defer func() {
			r.logf("\n--- cleaning up ---\n")
			if rmErr := os.RemoveAll(r.dir); rmErr != nil {
				err = errors.Join(err, rmErr)
			} else {
				r.logf("removed %s (give --keep DIR to keep the model, the ONNX file, the plans and the cache)\n", r.dir)
			}
		}()
	}
	if err := r.all(); err != nil {
		return nil, err
	}
	r.res.Seconds = time.Since(r.start).Seconds()
	if entries, err := os.ReadDir(r.dir); err == nil {
		for _, e := range entries {
			r.res.Artifacts.Files = append(r.res.Artifacts.Files, e.Name())
		}
	}
	return r.res, nil
}

func (r *run) all() error {
	cfg := r.cfg
	var testSet *mnist.Set
	if err := r.stage("load MNIST", func() error {
		trainSet, test, err := mnist.Load(cfg.MNISTDir)
		if err != nil {
			return err
		}
		testSet = test
		if cfg.TestLimit > 0 && cfg.TestLimit < test.Len() {
			testSet = headSet(test, cfg.TestLimit)
		}
		r.res.TrainImages = trainSet.Len()
		if cfg.TrainLimit > 0 {
			r.res.TrainImages = min(cfg.TrainLimit, trainSet.Len())
		}
		r.res.TestImages = testSet.Len()
		return nil
	}); err != nil {
		return err
	}
	r.logf("kiln demo mnist: the lesson's TensorRT INT8 hands-on, in Go on %s (%d threads); artifacts in %s\n",
		r.res.Machine.CPU, cfg.Threads, r.dir)

	// 1-2. Train, save the checkpoint, export ONNX.
	r.logf("\n--- 1. training the FP32 SimpleCNN (%d epochs) ---\n", cfg.Epochs)
	if err := r.stage("train + export", func() error {
		tr, err := train.TrainMNIST(train.MNISTConfig{
			Epochs: cfg.Epochs, BatchSize: cfg.TrainBatch, LR: cfg.LR, Seed: cfg.Seed, Optimizer: "adam",
			Out: r.path(ONNXFile), Checkpoint: r.path(CheckpointFile), MNISTDir: cfg.MNISTDir,
			Workers: cfg.Threads, Limit: cfg.TrainLimit, Terminal: cfg.Terminal, Resume: cfg.Resume,
		}, cfg.Log)
		if err != nil {
			return err
		}
		r.res.TrainAccuracy = 100 * tr.TestAccuracy
		return nil
	}); err != nil {
		return err
	}
	src, err := loadModel(r.path(ONNXFile))
	if err != nil {
		return err
	}
	r.logf("\n--- 2. exported %s (dynamic batch axis) ---\n", ONNXFile)

	// 3-4. Engines.
	maxBatch := slices.Max(cfg.BatchSizes)
	engines := map[string]*engine.Engine{}
	r.logf("\n--- 3. building the FP32 engine ---\n")
	if engines["fp32"], err = r.buildPlan(src, "fp32", maxBatch, nil); err != nil {
		return err
	}
	r.logf("\n--- 4. INT8: calibrating (%s, batches of %d training images in order) and building; FP16 and FP8 engines ---\n",
		cfg.Calibrator, cfg.CalibBatchSize)
	if engines["int8"], err = r.calibrateAndBuild(src, maxBatch, testSet); err != nil {
		return err
	}
	if engines["fp16"], err = r.buildPlan(src, "fp16", maxBatch, nil); err != nil {
		return err
	}
	if engines["fp8"], err = r.buildPlan(src, "fp8", maxBatch, r.cacheCalibration(src, r.path(CacheFile))); err != nil {
		return err
	}

	// 5. Evaluate.
	r.logf("\n--- 5. evaluating on %d test images ---\n", testSet.Len())
	ort := r.ortAvailable()
	for _, bs := range cfg.BatchSizes {
		if err := r.stage(fmt.Sprintf("evaluate @%d", bs), func() error {
			t, err := r.table(src, testSet, engines, bs, ort)
			if err != nil {
				return err
			}
			r.res.Tables = append(r.res.Tables, *t)
			return nil
		}); err != nil {
			return err
		}
	}
	if c := r.res.Calibrations; len(c) == 1 {
		c[0].Accuracy = r.res.int8Accuracy()
	}
	return nil
}

// int8Accuracy is the INT8 engine's accuracy in the table at batch 256 (or
// the first table).
func (res *Result) int8Accuracy() float64 {
	acc := 0.0
	for i, t := range res.Tables {
		for _, row := range t.Rows {
			if row.Key == "int8" && (i == 0 || t.BatchSize == 256) {
				acc = row.Accuracy
			}
		}
	}
	return acc
}

// sourceModel is the exported ONNX file, decoded, with its hash (the
// calibration sidecar records it).
type sourceModel struct {
	Path  string
	Bytes []byte
	Model *ir.Model
	SHA   string
}

func loadModel(path string) (*sourceModel, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m, err := onnx.Decode(data, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	m.Path = path
	sum := sha256.Sum256(data)
	return &sourceModel{Path: path, Bytes: data, Model: m, SHA: hex.EncodeToString(sum[:])}, nil
}

func (s *sourceModel) inputName() string { return s.Model.Graph.RealInputs()[0].Name }

func (s *sourceModel) outputName() string { return s.Model.Graph.Outputs[0].Name }

// buildPlan builds one engine (profile: batch 1 to maxBatch, optimized for
// 256 or the largest batch), saves its plan and loads it back from the file
// as the lesson's inference step does.
func (r *run) buildPlan(src *sourceModel, precision string, maxBatch int, cal *builder.Calibration) (*engine.Engine, error) {
	cfg := builder.Config{Threads: r.cfg.Threads, Calibration: cal}
	switch precision {
	case "fp16":
		cfg.FP16 = true
	case "int8":
		cfg.INT8 = true
	case "fp8":
		cfg.FP8 = true
	}
	opt := 256
	if opt > maxBatch {
		opt = maxBatch
	}
	in := src.inputName()
	cfg.Profiles = []builder.Profile{{in: builder.ShapeRange{
		Min: []int64{1, 1, 28, 28}, Opt: []int64{int64(opt), 1, 28, 28}, Max: []int64{int64(maxBatch), 1, 28, 28},
	}}}
	t0 := time.Now()
	plan, rep, err := builder.Build(src.Model, src.Bytes, cfg)
	if err != nil {
		return nil, fmt.Errorf("building the %s engine: %w", precision, err)
	}
	el := time.Since(t0)
	plan.Meta.SourceName = src.Path
	file := r.path(PlanFile(precision))
	if err := plan.SaveFile(file); err != nil {
		return nil, fmt.Errorf("saving the %s engine: %w", precision, err)
	}
	e, err := engine.Load(file)
	if err != nil {
		return nil, err
	}
	info := BuildInfo{Precision: precision, Plan: PlanFile(precision), Seconds: el.Seconds()}
	kernels := map[string]int{}
	for _, l := range rep.Layers {
		info.Layers = append(info.Layers, fmt.Sprintf("%s %s %s", l.Name, l.Precision, l.Kernel))
		kernels[l.Kernel]++
	}
	r.res.Builds = append(r.res.Builds, info)
	if cal == nil || cal.Source == nil { // calibrateAndBuild records its own stage
		r.res.Stages = append(r.res.Stages, Stage{Name: "build " + precision, Seconds: el.Seconds()})
	}
	r.logf("built the %s engine in %v: %d layers (%s), saved %s\n", precision, el.Round(time.Millisecond), len(rep.Layers), kernelSummary(rep), PlanFile(precision))
	for _, w := range rep.Warnings {
		r.logf("  warning: %s\n", w)
	}
	return e, nil
}

// kernelSummary: "conv1 + relu1 int8 cpu.conv.i8, ..." shortened to the
// precision/kernel histogram "4 int8, 3 fp32".
func kernelSummary(rep *builder.Report) string {
	count := map[string]int{}
	var order []string
	for _, l := range rep.Layers {
		if count[l.Precision] == 0 {
			order = append(order, l.Precision)
		}
		count[l.Precision]++
	}
	s := ""
	for i, p := range order {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%d %s", count[p], p)
	}
	return s
}

// cacheCalibration reads ranges from an existing cache (FP8 reuses the
// INT8 calibration, as TensorRT's FP8 build reuses amax).
func (r *run) cacheCalibration(src *sourceModel, cache string) *builder.Calibration {
	algo, _ := calib.ParseAlgorithm(r.cfg.Calibrator)
	return &builder.Calibration{Algorithm: algo, Cache: cache, TRTVersion: calib.DefaultTRTVersion, ModelHash: src.SHA}
}

// calibrateAndBuild calibrates once per count of batches (the last count
// writes calibration.cache and makes the INT8 engine of the tables), each
// time removing the old cache first, as the lesson does.
func (r *run) calibrateAndBuild(src *sourceModel, maxBatch int, testSet *mnist.Set) (*engine.Engine, error) {
	counts := r.cfg.CalibBatches
	var main *engine.Engine
	for i, n := range counts {
		last := i == len(counts)-1
		cache := CacheFile
		if !last {
			cache = fmt.Sprintf("calibration_%d.cache", n)
		}
		path := r.path(cache)
		for _, p := range []string{path, calib.SidecarPath(path)} {
			if err := os.Remove(p); err == nil {
				r.logf("removed old calibration cache %s\n", p)
			} else if !os.IsNotExist(err) {
				return nil, err
			}
		}
		ds, err := datasrc.Open("mnist", src.Model.Graph.RealInputs(), datasrc.Options{
			BatchSize: r.cfg.CalibBatchSize, MaxBatches: n, MNISTDir: r.cfg.MNISTDir,
		})
		if err != nil {
			return nil, err
		}
		cal := r.cacheCalibration(src, path)
		cal.Source, cal.Force = ds, true
		cal.Collect = calib.CollectOptions{MaxBatches: n, Workers: r.cfg.Threads}
		bar := r.bar(n, fmt.Sprintf("calibrate (%d batches)", n), "batches")
		served := 0
		cal.Collect.Progress = func(k int) { served = k; bar.Set(int64(k)) }
		t0 := time.Now()
		e, err := r.buildPlan(src, "int8", maxBatch, cal)
		if err != nil {
			return nil, err
		}
		bar.Finish()
		sec := time.Since(t0).Seconds()
		if served < n {
			r.res.Notes = append(r.res.Notes, fmt.Sprintf("calibration asked for %d batches, the data gave %d", n, served))
		}
		r.logf("wrote calibration cache %s (%d batches of %d images, %.1f s with the INT8 build)\n", cache, served, r.cfg.CalibBatchSize, sec)
		r.res.Stages = append(r.res.Stages, Stage{Name: fmt.Sprintf("calibrate (%d batches) + build int8", n), Seconds: sec})
		run := CalibRun{Batches: n, Images: served * r.cfg.CalibBatchSize, Seconds: sec, Cache: cache}
		if last {
			main = e
		} else {
			// Only the table's INT8 engine keeps its plan under the lesson's name.
			if err := os.Rename(r.path(PlanFile("int8")), r.path(fmt.Sprintf("cnn_mnist_int8_%d.plan", n))); err != nil {
				return nil, err
			}
		}
		if len(counts) > 1 {
			acc, err := r.accuracyOnly(e, src, testSet, fmt.Sprintf("int8 (%d calib batches)", n))
			if err != nil {
				return nil, err
			}
			run.Accuracy = acc
		}
		r.res.Calibrations = append(r.res.Calibrations, run)
	}
	return main, nil
}

// headSet is the first n examples of a split.
func headSet(s *mnist.Set, n int) *mnist.Set {
	im := *s.Images
	im.N = n
	im.Pixels = im.Pixels[:n*im.Rows*im.Cols]
	return &mnist.Set{Images: &im, Labels: s.Labels[:n]}
}
