// Package safetensors reads and writes the safetensors format
// (https://huggingface.co/docs/safetensors): an 8-byte little-endian header
// length, a JSON header mapping each tensor name to its dtype, shape and byte
// range ("data_offsets", relative to the end of the header), an optional
// "__metadata__" map of strings, then the raw little-endian tensor bytes.
package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Tensor is one named tensor: a safetensors dtype ("F32", "F16", "I64", ...),
// its shape and its raw little-endian bytes.
type Tensor struct {
	Name  string
	DType string
	Shape []int64
	Data  []byte
}

// File is the content of a safetensors file.
type File struct {
	Tensors  []Tensor // in data order
	Metadata map[string]string
}

// Get returns the tensor of that name, or nil.
func (f *File) Get(name string) *Tensor {
	for i := range f.Tensors {
		if f.Tensors[i].Name == name {
			return &f.Tensors[i]
		}
	}
	return nil
}

var dtypeSizes = map[string]int64{
	"BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
	"I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8,
}

// ElemSize returns the byte size of a dtype, or 0 for an unknown one.
func ElemSize(dtype string) int64 { return dtypeSizes[dtype] }

type entry struct {
	DType       string   `json:"dtype"`
	Shape       []int64  `json:"shape"`
	DataOffsets [2]int64 `json:"data_offsets"`
}

// maxHeader bounds the JSON header (the reference implementation uses 100 MB).
const maxHeader = 100 << 20

// Encode serializes f. Tensors are written in the given order; names must be unique.
func Encode(f *File) ([]byte, error) {
	header := map[string]any{}
	if len(f.Metadata) > 0 {
		header["__metadata__"] = f.Metadata
	}
	var off int64
	for _, t := range f.Tensors {
		if t.Name == "" || t.Name == "__metadata__" {
			return nil, fmt.Errorf("safetensors: invalid tensor name %q", t.Name)
		}
		if _, dup := header[t.Name]; dup {
			return nil, fmt.Errorf("safetensors: tensor %q appears twice", t.Name)
		}
		size, err := byteSize(t.DType, t.Shape)
		if err != nil {
			return nil, fmt.Errorf("safetensors: tensor %q: %w", t.Name, err)
		}
		if size != int64(len(t.Data)) {
			return nil, fmt.Errorf("safetensors: tensor %q: %s%v needs %d bytes, has %d", t.Name, t.DType, t.Shape, size, len(t.Data))
		}
		shape := t.Shape
		if shape == nil {
			shape = []int64{}
		}
		header[t.Name] = entry{DType: t.DType, Shape: shape, DataOffsets: [2]int64{off, off + size}}
		off += size
	}
	hj, err := json.Marshal(header) // map keys are sorted: the output is deterministic
	if err != nil {
		return nil, err
	}
	// Pad the header with spaces so the data starts 8-byte aligned, as the reference writer does.
	for len(hj)%8 != 0 {
		hj = append(hj, ' ')
	}
	out := make([]byte, 8, 8+len(hj)+int(off))
	binary.LittleEndian.PutUint64(out, uint64(len(hj)))
	out = append(out, hj...)
	for _, t := range f.Tensors {
		out = append(out, t.Data...)
	}
	return out, nil
}

func byteSize(dtype string, shape []int64) (int64, error) {
	es := dtypeSizes[dtype]
	if es == 0 {
		return 0, fmt.Errorf("unknown dtype %q", dtype)
	}
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("negative dimension in shape %v", shape)
		}
		if d != 0 && n > (1<<50)/d {
			return 0, fmt.Errorf("shape %v is too large", shape)
		}
		n *= d
	}
	return n * es, nil
}

// Decode parses a safetensors file image, checking that the header is
// well-formed and that the tensors exactly tile the data section.
func Decode(b []byte) (*File, error) {
	if len(b) < 8 {
		return nil, fmt.Errorf("safetensors: file too short (%d bytes) for the header length", len(b))
	}
	hl := binary.LittleEndian.Uint64(b)
	if hl > maxHeader || hl > uint64(len(b)-8) {
		return nil, fmt.Errorf("safetensors: header length %d does not fit the file (%d bytes)", hl, len(b))
	}
	hj := b[8 : 8+hl]
	data := b[8+hl:]
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(hj))
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("safetensors: bad JSON header: %w", err)
	}
	f := &File{}
	type placed struct {
		t      Tensor
		lo, hi int64
	}
	var ts []placed
	for name, msg := range raw {
		if name == "__metadata__" {
			if err := json.Unmarshal(msg, &f.Metadata); err != nil {
				return nil, fmt.Errorf("safetensors: __metadata__ must map strings to strings: %w", err)
			}
			continue
		}
		var e entry
		d := json.NewDecoder(bytes.NewReader(msg))
		d.DisallowUnknownFields()
		if err := d.Decode(&e); err != nil {
			return nil, fmt.Errorf("safetensors: tensor %q: bad header entry: %w", name, err)
		}
		size, err := byteSize(e.DType, e.Shape)
		if err != nil {
			return nil, fmt.Errorf("safetensors: tensor %q: %w", name, err)
		}
		lo, hi := e.DataOffsets[0], e.DataOffsets[1]
		if lo < 0 || hi < lo || hi > int64(len(data)) {
			return nil, fmt.Errorf("safetensors: tensor %q: data_offsets [%d,%d] outside the %d data bytes", name, lo, hi, len(data))
		}
		if hi-lo != size {
			return nil, fmt.Errorf("safetensors: tensor %q: %s%v needs %d bytes, data_offsets give %d", name, e.DType, e.Shape, size, hi-lo)
		}
		ts = append(ts, placed{Tensor{Name: name, DType: e.DType, Shape: e.Shape, Data: data[lo:hi:hi]}, lo, hi})
	}
	// The format requires the byte ranges to cover the data without gaps or
	// overlap; sort by offset (then name, for zero-size tensors) and check.
	sort.Slice(ts, func(i, j int) bool {
		if ts[i].lo != ts[j].lo {
			return ts[i].lo < ts[j].lo
		}
		return ts[i].hi-ts[i].lo < ts[j].hi-ts[j].lo || (ts[i].hi == ts[j].hi && ts[i].t.Name < ts[j].t.Name)
	})
	var pos int64
	for _, p := range ts {
		if p.lo != pos {
			return nil, fmt.Errorf("safetensors: tensor %q starts at byte %d, expected %d (gap or overlap in the data)", p.t.Name, p.lo, pos)
		}
		pos = p.hi
		f.Tensors = append(f.Tensors, p.t)
	}
	if pos != int64(len(data)) {
		return nil, fmt.Errorf("safetensors: %d bytes after the last tensor", int64(len(data))-pos)
	}
	return f, nil
}

// ReadFile reads and decodes a safetensors file; errors name the file.
func ReadFile(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f, err := Decode(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// WriteFile encodes f and writes it to path through a temporary file in the
// same directory and a rename, so that path never holds a partial file.
func WriteFile(path string, f *File) error {
	b, err := Encode(f)
	if err != nil {
		return err
	}
	return WriteAtomic(path, func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	})
}

// WriteAtomic writes path through a temporary file in the same directory
// that is renamed over path only after write and close succeed.
func WriteAtomic(path string, write func(io.Writer) error) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+strings.TrimPrefix(base, ".")+".tmp-*")
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := write(tmp); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	ok = true
	return nil
}
