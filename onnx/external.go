package onnx

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/kilnml/kiln/ir"
)

// externalData reads a tensor stored outside the model (data_location =
// EXTERNAL). The location must stay inside the model's directory: absolute
// paths, ".." escapes and symlinks leading out are refused (os.Root).
func (d *decoder) externalData(dt ir.DType, n int64, entries []ir.StringPair) ([]byte, error) {
	if dt == ir.String {
		return nil, errors.New("external data for a string tensor is unsupported")
	}
	var loc string
	offset, length := int64(0), int64(-1)
	for _, e := range entries {
		var err error
		switch e.Key {
		case "location":
			loc = e.Value
		case "offset":
			offset, err = strconv.ParseInt(e.Value, 10, 64)
		case "length":
			length, err = strconv.ParseInt(e.Value, 10, 64)
		}
		if err != nil || offset < 0 || (e.Key == "length" && length < 0) {
			return nil, fmt.Errorf("external data: bad %s %q", e.Key, e.Value)
		}
	}
	if loc == "" {
		return nil, errors.New("external data without a location")
	}
	if !filepath.IsLocal(loc) {
		return nil, fmt.Errorf("external data location %q must be a relative path inside the model's directory", loc)
	}
	if d.baseDir == "" {
		return nil, fmt.Errorf("external data %q: no base directory to resolve it against (load the model with Load)", loc)
	}
	size := dt.ByteSize(n)
	if length >= 0 && length != size {
		return nil, fmt.Errorf("external data %q: length %d, %s of %d elements needs %d bytes", loc, length, dt, n, size)
	}
	f, err := os.OpenInRoot(d.baseDir, loc)
	if err != nil {
		return nil, fmt.Errorf("external data: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("external data: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("external data %q is not a regular file", loc)
	}
	if offset > st.Size() || size > st.Size()-offset {
		return nil, fmt.Errorf("external data %q: offset %d + %d bytes is beyond its size %d", loc, offset, size, st.Size())
	}
	data := ir.AlignedBytes(size)
	if _, err := io.ReadFull(io.NewSectionReader(f, offset, size), data); err != nil {
		return nil, fmt.Errorf("external data %q: %w", loc, err)
	}
	if dt == ir.Bool {
		for i, v := range data {
			if v > 1 {
				data[i] = 1
			}
		}
	}
	return data, nil
}
