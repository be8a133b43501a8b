package mnist

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func realDir(t *testing.T) string {
	t.Helper()
	d, err := DefaultDir()
	if err != nil {
		t.Skipf("MNIST module not available: %v", err)
	}
	return d
}

func TestLoadRealMNIST(t *testing.T) {
	train, test, err := Load(realDir(t))
	if err != nil {
		t.Fatal(err)
	}
	if train.Len() != 60000 || test.Len() != 10000 {
		t.Fatalf("sizes %d/%d, want 60000/10000", train.Len(), test.Len())
	}
	if train.Images.Rows != 28 || train.Images.Cols != 28 {
		t.Fatalf("image size %dx%d", train.Images.Rows, train.Images.Cols)
	}
	// Well-known first labels of the two splits.
	if train.Labels[0] != 5 || test.Labels[0] != 7 {
		t.Fatalf("first labels %d, %d; want 5, 7", train.Labels[0], test.Labels[0])
	}
	// The normalization constants are the training set's statistics.
	var sum, sq float64
	for _, p := range train.Images.Pixels {
		v := float64(p) / 255
		sum += v
		sq += v * v
	}
	n := float64(len(train.Images.Pixels))
	mean := sum / n
	std := sq/n - mean*mean
	if mean < 0.1306 || mean > 0.1308 || std < 0.3080*0.3080 || std > 0.3082*0.3082 {
		t.Fatalf("mean %v, var %v", mean, std)
	}
}

func idxBytes(magic uint32, dims []uint32, data []byte) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.BigEndian, magic)
	for _, d := range dims {
		binary.Write(&b, binary.BigEndian, d)
	}
	b.Write(data)
	return b.Bytes()
}

func gz(b []byte) []byte {
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	w.Write(b)
	w.Close()
	return out.Bytes()
}

func write(t *testing.T, name string, b []byte) string {
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReadPlainAndGzipAgree(t *testing.T) {
	pix := make([]byte, 3*2*4)
	for i := range pix {
		pix[i] = byte(i * 7)
	}
	raw := idxBytes(imageMagic, []uint32{3, 2, 4}, pix)
	for _, b := range [][]byte{raw, gz(raw)} {
		im, err := ReadImages(write(t, "img", b))
		if err != nil {
			t.Fatal(err)
		}
		if im.N != 3 || im.Rows != 2 || im.Cols != 4 || !bytes.Equal(im.Pixels, pix) || !bytes.Equal(im.Image(1), pix[8:16]) {
			t.Fatalf("got %+v", im)
		}
	}
	lb, err := ReadLabels(write(t, "lb.gz", gz(idxBytes(labelMagic, []uint32{3}, []byte{1, 9, 0}))))
	if err != nil || !bytes.Equal(lb, []byte{1, 9, 0}) {
		t.Fatalf("labels %v, %v", lb, err)
	}
}

func TestBadFiles(t *testing.T) {
	cases := []struct {
		name   string
		labels bool
		data   []byte
		want   string
	}{
		{"wrong magic", false, idxBytes(labelMagic, []uint32{1, 1, 1}, []byte{0}), "magic number 2049, want 2051"},
		{"labels as images", true, idxBytes(imageMagic, []uint32{1}, []byte{0}), "magic number 2051, want 2049"},
		{"truncated header", false, []byte{0, 0, 8}, "truncated"},
		{"truncated data gzip", false, gz(idxBytes(imageMagic, []uint32{2, 2, 2}, []byte{1, 2, 3})), "truncated"},
		{"count beyond file", false, idxBytes(imageMagic, []uint32{1000, 28, 28}, make([]byte, 784)), "only 784 bytes"},
		{"huge count", false, idxBytes(imageMagic, []uint32{1 << 31, 28, 28}, nil), "more than"},
		{"huge count gzip", true, gz(idxBytes(labelMagic, []uint32{1 << 31}, nil)), "more than"},
		{"lying count gzip", true, gz(idxBytes(labelMagic, []uint32{5_000_000}, []byte{1})), "truncated"},
		{"zero rows", false, idxBytes(imageMagic, []uint32{1, 0, 28}, nil), "implausible"},
		{"trailing data", true, idxBytes(labelMagic, []uint32{1}, []byte{1, 2}), "past the 1 items"},
		{"bad label", true, idxBytes(labelMagic, []uint32{2}, []byte{1, 10}), "label 1 is 10"},
		{"bad gzip", true, []byte{0x1f, 0x8b, 0, 0}, "gzip"},
	}
	for _, c := range cases {
		p := write(t, "bad-file", c.data)
		var err error
		if c.labels {
			_, err = ReadLabels(p)
		} else {
			_, err = ReadImages(p)
		}
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: got %v, want an error naming %s and containing %q", c.name, err, p, c.want)
		}
	}
}

func TestMissingAndMismatchedFiles(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadSplit(dir, TestImagesFile, TestLabelsFile); err == nil || !strings.Contains(err.Error(), TestImagesFile) {
		t.Fatalf("missing file: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "t10k-images-idx3-ubyte"), idxBytes(imageMagic, []uint32{2, 1, 1}, []byte{0, 255}), 0o644)
	os.WriteFile(filepath.Join(dir, TestLabelsFile), gz(idxBytes(labelMagic, []uint32{3}, []byte{1, 2, 3})), 0o644)
	if _, err := LoadSplit(dir, TestImagesFile, TestLabelsFile); err == nil || !strings.Contains(err.Error(), "2 images but") {
		t.Fatalf("mismatch: %v", err)
	}
}

func TestBatchesShuffleDeterministicAndComplete(t *testing.T) {
	n := 10
	pix := make([]byte, n)
	lab := make([]byte, n)
	for i := range pix {
		pix[i] = byte(i)
		lab[i] = byte(i % 10)
	}
	set := &Set{Images: &Images{N: n, Rows: 1, Cols: 1, Pixels: pix}, Labels: lab}
	run := func(seed uint64, epoch int) []int {
		b := NewBatches(set, 4, true, seed)
		b.Reset(epoch)
		x := make([]float32, 4)
		l := make([]int, 4)
		var seen []int
		for k := b.Next(x, l); k > 0; k = b.Next(x, l) {
			for j := 0; j < k; j++ {
				if x[j] != Normalize(byte(l[j])) {
					t.Fatalf("image and label disagree: %v vs %v", x[j], l[j])
				}
				seen = append(seen, l[j])
			}
		}
		// Order is the order Next hands out (labels equal indices here).
		if o := b.Order(); !equal(o, seen) {
			t.Fatalf("Order() %v, batches gave %v", o, seen)
		}
		return seen
	}
	a, b := run(7, 0), run(7, 0)
	if len(a) != n || !equal(a, b) {
		t.Fatalf("not deterministic or incomplete: %v %v", a, b)
	}
	if equal(a, run(7, 1)) && equal(a, run(8, 0)) {
		t.Fatalf("epoch and seed do not change the order")
	}
	mark := make([]bool, n)
	for _, v := range a {
		mark[v] = true
	}
	for i, m := range mark {
		if !m {
			t.Fatalf("example %d never seen", i)
		}
	}
	if got := Normalize(0); got > -0.4242 || got < -0.4243 {
		t.Fatalf("Normalize(0) = %v", got)
	}
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
