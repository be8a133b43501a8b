package conformance

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/onnx"
	"github.com/kilnml/kiln/ops"
)

// Case is one model with one or more data sets.
type Case struct {
	Name     string // e.g. "node/test_abs" or "models/mnist-8-zoo"
	Dir      string
	DataSets []string
}

// Discover lists node cases under shared/onnx-node and model cases under
// shared/models (any folder holding model.onnx and test_data_set_*).
func Discover(shared string) ([]Case, error) {
	var cases []Case
	nodes, err := filepath.Glob(filepath.Join(shared, "onnx-node", "*", "model.onnx"))
	if err != nil {
		return nil, err
	}
	models, err := filepath.Glob(filepath.Join(shared, "models", "*", "model.onnx"))
	if err != nil {
		return nil, err
	}
	deeper, _ := filepath.Glob(filepath.Join(shared, "models", "*", "*", "model.onnx"))
	models = append(models, deeper...)
	for _, group := range []struct {
		prefix, root string
		files        []string
	}{{"node", filepath.Join(shared, "onnx-node"), nodes}, {"models", filepath.Join(shared, "models"), models}} {
		for _, m := range group.files {
			dir := filepath.Dir(m)
			sets, _ := filepath.Glob(filepath.Join(dir, "test_data_set_*"))
			if len(sets) == 0 {
				continue
			}
			sort.Strings(sets)
			rel, _ := filepath.Rel(group.root, dir)
			cases = append(cases, Case{Name: group.prefix + "/" + filepath.ToSlash(rel), Dir: dir, DataSets: sets})
		}
	}
	sort.Slice(cases, func(i, j int) bool { return cases[i].Name < cases[j].Name })
	return cases, nil
}

// SkipError marks a case kiln does not attempt (e.g. sequence inputs).
type SkipError struct{ Reason string }

func (e *SkipError) Error() string { return e.Reason }

// Run loads the case's model, runs every data set and compares outputs.
func Run(c Case) error {
	m, err := onnx.Load(filepath.Join(c.Dir, "model.onnx"))
	if err != nil {
		return err
	}
	if err := ops.CheckSupported(m); err != nil {
		var ue *ops.UnsupportedOpsError
		if errors.As(err, &ue) {
			var names []string
			for _, o := range ue.Ops {
				names = append(names, o.OpType)
			}
			return &SkipError{"unsupported op: " + strings.Join(names, ",")}
		}
		return err
	}
	for _, in := range m.Graph.Inputs {
		if in.Type != nil && in.Type.Kind != ir.KindTensor {
			return &SkipError{"non-tensor graph input " + in.Name}
		}
	}
	for _, out := range m.Graph.Outputs {
		if out.Type != nil && out.Type.Kind != ir.KindTensor {
			return &SkipError{"non-tensor graph output " + out.Name}
		}
	}
	s, err := ops.NewSession(m)
	if err != nil {
		return err
	}
	for _, set := range c.DataSets {
		if err := runSet(s, m, set); err != nil {
			return fmt.Errorf("%s: %w", filepath.Base(set), err)
		}
	}
	return nil
}

func runSet(s *ops.Session, m *ir.Model, set string) error {
	inputs := map[string]*ir.Tensor{}
	// Input files follow the order of graph inputs that have no initializer;
	// some older models number every graph input, so fall back to that.
	real := s.Inputs()
	files, _ := filepath.Glob(filepath.Join(set, "input_*.pb"))
	list := real
	if len(files) != len(real) && len(files) == len(m.Graph.Inputs) {
		list = m.Graph.Inputs
	}
	for i, in := range list {
		t, err := onnx.ReadTensorFile(filepath.Join(set, fmt.Sprintf("input_%d.pb", i)))
		if err != nil {
			return err
		}
		inputs[in.Name] = t
	}
	outs, err := s.Run(inputs)
	if err != nil {
		return err
	}
	for i, o := range m.Graph.Outputs {
		path := filepath.Join(set, fmt.Sprintf("output_%d.pb", i))
		if _, err := os.Stat(path); err != nil {
			continue
		}
		want, err := onnx.ReadTensorFile(path)
		if err != nil {
			return err
		}
		if err := Compare(outs[o.Name], want, RTol, ATol); err != nil {
			return fmt.Errorf("output %q: %w", o.Name, err)
		}
	}
	return nil
}
