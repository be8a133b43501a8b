package calib

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Cache is a TensorRT INT8 calibration cache: a header line
// "TRT-<version>-<Algorithm>" and one line "name: %08x" per tensor, where
// the hex digits are the float32 bits of the scale (amax/127), most
// significant digit first. Tensor names may contain ": ", so a line splits
// on the last one.
type Cache struct {
	Version   string // TensorRT version digits as TensorRT writes them: 8601 for 8.6.1, 100900 for 10.9.0
	Algorithm string // EntropyCalibration2, MinMaxCalibration, EntropyCalibration, LegacyCalibration, ...
	Names     []string
	Scales    map[string]float32
}

// DefaultTRTVersion is the version kiln writes unless told otherwise (TensorRT 10.9.0).
const DefaultTRTVersion = "100900"

// CacheAlgorithmName maps kiln's algorithms to the header names. TensorRT
// has no percentile or MSE calibrator; their names are kiln's own, and such
// a cache is read by TensorRT only after relabelling (WithAlgorithm).
func CacheAlgorithmName(a Algorithm) string {
	switch a {
	case Entropy2:
		return "EntropyCalibration2"
	case MinMax:
		return "MinMaxCalibration"
	case Legacy:
		return "LegacyCalibration"
	case Percentile:
		return "PercentileCalibration"
	case MSE:
		return "MSECalibration"
	}
	return string(a)
}

var headerRE = regexp.MustCompile(`^TRT-(\d+)-([A-Za-z0-9]+)$`)

// ParseCache reads a cache; where names the file in errors.
func ParseCache(data []byte, where string) (*Cache, error) {
	lines := strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n")
	if len(lines) == 0 || strings.TrimSpace(lines[0]) == "" {
		return nil, fmt.Errorf("%s: empty calibration cache", where)
	}
	m := headerRE.FindStringSubmatch(strings.TrimSpace(lines[0]))
	if m == nil {
		return nil, fmt.Errorf("%s:1: header %q is not TRT-<version>-<Algorithm>", where, truncate(lines[0]))
	}
	c := &Cache{Version: m[1], Algorithm: m[2], Scales: map[string]float32{}}
	for i, line := range lines[1:] {
		ln := i + 2
		if strings.TrimSpace(line) == "" {
			continue
		}
		k := strings.LastIndex(line, ": ")
		if k <= 0 {
			return nil, fmt.Errorf("%s:%d: line %q is not \"name: hex\"", where, ln, truncate(line))
		}
		name, hex := line[:k], strings.TrimSpace(line[k+2:])
		if len(hex) == 0 || len(hex) > 8 {
			return nil, fmt.Errorf("%s:%d: tensor %q: scale %q is not 1 to 8 hex digits", where, ln, name, truncate(hex))
		}
		bits, err := strconv.ParseUint(hex, 16, 32)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: tensor %q: scale %q is not hex", where, ln, name, truncate(hex))
		}
		s := math.Float32frombits(uint32(bits))
		if math.IsNaN(float64(s)) || math.IsInf(float64(s), 0) || s < 0 {
			return nil, fmt.Errorf("%s:%d: tensor %q: scale %v is not a finite non-negative number", where, ln, name, s)
		}
		if _, dup := c.Scales[name]; dup {
			return nil, fmt.Errorf("%s:%d: tensor %q listed twice", where, ln, name)
		}
		c.Names = append(c.Names, name)
		c.Scales[name] = s
	}
	return c, nil
}

// ReadCacheFile reads and parses a cache file.
func ReadCacheFile(path string) (*Cache, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseCache(data, path)
}

func truncate(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}

// Amax returns scale·127 for a tensor.
func (c *Cache) Amax(name string) (float64, bool) {
	s, ok := c.Scales[name]
	return float64(s) * 127, ok
}

// Marshal writes the cache in TensorRT's format, tensors in Names order.
func (c *Cache) Marshal() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "TRT-%s-%s\n", c.Version, c.Algorithm)
	for _, n := range c.Names {
		fmt.Fprintf(&b, "%s: %08x\n", n, math.Float32bits(c.Scales[n]))
	}
	return b.Bytes()
}

// CheckAlgorithm reports a header written for another algorithm.
func (c *Cache) CheckAlgorithm(a Algorithm) error {
	if want := CacheAlgorithmName(a); c.Algorithm != want {
		return fmt.Errorf("calibration cache was written by %s, not %s (use --force to recalibrate)", c.Algorithm, want)
	}
	return nil
}

// NewCache builds a cache from ranges.
func NewCache(version string, a Algorithm, ranges []Range) *Cache {
	if version == "" {
		version = DefaultTRTVersion
	}
	c := &Cache{Version: version, Algorithm: CacheAlgorithmName(a), Scales: map[string]float32{}}
	for _, r := range ranges {
		c.Names = append(c.Names, r.Name)
		c.Scales[r.Name] = float32(r.Scale())
	}
	return c
}

// TRTVersion turns "8.6.1" or "10.9.0" into the digits TensorRT writes
// (8601, 100900): major·1000 + minor·100 + patch for 8.x, major·10000 +
// minor·100 + patch from 10 on.
func TRTVersion(dotted string) (string, error) {
	parts := strings.Split(dotted, ".")
	if len(parts) == 1 {
		if _, err := strconv.Atoi(dotted); err == nil {
			return dotted, nil
		}
	}
	if len(parts) != 3 {
		return "", fmt.Errorf("TensorRT version %q is not major.minor.patch", dotted)
	}
	var v [3]int
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 99 {
			return "", fmt.Errorf("TensorRT version %q is not major.minor.patch", dotted)
		}
		v[i] = n
	}
	if v[0] < 10 {
		return strconv.Itoa(v[0]*1000 + v[1]*100 + v[2]), nil
	}
	return strconv.Itoa(v[0]*10000 + v[1]*100 + v[2]), nil
}

// WriteFileAtomic writes data to a temporary file next to path and renames
// it, so that no half-written file is ever left under the final name.
func WriteFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// DynamicRanges is the per-tensor dynamic-range text format of TensorRT's
// sampleINT8API: one "name:amax" line per tensor, amax in decimal.
type DynamicRanges struct {
	Names []string
	Amax  map[string]float64
}

// ParseDynamicRanges reads "name:amax" lines (names may contain ':'; the
// value follows the last one).
func ParseDynamicRanges(data []byte, where string) (*DynamicRanges, error) {
	d := &DynamicRanges{Amax: map[string]float64{}}
	for i, line := range strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		k := strings.LastIndex(line, ":")
		if k <= 0 {
			return nil, fmt.Errorf("%s:%d: line %q is not name:amax", where, i+1, truncate(line))
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(line[k+1:]), 64)
		if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
			return nil, fmt.Errorf("%s:%d: tensor %q: amax %q is not a finite non-negative number", where, i+1, line[:k], truncate(line[k+1:]))
		}
		name := line[:k]
		if _, dup := d.Amax[name]; dup {
			return nil, fmt.Errorf("%s:%d: tensor %q listed twice", where, i+1, name)
		}
		d.Names = append(d.Names, name)
		d.Amax[name] = v
	}
	return d, nil
}

// Marshal writes "name:amax" lines with enough digits to round-trip float32.
func (d *DynamicRanges) Marshal() []byte {
	var b bytes.Buffer
	names := d.Names
	if names == nil {
		for n := range d.Amax {
			names = append(names, n)
		}
		sort.Strings(names)
	}
	for _, n := range names {
		fmt.Fprintf(&b, "%s:%s\n", n, strconv.FormatFloat(d.Amax[n], 'g', -1, 64))
	}
	return b.Bytes()
}
