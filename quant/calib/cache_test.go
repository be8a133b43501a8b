package calib

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func sharedCaches(t *testing.T) string {
	d := filepath.Join("..", "..", "..", "shared", "calib-caches")
	if env := os.Getenv("KILN_SHARED"); env != "" {
		d = filepath.Join(env, "calib-caches")
	}
	if _, err := os.Stat(d); err != nil {
		t.Skipf("shared calibration caches not found at %s", d)
	}
	return d
}

func TestReadTensorRTCaches(t *testing.T) {
	d := sharedCaches(t)
	for _, c := range []struct {
		file, version, algo string
		n                   int
		name                string
		amax                float64
	}{
		{"trt8003_entropy2_mnist.cache", "8003", "EntropyCalibration2", 49, "input_0", 0x3cb1ab7d},
		{"trt8400_minmax_vgg16.cache", "8400", "MinMaxCalibration", 67, "input.1", 0x3d73a3fe},
	} {
		data, err := os.ReadFile(filepath.Join(d, c.file))
		if err != nil {
			t.Fatal(err)
		}
		cache, err := ParseCache(data, c.file)
		if err != nil {
			t.Fatal(err)
		}
		if cache.Version != c.version || cache.Algorithm != c.algo || len(cache.Names) != c.n {
			t.Errorf("%s: %s %s %d tensors", c.file, cache.Version, cache.Algorithm, len(cache.Names))
		}
		if _, ok := cache.Scales[c.name]; !ok {
			t.Errorf("%s: no %s", c.file, c.name)
		}
		// Writing back gives the same bytes.
		if !bytes.Equal(cache.Marshal(), data) {
			t.Errorf("%s does not round-trip", c.file)
		}
	}
}

func TestCacheValues(t *testing.T) {
	// 0x3c010204 is the float32 0.0078740157... = 1/127: amax 1.
	c, err := ParseCache([]byte("TRT-8601-EntropyCalibration2\nx: 3c010204\nname: with: colons: 3f800000\nzero: 0\n"), "mem")
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := c.Amax("x"); a < 0.99999 || a > 1.00001 {
		t.Errorf("amax %g", a)
	}
	if s := c.Scales["name: with: colons"]; s != 1 {
		t.Errorf("colon name: %v %v", s, c.Names)
	}
	if s, ok := c.Scales["zero"]; !ok || s != 0 {
		t.Errorf("bare 0: %v %v", s, ok)
	}
	if err := c.CheckAlgorithm(MinMax); err == nil || !strings.Contains(err.Error(), "EntropyCalibration2") {
		t.Errorf("algorithm check: %v", err)
	}
}

func TestBadCaches(t *testing.T) {
	for _, c := range []struct{ data, want string }{
		{"", "empty"},
		{"TRT-x-Entropy\n", "header"},
		{"hello\n", "header"},
		{"TRT-8601-EntropyCalibration2\nno separator\n", `mem:2: line "no separator"`},
		{"TRT-8601-EntropyCalibration2\nx: zz\n", `tensor "x": scale "zz" is not hex`},
		{"TRT-8601-EntropyCalibration2\nx: 123456789\n", "1 to 8 hex digits"},
		{"TRT-8601-EntropyCalibration2\nx: 7fc00000\n", "not a finite"},
		{"TRT-8601-EntropyCalibration2\nx: 1\nx: 2\n", "listed twice"},
	} {
		_, err := ParseCache([]byte(c.data), "mem")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want %q", c.data, err, c.want)
		}
	}
}

func TestTRTVersion(t *testing.T) {
	for in, want := range map[string]string{"8.6.1": "8601", "10.9.0": "100900", "8.0.3": "8003", "100900": "100900"} {
		if got, err := TRTVersion(in); err != nil || got != want {
			t.Errorf("%s: %s %v", in, got, err)
		}
	}
	if _, err := TRTVersion("8.x"); err == nil {
		t.Error("8.x accepted")
	}
}

func TestDynamicRanges(t *testing.T) {
	d, err := ParseDynamicRanges([]byte("a:1.5\nb:c:0.25\n"), "ranges.txt")
	if err != nil {
		t.Fatal(err)
	}
	if d.Amax["a"] != 1.5 || d.Amax["b:c"] != 0.25 {
		t.Fatalf("%+v", d)
	}
	if string(d.Marshal()) != "a:1.5\nb:c:0.25\n" {
		t.Errorf("marshal %q", d.Marshal())
	}
	if _, err := ParseDynamicRanges([]byte("a:-1\n"), "r"); err == nil {
		t.Error("negative amax accepted")
	}
}
