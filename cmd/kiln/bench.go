package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kilnml/kiln/builder"
	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/internal/cli"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/tools/benchstat"
	"github.com/spf13/cobra"
)

type benchFlags struct {
	buildFlags
	warmupMs      float64
	iterations    int
	duration      float64
	batch         int
	threads       int
	percentiles   string
	inputs        string
	seed          uint64
	asJSON        bool
	dumpProfile   bool
	exportProfile string
	exportTimes   string
	compareORT    bool
	rounds        int
}

func init() {
	var f benchFlags
	cmd := &cobra.Command{
		Use:   "bench MODEL.onnx|PLAN [--batch N | --shapes input:NxCxHxW] [--threads N]",
		Short: "Measure an engine's latency and throughput as trtexec does",
		Long: `Measure an engine's latency and throughput with trtexec's definitions, so that
the numbers compare with TensorRT's.

An .onnx model is built first with the same flags as kiln build (--fp16,
--int8 --calib-cache F, ...); a plan is loaded as it is. Inputs are random
(uniform in [-1, 1) for floats, small non-negative integers otherwise, from
--seed) at the profile's opt shapes, at --batch N on the batch dimension, at
--shapes, or read from --inputs DIR (as kiln run reads them).

One untimed run binds the shapes; then the engine runs for --warmup ms; then
it is timed run by run until at least --iterations runs and --duration
seconds have passed. Throughput is batch × runs / wall time of the timed
phase (qps). Percentiles follow trtexec: sort ascending, exclude =
int((1 − p/100)·N) (in float32, as trtexec), value = sorted[max(N−1−exclude,
0)]; the median is the middle run or the mean of the two middle ones; the
coefficient of variation is the population standard deviation over the
mean, and above 2.5% the result is flagged as unstable.

--dump-profile times every layer in a separate pass of as many runs (so that
the clock reads do not disturb the latency numbers) and prints total,
average, median, minimum (the fastest run: on a loaded machine the layer's
time least disturbed by other processes) and share per layer, fused members
included, and the sums of the medians and minima; --export-profile and --export-times write the per-layer and per-run numbers
as JSON. --compare-ort runs ONNX Runtime on the same model, inputs and
threads (KILN_ORT_DIR: a folder with run.js and node_modules/onnxruntime-node,
see ../shared/tools/ort) and prints its median next to kiln's; with
--rounds N the two alternate N times (each kiln round 1/N of --duration),
so that other load on the machine falls on both, and the ratio printed
is the median of the rounds' ratios.`,
		Example: `  kiln bench ../shared/models/bench/simplecnn.fp32.onnx --batch 256 --threads 2
  kiln bench cnn.int8.plan --batch 64 --dump-profile --json`,
		Args: cli.ExactArgs(1, "one model or plan file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return benchModel(cmd.OutOrStdout(), cmd.ErrOrStderr(), args[0], f)
		},
	}
	fl := cmd.Flags()
	f.register(fl)
	fl.Float64Var(&f.warmupMs, "warmup", 200, "warm-up time in milliseconds before timing")
	fl.IntVar(&f.iterations, "iterations", 10, "run at least this many timed inferences")
	fl.Float64Var(&f.duration, "duration", 3, "run timed inferences for at least this many seconds")
	fl.IntVar(&f.batch, "batch", 0, "batch size on the inputs' dynamic first dimension (0: the profile's opt shape)")
	fl.IntVar(&f.threads, "threads", 0, "threads per inference (0: all cores)")
	fl.StringVar(&f.percentiles, "percentile", "90,95,99", "latency percentiles to report (comma separated, 0..100)")
	fl.StringVar(&f.inputs, "inputs", "", "read inputs from this directory or .npz instead of random data")
	fl.Uint64Var(&f.seed, "seed", 1, "seed of the random inputs")
	fl.BoolVar(&f.asJSON, "json", false, "print the summary as one JSON object")
	fl.BoolVar(&f.dumpProfile, "dump-profile", false, "print per-layer times: total, average, median, minimum (from a separate profiling pass)")
	fl.StringVar(&f.exportProfile, "export-profile", "", "write per-layer times to this JSON file")
	fl.StringVar(&f.exportTimes, "export-times", "", "write every timed run's start, end and latency to this JSON file")
	fl.BoolVar(&f.compareORT, "compare-ort", false, "also time ONNX Runtime (needs KILN_ORT_DIR) and print the median ratio")
	fl.IntVar(&f.rounds, "rounds", 1, "with --compare-ort: alternate kiln and ONNX Runtime this many times (each round gets --duration/N) and report the median of the per-round ratios")
	rootCmd.AddCommand(cmd)
}

// benchResult is the summary kiln bench prints (and --json writes).
type benchResult struct {
	Model         string            `json:"model"`
	Plan          bool              `json:"plan"` // the argument was a plan (else built on the fly)
	Precisions    string            `json:"precisions"`
	BuildSeconds  float64           `json:"build_seconds,omitempty"`
	Inputs        []string          `json:"inputs"` // "name dtype[dims]"
	InputSource   string            `json:"input_source"`
	Batch         int               `json:"batch"`
	Threads       int               `json:"threads"`
	WarmupMs      float64           `json:"warmup_ms"`
	WarmupRuns    int               `json:"warmup_runs"`
	Runs          int               `json:"runs"`
	WallSeconds   float64           `json:"wall_seconds"`
	ThroughputQPS float64           `json:"throughput_qps"`
	Latency       benchstat.Summary `json:"latency"`
	Profile       []layerTime       `json:"profile,omitempty"`
	ORT           *ortResult        `json:"ort,omitempty"`
	GPU           *gpuPerRun        `json:"gpu,omitempty"` // CUDA steps' time per timed run (--device cuda)
	Warnings      []string          `json:"warnings"`
	times         []time.Duration   // per run, for --export-times
	starts        []time.Duration   // per run, from the start of the timed phase (of the first round with --rounds)
	origin        time.Time         // --rounds: the first round's start (zero: each measure's own)
	gpu           gpuTotals         // CUDA time of the timed runs (all rounds)
	profileRuns   int
}

func (f *benchFlags) check() ([]float64, error) {
	if f.warmupMs < 0 || f.duration < 0 {
		return nil, cli.Usagef("--warmup and --duration must not be negative")
	}
	if f.rounds < 1 {
		return nil, cli.Usagef("--rounds must be at least 1")
	}
	if f.rounds > 1 && !f.compareORT {
		return nil, cli.Usagef("--rounds alternates kiln with ONNX Runtime: it needs --compare-ort")
	}
	if f.iterations < 1 {
		return nil, cli.Usagef("--iterations must be at least 1")
	}
	if f.batch < 0 || f.threads < 0 {
		return nil, cli.Usagef("--batch and --threads must not be negative")
	}
	if f.batch > 0 && f.inputs != "" {
		return nil, cli.Usagef("--batch and --inputs conflict: the inputs' own shapes are used")
	}
	if f.batch > 0 && (f.shapes != "" || f.minShapes != "" || f.optShapes != "" || f.maxShapes != "") {
		return nil, cli.Usagef("--batch sets the batch dimension; with --shapes (or --min/--opt/--max-shapes) give it there instead")
	}
	var ps []float64
	for _, s := range strings.Split(f.percentiles, ",") {
		if strings.TrimSpace(s) == "" {
			continue
		}
		p, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || p < 0 || p > 100 {
			return nil, cli.Usagef("--percentile: %q is not a number in [0, 100]", s)
		}
		ps = append(ps, p)
	}
	return ps, nil
}

func benchModel(w, errw io.Writer, path string, f benchFlags) error {
	percentiles, err := f.check()
	if err != nil {
		return err
	}
	threads := f.threads
	if threads == 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	res := &benchResult{Model: path, Threads: threads, WarmupMs: f.warmupMs, Warnings: []string{}}
	e, src, err := benchEngine(path, &f, threads, res, errw)
	if err != nil {
		return err
	}
	res.Warnings = append(res.Warnings, e.Warnings...)
	ctx := e.NewContext()
	ctx.SetThreads(threads)
	feeds, err := benchInputs(e.Plan(), &f, res)
	if err != nil {
		return err
	}
	pinned, release, err := pinFeeds(feeds)
	if err != nil {
		return err
	}
	defer release()
	if pinned {
		res.InputSource += "; in page-locked host memory"
	}
	for name, t := range feeds {
		if err := ctx.SetInput(name, t); err != nil {
			return err
		}
	}
	// The first run binds the shapes (shape pass, arena); it is not timed.
	if err := ctx.Execute(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if f.compareORT && f.rounds > 1 {
		if err := res.measureRounds(ctx, &f, func() (*ortResult, error) {
			return compareORT(path, src, e.Plan(), feeds, threads, res)
		}); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	} else if err := res.measure(ctx, &f); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	res.Latency = benchstat.Summarize(benchstat.Ms(res.times), percentiles)
	res.GPU = res.gpu.perRun()
	if res.Latency.Unstable {
		res.Warnings = append(res.Warnings, fmt.Sprintf("latency is unstable: coefficient of variation %.2f%% > %.1f%% (other load, frequency scaling, or too short a run: raise --duration)",
			100*res.Latency.CoV, 100*benchstat.UnstableCoV))
	}
	if f.dumpProfile || f.exportProfile != "" {
		prof, err := profileLayers(ctx, e.Plan(), res.Runs)
		if err != nil {
			return fmt.Errorf("%s: profiling: %w", path, err)
		}
		res.Profile, res.profileRuns = prof, res.Runs
		if f.exportProfile != "" {
			if err := writeJSONFile(f.exportProfile, exportProfile(prof, res.Runs)); err != nil {
				return err
			}
		}
	}
	if f.exportTimes != "" {
		if err := writeJSONFile(f.exportTimes, exportTimes(res)); err != nil {
			return err
		}
	}
	if f.compareORT && f.rounds <= 1 {
		res.ORT, err = compareORT(path, src, e.Plan(), feeds, threads, res)
		if err != nil {
			return err
		}
		if res.ORT != nil {
			res.ORT.Ratio = res.Latency.Median / res.ORT.MedianMs
		}
	}
	if f.asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(res)
	}
	return res.writeText(w, f.dumpProfile)
}

// benchEngine loads a plan or builds the .onnx model with the build flags.
// It returns the source model when there is one (for --compare-ort).
func benchEngine(path string, f *benchFlags, threads int, res *benchResult, errw io.Writer) (*engine.Engine, *sourceModel, error) {
	isPlan, err := isPlanFile(path)
	if err != nil {
		return nil, nil, err
	}
	if isPlan {
		if f.quantized() || f.fp16 || f.bf16 || f.calibCache != "" || f.calibData != "" || f.layerPrecisions != "" ||
			f.minShapes != "" || f.optShapes != "" || f.maxShapes != "" {
			return nil, nil, cli.Usagef("%s is a plan: build flags (precisions, calibration, profiles) apply to .onnx models only", path)
		}
		e, err := engine.Load(path)
		if err != nil {
			return nil, nil, err
		}
		res.Plan, res.Precisions = true, e.Plan().Meta.Config["precisions"]
		return e, nil, nil
	}
	src, err := loadSource(path)
	if err != nil {
		return nil, nil, err
	}
	switch {
	case f.batch > 0:
		if f.shapes, err = batchShapes(src.Model, f.batch); err != nil {
			return nil, nil, err
		}
	case f.inputs != "" && f.shapes == "" && f.minShapes == "" && f.optShapes == "" && f.maxShapes == "":
		// Build for the shapes of the given inputs.
		files, err := cli.LoadInputs(src.Model.Graph, f.inputs)
		if err != nil {
			return nil, nil, err
		}
		var parts []string
		for _, in := range files {
			parts = append(parts, in.Input.Name+":"+dimsText(in.Tensor.Dims))
		}
		f.shapes = strings.Join(parts, ",")
	}
	b, err := buildEngine(src, &f.buildFlags, threads, errw, errw)
	if err != nil {
		return nil, nil, err
	}
	res.Warnings = append(res.Warnings, b.Report.Warnings...)
	res.Warnings = append(res.Warnings, b.Notes...)
	res.Precisions, res.BuildSeconds = b.Plan.Meta.Config["precisions"], b.Elapsed.Seconds()
	e, err := engine.NewEngine(b.Plan)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return e, src, nil
}

// batchShapes turns --batch N into --shapes for a model whose inputs have
// a dynamic first dimension and otherwise known dims.
func batchShapes(m *ir.Model, n int) (string, error) {
	var parts []string
	for _, in := range m.Graph.RealInputs() {
		if in.Type == nil || !in.Type.HasShape || len(in.Type.Shape) == 0 {
			return "", cli.Usagef("input %q has no declared shape: give --shapes", in.Name)
		}
		dims := []string{}
		for k, d := range in.Type.Shape {
			switch {
			case k == 0 && !d.Known():
				dims = append(dims, strconv.Itoa(n))
			case k == 0 && d.Value != int64(n):
				return "", cli.Usagef("input %q has a fixed batch of %d; --batch %d does not fit", in.Name, d.Value, n)
			case d.Known():
				dims = append(dims, strconv.FormatInt(d.Value, 10))
			default:
				return "", cli.Usagef("input %q has dynamic dimensions besides the batch (%v): give --shapes", in.Name, in.Type.Shape)
			}
		}
		parts = append(parts, in.Name+":"+strings.Join(dims, "x"))
	}
	return strings.Join(parts, ","), nil
}

// benchInputs makes (or reads) a value for every engine input.
func benchInputs(p *engine.Plan, f *benchFlags, res *benchResult) (map[string]*ir.Tensor, error) {
	feeds := map[string]*ir.Tensor{}
	if f.inputs != "" {
		files, err := cli.LoadInputs(cli.PlanGraph(p), f.inputs)
		if err != nil {
			return nil, err
		}
		feeds = cli.Feeds(files)
		res.InputSource = f.inputs
	} else {
		shapes, err := runShapes(p, f)
		if err != nil {
			return nil, err
		}
		rng := rand.New(rand.NewPCG(f.seed, 0x6b696c6e))
		for _, b := range p.Inputs {
			feeds[b.Name] = randomTensor(rng, b.DType, shapes[b.Name])
		}
		res.InputSource = fmt.Sprintf("random, seed %d", f.seed)
	}
	res.Batch = 1
	for i, b := range p.Inputs {
		t := feeds[b.Name]
		res.Inputs = append(res.Inputs, b.Name+" "+t.Type().String())
		if i == 0 && len(t.Dims) > 0 {
			res.Batch = int(t.Dims[0])
		}
	}
	return feeds, nil
}

// runShapes: --shapes, else profile 0's opt shapes with --batch on dynamic
// first dimensions.
func runShapes(p *engine.Plan, f *benchFlags) (map[string][]int64, error) {
	given, err := builder.ParseShapes(f.shapes)
	if err != nil {
		return nil, cli.Usagef("--shapes: %v", err)
	}
	out := map[string][]int64{}
	for name := range given {
		if !slices.ContainsFunc(p.Inputs, func(b engine.Binding) bool { return b.Name == name }) {
			return nil, cli.Usagef("--shapes: the engine has no input %q", name)
		}
	}
	for _, b := range p.Inputs {
		if d, ok := given[b.Name]; ok {
			out[b.Name] = d
			continue
		}
		d := slices.Clone(p.Profiles[0].Opt[b.Name])
		if f.batch > 0 && len(d) > 0 {
			if len(b.Shape) > 0 && b.Shape[0].Known() && b.Shape[0].Value != int64(f.batch) {
				return nil, cli.Usagef("input %q has a fixed batch of %d; --batch %d does not fit", b.Name, b.Shape[0].Value, f.batch)
			}
			d[0] = int64(f.batch)
		}
		out[b.Name] = d
	}
	return out, nil
}

// randomTensor fills a tensor: uniform [-1, 1) for floats, 0..7 for
// integers, 0/1 for booleans.
func randomTensor(rng *rand.Rand, dt ir.DType, dims []int64) *ir.Tensor {
	t := ir.NewTensor(dt, dims)
	n := t.Len()
	if dt == ir.Float32 {
		f := t.F32()
		for i := range f {
			f[i] = rng.Float32()*2 - 1
		}
		return t
	}
	for i := int64(0); i < n; i++ {
		switch {
		case dt.IsFloat():
			t.SetFloat64At(i, rng.Float64()*2-1)
		case dt == ir.Bool:
			t.SetInt64At(i, int64(rng.IntN(2)))
		default:
			t.SetInt64At(i, int64(rng.IntN(8)))
		}
	}
	return t
}

// measure runs the warm-up, then times runs until both --iterations and
// --duration are reached.
func (r *benchResult) measure(ctx *engine.Context, f *benchFlags) error {
	warm := time.Duration(f.warmupMs * float64(time.Millisecond))
	for start := time.Now(); time.Since(start) < warm; r.WarmupRuns++ {
		if err := ctx.Execute(); err != nil {
			return err
		}
	}
	dur := time.Duration(f.duration * float64(time.Second))
	r.times = make([]time.Duration, 0, f.iterations)
	t0 := time.Now()
	origin := t0
	if !r.origin.IsZero() {
		origin = r.origin
	}
	r.starts = r.starts[:0]
	gpu0 := readGPU()
	for len(r.times) < f.iterations || time.Since(t0) < dur {
		s := time.Now()
		if err := ctx.Execute(); err != nil {
			return err
		}
		end := time.Now()
		r.starts = append(r.starts, s.Sub(origin))
		r.times = append(r.times, end.Sub(s))
	}
	wall := time.Since(t0)
	r.gpu.add(readGPU().Sub(gpu0), len(r.times))
	r.Runs, r.WallSeconds = len(r.times), wall.Seconds()
	r.ThroughputQPS = benchstat.Throughput(r.Batch, r.Runs, wall)
	return nil
}

func (r *benchResult) writeText(w io.Writer, dumpProfile bool) error {
	ew := &errWriter{w: w}
	p := ew.printf
	kind := "plan"
	if !r.Plan {
		kind = fmt.Sprintf("built from the ONNX model in %.2fs", r.BuildSeconds)
	}
	p("Model:       %s (%s; precisions %s)\n", r.Model, kind, orDash(r.Precisions))
	p("Inputs:      %s (%s)\n", strings.Join(r.Inputs, ", "), r.InputSource)
	p("Threads:     %d\n", r.Threads)
	p("Warm-up:     %g ms (%d runs)\n", r.WarmupMs, r.WarmupRuns)
	p("\n=== Performance summary ===\n")
	p("Throughput:  %.4g qps (batch %d × %d runs in %.3f s)\n", r.ThroughputQPS, r.Batch, r.Runs, r.WallSeconds)
	l := r.Latency
	line := fmt.Sprintf("min = %s ms, max = %s ms, mean = %s ms, median = %s ms", ms(l.Min), ms(l.Max), ms(l.Mean), ms(l.Median))
	for _, pv := range l.Percentiles {
		line += fmt.Sprintf(", percentile(%g%%) = %s ms", pv.P, ms(pv.Value))
	}
	p("Latency:     %s\n", line)
	p("Coefficient of variation: %.2f%%\n", 100*l.CoV)
	if g := r.GPU; g != nil {
		p("GPU per run: H2D = %s ms, GPU compute = %s ms, D2H = %s ms (means over %d runs; %.1f CUDA steps per run, host staging %s ms)\n",
			ms(g.H2DMs), ms(g.ComputeMs), ms(g.D2HMs), g.Runs, g.StepsPerRun, ms(g.StagingMs))
	}
	if r.ORT != nil {
		for i, rd := range r.ORT.Rounds {
			p("Round %d:     kiln median = %s ms, ONNX Runtime median = %s ms, ratio %.3f\n", i+1, ms(rd.KilnMedianMs), ms(rd.ORTMedianMs), rd.Ratio)
		}
		what := "kiln median / ORT median"
		if len(r.ORT.Rounds) > 0 {
			what = fmt.Sprintf("median of %d rounds' kiln/ORT medians", len(r.ORT.Rounds))
		}
		p("ONNX Runtime %s (%d threads, %d runs): median = %s ms, min = %s ms; %s = %.3f (%s)\n",
			r.ORT.Version, r.ORT.Threads, r.ORT.Iterations, ms(r.ORT.MedianMs), ms(r.ORT.MinMs), what, r.ORT.Ratio, r.ORT.verdict())
	}
	if dumpProfile && r.Profile != nil {
		p("\n=== Profile (%d runs) ===\n", r.profileRuns)
		writeProfile(ew, r.Profile, r.profileRuns)
	}
	for _, s := range r.Warnings {
		p("warning: %s\n", s)
	}
	return ew.err
}

// ms prints milliseconds with enough digits for microsecond latencies.
func ms(x float64) string { return strconv.FormatFloat(x, 'f', 5, 64) }

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
