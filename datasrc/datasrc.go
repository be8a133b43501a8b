// Package datasrc turns a user's data specification into batches for a
// model's inputs: the MNIST sets, a folder of .npy/.npz/TensorProto .pb
// files, or a raw binary file with a given sample shape. Calibration,
// quantization, comparison and evaluation all read data through it.
package datasrc

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/kilnml/kiln/data/mnist"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/onnx"
	"github.com/kilnml/kiln/tensorio"
)

// Options shape the batches.
type Options struct {
	BatchSize  int    // samples per batch (default 64); forced to the model's batch dim when that is fixed
	MaxBatches int    // 0: until the data ends
	Shape      string // raw files: the dims of one sample, e.g. 1x28x28
	DType      string // raw files: element type (default float32)
	MNISTDir   string // where the MNIST idx files are ("" finds the GoMNIST module)
}

// Source yields batches keyed by input name; it implements calib.Stream.
type Source struct {
	input    *ir.ValueInfo
	batch    int
	max      int
	served   int
	next     func() (*ir.Tensor, int, error) // one sample tensor (without batch dim) and its label (-1: none)
	labels   []int
	Describe string // what the source reads, for messages
	sample   []int64
	dtype    ir.DType
	spec     string // what Open was given, for Rewind
	opt      Options
	release  func() // closes what the current pass holds open (raw files)
}

// Open parses a spec:
//   - "mnist" / "mnist:train" / "mnist:test": MNIST images normalized as
//     (x/255 − 0.1307)/0.3081 (the lesson's SimpleCNN), in file order, with labels;
//   - "mnist-raw[:train|:test]": raw pixels 0..255 (the model zoo's MNIST CNN);
//   - a folder: .npy / .pb files (one tensor each: a batch when its rank equals the
//     input's, one sample when one less) and .npz files (an array per input name,
//     or a single array), read in name order; in an ONNX test-data folder
//     (input_K.pb beside output_K.pb) only the inputs;
//   - a file ending in .npy, .npz or .pb: the same, for that one file;
//   - any other file: raw little-endian samples of --shape and --dtype.
//
// Only single-input models are supported for now; the error says so.
func Open(spec string, inputs []*ir.ValueInfo, opt Options) (*Source, error) {
	if len(inputs) != 1 {
		return nil, fmt.Errorf("data source %q: the model has %d inputs; kiln's data sources feed single-input models (for several inputs use .npz files with one array per input name)", spec, len(inputs))
	}
	in := inputs[0]
	if in.Type == nil || !in.Type.HasShape || len(in.Type.Shape) == 0 {
		return nil, fmt.Errorf("input %q has no declared shape", in.Name)
	}
	s := &Source{input: in, batch: opt.BatchSize, max: opt.MaxBatches, dtype: in.Type.DType}
	if s.batch <= 0 {
		s.batch = 64
	}
	if d := in.Type.Shape[0]; d.Known() {
		s.batch = int(d.Value)
	}
	for _, d := range in.Type.Shape[1:] {
		if !d.Known() {
			return nil, fmt.Errorf("input %q: only the batch dimension may be dynamic (shape %v)", in.Name, in.Type.Shape)
		}
		s.sample = append(s.sample, d.Value)
	}
	s.spec, s.opt = spec, opt
	if err := s.open(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Source) open() error {
	spec, opt := s.spec, s.opt
	switch {
	case spec == "mnist" || strings.HasPrefix(spec, "mnist:") || strings.HasPrefix(spec, "mnist-raw"):
		return s.openMNIST(spec, opt)
	}
	st, err := os.Stat(spec)
	if err != nil {
		return fmt.Errorf("data source: %w", err)
	}
	if st.IsDir() {
		return s.openDir(spec)
	}
	switch strings.ToLower(filepath.Ext(spec)) {
	case ".npy", ".npz", ".pb":
		return s.openFiles([]string{spec})
	}
	return s.openRaw(spec, opt)
}

// Rewind starts the data over from its first batch (calib.Rewinder): the
// builder reads calibration data twice with SmoothQuant (per-channel
// statistics, then ranges of the smoothed graph).
func (s *Source) Rewind() error {
	if s.release != nil {
		s.release()
		s.release = nil
	}
	s.served, s.labels = 0, nil
	return s.open()
}

// BatchSize is the number of samples per batch.
func (s *Source) BatchSize() int { return s.batch }

// Labels returns the labels of the last batch (nil when the data has none).
func (s *Source) Labels() []int { return s.labels }

// Next returns the next full batch, or io.EOF. A final partial batch is
// served only when the model's batch dimension is dynamic.
func (s *Source) Next() (map[string]*ir.Tensor, error) {
	if s.max > 0 && s.served >= s.max {
		return nil, io.EOF
	}
	per, err := ir.NumElements(s.sample)
	if err != nil {
		return nil, err
	}
	bytesPer := s.dtype.ByteSize(per)
	var samples []*ir.Tensor
	s.labels = s.labels[:0]
	hasLabels := false
	for len(samples) < s.batch {
		t, label, err := s.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		samples = append(samples, t)
		s.labels = append(s.labels, label)
		hasLabels = hasLabels || label >= 0
	}
	if len(samples) == 0 || (len(samples) < s.batch && s.input.Type.Shape[0].Known()) {
		return nil, io.EOF
	}
	dims := append([]int64{int64(len(samples))}, s.sample...)
	out := ir.NewTensor(s.dtype, dims)
	for i, t := range samples {
		copy(out.Data[int64(i)*bytesPer:], t.Data)
	}
	if !hasLabels {
		s.labels = nil
	}
	s.served++
	return map[string]*ir.Tensor{s.input.Name: out}, nil
}

func (s *Source) openMNIST(spec string, opt Options) error {
	raw := strings.HasPrefix(spec, "mnist-raw")
	split := "train"
	if i := strings.Index(spec, ":"); i >= 0 {
		split = spec[i+1:]
	}
	if split != "train" && split != "test" {
		return fmt.Errorf("data source %q: split must be train or test", spec)
	}
	if n, _ := ir.NumElements(s.sample); n != 28*28 || s.dtype != ir.Float32 {
		return fmt.Errorf("data source %q: input %q is %s%v, MNIST images need 784 float32 values per sample", spec, s.input.Name, s.dtype, s.input.Type.Shape)
	}
	train, test, err := mnist.Load(opt.MNISTDir)
	if err != nil {
		return err
	}
	set := train
	if split == "test" {
		set = test
	}
	s.Describe = fmt.Sprintf("MNIST %s set (%d images, %s)", split, set.Len(), map[bool]string{true: "raw pixels", false: "normalized"}[raw])
	i := 0
	s.next = func() (*ir.Tensor, int, error) {
		if i >= set.Len() {
			return nil, 0, io.EOF
		}
		t := ir.NewTensor(ir.Float32, s.sample)
		px := set.Images.Image(i)
		f := t.F32()
		for k, p := range px {
			if raw {
				f[k] = float32(p)
			} else {
				f[k] = mnist.Normalize(p)
			}
		}
		label := int(set.Labels[i])
		i++
		return t, label, nil
	}
	return nil
}

func (s *Source) openDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var files []string
	for _, e := range entries {
		switch strings.ToLower(filepath.Ext(e.Name())) {
		case ".npy", ".npz", ".pb":
			files = append(files, filepath.Join(dir, e.Name()))
		}
	}
	if len(files) == 0 {
		return fmt.Errorf("data source %s: no .npy, .npz or .pb files", dir)
	}
	sort.Strings(files)
	return s.openFiles(onlyInputs(files))
}

// onlyInputs drops the expected outputs of an ONNX test-data folder
// (test_data_set_N: input_K.pb beside output_K.pb), which are no samples;
// other folders are served whole.
func onlyInputs(files []string) []string {
	var in []string
	hasOut := false
	for _, f := range files {
		base := strings.ToLower(filepath.Base(f))
		switch {
		case strings.HasPrefix(base, "input_") && strings.HasSuffix(base, ".pb"):
			in = append(in, f)
		case strings.HasPrefix(base, "output_") && strings.HasSuffix(base, ".pb"):
			hasOut = true
		}
	}
	if !hasOut || len(in) == 0 {
		return files
	}
	return in
}

// openFiles serves the samples of each file in turn.
func (s *Source) openFiles(files []string) error {
	s.Describe = fmt.Sprintf("%d file(s) starting with %s", len(files), files[0])
	fi := 0
	var cur *ir.Tensor
	var k int64
	s.next = func() (*ir.Tensor, int, error) {
		for cur == nil || k >= cur.Dims[0] {
			if fi >= len(files) {
				return nil, 0, io.EOF
			}
			t, err := s.readFile(files[fi])
			if err != nil {
				return nil, 0, err
			}
			cur, k = t, 0
			fi++
		}
		per, _ := ir.NumElements(s.sample)
		nb := cur.DType.ByteSize(per)
		t := ir.NewTensor(cur.DType, s.sample)
		copy(t.Data, cur.Data[k*nb:(k+1)*nb])
		k++
		return t, -1, nil
	}
	return nil
}

// readFile loads a file as a batch [n, sample...] checking dtype and shape.
func (s *Source) readFile(path string) (*ir.Tensor, error) {
	var t *ir.Tensor
	var err error
	switch strings.ToLower(filepath.Ext(path)) {
	case ".npy":
		t, err = tensorio.ReadNPY(path)
	case ".pb":
		t, err = onnx.ReadTensorFile(path)
	case ".npz":
		var ts []*ir.Tensor
		ts, err = tensorio.ReadNPZ(path)
		if err == nil {
			for _, c := range ts {
				if c.Name == s.input.Name || len(ts) == 1 {
					t = c
				}
			}
			if t == nil {
				err = fmt.Errorf("%s: no array named %q", path, s.input.Name)
			}
		}
	}
	if err != nil {
		return nil, err
	}
	if t.DType != s.dtype {
		return nil, fmt.Errorf("%s: data is %s, input %q wants %s", path, t.DType, s.input.Name, s.dtype)
	}
	switch len(t.Dims) {
	case len(s.sample) + 1:
	case len(s.sample):
		t.Dims = append([]int64{1}, t.Dims...)
	default:
		return nil, fmt.Errorf("%s: shape %v does not fit input %q %v (a sample is %v)", path, t.Dims, s.input.Name, s.input.Type.Shape, s.sample)
	}
	for i, d := range s.sample {
		if t.Dims[i+1] != d {
			return nil, fmt.Errorf("%s: shape %v does not fit input %q %v (a sample is %v)", path, t.Dims, s.input.Name, s.input.Type.Shape, s.sample)
		}
	}
	return t, nil
}

func (s *Source) openRaw(path string, opt Options) error {
	if opt.Shape != "" {
		shp, err := ir.ParseShape(opt.Shape)
		if err != nil {
			return err
		}
		dims, ok := shp.Concrete()
		if !ok {
			return fmt.Errorf("--shape %q must be numbers", opt.Shape)
		}
		n1, _ := ir.NumElements(dims)
		n2, _ := ir.NumElements(s.sample)
		if n1 != n2 {
			return fmt.Errorf("--shape %v has %d elements, input %q needs %v (%d)", dims, n1, s.input.Name, s.sample, n2)
		}
	}
	if opt.DType != "" {
		dt, err := ir.ParseDType(opt.DType)
		if err != nil {
			return err
		}
		if dt != s.dtype {
			return fmt.Errorf("--dtype %s: input %q is %s", dt, s.input.Name, s.dtype)
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	per, _ := ir.NumElements(s.sample)
	nb := s.dtype.ByteSize(per)
	if nb == 0 || st.Size()%nb != 0 {
		f.Close()
		return fmt.Errorf("%s: %d bytes is not a whole number of %s%v samples (%d bytes each); give --shape and --dtype", path, st.Size(), s.dtype, s.sample, nb)
	}
	s.Describe = fmt.Sprintf("%s (%d raw samples)", path, st.Size()/nb)
	done := false
	s.release = func() {
		if !done {
			f.Close()
			done = true
		}
	}
	s.next = func() (*ir.Tensor, int, error) {
		if done {
			return nil, 0, io.EOF
		}
		t := ir.NewTensor(s.dtype, s.sample)
		if _, err := io.ReadFull(f, t.Data); err != nil {
			f.Close()
			done = true
			if errors.Is(err, io.EOF) {
				return nil, 0, io.EOF
			}
			return nil, 0, fmt.Errorf("%s: %w", path, err)
		}
		return t, -1, nil
	}
	return nil
}
