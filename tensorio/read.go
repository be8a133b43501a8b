package tensorio

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/kilnml/kiln/ir"
)

// ReadNPY reads a .npy file. The tensor is named after the file (without
// the extension).
func ReadNPY(path string) (*ir.Tensor, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	t, err := DecodeNPY(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	t.Name = strings.TrimSuffix(filepath.Base(path), ".npy")
	return t, nil
}

// DecodeNPY decodes a .npy stream of exactly size bytes. It allocates only
// after checking that the header's shape matches the bytes that follow.
func DecodeNPY(r io.Reader, size int64) (*ir.Tensor, error) {
	pre := make([]byte, min(size, 12))
	if _, err := io.ReadFull(r, pre); err != nil {
		return nil, fmt.Errorf("reading .npy preamble: %w", err)
	}
	_, _, start, n, err := ParsePreamble(pre)
	if err != nil {
		return nil, err
	}
	if start+n > size {
		return nil, fmt.Errorf("header claims %d bytes but the file has only %d after the preamble", n, size-start)
	}
	hdr := make([]byte, start+n)
	copy(hdr, pre)
	if _, err := io.ReadFull(r, hdr[len(pre):]); err != nil {
		return nil, fmt.Errorf("reading .npy header: %w", err)
	}
	h, err := ParseHeader(hdr)
	if err != nil {
		return nil, err
	}
	if have := size - h.DataOffset; have != h.DataBytes() {
		return nil, fmt.Errorf("%s array of shape %v needs %d bytes of data, the file has %d",
			h.DType, h.Shape, h.DataBytes(), have)
	}
	t := ir.NewTensor(h.DType, h.Shape)
	if _, err := io.ReadFull(r, t.Data); err != nil {
		return nil, fmt.Errorf("reading %d bytes of array data: %w", len(t.Data), err)
	}
	normalize(h, t)
	return t, nil
}

// DecodeNPYBytes decodes a whole .npy file held in memory.
func DecodeNPYBytes(b []byte) (*ir.Tensor, error) {
	return DecodeNPY(bytes.NewReader(b), int64(len(b)))
}

// normalize turns the data as read into kiln's layout: little endian, C
// order, bools 0 or 1.
func normalize(h *Header, t *ir.Tensor) {
	if h.ByteOrder == binary.BigEndian {
		swapBytes(t.Data, h.ElemSize)
	}
	if h.DType == ir.Bool {
		for i, b := range t.Data {
			if b != 0 {
				t.Data[i] = 1
			}
		}
	}
	if h.FortranOrder && len(h.Shape) > 1 {
		t.Data = fortranToC(t.Data, h.Shape, h.ElemSize)
	}
}

func swapBytes(b []byte, size int) {
	for i := 0; i+size <= len(b); i += size {
		e := b[i : i+size]
		for j, k := 0, size-1; j < k; j, k = j+1, k-1 {
			e[j], e[k] = e[k], e[j]
		}
	}
}

// fortranToC reorders column-major data (first index fastest) into
// row-major data (last index fastest) of the same shape.
func fortranToC(src []byte, dims []int64, size int) []byte {
	dst := ir.AlignedBytes(int64(len(src)))
	// Fortran strides, in elements.
	fs := make([]int64, len(dims))
	acc := int64(1)
	for i, d := range dims {
		fs[i] = acc
		acc *= d
	}
	idx := make([]int64, len(dims))
	n := int64(len(src) / size)
	off := int64(0) // Fortran element offset of idx
	for c := int64(0); c < n; c++ {
		copy(dst[c*int64(size):(c+1)*int64(size)], src[off*int64(size):(off+1)*int64(size)])
		// Advance idx in C order (last axis fastest), keeping off in step.
		for ax := len(dims) - 1; ax >= 0; ax-- {
			idx[ax]++
			off += fs[ax]
			if idx[ax] < dims[ax] {
				break
			}
			off -= idx[ax] * fs[ax]
			idx[ax] = 0
		}
	}
	return dst
}
