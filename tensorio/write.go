package tensorio

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/kilnml/kiln/ir"
)

// EncodeNPY writes t as a .npy stream in C order, little endian, format
// version 1.0 (2.0 when the header would not fit in 64 KiB).
func EncodeNPY(w io.Writer, t *ir.Tensor) error {
	descr := descrOf(t.DType)
	if descr == "" {
		return fmt.Errorf("tensor %q: NumPy has no dtype for %s", t.Name, t.DType)
	}
	if err := t.Check(); err != nil {
		return err
	}
	dims := make([]string, len(t.Dims))
	for i, d := range t.Dims {
		dims[i] = fmt.Sprint(d)
	}
	shape := "(" + strings.Join(dims, ", ") + ")"
	if len(dims) == 1 {
		shape = "(" + dims[0] + ",)"
	}
	dict := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape)
	// Pad with spaces so that the data starts on a 64-byte boundary; the
	// header ends with a newline.
	pre := 10
	if len(dict)+1+64 > 65535 {
		pre = 12
	}
	total := pre + len(dict) + 1
	pad := (64 - total%64) % 64
	hdr := dict + strings.Repeat(" ", pad) + "\n"

	bw := bufio.NewWriter(w)
	bw.WriteString(magic)
	if pre == 10 {
		bw.Write([]byte{1, 0})
		binary.Write(bw, binary.LittleEndian, uint16(len(hdr)))
	} else {
		bw.Write([]byte{2, 0})
		binary.Write(bw, binary.LittleEndian, uint32(len(hdr)))
	}
	bw.WriteString(hdr)
	bw.Write(t.Data)
	return bw.Flush()
}

// WriteNPY writes t to a .npy file.
func WriteNPY(path string, t *ir.Tensor) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := EncodeNPY(f, t); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	return f.Close()
}
