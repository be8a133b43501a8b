package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/onnx"
)

// OutputFile is the name of graph output i in ONNX's test data layout.
func OutputFile(dir string, i int) string {
	return filepath.Join(dir, fmt.Sprintf("output_%d.pb", i))
}

// WriteOutputs writes every graph output as dir/output_<i>.pb (a
// TensorProto named after the output), creating dir if needed.
func WriteOutputs(g *ir.Graph, outs map[string]*ir.Tensor, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for i, o := range g.Outputs {
		t, ok := outs[o.Name]
		if !ok {
			return fmt.Errorf("output %q has no value", o.Name)
		}
		named := *t // a shallow copy: the value may be shared (e.g. an initializer)
		named.Name = o.Name
		if err := onnx.WriteTensorFile(OutputFile(dir, i), &named); err != nil {
			return err
		}
	}
	return nil
}

// ReadExpected reads dir/output_<i>.pb for every graph output.
func ReadExpected(g *ir.Graph, dir string) ([]*ir.Tensor, error) {
	var out []*ir.Tensor
	var errs []error
	for i, o := range g.Outputs {
		t, err := onnx.ReadTensorFile(OutputFile(dir, i))
		if err != nil {
			errs = append(errs, fmt.Errorf("expected value of output %q: %w", o.Name, err))
		}
		out = append(out, t)
	}
	if extra := OutputFile(dir, len(g.Outputs)); len(errs) == 0 && exists(extra) {
		errs = append(errs, fmt.Errorf("%s: the model has only %d output(s)", extra, len(g.Outputs)))
	}
	return out, errors.Join(errs...)
}
