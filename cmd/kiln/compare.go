package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/kilnml/kiln/datasrc"
	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/internal/cli"
	"github.com/kilnml/kiln/internal/ortrun"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/onnx"
	"github.com/kilnml/kiln/ops"
	"github.com/kilnml/kiln/tools/accuracy"
	"github.com/kilnml/kiln/tools/layerdebug"
	"github.com/spf13/cobra"
)

type compareFlags struct {
	data, mnistDir, shape string
	batches, batchSize    int
	atol, rtol, quantile  float64
	check                 string
	topK                  int
	ort, asJSON, perLayer bool
	report                string
}

func init() {
	var f compareFlags
	cmd := &cobra.Command{
		Use:   "compare A B --data SRC [--batches N] [--atol X --rtol Y] [--check elemwise|mean|median|max|quantile] [--ort] [--per-layer] [--json]",
		Short: "Compare two runners (ONNX reference, engine plan, ONNX Runtime) on a data source",
		Long: `Run A and B (each an ONNX model, run by the reference executor or with --ort
by ONNX Runtime, or an engine plan) on the same batches and compare every
output, as Polygraphy does: statistics of both sides and of the absolute and
relative differences (rel = |B-A| / |A|: A is the reference), cosine
similarity, SQNR, and for classifiers top-1/top-k agreement (and accuracy
when the data source has labels). The check (default elementwise) fails
where abs > atol AND rel > rtol; mean/median/max/quantile checks apply the
statistic to abs and rel. The minimum tolerance that would have passed is
printed. kiln exits with status 1 on a mismatch.

--per-layer (one ONNX model and one plan): every intermediate tensor of the
float graph against the engine's layer outputs, read by debug taps that
leave fusion and precisions as built. Codes are compared as the numbers
they stand for: the engine's dequantized with the plan's scales and zero
points, a Q/DQ model's with its QuantizeLinear's; a QuantizeLinear that the
builder moved above ops that commute with it (Reshape, MaxPool...) is
compared with the tensor it now reads, quantized by that node's parameters
(shown as node(tensor)). Then the blame table: for each layer the error it adds
(relative noise energy of its output minus that of its inputs). --report
DIR writes PNG charts and an index.html.

--ort runs the ONNX side (B when both are ONNX) with ONNX Runtime
(KILN_ORT_DIR).`,
		Example: `  kiln compare ../shared/models/mnist-8-zoo/model.onnx zoo.int8.plan --data mnist-raw:test --batches 500
  kiln compare model.onnx model.onnx --ort --data ../shared/models/mnist-8-zoo/test_data_set_0
  kiln compare model.onnx zoo.int8.plan --data mnist-raw:test --per-layer --report out/`,
		Args: cli.ExactArgs(2, "two models or plans (A B)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return compareRunners(cmd.OutOrStdout(), args[0], args[1], f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.data, "data", "", "input data: mnist, mnist-raw[:test], a folder of .npy/.npz/.pb, a raw file with --shape")
	fl.StringVar(&f.mnistDir, "mnist-dir", "", "folder of the MNIST idx files")
	fl.StringVar(&f.shape, "shape", "", "raw data files: the dims of one sample, e.g. 1x28x28")
	fl.IntVar(&f.batches, "batches", 100, "batches to compare (0: the whole source)")
	fl.IntVar(&f.batchSize, "batch-size", 1, "samples per batch when the model's batch dimension is dynamic")
	fl.Float64Var(&f.atol, "atol", accuracy.DefaultTolerance.ATol, "absolute tolerance")
	fl.Float64Var(&f.rtol, "rtol", accuracy.DefaultTolerance.RTol, "relative tolerance")
	fl.StringVar(&f.check, "check", "elemwise", "error statistic checked: elemwise, mean, median, max or quantile")
	fl.Float64Var(&f.quantile, "quantile", 0.99, "quantile for --check quantile")
	fl.IntVar(&f.topK, "top-k", 5, "k for the top-k agreement of classifier outputs")
	fl.BoolVar(&f.ort, "ort", false, "run the ONNX side with ONNX Runtime")
	fl.BoolVar(&f.asJSON, "json", false, "print the comparison as JSON")
	fl.BoolVar(&f.perLayer, "per-layer", false, "compare every layer (one ONNX model and one plan)")
	fl.StringVar(&f.report, "report", "", "with --per-layer: write PNG charts and index.html to this folder")
	rootCmd.AddCommand(cmd)
}

// maxCompareValues bounds the values kept per output and side (medians and
// quantiles need them all): 2^25 float64s, 256 MiB.
const maxCompareValues = 1 << 25

// runner is one side of a comparison.
type runner struct {
	name  string
	graph *ir.Graph // inputs and outputs
	model *ir.Model // ONNX side
	eng   *engine.Engine
	run   func(map[string]*ir.Tensor) (map[string]*ir.Tensor, error)
}

func openRunner(path string, useORT bool) (*runner, error) {
	isPlan, err := isPlanFile(path)
	if err != nil {
		return nil, err
	}
	if isPlan {
		e, err := engine.Load(path)
		if err != nil {
			return nil, err
		}
		ctx := e.NewContext()
		return &runner{name: path + " (engine)", graph: cli.PlanGraph(e.Plan()), eng: e, run: ctx.Run}, nil
	}
	m, err := onnx.Load(path)
	if err != nil {
		return nil, err
	}
	r := &runner{name: path + " (reference executor)", graph: m.Graph, model: m}
	if useORT {
		if _, why := ortrun.Dir(); why != "" {
			return nil, fmt.Errorf("--ort: %s", why)
		}
		r.name = path + " (ONNX Runtime)"
		r.run = func(in map[string]*ir.Tensor) (map[string]*ir.Tensor, error) {
			var ins []*ir.Tensor
			for _, vi := range m.Graph.RealInputs() {
				ins = append(ins, in[vi.Name])
			}
			outs, _, err := ortrun.Run(path, ins, 0, 0)
			if err != nil {
				return nil, err
			}
			res := map[string]*ir.Tensor{}
			for i, o := range m.Graph.Outputs {
				if i < len(outs) {
					res[o.Name] = outs[i]
				}
			}
			return res, nil
		}
		return r, nil
	}
	sess, err := ops.NewSession(m)
	if err != nil {
		return nil, err
	}
	r.run = sess.Run
	return r, nil
}

func (f *compareFlags) openData(g *ir.Graph) (*datasrc.Source, error) {
	if f.data == "" {
		return nil, cli.Usagef("--data SRC is required (mnist, mnist-raw:test, a folder, a raw file with --shape)")
	}
	return datasrc.Open(f.data, g.RealInputs(), datasrc.Options{BatchSize: f.batchSize, MaxBatches: f.batches, Shape: f.shape, MNISTDir: f.mnistDir})
}

// outputComparison is one output's result.
type outputComparison struct {
	Name    string            `json:"name"`
	Diff    *accuracy.Diff    `json:"diff"`
	Classes *accuracy.Classes `json:"classes,omitempty"`
	Problem string            `json:"problem,omitempty"`
}

type comparison struct {
	A         string             `json:"a"`
	B         string             `json:"b"`
	Batches   int                `json:"batches"`
	Tolerance accuracy.Tolerance `json:"tolerance"`
	Outputs   []outputComparison `json:"outputs"`
	Pass      bool               `json:"pass"`
}

func compareRunners(w io.Writer, pathA, pathB string, f compareFlags) error {
	check, err := accuracy.ParseCheck(f.check)
	if err != nil {
		return cli.Usagef("--check: %v", err)
	}
	if f.atol < 0 || f.rtol < 0 || f.batches < 0 || f.quantile <= 0 || f.quantile > 1 {
		return cli.Usagef("--atol, --rtol, --batches must not be negative and --quantile must be in (0, 1]")
	}
	isPlanB, err := isPlanFile(pathB)
	if err != nil {
		return err
	}
	a, err := openRunner(pathA, f.ort && isPlanB)
	if err != nil {
		return err
	}
	b, err := openRunner(pathB, f.ort && !isPlanB)
	if err != nil {
		return err
	}
	if f.perLayer {
		return comparePerLayer(w, a, b, f)
	}
	tol := accuracy.Tolerance{ATol: f.atol, RTol: f.rtol, Check: check, Quantile: f.quantile}
	src, err := f.openData(a.graph)
	if err != nil {
		return err
	}
	res := comparison{A: a.name, B: b.name, Tolerance: tol, Pass: true}
	va, vb := map[string][]float64{}, map[string][]float64{}
	var labels []int
	classes := map[string]int{}
	for {
		in, err := src.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		oa, err := a.run(in)
		if err != nil {
			return fmt.Errorf("%s: %w", a.name, err)
		}
		ob, err := b.run(in)
		if err != nil {
			return fmt.Errorf("%s: %w", b.name, err)
		}
		for _, o := range a.graph.Outputs {
			ta, tb := oa[o.Name], ob[o.Name]
			if ta == nil || tb == nil || !ta.DType.IsFloat() && !ta.DType.IsInteger() {
				continue
			}
			if len(ta.Dims) == 2 && ta.Dims[1] > 1 {
				classes[o.Name] = int(ta.Dims[1])
			}
			if len(va[o.Name])+int(ta.Len()) > maxCompareValues {
				return fmt.Errorf("output %q: more than %d values over %d batches; the statistics keep every value: compare fewer batches (--batches)", o.Name, maxCompareValues, res.Batches)
			}
			va[o.Name] = append(va[o.Name], ta.Float64s()...)
			vb[o.Name] = append(vb[o.Name], tb.Float64s()...)
		}
		labels = append(labels, src.Labels()...)
		res.Batches++
	}
	if res.Batches == 0 {
		return fmt.Errorf("data source %s gave no batch", f.data)
	}
	for _, o := range a.graph.Outputs {
		oc := outputComparison{Name: o.Name}
		ra, rb := va[o.Name], vb[o.Name]
		switch {
		case ra == nil || rb == nil:
			oc.Problem = "missing on one side (or not numeric)"
		case len(ra) != len(rb):
			oc.Problem = fmt.Sprintf("%d values vs %d", len(ra), len(rb))
		default:
			oc.Diff = accuracy.Compare(ra, rb, tol)
			if c := classes[o.Name]; c > 0 {
				cl := accuracy.CompareClasses(ra, rb, c, min(f.topK, c), labels)
				oc.Classes = &cl
			}
		}
		if oc.Problem != "" || !oc.Diff.Pass {
			res.Pass = false
		}
		res.Outputs = append(res.Outputs, oc)
	}
	if f.asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(jsonSafe(res)); err != nil {
			return err
		}
	} else {
		writeComparison(w, &res, f)
	}
	if !res.Pass {
		return fmt.Errorf("outputs of %s and %s differ beyond the tolerance", pathA, pathB)
	}
	return nil
}

func writeComparison(w io.Writer, r *comparison, f compareFlags) {
	ew := &errWriter{w: w}
	p := ew.printf
	p("A: %s\nB: %s\n", r.A, r.B)
	p("Data: %s, %d batch(es); rel = |B-A|/|A|\n", f.data, r.Batches)
	t := r.Tolerance
	p("Check: %s (atol %g, rtol %g", t.Check, t.ATol, t.RTol)
	if t.Check == accuracy.QuantileCheck {
		p(", quantile %g", t.Quantile)
	}
	p(")\n")
	for _, o := range r.Outputs {
		p("\nOutput %s:\n", o.Name)
		if o.Problem != "" {
			p("  FAIL: %s\n", o.Problem)
			continue
		}
		d := o.Diff
		rows := [][]string{{"", "mean", "std", "min", "median", "p90", "p99", "max (index)"}}
		row := func(name string, s accuracy.Summary) {
			q := func(i int) string {
				if i < len(s.Quantiles) {
					return g4(s.Quantiles[i].V)
				}
				return "-"
			}
			rows = append(rows, []string{name, g4(s.Mean), g4(s.Std), g4(s.Min), g4(s.Median), q(1), q(2), fmt.Sprintf("%s (%d)", g4(s.Max), s.ArgMax)})
		}
		row("A", d.Ref)
		row("B", d.Got)
		row("|B-A|", d.Abs)
		row("rel", d.Rel)
		writeTable(ew, "  ", rows)
		p("  cosine similarity %.6f, SQNR %s dB, %d of %d elements outside atol/rtol\n", d.Cosine, g4(d.SQNR), d.Mismatches, d.N)
		if c := o.Classes; c != nil {
			p("  classifier: top-1 agreement %.2f%% (%d of %d), top-%d overlap %.2f%%\n", 100*c.Top1Rate(), c.Top1Agree, c.Samples, c.K, 100*c.TopKOverlap)
			if c.Labeled > 0 {
				p("  accuracy vs labels (%d samples): A %.2f%%, B %.2f%% (%+.2f points)\n", c.Labeled, 100*c.RefAccuracy(), 100*c.GotAccuracy(), 100*(c.GotAccuracy()-c.RefAccuracy()))
			}
		}
		p("  minimum tolerance that passes: atol %s (at rtol %g), rtol %s (at atol %g)\n", g4(d.MinATol), t.RTol, g4(d.MinRTol), t.ATol)
		if d.Pass {
			p("  PASS\n")
		} else {
			p("  FAIL\n")
		}
	}
	if r.Pass {
		p("\nPASS: every output within tolerance\n")
	} else {
		p("\nFAIL: outputs differ\n")
	}
}

func g4(x float64) string {
	if math.IsInf(x, 1) {
		return "inf"
	}
	if math.IsInf(x, -1) {
		return "-inf"
	}
	return strings.TrimSpace(fmt.Sprintf("%.4g", x))
}

// comparePerLayer compares a float ONNX model with an engine layer by layer.
func comparePerLayer(w io.Writer, a, b *runner, f compareFlags) error {
	ref, eng := a, b
	if ref.model == nil {
		ref, eng = b, a
	}
	if ref.model == nil || eng.eng == nil {
		return cli.Usagef("--per-layer compares one ONNX model (the float reference) with one engine plan")
	}
	src, err := f.openData(ref.graph)
	if err != nil {
		return err
	}
	res, err := layerdebug.Compare(ref.model, eng.eng, src, f.batches)
	if err != nil {
		return err
	}
	if f.asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(jsonSafe(res))
	}
	writePerLayer(w, res)
	if f.report != "" {
		src, err := f.openData(ref.graph)
		if err != nil {
			return err
		}
		files, err := layerdebug.WriteReport(f.report, layerdebug.ReportData{Model: ref.model, Data: src, MaxBatches: f.batches, PerLayer: res, Title: "kiln compare --per-layer: " + eng.name})
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "\nReport: %s (%d charts)\n", files.Index, len(files.PNGs))
	}
	return nil
}

func writePerLayer(w io.Writer, r *layerdebug.PerLayer) {
	ew := &errWriter{w: w}
	p := ew.printf
	p("Per-layer comparison over %d batch(es): engine layer outputs vs the float graph's tensors\n\n", r.Batches)
	rows := [][]string{{"step", "layer", "precision", "tensor", "dtype", "SQNR dB", "cosine", "max |err|", "mean |err|"}}
	for _, t := range r.Tensors {
		rows = append(rows, []string{fmt.Sprint(t.Step), t.Layer, t.Precision, t.ShownTensor(), t.DType.String(), g4(t.Acc.SQNR()), fmt.Sprintf("%.6f", t.Acc.Cosine()), g4(t.Acc.MaxAbs), g4(t.Acc.MeanAbs())})
	}
	writeTable(ew, "  ", rows)
	p("\nBlame (error each layer adds: noise/signal energy of its output minus its inputs'; largest first):\n")
	rows = [][]string{{"#", "layer", "precision", "output", "before", "after", "added", "SQNR dB"}}
	for i, b := range r.Blame {
		rows = append(rows, []string{fmt.Sprint(i + 1), b.Layer, b.Precision, b.Tensor, g4(b.Before), g4(b.After), g4(b.Added), g4(b.SQNR)})
	}
	writeTable(ew, "  ", rows)
	for _, s := range r.Skipped {
		p("  not compared: %s\n", s)
	}
}
