package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/onnx"
	"github.com/kilnml/kiln/ops"
	"github.com/kilnml/kiln/tensorio"
)

// FileName turns a value name into a file name: '/' and ':' (common in
// exported models, e.g. "input:0") become '_'.
func FileName(name string) string {
	return strings.NewReplacer("/", "_", ":", "_", "\\", "_").Replace(name)
}

// InputFile is one tensor fed to the model and where it came from.
type InputFile struct {
	Input *ir.ValueInfo
	Path  string
	// Entry is the array's name inside an .npz archive, empty otherwise.
	Entry  string
	Tensor *ir.Tensor
}

// LoadInputs reads a value for every real graph input (inputs that are not
// initializers) from src, which is either a directory or an .npz archive.
// In a directory, input i is "<name>.npy" (name as FileName makes it) or
// else "input_<i>.pb", i counting real inputs in graph order as ONNX's test
// data does. In an .npz archive, arrays are matched by name (raw or as
// FileName makes it). Each tensor is checked against the input's declared
// dtype and shape (symbolic dims match anything). All problems are reported
// together.
func LoadInputs(g *ir.Graph, src string) ([]InputFile, error) {
	st, err := os.Stat(src)
	if err != nil {
		return nil, err
	}
	var npz map[string]*ir.Tensor
	if !st.IsDir() {
		if !strings.HasSuffix(strings.ToLower(src), ".npz") {
			return nil, fmt.Errorf("%s: inputs must be a directory or an .npz archive", src)
		}
		arrays, err := tensorio.ReadNPZ(src)
		if err != nil {
			return nil, err
		}
		npz = map[string]*ir.Tensor{}
		for _, a := range arrays {
			npz[a.Name] = a
		}
	}
	var out []InputFile
	var errs []error
	for i, in := range g.RealInputs() {
		f, err := loadInput(in, i, src, npz)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := ops.CheckInput(in, f.Tensor); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.where(), err))
			continue
		}
		out = append(out, f)
	}
	return out, errors.Join(errs...)
}

func (f InputFile) where() string {
	if f.Entry != "" {
		return fmt.Sprintf("%s[%s]", f.Path, f.Entry)
	}
	return f.Path
}

func loadInput(in *ir.ValueInfo, i int, src string, npz map[string]*ir.Tensor) (InputFile, error) {
	f := InputFile{Input: in, Path: src}
	if npz != nil {
		for _, key := range []string{in.Name, FileName(in.Name)} {
			if t, ok := npz[key]; ok {
				f.Entry, f.Tensor = key, t
				return f, nil
			}
		}
		return f, fmt.Errorf("%s: no array named %q for input %d", src, in.Name, i)
	}
	npy := filepath.Join(src, FileName(in.Name)+".npy")
	pb := filepath.Join(src, fmt.Sprintf("input_%d.pb", i))
	var err error
	switch {
	case exists(npy):
		f.Path = npy
		f.Tensor, err = tensorio.ReadNPY(npy)
	case exists(pb):
		f.Path = pb
		f.Tensor, err = onnx.ReadTensorFile(pb)
	default:
		return f, fmt.Errorf("input %q (#%d): found neither %s nor %s", in.Name, i, npy, pb)
	}
	if err != nil {
		return f, err
	}
	return f, nil
}

func exists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// Feeds turns loaded inputs into the map Session.Run takes.
func Feeds(files []InputFile) map[string]*ir.Tensor {
	m := make(map[string]*ir.Tensor, len(files))
	for _, f := range files {
		m[f.Input.Name] = f.Tensor
	}
	return m
}
