package tensorio

import (
	"archive/zip"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/kilnml/kiln/ir"
)

// maxDeflateRatio is the most DEFLATE can expand: about 1032 output bytes
// per input byte. An entry claiming more than this is lying about its size,
// and we refuse it before allocating anything.
const maxDeflateRatio = 1032

// ReadNPZ reads every array of an .npz archive, in archive order. Each
// tensor is named after its entry without the ".npy" suffix, as numpy.load
// names them.
func ReadNPZ(path string) ([]*ir.Tensor, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return DecodeNPZ(f, st.Size(), path)
}

// DecodeNPZ reads an .npz archive of size bytes from r; name is used in
// error messages.
func DecodeNPZ(r io.ReaderAt, size int64, name string) ([]*ir.Tensor, error) {
	path := name
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var out []*ir.Tensor
	seen := map[string]bool{}
	for _, f := range zr.File {
		if strings.HasSuffix(f.Name, "/") {
			continue
		}
		t, err := readEntry(f)
		if err != nil {
			return nil, fmt.Errorf("%s: entry %q: %w", path, f.Name, err)
		}
		t.Name = strings.TrimSuffix(f.Name, ".npy")
		if seen[t.Name] {
			return nil, fmt.Errorf("%s: array %q appears twice", path, t.Name)
		}
		seen[t.Name] = true
		out = append(out, t)
	}
	return out, nil
}

func readEntry(f *zip.File) (*ir.Tensor, error) {
	size, csize := f.UncompressedSize64, f.CompressedSize64
	switch f.Method {
	case zip.Store:
		if size != csize {
			return nil, fmt.Errorf("stored entry claims %d bytes but holds %d", size, csize)
		}
	case zip.Deflate:
		if size > csize*maxDeflateRatio+1024 {
			return nil, fmt.Errorf("entry claims %d bytes from %d compressed bytes, more than DEFLATE can produce", size, csize)
		}
	default:
		return nil, fmt.Errorf("unsupported compression method %d (want stored or deflated)", f.Method)
	}
	if size > 1<<62 {
		return nil, fmt.Errorf("entry size %d is too large", size)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	t, err := DecodeNPY(rc, int64(size))
	if err != nil {
		return nil, err
	}
	// Drain to the end so that the zip reader verifies the size and CRC.
	if n, err := io.Copy(io.Discard, rc); err != nil {
		return nil, err
	} else if n != 0 {
		return nil, fmt.Errorf("%d bytes after the array data", n)
	}
	return t, nil
}

// WriteNPZ writes tensors to an .npz archive, one "<name>.npy" entry each,
// deflated when compress is set (numpy.savez_compressed) and stored
// otherwise (numpy.savez).
func WriteNPZ(path string, tensors []*ir.Tensor, compress bool) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	zw := zip.NewWriter(f)
	method := zip.Store
	if compress {
		method = zip.Deflate
	}
	for _, t := range tensors {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: t.Name + ".npy", Method: method})
		if err == nil {
			err = EncodeNPY(w, t)
		}
		if err != nil {
			f.Close()
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	if err := zw.Close(); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	return f.Close()
}
