package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/kilnml/kiln/internal/cli"
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
		Use:   "run MODEL.onnx --inputs DIR [--outputs DIR] [--compare DIR]",
		Short: "Run a model once with kiln's reference executor",
		Long: `Run a model once with kiln's reference executor.

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
		Args: cli.ExactArgs(1, "one model file"),
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
	start := time.Now()
	m, err := onnx.Load(path)
	if err != nil {
		return err
	}
	sess, err := ops.NewSession(m)
	if err != nil {
		return err
	}
	loadTime := time.Since(start)
	if f.inputs == "" && len(m.Graph.RealInputs()) > 0 {
		return cli.Usagef("the model has %d input(s): give them with --inputs DIR", len(m.Graph.RealInputs()))
	}
	var ins []cli.InputFile
	if f.inputs != "" {
		if ins, err = cli.LoadInputs(m.Graph, f.inputs); err != nil {
			return err
		}
	}
	start = time.Now()
	outs, err := sess.Run(cli.Feeds(ins))
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	runTime := time.Since(start)

	fmt.Fprintf(w, "Model:   %s (loaded in %v)\n", path, round(loadTime))
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Inputs:\n")
	for _, in := range ins {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", in.Input.Name, in.Tensor.Type(), in.Path)
	}
	tw.Flush()
	fmt.Fprintf(w, "Run:     %v (reference executor)\n", round(runTime))
	fmt.Fprintf(tw, "Outputs:\n")
	for i, o := range m.Graph.Outputs {
		t := outs[o.Name]
		if f.outputs != "" {
			fmt.Fprintf(tw, "  %s\t%s\t-> %s\n", o.Name, t.Type(), cli.OutputFile(f.outputs, i))
		} else {
			fmt.Fprintf(tw, "  %s\t%s\n", o.Name, t.Type())
		}
	}
	tw.Flush()
	if f.outputs != "" {
		if err := cli.WriteOutputs(m.Graph, outs, f.outputs); err != nil {
			return err
		}
	}
	if f.compare == "" {
		return nil
	}
	want, err := cli.ReadExpected(m.Graph, f.compare)
	if err != nil {
		return err
	}
	tol := compare.Tolerance{ATol: f.atol, RTol: f.rtol}
	fmt.Fprintf(w, "Compare with %s (atol %g, rtol %g):\n", f.compare, tol.ATol, tol.RTol)
	failed := 0
	for i, o := range m.Graph.Outputs {
		r := compare.Tensors(o.Name, outs[o.Name], want[i], tol)
		fmt.Fprintf(w, "  %s\n", r)
		if !r.Pass() {
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d output(s) differ from %s", failed, len(m.Graph.Outputs), f.compare)
	}
	fmt.Fprintf(w, "PASS: all %d output(s) match\n", len(m.Graph.Outputs))
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
