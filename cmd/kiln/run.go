package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/internal/cli"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/onnx"
	"github.com/kilnml/kiln/ops"
	_ "github.com/kilnml/kiln/ops/all" // register the reference kernels
	"github.com/kilnml/kiln/tools/compare"
	"github.com/spf13/cobra"
)

type runFlags struct {
	inputs, outputs, compare string
	atol, rtol               float64
}

func init() {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run MODEL.onnx|PLAN --inputs DIR [--outputs DIR] [--compare DIR]",
		Short: "Run a model once (reference executor) or an engine plan",
		Long: `Run a model once with kiln's reference executor, or an engine plan (from
kiln build --save-engine) through an execution context; inputs are bound by
the engine's bindings, which behave as the graph inputs below.

Inputs come from a directory holding, for each graph input (initializers
excluded) in graph order, either <name>.npy (with '/' and ':' in the name
replaced by '_') or input_<i>.pb (a serialized TensorProto, as in ONNX's test
data), or from an .npz archive with one array per input name. Each input is
checked against the model's declared dtype and shape.

Outputs are written as output_<i>.pb. With --compare, each output is checked
against DIR/output_<i>.pb with ONNX's test rule |actual-expected| <= atol +
rtol*|expected| for floats (NaN matches NaN) and exact equality for other
types; kiln exits with status 1 if any output differs.`,
		Example: `  kiln run ../shared/models/mnist-8-zoo/model.onnx \
      --inputs ../shared/models/mnist-8-zoo/test_data_set_0 \
      --compare ../shared/models/mnist-8-zoo/test_data_set_0`,
		Args: cli.ExactArgs(1, "one model or plan file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runModel(cmd.OutOrStdout(), args[0], f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.inputs, "inputs", "", "directory of input_<i>.pb / <name>.npy files, or an .npz archive")
	fl.StringVar(&f.outputs, "outputs", "", "directory to write output_<i>.pb files to")
	fl.StringVar(&f.compare, "compare", "", "directory of expected output_<i>.pb files to check the outputs against")
	fl.Float64Var(&f.atol, "atol", compare.ONNXTest.ATol, "absolute tolerance for --compare")
	fl.Float64Var(&f.rtol, "rtol", compare.ONNXTest.RTol, "relative tolerance for --compare")
	rootCmd.AddCommand(cmd)
}

func runModel(w io.Writer, path string, f runFlags) error {
	if f.atol < 0 || f.rtol < 0 {
		return cli.Usagef("--atol and --rtol must not be negative")
	}
	plan, err := isPlanFile(path)
	if err != nil {
		return err
	}
	var r ranModel
	if plan {
		r, err = runPlanOnce(path, f)
	} else {
		r, err = runONNXOnce(path, f)
	}
	if err != nil {
		return err
	}
	return r.report(w, path, f)
}

// ranModel is one run of a model or plan, for reporting.
type ranModel struct {
	graph     *ir.Graph // inputs and outputs (a plan's bindings)
	ins       []cli.InputFile
	outs      map[string]*ir.Tensor
	loadTime  time.Duration
	runTime   time.Duration
	executor  string
	loadNotes []string
}

func runONNXOnce(path string, f runFlags) (ranModel, error) {
	r := ranModel{executor: "reference executor"}
	start := time.Now()
	m, err := onnx.Load(path)
	if err != nil {
		return r, err
	}
	sess, err := ops.NewSession(m)
	if err != nil {
		return r, err
	}
	r.loadTime, r.graph = time.Since(start), m.Graph
	if r.ins, err = loadRunInputs(m.Graph, f); err != nil {
		return r, err
	}
	start = time.Now()
	if r.outs, err = sess.Run(cli.Feeds(r.ins)); err != nil {
		return r, fmt.Errorf("%s: %w", path, err)
	}
	r.runTime = time.Since(start)
	return r, nil
}

// runPlanOnce loads an engine plan, binds the inputs by the engine's
// bindings and executes once through a context.
func runPlanOnce(path string, f runFlags) (ranModel, error) {
	r := ranModel{executor: "engine"}
	start := time.Now()
	e, err := engine.Load(path)
	if err != nil {
		return r, err
	}
	r.loadTime, r.graph, r.loadNotes = time.Since(start), cli.PlanGraph(e.Plan()), e.Warnings
	if r.ins, err = loadRunInputs(r.graph, f); err != nil {
		return r, err
	}
	ctx := e.NewContext()
	start = time.Now()
	if r.outs, err = ctx.Run(cli.Feeds(r.ins)); err != nil {
		return r, fmt.Errorf("%s: %w", path, err)
	}
	r.runTime = time.Since(start)
	return r, nil
}

func loadRunInputs(g *ir.Graph, f runFlags) ([]cli.InputFile, error) {
	if f.inputs == "" {
		if n := len(g.RealInputs()); n > 0 {
			return nil, cli.Usagef("the model has %d input(s): give them with --inputs DIR", n)
		}
		return nil, nil
	}
	return cli.LoadInputs(g, f.inputs)
}

func (r ranModel) report(w io.Writer, path string, f runFlags) error {
	fmt.Fprintf(w, "Model:   %s (loaded in %v)\n", path, round(r.loadTime))
	for _, n := range r.loadNotes {
		fmt.Fprintf(w, "warning: %s\n", n)
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Inputs:\n")
	for _, in := range r.ins {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", in.Input.Name, in.Tensor.Type(), in.Path)
	}
	tw.Flush()
	fmt.Fprintf(w, "Run:     %v (%s)\n", round(r.runTime), r.executor)
	fmt.Fprintf(tw, "Outputs:\n")
	g := r.graph
	for i, o := range g.Outputs {
		t := r.outs[o.Name]
		if f.outputs != "" {
			fmt.Fprintf(tw, "  %s\t%s\t-> %s\n", o.Name, t.Type(), cli.OutputFile(f.outputs, i))
		} else {
			fmt.Fprintf(tw, "  %s\t%s\n", o.Name, t.Type())
		}
	}
	tw.Flush()
	if f.outputs != "" {
		if err := cli.WriteOutputs(g, r.outs, f.outputs); err != nil {
			return err
		}
	}
	if f.compare == "" {
		return nil
	}
	want, err := cli.ReadExpected(g, f.compare)
	if err != nil {
		return err
	}
	tol := compare.Tolerance{ATol: f.atol, RTol: f.rtol}
	fmt.Fprintf(w, "Compare with %s (atol %g, rtol %g):\n", f.compare, tol.ATol, tol.RTol)
	failed := 0
	for i, o := range g.Outputs {
		res := compare.Tensors(o.Name, r.outs[o.Name], want[i], tol)
		fmt.Fprintf(w, "  %s\n", res)
		if !res.Pass() {
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d output(s) differ from %s", failed, len(g.Outputs), f.compare)
	}
	fmt.Fprintf(w, "PASS: all %d output(s) match\n", len(g.Outputs))
	return nil
}

// round keeps durations readable: three significant digits or so.
func round(d time.Duration) time.Duration {
	switch {
	case d > time.Second:
		return d.Round(time.Millisecond)
	case d > time.Millisecond:
		return d.Round(time.Microsecond)
	}
	return d
}
