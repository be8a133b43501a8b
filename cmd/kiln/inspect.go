package main

import (
	"encoding/json"
	"io"

	"github.com/kilnml/kiln/internal/cli"
	"github.com/kilnml/kiln/onnx"
	"github.com/spf13/cobra"
)

// inspectors turn a file into a report. Later file kinds (engine plans)
// add themselves in front of the ONNX fallback: each returns ok=false for
// files that are not its kind.
var inspectors = []func(path string) (r cli.Report, ok bool, err error){inspectONNX}

func inspectONNX(path string) (cli.Report, bool, error) {
	m, err := onnx.Load(path)
	if err != nil {
		return nil, true, err
	}
	r, err := cli.InspectModel(m)
	return r, true, err
}

func init() {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "inspect MODEL.onnx|PLAN",
		Short: "Describe a model or an engine plan",
		Long: `Describe a model: producer, IR version and opsets, inputs and outputs with
dtypes and (symbolic) shapes, a histogram of its ops, its parameter count and
size, the output types shape inference finds, and every op kiln cannot run
with the nodes that use it.

For an engine plan (kiln build --save-engine): who built it from what and
how (kiln version, source hash, build config, backend, CPU features), its
bindings with (symbolic) shapes, its optimization profiles with the
activation arena against the naive sum, and every layer with its fused
members, precision, kernel, tactic and input/output values. A corrupt,
truncated or foreign file is rejected with the reason.`,
		Args: cli.ExactArgs(1, "one model or plan file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return inspectFile(cmd.OutOrStdout(), args[0], asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	rootCmd.AddCommand(cmd)
}

func inspectFile(w io.Writer, path string, asJSON bool) error {
	for _, inspect := range inspectors {
		r, ok, err := inspect(path)
		if !ok {
			continue
		}
		if err != nil {
			return err
		}
		if asJSON {
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			return enc.Encode(r)
		}
		return r.WriteText(w)
	}
	return nil
}
